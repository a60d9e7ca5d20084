//! The store: opening RocksDB with provdb's column families, and every read. Writes live in
//! `writer.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;
use rocksdb::{Cache, ColumnFamily, DBRawIterator, ReadOptions, DB};

use crate::codec::{self, StoredEdge, StoredExternalId, StoredVertex};
use crate::column_families as cf;
use crate::dictionary::{DictKind, Dictionaries};
use crate::error::{Result, StorageError};
use crate::id_set::IdSet;
use crate::ids::{AttrKeyId, EdgeId, TypeId, VertexId};
use crate::keys::{self, EXT_EDGE, EXT_VERTEX};
use crate::model::{Adjacent, Direction, Edge, ExternalId, Value, Vertex};
use crate::side_table::SideTable;
use crate::writer::WriterState;

/// On-disk format version written by this build. It reads every version from
/// [`OLDEST_FORMAT_VERSION`] on; an archive keeps the version it was created with.
///
/// - 1: the graph tables, indexes and side tables.
/// - 2: adds the `vertex_external_ids` table (vertex id -> external id), so that returning
///   ids reads a small LZ4 table instead of decoding zstd-compressed vertex records. A
///   version-1 archive is read (and written) without it: ids come from the records.
pub const FORMAT_VERSION: u32 = 2;

/// Oldest on-disk format version this build reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// One raw key/value pair of a column family.
pub type RawEntry = (Box<[u8]>, Box<[u8]>);

pub(crate) const META_FORMAT: &[u8] = b"format_version";
pub(crate) const META_NEXT_VERTEX: &[u8] = b"counter/next_vertex";
pub(crate) const META_NEXT_EDGE: &[u8] = b"counter/next_edge";
pub(crate) const META_STUBS: &[u8] = b"counter/stub_vertices";
pub(crate) const META_SKIPPED: &[u8] = b"counter/skipped_lines";
pub(crate) const META_REJECTED: &[u8] = b"counter/rejected_documents";
/// Vertices and edges deleted by [`Store::prune`]: ids are never reused, so the live count is
/// the ids allocated minus these.
pub(crate) const META_PRUNED_VERTICES: &[u8] = b"counter/pruned_vertices";
pub(crate) const META_PRUNED_EDGES: &[u8] = b"counter/pruned_edges";

/// How a store is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenMode {
    /// The one writer: creates the database if missing. Holds RocksDB's lock.
    ReadWrite,
    /// A read-only view of the database as it was when opened.
    ReadOnly,
    /// A secondary instance that follows a running writer: call [`Store::catch_up`] to see its
    /// newer writes. Needs a private folder for its own logs.
    Secondary {
        /// Folder for the secondary's own files.
        secondary_path: PathBuf,
    },
}

/// When a write is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Written to the WAL without fsync: survives a process crash, not a power loss. Call
    /// [`Store::flush`] to make everything durable.
    Buffered,
    /// The WAL is fsynced before the write returns.
    Sync,
}

/// Options for [`Store::open_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Open mode.
    pub mode: OpenMode,
    /// Block cache size in bytes, shared by every column family.
    pub block_cache_bytes: usize,
    /// Default durability of [`Store::write`].
    pub durability: Durability,
    /// Side tables a writer uses (created when missing); see [`SideTable`].
    pub side_tables: Vec<SideTable>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            mode: OpenMode::ReadWrite,
            block_cache_bytes: 256 << 20,
            durability: Durability::Buffered,
            side_tables: Vec::new(),
        }
    }
}

/// Totals of a store, read from its counters and indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Vertices, stubs included.
    pub vertices: u64,
    /// Vertices referenced by an edge but not defined yet.
    pub stub_vertices: u64,
    /// Edges.
    pub edges: u64,
    /// Non-JSON lines skipped while importing.
    pub skipped_lines: u64,
    /// Documents rejected by the decoder.
    pub rejected_documents: u64,
    /// Vertices per type name, sorted by name.
    pub vertex_types: Vec<(String, u64)>,
    /// Edges per type name, sorted by name.
    pub edge_types: Vec<(String, u64)>,
    /// Vertices per machine id, sorted by machine id.
    pub machines: Vec<(u32, u64)>,
}

