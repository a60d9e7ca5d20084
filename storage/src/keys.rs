//! Hand-encoded, big-endian keys of every column family. Big-endian so that RocksDB's byte
//! order is numeric order and prefix scans select one vertex (or one vertex and edge type).

use crate::ids::{EdgeId, TypeId, VertexId};
use crate::model::ExternalId;

/// `meta` key of the archive's on-disk format version (value: [`crate::codec::encode_format`]).
pub(crate) const META_FORMAT: &[u8] = b"format_version";

/// `meta` key of the adjacency snapshot the archive reads (value:
/// [`crate::codec::encode_snapshot_pointer`]); absent when it has none.
pub(crate) const META_ADJACENCY_SNAPSHOT: &[u8] = b"adjacency_snapshot";

/// `meta` key of the last adjacency snapshot generation written (value:
/// [`crate::codec::encode_counter`]); kept when a prune unfolds, so that a generation's
/// number never names two files.
pub(crate) const META_ADJACENCY_SNAPSHOT_GENERATION: &[u8] = b"adjacency_snapshot_generation";

/// A persistent counter of `meta` (value: [`crate::codec::encode_counter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    /// Vertex ids allocated.
    NextVertex,
    /// Edge ids allocated.
    NextEdge,
    /// Stub vertices stored.
    Stubs,
    /// Non-JSON lines skipped by imports.
    Skipped,
    /// Documents rejected by the decoder.
    Rejected,
    /// Vertices deleted by a prune: ids are never reused, so the live count is the ids
    /// allocated minus these.
    PrunedVertices,
    /// Edges deleted by a prune.
    PrunedEdges,
}

impl Counter {
    /// Its key in `meta`.
    pub(crate) fn key(self) -> &'static [u8] {
        match self {
            Counter::NextVertex => b"counter/next_vertex",
            Counter::NextEdge => b"counter/next_edge",
            Counter::Stubs => b"counter/stub_vertices",
            Counter::Skipped => b"counter/skipped_lines",
            Counter::Rejected => b"counter/rejected_documents",
            Counter::PrunedVertices => b"counter/pruned_vertices",
            Counter::PrunedEdges => b"counter/pruned_edges",
        }
    }
}

/// `meta` key prefix of the vertex type dictionary (`prefix | id BE` -> name).
pub(crate) const DICT_VERTEX_TYPES: &[u8] = b"dict/vtype/";
/// `meta` key prefix of the edge type dictionary.
pub(crate) const DICT_EDGE_TYPES: &[u8] = b"dict/etype/";
/// `meta` key prefix of the attribute key dictionary.
pub(crate) const DICT_ATTR_KEYS: &[u8] = b"dict/attr/";

/// Key of one dictionary entry: the dictionary's prefix, then the id.
pub(crate) fn dict_key(prefix: &[u8], id: u16) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Decodes the id of a dictionary key of `prefix`; `None` when the key is not `prefix` and
/// two bytes.
pub(crate) fn decode_dict_key(prefix: &[u8], k: &[u8]) -> Option<u16> {
    let id: [u8; 2] = k.strip_prefix(prefix)?.try_into().ok()?;
    Some(u16::from_be_bytes(id))
}

