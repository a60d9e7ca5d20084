//! A fold's compaction, which drops the folded edges' entries from the tables, runs beside new
//! writes, which are kept; until it has, reads meet those entries in the snapshot and in the
//! tables, and yield them once.
//!
//! Its own test binary: the pause is asked for through the environment (debug builds).

mod common;

use std::time::{Duration, Instant};

use provdb_storage::{Direction, Store};

#[test]
fn a_write_completes_while_the_fold_compacts_and_is_kept() {
    common::pause_folds_at("compacting");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.write(&common::fan_in(0..500)).unwrap();
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
        let summary = store.write(&common::fan_in(500..600)).unwrap();
        assert_eq!(summary.edges_added, 100);
        // Counted as yielded: the 500 folded entries are in the snapshot and still in the
        // tables.
        assert_eq!(
            store
                .neighbours(common::fan_in_sink(&store), Direction::In, &[])
                .count(),
            600
        );
        assert!(
            !fold.is_finished(),
            "the write waited for the fold's compaction"
        );
        fold.join().unwrap().unwrap();
    });

    let into_sink: std::collections::BTreeSet<_> = store
        .neighbours(common::fan_in_sink(&store), Direction::In, &[])
        .map(|a| a.unwrap().edge)
        .collect();
    assert_eq!(into_sink.len(), 600, "every edge, folded or written beside");
    store.close().unwrap();

    // And after a reopen, which reads the snapshot and the tables from disk.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store
            .neighbours(common::fan_in_sink(&store), Direction::In, &[])
            .count(),
        600
    );
}
