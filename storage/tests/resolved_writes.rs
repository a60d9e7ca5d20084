//! Writes in two steps: a batch resolved on one thread and encoded on another
//! (`Store::resolve_write`, `ResolvedWrite::encode`), while later batches are resolved, stores
//! what writing each batch in one step stores; a resolved write encoded with another batch, or
//! dropped unencoded, lets no later write reference its ids.

use proptest::prelude::*;
use std::collections::BTreeSet;

use provdb_storage::*;

fn edge(id: u32, src: u32, dst: u32, attrs: Vec<(Name, Value)>) -> EdgeInput {
    EdgeInput {
        ext_id: ExternalId::parse(&format!("e{id}")),
        type_name: if id % 2 == 0 { "read" } else { "write" }.into(),
        relation: ProvRelation::Used,
        src: EndpointInput {
            ext_id: ExternalId::parse(&format!("v{src}")),
            type_hint: Some("task".into()),
        },
        dst: EndpointInput {
            ext_id: ExternalId::parse(&format!("v{dst}")),
            type_hint: None,
        },
        placement: Placement::default(),
        attrs,
    }
}

fn vertex(id: u32, attrs: Vec<(Name, Value)>) -> VertexInput {
    VertexInput {
        ext_id: ExternalId::parse(&format!("v{id}")),
        type_name: if id % 3 == 0 { "file" } else { "task" }.into(),
        class: ProvClass::Entity,
        placement: Placement::default(),
        attrs,
    }
}

/// Attributes from a seed: names shared between records, in varying numbers and orders, so
/// that records' name ids are looked up by position and by hash.
fn attrs(seed: u32) -> Vec<(Name, Value)> {
    let names = ["cf:id", "cf:date", "cf:uid", "prov:label", "own"];
    (0..seed % 4)
        .map(|i| {
            let name = names[((seed / 4 + i) % 5) as usize];
            (
                Name::from(name),
                Value::Int(i64::from(seed) * 10 + i64::from(i)),
            )
        })
        .collect()
}

/// Batches of vertices and edges over a small id space, so that they repeat each other's
/// records, define vertices that earlier edges made stubs, and reference vertices defined
/// later in the same batch.
fn batches() -> impl Strategy<Value = Vec<RecordBatch>> {
    let record = (any::<bool>(), 0u32..40, 0u32..25, 0u32..25, any::<u32>());
    proptest::collection::vec(proptest::collection::vec(record, 0..30), 1..8).prop_map(|raw| {
        raw.into_iter()
            .map(|records| {
                let mut batch = RecordBatch::default();
                for (is_vertex, id, src, dst, seed) in records {
                    if is_vertex {
                        batch.vertices.push(vertex(id % 25, attrs(seed)));
                    } else {
                        batch.edges.push(edge(id, src, dst, attrs(seed)));
                    }
                }
                batch
            })
            .collect()
    })
}

/// Attributes as (name, value) pairs, whatever type holds their names.
fn named<N: AsRef<str>>(attrs: &[(N, Value)]) -> Vec<(String, Value)> {
    attrs
        .iter()
        .map(|(n, v)| (n.as_ref().to_owned(), v.clone()))
        .collect()
}

/// A batch of edges only.
fn of_edges(edges: Vec<EdgeInput>) -> RecordBatch {
    RecordBatch {
        edges,
        ..Default::default()
    }
}

