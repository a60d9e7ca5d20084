//! The single-writer write path: resolves external ids, allocates dense ids, creates and fills
//! stub vertices, and turns one [`RecordBatch`] into one atomic RocksDB `WriteBatch` (records,
//! adjacency, indexes, dictionaries, counters), in two steps: resolving under the writer lock
//! (here), then encoding the records' bytes ([`encode`]), which needs no writer state and so
//! can run on another thread while the next batch is resolved.

mod encode;

use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

// The writer's maps are keyed by external ids, which come from (possibly compromised)
// machines: foldhash with a per-process random seed keeps them resistant to chosen collisions
// at a fraction of SipHash's cost (SipHash was ~11% of the preparing thread).
use foldhash::{HashMap, HashMapExt as _, HashSet, HashSetExt as _};

use parking_lot::{Mutex, MutexGuard, RwLock};
use roaring::RoaringBitmap;
use rocksdb::{ColumnFamily, WriteBatch};

use crate::dictionary::{DictKind, Dictionaries};
use crate::error::WriteError;
use crate::id_set::split_id;
use crate::keys::{self, EXT_EDGE, EXT_VERTEX};
use crate::model::{EndpointInput, ExternalId, Name, RecordBatch, Value};
use crate::side_table::SidePut;
use crate::tables::{Counters, Durability, ExternalEntry, GraphHandles, Tables};
use crate::written_ids::WrittenIds;

/// Upper bound of cached external ids before the cache is dropped (it refills from disk).
const VERTEX_CACHE_LIMIT: usize = 4_000_000;
/// Upper bound of the ids [`WrittenIds`] tracks before it stops (it then answers "maybe" to
/// every id, and writes look their ids up as before): a 48M-edge import. At the bound its
/// filters take about 85 MB.
const WRITTEN_IDS_LIMIT: usize = 64_000_000;
/// Empty write batches kept for the next writes: one for each write that may be resolved or
/// encoded while one commits.
const SPARE_BATCHES: usize = 2;
/// Upper bound of cached index shards.
const SHARD_CACHE_LIMIT: usize = 8192;
/// Upper bound of the bytes reserved up front for a write batch (see
/// [`Pipeline::batch_bytes_hint`]).
const BATCH_RESERVE_LIMIT: usize = 128 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VertexSlot {
    id: u64,
    /// Type id of the stub while the vertex is only referenced.
    stub_type: Option<u16>,
}

impl From<ExternalEntry> for VertexSlot {
    fn from(entry: ExternalEntry) -> VertexSlot {
        VertexSlot {
            id: entry.id,
            stub_type: entry.stub_type,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IndexKind {
    VertexType,
    EdgeType,
    Machine,
}

impl IndexKind {
    fn handle<'a>(self, cfs: &GraphHandles<'a>) -> &'a ColumnFamily {
        match self {
            IndexKind::VertexType => cfs.vertex_type_index,
            IndexKind::EdgeType => cfs.edge_type_index,
            IndexKind::Machine => cfs.machine_index,
        }
    }
}

/// The single writer: its state, under a lock held while a batch is prepared, and the
/// bookkeeping of prepared writes, shared with the committing thread without that lock.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    state: Mutex<WriterState>,
    pipeline: Pipeline,
}

#[derive(Debug, Default)]
pub(crate) struct WriterState {
    counters: Counters,
    vertex_cache: HashMap<ExternalId, VertexSlot>,
    shard_cache: HashMap<(IndexKind, Vec<u8>), RoaringBitmap>,
    /// Edges of prepared writes not known to be committed, by sequence number: until their
    /// commit, a duplicate of one of them is only visible here.
    in_flight_edges: VecDeque<(u64, HashSet<ExternalId>)>,
    /// Sequence number of the last prepared write.
    last_prepared: u64,
    /// Pipeline epoch the state belongs to.
    epoch: u64,
    /// Every external id written since the archive held none, while that is known.
    written: WrittenIds,
}

impl WriterState {
    /// Forgets what was cached from before, and takes the counters on disk. What
    /// [`WrittenIds`] holds stays true: it may hold ids that were never committed, and ids a
    /// prune deleted, but every id the archive holds.
    pub(crate) fn reset(&mut self, counters: Counters) {
        self.counters = counters;
        self.vertex_cache.clear();
        self.shard_cache.clear();
        self.in_flight_edges.clear();
    }

    /// Starts tracking the ids written from now on, when the caller has seen that the archive
    /// holds no external id (an empty archive, or one a prune emptied).
    pub(crate) fn track_written_ids_from_empty(&mut self) {
        if !self.written.is_tracking() {
            self.written = WrittenIds::tracking(WRITTEN_IDS_LIMIT);
        }
    }
}

