//! Prepared writes: a batch prepared while the previous one is still uncommitted sees it, and
//! a failed or dropped write never lets a later one reference ids that are not on disk.

use provdb_storage::*;

fn edge(id: &str, src: &str, dst: &str) -> EdgeInput {
    EdgeInput {
        ext_id: ExternalId::parse(id),
        type_name: "write".into(),
        relation: ProvRelation::WasGeneratedBy,
        src: EndpointInput {
            ext_id: ExternalId::parse(src),
            type_hint: None,
        },
        dst: EndpointInput {
            ext_id: ExternalId::parse(dst),
            type_hint: None,
        },
        placement: Placement::default(),
        attrs: vec![],
    }
}

fn vertex(id: &str) -> VertexInput {
    VertexInput {
        ext_id: ExternalId::parse(id),
        type_name: "task".into(),
        class: ProvClass::Activity,
        placement: Placement::default(),
        attrs: vec![("pid".into(), Value::Int(7))],
    }
}

fn batch(vertices: Vec<VertexInput>, edges: Vec<EdgeInput>) -> RecordBatch {
    RecordBatch {
        vertices,
        edges,
        ..Default::default()
    }
}

/// Every stored edge's endpoints resolve, and the edge is in its source's out-adjacency.
fn assert_consistent(store: &Store) {
    let stats = store.stats().unwrap();
    for e in 0..stats.edges {
        let edge = store.edge(EdgeId(e)).unwrap().expect("edge record");
        for v in [edge.src, edge.dst] {
            assert!(
                store.vertex(v).unwrap().is_some(),
                "edge {e} -> missing {v:?}"
            );
        }
        let out: Vec<_> = store
            .neighbours(edge.src, Direction::Out, &[])
            .map(|a| a.unwrap().edge)
            .collect();
        assert!(out.contains(&EdgeId(e)), "edge {e} not in out-adjacency");
    }
}

#[test]
fn a_pipeline_of_overlapping_batches_stores_each_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // 50 batches; batch k holds edges k*10..k*10+10 of a chain v0 -> v1 -> ... -> v500 and
    // repeats the previous batch's last edge; batch k also defines vertex k*10+5.
    // Expected: 500 distinct edges over 501 chain vertices, 50 of them defined.
    let batches: Vec<RecordBatch> = (0..50)
        .map(|k: usize| {
            let mut edges: Vec<EdgeInput> = (k * 10..k * 10 + 10)
                .map(|i| edge(&format!("e{i}"), &format!("v{i}"), &format!("v{}", i + 1)))
                .collect();
            if k > 0 {
                let i = k * 10 - 1;
                edges.push(edge(
                    &format!("e{i}"),
                    &format!("v{i}"),
                    &format!("v{}", i + 1),
                ));
            }
            batch(vec![vertex(&format!("v{}", k * 10 + 5))], edges)
        })
        .collect();
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<PreparedWrite<'_>>(1);
        let store = &store;
        let committer = s.spawn(move || {
            for p in rx {
                store.commit_prepared(p).unwrap();
            }
        });
        for b in &batches {
            tx.send(store.prepare_write(b, &[], Durability::Buffered).unwrap())
                .unwrap();
        }
        drop(tx);
        committer.join().unwrap();
    });
    let stats = store.stats().unwrap();
    assert_eq!(stats.edges, 500);
    assert_eq!(stats.vertices, 501);
    assert_eq!(stats.stub_vertices, 501 - 50);
    assert_consistent(&store);
    store.close().unwrap();
}

#[test]
fn a_dropped_write_aborts_the_writes_prepared_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.write(&batch(vec![vertex("base")], vec![])).unwrap();
    let first = batch(vec![vertex("a")], vec![edge("e1", "a", "b")]);
    // Uses `b`, a stub that only `first` creates.
    let second = batch(vec![], vec![edge("e2", "b", "c")]);
    let p1 = store
        .prepare_write(&first, &[], Durability::Buffered)
        .unwrap();
    let p2 = store
        .prepare_write(&second, &[], Durability::Buffered)
        .unwrap();
    assert_eq!(
        p2.summary().stubs_created,
        1,
        "b comes from the first write"
    );
    drop(p1);
    assert!(matches!(
        store.commit_prepared(p2),
        Err(WriteError::PipelineAborted)
    ));
    // Nothing of either reached the disk, and the writer starts again from the disk.
    assert_eq!(store.stats().unwrap().vertices, 1);
    assert!(store.vertex_id(&ExternalId::parse("b")).unwrap().is_none());
    let s2 = store.write(&second).unwrap();
    assert_eq!((s2.edges_added, s2.stubs_created), (1, 2));
    let s1 = store.write(&first).unwrap();
    assert_eq!(
        (s1.edges_added, s1.vertices_added, s1.stubs_created),
        (1, 1, 0)
    );
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.vertices, stats.edges, stats.stub_vertices),
        (4, 2, 2)
    );
    assert_consistent(&store);
    store.close().unwrap();

    // The same holds after a reopen.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.stats().unwrap().edges, 2);
    assert_consistent(&store);
    store.close().unwrap();
}
