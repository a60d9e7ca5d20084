//! The adjacency snapshot (`Store::fold_adjacency`, done by `Store::compact`): the fold moves the adjacency tables'
//! entries into the snapshot file; every store (writer, read-only, secondary) then reads
//! adjacency as the snapshot merged with the entries written since, and answers as the written
//! graph says, across later folds, prunes and backups; a damaged or missing file never yields
//! a wrong neighbour (an error naming the snapshot), and `check` names the damage.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use provdb_storage::*;

mod common;
use common::{
    edge, expected, open_damaged, read_only, secondary, type_ids, want, write_range, Written, TYPES,
};

/// The file of generation `n`.
fn snapshot_file(dir: &Path, n: u64) -> std::path::PathBuf {
    dir.join(format!("{ADJACENCY_SNAPSHOT_FILE_PREFIX}{n}.snapshot"))
}

/// Snapshot files (and leftovers of a fold) in `dir`, by name.
fn snapshot_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(ADJACENCY_SNAPSHOT_FILE_PREFIX))
        .collect();
    names.sort();
    names
}

/// Writes `edges` in two flushed batches and compacts (which folds: generation 1).
fn write_and_fold(dir: &Path, edges: &[Written]) {
    let store = Store::open(dir).unwrap();
    // Two batches, so that the compacted tables come from more than one flush.
    let half = edges.len() / 2;
    for range in [0..half, half..edges.len()] {
        write_range(&store, edges, range);
        store.flush().unwrap();
    }
    // Compacts, then folds.
    store.compact().unwrap();
    store.close().unwrap();
}

fn graph() -> impl Strategy<Value = Vec<Written>> {
    prop::collection::vec((0..TYPES.len(), 0..16usize, 0..16usize), 1..80)
}

/// Reads every vertex's adjacency in both directions, in `order`, and compares it with what
/// was written.
fn assert_reads_as_written(
    store: &Store,
    expected: &BTreeMap<(VertexId, u8), Vec<Adjacent>>,
    order: impl Iterator<Item = u64>,
) {
    let mut cursor = store.adjacency_cursor(Direction::Both, &[]);
    for v in order.map(VertexId) {
        cursor.restart(v);
        let got: Vec<Adjacent> = cursor.by_ref().map(|a| a.unwrap()).collect();
        assert_eq!(got, want(expected, v, Direction::Both, &[]), "{v:?}");
    }
}

/// Every direction and type filter of every vertex (and two past the last) answers as
/// `written` says, through one cursor per filter and through `neighbours`.
fn assert_every_scan_as_written(store: &Store, written: &[Written], type_filter: &[usize]) {
    let expected = expected(store, written);
    let types = type_ids(store, type_filter);
    let vertices = store.vertex_count().unwrap() + 2;
    for direction in [Direction::Out, Direction::In, Direction::Both] {
        let mut cursor = store.adjacency_cursor(direction, &types);
        for v in (0..vertices).map(VertexId) {
            cursor.restart(v);
            let got: Vec<Adjacent> = cursor.by_ref().map(|a| a.unwrap()).collect();
            assert_eq!(
                got,
                want(&expected, v, direction, &types),
                "{v:?} {direction:?}"
            );
            let all: Vec<Adjacent> = store
                .neighbours(v, direction, &[])
                .map(|a| a.unwrap())
                .collect();
            assert_eq!(
                all,
                want(&expected, v, direction, &[]),
                "{v:?} {direction:?}"
            );
        }
    }
}

