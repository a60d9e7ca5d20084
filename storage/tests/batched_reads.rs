//! Reads of many vertices answer as the written graph says, for every id asked, in the order
//! asked, whether the records sit in the memtable, in SST files or both: the adjacency cursor
//! (a traversal level's read, one vertex after another through the same iterators) and
//! `vertex_external_ids` (a `return` of many ids, in one batch).

use std::collections::BTreeMap;

use proptest::prelude::*;
use provdb_storage::*;

mod common;
use common::{edge, Written, TYPES};

fn graph() -> impl Strategy<Value = Vec<Written>> {
    prop::collection::vec((0..TYPES.len(), 0..12usize, 0..12usize), 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn many_vertices_read_as_written(
        edges in graph(),
        asked in prop::collection::vec(0..14usize, 0..20),
        direction in prop::sample::select(vec![Direction::Out, Direction::In, Direction::Both]),
        type_filter in prop::collection::vec(0..TYPES.len(), 0..3),
        flush_at in 0..60usize,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Half (or so) in SST files, the rest in the memtable.
        let split = flush_at.min(edges.len());
        for (range, flush) in [(0..split, true), (split..edges.len(), false)] {
            let batch = RecordBatch {
                edges: range.clone().map(|i| edge(i, TYPES[edges[i].0], edges[i].1, edges[i].2)).collect(),
                ..Default::default()
            };
            store.write(&batch).unwrap();
            if flush {
                store.flush().unwrap();
            }
        }

        // The expectation, from the written list alone: per vertex and direction, the edges
        // ordered by (type id, edge id), out before in.
        let type_id = |t: usize| store.edge_type_id(TYPES[t]).unwrap();
        let edge_id = |i: usize| store.edge_id(&ExternalId::parse(&format!("e{i}"))).unwrap().unwrap();
        let vertex_id = |v: usize| store.vertex_id(&ExternalId::parse(&format!("v{v}"))).unwrap();
        // A type no edge was written with has no id: ask for an id no type has.
        let types: Vec<TypeId> = type_filter
            .iter()
            .map(|&t| store.edge_type_id(TYPES[t]).unwrap_or(TypeId(900 + t as u16)))
            .collect();
        let mut expected: BTreeMap<(VertexId, u8), Vec<Adjacent>> = BTreeMap::new();
        for (i, &(t, src, dst)) in edges.iter().enumerate() {
            if !types.is_empty() && !types.contains(&type_id(t)) {
                continue;
            }
            let (s, d) = (vertex_id(src).unwrap(), vertex_id(dst).unwrap());
            let adjacent = |neighbour, direction| Adjacent { edge: edge_id(i), edge_type: type_id(t), neighbour, direction };
            expected.entry((s, 0)).or_default().push(adjacent(d, Direction::Out));
            expected.entry((d, 1)).or_default().push(adjacent(s, Direction::In));
        }
        for list in expected.values_mut() {
            list.sort_by_key(|a| (a.edge_type, a.edge));
        }

        // Vertices 12 and 13 were never written: an unknown id has no edges. Their ids are
        // past every written one.
        let unknown = store.vertex_count().unwrap();
        let ids: Vec<VertexId> = asked
            .iter()
            .map(|&v| vertex_id(v).unwrap_or(VertexId(unknown + v as u64)))
            .collect();
        let mut cursor = store.adjacency_cursor(direction, &types);
        // A cursor that was never moved reads nothing.
        prop_assert!(cursor.next().is_none());
        for (i, v) in ids.iter().enumerate() {
            cursor.restart(*v);
            // Every other vertex is left half read: a restart drops the rest.
            let list: Vec<Adjacent> = if i % 2 == 1 {
                let first: Vec<Adjacent> = cursor.by_ref().take(1).map(|a| a.unwrap()).collect();
                cursor.restart(*v);
                let again: Vec<Adjacent> = cursor.by_ref().map(|a| a.unwrap()).collect();
                prop_assert_eq!(&first[..], &again[..first.len()]);
                again
            } else {
                cursor.by_ref().map(|a| a.unwrap()).collect()
            };            let mut want = Vec::new();
            if direction != Direction::In {
                want.extend(expected.get(&(*v, 0)).cloned().unwrap_or_default());
            }
            if direction != Direction::Out {
                want.extend(expected.get(&(*v, 1)).cloned().unwrap_or_default());
            }
            prop_assert_eq!(&list, &want, "vertex {:?}", v);
            // One vertex at a time answers the same.
            let single: Vec<Adjacent> = store.neighbours(*v, direction, &types).map(|a| a.unwrap()).collect();
            prop_assert_eq!(&single, &want);
        }

        // External ids: each written vertex's own, none for an unknown id.
        let got = store.vertex_external_ids(&ids).unwrap();
        for (&v, ext) in asked.iter().zip(got) {
            let written = edges.iter().any(|&(_, s, d)| s == v || d == v);
            let want = written.then(|| ExternalId::parse(&format!("v{v}")));
            prop_assert_eq!(ext, want, "vertex v{}", v);
        }
    }
}
