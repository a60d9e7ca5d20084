//! A fold holds the writer only until it has named its new generation: the compaction that
//! drops what it emptied runs beside new writes, which are kept.
//!
//! Its own test binary: the pause is asked for through the environment (debug builds).

mod common;

use std::time::{Duration, Instant};

use provdb_storage::{Direction, ExternalId, RecordBatch, Store};

/// The vertex every edge goes into (`v{SINK}`): the others are `v0`..`v6`.
const SINK: usize = 7;

/// Edges `e{i}` for `i` in `range`, each from one of seven vertices into the sink.
fn edges(range: std::ops::Range<usize>) -> RecordBatch {
    RecordBatch {
        edges: range
            .map(|i| common::edge(i, "read", i % SINK, SINK))
            .collect(),
        ..Default::default()
    }
}

fn sink(store: &Store) -> provdb_storage::VertexId {
    store
        .vertex_id(&ExternalId::parse(&format!("v{SINK}")))
        .unwrap()
        .expect("stored")
}

#[test]
fn a_write_completes_while_the_fold_compacts_and_is_kept() {
    // SAFETY: this binary holds this one test, and no thread has started yet: nothing reads
    // the environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROVDB_TEST_PAUSE_FOLD_AT", "compacting")
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.write(&edges(0..500)).unwrap();
    assert!(!store.uses_adjacency_snapshot());

    std::thread::scope(|scope| {
        let fold = scope.spawn(|| store.fold_adjacency());
        // The fold names its generation before its compaction (paused two seconds there).
        let deadline = Instant::now() + Duration::from_secs(60);
        while !store.uses_adjacency_snapshot() {
            assert!(
                Instant::now() < deadline,
                "the fold never named its generation"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let summary = store.write(&edges(500..600)).unwrap();
        assert_eq!(summary.edges_added, 100);
        assert!(
            !fold.is_finished(),
            "the write waited for the fold's compaction"
        );
        fold.join().unwrap().unwrap();
    });

    let into_sink: std::collections::BTreeSet<_> = store
        .neighbours(sink(&store), Direction::In, &[])
        .map(|a| a.unwrap().edge)
        .collect();
    assert_eq!(into_sink.len(), 600, "every edge, folded or written beside");
    store.close().unwrap();

    // And after a reopen, which reads the snapshot and the tables from disk.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.neighbours(sink(&store), Direction::In, &[]).count(),
        600
    );
}