/// Encodes the `external_ids` key of `ext` into `out`: the kind byte ([`EXT_VERTEX`] or
/// [`EXT_EDGE`]), a tag (1 binary, 2 text), then the id's bytes.
pub(crate) fn external_key(kind: u8, ext: &ExternalId, out: &mut Vec<u8>) {
    out.clear();
    out.push(kind);
    match ext {
        ExternalId::Binary(b) => {
            out.push(1);
            out.extend_from_slice(b);
        }
        ExternalId::Text(s) => {
            out.push(2);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// Kind byte of an `external_ids` key for a vertex.
pub(crate) const EXT_VERTEX: u8 = b'v';
/// Kind byte of an `external_ids` key for an edge.
pub(crate) const EXT_EDGE: u8 = b'e';

/// Width of one roaring shard: ids `shard << 20 .. (shard + 1) << 20` share one bitmap.
pub(crate) const SHARD_BITS: u32 = 20;

/// Length of an adjacency key: vertex(8) | edge type(2) | edge(8) | neighbour(8).
pub(crate) const ADJ_KEY_LEN: usize = 26;

pub(crate) fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Decodes an [`id_key`] (or any 8-byte big-endian number in a key); `None` when the key is
/// not 8 bytes long.
pub(crate) fn decode_id_key(k: &[u8]) -> Option<u64> {
    k.try_into().ok().map(u64::from_be_bytes)
}

pub(crate) fn adjacency_key(v: VertexId, t: TypeId, e: EdgeId, other: VertexId) -> [u8; 26] {
    let mut k = [0u8; ADJ_KEY_LEN];
    k[0..8].copy_from_slice(&v.0.to_be_bytes());
    k[8..10].copy_from_slice(&t.0.to_be_bytes());
    k[10..18].copy_from_slice(&e.0.to_be_bytes());
    k[18..26].copy_from_slice(&other.0.to_be_bytes());
    k
}

/// Decodes an adjacency key into (vertex, edge type, edge, neighbour).
pub(crate) fn decode_adjacency_key(k: &[u8]) -> Option<(VertexId, TypeId, EdgeId, VertexId)> {
    if k.len() != ADJ_KEY_LEN {
        return None;
    }
    let v = u64::from_be_bytes(k[0..8].try_into().ok()?);
    let t = u16::from_be_bytes(k[8..10].try_into().ok()?);
    let e = u64::from_be_bytes(k[10..18].try_into().ok()?);
    let o = u64::from_be_bytes(k[18..26].try_into().ok()?);
    Some((VertexId(v), TypeId(t), EdgeId(e), VertexId(o)))
}

/// Key of one roaring shard: index key (type id or machine id) then shard number.
pub(crate) fn shard_key(index_key: &[u8], shard: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(index_key.len() + 8);
    k.extend_from_slice(index_key);
    k.extend_from_slice(&shard.to_be_bytes());
    k
}

/// Key of the time index: time with the sign bit flipped (so negative times sort first), then
/// the edge id.
pub(crate) fn time_key(time: i64, e: EdgeId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[0..8].copy_from_slice(&time_prefix(time));
    k[8..16].copy_from_slice(&e.0.to_be_bytes());
    k
}

pub(crate) fn time_prefix(time: i64) -> [u8; 8] {
    ((time as u64) ^ (1u64 << 63)).to_be_bytes()
}

/// The smallest key strictly greater than every key starting with `prefix`, if any.
pub(crate) fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacency_keys_round_trip_and_sort_by_vertex_then_type() {
        let a = adjacency_key(VertexId(1), TypeId(9), EdgeId(5), VertexId(7));
        let b = adjacency_key(VertexId(1), TypeId(10), EdgeId(0), VertexId(0));
        let c = adjacency_key(VertexId(256), TypeId(0), EdgeId(0), VertexId(0));
        assert!(a < b && b < c);
        assert_eq!(
            decode_adjacency_key(&a),
            Some((VertexId(1), TypeId(9), EdgeId(5), VertexId(7)))
        );
        assert_eq!(decode_adjacency_key(&a[..25]), None);
    }

    #[test]
    fn time_keys_sort_numerically_across_zero() {
        let times = [-5_i64, -1, 0, 1, 1_700_000_000];
        let keys: Vec<_> = times.iter().map(|t| time_key(*t, EdgeId(0))).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn prefix_upper_bound_carries() {
        assert_eq!(prefix_upper_bound(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_upper_bound(&[1, 255]), Some(vec![2]));
        assert_eq!(prefix_upper_bound(&[255, 255]), None);
    }
}
