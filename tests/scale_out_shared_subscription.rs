//! Two `provdb serve` nodes in one MQTT shared-subscription group against one mosquitto split
//! a fleet: each stores a disjoint part, together exactly the fleet, and a kill -9 of one node
//! loses nothing. A federated query over both archives answers as one archive would.

mod common;
mod mqtt_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mqtt_support::*;
use provdb::simulate::SimulationOptions;

/// External ids of every edge of an archive being written (read-only view).
fn edge_ids(db: &Path) -> BTreeSet<String> {
    let text = common::stdout_of(
        &common::provdb(db)
            .args(["query", "--format", "csv", "--max-rows", "10000000"])
            .arg("() -[e]-> () | return e.id")
            .output()
            .unwrap(),
    );
    text.lines().skip(1).map(str::to_owned).collect()
}

fn terminate(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "graceful shutdown failed: {status:?}");
}

#[test]
fn two_nodes_split_a_fleet_and_lose_nothing_when_one_is_killed() {
    let Some(broker) = Mosquitto::start(false) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let reference_dir = tmp.path().join("reference");
    let SimulatedFleet {
        messages,
        reference,
    } = SimulatedFleet::new(
        &reference_dir,
        &SimulationOptions {
            seed: 5,
            machines: 6,
            documents_per_machine: 120,
            records_per_document: 40,
        },
    );
    let expected = reference.stats().unwrap();
    reference.close().unwrap();
    let expected_ids = edge_ids(&reference_dir);
    assert_eq!(expected_ids.len() as u64, expected.edges);

    let (a, b) = (tmp.path().join("node-a"), tmp.path().join("node-b"));
    let node = |db: &Path, name: &str| {
        spawn_serve_with(
            db,
            &broker,
            &["--share-group", "fleet", "--client-id", name],
        )
    };
    let node_a = node(&a, "node-a");
    let node_b = node(&b, "node-b");
    let url = broker.url();
    let publisher = publish_in_background(url, messages.clone(), |o| {
        o.rate = Some(300.0);
        o.client_id = "fleet-publisher".to_owned();
    });
    // Kill node B mid-stream, then restart it: its persistent session gets what it missed.
    std::thread::sleep(Duration::from_millis(800));
    let mut node_b = node_b;
    node_b.kill().expect("SIGKILL node b");
    let _ = node_b.wait();
    let partial = edges_stored(&a) + edges_stored(&b);
    assert!(partial < expected.edges, "the kill came too late");
    std::thread::sleep(Duration::from_millis(300));
    let node_b = node(&b, "node-b");
    assert_eq!(
        publisher.join().unwrap().unwrap().messages,
        messages.len() as u64
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    while edges_stored(&a) + edges_stored(&b) < expected.edges {
        assert!(
            Instant::now() < deadline,
            "the nodes did not catch up in 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    terminate(node_a);
    terminate(node_b);

    let (ids_a, ids_b) = (edge_ids(&a), edge_ids(&b));
    assert!(
        !ids_a.is_empty() && !ids_b.is_empty(),
        "one node got nothing"
    );
    assert!(
        ids_a.is_disjoint(&ids_b),
        "an edge was stored by both nodes"
    );
    let union: BTreeSet<String> = ids_a.union(&ids_b).cloned().collect();
    assert_eq!(union, expected_ids);

    // One query over both archives: edges per type as in the reference.
    for (edge_type, n) in &expected.edge_types {
        let q = format!("() -[e:{edge_type}]-> () | count");
        let out = common::stdout_of(
            &common::provdb(&a)
                .arg("--db")
                .arg(&b)
                .args(["query", "--format", "csv", &q])
                .output()
                .unwrap(),
        );
        assert_eq!(out.lines().nth(1), Some(n.to_string().as_str()), "{q}");
    }
}