/// Order and failure bookkeeping of prepared writes, shared by the preparing and the
/// committing thread without the writer lock.
#[derive(Default)]
pub(crate) struct Pipeline {
    /// Sequence number of the last committed write.
    committed: AtomicU64,
    /// Bumped when a prepared write fails or is dropped: every write prepared after it (which
    /// may use its ids) is refused, and the writer state is reloaded from disk.
    epoch: AtomicU64,
    /// Size of the last write batch, reserved for the next one: grown by doubling, a batch
    /// of tens of megabytes was copied over and over (memmove and page faults were ~10% of
    /// the preparing thread). Set where a batch is encoded, read where the next is resolved.
    batch_bytes_hint: AtomicUsize,
    /// Empty write batches of about that size, made by the thread that commits (see
    /// [`Writer::commit`]), for the next batches to fill.
    spare_batches: Mutex<Vec<WriteBatch>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("committed", &self.committed)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// A batch resolved against the writer's state and encoded into one RocksDB write, not yet
/// committed. Made by [`crate::Store::prepare_write`], written by
/// [`crate::Store::commit_prepared`].
///
/// Preparing the next batch while this one commits (on another thread) keeps two cores busy
/// on a bulk load. Commit prepared writes in the order they were prepared: a write whose
/// predecessor failed or was dropped uncommitted is refused with
/// [`WriteError::PipelineAborted`], since it may reference that predecessor's ids.
pub struct PreparedWrite<'a> {
    pipeline: &'a Pipeline,
    /// For side-table puts added after preparing.
    tables: &'a Tables,
    batch: Option<WriteBatch>,
    seq: u64,
    epoch: u64,
    durability: Durability,
    summary: WriteSummary,
    /// Indices (into the batch's `edges`) of the edges this write adds: not stored before,
    /// nor earlier in the batch.
    new_edges: Vec<usize>,
}

/// A batch resolved against the writer's state (ids, dictionaries, indexes, counters), its
/// records not yet encoded: [`ResolvedWrite::encode`] turns it into the [`PreparedWrite`]
/// that [`crate::Store::prepare_write`] makes in one step. Made by
/// [`crate::Store::resolve_write`]. The two steps apart let a pipeline resolve the next batch
/// (under the writer lock) while this one is encoded on another thread.
///
/// The writer state has moved on as if the write had committed: a resolved write dropped
/// unencoded, or whose encoding fails, refuses every write prepared after it, as a
/// [`PreparedWrite`] dropped uncommitted does.
pub struct ResolvedWrite<'a> {
    pipeline: &'a Pipeline,
    tables: &'a Tables,
    /// Dictionary entries, index shards, counters and side-table puts so far; the records go
    /// in when encoded.
    batch: Option<WriteBatch>,
    seq: u64,
    epoch: u64,
    durability: Durability,
    summary: WriteSummary,
    new_edges: Vec<usize>,
    /// What to encode, in the order the records are put.
    plan: Vec<PlannedRecord>,
    /// The attribute-name ids of the planned records, each record's at its `keys_at`.
    key_ids: Vec<u16>,
    /// The resolved batch's length, checked when it is encoded.
    vertex_count: usize,
    edge_count: usize,
}

impl std::fmt::Debug for ResolvedWrite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedWrite")
            .field("seq", &self.seq)
            .field("summary", &self.summary)
            .finish()
    }
}

impl ResolvedWrite<'_> {
    /// What the write will do once committed.
    pub fn summary(&self) -> WriteSummary {
        self.summary
    }
}

impl Drop for ResolvedWrite<'_> {
    fn drop(&mut self) {
        if self.batch.is_some() {
            // Dropped unencoded: later prepared writes may use its ids.
            self.pipeline.abort(self.epoch);
        }
    }
}

/// A record of a resolved batch to encode: a vertex defined (new, or filling in its stub), a
/// stub for an edge's endpoint not defined yet, or a new edge. Indices are into the batch's
/// `vertices` or `edges`; `keys_at` into [`ResolvedWrite::key_ids`].
#[derive(Debug, Clone, Copy)]
enum PlannedRecord {
    Vertex {
        index: usize,
        id: u64,
        type_id: u16,
        keys_at: usize,
    },
    Stub {
        edge: usize,
        end: Endpoint,
        id: u64,
        type_id: u16,
    },
    Edge {
        index: usize,
        id: u64,
        type_id: u16,
        src: u64,
        dst: u64,
        keys_at: usize,
    },
}

/// Which end of an edge.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Src,
    Dst,
}

