//! The second step of a write: encoding a resolved batch's records into its RocksDB write
//! batch (records, external ids, adjacency, the time index), with the keys that arrive in
//! random order sorted. Needs none of the writer's state, so that a pipeline runs it on a
//! thread of its own while the writer resolves the next batch.

use std::sync::atomic::Ordering;

use rocksdb::{ColumnFamily, WriteBatch};

use super::{Endpoint, PlannedRecord, PreparedWrite, ResolvedWrite, BATCH_RESERVE_LIMIT};
use crate::codec::{self, KeyedAttrs, StoredEdge, StoredVertex};
use crate::error::WriteError;
use crate::ids::{EdgeId, TypeId, VertexId};
use crate::keys::{self, EXT_EDGE, EXT_VERTEX};
use crate::model::{ExternalId, Name, Placement, ProvClass, RecordBatch, Value};
use crate::tables::GraphHandles;

impl<'a> ResolvedWrite<'a> {
    /// Encodes the records of `batch`, the batch this write was resolved from, into a write
    /// ready to commit. A batch of another length is refused with
    /// [`WriteError::BatchMismatch`] (and, as any failure here, refuses the writes prepared
    /// after this one).
    pub fn encode(mut self, batch: &RecordBatch) -> Result<PreparedWrite<'a>, WriteError> {
        if batch.vertices.len() != self.vertex_count || batch.edges.len() != self.edge_count {
            return Err(WriteError::BatchMismatch);
        }
        let cfs = self.tables.graph_handles()?;
        let Some(write) = self.batch.as_mut() else {
            return Err(WriteError::PipelineAborted);
        };
        let mut encoder = RecordEncoder {
            cfs: &cfs,
            write,
            sorted: SortedPuts::default(),
            buf: Vec::with_capacity(512),
            key: Vec::with_capacity(64),
        };
        for planned in &self.plan {
            encoder.put(planned, &self.key_ids, batch)?;
        }
        let RecordEncoder {
            write, mut sorted, ..
        } = encoder;
        sorted.write_into(write, &cfs);
        let size = write.size_in_bytes();
        self.pipeline.batch_bytes_hint.store(
            (size + size / 8).min(BATCH_RESERVE_LIMIT),
            Ordering::Relaxed,
        );
        Ok(PreparedWrite {
            pipeline: self.pipeline,
            tables: self.tables,
            batch: self.batch.take(),
            seq: self.seq,
            epoch: self.epoch,
            durability: self.durability,
            summary: self.summary,
            new_edges: std::mem::take(&mut self.new_edges),
        })
    }
}

/// Puts the records of one resolved batch into its write batch.
struct RecordEncoder<'w, 'c> {
    cfs: &'w GraphHandles<'c>,
    write: &'w mut WriteBatch,
    /// Keys that arrive in random order (adjacency by endpoint, external ids by their
    /// hash-like bytes), held back and written sorted at the end.
    sorted: SortedPuts,
    buf: Vec<u8>,
    key: Vec<u8>,
}

impl RecordEncoder<'_, '_> {
    fn put(
        &mut self,
        planned: &PlannedRecord,
        key_ids: &[u16],
        batch: &RecordBatch,
    ) -> Result<(), WriteError> {
        match *planned {
            PlannedRecord::Vertex {
                index,
                id,
                type_id,
                keys_at,
            } => {
                let v = batch.vertices.get(index).ok_or(WriteError::BatchMismatch)?;
                let record = StoredVertex {
                    ext_id: (&v.ext_id).into(),
                    type_id,
                    class: v.class,
                    stub: false,
                    placement: v.placement,
                    attrs: keyed_attrs(key_ids, keys_at, &v.attrs)?,
                };
                codec::encode(&record, &mut self.buf)?;
                self.put_vertex(id, &v.ext_id, None);
            }
            PlannedRecord::Stub {
                edge,
                end,
                id,
                type_id,
            } => {
                let e = batch.edges.get(edge).ok_or(WriteError::BatchMismatch)?;
                let ext = match end {
                    Endpoint::Src => &e.src.ext_id,
                    Endpoint::Dst => &e.dst.ext_id,
                };
                let record = StoredVertex {
                    ext_id: ext.into(),
                    type_id,
                    class: ProvClass::Unknown,
                    stub: true,
                    // No machine until defined: edges do cross machines (packets), and a
                    // guess here would have to be taken back out of the machine index on
                    // fill-in.
                    placement: Placement::default(),
                    attrs: Vec::<(u16, Value)>::new(),
                };
                codec::encode(&record, &mut self.buf)?;
                self.put_vertex(id, ext, Some(type_id));
            }
            PlannedRecord::Edge {
                index,
                id,
                type_id,
                src,
                dst,
                keys_at,
            } => {
                let e = batch.edges.get(index).ok_or(WriteError::BatchMismatch)?;
                let record = StoredEdge {
                    ext_id: (&e.ext_id).into(),
                    type_id,
                    relation: e.relation,
                    src,
                    dst,
                    placement: e.placement,
                    attrs: keyed_attrs(key_ids, keys_at, &e.attrs)?,
                };
                codec::encode(&record, &mut self.buf)?;
                self.write
                    .put_cf(self.cfs.edges, keys::id_key(id), &self.buf);
                let (t, edge) = (TypeId(type_id), EdgeId(id));
                self.sorted.out_adjacency.push(AdjacencyEntry {
                    vertex: VertexId(src),
                    edge_type: t,
                    edge,
                    neighbour: VertexId(dst),
                });
                self.sorted.in_adjacency.push(AdjacencyEntry {
                    vertex: VertexId(dst),
                    edge_type: t,
                    edge,
                    neighbour: VertexId(src),
                });
                if let Some(time) = e.placement.time {
                    self.write
                        .put_cf(self.cfs.edge_time_index, keys::time_key(time, edge), []);
                }
                self.put_external(EXT_EDGE, &e.ext_id, id, None);
            }
        }
        Ok(())
    }