/// Every vertex and edge record of a store, in id order.
fn records(store: &Store) -> (Vec<Vertex>, Vec<Edge>) {
    let stats = store.stats().unwrap();
    let vertices = (0..stats.vertices)
        .map(|v| store.vertex(VertexId(v)).unwrap().expect("vertex record"))
        .collect();
    let edges = (0..stats.edges)
        .map(|e| store.edge(EdgeId(e)).unwrap().expect("edge record"))
        .collect();
    (vertices, edges)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Resolving on this thread while an encoder thread encodes and a committer thread commits
    /// (the ingest pipeline's shape) stores the records, ids, adjacency and external-id maps
    /// that writing each batch in one step does; edges are those of distinct ids.
    #[test]
    fn two_steps_on_two_threads_store_what_one_step_stores(batches in batches()) {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        let one_step = Store::open(one.path()).unwrap();
        for b in &batches {
            one_step.write(b).unwrap();
        }
        let two_steps = Store::open(two.path()).unwrap();
        std::thread::scope(|s| {
            let store = &two_steps;
            let (encode_tx, encode_rx) = std::sync::mpsc::sync_channel::<(ResolvedWrite<'_>, &RecordBatch)>(1);
            let (commit_tx, commit_rx) = std::sync::mpsc::sync_channel::<PreparedWrite<'_>>(1);
            let encoder = s.spawn(move || {
                for (resolved, batch) in encode_rx {
                    commit_tx.send(resolved.encode(batch).unwrap()).unwrap();
                }
            });
            let committer = s.spawn(move || {
                for prepared in commit_rx {
                    store.commit_prepared(prepared).unwrap();
                }
            });
            for b in &batches {
                encode_tx.send((store.resolve_write(b, &[], Durability::Buffered).unwrap(), b)).unwrap();
            }
            drop(encode_tx);
            encoder.join().unwrap();
            committer.join().unwrap();
        });
        let distinct_edges: BTreeSet<ExternalId> =
            batches.iter().flat_map(|b| b.edges.iter().map(|e| e.ext_id.clone())).collect();
        prop_assert_eq!(two_steps.stats().unwrap().edges, distinct_edges.len() as u64);
        prop_assert_eq!(two_steps.stats().unwrap(), one_step.stats().unwrap());
        let (vertices, edges) = records(&two_steps);
        prop_assert_eq!(&(vertices.clone(), edges.clone()), &records(&one_step));
        for v in &vertices {
            prop_assert_eq!(two_steps.vertex_id(&v.ext_id).unwrap(), Some(v.id));
            // Adjacency comes by edge type, then edge id: compared as sets.
            let out: BTreeSet<EdgeId> = two_steps.neighbours(v.id, Direction::Out, &[]).map(|a| a.unwrap().edge).collect();
            let expected: BTreeSet<EdgeId> = edges.iter().filter(|e| e.src == v.id).map(|e| e.id).collect();
            prop_assert_eq!(out, expected);
        }
        // Each record holds what its first definition sent.
        let vertex_ext = |id: VertexId| vertices[id.0 as usize].ext_id.clone();
        for e in &edges {
            prop_assert_eq!(two_steps.edge_id(&e.ext_id).unwrap(), Some(e.id));
            let sent = batches.iter().flat_map(|b| &b.edges).find(|i| i.ext_id == e.ext_id).expect("sent");
            prop_assert_eq!(vertex_ext(e.src), sent.src.ext_id.clone());
            prop_assert_eq!(vertex_ext(e.dst), sent.dst.ext_id.clone());
            prop_assert_eq!(named(&e.attrs), named(&sent.attrs));
        }
        for v in &vertices {
            match batches.iter().flat_map(|b| &b.vertices).find(|i| i.ext_id == v.ext_id) {
                Some(sent) => {
                    prop_assert!(!v.stub);
                    prop_assert_eq!(named(&v.attrs), named(&sent.attrs));
                }
                None => prop_assert!(v.stub && v.attrs.is_empty()),
            }
        }
        one_step.close().unwrap();
        two_steps.close().unwrap();
    }
}

#[test]
fn a_write_encoded_with_another_batch_is_refused_and_so_are_the_writes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .write(&RecordBatch {
            vertices: vec![vertex(0, vec![])],
            ..Default::default()
        })
        .unwrap();
    let first = of_edges(vec![edge(1, 1, 2, vec![])]);
    // Uses the stubs `first` creates.
    let second = of_edges(vec![edge(2, 2, 1, vec![])]);
    let other = of_edges(vec![edge(1, 1, 2, vec![]), edge(3, 1, 2, vec![])]);
    let r1 = store
        .resolve_write(&first, &[], Durability::Buffered)
        .unwrap();
    let p2 = store
        .prepare_write(&second, &[], Durability::Buffered)
        .unwrap();
    assert_eq!(
        p2.summary().stubs_created,
        0,
        "v1 and v2 come from the first write"
    );
    assert!(matches!(r1.encode(&other), Err(WriteError::BatchMismatch)));
    assert!(matches!(
        store.commit_prepared(p2),
        Err(WriteError::PipelineAborted)
    ));
    // Nothing of either reached the disk, and the writer starts again from the disk.
    let stats = store.stats().unwrap();
    assert_eq!((stats.vertices, stats.edges), (1, 0));
    let s = store.write(&second).unwrap();
    assert_eq!((s.edges_added, s.stubs_created), (1, 2));
    store.close().unwrap();
}

#[test]
fn a_resolved_write_dropped_unencoded_aborts_the_writes_resolved_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let first = of_edges(vec![edge(1, 1, 2, vec![])]);
    let second = of_edges(vec![edge(2, 2, 3, vec![])]);
    let r1 = store
        .resolve_write(&first, &[], Durability::Buffered)
        .unwrap();
    let r2 = store
        .resolve_write(&second, &[], Durability::Buffered)
        .unwrap();
    assert_eq!(
        r2.summary().stubs_created,
        1,
        "v2 comes from the first write"
    );
    drop(r1);
    let p2 = r2.encode(&second).unwrap();
    assert!(matches!(
        store.commit_prepared(p2),
        Err(WriteError::PipelineAborted)
    ));
    assert_eq!(store.stats().unwrap().vertices, 0);
    assert!(store.vertex_id(&ExternalId::parse("v2")).unwrap().is_none());
    let s = store.write(&second).unwrap();
    assert_eq!((s.edges_added, s.stubs_created), (1, 2));
    store.close().unwrap();
}
