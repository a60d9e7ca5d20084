//! A write stores each external id once, whether its earlier copy is in the same batch, in
//! a write still in flight, in the memtable, in an SST file, in an archive opened again
//! (the writer's cache then empty), or before a write that was dropped uncommitted (the
//! writer then starts again from what is on disk; a new archive's writer still knows, without
//! looking them up, which ids were never written): every batch's summary and the final totals agree with a
//! model of the documented rules (a vertex definition adds a vertex, fills a stub or is a
//! duplicate; an edge endpoint nobody defined becomes a stub; an edge id seen before is a
//! duplicate; vertices of a batch before its edges).

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use provdb_storage::*;

fn edge(id: usize, src: usize, dst: usize) -> EdgeInput {
    let endpoint = |v: usize| EndpointInput {
        ext_id: ExternalId::parse(&format!("v{v}")),
        type_hint: None,
    };
    EdgeInput {
        ext_id: ExternalId::parse(&format!("e{id}")),
        type_name: "read".into(),
        relation: ProvRelation::Used,
        src: endpoint(src),
        dst: endpoint(dst),
        placement: Placement::default(),
        attrs: vec![],
    }
}

fn vertex(id: usize) -> VertexInput {
    VertexInput {
        ext_id: ExternalId::parse(&format!("v{id}")),
        type_name: "task".into(),
        class: ProvClass::Activity,
        placement: Placement::default(),
        attrs: vec![("pid".into(), Value::Int(id as i64))],
    }
}

/// What happens after a batch is written.
#[derive(Debug, Clone, Copy)]
enum After {
    Nothing,
    /// Flush: later look-ups find the batch in SST files.
    Flush,
    /// Close and open again: the writer's cache is gone, look-ups go to disk.
    Reopen,
    /// Prepare the next batch before committing this one: it sees this one only in flight.
    Overlap,
    /// Prepare a write of new ids and drop it uncommitted: it stores nothing, and the writer
    /// forgets what it had cached.
    DropPrepared,
}

#[derive(Debug, Clone)]
struct Step {
    vertices: Vec<usize>,
    edges: Vec<(usize, usize, usize)>,
    after: After,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let after = prop::sample::select(vec![
        After::Nothing,
        After::Flush,
        After::Reopen,
        After::Overlap,
        After::DropPrepared,
    ]);
    let step = (
        prop::collection::vec(0..12usize, 0..8),
        prop::collection::vec((0..25usize, 0..12usize, 0..12usize), 0..12),
        after,
    )
        .prop_map(|(vertices, edges, after)| Step {
            vertices,
            edges,
            after,
        });
    prop::collection::vec(step, 1..8)
}

/// The model: what a write of `step` adds, by the documented rules.
#[derive(Default)]
struct Model {
    /// Vertex id -> defined (false: a stub).
    vertices: HashMap<usize, bool>,
    edges: HashSet<usize>,
}

impl Model {
    fn write(&mut self, step: &Step) -> WriteSummary {
        let mut s = WriteSummary::default();
        for v in &step.vertices {
            match self.vertices.insert(*v, true) {
                None => s.vertices_added += 1,
                Some(false) => s.stubs_filled += 1,
                Some(true) => s.vertices_duplicate += 1,
            }
        }
        for (e, src, dst) in &step.edges {
            if !self.edges.insert(*e) {
                s.edges_duplicate += 1;
                continue;
            }
            for v in [src, dst] {
                if !self.vertices.contains_key(v) {
                    self.vertices.insert(*v, false);
                    s.stubs_created += 1;
                }
            }
            s.edges_added += 1;
        }
        s
    }
}

fn batch_of(step: &Step) -> RecordBatch {
    RecordBatch {
        vertices: step.vertices.iter().map(|v| vertex(*v)).collect(),
        edges: step
            .edges
            .iter()
            .map(|(e, s, d)| edge(*e, *s, *d))
            .collect(),
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn each_external_id_is_stored_once_wherever_its_first_copy_is(steps in steps()) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut model = Model::default();
        let mut i = 0;
        while i < steps.len() {
            let step = &steps[i];
            let expected = model.write(step);
            let first = batch_of(step);
            if matches!(step.after, After::Overlap) && i + 1 < steps.len() {
                // Two writes in flight: the second is prepared before the first commits.
                let next = &steps[i + 1];
                let expected_next = model.write(next);
                let second = batch_of(next);
                let p1 = store.prepare_write(&first, &[], Durability::Buffered).unwrap();
                let p2 = store.prepare_write(&second, &[], Durability::Buffered).unwrap();
                prop_assert_eq!(store.commit_prepared(p1).unwrap(), expected);
                prop_assert_eq!(store.commit_prepared(p2).unwrap(), expected_next);
                i += 2;
                continue;
            }
            prop_assert_eq!(store.write(&first).unwrap(), expected);
            match step.after {
                After::Flush => store.flush().unwrap(),
                After::Reopen => {
                    store.close().unwrap();
                    store = Store::open(dir.path()).unwrap();
                }
                After::DropPrepared => {
                    let unseen = Step {
                        vertices: vec![100 + i],
                        edges: vec![(100 + i, 100 + i, 0)],
                        after: After::Nothing,
                    };
                    drop(store.prepare_write(&batch_of(&unseen), &[], Durability::Buffered).unwrap());
                }
                After::Nothing | After::Overlap => {}
            }
            i += 1;
        }
        let stats = store.stats().unwrap();
        prop_assert_eq!(stats.edges, model.edges.len() as u64);
        prop_assert_eq!(stats.vertices, model.vertices.len() as u64);
        let stubs = model.vertices.values().filter(|defined| !**defined).count();
        prop_assert_eq!(stats.stub_vertices, stubs as u64);
        store.close().unwrap();
    }
}