impl std::fmt::Debug for PreparedWrite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedWrite")
            .field("seq", &self.seq)
            .field("summary", &self.summary)
            .finish()
    }
}

impl PreparedWrite<'_> {
    /// What the write will do once committed.
    pub fn summary(&self) -> WriteSummary {
        self.summary
    }

    /// Indices into the prepared batch's `edges` of the edges this write adds (in batch
    /// order): the others were stored already, or repeated earlier in the batch. What an
    /// ingest-time detector looks at, so that data seen twice is evaluated once.
    pub fn new_edges(&self) -> &[usize] {
        &self.new_edges
    }

    /// Adds side-table puts to the write, committed atomically with its records (e.g.
    /// what a detector derived from them).
    pub fn add_side_puts(&mut self, puts: &[SidePut]) -> Result<(), WriteError> {
        let Some(batch) = self.batch.as_mut() else {
            return Err(WriteError::PipelineAborted);
        };
        for put in puts {
            batch.put_cf(self.tables.side_for_write(put.table)?, &put.key, &put.value);
        }
        Ok(())
    }
}

impl Drop for PreparedWrite<'_> {
    fn drop(&mut self) {
        if self.batch.is_some() {
            // Dropped uncommitted: later prepared writes may use its ids.
            self.pipeline.abort(self.epoch);
        }
    }
}

impl Pipeline {
    fn abort(&self, epoch: u64) {
        let _ = self
            .epoch
            .compare_exchange(epoch, epoch + 1, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// What one write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// New vertices stored.
    pub vertices_added: u64,
    /// Stub vertices filled in by their definition.
    pub stubs_filled: u64,
    /// Vertex definitions already stored (ignored).
    pub vertices_duplicate: u64,
    /// Stub vertices created for edge endpoints not yet defined.
    pub stubs_created: u64,
    /// New edges stored.
    pub edges_added: u64,
    /// Edges already stored (ignored).
    pub edges_duplicate: u64,
}

impl std::ops::AddAssign for WriteSummary {
    fn add_assign(&mut self, o: WriteSummary) {
        self.vertices_added += o.vertices_added;
        self.stubs_filled += o.stubs_filled;
        self.vertices_duplicate += o.vertices_duplicate;
        self.stubs_created += o.stubs_created;
        self.edges_added += o.edges_added;
        self.edges_duplicate += o.edges_duplicate;
    }
}

/// Whose attribute names are interned: each family remembers its last record's.
#[derive(Debug, Clone, Copy)]
enum AttrFamily {
    Vertex,
    Edge,
}

/// Work in progress of one batch: nothing reaches the writer state until the whole batch is
/// resolved and encoded ([`Pending::finish`]); a failure before that leaves the state as it was.
struct Pending<'a> {
    tables: &'a Tables,
    /// Handles of the graph tables, resolved once for the batch.
    cfs: GraphHandles<'a>,
    state: &'a mut WriterState,
    dicts: Dictionaries,
    new_dict_entries: Vec<(DictKind, u16)>,
    counters: Counters,
    vertices: HashMap<ExternalId, VertexSlot>,
    edges: HashSet<ExternalId>,
    shards: HashMap<(IndexKind, Vec<u8>), RoaringBitmap>,
    /// The records to encode, in put order.
    plan: Vec<PlannedRecord>,
    /// Dictionary ids of the planned records' attribute names.
    key_ids: Vec<u16>,
    /// The attribute name ids of the last vertex and the last edge, by position (see
    /// [`Pending::intern_attr_keys`]).
    last_vertex_attr_ids: Vec<u16>,
    last_edge_attr_ids: Vec<u16>,
    batch: WriteBatch,
    buf: Vec<u8>,
    summary: WriteSummary,
}

impl Writer {
    /// Holds off every other write while the guard lives (a prune deletes under the writer).
    pub(crate) fn exclusive(&self) -> MutexGuard<'_, WriterState> {
        self.state.lock()
    }

