//! Dense internal identifiers. Allocated monotonically by the single writer, never reused, so
//! they double as arrival order and fit roaring bitmaps.

/// Internal id of a vertex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VertexId(pub u64);

/// Internal id of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeId(pub u64);

/// Interned id of a vertex or edge type name (`task`, `read`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u16);

/// Interned id of an attribute key (`cf:pid`, `prov:label`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrKeyId(pub u16);
