//! The compaction pace: at the bulk pace, level-0 files (one per flush) are not merged until
//! 32 of them wait; back at the live pace, the background merges bring them under 4 again,
//! and every write stays readable throughout. An open starts at the live pace unless its
//! options name another.

use std::time::{Duration, Instant};

use provdb_storage::*;

mod common;
use common::{edge, read_only, TYPES};

/// Writes edges `e{round * 50 + i}` (a chain through new vertices) and flushes: one level-0
/// file per table written.
fn write_and_flush(store: &Store, round: usize) {
    let batch = RecordBatch {
        edges: (round * 50..round * 50 + 50)
            .map(|i| edge(i, TYPES[i % 3], i, i + 1))
            .collect(),
        ..Default::default()
    };
    store.write(&batch).unwrap();
    store.flush().unwrap();
}

/// Waits until the store holds fewer than 4 level-0 files in every table (the background
/// merges of the live pace ran); the count it saw last if they did not within a minute.
fn merged_within_a_minute(store: &Store) -> Result<(), u64> {
    let started = Instant::now();
    loop {
        let files = store.level0_files().unwrap();
        if files < 4 {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(files);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_every_edge_readable(store: &Store, rounds: usize) {
    for i in 0..rounds * 50 {
        let id = store
            .edge_id(&ExternalId::parse(&format!("e{i}")))
            .unwrap()
            .unwrap_or_else(|| panic!("e{i} lost"));
        let e = store.edge(id).unwrap().unwrap();
        let src = store.vertex_external_id(e.src).unwrap().unwrap();
        assert_eq!(src, ExternalId::parse(&format!("v{i}")));
    }
}

/// On an empty store at the bulk pace: twelve flushes stay twelve level-0 files; once the
/// pace is set to live, one more write and the background merges bring them under 4.
fn flushes_wait_at_the_bulk_pace_then_merge_at_the_live_one(store: &Store) {
    assert_eq!(store.compaction_pace(), CompactionPace::Bulk);
    for round in 0..12 {
        write_and_flush(store, round);
    }
    // Twelve flushes, twelve files in the tables every batch writes: none merged, though the
    // live pace merges at 4.
    assert_eq!(store.level0_files().unwrap(), 12);
    assert_every_edge_readable(store, 12);

    store.set_compaction_pace(CompactionPace::Live).unwrap();
    // Writes go on; the files left are merged in the background.
    write_and_flush(store, 12);
    assert_eq!(merged_within_a_minute(store), Ok(()));
    assert_every_edge_readable(store, 13);
}

#[test]
fn the_bulk_pace_keeps_flushes_unmerged_and_the_live_pace_merges_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.compaction_pace(), CompactionPace::Live);
    store.set_compaction_pace(CompactionPace::Bulk).unwrap();
    flushes_wait_at_the_bulk_pace_then_merge_at_the_live_one(&store);
    store.close().unwrap();

    // The archive opens at the live pace whatever pace it was closed at, and reads whole.
    let store = Store::open(dir.path()).unwrap();
    store.set_compaction_pace(CompactionPace::Bulk).unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.compaction_pace(), CompactionPace::Live);
    for round in 13..21 {
        write_and_flush(&store, round);
    }
    assert_eq!(merged_within_a_minute(&store), Ok(()));
    assert_every_edge_readable(&store, 21);
    store.close().unwrap();
}

#[test]
fn a_store_opened_at_the_bulk_pace_keeps_flushes_unmerged_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let bulk = StoreOptions {
        compaction_pace: CompactionPace::Bulk,
        ..Default::default()
    };
    let store = Store::open_with(dir.path(), bulk.clone()).unwrap();
    // RocksDB's options of the open, not only the pace reported.
    flushes_wait_at_the_bulk_pace_then_merge_at_the_live_one(&store);
    store.close().unwrap();

    // The pace is the open's: a default open is live again, a reader's always is.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.compaction_pace(), CompactionPace::Live);
    store.close().unwrap();
    let reader = Store::open_with(
        dir.path(),
        StoreOptions {
            mode: OpenMode::ReadOnly,
            ..bulk
        },
    )
    .unwrap();
    assert_eq!(reader.compaction_pace(), CompactionPace::Live);
    assert_every_edge_readable(&reader, 13);
}

#[test]
fn a_reader_ignores_the_pace() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    write_and_flush(&store, 0);
    store.close().unwrap();
    let reader = read_only(dir.path());
    reader.set_compaction_pace(CompactionPace::Bulk).unwrap();
    assert_eq!(reader.compaction_pace(), CompactionPace::Live);
    assert_every_edge_readable(&reader, 1);
}
