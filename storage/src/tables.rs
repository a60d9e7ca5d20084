//! The table layer: the RocksDB database with its graph tables, named by [`Table`] rather
//! than by a string at each call site, its side tables, and the counters. Reads (`store.rs`),
//! writes (`writer.rs`) and archive operations (`archive.rs`) depend on this layer, not on
//! each other; byte formats belong to `keys.rs` (keys) and `codec.rs` (values).
//!
//! Column-family handles borrow the database, so a struct cannot hold both without unsafe
//! code. They are resolved instead once per operation: [`Tables::cf`] for one table (a look-up
//! in RocksDB's small in-memory map, no lock in single-threaded mode), [`GraphHandles`] for
//! every graph table at once where an operation touches many (a write batch, a prune).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use roaring::RoaringBitmap;
use rocksdb::{Cache, ColumnFamily, ReadOptions, WriteBatch, DB};

use crate::codec;
use crate::column_families as cf;
use crate::error::{OpenError, ReadError, WriteError};
use crate::keys::{self, Counter};
use crate::model::ExternalId;
use crate::side_table::SideTable;

/// One raw key/value pair of a column family.
pub type RawEntry = (Box<[u8]>, Box<[u8]>);

/// On-disk format version written by this build. It reads every version from
/// [`OLDEST_FORMAT_VERSION`] on; an archive keeps the version it was created with.
///
/// - 1: the graph tables, indexes and side tables.
/// - 2: adds the `vertex_external_ids` table (vertex id -> external id), so that returning
///   ids reads a small LZ4 table instead of decoding zstd-compressed vertex records. A
///   version-1 archive is read (and written) without it: ids come from the records.
/// - 3: `meta` may name an adjacency snapshot that holds adjacency entries the tables no
///   longer do (`Store::fold_adjacency`); a build that knows only 2 would miss them. A
///   version-2 archive becomes 3 at its first fold, never by being opened.
/// - 4: the snapshot file (its version 4) also maps the vertices it covers to their external
///   ids and back, which reads use first; a build that knows only 3 refuses the file. A
///   version-2 or 3 archive becomes 4 at its next fold (a version-3 snapshot, without ids, is
///   read as before until then).
/// - 5: the vertices a snapshot's id section covers have no `vertex_external_ids` entry (a
///   fold deletes them, an unfold writes them back): the section alone holds their ids, and
///   the next fold carries them into the next generation. A build that knows only 4 would
///   fold them away. A version-2 to 4 archive becomes 5 at its next fold.
pub const FORMAT_VERSION: u32 = 5;

/// Oldest on-disk format version this build reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// Bytes of a reader's row cache (see [`Tables::open`]): some 60,000 id look-ups.
const READER_ROW_CACHE_BYTES: usize = 8 << 20;

/// How a store is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenMode {
    /// The one writer: creates the database if missing. Holds RocksDB's lock.
    ReadWrite,
    /// A read-only view of the database as it was when opened.
    ReadOnly,
    /// A secondary instance that follows a running writer: call [`crate::Store::catch_up`]
    /// to see its newer writes. Needs a private folder for its own logs.
    Secondary {
        /// Folder for the secondary's own files.
        secondary_path: std::path::PathBuf,
    },
}

/// RocksDB's answer at open when the file system does not take direct I/O
/// (`db_impl_open.cc`: an `InvalidArgument` naming it).
fn refuses_direct_io(e: &rocksdb::Error) -> bool {
    e.kind() == rocksdb::ErrorKind::InvalidArgument
        && e.to_string().contains("Direct I/O is not supported")
}

/// What `external_ids` holds of one external id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExternalEntry {
    /// Its internal id.
    pub(crate) id: u64,
    /// The type of a stub vertex (referenced by an edge, not defined yet).
    pub(crate) stub_type: Option<u16>,
}

impl ExternalEntry {
    fn decode(value: &[u8]) -> Result<ExternalEntry, ReadError> {
        let (id, stub_type) = codec::decode_external_value(value)?;
        Ok(ExternalEntry { id, stub_type })
    }
}

