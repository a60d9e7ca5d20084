//! `provdb serve` with its embedded MQTT listener: the shared samples, many machines,
//! duplicates and bad messages.

mod common;
mod mqtt_support;

use std::time::Duration;

use mqtt_support::*;
use provdb::ingest::{load_machines, load_quarantine, IngestConfig};
use provdb::publish::{encode_payload, Message, MessagePlan};
use provdb::simulate::{to_messages, Simulation, SimulationOptions};
use provdb::Database;

fn embedded(client: &str) -> (IngestConfig, provdb::ingest::BrokerUrl) {
    let port = free_port();
    let config = test_config(
        IngestConfig::embedded(format!("127.0.0.1:{port}").parse().expect("addr")),
        client,
    );
    let url = provdb::ingest::BrokerUrl::parse(&format!("mqtt://127.0.0.1:{port}")).expect("url");
    (config, url)
}

#[test]
fn embedded_broker_samples_equal_offline_import() {
    let Some(dir) = common::shared_data_dir() else {
        return;
    };
    let files: Vec<_> = common::SAMPLES.iter().map(|s| dir.join(s.0)).collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (config, url) = embedded("samples-embedded");
    let service = Service::start(
        Database::open(tmp.path().join("served")).expect("db"),
        config,
    );
    let plan = MessagePlan::default();
    let mut messages = Vec::new();
    for f in &files {
        messages.extend(plan.messages_of_file(f).expect("read sample"));
    }
    let n = publish(&url, &messages, 1);
    service.wait_handled(n, Duration::from_secs(60));
    let (db, stats) = service.stop();
    assert_eq!(stats.quarantined, 0, "{stats:?}");
    let reference = reference_from_files(&tmp.path().join("reference"), &files);
    assert_same_graph(&db, &reference);
    let machines = load_machines(db.store()).expect("registry");
    assert!(machines
        .iter()
        .any(|m| m.machine == 635_200_317 && m.description.is_some()));
    assert!(machines.iter().any(|m| m.machine == 1_958_431_827));
    assert_eq!(machines.iter().map(|m| m.messages).sum::<u64>(), n);
}

#[test]
fn embedded_ten_machines_and_duplicates_are_stored_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = SimulationOptions {
        seed: 42,
        machines: 10,
        documents_per_machine: 20,
        records_per_document: 40,
    };
    let docs: Vec<_> = Simulation::new(&opts).collect();
    let messages = to_messages(docs.clone(), "camflow/provenance/");
    let (config, url) = embedded("ten-embedded");
    let service = Service::start(
        Database::open(tmp.path().join("served")).expect("db"),
        config,
    );
    // Ten publishers at once, one per machine, each sending its messages twice (QoS 1 and 2).
    std::thread::scope(|s| {
        for k in 0..10 {
            let mine: Vec<Message> = messages.iter().skip(k).step_by(10).cloned().collect();
            let url = url.clone();
            s.spawn(move || {
                publish(&url, &mine, 1);
                publish(&url, &mine, 2);
            });
        }
    });
    service.wait_handled(2 * messages.len() as u64, Duration::from_secs(120));
    let (db, stats) = service.stop();
    assert_eq!(stats.quarantined, 0);
    let json: Vec<String> = docs.iter().map(|d| d.json.clone()).collect();
    let reference = reference_from_json(&tmp.path().join("reference"), &json);
    assert_same_graph(&db, &reference);
    let machines = load_machines(db.store()).expect("registry");
    assert_eq!(machines.len(), 10);
    for m in &machines {
        assert_eq!(
            m.messages, 40,
            "machine {} got {} messages",
            m.machine, m.messages
        );
        assert_eq!(m.rejected, 0);
        assert!(m.first_seen_ms <= m.last_seen_ms);
    }
}

#[test]
fn bad_messages_go_to_quarantine_and_good_ones_around_them_are_stored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = SimulationOptions {
        seed: 9,
        machines: 2,
        documents_per_machine: 6,
        records_per_document: 30,
    };
    let docs: Vec<_> = Simulation::new(&opts).collect();
    let (a, b) = (docs[0].machine, docs[1].machine);
    let good = to_messages(docs.clone(), "camflow/provenance/");
    let bad = |topic: String, payload: Vec<u8>| Message {
        topic,
        payload,
        retain: false,
        machine: 0,
        json_bytes: 0,
    };
    let bads = [
        bad(
            format!("camflow/provenance/{a}"),
            b"%%% not base64 %%%".to_vec(),
        ),
        bad(format!("camflow/provenance/{a}"), b"bm90IHpsaWI=".to_vec()),
        bad(
            format!("camflow/provenance/{b}"),
            encode_payload(b"{\"prefix\":{}, \"entity\":{"),
        ),
        // A document of machine a published under machine b's topic.
        bad(
            format!("camflow/provenance/{b}"),
            encode_payload(docs[0].json.as_bytes()),
        ),
        bad(
            "camflow/provenance/not-a-number".to_owned(),
            encode_payload(docs[1].json.as_bytes()),
        ),
    ];
    // Keep-alives and empty payloads are skipped, not quarantined.
    let ignored = [
        bad("keepalive".to_owned(), Vec::new()),
        bad(format!("camflow/provenance/{a}"), Vec::new()),
    ];
    let mut stream = Vec::new();
    for (i, g) in good.iter().enumerate() {
        stream.push(g.clone());
        if let Some(x) = bads.get(i) {
            stream.push(x.clone());
        }
        if let Some(x) = ignored.get(i) {
            stream.push(x.clone());
        }
    }
    let (config, url) = embedded("bad-embedded");
    let service = Service::start(
        Database::open(tmp.path().join("served")).expect("db"),
        config,
    );
    let n = publish(&url, &stream, 1);
    // `keepalive` is not subscribed to, so one message fewer reaches the service.
    service.wait_handled(n - 1, Duration::from_secs(60));
    let (db, stats) = service.stop();
    assert_eq!(stats.quarantined, 5, "{stats:?}");
    assert_eq!(stats.stored, good.len() as u64);
    let json: Vec<String> = docs.iter().map(|d| d.json.clone()).collect();
    let reference = reference_from_json(&tmp.path().join("reference"), &json);
    assert_same_graph(&db, &reference);
    let q = load_quarantine(db.store()).expect("quarantine");
    let mut kinds: Vec<&str> = q.iter().map(|e| e.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["base64", "json", "machine_mismatch", "topic", "zlib"]
    );
    for e in &q {
        assert!(!e.error.is_empty() && e.arrival_ms > 0 && !e.payload.is_empty());
    }
    let mm = q
        .iter()
        .find(|e| e.kind == "machine_mismatch")
        .expect("mismatch entry");
    assert_eq!(mm.machine, Some(b));
    let machines = load_machines(db.store()).expect("registry");
    let rejected = |id: u32| {
        machines
            .iter()
            .find(|m| m.machine == id)
            .map_or(0, |m| m.rejected)
    };
    assert_eq!((rejected(a), rejected(b)), (2, 2));
}
