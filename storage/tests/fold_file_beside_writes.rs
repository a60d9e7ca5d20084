//! A fold writes its new generation without the writer: a write made while the file is being
//! written completes before the fold names it, stays out of it (its edges are above the fold's
//! mark) and is kept; the folded edges' entries leave the tables at the fold's compaction.
//!
//! Its own test binary: the pause is asked for through the environment (debug builds).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use provdb_storage::{Direction, FoldBacklog, Store};

fn edges_into_sink(store: &Store) -> usize {
    let sink = common::fan_in_sink(store);
    // Counted as yielded: an entry in the snapshot and in the tables must come once.
    store.neighbours(sink, Direction::In, &[]).count()
}

/// Table files in the archive's folder (RocksDB's `*.sst`).
fn table_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sst")
        })
        .count()
}

/// Entries of each adjacency table, read with RocksDB itself (the store reads them merged
/// with the snapshot's).
fn adjacency_table_entries(dir: &Path) -> [usize; 2] {
    let opts = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&opts, dir).unwrap();
    let db = rocksdb::DB::open_cf_for_read_only(&opts, dir, &names, false).unwrap();
    ["out_adjacency", "in_adjacency"].map(|name| {
        db.iterator_cf(db.cf_handle(name).unwrap(), rocksdb::IteratorMode::Start)
            .inspect(|entry| assert!(entry.is_ok(), "{entry:?}"))
            .count()
    })
}

#[test]
fn a_write_completes_while_the_fold_writes_its_file_and_stays_out_of_it() {
    common::pause_folds_at("writing");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.write(&common::fan_in(0..500)).unwrap();
    assert_eq!(table_files(dir.path()), 0, "written to the memtables only");

    std::thread::scope(|scope| {
        let fold = scope.spawn(|| store.fold_adjacency());
        // The fold's plan flushes what it covers, then releases the writer, and the fold
        // pauses (two seconds) before it writes its file.
        let deadline = Instant::now() + Duration::from_secs(60);
        while table_files(dir.path()) == 0 {
            assert!(Instant::now() < deadline, "the fold never flushed");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(100));
        let summary = store.write(&common::fan_in(500..600)).unwrap();
        assert_eq!(summary.edges_added, 100);
        assert!(
            !store.uses_adjacency_snapshot(),
            "the write waited until the fold had written and named its file"
        );
        fold.join().unwrap().unwrap();
    });
    assert!(store.uses_adjacency_snapshot());
    assert_eq!(
        store.fold_backlog().unwrap(),
        FoldBacklog {
            folded_edges: 500,
            unfolded_edges: 100
        },
        "the fold covers what was committed when it planned, not the write beside it"
    );
    assert_eq!(edges_into_sink(&store), 600);
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{report:?}");
    store.close().unwrap();

    // The fold's compaction dropped the folded entries from the tables, and kept the 100
    // written beside it.
    assert_eq!(adjacency_table_entries(dir.path()), [100, 100]);

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(edges_into_sink(&store), 600);
    // The next fold takes them in.
    store.fold_adjacency().unwrap();
    assert_eq!(
        store.fold_backlog().unwrap(),
        FoldBacklog {
            folded_edges: 600,
            unfolded_edges: 0
        }
    );
    assert_eq!(edges_into_sink(&store), 600);
    store.close().unwrap();
    assert_eq!(adjacency_table_entries(dir.path()), [0, 0]);
}