/// When a write is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Written to the WAL without fsync: survives a process crash, not a power loss. Call
    /// [`crate::Store::flush`] to make everything durable.
    Buffered,
    /// The WAL is fsynced before the write returns.
    Sync,
    /// Not written to the WAL: in memory until its memtable is flushed. A crash loses every
    /// such write since the last flush, and only whole writes (the database flushes all its
    /// column families as one), so the archive keeps a consistent prefix. For offline import,
    /// which flushes when it ends and which a re-run completes: the WAL was ~14% of its CPU.
    /// Call [`crate::Store::flush`] to make everything durable.
    Unlogged,
}

/// A graph table of the engine (see [`crate::column_families`] for what each holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Table {
    Meta,
    ExternalIds,
    Vertices,
    VertexExternalIds,
    Edges,
    OutAdjacency,
    InAdjacency,
    VertexTypeIndex,
    EdgeTypeIndex,
    MachineIndex,
    EdgeTimeIndex,
}

impl Table {
    /// The name of its column family.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Meta => cf::META,
            Table::ExternalIds => cf::EXTERNAL_IDS,
            Table::Vertices => cf::VERTICES,
            Table::VertexExternalIds => cf::VERTEX_EXTERNAL_IDS,
            Table::Edges => cf::EDGES,
            Table::OutAdjacency => cf::OUT_ADJACENCY,
            Table::InAdjacency => cf::IN_ADJACENCY,
            Table::VertexTypeIndex => cf::VERTEX_TYPE_INDEX,
            Table::EdgeTypeIndex => cf::EDGE_TYPE_INDEX,
            Table::MachineIndex => cf::MACHINE_INDEX,
            Table::EdgeTimeIndex => cf::EDGE_TIME_INDEX,
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The persistent counters of a store, as one struct.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub next_vertex: u64,
    pub next_edge: u64,
    pub stubs: u64,
    pub skipped: u64,
    pub rejected: u64,
    pub pruned_vertices: u64,
    pub pruned_edges: u64,
}

impl Counters {
    /// The counters the writer keeps (it mirrors them in memory); a prune keeps the others.
    pub(crate) fn written_by_writer(&self) -> [(Counter, u64); 5] {
        [
            (Counter::NextVertex, self.next_vertex),
            (Counter::NextEdge, self.next_edge),
            (Counter::Stubs, self.stubs),
            (Counter::Skipped, self.skipped),
            (Counter::Rejected, self.rejected),
        ]
    }
}

/// The entries of a record table with their ids (see [`Tables::scan_records`]).
pub(crate) type RecordScan<'a> = Box<dyn Iterator<Item = Result<(u64, Box<[u8]>), ReadError>> + 'a>;

/// Handles of every graph table, resolved once for an operation that touches many tables.
pub(crate) struct GraphHandles<'a> {
    pub meta: &'a ColumnFamily,
    pub external_ids: &'a ColumnFamily,
    pub vertices: &'a ColumnFamily,
    /// Absent from a format-1 archive.
    pub vertex_external_ids: Option<&'a ColumnFamily>,
    pub edges: &'a ColumnFamily,
    pub out_adjacency: &'a ColumnFamily,
    pub in_adjacency: &'a ColumnFamily,
    pub vertex_type_index: &'a ColumnFamily,
    pub edge_type_index: &'a ColumnFamily,
    pub machine_index: &'a ColumnFamily,
    pub edge_time_index: &'a ColumnFamily,
}

impl<'a> GraphHandles<'a> {
    /// The handle of `table` (an error only for a table this archive's format lacks).
    pub(crate) fn of(&self, table: Table) -> Result<&'a ColumnFamily, ReadError> {
        Ok(match table {
            Table::Meta => self.meta,
            Table::ExternalIds => self.external_ids,
            Table::Vertices => self.vertices,
            Table::VertexExternalIds => self
                .vertex_external_ids
                .ok_or_else(|| ReadError::corruption("table", format!("{table} is not open")))?,
            Table::Edges => self.edges,
            Table::OutAdjacency => self.out_adjacency,
            Table::InAdjacency => self.in_adjacency,
            Table::VertexTypeIndex => self.vertex_type_index,
            Table::EdgeTypeIndex => self.edge_type_index,
            Table::MachineIndex => self.machine_index,
            Table::EdgeTimeIndex => self.edge_time_index,
        })
    }
}

