//! `provdb serve` against a real mosquitto on a private loopback port: the shared samples,
//! ten machines at once, the broker restarted under the service, and kill -9 of the service
//! binary in the middle of a stream.

mod common;
mod mqtt_support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use mqtt_support::*;
use provdb::ingest::{load_machines, IngestConfig};
use provdb::publish::{Message, MessagePlan};
use provdb::simulate::SimulationOptions;
use provdb::Database;

fn external(m: &Mosquitto, client: &str) -> IngestConfig {
    test_config(IngestConfig::external(m.url()), client)
}

#[test]
fn mosquitto_samples_equal_offline_import() {
    let Some(dir) = common::shared_data_dir() else {
        return;
    };
    let Some(broker) = Mosquitto::start(false) else {
        return;
    };
    let files: Vec<_> = common::SAMPLES.iter().map(|s| dir.join(s.0)).collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let service = Service::start(
        Database::open(tmp.path().join("served")).expect("db"),
        external(&broker, "samples-mosquitto"),
    );
    let plan = MessagePlan::default();
    let mut messages = Vec::new();
    for f in &files {
        messages.extend(plan.messages_of_file(f).expect("read sample"));
    }
    let n = publish(&broker.url(), &messages, 1);
    service.wait_handled(n, Duration::from_secs(60));
    let (db, stats) = service.stop();
    assert_eq!(stats.quarantined, 0, "{stats:?}");
    let reference = reference_from_files(&tmp.path().join("reference"), &files);
    assert_same_graph(&db, &reference);
}

#[test]
fn mosquitto_samples_replayed_as_ten_machines() {
    let Some(dir) = common::shared_data_dir() else {
        return;
    };
    let Some(broker) = Mosquitto::start(false) else {
        return;
    };
    let file = dir.join("v0.5.0-w3c-wget.log");
    let tmp = tempfile::tempdir().expect("tempdir");
    let service = Service::start(
        Database::open(tmp.path().join("served")).expect("db"),
        external(&broker, "ten-mosquitto"),
    );
    let plan = MessagePlan {
        machines: 10,
        ..Default::default()
    };
    let messages = plan.messages_of_file(&file).expect("read sample");
    // Ten publishers at once, one per machine.
    let per_machine =
        |k: usize| -> Vec<Message> { messages.iter().skip(k).step_by(10).cloned().collect() };
    std::thread::scope(|s| {
        for k in 0..10 {
            let mine = per_machine(k);
            let url = broker.url();
            s.spawn(move || publish(&url, &mine, 1));
        }
    });
    service.wait_handled(messages.len() as u64, Duration::from_secs(60));
    let (db, stats) = service.stop();
    assert_eq!(stats.quarantined, 0);
    let json: Vec<String> = messages.iter().map(json_of).collect();
    let reference = reference_from_json(&tmp.path().join("reference"), &json);
    assert_same_graph(&db, &reference);
    let single = Database::open(tmp.path().join("single")).expect("db");
    single.import_files(&[file], &mut |_| {}).expect("import");
    assert_eq!(
        db.stats().expect("stats").edges,
        10 * single.stats().expect("stats").edges
    );
    assert_eq!(load_machines(db.store()).expect("registry").len(), 10);
}

#[test]
fn broker_restarted_under_the_service_loses_nothing() {
    let Some(mut broker) = Mosquitto::start(true) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let SimulatedFleet {
        messages,
        reference,
    } = SimulatedFleet::new(
        &tmp.path().join("reference"),
        &SimulationOptions {
            seed: 3,
            machines: 3,
            documents_per_machine: 30,
            records_per_document: 40,
        },
    );
    let (first, second) = messages.split_at(messages.len() / 2);
    let service = Service::start(
        Database::open(tmp.path().join("served")).expect("db"),
        external(&broker, "restart-mosquitto"),
    );
    publish(&broker.url(), first, 1);
    service.wait_handled(first.len() as u64, Duration::from_secs(60));
    broker.restart();
    // The service reconnects (with backoff) and resubscribes; its session survived.
    service.wait_until("reconnect", Duration::from_secs(30), |s| {
        s.connections >= 2 && s.connected
    });
    publish(&broker.url(), second, 1);
    service.wait_until("all stored", Duration::from_secs(60), |s| {
        s.stored >= messages.len() as u64
    });
    let (db, _) = service.stop();
    assert_same_graph(&db, &reference);
}

/// The service binary as a child process, once it has subscribed.
fn spawn_serve(db: &std::path::Path, broker: &Mosquitto) -> Child {
    spawn_serve_with(db, broker, &["--client-id", "kill9-service"])
}

#[test]
fn kill_9_mid_stream_then_restart_stores_every_message_exactly_once() {
    let Some(broker) = Mosquitto::start(false) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let db_path = tmp.path().join("served");
    // The expected graph, computed independently by an offline import of the same documents.
    let SimulatedFleet {
        messages,
        reference,
    } = SimulatedFleet::new(
        &tmp.path().join("reference"),
        &SimulationOptions {
            seed: 11,
            machines: 4,
            documents_per_machine: 150,
            records_per_document: 40,
        },
    );
    let expected = reference.stats().expect("stats");

    let mut child = spawn_serve(&db_path, &broker);
    let url = broker.url();
    let publisher = publish_in_background(url, messages.clone(), |o| {
        o.rate = Some(400.0);
        o.client_id = "kill9-publisher".to_owned();
    });
    std::thread::sleep(Duration::from_millis(500));
    child.kill().expect("SIGKILL provdb serve");
    let _ = child.wait();
    let partial = edges_stored(&db_path);
    eprintln!(
        "killed mid-stream with {partial} of {} edges stored",
        expected.edges
    );
    assert!(
        partial < expected.edges,
        "the kill came too late to test anything"
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut child = spawn_serve(&db_path, &broker);
    let report = publisher.join().expect("publisher").expect("publish");
    assert_eq!(report.messages, messages.len() as u64);
    // Wait (bounded) until the service has everything.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (vertices, edges) = graph_counts(&db_path);
        let done = edges >= expected.edges && vertices >= expected.vertices;
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not catch up in 90 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "graceful shutdown failed: {status:?}");
    let db = Database::open(&db_path).expect("reopen");
    assert_same_graph(&db, &reference);
    let machines = load_machines(db.store()).expect("registry");
    assert_eq!(machines.len(), 4);
    // Each message was received at least once; some were redelivered after the kill.
    let received: u64 = machines.iter().map(|m| m.messages).sum();
    assert!(
        received >= messages.len() as u64,
        "{received} < {}",
        messages.len()
    );
}