    /// Puts the vertex record in [`RecordEncoder::buf`] under `id`, with its external id both
    /// ways (`stub_type`: the type of a stub).
    fn put_vertex(&mut self, id: u64, ext: &ExternalId, stub_type: Option<u16>) {
        self.write
            .put_cf(self.cfs.vertices, keys::id_key(id), &self.buf);
        // The vertex -> external id entry (format 2 on; a version-1 archive stays version 1,
        // its ids read from the records).
        if let Some(table) = self.cfs.vertex_external_ids {
            codec::encode_external_id(ext, &mut self.buf);
            self.write.put_cf(table, keys::id_key(id), &self.buf);
        }
        self.put_external(EXT_VERTEX, ext, id, stub_type);
    }

    fn put_external(&mut self, kind: u8, ext: &ExternalId, id: u64, stub_type: Option<u16>) {
        keys::external_key(kind, ext, &mut self.key);
        let (value, len) = codec::encode_external_value(id, stub_type);
        self.sorted.external_ids.push(&self.key, &value[..len]);
    }
}

/// A record's attributes with their name ids, which start at `at` in the resolved write's ids.
fn keyed_attrs<'a>(
    key_ids: &'a [u16],
    at: usize,
    attrs: &'a [(Name, Value)],
) -> Result<KeyedAttrs<'a>, WriteError> {
    let ids = key_ids
        .get(at..at.saturating_add(attrs.len()))
        .ok_or(WriteError::BatchMismatch)?;
    KeyedAttrs::new(ids, attrs)
}

/// Puts of one batch whose keys come in random order. RocksDB inserts a batch into its
/// memtable skiplists entry by entry; in key order each insert starts from where the previous
/// one ended instead of searching from the top (random-order inserts were ~16% of an import's
/// CPU). Keys sequential by construction (records by id, the time index) need no sorting.
#[derive(Default)]
struct SortedPuts {
    /// Adjacency entries (unique: each holds its edge id), written as keys with empty values.
    out_adjacency: Vec<AdjacencyEntry>,
    in_adjacency: Vec<AdjacencyEntry>,
    external_ids: KeyValueArena,
}

impl SortedPuts {
    fn write_into(&mut self, batch: &mut WriteBatch, cfs: &GraphHandles<'_>) {
        for (entries, cf) in [
            (&mut self.out_adjacency, cfs.out_adjacency),
            (&mut self.in_adjacency, cfs.in_adjacency),
        ] {
            entries.sort_unstable();
            for a in entries.iter() {
                batch.put_cf(cf, a.key(), []);
            }
        }
        self.external_ids.write_sorted(batch, cfs.external_ids);
    }
}

/// An adjacency key's fields, in the key's order: sorting these sorts the keys (big-endian
/// fixed-width fields), with integer comparisons where sorting the 26-byte keys called
/// memcmp for each (5% of the writer thread of an import).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct AdjacencyEntry {
    vertex: VertexId,
    edge_type: TypeId,
    edge: EdgeId,
    neighbour: VertexId,
}

impl AdjacencyEntry {
    fn key(&self) -> [u8; keys::ADJ_KEY_LEN] {
        keys::adjacency_key(self.vertex, self.edge_type, self.edge, self.neighbour)
    }
}

/// The first 16 bytes of `bytes` (zero-padded) as a big-endian integer: integers compare as
/// the bytes do.
fn padded_u128(bytes: &[u8]) -> u128 {
    let mut padded = [0u8; 16];
    let n = bytes.len().min(16);
    padded[..n].copy_from_slice(&bytes[..n]);
    u128::from_be_bytes(padded)
}