/// A provdb store: the provenance graph in RocksDB.
///
/// ```
/// use provdb_storage::{Store, RecordBatch};
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path())?;
/// assert_eq!(store.stats()?.vertices, 0);
/// store.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Store {
    pub(crate) db: DB,
    pub(crate) mode: OpenMode,
    pub(crate) dicts: RwLock<Dictionaries>,
    pub(crate) writer: Mutex<WriterState>,
    /// Pipeline bookkeeping of prepared writes (see [`crate::PreparedWrite`]).
    pub(crate) pipeline: crate::writer::Pipeline,
    pub(crate) durability: Durability,
    /// On-disk format version of this archive ([`FORMAT_VERSION`] for a new one).
    pub(crate) format: u32,
    /// Names of the side tables open (see [`crate::SideTable`]).
    pub(crate) side_tables: Vec<String>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Store {
    /// Opens (or creates) a store for reading and writing.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, StoreOptions::default())
    }

    /// Opens a store with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let db_opts = cf::db_options();
        let writer = options.mode == OpenMode::ReadWrite;
        let tables = cf::open_tables(&db_opts, &path, &cache, writer, &options.side_tables)?;
        let db = match &options.mode {
            OpenMode::ReadWrite => DB::open_cf_descriptors(&db_opts, &path, tables.descriptors)?,
            OpenMode::ReadOnly => {
                DB::open_cf_descriptors_read_only(&db_opts, &path, tables.descriptors, false)?
            }
            OpenMode::Secondary { secondary_path } => {
                let mut opts = db_opts;
                opts.set_max_open_files(-1);
                DB::open_cf_descriptors_as_secondary(
                    &opts,
                    &path,
                    secondary_path,
                    tables.descriptors,
                )?
            }
        };
        let mut store = Store {
            db,
            mode: options.mode,
            dicts: RwLock::new(Dictionaries::default()),
            writer: Mutex::new(WriterState::default()),
            pipeline: crate::writer::Pipeline::default(),
            durability: options.durability,
            format: FORMAT_VERSION,
            side_tables: tables.side_tables,
            path,
        };
        store.format = store.check_format()?;
        store.reload()?;
        Ok(store)
    }

    /// The folder of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The archive's format version, checked to be one this build reads; a new archive is
    /// marked with [`FORMAT_VERSION`].
    fn check_format(&self) -> Result<u32> {
        match self.db.get_cf(self.cf(cf::META), META_FORMAT)? {
            Some(v) => {
                let found = u32::from_be_bytes(
                    v.as_slice()
                        .try_into()
                        .map_err(|_| StorageError::corruption("format version", "not 4 bytes"))?,
                );
                if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
                    return Err(StorageError::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                Ok(found)
            }
            None if self.mode == OpenMode::ReadWrite => {
                let mut opts = rocksdb::WriteOptions::default();
                opts.set_sync(true);
                self.db.put_cf_opt(
                    self.cf(cf::META),
                    META_FORMAT,
                    FORMAT_VERSION.to_be_bytes(),
                    &opts,
                )?;
                Ok(FORMAT_VERSION)
            }
            // An empty read-only or secondary view (nothing written yet) reads as current.
            None => Ok(FORMAT_VERSION),
        }
    }

    /// The archive's on-disk format version.
    pub fn format_version(&self) -> u32 {
        self.format
    }

    /// Whether this archive keeps the vertex -> external id table (format 2 on).
    pub(crate) fn has_vertex_external_ids(&self) -> bool {
        self.format >= 2
    }

    /// Reloads dictionaries and counters from disk (after a catch-up, or a failed write).
    pub(crate) fn reload(&self) -> Result<()> {
        self.reload_dictionaries()?;
        self.writer.lock().reset(self.read_counters()?);
        Ok(())
    }

    /// Reloads the dictionaries from disk.
    pub(crate) fn reload_dictionaries(&self) -> Result<()> {
        let mut dicts = Dictionaries::default();
        for kind in DictKind::ALL {
            let dict = dicts.get_mut(kind);
            for item in self.scan_prefix(cf::META, kind.prefix()) {
                let (k, v) = item?;
                let id_bytes: [u8; 2] = k[kind.prefix().len()..]
                    .try_into()
                    .map_err(|_| StorageError::corruption("dictionary", "bad key"))?;
                let name = std::str::from_utf8(&v)
                    .map_err(|_| StorageError::corruption("dictionary", "name is not UTF-8"))?;
                dict.load(kind, u16::from_be_bytes(id_bytes), name)?;
            }
        }
        *self.dicts.write() = dicts;
        Ok(())
    }

    /// Follows the primary (secondary mode) and reloads dictionaries; a no-op otherwise.
    pub fn catch_up(&self) -> Result<()> {
        if let OpenMode::Secondary { .. } = self.mode {
            self.db.try_catch_up_with_primary()?;
            self.reload()?;
        }
        Ok(())
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        // Every column family of `cf::ALL` is created at open, so a missing handle is a bug.
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} was not opened"))
    }

    pub(crate) fn read_counter(&self, key: &[u8]) -> Result<u64> {
        match self.db.get_cf(self.cf(cf::META), key)? {
            Some(v) => {
                Ok(u64::from_be_bytes(v.as_slice().try_into().map_err(
                    |_| StorageError::corruption("counter", "not 8 bytes"),
                )?))
            }
            None => Ok(0),
        }
    }

    pub(crate) fn read_counters(&self) -> Result<crate::writer::Counters> {
        Ok(crate::writer::Counters {
            next_vertex: self.read_counter(META_NEXT_VERTEX)?,
            next_edge: self.read_counter(META_NEXT_EDGE)?,
            stubs: self.read_counter(META_STUBS)?,
            skipped: self.read_counter(META_SKIPPED)?,
            rejected: self.read_counter(META_REJECTED)?,
        })
    }

    /// Iterates the key/value pairs of a column family whose keys start with `prefix`.
    pub(crate) fn scan_prefix<'a>(
        &'a self,
        cf_name: &str,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<RawEntry>> + 'a {
        let mut opts = ReadOptions::default();
        if let Some(end) = keys::prefix_upper_bound(prefix) {
            opts.set_iterate_upper_bound(end);
        }
        opts.set_total_order_seek(true);
        self.db
            .iterator_cf_opt(
                self.cf(cf_name),
                opts,
                rocksdb::IteratorMode::From(prefix, rocksdb::Direction::Forward),
            )
            .map(|r| r.map_err(StorageError::from))
    }

    /// Makes every write so far durable: syncs the WAL and flushes memtables to SST files.
    pub fn flush(&self) -> Result<()> {
        if self.mode != OpenMode::ReadWrite {
            return Ok(());
        }
        self.db.flush_wal(true)?;
        let cfs: Vec<&ColumnFamily> = self.table_names().map(|n| self.cf(n)).collect();
        self.db
            .flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())?;
        Ok(())
    }

    /// Compacts every column family down to the bottom level, rewritten with the archive's
    /// compression (zstd level 9, trained dictionary), except the adjacency tables every
    /// traversal step reads, which stay in LZ4 (see `StoragePolicy`).
    pub fn compact(&self) -> Result<()> {
        // Force the bottom level too: files that reached it by trivial moves still carry the
        // fast compression of the upper levels, not the archive's.
        let mut opts = rocksdb::CompactOptions::default();
        opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        for name in self.table_names() {
            if self.mode == OpenMode::ReadWrite && cf::StoragePolicy::of(name).archive_compression()
            {
                self.db.set_options_cf(
                    self.cf(name),
                    &[("bottommost_compression_opts", cf::ARCHIVE_COMPRESSION)],
                )?;
            }
            self.db
                .compact_range_cf_opt(self.cf(name), None::<&[u8]>, None::<&[u8]>, &opts);
        }
        Ok(())
    }

    /// Flushes and closes the store. Always call it: durability does not rely on `Drop`.
    pub fn close(self) -> Result<()> {
        self.flush()
    }

    /// Size of the live SST files of every column family, in bytes.
    pub fn disk_size(&self) -> Result<u64> {
        Ok(self
            .disk_size_by_column_family()?
            .iter()
            .map(|(_, n)| n)
            .sum())
    }

    /// Size of the live SST files of each column family, in bytes (where space goes).
    pub fn disk_size_by_column_family(&self) -> Result<Vec<(String, u64)>> {
        let mut sizes = Vec::new();
        for name in self.table_names() {
            let n = self
                .db
                .property_int_value_cf(self.cf(name), "rocksdb.total-sst-files-size")?
                .unwrap_or(0);
            sizes.push((name.to_owned(), n));
        }
        Ok(sizes)
    }

    /// Every column family open: the graph tables this archive has, then its side tables.
    pub(crate) fn table_names(&self) -> impl Iterator<Item = &str> + '_ {
        cf::GRAPH_TABLES
            .into_iter()
            .filter(|name| self.db.cf_handle(name).is_some())
            .chain(self.side_tables.iter().map(String::as_str))
    }

    // ---- reads -------------------------------------------------------------------------

    fn ext_to_model(ext: StoredExternalId) -> ExternalId {
        match ext {
            StoredExternalId::Binary(b) => ExternalId::Binary(b),
            StoredExternalId::Text(t) => ExternalId::Text(t),
        }
    }

    fn resolve_attrs(&self, attrs: Vec<(u16, Value)>) -> Result<Vec<(Arc<str>, Value)>> {
        let dicts = self.dicts.read();
        attrs
            .into_iter()
            .map(|(k, v)| {
                dicts
                    .attr_keys
                    .name(k)
                    .cloned()
                    .map(|name| (name, v))
                    .ok_or_else(|| {
                        StorageError::corruption("attribute", format!("unknown key id {k}"))
                    })
            })
            .collect()
    }

    /// The vertex with internal id `id`.
    pub fn vertex(&self, id: VertexId) -> Result<Option<Vertex>> {
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf(cf::VERTICES), keys::id_key(id.0))?
        else {
            return Ok(None);
        };
        self.decode_vertex(id, &bytes).map(Some)
    }

    /// The external id of vertex `id`, without decoding its record (from format 2 on).
    pub fn vertex_external_id(&self, id: VertexId) -> Result<Option<ExternalId>> {
        if !self.has_vertex_external_ids() {
            return Ok(self.vertex(id)?.map(|v| v.ext_id));
        }
        match self
            .db
            .get_pinned_cf(self.cf(cf::VERTEX_EXTERNAL_IDS), keys::id_key(id.0))?
        {
            Some(bytes) => codec::decode_external_id(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn decode_vertex(&self, id: VertexId, bytes: &[u8]) -> Result<Vertex> {
        let stored: StoredVertex = codec::decode(bytes, "vertex record")?;
        let type_name = self
            .vertex_type_name(TypeId(stored.type_id))
            .ok_or_else(|| StorageError::corruption("vertex record", "unknown type id"))?;
        Ok(Vertex {
            id,
            ext_id: Self::ext_to_model(stored.ext_id),
            type_id: TypeId(stored.type_id),
            type_name,
            class: stored.class,
            stub: stored.stub,
            placement: stored.placement,
            attrs: self.resolve_attrs(stored.attrs)?,
        })
    }

    /// The edge with internal id `id`.
    pub fn edge(&self, id: EdgeId) -> Result<Option<Edge>> {
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf(cf::EDGES), keys::id_key(id.0))?
        else {
            return Ok(None);
        };
        self.decode_edge(id, &bytes).map(Some)
    }

    fn decode_edge(&self, id: EdgeId, bytes: &[u8]) -> Result<Edge> {
        let stored: StoredEdge = codec::decode(bytes, "edge record")?;
        let type_name = self
            .edge_type_name(TypeId(stored.type_id))
            .ok_or_else(|| StorageError::corruption("edge record", "unknown type id"))?;
        Ok(Edge {
            id,
            ext_id: Self::ext_to_model(stored.ext_id),
            type_id: TypeId(stored.type_id),
            type_name,
            relation: stored.relation,
            src: VertexId(stored.src),
            dst: VertexId(stored.dst),
            placement: stored.placement,
            attrs: self.resolve_attrs(stored.attrs)?,
        })
    }

    /// Every stored vertex in id order, read as the iterator advances (memory stays that of
    /// one record).
    pub fn scan_vertices(&self) -> impl Iterator<Item = Result<Vertex>> + '_ {
        self.scan_records(cf::VERTICES, "vertex key")
            .map(|item| item.and_then(|(id, v)| self.decode_vertex(VertexId(id), &v)))
    }

    /// Every stored edge in id order, read as the iterator advances.
    pub fn scan_edges(&self) -> impl Iterator<Item = Result<Edge>> + '_ {
        self.scan_records(cf::EDGES, "edge key")
            .map(|item| item.and_then(|(id, v)| self.decode_edge(EdgeId(id), &v)))
    }

    /// Every entry of a table keyed by 8-byte ids (vertex or edge records), in id order, with
    /// its id decoded; a key of another length is a [`StorageError::Corruption`] naming
    /// `what`, and the scan goes on after it.
    pub(crate) fn scan_records<'a>(
        &'a self,
        cf_name: &str,
        what: &'static str,
    ) -> impl Iterator<Item = Result<(u64, Box<[u8]>)>> + 'a {
        self.scan_prefix(cf_name, &[]).map(move |item| {
            let (k, v) = item?;
            let id = keys::decode_id_key(&k).ok_or_else(|| {
                StorageError::corruption(what, format!("key of {} bytes", k.len()))
            })?;
            Ok((id, v))
        })
    }

    /// Internal id of the vertex with external id `ext`.
    pub fn vertex_id(&self, ext: &ExternalId) -> Result<Option<VertexId>> {
        Ok(self
            .lookup_external(EXT_VERTEX, ext)?
            .map(|(id, _)| VertexId(id)))
    }

    /// Internal id of the edge with external id `ext`.
    pub fn edge_id(&self, ext: &ExternalId) -> Result<Option<EdgeId>> {
        Ok(self
            .lookup_external(EXT_EDGE, ext)?
            .map(|(id, _)| EdgeId(id)))
    }

    /// (internal id, stub type if the vertex is a stub).
    pub(crate) fn lookup_external(
        &self,
        kind: u8,
        ext: &ExternalId,
    ) -> Result<Option<(u64, Option<u16>)>> {
        let mut key = Vec::with_capacity(40);
        ext.encode_key(kind, &mut key);
        match self.db.get_pinned_cf(self.cf(cf::EXTERNAL_IDS), &key)? {
            Some(v) => codec::decode_external_value(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Name of a vertex type.
    pub fn vertex_type_name(&self, id: TypeId) -> Option<Arc<str>> {
        self.dicts.read().vertex_types.name(id.0).cloned()
    }

    /// Name of an edge type.
    pub fn edge_type_name(&self, id: TypeId) -> Option<Arc<str>> {
        self.dicts.read().edge_types.name(id.0).cloned()
    }

    /// Id of a vertex type name.
    pub fn vertex_type_id(&self, name: &str) -> Option<TypeId> {
        self.dicts.read().vertex_types.get(name).map(TypeId)
    }

    /// Id of an edge type name.
    pub fn edge_type_id(&self, name: &str) -> Option<TypeId> {
        self.dicts.read().edge_types.get(name).map(TypeId)
    }

    /// Every vertex type known to the store.
    pub fn vertex_types(&self) -> Vec<(TypeId, Arc<str>)> {
        self.dicts
            .read()
            .vertex_types
            .entries()
            .map(|(i, n)| (TypeId(i), n.clone()))
            .collect()
    }

    /// Every edge type known to the store.
    pub fn edge_types(&self) -> Vec<(TypeId, Arc<str>)> {
        self.dicts
            .read()
            .edge_types
            .entries()
            .map(|(i, n)| (TypeId(i), n.clone()))
            .collect()
    }

    /// Every attribute key known to the store.
    pub fn attribute_keys(&self) -> Vec<(AttrKeyId, Arc<str>)> {
        self.dicts
            .read()
            .attr_keys
            .entries()
            .map(|(i, n)| (AttrKeyId(i), n.clone()))
            .collect()
    }

    /// Number of vertex ids allocated (vertex ids are `0..vertex_count()`; after a prune,
    /// some of them name no vertex).
    pub fn vertex_count(&self) -> Result<u64> {
        self.read_counter(META_NEXT_VERTEX)
    }

    /// Number of edge ids allocated (edge ids are `0..edge_count()`; after a prune, some of
    /// them name no edge).
    pub fn edge_count(&self) -> Result<u64> {
        self.read_counter(META_NEXT_EDGE)
    }

    /// Number of vertices stored (allocated minus pruned).
    pub fn live_vertex_count(&self) -> Result<u64> {
        Ok(self
            .vertex_count()?
            .saturating_sub(self.read_counter(META_PRUNED_VERTICES)?))
    }

    /// Number of edges stored (allocated minus pruned).
    pub fn live_edge_count(&self) -> Result<u64> {
        Ok(self
            .edge_count()?
            .saturating_sub(self.read_counter(META_PRUNED_EDGES)?))
    }

    fn read_id_set(&self, cf_name: &str, index_key: &[u8]) -> Result<IdSet> {
        let mut set = IdSet::default();
        for item in self.scan_prefix(cf_name, index_key) {
            let (k, v) = item?;
            let shard_bytes: [u8; 8] = k[index_key.len()..]
                .try_into()
                .map_err(|_| StorageError::corruption("index key", "bad shard"))?;
            let bitmap = RoaringBitmap::deserialize_from(&v[..])
                .map_err(|e| StorageError::corruption("index bitmap", e.to_string()))?;
            set.push_shard(u64::from_be_bytes(shard_bytes), bitmap);
        }
        Ok(set)
    }

    fn count_id_set(&self, cf_name: &str, index_key: &[u8]) -> Result<u64> {
        let mut total = 0;
        for item in self.scan_prefix(cf_name, index_key) {
            let (_, v) = item?;
            total += crate::id_set::serialized_cardinality(&v)
                .ok_or_else(|| StorageError::corruption("index bitmap", "bad header"))?;
        }
        Ok(total)
    }

    /// Number of vertices of a type, from the bitmap headers (no deserialization).
    pub fn count_vertices_of_type(&self, t: TypeId) -> Result<u64> {
        self.count_id_set(cf::VERTEX_TYPE_INDEX, &t.0.to_be_bytes())
    }

    /// Number of edges of a type, from the bitmap headers (no deserialization).
    pub fn count_edges_of_type(&self, t: TypeId) -> Result<u64> {
        self.count_id_set(cf::EDGE_TYPE_INDEX, &t.0.to_be_bytes())
    }

    /// Number of vertices of a machine, from the bitmap headers (no deserialization).
    pub fn count_vertices_of_machine(&self, machine: u32) -> Result<u64> {
        self.count_id_set(cf::MACHINE_INDEX, &machine.to_be_bytes())
    }

    /// Ids of the vertices of a type (stubs carry their hinted type, or `unknown`).
    pub fn vertices_of_type(&self, t: TypeId) -> Result<IdSet> {
        self.read_id_set(cf::VERTEX_TYPE_INDEX, &t.0.to_be_bytes())
    }

    /// Ids of the edges of a type.
    pub fn edges_of_type(&self, t: TypeId) -> Result<IdSet> {
        self.read_id_set(cf::EDGE_TYPE_INDEX, &t.0.to_be_bytes())
    }

    /// Ids of the vertices of a machine.
    pub fn vertices_of_machine(&self, machine: u32) -> Result<IdSet> {
        self.read_id_set(cf::MACHINE_INDEX, &machine.to_be_bytes())
    }

    /// Machines that have vertices.
    pub fn machine_ids(&self) -> Result<Vec<u32>> {
        let mut out: Vec<u32> = Vec::new();
        for item in self.scan_prefix(cf::MACHINE_INDEX, &[]) {
            let (k, _) = item?;
            let m = u32::from_be_bytes(
                k.get(0..4)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| StorageError::corruption("machine index", "short key"))?,
            );
            if out.last() != Some(&m) {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Edges adjacent to `v` in `direction`, restricted to `types` (all types when empty), in
    /// (direction, type, edge id) order. One prefix scan per type: cost follows the result.
    pub fn neighbours(
        &self,
        v: VertexId,
        direction: Direction,
        types: &[TypeId],
    ) -> AdjacencyScan<'_> {
        let mut prefixes = Vec::new();
        let dirs: &[Direction] = match direction {
            Direction::Out => &[Direction::Out],
            Direction::In => &[Direction::In],
            Direction::Both => &[Direction::Out, Direction::In],
        };
        for d in dirs {
            if types.is_empty() {
                prefixes.push((*d, v.0.to_be_bytes().to_vec()));
            } else {
                let mut sorted = types.to_vec();
                sorted.sort();
                sorted.dedup();
                for t in sorted {
                    let mut p = v.0.to_be_bytes().to_vec();
                    p.extend_from_slice(&t.0.to_be_bytes());
                    prefixes.push((*d, p));
                }
            }
        }
        prefixes.reverse();
        AdjacencyScan {
            store: self,
            pending: prefixes,
            current: None,
        }
    }

    /// Edge ids whose time (Unix seconds) is in `from..=to`, in time order.
    pub fn edges_in_time_range(
        &self,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = Result<EdgeId>> + '_ {
        let mut opts = ReadOptions::default();
        let end = to.checked_add(1).map(keys::time_prefix);
        if let Some(end) = end {
            opts.set_iterate_upper_bound(end.to_vec());
        }
        let start = keys::time_prefix(from);
        self.db
            .iterator_cf_opt(
                self.cf(cf::EDGE_TIME_INDEX),
                opts,
                rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
            )
            .map(|item| {
                let (k, _) = item?;
                let e: [u8; 8] = k
                    .get(8..16)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| StorageError::corruption("time index", "short key"))?;
                Ok(EdgeId(u64::from_be_bytes(e)))
            })
    }

    /// Reads the whole store's totals.
    pub fn stats(&self) -> Result<StoreStats> {
        let counters = self.read_counters()?;
        let mut vertex_types = Vec::new();
        for (id, name) in self.vertex_types() {
            let n = self.count_vertices_of_type(id)?;
            if n > 0 {
                vertex_types.push((name.to_string(), n));
            }
        }
        let mut edge_types = Vec::new();
        for (id, name) in self.edge_types() {
            let n = self.count_edges_of_type(id)?;
            if n > 0 {
                edge_types.push((name.to_string(), n));
            }
        }
        vertex_types.sort();
        edge_types.sort();
        let mut machines = Vec::new();
        for m in self.machine_ids()? {
            machines.push((m, self.count_vertices_of_machine(m)?));
        }
        Ok(StoreStats {
            vertices: self.live_vertex_count()?,
            stub_vertices: counters.stubs,
            edges: self.live_edge_count()?,
            skipped_lines: counters.skipped,
            rejected_documents: counters.rejected,
            vertex_types,
            edge_types,
            machines,
        })
    }
}

/// Iterator over the adjacency of one vertex (see [`Store::neighbours`]).
pub struct AdjacencyScan<'a> {
    store: &'a Store,
    pending: Vec<(Direction, Vec<u8>)>,
    /// The open iterator, its direction and the prefix being read. One iterator serves every
    /// prefix of its direction: creating one costs more than reading a vertex's edges.
    current: Option<(Direction, DBRawIterator<'a>, Vec<u8>)>,
}

impl Iterator for AdjacencyScan<'_> {
    type Item = Result<Adjacent>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((dir, it, prefix)) = &mut self.current {
                if let Some(key) = it.key().filter(|k| k.starts_with(prefix)) {
                    let adj = keys::decode_adjacency_key(key).map(|(_, t, e, other)| Adjacent {
                        edge: e,
                        edge_type: t,
                        neighbour: other,
                        direction: *dir,
                    });
                    it.next();
                    return Some(
                        adj.ok_or_else(|| {
                            StorageError::corruption("adjacency key", "wrong length")
                        }),
                    );
                }
                if let Err(e) = it.status() {
                    self.current = None;
                    return Some(Err(e.into()));
                }
            }
            let (dir, prefix) = self.pending.pop()?;
            match &mut self.current {
                Some((current_dir, it, current_prefix)) if *current_dir == dir => {
                    it.seek(&prefix);
                    *current_prefix = prefix;
                }
                _ => {
                    let cf_name = if dir == Direction::Out {
                        cf::OUT_ADJACENCY
                    } else {
                        cf::IN_ADJACENCY
                    };
                    // Every prefix of one scan starts with the same vertex: the 8-byte prefix
                    // extractor keeps the iterator inside that vertex's keys.
                    let mut opts = ReadOptions::default();
                    opts.set_prefix_same_as_start(true);
                    let mut it = self
                        .store
                        .db
                        .raw_iterator_cf_opt(self.store.cf(cf_name), opts);
                    it.seek(&prefix);
                    self.current = Some((dir, it, prefix));
                }
            }
        }
    }
}