    /// Waits (holding `state`, so that nothing more is prepared) until every prepared write
    /// is committed or refused: a fold must not empty the adjacency tables under a write in
    /// flight. Fails after `timeout`.
    pub(crate) fn wait_for_commits(
        &self,
        state: &WriterState,
        timeout: std::time::Duration,
    ) -> Result<(), WriteError> {
        let start = std::time::Instant::now();
        loop {
            let settled = self.pipeline.committed.load(Ordering::Acquire) >= state.last_prepared
                // Every write of an aborted epoch is refused at its commit.
                || self.pipeline.epoch.load(Ordering::Acquire) != state.epoch;
            if settled {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(WriteError::WritesInFlight {
                    seconds: timeout.as_secs(),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Resolves and encodes a batch into one RocksDB write; see [`crate::Store::prepare_write`].
    pub(crate) fn prepare<'a>(
        &'a self,
        tables: &'a Tables,
        shared_dicts: &RwLock<Dictionaries>,
        batch: &RecordBatch,
        side: &[SidePut],
        durability: Durability,
    ) -> Result<PreparedWrite<'a>, WriteError> {
        self.resolve(tables, shared_dicts, batch, side, durability)?
            .encode(batch)
    }

    /// Resolves a batch against the writer state; see [`crate::Store::resolve_write`].
    pub(crate) fn resolve<'a>(
        &'a self,
        tables: &'a Tables,
        shared_dicts: &RwLock<Dictionaries>,
        batch: &RecordBatch,
        side: &[SidePut],
        durability: Durability,
    ) -> Result<ResolvedWrite<'a>, WriteError> {
        tables.check_writable()?;
        let mut state = self.state.lock();
        let epoch = self.pipeline.epoch.load(Ordering::Acquire);
        if state.epoch != epoch {
            // A prepared write failed or was dropped: start again from what is on disk.
            *shared_dicts.write() = Dictionaries::load(tables)?;
            state.reset(tables.read_counters()?);
            state.epoch = epoch;
        }
        // The external-id memtable filter serves the writer's look-ups: none while it tracks
        // what it wrote (a new or emptied archive), again once tracking stops at its bound.
        tables.set_external_id_memtable_filter(!state.written.is_tracking())?;
        let committed = self.pipeline.committed.load(Ordering::Acquire);
        while state
            .in_flight_edges
            .front()
            .is_some_and(|(seq, _)| *seq <= committed)
        {
            state.in_flight_edges.pop_front();
        }
        let dicts = shared_dicts.read().clone();
        let counters = state.counters;
        let spare = self.pipeline.spare_batches.lock().pop();
        let write_batch = spare.unwrap_or_else(|| {
            WriteBatch::with_capacity_bytes(self.pipeline.batch_bytes_hint.load(Ordering::Relaxed))
        });
        let mut p = Pending {
            tables,
            cfs: tables.graph_handles()?,
            state: &mut state,
            dicts,
            new_dict_entries: Vec::new(),
            counters,
            vertices: HashMap::new(),
            edges: HashSet::new(),
            shards: HashMap::new(),
            // A vertex or an edge each, and a stub for some edges' endpoints.
            plan: Vec::with_capacity(batch.vertices.len() + batch.edges.len() * 5 / 4),
            key_ids: Vec::new(),
            last_vertex_attr_ids: Vec::new(),
            last_edge_attr_ids: Vec::new(),
            batch: write_batch,
            buf: Vec::with_capacity(512),
            summary: WriteSummary::default(),
        };
        let known = KnownExternals::fetch(tables, &*p.state, batch)?;
        for (i, v) in batch.vertices.iter().enumerate() {
            p.add_vertex(i, v, &known)?;
        }
        let mut new_edges = Vec::new();
        for (i, e) in batch.edges.iter().enumerate() {
            if p.add_edge(i, e, &known)? {
                new_edges.push(i);
            }
        }
        p.counters.skipped += batch.skipped_lines;
        p.counters.rejected += batch.rejected_documents;
        for put in side {
            p.batch
                .put_cf(tables.side_for_write(put.table)?, &put.key, &put.value);
        }
        let resolved = p.finish(committed)?;
        if let Some(dicts) = resolved.dicts {
            *shared_dicts.write() = dicts;
        }
        state.last_prepared += 1;
        let seq = state.last_prepared;
        Ok(ResolvedWrite {
            pipeline: &self.pipeline,
            tables,
            batch: Some(resolved.batch),
            seq,
            epoch,
            durability,
            summary: resolved.summary,
            new_edges,
            plan: resolved.plan,
            key_ids: resolved.key_ids,
            vertex_count: batch.vertices.len(),
            edge_count: batch.edges.len(),
        })
    }

    /// Commits a prepared write (in the order writes were prepared).
    pub(crate) fn commit(
        &self,
        tables: &Tables,
        mut prepared: PreparedWrite<'_>,
    ) -> Result<WriteSummary, WriteError> {
        let Some(batch) = prepared.batch.take() else {
            return Err(WriteError::PipelineAborted);
        };
        if self.pipeline.epoch.load(Ordering::Acquire) != prepared.epoch {
            return Err(WriteError::PipelineAborted);
        }
        if let Err(e) = tables.write(batch, prepared.durability) {
            self.pipeline.abort(prepared.epoch);
            return Err(e);
        }
        self.pipeline
            .committed
            .store(prepared.seq, Ordering::Release);
        // The batch was freed here, on the committing thread. mimalloc hands a block above
        // 16 MiB (a bulk load's batch) that another thread than its own frees back to the
        // kernel at once (lazily: the kernel takes the pages when it wants memory, as when an
        // import fills the page cache), and the next batch then faulted in and zeroed its
        // pages (up to 2.7% of an import's CPU samples, `clear_page_erms` under
        // `WriteBatch::Put`). Allocated on this thread, the next one reuses the memory.
        let mut spare = self.pipeline.spare_batches.lock();
        if spare.len() < SPARE_BATCHES {
            spare.push(WriteBatch::with_capacity_bytes(
                self.pipeline.batch_bytes_hint.load(Ordering::Relaxed),
            ));
        }
        drop(spare);
        Ok(prepared.summary)
    }
}

impl Pending<'_> {
    fn intern(&mut self, kind: DictKind, name: &str) -> Result<u16, WriteError> {
        let (id, new) = self.dicts.get_mut(kind).intern(kind, name)?;
        if new {
            self.new_dict_entries.push((kind, id));
            self.batch
                .put_cf(self.cfs.meta, kind.meta_key(id), name.as_bytes());
        }
        Ok(id)
    }