/// The database and what is known of its tables.
pub(crate) struct Tables {
    db: DB,
    mode: OpenMode,
    /// On-disk format version of this archive ([`FORMAT_VERSION`] for a new one).
    /// Raised by a fold (2 -> 3) while the store is open.
    format: AtomicU32,
    /// Names of the side tables open (see [`SideTable`]).
    side_tables: Vec<String>,
    /// Whether flushes and compactions write with direct I/O.
    direct_io_writes: bool,
    /// Below which edge a writer's compactions drop adjacency entries (see
    /// [`cf::FoldedEdgeMark`]).
    folded_edge_mark: cf::FoldedEdgeMark,
    /// Whether the external-id table's memtables are made with a filter (see
    /// [`cf::memtable_filter_options`]).
    external_id_memtable_filter: AtomicBool,
}

/// How [`Tables::open`] sets the tables up, besides the open mode.
pub(crate) struct TableSettings<'a> {
    /// Block cache shared by every column family.
    pub(crate) block_cache_bytes: usize,
    /// Side tables a writer uses (created when missing).
    pub(crate) side_tables: &'a [SideTable],
    /// Flushes and compactions write with direct I/O where the file system takes it.
    pub(crate) direct_io_writes: bool,
    /// The pace the column families open at.
    pub(crate) compaction_pace: cf::CompactionPace,
}

impl Tables {
    /// Opens the database at `path` with provdb's column families, and checks (or, for a new
    /// archive, writes) its format version.
    pub(crate) fn open(
        path: &Path,
        mode: &OpenMode,
        settings: &TableSettings<'_>,
    ) -> Result<Tables, OpenError> {
        let writer = *mode == OpenMode::ReadWrite;
        if writer && settings.direct_io_writes {
            match Tables::open_with_io(path, mode, settings, true) {
                // RocksDB checks at open that the file system takes direct I/O (it would
                // otherwise fail at the first flush).
                Err(OpenError::Rocks(e)) if refuses_direct_io(&e) => {}
                opened => return opened,
            }
        }
        Tables::open_with_io(path, mode, settings, false)
    }

    fn open_with_io(
        path: &Path,
        mode: &OpenMode,
        settings: &TableSettings<'_>,
        direct_io_writes: bool,
    ) -> Result<Tables, OpenError> {
        let cache = Cache::new_lru_cache(settings.block_cache_bytes);
        let writer = *mode == OpenMode::ReadWrite;
        let mut db_opts = cf::db_options();
        db_opts.set_use_direct_io_for_flush_and_compaction(direct_io_writes);
        if !writer {
            // Readers keep the rows their point look-ups found (external id <-> vertex id):
            // a question asked again, or about vertices met before, skips the index, filter
            // and block search. Bench children on the 1M-edge archive, warm pass: Q2 21.8 ->
            // 16.1 us, Q4 8.8 -> 6.9 us; first touches unchanged. The writer's look-ups are
            // mostly of new ids, which such a cache does not help.
            db_opts.set_row_cache(&Cache::new_lru_cache(READER_ROW_CACHE_BYTES));
        }
        let folded_edge_mark = cf::FoldedEdgeMark::default();
        let tables = cf::open_tables(
            &db_opts,
            path,
            &cache,
            writer,
            settings.side_tables,
            &folded_edge_mark,
            settings.compaction_pace,
        )?;
        let db = match mode {
            OpenMode::ReadWrite => DB::open_cf_descriptors(&db_opts, path, tables.descriptors)?,
            OpenMode::ReadOnly => {
                DB::open_cf_descriptors_read_only(&db_opts, path, tables.descriptors, false)?
            }
            OpenMode::Secondary { secondary_path } => {
                let mut opts = db_opts;
                opts.set_max_open_files(-1);
                DB::open_cf_descriptors_as_secondary(
                    &opts,
                    path,
                    secondary_path,
                    tables.descriptors,
                )?
            }
        };
        let mut t = Tables {
            db,
            mode: mode.clone(),
            format: AtomicU32::new(FORMAT_VERSION),
            side_tables: tables.side_tables,
            direct_io_writes,
            folded_edge_mark,
            external_id_memtable_filter: AtomicBool::new(tables.external_id_memtable_filter),
        };
        t.format = AtomicU32::new(t.check_format()?);
        Ok(t)
    }

