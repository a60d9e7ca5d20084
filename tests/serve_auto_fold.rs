//! `provdb serve` folds the adjacency tables into the snapshot on its own
//! (`--auto-fold-edges`) while it ingests, and loses nothing doing so: the archive it leaves
//! reads through a snapshot and holds the graph an offline import of the same data holds.

mod common;
mod mqtt_support;

use std::collections::BTreeSet;
use std::time::Duration;

use mqtt_support::*;
use provdb::ingest::BrokerUrl;
use provdb::simulate::SimulationOptions;
use provdb::Database;
use provdb_storage::Direction;

/// Every edge of `db` as (source external id, edge type, destination external id), read
/// through the adjacency (snapshot and tables), not through the edge records.
fn adjacency_by_external_id(db: &Database) -> BTreeSet<(String, String, String)> {
    let store = db.store();
    let mut out = BTreeSet::new();
    for v in store.scan_vertices() {
        let v = v.expect("vertex");
        for adjacent in store.neighbours(v.id, Direction::Out, &[]) {
            let adjacent = adjacent.expect("adjacency");
            let neighbour = store
                .vertex_external_id(adjacent.neighbour)
                .expect("read")
                .expect("the neighbour exists");
            let edge_type = store
                .edge_type_name(adjacent.edge_type)
                .expect("a known edge type");
            out.insert((
                v.ext_id.to_string(),
                edge_type.to_string(),
                neighbour.to_string(),
            ));
        }
    }
    out
}

/// A simulated fleet (its reference archive under `dir`) and its (vertices, edges).
fn fleet(dir: &std::path::Path, seed: u64, machines: u32) -> (SimulatedFleet, (u64, u64)) {
    let fleet = SimulatedFleet::new(
        &dir.join("reference"),
        &SimulationOptions {
            seed,
            machines,
            documents_per_machine: 30,
            records_per_document: 40,
        },
    );
    let stats = fleet.reference.stats().expect("stats");
    let counts = (stats.vertices, stats.edges);
    (fleet, counts)
}

/// Starts `provdb serve` on `db` with `args`, looking at its fold backlog every 100 ms.
fn serve(db: &std::path::Path, args: &[&str]) -> (ServeProcess, BrokerUrl) {
    let listen = format!("127.0.0.1:{}", free_port());
    let url = BrokerUrl::parse(&format!("mqtt://{listen}")).expect("url");
    let mut all = vec!["--listen", listen.as_str()];
    all.extend_from_slice(args);
    let process = ServeProcess::start(
        db,
        &all,
        &[
            ("PROVDB_TEST_FOLD_CHECK_MS", "100"),
            ("RUST_LOG", "provdb=info"),
        ],
    );
    (process, url)
}

#[test]
fn serve_folds_as_it_ingests_and_keeps_every_edge() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("served");
    let (fleet, expected_counts) = fleet(tmp.path(), 11, 2);
    let expected_edges = adjacency_by_external_id(&fleet.reference);
    assert!(expected_edges.len() > 200, "the fleet has edges to fold");

    let (serve, url) = serve(&db, &["--auto-fold-edges", "50"]);
    let (first, rest) = fleet.messages.split_at(fleet.messages.len() / 2);
    assert_eq!(publish(&url, first, 1), first.len() as u64);
    // More than 50 edges unfolded and no snapshot yet: the service folds on its own.
    serve.wait_for_line(
        |l| l.contains("into the adjacency snapshot"),
        Duration::from_secs(60),
    );
    // Written after the fold: in the tables, read beside the snapshot's.
    assert_eq!(publish(&url, rest, 1), rest.len() as u64);
    wait_for_counts(&db, expected_counts, Duration::from_secs(60));
    let (status, log) = serve.stop();
    assert!(status.success(), "serve stopped with {status:?}\n{log}");

    let served = Database::open(&db).expect("open the served archive");
    assert!(
        served.store().uses_adjacency_snapshot(),
        "the archive reads through a snapshot after serve folded"
    );
    let backlog = served.store().fold_backlog().expect("backlog");
    assert!(backlog.folded_edges > 0, "{backlog:?}");
    assert_same_graph(&served, &fleet.reference);
    assert_eq!(adjacency_by_external_id(&served), expected_edges);
    served.close().expect("close");
}

#[test]
fn serve_does_not_fold_when_told_not_to() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("served");
    let (fleet, expected_counts) = fleet(tmp.path(), 12, 1);
    let (serve, url) = serve(&db, &["--auto-fold-edges", "0"]);
    assert_eq!(
        publish(&url, &fleet.messages, 1),
        fleet.messages.len() as u64
    );
    wait_for_counts(&db, expected_counts, Duration::from_secs(60));
    // Several check intervals pass with far more than 50 edges unfolded.
    std::thread::sleep(Duration::from_millis(500));
    let (status, log) = serve.stop();
    assert!(status.success(), "serve stopped with {status:?}\n{log}");
    let served = Database::open(&db).expect("open the served archive");
    assert!(!served.store().uses_adjacency_snapshot());
    assert_same_graph(&served, &fleet.reference);
    served.close().expect("close");
}