    fn resolve_vertex(
        &mut self,
        ext: &ExternalId,
        known: &KnownExternals<'_>,
    ) -> Result<Option<VertexSlot>, WriteError> {
        if let Some(slot) = self.vertices.get(ext) {
            return Ok(Some(*slot));
        }
        if let Some(slot) = self.state.vertex_cache.get(ext) {
            return Ok(Some(*slot));
        }
        match known.vertices.get(ext) {
            Some(stored) => Ok(*stored),
            // Every id of the batch the cache lacks was fetched: only a caller's mistake
            // gets here, and a look-up keeps it right.
            None => Ok(self
                .tables
                .lookup_external(EXT_VERTEX, ext)?
                .map(VertexSlot::from)),
        }
    }

    fn shard(
        &mut self,
        kind: IndexKind,
        index_key: &[u8],
        id: u64,
    ) -> Result<(&mut RoaringBitmap, u32), WriteError> {
        let (shard, low) = split_id(id);
        let key = keys::shard_key(index_key, shard);
        // One hash of the key when the batch has the shard (most inserts).
        let bitmap = match self.shards.entry((kind, key)) {
            Entry::Occupied(held) => held.into_mut(),
            Entry::Vacant(slot) => {
                let bitmap = match self.state.shard_cache.get(slot.key()) {
                    Some(b) => b.clone(),
                    None => self
                        .tables
                        .read_shard(kind.handle(&self.cfs), &slot.key().1)?,
                };
                slot.insert(bitmap)
            }
        };
        Ok((bitmap, low))
    }

    fn index_insert(
        &mut self,
        kind: IndexKind,
        index_key: &[u8],
        id: u64,
    ) -> Result<(), WriteError> {
        let (bitmap, low) = self.shard(kind, index_key, id)?;
        bitmap.insert(low);
        Ok(())
    }

    fn index_remove(
        &mut self,
        kind: IndexKind,
        index_key: &[u8],
        id: u64,
    ) -> Result<(), WriteError> {
        let (bitmap, low) = self.shard(kind, index_key, id)?;
        bitmap.remove(low);
        Ok(())
    }

    /// Interns the names of `attrs` onto [`Pending::key_ids`], in order, and returns where
    /// they start. `last` holds the ids of the previous record of the same family (vertices
    /// or edges), by position: CamFlow writes a type's attributes in one order, and records of
    /// most types share their first ones, so most names are found by comparing them with the
    /// name at their position in the previous record instead of hashing them (interning was
    /// 10% of the preparing thread).
    fn intern_attr_keys(
        &mut self,
        attrs: &[(Name, Value)],
        last: AttrFamily,
    ) -> Result<usize, WriteError> {
        let start = self.key_ids.len();
        let mut last_ids = std::mem::take(match last {
            AttrFamily::Vertex => &mut self.last_vertex_attr_ids,
            AttrFamily::Edge => &mut self.last_edge_attr_ids,
        });
        for (i, (name, _)) in attrs.iter().enumerate() {
            let known = last_ids.get(i).copied().filter(|&id| {
                self.dicts
                    .attr_keys
                    .name(id)
                    .is_some_and(|known| **known == **name)
            });
            let id = match known {
                Some(id) => id,
                None => self.intern(DictKind::AttrKey, name)?,
            };
            self.key_ids.push(id);
        }
        last_ids.clear();
        last_ids.extend_from_slice(&self.key_ids[start..]);
        match last {
            AttrFamily::Vertex => self.last_vertex_attr_ids = last_ids,
            AttrFamily::Edge => self.last_edge_attr_ids = last_ids,
        }
        Ok(start)
    }

