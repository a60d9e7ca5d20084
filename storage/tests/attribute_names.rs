//! Every record reads back with the attribute names it was written with, in its order,
//! whatever the names and orders of the records written before it (vertices and edges, in one
//! batch or several): the writer finds a name's id by comparing it with the name at the same
//! position in the previous record, and must never keep an id whose name differs.

mod common;

use proptest::prelude::*;
use provdb_storage::*;

/// Attribute lists over a small alphabet of names, so that records share names at the same
/// positions, at other positions, or not at all.
fn attrs() -> impl Strategy<Value = Vec<(Name, Value)>> {
    proptest::collection::vec((0..6usize, any::<i64>()), 0..6).prop_map(|pairs| {
        let mut seen = std::collections::HashSet::new();
        pairs
            .into_iter()
            // One value per name in a record, as in a JSON object.
            .filter(|(name, _)| seen.insert(*name))
            .map(|(name, v)| (format!("cf:attr{name}").into(), Value::Int(v)))
            .collect()
    })
}

fn vertex(i: usize, attrs: Vec<(Name, Value)>) -> VertexInput {
    VertexInput {
        ext_id: ExternalId::parse(&format!("v{i}")),
        type_name: "file".into(),
        class: ProvClass::Entity,
        placement: Placement::default(),
        attrs,
    }
}

fn edge(i: usize, attrs: Vec<(Name, Value)>) -> EdgeInput {
    EdgeInput {
        attrs,
        ..common::edge(i, "read", i, i + 1)
    }
}

fn owned(attrs: &[(std::sync::Arc<str>, Value)]) -> Vec<(Name, Value)> {
    attrs
        .iter()
        .map(|(k, v)| (k.to_string().into(), v.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn records_read_back_with_the_names_they_were_written_with(
        vertex_attrs in proptest::collection::vec(attrs(), 1..12),
        edge_attrs in proptest::collection::vec(attrs(), 1..12),
        batches in 1usize..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let per = vertex_attrs.len().max(edge_attrs.len()).div_ceil(batches);
        for b in 0..batches {
            let range = |n: usize| (b * per).min(n)..((b + 1) * per).min(n);
            let batch = RecordBatch {
                vertices: range(vertex_attrs.len())
                    .map(|i| vertex(i, vertex_attrs[i].clone()))
                    .collect(),
                edges: range(edge_attrs.len())
                    .map(|i| edge(i, edge_attrs[i].clone()))
                    .collect(),
                ..Default::default()
            };
            store.write(&batch).unwrap();
        }
        for (i, expected) in vertex_attrs.iter().enumerate() {
            let id = store.vertex_id(&ExternalId::parse(&format!("v{i}"))).unwrap().unwrap();
            let stored = store.vertex(id).unwrap().unwrap();
            prop_assert_eq!(&owned(&stored.attrs), expected, "vertex v{}", i);
        }
        for (i, expected) in edge_attrs.iter().enumerate() {
            let id = store.edge_id(&ExternalId::parse(&format!("e{i}"))).unwrap().unwrap();
            let stored = store.edge(id).unwrap().unwrap();
            prop_assert_eq!(&owned(&stored.attrs), expected, "edge e{}", i);
        }
        store.close().unwrap();
    }
}
