//! A message whose decoding kills the process must not crash-loop `provdb serve`: after it
//! was being decoded during two abnormal exits it is quarantined undecoded, acknowledged, and
//! ingest goes on. A panic in decoding is caught per message. The crashes are made by test
//! hooks that only debug builds have (`PROVDB_TEST_ABORT_ON`, `PROVDB_TEST_PANIC_ON`).

mod common;
mod mqtt_support;

use std::time::{Duration, Instant};

use mqtt_support::*;
use provdb::ingest::{load_quarantine, BrokerUrl};
use provdb::publish::Message;
use provdb::simulate::SimulationOptions;
use provdb::Database;

/// Good messages with one marked message in the middle (bare JSON, which serve accepts as a
/// payload), and the graph an offline import of the good ones makes.
fn workload(dir: &std::path::Path, marker: &str) -> (Vec<Message>, Database) {
    let SimulatedFleet {
        mut messages,
        reference,
    } = SimulatedFleet::new(
        &dir.join("reference"),
        &SimulationOptions {
            seed: 5,
            machines: 2,
            documents_per_machine: 30,
            records_per_document: 20,
        },
    );
    let machine = messages[0].machine;
    let poison = format!(
        r#"{{"prefix":{{}},"activity":{{"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=":{{"prov:type":"task","cf:note":"{marker}"}}}}}}"#
    );
    messages.insert(
        messages.len() / 2,
        Message {
            topic: format!("camflow/provenance/{machine}"),
            payload: poison.clone().into_bytes(),
            retain: false,
            machine,
            json_bytes: poison.len(),
        },
    );
    (messages, reference)
}

fn publisher(
    url: BrokerUrl,
    messages: Vec<Message>,
) -> std::thread::JoinHandle<Result<provdb::publish::PublishReport, provdb::publish::PublishError>>
{
    publish_in_background(url, messages, |o| {
        o.rate = Some(40.0);
        o.persistent_session = true;
        o.client_id = "poison-publisher".to_owned();
        o.ack_timeout = Duration::from_secs(120);
    })
}

#[test]
fn a_message_that_aborts_the_decoder_is_quarantined_after_two_crashes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let marker = "ABORT-MARK-5e1f";
    let (messages, reference) = workload(tmp.path(), marker);
    let total = messages.len() as u64;
    let db_path = tmp.path().join("served");
    let listen = format!("127.0.0.1:{}", free_port());
    let url = BrokerUrl::parse(&format!("mqtt://{listen}")).expect("url");
    let env = [("PROVDB_TEST_ABORT_ON", marker)];
    let args = ["--listen", listen.as_str()];
    let mut serve = ServeProcess::start(&db_path, &args, &env);
    let publishing = publisher(url, messages);
    let mut crashes = 0;
    let mut logs = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !publishing.is_finished() {
        assert!(Instant::now() < deadline, "no progress in 120 s:\n{logs}");
        if let Some(status) = serve.try_wait() {
            assert!(!status.success(), "serve exited normally: {status:?}");
            crashes += 1;
            logs.push_str(&serve.log());
            // Not `start`: the publisher may reconnect and resend the poison message before
            // the restarted serve prints its ready line (printed within 100 ms of readiness),
            // and crash it again; this loop watches for that.
            serve = ServeProcess::spawn_command(ServeProcess::command(&db_path, &args, &env));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = publishing.join().expect("publisher thread");
    assert_eq!(report.expect("every message acknowledged").messages, total);
    let (status, last) = serve.stop();
    assert!(status.success(), "{last}");
    logs.push_str(&last);
    assert_eq!(crashes, 2, "expected exactly two crashes:\n{logs}");
    assert!(
        logs.contains("was being decoded when provdb last stopped abnormally (1 of 2 times)")
            && logs.contains("(2 of 2 times)"),
        "{logs}"
    );
    let db = Database::open(&db_path).expect("reopen");
    let quarantine = load_quarantine(db.store()).expect("quarantine");
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    assert_eq!(quarantine[0].kind, "poison");
    assert!(String::from_utf8_lossy(&quarantine[0].payload).contains(marker));
    assert_same_graph(&db, &reference);
}

#[test]
fn a_panic_in_decoding_quarantines_the_message_and_ingest_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let marker = "PANIC-MARK-77c2";
    let (messages, reference) = workload(tmp.path(), marker);
    let total = messages.len() as u64;
    let db_path = tmp.path().join("served");
    let listen = format!("127.0.0.1:{}", free_port());
    let url = BrokerUrl::parse(&format!("mqtt://{listen}")).expect("url");
    let serve = ServeProcess::start(
        &db_path,
        &["--listen", listen.as_str()],
        &[("PROVDB_TEST_PANIC_ON", marker)],
    );
    let report = publisher(url, messages).join().expect("publisher thread");
    assert_eq!(report.expect("every message acknowledged").messages, total);
    let (status, stderr) = serve.stop();
    assert!(status.success(), "{stderr}");
    let db = Database::open(&db_path).expect("reopen");
    let quarantine = load_quarantine(db.store()).expect("quarantine");
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    assert_eq!(quarantine[0].kind, "panic");
    assert!(
        quarantine[0].error.contains("test hook: panicking"),
        "{:?}",
        quarantine[0]
    );
    assert_same_graph(&db, &reference);
}
