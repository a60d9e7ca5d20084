//! The adjacency snapshot (`Store::write_adjacency_snapshot`): a store opened read-only on the
//! state it was written from reads adjacency from it and answers as the written graph says;
//! any later write makes it stale and unused; a damaged file never yields a wrong neighbour
//! (an error, or the column families), and `check` names the damage.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use provdb_storage::*;

mod common;
use common::{edge, expected, read_only, type_ids, want, Written, TYPES};

const SNAPSHOT_FILE: &str = ADJACENCY_SNAPSHOT_FILE_NAME;

fn write_and_compact(dir: &Path, edges: &[Written]) {
    let store = Store::open(dir).unwrap();
    // Two batches, so that the compacted tables come from more than one flush.
    let half = edges.len() / 2;
    for range in [0..half, half..edges.len()] {
        let batch = RecordBatch {
            edges: range
                .map(|i| edge(i, TYPES[edges[i].0], edges[i].1, edges[i].2))
                .collect(),
            ..Default::default()
        };
        store.write(&batch).unwrap();
        store.flush().unwrap();
    }
    store.compact().unwrap();
    store.write_adjacency_snapshot().unwrap();
    store.close().unwrap();
}

/// Opens the archive for writing, writes one edge and closes it.
fn write_edge(dir: &Path, e: EdgeInput) {
    let writer = Store::open(dir).unwrap();
    writer
        .write(&RecordBatch {
            edges: vec![e],
            ..Default::default()
        })
        .unwrap();
    writer.close().unwrap();
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
    write_and_compact(dir.path(), &edges);
    let snapshot_bytes = std::fs::metadata(dir.path().join(SNAPSHOT_FILE))
        .unwrap()
        .len();
    assert!(snapshot_bytes > 8 * 4096, "{snapshot_bytes} bytes");
    let store = read_only(dir.path());
    assert!(store.uses_adjacency_snapshot());
    let expected = expected(&store, &edges);
    let vertices = store.vertex_count().unwrap() + 2;
    assert_reads_as_written(&store, &expected, 0..vertices);
    assert_reads_as_written(&store, &expected, (0..vertices).rev());
    assert_reads_as_written(
        &store,
        &expected,
        (0..vertices).map(|i| (i * 389) % vertices),
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn a_compacted_archive_reads_adjacency_from_its_snapshot_as_written(
        edges in graph(),
        type_filter in prop::collection::vec(0..TYPES.len(), 0..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_and_compact(dir.path(), &edges);
        let store = read_only(dir.path());
        prop_assert!(store.uses_adjacency_snapshot());
        let expected = expected(&store, &edges);
        let types = type_ids(&store, &type_filter);
        // Two ids past the last vertex: no edges.
        let vertices = store.vertex_count().unwrap() + 2;
        for direction in [Direction::Out, Direction::In, Direction::Both] {
            let mut cursor = store.adjacency_cursor(direction, &types);
            for v in (0..vertices).map(VertexId) {
                cursor.restart(v);
                let got: Vec<Adjacent> = cursor.by_ref().map(|a| a.unwrap()).collect();
                prop_assert_eq!(&got, &want(&expected, v, direction, &types), "{:?} {:?}", v, direction);
                let all: Vec<Adjacent> = store.neighbours(v, direction, &[]).map(|a| a.unwrap()).collect();
                prop_assert_eq!(&all, &want(&expected, v, direction, &[]));
            }
        }
        prop_assert!(store.check().unwrap().is_ok());
    }
}

#[test]
fn a_write_after_compact_leaves_the_snapshot_unused_and_the_new_edge_read() {
    let dir = tempfile::tempdir().unwrap();
    let edges = [(0, 1, 2), (1, 2, 3)];
    write_and_compact(dir.path(), &edges);
    let before = read_only(dir.path());
    assert!(before.uses_adjacency_snapshot());
    // Opened for writing, a store reads the tables (it may write the next moment).
    let writer = Store::open(dir.path()).unwrap();
    assert!(!writer.uses_adjacency_snapshot());
    writer.close().unwrap();
    write_edge(dir.path(), edge(2, "read", 1, 3));
    // The writer removed the snapshot its write made stale.
    assert!(!dir.path().join(SNAPSHOT_FILE).exists());
    let after = read_only(dir.path());
    assert!(!after.uses_adjacency_snapshot());
    let v1 = after.vertex_id(&ExternalId::parse("v1")).unwrap().unwrap();
    let neighbours: Vec<VertexId> = after
        .neighbours(v1, Direction::Out, &[])
        .map(|a| a.unwrap().neighbour)
        .collect();
    assert_eq!(neighbours.len(), 2, "v1 -> v2 and the new v1 -> v3");
    // The view opened before the write still answers from the snapshot, as of its state.
    let old: Vec<Adjacent> = before
        .neighbours(v1, Direction::Out, &[])
        .map(|a| a.unwrap())
        .collect();
    assert_eq!(old.len(), 1);
    // Writing one again makes it of the new state.
    let writer = Store::open(dir.path()).unwrap();
    writer.compact().unwrap();
    writer.write_adjacency_snapshot().unwrap();
    writer.close().unwrap();
    let again = read_only(dir.path());
    assert!(again.uses_adjacency_snapshot());
    assert_eq!(again.neighbours(v1, Direction::Out, &[]).count(), 2);
    assert!(again.check().unwrap().is_ok());
}

#[test]
fn only_a_writer_writes_a_snapshot_and_compacting_keeps_a_current_one() {
    let dir = tempfile::tempdir().unwrap();
    write_and_compact(dir.path(), &[(0, 1, 2)]);
    let reader = read_only(dir.path());
    assert!(matches!(
        reader.write_adjacency_snapshot(),
        Err(WriteError::ReadOnly)
    ));
    drop(reader);
    // Nothing written since: compacting again leaves the snapshot in use.
    let writer = Store::open(dir.path()).unwrap();
    writer.compact().unwrap();
    writer.close().unwrap();
    assert!(read_only(dir.path()).uses_adjacency_snapshot());
}

#[test]
fn a_backup_of_a_snapshotted_archive_reads_from_its_own_copy() {
    let dir = tempfile::tempdir().unwrap();
    let edges: Vec<Written> = (0..40).map(|i| (i % 3, i % 5, (i * 3 + 1) % 9)).collect();
    let archive = dir.path().join("archive");
    write_and_compact(&archive, &edges);
    let backup = dir.path().join("backup");
    let store = Store::open(&archive).unwrap();
    store.backup_to(&backup).unwrap();
    store.close().unwrap();
    // The copy is the archive's own file or a copy of it, not a path into the archive.
    std::fs::remove_file(archive.join(SNAPSHOT_FILE)).unwrap();
    let copy = read_only(&backup);
    assert!(copy.uses_adjacency_snapshot());
    let expected = expected(&copy, &edges);
    for v in (0..copy.vertex_count().unwrap()).map(VertexId) {
        let got: Vec<Adjacent> = copy
            .neighbours(v, Direction::Both, &[])
            .map(|a| a.unwrap())
            .collect();
        assert_eq!(got, want(&expected, v, Direction::Both, &[]));
    }
    assert!(copy.check().unwrap().is_ok());
}

#[test]
fn an_empty_archive_has_an_empty_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.write_adjacency_snapshot().unwrap() > 0);
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
fn compacting_removes_a_snapshot_made_stale_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    write_and_compact(dir.path(), &[(0, 1, 2)]);
    let path = dir.path().join(SNAPSHOT_FILE);
    let kept = std::fs::read(&path).unwrap();
    write_edge(dir.path(), edge(1, "read", 2, 3));
    // As if a writer had been killed before it could remove it.
    std::fs::write(&path, kept).unwrap();
    assert!(!read_only(dir.path()).uses_adjacency_snapshot());
    let writer = Store::open(dir.path()).unwrap();
    writer.compact().unwrap();
    assert!(!path.exists());
    writer.close().unwrap();
}