    /// Changes mutable options of an open table (RocksDB's `SetOptions`), given as names and
    /// values in RocksDB's text form.
    pub(crate) fn set_options(
        &self,
        table: &ColumnFamily,
        options: &[(&str, String)],
    ) -> Result<(), rocksdb::Error> {
        let options: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.db.set_options_cf(table, &options)
    }

    /// Makes the external-id table's next memtables with a filter, or without (see
    /// [`cf::memtable_filter_options`]); nothing when they already are.
    pub(crate) fn set_external_id_memtable_filter(&self, on: bool) -> Result<(), rocksdb::Error> {
        if self.mode != OpenMode::ReadWrite
            || self.external_id_memtable_filter.load(Ordering::Acquire) == on
        {
            return Ok(());
        }
        if let Some(table) = self.db.cf_handle(cf::EXTERNAL_IDS) {
            self.set_options(table, &cf::memtable_filter_options(on))?;
        }
        self.external_id_memtable_filter
            .store(on, Ordering::Release);
        Ok(())
    }

    /// Whether the external-id table's memtables are made with a filter.
    #[cfg(test)]
    pub(crate) fn external_id_memtable_filter(&self) -> bool {
        self.external_id_memtable_filter.load(Ordering::Acquire)
    }

    /// The archive's format version, checked to be one this build reads; a new archive is
    /// marked with [`FORMAT_VERSION`].
    fn check_format(&self) -> Result<u32, OpenError> {
        match self.db.get_cf(self.cf(Table::Meta)?, keys::META_FORMAT)? {
            Some(v) => {
                let found = codec::decode_format(&v)?;
                if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
                    return Err(OpenError::UnsupportedFormat {
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
                    self.cf(Table::Meta)?,
                    keys::META_FORMAT,
                    codec::encode_format(FORMAT_VERSION),
                    &opts,
                )?;
                Ok(FORMAT_VERSION)
            }
            // An empty read-only or secondary view (nothing written yet) reads as current.
            None => Ok(FORMAT_VERSION),
        }
    }

    /// The database, for what the layer does not wrap (iterators, writes, compaction).
    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    /// Whether flushes and compactions write with direct I/O (see
    /// [`crate::StoreOptions::direct_io_writes`]).
    pub(crate) fn direct_io_writes(&self) -> bool {
        self.direct_io_writes
    }

    /// Below which edge a writer's compactions drop adjacency entries.
    pub(crate) fn folded_edge_mark(&self) -> &cf::FoldedEdgeMark {
        &self.folded_edge_mark
    }

    /// How the database was opened.
    pub(crate) fn mode(&self) -> &OpenMode {
        &self.mode
    }

    /// An error unless the database is open for writing.
    pub(crate) fn check_writable(&self) -> Result<(), WriteError> {
        if self.mode == OpenMode::ReadWrite {
            Ok(())
        } else {
            Err(WriteError::ReadOnly)
        }
    }

    /// The archive's on-disk format version.
    pub(crate) fn format(&self) -> u32 {
        self.format.load(Ordering::Relaxed)
    }

    /// Whether `table` holds no entry (one seek).
    pub(crate) fn is_empty(&self, table: Table) -> Result<bool, ReadError> {
        let mut opts = ReadOptions::default();
        opts.set_total_order_seek(true);
        let mut it = self.db.raw_iterator_cf_opt(self.cf(table)?, opts);
        it.seek_to_first();
        it.status()?;
        Ok(!it.valid())
    }

    /// Records that a write just marked the archive with format `version`.
    pub(crate) fn set_format(&self, version: u32) {
        self.format.store(version, Ordering::Relaxed);
    }

    /// Whether this archive keeps the vertex -> external id table (format 2 on).
    pub(crate) fn has_vertex_external_ids(&self) -> bool {
        self.format() >= 2
    }

    /// The handle of a graph table. Every graph table is opened, except the tables added after
    /// an older archive's format, which [`Tables::has_vertex_external_ids`] tells apart: a
    /// missing one is reported, not a panic.
    pub(crate) fn cf(&self, table: Table) -> Result<&ColumnFamily, ReadError> {
        self.db
            .cf_handle(table.name())
            .ok_or_else(|| ReadError::corruption("table", format!("{} is not open", table.name())))
    }

    /// Every graph table's handle, resolved at once.
    pub(crate) fn graph_handles(&self) -> Result<GraphHandles<'_>, ReadError> {
        Ok(GraphHandles {
            meta: self.cf(Table::Meta)?,
            external_ids: self.cf(Table::ExternalIds)?,
            vertices: self.cf(Table::Vertices)?,
            vertex_external_ids: if self.has_vertex_external_ids() {
                Some(self.cf(Table::VertexExternalIds)?)
            } else {
                None
            },
            edges: self.cf(Table::Edges)?,
            out_adjacency: self.cf(Table::OutAdjacency)?,
            in_adjacency: self.cf(Table::InAdjacency)?,
            vertex_type_index: self.cf(Table::VertexTypeIndex)?,
            edge_type_index: self.cf(Table::EdgeTypeIndex)?,
            machine_index: self.cf(Table::MachineIndex)?,
            edge_time_index: self.cf(Table::EdgeTimeIndex)?,
        })
    }

