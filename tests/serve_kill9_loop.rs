//! kill -9 loops: `provdb serve` is killed again and again in mid-stream while a QoS 1
//! publisher that keeps its session (as camflowd does) sends a simulated fleet; after the
//! last restart the archive equals the offline import of the same documents, vertex for
//! vertex and edge for edge. With the embedded listener this holds only because a publish is
//! acknowledged after it is durable: an acknowledged message is never resent.
//!
//! A few cycles run in the suite; the long run is
//! `PROVDB_KILL9_CYCLES=60 cargo test --release --test serve_kill9_loop -- --nocapture`.

mod common;
mod mqtt_support;

use std::time::{Duration, Instant};

use mqtt_support::*;
use provdb::ingest::BrokerUrl;
use provdb::simulate::SimulationOptions;
use provdb::Database;

fn cycles() -> u32 {
    std::env::var("PROVDB_KILL9_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// Edges stored so far (0 while the archive cannot be opened).
fn edges_stored(db: &std::path::Path) -> u64 {
    Database::open_read_only(db)
        .and_then(|d| d.stats())
        .map_or(0, |s| s.edges)
}

/// Runs the loop: `serve_args` start the service, `publish_to` is where the publisher sends.
/// `acked_means_stored`: the publisher's acknowledgements come from provdb itself (embedded
/// listener), not from a broker in between.
fn kill_loop(name: &str, serve_args: &[&str], publish_to: BrokerUrl, acked_means_stored: bool) {
    let cycles = cycles();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db_path = tmp.path().join("served");
    let SimulatedFleet {
        messages,
        reference,
    } = SimulatedFleet::new(
        &tmp.path().join("reference"),
        &SimulationOptions {
            seed: 21,
            machines: 4,
            documents_per_machine: (u64::from(cycles) * 50).max(150),
            records_per_document: 40,
        },
    );
    let expected_edges = reference.stats().expect("stats").edges;

    let mut serve = ServeProcess::start(&db_path, serve_args, &[("RUST_LOG", "provdb=debug")]);
    let total = messages.len();
    let publisher = publish_in_background(publish_to, messages, |o| {
        // About 2.5 s of traffic per kill cycle.
        o.rate = Some(80.0);
        o.persistent_session = true;
        o.client_id = "kill9-loop-publisher".to_owned();
        o.ack_timeout = Duration::from_secs(300);
    });
    let started = Instant::now();
    let mut at_kill = Vec::new();
    for cycle in 0..cycles {
        // Kill at a point that moves within each cycle, so kills land in every stage.
        let wait = 700 + u64::from(cycle * 397 % 1300);
        std::thread::sleep(Duration::from_millis(wait));
        assert!(
            !publisher.is_finished(),
            "the publisher finished before kill {cycle}: make the stream longer"
        );
        serve.kill9();
        at_kill.push(edges_stored(&db_path));
        serve = ServeProcess::start(&db_path, serve_args, &[("RUST_LOG", "provdb=debug")]);
    }
    let report = match publisher.join().expect("publisher thread") {
        Ok(report) => report,
        Err(e) => panic!(
            "not every message was acknowledged: {e}\nedges stored: {} of {expected_edges}; \
             edges at each kill: {at_kill:?}\nlog of the running service:\n{}",
            edges_stored(&db_path),
            serve.log()
        ),
    };
    assert_eq!(report.messages, total as u64);
    // With the embedded listener every acknowledged message is durable: the archive must hold
    // them all now (nothing is resent after its acknowledgement). Behind a broker, provdb
    // catches up on what the broker holds.
    let stored_when_acked = edges_stored(&db_path);
    if !acked_means_stored {
        let deadline = Instant::now() + Duration::from_secs(90);
        while edges_stored(&db_path) < expected_edges {
            assert!(
                Instant::now() < deadline,
                "the service did not catch up in 90 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let (status, log) = serve.stop();
    assert!(status.success(), "graceful stop failed: {status:?}\n{log}");
    eprintln!(
        "{name}: {cycles} kills in {:.1} s; edges stored at each kill: {at_kill:?} of {expected_edges}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        at_kill.first().is_some_and(|e| *e < expected_edges),
        "the first kill came too late to test anything"
    );
    if acked_means_stored {
        assert_eq!(
            stored_when_acked, expected_edges,
            "edges durable when the publisher had every acknowledgement"
        );
    }
    let db = Database::open(&db_path).expect("reopen");
    assert_same_graph(&db, &reference);
}

#[test]
fn embedded_listener_kill_9_loop_loses_nothing_acknowledged() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = BrokerUrl::parse(&format!("mqtt://{listen}")).expect("url");
    kill_loop("embedded", &["--listen", &listen], url, true);
}

#[test]
fn mosquitto_kill_9_loop_loses_nothing_acknowledged() {
    let Some(broker) = Mosquitto::start(true) else {
        return;
    };
    let url = broker.url().to_string();
    kill_loop(
        "mosquitto",
        &["--broker", &url, "--client-id", "kill9-loop-service"],
        broker.url(),
        false,
    );
}