#[test]
fn a_snapshot_of_many_pages_reads_as_written_cold_cached_and_out_of_order() {
    // Many pages (records and offsets cross page boundaries), and a hub whose record is
    // larger than a small record (read in chunks): read once cold, then again from the page
    // cache in the reverse order, then in a stride that makes pages evict one another.
    let mut edges: Vec<Written> = (0..6000)
        .map(|i| (i % 3, (i * 7) % 1500, (i * 13 + 5) % 1500))
        .collect();
    edges.extend((0..3000).map(|i| (i % 2, 1500, i % 1400)));
    let dir = tempfile::tempdir().unwrap();
    write_and_fold(dir.path(), &edges);
    assert_eq!(snapshot_files(dir.path()), ["provdb-adjacency.1.snapshot"]);
    let snapshot_bytes = std::fs::metadata(snapshot_file(dir.path(), 1))
        .unwrap()
        .len();
    assert!(snapshot_bytes > 8 * 4096, "{snapshot_bytes} bytes");
    let store = read_only(dir.path());
    assert!(store.uses_adjacency_snapshot());
    assert_eq!(store.format_version(), FORMAT_VERSION);
    let expected = expected(&store, &edges);
    let vertices = store.vertex_count().unwrap() + 2;
    assert_reads_as_written(&store, &expected, 0..vertices);
    assert_reads_as_written(&store, &expected, (0..vertices).rev());
    assert_reads_as_written(
        &store,
        &expected,
        (0..vertices).map(|i| (i * 389) % vertices),
    );
    assert!(store.check().unwrap().is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The graph written in chunks, with a fold after some of them: the writer (snapshot and
    /// non-empty tables), a secondary following it, and a read-only store opened at the end
    /// all read every scan as written, and `check` holds.
    #[test]
    fn folds_at_random_points_with_writes_after_them_read_as_written(
        edges in graph(),
        chunks in prop::collection::vec(any::<bool>(), 1..5),
        type_filter in prop::collection::vec(0..TYPES.len(), 0..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let own = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        let store = Store::open(&archive).unwrap();
        let follower = secondary(&archive, own.path());
        let step = edges.len().div_ceil(chunks.len());
        let mut written = 0;
        for fold in &chunks {
            let end = (written + step).min(edges.len());
            write_range(&store, &edges, written..end);
            written = end;
            if *fold {
                store.fold_adjacency().unwrap();
            }
            assert_every_scan_as_written(&store, &edges[..written], &type_filter);
            follower.catch_up().unwrap();
            prop_assert_eq!(follower.uses_adjacency_snapshot(), store.uses_adjacency_snapshot());
            assert_every_scan_as_written(&follower, &edges[..written], &type_filter);
        }
        write_range(&store, &edges, written..edges.len());
        prop_assert!(store.check().unwrap().is_ok());
        store.close().unwrap();
        let reader = read_only(&archive);
        assert_every_scan_as_written(&reader, &edges, &type_filter);
        prop_assert!(reader.check().unwrap().is_ok());
        // Only the generation named is left.
        let files = snapshot_files(&archive);
        let folds = chunks.iter().filter(|f| **f).count();
        if folds == 0 {
            prop_assert!(files.is_empty());
        } else {
            prop_assert_eq!(files, vec![format!("provdb-adjacency.{folds}.snapshot")]);
        }
    }
}

#[test]
fn a_compact_folds_the_edges_written_since_into_the_next_generation() {
    let dir = tempfile::tempdir().unwrap();
    let edges = [(0, 1, 2), (1, 2, 3), (0, 1, 3)];
    write_and_fold(dir.path(), &edges[..2]);
    let before = read_only(dir.path());
    let writer = Store::open(dir.path()).unwrap();
    assert!(writer.uses_adjacency_snapshot());
    write_range(&writer, &edges, 2..3);
    // Read with the snapshot's entries, by the writer and by a reader opened now.
    assert_every_scan_as_written(&writer, &edges, &[]);
    writer.flush().unwrap();
    let reader = read_only(dir.path());
    assert_every_scan_as_written(&reader, &edges, &[]);
    writer.compact().unwrap();
    assert_eq!(snapshot_files(dir.path()), ["provdb-adjacency.2.snapshot"]);
    assert_every_scan_as_written(&writer, &edges, &[]);
    writer.close().unwrap();
    // Stores opened before keep reading the generation they opened (its file is gone from
    // the folder, not from them).
    assert_every_scan_as_written(&before, &edges[..2], &[]);
    assert_every_scan_as_written(&reader, &edges, &[]);
    let after = read_only(dir.path());
    assert_every_scan_as_written(&after, &edges, &[]);
    assert!(after.check().unwrap().is_ok());
}

#[test]
fn compacting_the_tables_alone_does_not_fold() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let edges = [(0, 1, 2), (1, 2, 3)];
    write_range(&store, &edges, 0..2);
    store.compact_tables().unwrap();
    assert!(!store.uses_adjacency_snapshot());
    assert!(snapshot_files(dir.path()).is_empty());
    store.close().unwrap();
    let reader = read_only(dir.path());
    assert!(!reader.uses_adjacency_snapshot());
    assert_every_scan_as_written(&reader, &edges, &[]);
}

#[test]
fn only_a_writer_folds_and_a_version_1_archive_cannot() {
    let dir = tempfile::tempdir().unwrap();
    write_and_fold(dir.path(), &[(0, 1, 2)]);
    let reader = read_only(dir.path());
    assert!(matches!(reader.fold_adjacency(), Err(WriteError::ReadOnly)));
    drop(reader);

    // A version-1 archive: made by marking a new one so (its writes then keep no vertex ->
    // external id table, as the version-1 fixture's).
    let old = tempfile::tempdir().unwrap();
    {
        let store = Store::open(old.path()).unwrap();
        store.close().unwrap();
        let opts = rocksdb::Options::default();
        let tables = rocksdb::DB::list_cf(&opts, old.path()).unwrap();
        let raw = rocksdb::DB::open_cf(&opts, old.path(), tables).unwrap();
        let meta = raw.cf_handle("meta").unwrap();
        raw.put_cf(meta, b"format_version", 1u32.to_be_bytes())
            .unwrap();
        raw.flush_cf(meta).unwrap();
    }
    let store = Store::open(old.path()).unwrap();
    assert_eq!(store.format_version(), 1);
    let err = store.fold_adjacency().unwrap_err();
    assert!(
        matches!(err, WriteError::SnapshotNeedsFormat { found: 1 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("version 1"), "{err}");
    // `compact` compacts it and leaves it unfolded, at version 1.
    store.compact().unwrap();
    assert!(!store.uses_adjacency_snapshot());
    assert_eq!(store.format_version(), 1);
    store.close().unwrap();
}

#[test]
fn backups_of_a_folded_archive_read_from_their_own_copy() {
    let dir = tempfile::tempdir().unwrap();
    let edges: Vec<Written> = (0..40).map(|i| (i % 3, i % 5, (i * 3 + 1) % 9)).collect();
    let archive = dir.path().join("archive");
    write_and_fold(&archive, &edges[..30]);
    let store = Store::open(&archive).unwrap();
    write_range(&store, &edges, 30..40);
    store.backup_to(&dir.path().join("backup")).unwrap();
    // A secondary's copy is made record by record, with the snapshot its view names.
    store.flush().unwrap();
    let own = tempfile::tempdir().unwrap();
    let follower = secondary(&archive, own.path());
    follower.catch_up().unwrap();
    follower.backup_to(&dir.path().join("backup-2")).unwrap();
    // Folded again, the archive's generation 1 is removed: the copies hold their own.
    store.compact().unwrap();
    store.close().unwrap();
    assert!(!snapshot_file(&archive, 1).exists());
    for name in ["backup", "backup-2"] {
        let path = dir.path().join(name);
        assert_eq!(
            snapshot_files(&path),
            ["provdb-adjacency.1.snapshot"],
            "{name}"
        );
        let copy = read_only(&path);
        assert!(copy.uses_adjacency_snapshot());
        assert_every_scan_as_written(&copy, &edges, &[]);
        assert!(copy.check().unwrap().is_ok(), "{name}");
    }
}

#[test]
fn a_prune_unfolds_deletes_and_folds_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Edges of machine 1 and machine 2; machine 2's go.
    let batch = |range: std::ops::Range<usize>, machine: u32| RecordBatch {
        edges: range
            .map(|i| {
                let mut e = edge(i, TYPES[i % 3], i % 4, 10 + machine as usize);
                e.placement.machine = Some(machine);
                e
            })
            .collect(),
        ..Default::default()
    };
    store.write(&batch(0..6, 1)).unwrap();
    store.write(&batch(6..10, 2)).unwrap();
    store.fold_adjacency().unwrap();
    let report = store.prune(PruneSelection::Machine(2), false).unwrap();
    assert_eq!(report.edges, 4);
    assert!(store.uses_adjacency_snapshot());
    assert_eq!(snapshot_files(dir.path()), ["provdb-adjacency.2.snapshot"]);
    let kept: Vec<Written> = (0..6).map(|i| (i % 3, i % 4, 11)).collect();
    assert_every_scan_as_written(&store, &kept, &[]);
    assert!(store.check().unwrap().is_ok());
    store.close().unwrap();
    let reader = read_only(dir.path());
    assert_every_scan_as_written(&reader, &kept, &[]);
    assert!(reader.check().unwrap().is_ok());
}

#[test]
fn an_empty_archive_folds_into_an_empty_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.fold_adjacency().unwrap() > 0);
    store.close().unwrap();
    let reader = read_only(dir.path());
    assert!(reader.uses_adjacency_snapshot());
    assert_eq!(
        reader.neighbours(VertexId(0), Direction::Both, &[]).count(),
        0
    );
    assert!(reader.check().unwrap().is_ok());
}

#[test]
fn leftovers_of_a_fold_cut_short_are_removed_and_a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let edges = [(0, 1, 2), (2, 3, 1)];
    write_and_fold(dir.path(), &edges);
    // A generation written but never named, and the temporary files of a write cut short.
    let named = std::fs::read(snapshot_file(dir.path(), 1)).unwrap();
    std::fs::write(snapshot_file(dir.path(), 2), &named).unwrap();
    std::fs::write(dir.path().join("provdb-adjacency.3.snapshot.tmp"), b"x").unwrap();
    assert_every_scan_as_written(&read_only(dir.path()), &edges, &[]);
    Store::open(dir.path()).unwrap().close().unwrap();
    assert_eq!(snapshot_files(dir.path()), ["provdb-adjacency.1.snapshot"]);

    // The named file gone: every open fails, naming it; nothing falls back to the tables.
    std::fs::remove_file(snapshot_file(dir.path(), 1)).unwrap();
    for read_only in [true, false] {
        let options = StoreOptions {
            mode: if read_only {
                OpenMode::ReadOnly
            } else {
                OpenMode::ReadWrite
            },
            ..Default::default()
        };
        let err = Store::open_with(dir.path(), options).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(
                &err,
                OpenError::Read(ReadError::Corruption { what, .. }) if *what == "adjacency snapshot"
            ),
            "{err:?}"
        );
        assert!(
            message.contains("provdb-adjacency.1.snapshot") && message.contains("missing"),
            "{message}"
        );
    }
}

