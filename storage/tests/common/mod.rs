//! Helpers shared by the storage tests: a small graph of numbered vertices and edges.

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