    fn add_vertex(
        &mut self,
        index: usize,
        v: &crate::model::VertexInput,
        known: &KnownExternals<'_>,
    ) -> Result<(), WriteError> {
        let existing = self.resolve_vertex(&v.ext_id, known)?;
        let id = match existing {
            Some(VertexSlot {
                stub_type: None, ..
            }) => {
                self.summary.vertices_duplicate += 1;
                return Ok(());
            }
            Some(VertexSlot {
                id,
                stub_type: Some(old_type),
            }) => {
                self.index_remove(IndexKind::VertexType, &old_type.to_be_bytes(), id)?;
                self.counters.stubs -= 1;
                self.summary.stubs_filled += 1;
                id
            }
            None => {
                let id = self.counters.next_vertex;
                self.counters.next_vertex += 1;
                self.summary.vertices_added += 1;
                id
            }
        };
        let type_id = self.intern(DictKind::VertexType, &v.type_name)?;
        let keys_at = self.intern_attr_keys(&v.attrs, AttrFamily::Vertex)?;
        self.plan.push(PlannedRecord::Vertex {
            index,
            id,
            type_id,
            keys_at,
        });
        self.index_insert(IndexKind::VertexType, &type_id.to_be_bytes(), id)?;
        if let Some(m) = v.placement.machine {
            self.index_insert(IndexKind::Machine, &m.to_be_bytes(), id)?;
        }
        self.vertices.insert(
            v.ext_id.clone(),
            VertexSlot {
                id,
                stub_type: None,
            },
        );
        Ok(())
    }

    /// The id of an edge's endpoint, planning a stub vertex when it is not defined yet.
    fn endpoint(
        &mut self,
        edge: usize,
        end: Endpoint,
        ep: &EndpointInput,
        known: &KnownExternals<'_>,
    ) -> Result<u64, WriteError> {
        if let Some(slot) = self.resolve_vertex(&ep.ext_id, known)? {
            return Ok(slot.id);
        }
        let id = self.counters.next_vertex;
        self.counters.next_vertex += 1;
        self.counters.stubs += 1;
        self.summary.stubs_created += 1;
        let type_id = self.intern(
            DictKind::VertexType,
            ep.type_hint.as_deref().unwrap_or("unknown"),
        )?;
        self.plan.push(PlannedRecord::Stub {
            edge,
            end,
            id,
            type_id,
        });
        self.index_insert(IndexKind::VertexType, &type_id.to_be_bytes(), id)?;
        self.vertices.insert(
            ep.ext_id.clone(),
            VertexSlot {
                id,
                stub_type: Some(type_id),
            },
        );
        Ok(id)
    }

    /// Adds an edge; false when it is a duplicate (stored, in flight, or earlier in the batch).
    fn add_edge(
        &mut self,
        index: usize,
        e: &crate::model::EdgeInput,
        known: &KnownExternals<'_>,
    ) -> Result<bool, WriteError> {
        if self.edges.contains(&e.ext_id) || known.earlier_edges.contains(&e.ext_id) {
            self.summary.edges_duplicate += 1;
            return Ok(false);
        }
        let src = self.endpoint(index, Endpoint::Src, &e.src, known)?;
        let dst = self.endpoint(index, Endpoint::Dst, &e.dst, known)?;
        let id = self.counters.next_edge;
        self.counters.next_edge += 1;
        let type_id = self.intern(DictKind::EdgeType, &e.type_name)?;
        let keys_at = self.intern_attr_keys(&e.attrs, AttrFamily::Edge)?;
        self.plan.push(PlannedRecord::Edge {
            index,
            id,
            type_id,
            src,
            dst,
            keys_at,
        });
        self.index_insert(IndexKind::EdgeType, &type_id.to_be_bytes(), id)?;
        self.edges.insert(e.ext_id.clone());
        self.summary.edges_added += 1;
        Ok(true)
    }