    /// The handle of an open side table, `None` when the archive does not have it.
    pub(crate) fn side(&self, table: SideTable) -> Option<&ColumnFamily> {
        self.db.cf_handle(table.name())
    }

    /// The handle of an open side table, for a write: a table not open is an error.
    pub(crate) fn side_for_write(&self, table: SideTable) -> Result<&ColumnFamily, WriteError> {
        self.side(table)
            .ok_or(WriteError::UnknownSideTable { name: table.name() })
    }

    /// Names of the side tables open.
    pub(crate) fn side_table_names(&self) -> &[String] {
        &self.side_tables
    }

    /// Creates a side table that a copy lacks (a backup copies every table of its source).
    pub(crate) fn create_side_table(&mut self, name: &str) -> Result<(), WriteError> {
        if self.db.cf_handle(name).is_none() {
            self.db.create_cf(name, &rocksdb::Options::default())?;
            // Listed, so that a flush covers it.
            self.side_tables.push(name.to_owned());
        }
        Ok(())
    }

    /// Every column family open: the graph tables this archive has, then its side tables.
    pub(crate) fn table_names(&self) -> impl Iterator<Item = &str> + '_ {
        cf::GRAPH_TABLES
            .into_iter()
            .filter(|name| self.db.cf_handle(name).is_some())
            .chain(self.side_tables.iter().map(String::as_str))
    }

    /// The handle of any open column family, graph or side table, by name.
    pub(crate) fn cf_named(&self, name: &str) -> Result<&ColumnFamily, ReadError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| ReadError::corruption("table", format!("{name} is not open")))
    }

    /// RocksDB's integer property `property` (e.g. `rocksdb.num-files-at-level0`) of every
    /// open table, by name (0 where RocksDB has no value).
    pub(crate) fn int_property_by_table(
        &self,
        property: &str,
    ) -> Result<Vec<(&str, u64)>, ReadError> {
        self.table_names()
            .map(|name| {
                let value = self
                    .db
                    .property_int_value_cf(self.cf_named(name)?, property)?
                    .unwrap_or(0);
                Ok((name, value))
            })
            .collect()
    }

    // ---- counters ------------------------------------------------------------------------

    /// One counter's value (0 when never written).
    pub(crate) fn read_counter(&self, counter: Counter) -> Result<u64, ReadError> {
        match self
            .db
            .get_pinned_cf(self.cf(Table::Meta)?, counter.key())?
        {
            Some(v) => codec::decode_counter(&v),
            None => Ok(0),
        }
    }

    /// Every counter.
    pub(crate) fn read_counters(&self) -> Result<Counters, ReadError> {
        Ok(Counters {
            next_vertex: self.read_counter(Counter::NextVertex)?,
            next_edge: self.read_counter(Counter::NextEdge)?,
            stubs: self.read_counter(Counter::Stubs)?,
            skipped: self.read_counter(Counter::Skipped)?,
            rejected: self.read_counter(Counter::Rejected)?,
            pruned_vertices: self.read_counter(Counter::PrunedVertices)?,
            pruned_edges: self.read_counter(Counter::PrunedEdges)?,
        })
    }

    /// Adds the write of one counter to `batch` (`meta` is [`GraphHandles::meta`]).
    pub(crate) fn put_counter(
        batch: &mut WriteBatch,
        meta: &ColumnFamily,
        counter: Counter,
        value: u64,
    ) {
        batch.put_cf(meta, counter.key(), codec::encode_counter(value));
    }

    // ---- typed look-ups ------------------------------------------------------------------

    /// The `external_ids` entry of `ext`. `kind` is [`keys::EXT_VERTEX`] or
    /// [`keys::EXT_EDGE`].
    pub(crate) fn lookup_external(
        &self,
        kind: u8,
        ext: &ExternalId,
    ) -> Result<Option<ExternalEntry>, ReadError> {
        let mut key = Vec::with_capacity(40);
        keys::external_key(kind, ext, &mut key);
        match self.db.get_pinned_cf(self.cf(Table::ExternalIds)?, &key)? {
            Some(v) => ExternalEntry::decode(&v).map(Some),
            None => Ok(None),
        }
    }

    /// [`Tables::lookup_external`] of many ids of one kind, in one batched read: the results
    /// in the order of `exts`. A write looks up every id of its batch that it does not know,
    /// and most are new: one sorted multi-get shares the memtable and file probes that a get
    /// per id repeated (those gets were a third of the preparing thread of an import).
    pub(crate) fn lookup_externals(
        &self,
        kind: u8,
        exts: &[&ExternalId],
    ) -> Result<Vec<Option<ExternalEntry>>, ReadError> {
        let mut keys: Vec<Vec<u8>> = Vec::with_capacity(exts.len());
        for ext in exts {
            let mut key = Vec::with_capacity(40);
            keys::external_key(kind, ext, &mut key);
            keys.push(key);
        }
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by(|a, b| keys[*a].cmp(&keys[*b]));
        let found = self.db.batched_multi_get_cf(
            self.cf(Table::ExternalIds)?,
            order.iter().map(|i| &keys[*i]),
            true,
        );
        let mut results = vec![None; exts.len()];
        for (i, value) in order.into_iter().zip(found) {
            if let Some(v) = value? {
                results[i] = Some(ExternalEntry::decode(&v)?);
            }
        }
        Ok(results)
    }

    /// One shard of a roaring index (empty when absent); `key` is a [`keys::shard_key`].
    pub(crate) fn read_shard(
        &self,
        index: &ColumnFamily,
        key: &[u8],
    ) -> Result<RoaringBitmap, ReadError> {
        match self.db.get_pinned_cf(index, key)? {
            Some(bytes) => RoaringBitmap::deserialize_from(&bytes[..])
                .map_err(|e| ReadError::corruption("index bitmap", e.to_string())),
            None => Ok(RoaringBitmap::new()),
        }
    }

    // ---- scans ---------------------------------------------------------------------------

    /// Iterates the key/value pairs of a column family whose keys start with `prefix`.
    pub(crate) fn scan_prefix<'a>(
        &'a self,
        handle: &'a ColumnFamily,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<RawEntry, ReadError>> + 'a {
        let mut opts = ReadOptions::default();
        if let Some(end) = keys::prefix_upper_bound(prefix) {
            opts.set_iterate_upper_bound(end);
        }
        opts.set_total_order_seek(true);
        self.db
            .iterator_cf_opt(
                handle,
                opts,
                rocksdb::IteratorMode::From(prefix, rocksdb::Direction::Forward),
            )
            .map(|r| r.map_err(ReadError::from))
    }

    /// Every entry of a graph table keyed by 8-byte ids (vertex or edge records), in id order,
    /// with its id decoded; a key of another length is a [`ReadError::Corruption`] naming
    /// `what`, and the scan goes on after it. A table that is not open is one error.
    pub(crate) fn scan_records<'a>(&'a self, table: Table, what: &'static str) -> RecordScan<'a> {
        let handle = match self.cf(table) {
            Ok(h) => h,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        Box::new(self.scan_prefix(handle, &[]).map(move |item| {
            let (k, v) = item?;
            let id = keys::decode_id_key(&k)
                .ok_or_else(|| ReadError::corruption(what, format!("key of {} bytes", k.len())))?;
            Ok((id, v))
        }))
    }

    /// Writes a batch.
    pub(crate) fn write(
        &self,
        batch: WriteBatch,
        durability: Durability,
    ) -> Result<(), WriteError> {
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(durability == Durability::Sync);
        opts.disable_wal(durability == Durability::Unlogged);
        Ok(self.db.write_opt(batch, &opts)?)
    }
}