/// Key-value pairs in one buffer, sortable by key without an allocation per pair.
#[derive(Default)]
struct KeyValueArena {
    bytes: Vec<u8>,
    entries: Vec<ArenaEntry>,
}

struct ArenaEntry {
    start: usize,
    key_len: usize,
    value_len: usize,
    /// The key's first 32 bytes (zero-padded) as two big-endian integers: they order most
    /// pairs of keys alone, without a memcmp call (sorting external ids by their bytes alone
    /// was 4% of an import's writer thread); equal prefixes fall back to the whole keys. Two
    /// halves: a key's first 16 bytes hold a CamFlow id's type and most of its node number,
    /// which machines of a fleet share (each counts from its boot), and the boot and machine
    /// that tell them apart follow (a 1M-edge import of 283 machines: its preparing thread's
    /// memcmp 2.6% -> 1.6% of the import's samples).
    prefix: [u128; 2],
}

impl KeyValueArena {
    fn push(&mut self, key: &[u8], value: &[u8]) {
        self.entries.push(ArenaEntry {
            start: self.bytes.len(),
            key_len: key.len(),
            value_len: value.len(),
            prefix: [
                padded_u128(key),
                padded_u128(key.get(16..).unwrap_or_default()),
            ],
        });
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(value);
    }

    /// Writes the pairs in key order. The sort is stable, so a key put twice in one batch would
    /// keep its last value last, as batch order requires (the writer puts each external id
    /// once per batch today: a batch's vertices are resolved before its edges' endpoints).
    fn write_sorted(&mut self, batch: &mut WriteBatch, cf: &ColumnFamily) {
        for (key, value) in self.sorted() {
            batch.put_cf(cf, key, value);
        }
    }

    /// The pairs in key order, stably (see [`KeyValueArena::write_sorted`]).
    fn sorted(&mut self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let bytes = &self.bytes;
        let key = |e: &ArenaEntry| &bytes[e.start..e.start + e.key_len];
        self.entries
            .sort_by(|a, b| a.prefix.cmp(&b.prefix).then_with(|| key(a).cmp(key(b))));
        self.entries.iter().map(move |e| {
            let value_start = e.start + e.key_len;
            (key(e), &bytes[value_start..value_start + e.value_len])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The writer sorts adjacency entries to write their keys in key order: the two
        /// orders must agree, or the memtable inserts lose their sequential fast path.
        #[test]
        fn adjacency_entries_sort_as_their_keys(
            raw in proptest::collection::vec((any::<u64>(), any::<u16>(), any::<u64>(), any::<u64>()), 0..64),
        ) {
            let entry = |v, t, e, n| AdjacencyEntry {
                vertex: VertexId(v),
                edge_type: TypeId(t),
                edge: EdgeId(e),
                neighbour: VertexId(n),
            };
            // Small values too, so that entries share vertices and types.
            let mut entries: Vec<AdjacencyEntry> = raw
                .iter()
                .map(|&(v, t, e, n)| entry(v % 4, t % 3, e, n))
                .chain(raw.iter().map(|&(v, t, e, n)| entry(v, t, e % 5, n)))
                .collect();
            let mut by_key: Vec<[u8; keys::ADJ_KEY_LEN]> = entries.iter().map(AdjacencyEntry::key).collect();
            by_key.sort_unstable();
            entries.sort_unstable();
            let by_entry: Vec<[u8; keys::ADJ_KEY_LEN]> = entries.iter().map(AdjacencyEntry::key).collect();
            prop_assert_eq!(by_entry, by_key);
        }

        /// External-id puts come out in key order, a key put twice in put order (as a write
        /// batch applies them). Keys start with one of a few 16-byte blocks (or none) and go
        /// on from a small alphabet, so that they share first halves, as a fleet's ids do,
        /// and end within either of the two 16-byte halves the sort compares first as well as
        /// past them.
        #[test]
        fn arena_pairs_come_out_in_key_order_and_stably(
            parts in proptest::collection::vec(
                (0usize..4, proptest::collection::vec(0u8..3, 0..24)),
                0..48,
            ),
        ) {
            let blocks: [&[u8]; 4] = [&[0; 16], &[1; 16], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], &[]];
            let keys: Vec<Vec<u8>> = parts
                .iter()
                .map(|(block, tail)| [blocks[*block], tail.as_slice()].concat())
                .collect();
            let mut arena = KeyValueArena::default();
            for (i, k) in keys.iter().enumerate() {
                arena.push(k, &i.to_be_bytes());
            }
            let mut expected: Vec<(Vec<u8>, usize)> = keys.iter().cloned().zip(0..).collect();
            expected.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal keys keep put order
            let got: Vec<(Vec<u8>, usize)> = arena
                .sorted()
                .map(|(k, v)| (k.to_vec(), usize::from_be_bytes(v.try_into().expect("8 bytes"))))
                .collect();
            prop_assert_eq!(got, expected);
        }
    }
}