    /// Encodes counters and index shards into the batch and publishes the new writer state
    /// (the records are encoded later, by [`ResolvedWrite::encode`], and the write committed
    /// by [`Writer::commit`]).
    fn finish(mut self, committed: u64) -> Result<Resolved, WriteError> {
        for (counter, value) in self.counters.written_by_writer() {
            Tables::put_counter(&mut self.batch, self.cfs.meta, counter, value);
        }
        for ((kind, key), bitmap) in &self.shards {
            self.buf.clear();
            bitmap
                .serialize_into(&mut self.buf)
                .map_err(|e| WriteError::corruption("index bitmap", e.to_string()))?;
            self.batch.put_cf(kind.handle(&self.cfs), key, &self.buf);
        }

        let state = self.state;
        state.counters = self.counters;
        state.written.insert_all(EXT_VERTEX, self.vertices.keys());
        state.written.insert_all(EXT_EDGE, self.edges.iter());
        // The caches may only be dropped while nothing is in flight: an uncommitted vertex or
        // shard is not on disk yet, so the cache is its only copy.
        let idle = state.last_prepared == committed;
        if idle && state.vertex_cache.len() + self.vertices.len() > VERTEX_CACHE_LIMIT {
            state.vertex_cache.clear();
        }
        state.vertex_cache.extend(self.vertices);
        if idle && state.shard_cache.len() + self.shards.len() > SHARD_CACHE_LIMIT {
            state.shard_cache.clear();
        }
        state.shard_cache.extend(self.shards);
        if !self.edges.is_empty() {
            state
                .in_flight_edges
                .push_back((state.last_prepared + 1, self.edges));
        }
        Ok(Resolved {
            batch: self.batch,
            dicts: (!self.new_dict_entries.is_empty()).then_some(self.dicts),
            summary: self.summary,
            plan: self.plan,
            key_ids: self.key_ids,
        })
    }
}

/// What [`Pending::finish`] hands back: the write batch so far, the dictionaries when the
/// batch added names (for the caller to publish), and what is left to encode.
struct Resolved {
    batch: WriteBatch,
    dicts: Option<Dictionaries>,
    summary: WriteSummary,
    plan: Vec<PlannedRecord>,
    key_ids: Vec<u16>,
}

/// What the archive holds of a batch's external ids, read in two batched look-ups before the
/// batch is resolved: every vertex id (records and edge endpoints) the writer's cache lacks,
/// and every edge id that no write in flight holds. Neither the cache nor the writes in flight
/// change while the batch is prepared (only between batches), so what this lacks is known
/// not to be stored.
struct KnownExternals<'b> {
    /// Each fetched vertex id, with what the archive holds of it (`None`: not stored).
    vertices: HashMap<&'b ExternalId, Option<VertexSlot>>,
    /// The batch's edge ids that an earlier write holds: stored, or in a write in flight.
    earlier_edges: HashSet<&'b ExternalId>,
}

impl<'b> KnownExternals<'b> {
    fn fetch(
        tables: &Tables,
        state: &WriterState,
        batch: &'b RecordBatch,
    ) -> Result<KnownExternals<'b>, WriteError> {
        // Sized for the batch at once: growing these sets rehashed them ~3% of an import's
        // writer thread.
        let mut wanted: HashSet<&'b ExternalId> =
            HashSet::with_capacity(batch.vertices.len() + batch.edges.len());
        let vertex_ids = batch.vertices.iter().map(|v| &v.ext_id);
        let endpoint_ids = batch
            .edges
            .iter()
            .flat_map(|e| [&e.src.ext_id, &e.dst.ext_id]);
        // Ids known not to be stored are answered without a look-up.
        let mut vertices: HashMap<&'b ExternalId, Option<VertexSlot>> =
            HashMap::with_capacity(batch.vertices.len() + batch.edges.len());
        let uncached: Vec<&ExternalId> = vertex_ids
            .chain(endpoint_ids)
            .filter(|ext| !state.vertex_cache.contains_key(*ext))
            .collect();
        let held = state.written.may_hold_each(EXT_VERTEX, &uncached);
        for (ext, held) in uncached.into_iter().zip(held) {
            if held {
                wanted.insert(ext);
            } else {
                vertices.insert(ext, None);
            }
        }
        let wanted: Vec<&ExternalId> = wanted.into_iter().collect();
        let found = tables.lookup_externals(EXT_VERTEX, &wanted)?;
        vertices.extend(
            wanted
                .into_iter()
                .zip(found)
                .map(|(ext, stored)| (ext, stored.map(VertexSlot::from))),
        );