#[test]
fn the_snapshot_counts_in_the_archive_size() {
    let dir = tempfile::tempdir().unwrap();
    write_and_compact(dir.path(), &[(0, 1, 2), (2, 3, 1)]);
    let store = read_only(dir.path());
    let sizes = store.disk_size_by_column_family().unwrap();
    let (name, size) = sizes.last().unwrap();
    assert_eq!(name, ADJACENCY_SNAPSHOT_SIZE_NAME);
    let on_disk = std::fs::metadata(dir.path().join(SNAPSHOT_FILE))
        .unwrap()
        .len();
    assert_eq!(*size, on_disk);
    assert!(store.disk_size().unwrap() >= on_disk);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any byte of the file flipped, or the file cut short: every read either answers as
    /// written or fails with a corruption error naming the snapshot; never a wrong neighbour,
    /// never a panic. `check` reports the damage.
    #[test]
    fn a_damaged_snapshot_never_answers_wrongly(
        position in any::<prop::sample::Index>(),
        flip in 1..=255u8,
        cut in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let edges: Vec<Written> = (0..60).map(|i| (i % 3, i % 7, (i * 5 + 1) % 11)).collect();
        write_and_compact(dir.path(), &edges);
        let path = dir.path().join(SNAPSHOT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = position.index(bytes.len());
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] ^= flip;
        }
        std::fs::write(&path, &bytes).unwrap();

        let store = read_only(dir.path());
        let expected = expected(&store, &edges);
        let mut errors = 0;
        for v in (0..store.vertex_count().unwrap()).map(VertexId) {
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