#[test]
fn the_snapshot_counts_in_the_archive_size() {
    let dir = tempfile::tempdir().unwrap();
    write_and_fold(dir.path(), &[(0, 1, 2), (2, 3, 1)]);
    let store = read_only(dir.path());
    let sizes = store.disk_size_by_column_family().unwrap();
    let (name, size) = sizes.last().unwrap();
    assert_eq!(name, ADJACENCY_SNAPSHOT_SIZE_NAME);
    let on_disk = std::fs::metadata(snapshot_file(dir.path(), 1))
        .unwrap()
        .len();
    assert_eq!(*size, on_disk);
    assert!(store.disk_size().unwrap() >= on_disk);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any byte of the file flipped, or the file cut short: the open fails, or every read
    /// either answers as written or fails with a corruption error naming the snapshot; never
    /// a wrong neighbour, never a panic. `check` reports the damage.
    #[test]
    fn a_damaged_snapshot_never_answers_wrongly(
        position in any::<prop::sample::Index>(),
        flip in 1..=255u8,
        cut in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let edges: Vec<Written> = (0..60).map(|i| (i % 3, i % 7, (i * 5 + 1) % 11)).collect();
        write_and_fold(dir.path(), &edges);
        // What every read must say, worked out before the damage (the file now also finds
        // the vertices of the ids this uses).
        let (expected, vertex_count) = {
            let store = read_only(dir.path());
            (expected(&store, &edges), store.vertex_count().unwrap())
        };
        let path = snapshot_file(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = position.index(bytes.len());
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] ^= flip;
        }
        std::fs::write(&path, &bytes).unwrap();

        let Some(store) = open_damaged(dir.path())? else {
            return Ok(());
        };
        let mut errors = 0;
        for v in (0..vertex_count).map(VertexId) {
            for direction in [Direction::Out, Direction::In, Direction::Both] {
                let got: Result<Vec<Adjacent>, ReadError> = store.neighbours(v, direction, &[]).collect();
                match got {
                    Ok(list) => prop_assert_eq!(&list, &want(&expected, v, direction, &[])),
                    Err(ReadError::Corruption { what, .. }) => {
                        prop_assert_eq!(what, "adjacency snapshot");
                        errors += 1;
                    }
                    Err(e) => prop_assert!(false, "unexpected error {}", e),
                }
            }
        }
        let report = store.check().unwrap();
        prop_assert!(!report.is_ok(), "check found nothing ({} read errors)", errors);
        prop_assert!(report.problems.iter().any(|p| p.invariant == "adjacency snapshot"));
    }
}