        let mut earlier_edges: HashSet<&'b ExternalId> = HashSet::new();
        let mut wanted: HashSet<&'b ExternalId> = HashSet::with_capacity(batch.edges.len());
        let mut not_in_flight = Vec::with_capacity(batch.edges.len());
        for e in &batch.edges {
            let in_flight = state
                .in_flight_edges
                .iter()
                .any(|(_, edges)| edges.contains(&e.ext_id));
            if in_flight {
                earlier_edges.insert(&e.ext_id);
            } else {
                not_in_flight.push(&e.ext_id);
            }
        }
        let held = state.written.may_hold_each(EXT_EDGE, &not_in_flight);
        wanted.extend(
            not_in_flight
                .into_iter()
                .zip(held)
                .filter_map(|(ext, held)| held.then_some(ext)),
        );
        let wanted: Vec<&ExternalId> = wanted.into_iter().collect();
        let found = tables.lookup_externals(EXT_EDGE, &wanted)?;
        earlier_edges.extend(
            wanted
                .into_iter()
                .zip(found)
                .filter_map(|(ext, stored)| stored.map(|_| ext)),
        );
        Ok(KnownExternals {
            vertices,
            earlier_edges,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{EndpointInput, ExternalId, Placement, ProvRelation, RecordBatch};
    use crate::{Durability, EdgeInput, Store};

    fn one_edge(n: usize) -> RecordBatch {
        let ext = |s: String| ExternalId::parse(&s);
        RecordBatch {
            edges: vec![EdgeInput {
                ext_id: ext(format!("e{n}")),
                type_name: "read".into(),
                relation: ProvRelation::Used,
                src: EndpointInput {
                    ext_id: ext(format!("v{n}")),
                    type_hint: None,
                },
                dst: EndpointInput {
                    ext_id: ext(format!("v{}", n + 1)),
                    type_hint: None,
                },
                placement: Placement::default(),
                attrs: vec![],
            }],
            ..Default::default()
        }
    }

    /// What the latest options file RocksDB wrote in `dir` says of the external-id table's
    /// `memtable_whole_key_filtering`.
    fn external_id_filter_on_disk(dir: &std::path::Path) -> bool {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("OPTIONS-"))
            .collect();
        files.sort_by_key(|n| n["OPTIONS-".len()..].parse::<u64>().unwrap());
        let text = std::fs::read_to_string(dir.join(files.last().unwrap())).unwrap();
        let section = text
            .split("[CFOptions \"external_ids\"]")
            .nth(1)
            .expect("external_ids section");
        let line = section
            .lines()
            .find(|l| l.trim_start().starts_with("memtable_whole_key_filtering="))
            .expect("the option");
        line.trim().ends_with("=true")
    }

    /// A new archive's external-id memtables have no filter while the writer tracks what it
    /// wrote (it looks nothing up); they get it when tracking stops, and an archive that holds
    /// ids opens with it.
    #[test]
    fn the_external_id_memtable_filter_is_on_exactly_when_the_writer_looks_ids_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(!store.tables.external_id_memtable_filter());
        assert!(!external_id_filter_on_disk(dir.path()));
        store.write(&one_edge(1)).unwrap();
        assert!(!store.tables.external_id_memtable_filter());
        // Tracking stops at its bound: the next write turns the filter on.
        store.writer.exclusive().written = crate::written_ids::WrittenIds::tracking(1);
        store.write(&one_edge(2)).unwrap();
        assert!(!store.writer.exclusive().written.is_tracking());
        store.write(&one_edge(3)).unwrap();
        assert!(store.tables.external_id_memtable_filter());
        assert!(external_id_filter_on_disk(dir.path()));
        store.close().unwrap();

        let store = Store::open(dir.path()).unwrap();
        assert!(store.tables.external_id_memtable_filter());
        assert!(external_id_filter_on_disk(dir.path()));
        assert_eq!(store.stats().unwrap().edges, 3);
        store.close().unwrap();
    }

    /// Each commit leaves an empty batch for a later write, made on the committing thread, up
    /// to two; a write takes one.
    #[test]
    fn commits_leave_spare_batches_that_writes_take() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let spare = || store.writer.pipeline.spare_batches.lock().len();
        assert_eq!(spare(), 0);
        let p1 = store
            .prepare_write(&one_edge(1), &[], Durability::Buffered)
            .unwrap();
        let p2 = store
            .prepare_write(&one_edge(2), &[], Durability::Buffered)
            .unwrap();
        let p3 = store
            .prepare_write(&one_edge(3), &[], Durability::Buffered)
            .unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                for p in [p1, p2, p3] {
                    store.commit_prepared(p).unwrap();
                }
            })
            .join()
            .unwrap();
        });
        assert_eq!(spare(), 2);
        store.write(&one_edge(4)).unwrap();
        assert_eq!(spare(), 2, "took one, and its commit left one");
        let _p5 = store
            .prepare_write(&one_edge(5), &[], Durability::Buffered)
            .unwrap();
        assert_eq!(spare(), 1);
        assert_eq!(store.stats().unwrap().edges, 4);
    }
}
