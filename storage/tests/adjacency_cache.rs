//! The adjacency cache of a read-only store that reads the tables (no adjacency snapshot): a
//! list read whole is kept and answers the next scan of that vertex, typed or not, in every
//! direction, exactly as the tables do; a hub's list, longer than what is kept, is read from the
//! tables each time, whole.

use std::collections::BTreeMap;

use proptest::prelude::*;
use provdb_storage::*;

mod common;
use common::{expected, read_only, type_ids, want, write_compacted, Written, TYPES};

/// Reads vertices `order` through one cursor of `direction` over `types`, and compares each
/// list with what was written.
fn assert_reads(
    store: &Store,
    expected: &BTreeMap<(VertexId, u8), Vec<Adjacent>>,
    direction: Direction,
    types: &[TypeId],
    order: &[u64],
) {
    let mut cursor = store.adjacency_cursor(direction, types);
    for &v in order {
        cursor.restart(VertexId(v));
        let got: Vec<Adjacent> = cursor.by_ref().map(|a| a.unwrap()).collect();
        assert_eq!(
            got,
            want(expected, VertexId(v), direction, types),
            "{v} {direction:?} {types:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn scans_answer_as_the_tables_do_before_and_after_their_lists_are_kept(
        edges in prop::collection::vec((0..TYPES.len(), 0..12usize, 0..12usize), 1..60),
        type_filter in prop::collection::vec(0..TYPES.len(), 1..3),
        first_untyped in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_compacted(dir.path(), &edges, false);
        let store = read_only(dir.path());
        prop_assert!(!store.uses_adjacency_snapshot());
        let expected = expected(&store, &edges);
        let types = type_ids(&store, &type_filter);
        let vertices: Vec<u64> = (0..store.vertex_count().unwrap() + 2).collect();
        let backwards: Vec<u64> = vertices.iter().rev().copied().collect();
        // Typed reads first (nothing kept yet) or untyped first (lists kept), then both again,
        // in both directions and together: each must answer as the tables do.
        let filters: [&[TypeId]; 2] = if first_untyped { [&[], &types] } else { [&types, &[]] };
        for direction in [Direction::Out, Direction::In, Direction::Both] {
            for filter in filters {
                assert_reads(&store, &expected, direction, filter, &vertices);
                assert_reads(&store, &expected, direction, filter, &backwards);
            }
        }
    }
}

#[test]
fn a_hub_longer_than_a_kept_list_reads_whole_every_time() {
    // Vertex v0 has 3,000 out-edges (more than a kept list), v1..v5 a few each.
    let mut edges: Vec<Written> = (0..3000).map(|i| (i % 3, 0, 1 + i % 2000)).collect();
    edges.extend((0..20).map(|i| (i % 2, 1 + i % 5, 2000 + i)));
    let dir = tempfile::tempdir().unwrap();
    write_compacted(dir.path(), &edges, false);
    let store = read_only(dir.path());
    let expected = expected(&store, &edges);
    let vertices: Vec<u64> = (0..store.vertex_count().unwrap()).collect();
    let read = store.edge_type_id("read").unwrap();
    for _ in 0..3 {
        assert_reads(&store, &expected, Direction::Both, &[], &vertices);
        assert_reads(&store, &expected, Direction::Out, &[read], &vertices);
    }
    // A scan left part-way (its list not read whole) keeps nothing wrong.
    let mut cursor = store.adjacency_cursor(Direction::Out, &[]);
    for v in &vertices {
        cursor.restart(VertexId(*v));
        let _ = cursor.next();
    }
    assert_reads(&store, &expected, Direction::Out, &[], &vertices);
}
