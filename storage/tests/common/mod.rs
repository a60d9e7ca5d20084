//! Helpers shared by the storage tests: a small graph of numbered vertices and edges.

#![allow(dead_code)] // each test file uses some of the helpers

use std::collections::BTreeMap;
use std::path::Path;

use provdb_storage::*;

/// Edge types the generated graphs use.
pub const TYPES: [&str; 3] = ["read", "write", "clone"];

/// One written edge: (type index into TYPES, src, dst).
pub type Written = (usize, usize, usize);

/// Edge `e{id}` of `type_name` from vertex `v{src}` to vertex `v{dst}`.
pub fn edge(id: usize, type_name: &str, src: usize, dst: usize) -> EdgeInput {
    let endpoint = |v: usize| EndpointInput {
        ext_id: ExternalId::parse(&format!("v{v}")),
        type_hint: None,
    };
    EdgeInput {
        ext_id: ExternalId::parse(&format!("e{id}")),
        type_name: type_name.into(),
        relation: ProvRelation::Used,
        src: endpoint(src),
        dst: endpoint(dst),
        placement: Placement::default(),
        attrs: vec![],
    }
}

/// Writes `edges` in one batch into a new archive at `dir`, compacts it (folding its adjacency
/// into the adjacency snapshot when asked, as `compact` does; else its tables only), and closes
/// it.
pub fn write_compacted(dir: &Path, edges: &[Written], snapshot: bool) {
    let store = Store::open(dir).unwrap();
    let batch = RecordBatch {
        edges: edges
            .iter()
            .enumerate()
            .map(|(i, &(t, src, dst))| edge(i, TYPES[t], src, dst))
            .collect(),
        ..Default::default()
    };
    store.write(&batch).unwrap();
    if snapshot {
        store.compact().unwrap();
    } else {
        store.compact_tables().unwrap();
    }
    store.close().unwrap();
}

/// What each vertex's adjacency must be, from the written list alone: per (vertex, 0 out / 1
/// in), the edges ordered by (type id, edge id).
pub fn expected(store: &Store, edges: &[Written]) -> BTreeMap<(VertexId, u8), Vec<Adjacent>> {
    let type_id = |t: usize| store.edge_type_id(TYPES[t]).unwrap();
    let edge_id = |i: usize| {
        store
            .edge_id(&ExternalId::parse(&format!("e{i}")))
            .unwrap()
            .unwrap()
    };
    let vertex_id = |v: usize| {
        store
            .vertex_id(&ExternalId::parse(&format!("v{v}")))
            .unwrap()
            .unwrap()
    };
    let mut expected: BTreeMap<(VertexId, u8), Vec<Adjacent>> = BTreeMap::new();
    for (i, &(t, src, dst)) in edges.iter().enumerate() {
        let (s, d) = (vertex_id(src), vertex_id(dst));
        let adjacent = |neighbour, direction| Adjacent {
            edge: edge_id(i),
            edge_type: type_id(t),
            neighbour,
            direction,
        };
        expected
            .entry((s, 0))
            .or_default()
            .push(adjacent(d, Direction::Out));
        expected
            .entry((d, 1))
            .or_default()
            .push(adjacent(s, Direction::In));
    }
    for list in expected.values_mut() {
        list.sort_by_key(|a| (a.edge_type, a.edge));
    }
    expected
}

pub fn want(
    expected: &BTreeMap<(VertexId, u8), Vec<Adjacent>>,
    v: VertexId,
    direction: Direction,
    types: &[TypeId],
) -> Vec<Adjacent> {
    let mut want = Vec::new();
    for (d, side) in [(Direction::Out, 0), (Direction::In, 1)] {
        if direction == d || direction == Direction::Both {
            want.extend(
                expected
                    .get(&(v, side))
                    .into_iter()
                    .flatten()
                    .filter(|a| types.is_empty() || types.contains(&a.edge_type))
                    .cloned(),
            );
        }
    }
    want
}

/// Writes `edges[range]` (edge `e{i}` for index `i`) in one batch.
pub fn write_range(store: &Store, edges: &[Written], range: std::ops::Range<usize>) {
    let batch = RecordBatch {
        edges: range
            .map(|i| edge(i, TYPES[edges[i].0], edges[i].1, edges[i].2))
            .collect(),
        ..Default::default()
    };
    store.write(&batch).unwrap();
}

/// The archive at `dir`, opened read-only.
pub fn read_only(dir: &Path) -> Store {
    Store::open_with(
        dir,
        StoreOptions {
            mode: OpenMode::ReadOnly,
            ..Default::default()
        },
    )
    .unwrap()
}

/// A secondary of the archive at `dir`, keeping its own files in `own`.
pub fn secondary(dir: &Path, own: &Path) -> Store {
    Store::open_with(
        dir,
        StoreOptions {
            mode: OpenMode::Secondary {
                secondary_path: own.to_path_buf(),
            },
            ..Default::default()
        },
    )
    .unwrap()
}

/// The ids of the types `filter` names (indexes into TYPES), sorted and deduplicated; a type
/// the archive lacks gets an id no stored type has.
pub fn type_ids(store: &Store, filter: &[usize]) -> Vec<TypeId> {
    let mut types: Vec<TypeId> = filter
        .iter()
        .map(|&t| {
            store
                .edge_type_id(TYPES[t])
                .unwrap_or(TypeId(900 + t as u16))
        })
        .collect();
    types.sort();
    types.dedup();
    types
}

/// Opens a damaged archive read-only: `Ok(None)` when the open refuses it with a corruption
/// error naming the adjacency snapshot (the damage was found), an error for any other refusal.
pub fn open_damaged(dir: &Path) -> Result<Option<Store>, proptest::test_runner::TestCaseError> {
    let options = StoreOptions {
        mode: OpenMode::ReadOnly,
        ..Default::default()
    };
    match Store::open_with(dir, options) {
        Ok(store) => Ok(Some(store)),
        Err(OpenError::Read(ReadError::Corruption {
            what: "adjacency snapshot",
            ..
        })) => Ok(None),
        Err(e) => Err(proptest::test_runner::TestCaseError::fail(format!(
            "unexpected error {e}"
        ))),
    }
}

/// The vertex every edge of [`fan_in`] goes into (`v{FAN_IN_SINK}`): the others are `v0`..`v6`.
pub const FAN_IN_SINK: usize = 7;

/// Edges `e{i}` for `i` in `range`, each from one of seven vertices into [`FAN_IN_SINK`].
pub fn fan_in(range: std::ops::Range<usize>) -> RecordBatch {
    RecordBatch {
        edges: range
            .map(|i| edge(i, "read", i % FAN_IN_SINK, FAN_IN_SINK))
            .collect(),
        ..Default::default()
    }
}

/// The internal id of [`FAN_IN_SINK`].
pub fn fan_in_sink(store: &Store) -> VertexId {
    store
        .vertex_id(&ExternalId::parse(&format!("v{FAN_IN_SINK}")))
        .unwrap()
        .expect("stored")
}

/// Asks every fold of this process to pause two seconds at `step` (a debug-build hook; see
/// `pause_point` in store.rs). Call it first thing in a test binary that holds one test:
/// nothing else may read the environment meanwhile.
pub fn pause_folds_at(step: &str) {
    // SAFETY: called before any thread of the binary's one test starts (see above).
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROVDB_TEST_PAUSE_FOLD_AT", step)
    };
}
