//! The store: the public face of the engine. It opens the table layer, reads the graph, and
//! hands writes to the writer (`writer.rs`); reads and writes share only the table layer
//! (`tables.rs`) and the dictionaries.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use roaring::RoaringBitmap;
use rocksdb::{ColumnFamily, DBRawIterator, ReadOptions};

use crate::adjacency_snapshot::{self, AdjacencySnapshot, Coverage, Side, SnapshotCursor};
use crate::codec::{self, SnapshotPointer, StoredEdge, StoredVertex};
use crate::column_families::{self as cf, CompactionPace};
use crate::dictionary::Dictionaries;
use crate::error::{OpenError, ReadError, WriteError};
use crate::id_set::IdSet;
use crate::ids::{AttrKeyId, EdgeId, TypeId, VertexId};
use crate::keys::{self, Counter, EXT_EDGE, EXT_VERTEX};
use crate::model::{Adjacent, Direction, Edge, ExternalId, RecordBatch, Value, Vertex};
use crate::side_table::{SidePut, SideTable};
use crate::tables::{Durability, OpenMode, Table, TableSettings, Tables, FORMAT_VERSION};
use crate::writer::{PreparedWrite, ResolvedWrite, WriteSummary, Writer, WriterState};

/// The name [`Store::disk_size_by_column_family`] gives the adjacency snapshot file.
pub const ADJACENCY_SNAPSHOT_SIZE_NAME: &str = "adjacency snapshot (file)";

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
    /// A writer's memtable flushes and compactions write their files with direct I/O, past
    /// the operating system's page cache (default off). For bulk loads, whose files are not
    /// read back soon: copying them into the page cache was the largest single cost of an
    /// offline import's flushes (2-core VM, 1M-edge import: ~12% of its CPU samples, and
    /// 3.9 s instead of 4.5 s). A live archive keeps it off, so that what it just wrote is
    /// read from memory. Where the file system refuses direct I/O the store opens without
    /// it; [`Store::direct_io_writes`] says which.
    pub direct_io_writes: bool,
    /// The pace of this open's compactions (default [`CompactionPace::Live`]), until
    /// [`Store::set_compaction_pace`]. A bulk load that closes the store when done opens at
    /// [`CompactionPace::Bulk`], as `provdb import` does: setting a pace while open rewrites
    /// RocksDB's options file once per table (~50 ms each way for provdb's tables, time in
    /// which a 1M-edge import did nothing else).
    pub compaction_pace: CompactionPace,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            mode: OpenMode::ReadWrite,
            block_cache_bytes: 256 << 20,
            durability: Durability::Buffered,
            side_tables: Vec::new(),
            direct_io_writes: false,
            compaction_pace: CompactionPace::Live,
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

/// What [`Store::fold_backlog`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldBacklog {
    /// Edges whose adjacency the snapshot holds.
    pub folded_edges: u64,
    /// Edges written since the last fold (all of them when the archive never folded).
    pub unfolded_edges: u64,
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
    pub(crate) tables: Tables,
    pub(crate) dicts: RwLock<Dictionaries>,
    /// The single writer's state and the bookkeeping of prepared writes.
    pub(crate) writer: Writer,
    durability: Durability,
    path: PathBuf,
    /// The adjacency snapshot the archive names (see `adjacency_snapshot.rs`): every store
    /// reads adjacency as its records merged with the tables' entries. A fold, an unfold and a
    /// secondary's catch-up replace it; a scan keeps the one it started with.
    adjacency_snapshot: RwLock<Option<Arc<AdjacencySnapshot>>>,
    /// A read-only store whose adjacency tables held nothing at open (a folded archive not
    /// written since) reads the snapshot alone: a table seek per step would find nothing.
    adjacency_tables_empty: bool,
    /// Adjacency lists read before, for a read-only store that reads the tables alone or the
    /// snapshot alone (its view cannot change, so a list stays true while it is open).
    adjacency_cache: Option<AdjacencyCache>,
    /// External ids of vertices read before, for a read-only store (same reason).
    external_id_cache: Option<ExternalIdCache>,
    /// The pace set last on every table (held while it is set, so that it names what RocksDB
    /// has).
    compaction_pace: parking_lot::Mutex<CompactionPace>,
    /// Held by a fold from its plan to its compaction, and by a prune throughout (it unfolds
    /// and folds again): one fold at a time. Taken before the writer.
    pub(crate) fold_lock: parking_lot::Mutex<()>,
}

/// The external ids of vertices that a read-only store has read (its view cannot change, so
/// an id stays true while it is open): a warm question's rows then skip the batched read of
/// `vertex_external_ids`, about 15% of a warm 3-hop question. Starts over once it holds
/// [`ExternalIdCache::MAX_ENTRIES`] ids.
#[derive(Debug, Default)]
struct ExternalIdCache {
    ids: parking_lot::Mutex<foldhash::HashMap<VertexId, ExternalId>>,
}

impl ExternalIdCache {
    /// Ids kept at most: 48 bytes each, in a map of up to 256K slots (12 MiB).
    const MAX_ENTRIES: usize = 128 * 1024;
    /// Ids the map has room for at its first insert: growing it from empty, a fresh table
    /// at each doubling (in fresh memory, each faulted in), was 13% of the first touches of
    /// the bench's 3-hop question.
    const FIRST_CAPACITY: usize = 4 * 1024;

    /// The kept external ids of `ids`, in their order (`None` where not kept).
    fn get(&self, ids: &[VertexId]) -> Vec<Option<ExternalId>> {
        let kept = self.ids.lock();
        ids.iter().map(|id| kept.get(id).cloned()).collect()
    }

    fn insert(&self, read: impl Iterator<Item = (VertexId, ExternalId)>) {
        let mut kept = self.ids.lock();
        if kept.capacity() == 0 {
            kept.reserve(Self::FIRST_CAPACITY);
        }
        for (id, ext) in read {
            if kept.len() >= Self::MAX_ENTRIES {
                kept.clear();
            }
            kept.insert(id, ext);
        }
    }
}

/// One entry of a cached adjacency list: what a table key holds, in key order.
#[derive(Debug, Clone, Copy)]
struct CachedAdjacent {
    edge_type: TypeId,
    edge: EdgeId,
    neighbour: VertexId,
}

impl CachedAdjacent {
    fn of(a: &Adjacent) -> CachedAdjacent {
        CachedAdjacent {
            edge_type: a.edge_type,
            edge: a.edge,
            neighbour: a.neighbour,
        }
    }

    /// The entry as a scan in `direction` yields it.
    fn adjacent(&self, direction: Direction) -> Adjacent {
        Adjacent {
            edge: self.edge,
            edge_type: self.edge_type,
            neighbour: self.neighbour,
            direction,
        }
    }
}

/// The next entry of a kept list from `*at` over `types` (sorted; all when empty), read in
/// `direction`.
fn next_kept(
    list: &[CachedAdjacent],
    at: &mut usize,
    types: &[TypeId],
    direction: Direction,
) -> Option<Adjacent> {
    while let Some(entry) = list.get(*at) {
        *at += 1;
        if types.is_empty() || types.binary_search(&entry.edge_type).is_ok() {
            return Some(entry.adjacent(direction));
        }
    }
    None
}

/// Adds `a` to the list being gathered for the cache; a list that outgrows what the cache
/// keeps is dropped.
fn gather(collecting: &mut Option<Vec<CachedAdjacent>>, a: &Adjacent) {
    match collecting {
        Some(list) if list.len() < AdjacencyCache::MAX_LIST => list.push(CachedAdjacent::of(a)),
        Some(_) => *collecting = None,
        None => {}
    }
}

/// The adjacency lists (one direction of one vertex: every type, or one) that a read-only
/// store's scans read whole, kept for the next scan of the same prefix (a list of every type
/// also answers typed scans): a RocksDB seek (iterator set-up, index and filter partitions,
/// block search) was ~45% of a warm 3-hop query, more than the lists hold.
/// A list longer than [`AdjacencyCache::MAX_LIST`] (a hub) is not kept; the cache starts
/// over once it holds [`AdjacencyCache::MAX_ENTRIES`] entries.
#[derive(Debug, Default)]
struct AdjacencyCache {
    lists: parking_lot::Mutex<AdjacencyLists>,
}

/// Keyed with foldhash: the keys come from this store's own ids, not from outside input that
/// could aim at collisions, and SipHash (std's default) costs more than the look-up it guards.
#[derive(Debug, Default)]
struct AdjacencyLists {
    by_prefix: std::collections::HashMap<
        (Direction, AdjacencyPrefix),
        Arc<[CachedAdjacent]>,
        foldhash::fast::RandomState,
    >,
    entries: usize,
}

impl AdjacencyCache {
    /// Longest list kept.
    const MAX_LIST: usize = 1024;
    /// Entries kept at most, an empty list counting as one (24 bytes an entry, about 48 a
    /// list: at most about 12 MiB).
    const MAX_ENTRIES: usize = 256 * 1024;
    /// Lists the map has room for at its first insert: a fresh process's first questions
    /// keep thousands, and growing the map step by step from empty (rehashing into fresh
    /// memory each time) was 5% of the first touches of the bench's 3-hop question.
    const FIRST_CAPACITY: usize = 2 * 1024;

    fn get(&self, dir: Direction, prefix: AdjacencyPrefix) -> Option<Arc<[CachedAdjacent]>> {
        self.lists.lock().by_prefix.get(&(dir, prefix)).cloned()
    }

    fn insert(&self, dir: Direction, prefix: AdjacencyPrefix, list: Vec<CachedAdjacent>) {
        // An empty list counts too, so that a scan of every vertex keeps a bounded number.
        let weight = list.len().max(1);
        let mut lists = self.lists.lock();
        if lists.by_prefix.capacity() == 0 {
            lists.by_prefix.reserve(Self::FIRST_CAPACITY);
        }
        if lists.entries + weight > Self::MAX_ENTRIES {
            lists.by_prefix.clear();
            lists.entries = 0;
        }
        lists.entries += weight;
        lists.by_prefix.insert((dir, prefix), list.into());
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("mode", self.tables.mode())
            .finish()
    }
}

impl Store {
    /// Opens (or creates) a store for reading and writing.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, OpenError> {
        Store::open_with(path, StoreOptions::default())
    }

    /// Opens a store with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store, OpenError> {
        let path = path.as_ref().to_path_buf();
        let open_tables = || {
            Tables::open(
                &path,
                &options.mode,
                &TableSettings {
                    block_cache_bytes: options.block_cache_bytes,
                    side_tables: &options.side_tables,
                    direct_io_writes: options.direct_io_writes,
                    compaction_pace: options.compaction_pace,
                },
            )
        };
        let mut tables = open_tables()?;
        // The snapshot holds entries the tables no longer do: one that is missing or damaged
        // fails the open, never falls back to the tables.
        let adjacency_snapshot = match AdjacencySnapshot::named(&path, &tables) {
            Ok(snapshot) => snapshot,
            // Beside a writer, a fold may have removed the file this view names since the
            // view was opened: a new view names the new file.
            Err(first) if options.mode != OpenMode::ReadWrite => {
                drop(tables);
                tables = open_tables()?;
                AdjacencySnapshot::named(&path, &tables).map_err(|_| first)?
            }
            Err(e) => return Err(e.into()),
        };
        let adjacency_tables_empty = options.mode == OpenMode::ReadOnly
            && adjacency_snapshot.is_some()
            && tables.is_empty(Table::OutAdjacency)?
            && tables.is_empty(Table::InAdjacency)?;
        // Lists read whole stay true while a read-only store is open: from the tables, or
        // from the snapshot when the tables hold nothing to merge.
        let adjacency_cache = (options.mode == OpenMode::ReadOnly
            && (adjacency_snapshot.is_none() || adjacency_tables_empty))
            .then(AdjacencyCache::default);
        let external_id_cache = (options.mode == OpenMode::ReadOnly).then(ExternalIdCache::default);
        let store = Store {
            tables,
            dicts: RwLock::new(Dictionaries::default()),
            writer: Writer::default(),
            durability: options.durability,
            path,
            adjacency_snapshot: RwLock::new(adjacency_snapshot),
            adjacency_tables_empty,
            adjacency_cache,
            external_id_cache,
            compaction_pace: parking_lot::Mutex::new(match options.mode {
                OpenMode::ReadWrite => options.compaction_pace,
                _ => CompactionPace::Live,
            }),
            fold_lock: parking_lot::Mutex::new(()),
        };
        if let Some(snapshot) = store.current_adjacency_snapshot() {
            // A fold's entries left in the tables (a crash before its compaction) are dropped
            // by the compactions to come.
            store
                .tables
                .folded_edge_mark()
                .set(snapshot.pointer().edge_mark);
        }
        store.reload()?;
        Ok(store)
    }

    /// Whether this store's flushes and compactions write with direct I/O: asked for with
    /// [`StoreOptions::direct_io_writes`], and taken by the file system.
    ///
    /// ```
    /// use provdb_storage::{Store, StoreOptions};
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path())?;
    /// assert!(!store.direct_io_writes());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn direct_io_writes(&self) -> bool {
        self.tables.direct_io_writes()
    }

    /// The folder of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The archive's on-disk format version.
    pub fn format_version(&self) -> u32 {
        self.tables.format()
    }

    /// Reloads dictionaries and counters from disk (after a catch-up, or a prune).
    pub(crate) fn reload(&self) -> Result<(), ReadError> {
        self.reload_under(&mut self.writer.exclusive())
    }

    /// [`Store::reload`] by the holder of the writer (a prune reloads before it lets writes
    /// in: a write prepared in between would count on from the counters before the prune).
    pub(crate) fn reload_under(&self, writer: &mut WriterState) -> Result<(), ReadError> {
        *self.dicts.write() = Dictionaries::load(&self.tables)?;
        writer.reset(self.tables.read_counters()?);
        if self.tables.mode() == &OpenMode::ReadWrite && self.tables.is_empty(Table::ExternalIds)? {
            writer.track_written_ids_from_empty();
        }
        Ok(())
    }

    /// The sequence number of the newest write this instance sees (RocksDB's): it grows with
    /// every write, and a secondary's with each catch-up that found new writes, so a reader can
    /// tell that the archive changed without reading it.
    pub fn sequence(&self) -> u64 {
        self.tables.db().latest_sequence_number()
    }

    /// Follows the primary (secondary mode): reloads dictionaries and the adjacency snapshot
    /// the archive names now; a no-op otherwise.
    pub fn catch_up(&self) -> Result<(), ReadError> {
        if let OpenMode::Secondary { .. } = self.tables.mode() {
            // Under the snapshot's write lock: a catch-up may bring a fold's new generation and
            // the compaction that dropped its entries from the tables, and a reader takes the
            // snapshot and creates its table iterators under the read lock, so it sees both of
            // one catch-up.
            let mut open = self.adjacency_snapshot.write();
            self.tables.db().try_catch_up_with_primary()?;
            if let Err(e) = self.reload_adjacency_snapshot(&mut open) {
                // The writer may have folded again and removed the generation named in what
                // this catch-up read: the next one names the newer file.
                self.tables.db().try_catch_up_with_primary()?;
                self.reload_adjacency_snapshot(&mut open).map_err(|_| e)?;
            }
            drop(open);
            self.reload()?;
        }
        Ok(())
    }

    /// Opens the snapshot the archive names now into `open`, unless it is the one open.
    fn reload_adjacency_snapshot(
        &self,
        open: &mut Option<Arc<AdjacencySnapshot>>,
    ) -> Result<(), ReadError> {
        let pointer = adjacency_snapshot::read_pointer(&self.tables)?;
        if pointer != open.as_ref().map(|s| s.pointer()) {
            *open = match pointer {
                Some(pointer) => Some(Arc::new(AdjacencySnapshot::open(&self.path, pointer)?)),
                None => None,
            };
        }
        Ok(())
    }

    /// Makes every write so far durable: syncs the WAL and flushes memtables to SST files.
    pub fn flush(&self) -> Result<(), WriteError> {
        if *self.tables.mode() != OpenMode::ReadWrite {
            return Ok(());
        }
        let db = self.tables.db();
        db.flush_wal(true)?;
        let cfs = self
            .tables
            .table_names()
            .map(|n| self.tables.cf_named(n))
            .collect::<Result<Vec<&ColumnFamily>, ReadError>>()?;
        db.flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())?;
        Ok(())
    }

    /// Sets when level-0 files are merged ([`CompactionPace`]) on every table, for the rest of
    /// this open (which starts at [`StoreOptions::compaction_pace`]). An offline import on a
    /// store open at [`CompactionPace::Live`] sets [`CompactionPace::Bulk`] while it runs and
    /// `Live` when it ends; the level-0 files it left are then merged in the background, or by
    /// [`Store::compact`]. A no-op for a store not open for writing.
    ///
    /// ```
    /// use provdb_storage::{CompactionPace, Store};
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path())?;
    /// store.set_compaction_pace(CompactionPace::Bulk)?;
    /// // ... many writes ...
    /// store.flush()?;
    /// store.set_compaction_pace(CompactionPace::Live)?;
    /// store.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_compaction_pace(&self, pace: CompactionPace) -> Result<(), WriteError> {
        if *self.tables.mode() != OpenMode::ReadWrite {
            return Ok(());
        }
        let mut current = self.compaction_pace.lock();
        let options = pace.rocksdb_options();
        for name in self.tables.table_names() {
            self.tables
                .set_options(self.tables.cf_named(name)?, &options)?;
        }
        *current = pace;
        Ok(())
    }

    /// The pace set last ([`Store::set_compaction_pace`]), else the one the store opened at
    /// ([`StoreOptions::compaction_pace`]); [`CompactionPace::Live`] for a reader.
    pub fn compaction_pace(&self) -> CompactionPace {
        *self.compaction_pace.lock()
    }

    /// The most level-0 files any table holds: files written by memtable flushes and not yet
    /// merged by a compaction (each is probed by reads of its table).
    pub fn level0_files(&self) -> Result<u64, ReadError> {
        Ok(self
            .tables
            .int_property_by_table("rocksdb.num-files-at-level0")?
            .into_iter()
            .map(|(_, files)| files)
            .max()
            .unwrap_or(0))
    }

    /// Rewrites the archive into its long-term form: [`Store::compact_tables`], then, for a
    /// store open for writing on an archive of format version 2 or later,
    /// [`Store::fold_adjacency`] (the adjacency moves into the adjacency snapshot, or the
    /// edges written since the last fold join it). A version-1 archive is only compacted.
    pub fn compact(&self) -> Result<(), WriteError> {
        self.compact_tables()?;
        if *self.tables.mode() == OpenMode::ReadWrite && self.tables.format() >= 2 {
            self.fold_adjacency()?;
        }
        Ok(())
    }

    /// Compacts every column family down to the bottom level, rewritten with the archive's
    /// compression (zstd level 9, trained dictionary), except the adjacency tables every
    /// traversal step reads, which stay in LZ4 (see `StoragePolicy`). Does not fold: an
    /// archive without an adjacency snapshot keeps its adjacency in the tables (and its
    /// format version), one with a snapshot keeps the edges written since its last fold in
    /// them.
    pub fn compact_tables(&self) -> Result<(), WriteError> {
        let db = self.tables.db();
        for name in self.tables.table_names() {
            let handle = self.tables.cf_named(name)?;
            if *self.tables.mode() == OpenMode::ReadWrite
                && cf::StoragePolicy::of(name).archive_compression()
            {
                db.set_options_cf(
                    handle,
                    &[("bottommost_compression_opts", cf::ARCHIVE_COMPRESSION)],
                )?;
            }
            db.compact_range_cf_opt(handle, None::<&[u8]>, None::<&[u8]>, &force_bottom());
        }
        Ok(())
    }

    /// Folds the adjacency tables into the adjacency snapshot, and returns the snapshot's size
    /// in bytes.
    ///
    /// The snapshot is a file beside the column families that holds the adjacency of every
    /// edge written before the fold as compressed sparse rows, and the external ids of the
    /// vertices it covers both ways: a traversal step reads a vertex's record from the mapped
    /// file instead of seeking RocksDB's blocks, and a question's start vertex and the ids it
    /// returns come from it too (first touches about 4x faster on the 1M-edge bench archive).
    /// The fold writes the next generation of the file (the previous one merged with the
    /// tables' entries of the edges committed before it; writes go on meanwhile), then in one
    /// synced write names it in `meta` and deletes the vertex -> external id entries of the
    /// vertices it covers, and compacts the adjacency tables, which drops their entries of the
    /// folded edges; every store reads adjacency as the snapshot merged with the tables (edges
    /// written since, an entry in both once), and ids from the snapshot where it covers them,
    /// else from the tables (vertices created since).
    /// [`Store::compact`] folds (again). A fold marks the archive format version 5 (a build
    /// that knows only 2 would miss the snapshot's entries, one that knows only 3 refuses its
    /// file, one that knows only 4 would fold the covered vertices' ids away); an archive of
    /// version 1 cannot fold ([`WriteError::SnapshotNeedsFormat`]).
    ///
    /// ```
    /// use provdb_storage::*;
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path())?;
    /// let endpoint = |id: &str| EndpointInput { ext_id: ExternalId::parse(id), type_hint: None };
    /// let edge = |id: &str| EdgeInput {
    ///     ext_id: ExternalId::parse(id),
    ///     type_name: "read".into(),
    ///     relation: ProvRelation::Used,
    ///     src: endpoint("file"),
    ///     dst: endpoint("task"),
    ///     placement: Placement::default(),
    ///     attrs: vec![],
    /// };
    /// store.write(&RecordBatch { edges: vec![edge("e1")], ..Default::default() })?;
    /// store.fold_adjacency()?;
    /// assert!(store.uses_adjacency_snapshot());
    /// // Written after the fold: in the tables, read with the snapshot's.
    /// store.write(&RecordBatch { edges: vec![edge("e2")], ..Default::default() })?;
    /// let task = store.vertex_id(&ExternalId::parse("task"))?.expect("stored");
    /// assert_eq!(store.neighbours(task, Direction::In, &[]).count(), 2);
    /// store.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fold_adjacency(&self) -> Result<u64, WriteError> {
        self.tables.check_writable()?;
        // One fold at a time, and no prune beside one (a prune unfolds, and folds again).
        let _folding = self.fold_lock.lock();
        let plan = self.plan_fold(&mut self.writer.exclusive())?;
        // The file is written beside new writes: it holds the entries of the edges below the
        // plan's mark, every one committed before the plan, and no later one.
        pause_point("writing");
        let bytes = self.write_fold(&plan)?;
        let folded = self.name_fold(&mut self.writer.exclusive(), plan, bytes)?;
        // Writes go on from here too: the compaction that drops the folded entries runs
        // beside them (figures in src/ingest/folding.rs).
        self.drop_folded_entries(&folded)?;
        Ok(folded.bytes)
    }

    /// [`Store::fold_adjacency`] by the holder of the writer and of the fold lock (a prune
    /// folds again what it unfolded), up to the write that names the new generation; the
    /// caller then runs [`Store::drop_folded_entries`], with or without the writer.
    pub(crate) fn fold_adjacency_under(
        &self,
        writer: &mut WriterState,
    ) -> Result<Folded, WriteError> {
        let plan = self.plan_fold(writer)?;
        let bytes = self.write_fold(&plan)?;
        self.name_fold(writer, plan, bytes)
    }

    /// What the next fold covers: every edge committed so far (their entries flushed), and the
    /// vertices counted so far. Under the writer, which it waits to see idle.
    fn plan_fold(&self, writer: &mut WriterState) -> Result<FoldPlan, WriteError> {
        let found = self.tables.format();
        if found < 2 {
            return Err(WriteError::SnapshotNeedsFormat { found });
        }
        self.writer
            .wait_for_commits(writer, std::time::Duration::from_secs(60))?;
        // Writes made without the log (an import's) must be on disk before the snapshot holds
        // their entries: a crash would otherwise keep the entries and lose the records.
        self.flush()?;
        let counters = self.tables.read_counters()?;
        let last_generation = self
            .tables
            .db()
            .get_pinned_cf(
                self.tables.cf(Table::Meta)?,
                keys::META_ADJACENCY_SNAPSHOT_GENERATION,
            )?
            .map(|v| codec::decode_counter(&v))
            .transpose()?
            .unwrap_or(0);
        Ok(FoldPlan {
            previous: self.current_adjacency_snapshot(),
            coverage: Coverage {
                pointer: SnapshotPointer {
                    generation: last_generation + 1,
                    edge_mark: counters.next_edge,
                },
                vertex_count: counters.next_vertex,
            },
        })
    }

    /// Writes the file of the plan's generation (with or without the writer: it reads the
    /// tables' entries of edges below the mark only). Returns its size.
    fn write_fold(&self, plan: &FoldPlan) -> Result<u64, WriteError> {
        let bytes = adjacency_snapshot::write(
            &self.tables,
            &self.path,
            plan.previous.as_ref(),
            plan.coverage,
        )?;
        crash_point("file-written");
        Ok(bytes)
    }

    /// Names the generation a fold wrote, under the writer, in one synced write that also
    /// deletes the `vertex_external_ids` entries of the vertices it covers. The adjacency
    /// tables keep their entries of the folded edges (reads meet them in both and yield them
    /// once) until a compaction drops them ([`cf::FoldedEdgeMark`], set here once the name is
    /// durable): deleting them here would hold the writer through a scan of the tables, since
    /// entries written since the plan are interleaved with them.
    fn name_fold(
        &self,
        _writer: &mut WriterState,
        plan: FoldPlan,
        bytes: u64,
    ) -> Result<Folded, WriteError> {
        let pointer = plan.coverage.pointer;
        let meta = self.tables.cf(Table::Meta)?;
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(
            meta,
            keys::META_ADJACENCY_SNAPSHOT,
            codec::encode_snapshot_pointer(pointer),
        );
        batch.put_cf(
            meta,
            keys::META_ADJACENCY_SNAPSHOT_GENERATION,
            codec::encode_counter(pointer.generation),
        );
        batch.put_cf(
            meta,
            keys::META_FORMAT,
            codec::encode_format(FORMAT_VERSION),
        );
        let mut to_compact = vec![Table::OutAdjacency, Table::InAdjacency];
        // The new file's id section holds the ids of every vertex it covers (a version-1
        // archive has neither table nor section): their entries would be a second copy, some
        // 5 bytes per edge after compaction. One range: vertex ids are dense.
        if self.tables.has_vertex_external_ids() {
            batch.delete_range_cf(
                self.tables.cf(Table::VertexExternalIds)?,
                keys::id_key(0),
                keys::id_key(plan.coverage.vertex_count),
            );
            to_compact.push(Table::VertexExternalIds);
        }
        // The new generation replaces the old one, and the id entries go, under the
        // snapshot's write lock: a reader takes the snapshot and creates its table iterators
        // under the read lock, so it sees the old generation with the id entries, or the new
        // one without them. An id look-up that missed the table meanwhile asks the generation
        // named after it (`Store::folded_since`).
        let opened = Arc::new(AdjacencySnapshot::open(&self.path, pointer)?);
        let mut open = self.adjacency_snapshot.write();
        let replaced = open.replace(opened);
        if let Err(e) = self.tables.write(batch, Durability::Sync) {
            *open = replaced;
            return Err(e);
        }
        drop(open);
        self.tables.folded_edge_mark().set(pointer.edge_mark);
        self.tables.set_format(FORMAT_VERSION);
        crash_point("named");
        // Under the fold lock: a fold that followed would write a file this must not remove.
        adjacency_snapshot::remove_unnamed(&self.path, Some(pointer.generation))?;
        Ok(Folded { bytes, to_compact })
    }

    /// Compacts the tables of a fold's entries: compaction drops the adjacency entries of the
    /// folded edges ([`cf::FoldedEdgeMark`]) and the id entries its range deletion hides.
    /// Needs no writer: writes made meanwhile are kept.
    pub(crate) fn drop_folded_entries(&self, folded: &Folded) -> Result<(), WriteError> {
        pause_point("compacting");
        let db = self.tables.db();
        for table in &folded.to_compact {
            db.compact_range_cf_opt(
                self.tables.cf(*table)?,
                None::<&[u8]>,
                None::<&[u8]>,
                &force_bottom(),
            );
        }
        Ok(())
    }

    /// Writes the snapshot's entries back into the adjacency tables, and its ids into
    /// `vertex_external_ids`, and drops the snapshot (a prune deletes entries, which only the
    /// tables can), and says whether there was one: one synced write removes the pointer
    /// after the entries are written, and reads merge duplicates (and take ids from the
    /// snapshot first), so a crash between the two leaves the archive as it was.
    pub(crate) fn unfold_adjacency(&self, _writer: &mut WriterState) -> Result<bool, WriteError> {
        let Some(snapshot) = self.current_adjacency_snapshot() else {
            return Ok(false);
        };
        // Compactions from here on keep what is written back (all of it below the mark).
        self.tables.folded_edge_mark().set(0);
        if self.tables.has_vertex_external_ids() {
            let handle = self.tables.cf(Table::VertexExternalIds)?;
            let mut batch = rocksdb::WriteBatch::default();
            let mut value = Vec::new();
            snapshot.for_each_external_id(|v, ext| {
                codec::encode_external_id(&ext, &mut value);
                batch.put_cf(handle, keys::id_key(v.0), &value);
                if batch.len() >= 100_000 {
                    self.tables
                        .write(std::mem::take(&mut batch), Durability::Buffered)?;
                }
                Ok::<(), WriteError>(())
            })?;
            self.tables.write(batch, Durability::Buffered)?;
        }
        for (side, table) in [
            (Side::Out, Table::OutAdjacency),
            (Side::In, Table::InAdjacency),
        ] {
            let handle = self.tables.cf(table)?;
            let mut batch = rocksdb::WriteBatch::default();
            for entry in snapshot.entries(side) {
                let (v, t, e, other) = entry?;
                batch.put_cf(handle, keys::adjacency_key(v, t, e, other), []);
                if batch.len() >= 100_000 {
                    self.tables
                        .write(std::mem::take(&mut batch), Durability::Buffered)?;
                }
            }
            self.tables.write(batch, Durability::Buffered)?;
        }
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete_cf(self.tables.cf(Table::Meta)?, keys::META_ADJACENCY_SNAPSHOT);
        // Synced: the WAL holds the entries before it, so they are durable too. Under the
        // snapshot's write lock, as a fold's (readers see the snapshot with the tables of
        // its time).
        let mut open = self.adjacency_snapshot.write();
        self.tables.write(batch, Durability::Sync)?;
        *open = None;
        drop(open);
        adjacency_snapshot::remove_unnamed(&self.path, None)?;
        Ok(true)
    }

    /// The snapshot the store reads now (a scan, a fold, the archive operations).
    pub(crate) fn current_adjacency_snapshot(&self) -> Option<Arc<AdjacencySnapshot>> {
        self.adjacency_snapshot.read().clone()
    }

    /// How many edges the adjacency snapshot covers and how many were written since the last
    /// fold (their adjacency is in the tables, which a first touch reads through RocksDB's
    /// blocks): what decides when a live archive is worth folding again. Edge ids are dense,
    /// so both are counts of ids (edges a prune deleted included).
    ///
    /// ```
    /// use provdb_storage::*;
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path())?;
    /// let endpoint = |id: &str| EndpointInput { ext_id: ExternalId::parse(id), type_hint: None };
    /// let edge = |id: &str| EdgeInput {
    ///     ext_id: ExternalId::parse(id),
    ///     type_name: "read".into(),
    ///     relation: ProvRelation::Used,
    ///     src: endpoint("file"),
    ///     dst: endpoint("task"),
    ///     placement: Placement::default(),
    ///     attrs: vec![],
    /// };
    /// store.write(&RecordBatch { edges: vec![edge("e1"), edge("e2")], ..Default::default() })?;
    /// assert_eq!(store.fold_backlog()?, FoldBacklog { folded_edges: 0, unfolded_edges: 2 });
    /// store.fold_adjacency()?;
    /// store.write(&RecordBatch { edges: vec![edge("e3")], ..Default::default() })?;
    /// assert_eq!(store.fold_backlog()?, FoldBacklog { folded_edges: 2, unfolded_edges: 1 });
    /// store.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fold_backlog(&self) -> Result<FoldBacklog, ReadError> {
        let next_edge = self.tables.read_counter(Counter::NextEdge)?;
        let folded = self
            .current_adjacency_snapshot()
            .map_or(0, |s| s.pointer().edge_mark);
        Ok(FoldBacklog {
            folded_edges: folded,
            unfolded_edges: next_edge.saturating_sub(folded),
        })
    }

    /// Whether this store reads adjacency through the adjacency snapshot
    /// ([`Store::fold_adjacency`]): every store of an archive that has one does.
    pub fn uses_adjacency_snapshot(&self) -> bool {
        self.adjacency_snapshot.read().is_some()
    }

    /// Flushes and closes the store. Always call it: durability does not rely on `Drop`.
    /// The writer removes adjacency snapshot files the archive does not name (left by a fold
    /// cut short).
    pub fn close(self) -> Result<(), WriteError> {
        self.flush()?;
        if *self.tables.mode() == OpenMode::ReadWrite {
            let keep = self.adjacency_snapshot.read().as_ref().map(|s| s.pointer());
            adjacency_snapshot::remove_unnamed(&self.path, keep.map(|p| p.generation))?;
        }
        Ok(())
    }

    /// Size of the live SST files of every column family, in bytes.
    pub fn disk_size(&self) -> Result<u64, ReadError> {
        Ok(self
            .disk_size_by_column_family()?
            .iter()
            .map(|(_, n)| n)
            .sum())
    }

    /// Size of the live SST files of each column family, in bytes (where space goes), and last
    /// that of the adjacency snapshot file (0 without one).
    pub fn disk_size_by_column_family(&self) -> Result<Vec<(String, u64)>, ReadError> {
        let mut sizes: Vec<(String, u64)> = self
            .tables
            .int_property_by_table("rocksdb.total-sst-files-size")?
            .into_iter()
            .map(|(name, bytes)| (name.to_owned(), bytes))
            .collect();
        let snapshot = self
            .adjacency_snapshot
            .read()
            .as_ref()
            .map_or(0, |s| s.file_len());
        sizes.push((ADJACENCY_SNAPSHOT_SIZE_NAME.to_owned(), snapshot));
        Ok(sizes)
    }

    // ---- writes (done by the writer) -----------------------------------------------------

    /// Writes a batch atomically with the store's default durability.
    ///
    /// Idempotent: a vertex or edge whose external id is already stored is not stored again,
    /// and an edge whose endpoint is unknown creates a stub vertex that its definition fills
    /// in later.
    ///
    /// ```
    /// use provdb_storage::*;
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path())?;
    /// let edge = EdgeInput {
    ///     ext_id: ExternalId::parse("e1"),
    ///     type_name: "read".into(),
    ///     relation: ProvRelation::Used,
    ///     src: EndpointInput { ext_id: ExternalId::parse("file1"), type_hint: None },
    ///     dst: EndpointInput { ext_id: ExternalId::parse("task1"), type_hint: None },
    ///     placement: Placement::default(),
    ///     attrs: vec![],
    /// };
    /// let batch = RecordBatch { edges: vec![edge], ..Default::default() };
    /// let first = store.write(&batch)?;
    /// assert_eq!((first.edges_added, first.stubs_created), (1, 2));
    /// assert_eq!(store.write(&batch)?.edges_duplicate, 1);
    /// assert_eq!(store.stats()?.stub_vertices, 2);
    /// store.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(&self, batch: &RecordBatch) -> Result<WriteSummary, WriteError> {
        self.write_with(batch, &[], self.durability)
    }

    /// Writes a batch and side-table puts atomically, with explicit durability.
    pub fn write_with(
        &self,
        batch: &RecordBatch,
        side: &[SidePut],
        durability: Durability,
    ) -> Result<WriteSummary, WriteError> {
        self.commit_prepared(self.prepare_write(batch, side, durability)?)
    }

    /// Resolves and encodes a batch (and side-table puts) into one RocksDB write without
    /// committing it; see [`PreparedWrite`]. The writer state moves on as if it had committed,
    /// so the next batch can be prepared at once.
    ///
    /// ```
    /// use provdb_storage::*;
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path())?;
    /// let edge = |id: &str, src: &str, dst: &str| EdgeInput {
    ///     ext_id: ExternalId::parse(id),
    ///     type_name: "write".into(),
    ///     relation: ProvRelation::WasGeneratedBy,
    ///     src: EndpointInput { ext_id: ExternalId::parse(src), type_hint: None },
    ///     dst: EndpointInput { ext_id: ExternalId::parse(dst), type_hint: None },
    ///     placement: Placement::default(),
    ///     attrs: vec![],
    /// };
    /// let first = RecordBatch { edges: vec![edge("e1", "task", "file")], ..Default::default() };
    /// // The second batch repeats e1 and reuses the stubs of the first, before it commits.
    /// let second = RecordBatch {
    ///     edges: vec![edge("e1", "task", "file"), edge("e2", "file", "task")],
    ///     ..Default::default()
    /// };
    /// let p1 = store.prepare_write(&first, &[], Durability::Buffered)?;
    /// let p2 = store.prepare_write(&second, &[], Durability::Buffered)?;
    /// assert_eq!((p2.summary().edges_duplicate, p2.summary().stubs_created), (1, 0));
    /// store.commit_prepared(p1)?;
    /// store.commit_prepared(p2)?;
    /// assert_eq!((store.stats()?.edges, store.stats()?.vertices), (2, 2));
    /// store.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prepare_write(
        &self,
        batch: &RecordBatch,
        side: &[SidePut],
        durability: Durability,
    ) -> Result<PreparedWrite<'_>, WriteError> {
        self.writer
            .prepare(&self.tables, &self.dicts, batch, side, durability)
    }

    /// The first of [`Store::prepare_write`]'s two steps: resolves a batch against the writer
    /// state (ids, dictionaries, indexes, counters) under the writer lock, leaving its records
    /// to encode with [`ResolvedWrite::encode`], which needs no lock: a pipeline encodes one
    /// batch on a thread of its own while it resolves the next.
    ///
    /// ```
    /// use provdb_storage::*;
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path())?;
    /// let edge = EdgeInput {
    ///     ext_id: ExternalId::parse("e1"),
    ///     type_name: "write".into(),
    ///     relation: ProvRelation::WasGeneratedBy,
    ///     src: EndpointInput { ext_id: ExternalId::parse("task"), type_hint: None },
    ///     dst: EndpointInput { ext_id: ExternalId::parse("file"), type_hint: None },
    ///     placement: Placement::default(),
    ///     attrs: vec![],
    /// };
    /// let batch = RecordBatch { edges: vec![edge], ..Default::default() };
    /// let resolved = store.resolve_write(&batch, &[], Durability::Buffered)?;
    /// assert_eq!(resolved.summary().stubs_created, 2);
    /// let prepared = std::thread::scope(|s| s.spawn(|| resolved.encode(&batch)).join())
    ///     .expect("encoder thread")?;
    /// store.commit_prepared(prepared)?;
    /// assert_eq!((store.stats()?.edges, store.stats()?.vertices), (1, 2));
    /// store.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve_write(
        &self,
        batch: &RecordBatch,
        side: &[SidePut],
        durability: Durability,
    ) -> Result<ResolvedWrite<'_>, WriteError> {
        self.writer
            .resolve(&self.tables, &self.dicts, batch, side, durability)
    }

    /// Commits a prepared write (in the order writes were prepared).
    pub fn commit_prepared(&self, prepared: PreparedWrite<'_>) -> Result<WriteSummary, WriteError> {
        self.writer.commit(&self.tables, prepared)
    }

    // ---- reads -------------------------------------------------------------------------

    fn resolve_attrs(&self, attrs: Vec<(u16, Value)>) -> Result<Vec<(Arc<str>, Value)>, ReadError> {
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
                        ReadError::corruption("attribute", format!("unknown key id {k}"))
                    })
            })
            .collect()
    }

    /// The vertex with internal id `id`.
    pub fn vertex(&self, id: VertexId) -> Result<Option<Vertex>, ReadError> {
        let Some(bytes) = self
            .tables
            .db()
            .get_pinned_cf(self.tables.cf(Table::Vertices)?, keys::id_key(id.0))?
        else {
            return Ok(None);
        };
        self.decode_vertex(id, &bytes).map(Some)
    }

    /// The external id of vertex `id`, without decoding its record (from format 2 on).
    pub fn vertex_external_id(&self, id: VertexId) -> Result<Option<ExternalId>, ReadError> {
        if !self.tables.has_vertex_external_ids() {
            return Ok(self.vertex(id)?.map(|v| v.ext_id));
        }
        Ok(self.read_vertex_external_ids(&[id])?.pop().flatten())
    }

    /// Whether the store reads another adjacency snapshot than `snapshot` now (then it is
    /// put there). A fold names its generation before it deletes the table entries the
    /// generation holds, so an entry a read of the tables missed because of a fold is in
    /// the generation named after that read.
    fn folded_since(&self, snapshot: &mut Option<Arc<AdjacencySnapshot>>) -> bool {
        let now = self.current_adjacency_snapshot();
        let same = match (&now, &*snapshot) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        *snapshot = now;
        !same
    }

    /// The external ids of `ids`, in their order (what a query returns for many rows): one
    /// batched read of the vertex -> external id table.
    pub fn vertex_external_ids(
        &self,
        ids: &[VertexId],
    ) -> Result<Vec<Option<ExternalId>>, ReadError> {
        let Some(cache) = &self.external_id_cache else {
            return self.read_vertex_external_ids(ids);
        };
        let mut found = cache.get(ids);
        if found.iter().all(Option::is_some) {
            return Ok(found);
        }
        let to_read: Vec<VertexId> = ids
            .iter()
            .zip(&found)
            .filter(|(_, kept)| kept.is_none())
            .map(|(id, _)| *id)
            .collect();
        let read = self.read_vertex_external_ids(&to_read)?;
        cache.insert(
            to_read
                .iter()
                .zip(&read)
                .filter_map(|(id, ext)| Some((*id, ext.clone()?))),
        );
        let mut read = read.into_iter();
        for slot in found.iter_mut().filter(|kept| kept.is_none()) {
            *slot = read.next().flatten();
        }
        Ok(found)
    }

    /// [`Store::vertex_external_ids`] from the adjacency snapshot's id section where it covers
    /// them, else from the tables (again from the snapshot for the ids a fold took from the
    /// tables meanwhile: [`Store::folded_since`]).
    fn read_vertex_external_ids(
        &self,
        ids: &[VertexId],
    ) -> Result<Vec<Option<ExternalId>>, ReadError> {
        let mut snapshot = self.current_adjacency_snapshot();
        let mut found = vec![None; ids.len()];
        let mut rest: Vec<usize> = (0..ids.len()).collect();
        loop {
            if let Some(open) = &snapshot {
                let mut uncovered = Vec::new();
                for i in rest {
                    match open.external_id(ids[i])? {
                        Some(ext) => found[i] = ext,
                        None => uncovered.push(i),
                    }
                }
                rest = uncovered;
            }
            if rest.is_empty() {
                return Ok(found);
            }
            let wanted: Vec<VertexId> = rest.iter().map(|i| ids[*i]).collect();
            let mut missed = Vec::new();
            for (i, ext) in rest.into_iter().zip(self.read_table_external_ids(&wanted)?) {
                if ext.is_none() {
                    missed.push(i);
                }
                found[i] = ext;
            }
            if missed.is_empty() || !self.folded_since(&mut snapshot) {
                return Ok(found);
            }
            rest = missed;
        }
    }

    /// [`Store::vertex_external_ids`] from the tables: one batched read.
    pub(crate) fn read_table_external_ids(
        &self,
        ids: &[VertexId],
    ) -> Result<Vec<Option<ExternalId>>, ReadError> {
        if !self.tables.has_vertex_external_ids() {
            return ids.iter().map(|id| self.vertex_external_id(*id)).collect();
        }
        let mut keys: Vec<[u8; 8]> = ids.iter().map(|id| keys::id_key(id.0)).collect();
        keys.sort_unstable();
        keys.dedup();
        let found = self.tables.db().batched_multi_get_cf(
            self.tables.cf(Table::VertexExternalIds)?,
            keys.iter(),
            true,
        );
        let mut by_key = Vec::with_capacity(keys.len());
        for bytes in found {
            by_key.push(match bytes? {
                Some(bytes) => Some(codec::decode_external_id(&bytes)?),
                None => None,
            });
        }
        Ok(ids
            .iter()
            .map(|id| {
                keys.binary_search(&keys::id_key(id.0))
                    .ok()
                    .and_then(|i| by_key[i].clone())
            })
            .collect())
    }

    fn decode_vertex(&self, id: VertexId, bytes: &[u8]) -> Result<Vertex, ReadError> {
        let stored: StoredVertex = codec::decode(bytes, "vertex record")?;
        let type_name = self
            .vertex_type_name(TypeId(stored.type_id))
            .ok_or_else(|| ReadError::corruption("vertex record", "unknown type id"))?;
        Ok(Vertex {
            id,
            ext_id: stored.ext_id.into(),
            type_id: TypeId(stored.type_id),
            type_name,
            class: stored.class,
            stub: stored.stub,
            placement: stored.placement,
            attrs: self.resolve_attrs(stored.attrs)?,
        })
    }

    /// The edge with internal id `id`.
    pub fn edge(&self, id: EdgeId) -> Result<Option<Edge>, ReadError> {
        let Some(bytes) = self
            .tables
            .db()
            .get_pinned_cf(self.tables.cf(Table::Edges)?, keys::id_key(id.0))?
        else {
            return Ok(None);
        };
        self.decode_edge(id, &bytes).map(Some)
    }

    fn decode_edge(&self, id: EdgeId, bytes: &[u8]) -> Result<Edge, ReadError> {
        let stored: StoredEdge = codec::decode(bytes, "edge record")?;
        let type_name = self
            .edge_type_name(TypeId(stored.type_id))
            .ok_or_else(|| ReadError::corruption("edge record", "unknown type id"))?;
        Ok(Edge {
            id,
            ext_id: stored.ext_id.into(),
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
    pub fn scan_vertices(&self) -> impl Iterator<Item = Result<Vertex, ReadError>> + '_ {
        self.tables
            .scan_records(Table::Vertices, "vertex key")
            .map(|item| item.and_then(|(id, v)| self.decode_vertex(VertexId(id), &v)))
    }

    /// Every stored edge in id order, read as the iterator advances.
    pub fn scan_edges(&self) -> impl Iterator<Item = Result<Edge, ReadError>> + '_ {
        self.tables
            .scan_records(Table::Edges, "edge key")
            .map(|item| item.and_then(|(id, v)| self.decode_edge(EdgeId(id), &v)))
    }

    /// Internal id of the vertex with external id `ext`.
    pub fn vertex_id(&self, ext: &ExternalId) -> Result<Option<VertexId>, ReadError> {
        // A folded archive's snapshot maps the ids it covers; a miss asks the table.
        if let Some(snapshot) = self.current_adjacency_snapshot() {
            if let Some(v) = snapshot.vertex_of(ext)? {
                return Ok(Some(v));
            }
        }
        Ok(self
            .tables
            .lookup_external(EXT_VERTEX, ext)?
            .map(|entry| VertexId(entry.id)))
    }

    /// Internal id of the edge with external id `ext`.
    pub fn edge_id(&self, ext: &ExternalId) -> Result<Option<EdgeId>, ReadError> {
        Ok(self
            .tables
            .lookup_external(EXT_EDGE, ext)?
            .map(|entry| EdgeId(entry.id)))
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
    pub fn vertex_count(&self) -> Result<u64, ReadError> {
        self.tables.read_counter(Counter::NextVertex)
    }

    /// Number of edge ids allocated (edge ids are `0..edge_count()`; after a prune, some of
    /// them name no edge).
    pub fn edge_count(&self) -> Result<u64, ReadError> {
        self.tables.read_counter(Counter::NextEdge)
    }

    /// Number of vertices stored (allocated minus pruned).
    pub fn live_vertex_count(&self) -> Result<u64, ReadError> {
        Ok(self
            .vertex_count()?
            .saturating_sub(self.tables.read_counter(Counter::PrunedVertices)?))
    }

    /// Number of edges stored (allocated minus pruned).
    pub fn live_edge_count(&self) -> Result<u64, ReadError> {
        Ok(self
            .edge_count()?
            .saturating_sub(self.tables.read_counter(Counter::PrunedEdges)?))
    }

    fn read_id_set(&self, index: Table, index_key: &[u8]) -> Result<IdSet, ReadError> {
        let mut set = IdSet::default();
        for item in self.tables.scan_prefix(self.tables.cf(index)?, index_key) {
            let (k, v) = item?;
            let shard_bytes: [u8; 8] = k[index_key.len()..]
                .try_into()
                .map_err(|_| ReadError::corruption("index key", "bad shard"))?;
            let bitmap = RoaringBitmap::deserialize_from(&v[..])
                .map_err(|e| ReadError::corruption("index bitmap", e.to_string()))?;
            set.push_shard(u64::from_be_bytes(shard_bytes), bitmap);
        }
        Ok(set)
    }

    fn count_id_set(&self, index: Table, index_key: &[u8]) -> Result<u64, ReadError> {
        let mut total = 0;
        for item in self.tables.scan_prefix(self.tables.cf(index)?, index_key) {
            let (_, v) = item?;
            total += crate::id_set::serialized_cardinality(&v)
                .ok_or_else(|| ReadError::corruption("index bitmap", "bad header"))?;
        }
        Ok(total)
    }

    /// Number of vertices of a type, from the bitmap headers (no deserialization).
    pub fn count_vertices_of_type(&self, t: TypeId) -> Result<u64, ReadError> {
        self.count_id_set(Table::VertexTypeIndex, &t.0.to_be_bytes())
    }

    /// Number of edges of a type, from the bitmap headers (no deserialization).
    pub fn count_edges_of_type(&self, t: TypeId) -> Result<u64, ReadError> {
        self.count_id_set(Table::EdgeTypeIndex, &t.0.to_be_bytes())
    }

    /// Number of vertices of a machine, from the bitmap headers (no deserialization).
    pub fn count_vertices_of_machine(&self, machine: u32) -> Result<u64, ReadError> {
        self.count_id_set(Table::MachineIndex, &machine.to_be_bytes())
    }

    /// Ids of the vertices of a type (stubs carry their hinted type, or `unknown`).
    pub fn vertices_of_type(&self, t: TypeId) -> Result<IdSet, ReadError> {
        self.read_id_set(Table::VertexTypeIndex, &t.0.to_be_bytes())
    }

    /// Ids of the edges of a type.
    pub fn edges_of_type(&self, t: TypeId) -> Result<IdSet, ReadError> {
        self.read_id_set(Table::EdgeTypeIndex, &t.0.to_be_bytes())
    }

    /// Ids of the vertices of a machine.
    pub fn vertices_of_machine(&self, machine: u32) -> Result<IdSet, ReadError> {
        self.read_id_set(Table::MachineIndex, &machine.to_be_bytes())
    }

    /// Machines that have vertices.
    pub fn machine_ids(&self) -> Result<Vec<u32>, ReadError> {
        let mut out: Vec<u32> = Vec::new();
        let index = self.tables.cf(Table::MachineIndex)?;
        for item in self.tables.scan_prefix(index, &[]) {
            let (k, _) = item?;
            let m = u32::from_be_bytes(
                k.get(0..4)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| ReadError::corruption("machine index", "short key"))?,
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
        let mut scan = self.adjacency_cursor(direction, types);
        scan.restart(v);
        scan
    }

    /// A reader of many vertices' adjacency, one after another ([`AdjacencyScan::restart`]),
    /// in `direction` and restricted to `types`: a traversal level reads its whole frontier
    /// through it, and an iterator costs more to create than a seek. It starts with nothing
    /// to read.
    pub fn adjacency_cursor(&self, direction: Direction, types: &[TypeId]) -> AdjacencyScan<'_> {
        let mut types = types.to_vec();
        types.sort_unstable();
        types.dedup();
        let open = self.adjacency_snapshot.read();
        let snapshot = open.clone();
        let read_tables = snapshot.is_none() || !self.adjacency_tables_empty;
        // Where a fold (a writer's) or a catch-up (a secondary's) can change the tables and
        // the snapshot, the iterators are created now, under the lock they change both
        // under: created later, they could see tables whose folded entries a fold's
        // compaction has dropped, beside the generation before that fold. A read-only store's view never changes: it creates them on
        // first use (a scan the snapshot alone answers never does).
        let (mut out, mut into) = (None, None);
        if read_tables && *self.tables.mode() != OpenMode::ReadOnly {
            if direction != Direction::In {
                out = adjacency_iterator(&self.tables, Table::OutAdjacency).ok();
            }
            if direction != Direction::Out {
                into = adjacency_iterator(&self.tables, Table::InAdjacency).ok();
            }
        }
        drop(open);
        AdjacencyScan {
            tables: &self.tables,
            direction,
            types,
            pending: Vec::new(),
            active: None,
            serving: None,
            cache: self.adjacency_cache.as_ref(),
            collecting: None,
            out,
            into,
            read_tables,
            snapshot: snapshot.map(|s| SnapshotReaders {
                out: s.cursor(Side::Out),
                into: s.cursor(Side::In),
                pending: Vec::new(),
                vertex: VertexId(0),
                at: 0,
                started: false,
                collecting: None,
            }),
            peeked_snapshot: None,
            peeked_table: None,
            snapshot_done: false,
            tables_done: false,
        }
    }

    /// Edge ids whose time (Unix seconds) is in `from..=to`, in time order.
    pub fn edges_in_time_range(
        &self,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = Result<EdgeId, ReadError>> + '_ {
        let mut opts = ReadOptions::default();
        let end = to.checked_add(1).map(keys::time_prefix);
        if let Some(end) = end {
            opts.set_iterate_upper_bound(end.to_vec());
        }
        let start = keys::time_prefix(from);
        let index = match self.tables.cf(Table::EdgeTimeIndex) {
            Ok(index) => index,
            Err(e) => return Box::new(std::iter::once(Err(e))) as Box<dyn Iterator<Item = _>>,
        };
        Box::new(
            self.tables
                .db()
                .iterator_cf_opt(
                    index,
                    opts,
                    rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
                )
                .map(|item| {
                    let (k, _) = item?;
                    let e: [u8; 8] = k
                        .get(8..16)
                        .and_then(|s| s.try_into().ok())
                        .ok_or_else(|| ReadError::corruption("time index", "short key"))?;
                    Ok(EdgeId(u64::from_be_bytes(e)))
                }),
        )
    }

    /// Reads the whole store's totals.
    pub fn stats(&self) -> Result<StoreStats, ReadError> {
        let counters = self.tables.read_counters()?;
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
            vertices: counters
                .next_vertex
                .saturating_sub(counters.pruned_vertices),
            stub_vertices: counters.stubs,
            edges: counters.next_edge.saturating_sub(counters.pruned_edges),
            skipped_lines: counters.skipped,
            rejected_documents: counters.rejected,
            vertex_types,
            edge_types,
            machines,
        })
    }
}

/// Options of a compaction that rewrites the bottom level too: files that reached it by
/// trivial moves still carry the fast compression of the upper levels, not the archive's, and
/// a range deletion's tombstones go only once the bottom level is rewritten.
fn force_bottom() -> rocksdb::CompactOptions {
    let mut opts = rocksdb::CompactOptions::default();
    opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
    opts
}

/// A crash the test suite asks for (debug builds): `PROVDB_TEST_ABORT_FOLD_AT=<step>` aborts
/// the process at that step of a fold (`file-written`: the new generation is on disk, not
/// named; `named`: named, its entries not compacted out of the tables, the old file not removed).
fn crash_point(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("PROVDB_TEST_ABORT_FOLD_AT").is_ok_and(|s| s == step) {
        eprintln!("test hook: aborting a fold at {step}");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// A pause the test suite asks for (debug builds): `PROVDB_TEST_PAUSE_FOLD_AT=<step>` holds a
/// fold at that step for two seconds (`writing`: planned, the writer released, the new
/// generation not written yet; `compacting`: the new generation named, the writer released,
/// the folded entries not compacted out of the tables yet).
fn pause_point(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("PROVDB_TEST_PAUSE_FOLD_AT").is_ok_and(|s| s == step) {
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// What a fold is to cover, decided under the writer.
struct FoldPlan {
    /// The generation in use, merged into the next.
    previous: Option<Arc<AdjacencySnapshot>>,
    coverage: Coverage,
}

/// What a fold did: the size of the generation it wrote, and the tables whose folded entries
/// a compaction is to drop (for [`Store::drop_folded_entries`]).
pub(crate) struct Folded {
    bytes: u64,
    to_compact: Vec<Table>,
}

/// Iterator over the adjacency of one vertex (see [`Store::neighbours`]), which
/// [`AdjacencyScan::restart`] moves to another vertex, keeping its storage iterators.
pub struct AdjacencyScan<'a> {
    tables: &'a Tables,
    direction: Direction,
    /// Edge types to read, sorted (all when empty).
    types: Vec<TypeId>,
    /// Prefixes (or cached lists) still to read, the next last.
    pending: Vec<(Direction, AdjacencySource)>,
    /// The direction and prefix being read.
    active: Option<(Direction, AdjacencyPrefix)>,
    /// The cached list being read, and the position in it.
    serving: Option<(Direction, Arc<[CachedAdjacent]>, usize)>,
    /// The store's adjacency cache, and the list of the active prefix read so far when the
    /// store keeps lists (`None` once it outgrows what the cache keeps).
    cache: Option<&'a AdjacencyCache>,
    collecting: Option<Vec<CachedAdjacent>>,
    /// One iterator per direction, created on first use and kept for every later prefix:
    /// creating one costs more than reading a vertex's edges.
    out: Option<DBRawIterator<'a>>,
    into: Option<DBRawIterator<'a>>,
    /// The snapshot's readers, when the archive has a snapshot: its entries are merged with
    /// the tables'.
    snapshot: Option<SnapshotReaders>,
    /// Whether the tables are read (not when a read-only store found them empty at open).
    read_tables: bool,
    /// The next entry of each source not yet yielded, and whether a source is read out.
    peeked_snapshot: Option<Adjacent>,
    peeked_table: Option<Adjacent>,
    snapshot_done: bool,
    tables_done: bool,
}

/// The adjacency snapshot's readers of a scan, one per direction.
struct SnapshotReaders {
    out: SnapshotCursor,
    into: SnapshotCursor,
    /// Directions still to read, the next last, each with the kept list that answers for it
    /// (a read-only store that reads the snapshot alone keeps whole lists, as for the tables).
    pending: Vec<(Direction, Option<Arc<[CachedAdjacent]>>)>,
    /// The vertex read.
    vertex: VertexId,
    /// Position in the kept list being served.
    at: usize,
    /// Whether the direction on top of `pending` has been started.
    started: bool,
    /// The whole list of the direction being read from the file, while it is one to keep.
    collecting: Option<Vec<CachedAdjacent>>,
}

impl SnapshotReaders {
    /// The reader of direction `d` (`Out` or `In`).
    fn cursor(&mut self, d: Direction) -> &mut SnapshotCursor {
        match d {
            Direction::Out => &mut self.out,
            _ => &mut self.into,
        }
    }
}

/// Where a scan reads one direction of a vertex's adjacency from.
#[derive(Debug, Clone)]
enum AdjacencySource {
    Table(AdjacencyPrefix),
    Cached(Arc<[CachedAdjacent]>),
}

/// An adjacency key prefix: the vertex, and the edge type when the scan is restricted (bytes
/// past `len` are zero, so that equal prefixes compare and hash equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AdjacencyPrefix {
    bytes: [u8; 10],
    len: u8,
}

impl AdjacencyPrefix {
    fn vertex(v: VertexId) -> AdjacencyPrefix {
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&v.0.to_be_bytes());
        AdjacencyPrefix { bytes, len: 8 }
    }

    fn typed(v: VertexId, t: TypeId) -> AdjacencyPrefix {
        let mut prefix = AdjacencyPrefix::vertex(v);
        prefix.bytes[8..].copy_from_slice(&t.0.to_be_bytes());
        prefix.len = 10;
        prefix
    }

    fn get(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl AdjacencyScan<'_> {
    /// Starts over with the adjacency of `v` (what is left of the previous vertex's is
    /// dropped), keeping the iterators.
    pub fn restart(&mut self, v: VertexId) {
        self.pending.clear();
        self.active = None;
        self.serving = None;
        self.collecting = None;
        self.peeked_snapshot = None;
        self.peeked_table = None;
        self.snapshot_done = false;
        self.tables_done = false;
        let dirs: &[Direction] = match self.direction {
            Direction::Out => &[Direction::Out],
            Direction::In => &[Direction::In],
            Direction::Both => &[Direction::Out, Direction::In],
        };
        if let Some(snapshot) = &mut self.snapshot {
            snapshot.pending.clear();
            snapshot.vertex = v;
            snapshot.at = 0;
            snapshot.started = false;
            snapshot.collecting = None;
            let cache = self.cache.filter(|_| !self.read_tables);
            for d in dirs.iter().rev() {
                let kept = cache.and_then(|c| c.get(*d, AdjacencyPrefix::vertex(v)));
                if kept.is_none() {
                    snapshot.cursor(*d).restart(v);
                }
                snapshot.pending.push((*d, kept));
            }
        }
        if !self.read_tables {
            return;
        }
        // A kept list answers for its prefix; one of every type for any typed scan too.
        let source =
            |cache: Option<&AdjacencyCache>, d: Direction, prefix: AdjacencyPrefix| match cache
                .and_then(|c| c.get(d, prefix))
            {
                Some(list) => AdjacencySource::Cached(list),
                None => AdjacencySource::Table(prefix),
            };
        for d in dirs {
            let whole = source(self.cache, *d, AdjacencyPrefix::vertex(v));
            if self.types.is_empty() || matches!(whole, AdjacencySource::Cached(_)) {
                self.pending.push((*d, whole));
                continue;
            }
            for t in &self.types {
                let typed = source(self.cache, *d, AdjacencyPrefix::typed(v, *t));
                self.pending.push((*d, typed));
            }
        }
        self.pending.reverse();
    }
}

/// An iterator over adjacency table `table`, positioned nowhere. Every prefix a scan seeks
/// starts with a vertex: the 8-byte prefix extractor keeps the iterator inside that vertex's
/// keys, and its bloom filter skips files that hold none of them.
fn adjacency_iterator(tables: &Tables, table: Table) -> Result<DBRawIterator<'_>, ReadError> {
    let mut opts = ReadOptions::default();
    opts.set_prefix_same_as_start(true);
    Ok(tables.db().raw_iterator_cf_opt(tables.cf(table)?, opts))
}

/// Where an entry falls in a scan's order: direction (out first), type, edge.
fn scan_order(a: &Adjacent) -> (bool, TypeId, EdgeId) {
    (a.direction == Direction::In, a.edge_type, a.edge)
}

impl Iterator for AdjacencyScan<'_> {
    type Item = Result<Adjacent, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.snapshot.is_none() {
            return self.next_from_tables();
        }
        if !self.read_tables {
            return self.next_from_snapshot();
        }
        // Both sources are in scan order: one ordered merge. An entry in both (an unfold cut
        // short) is yielded once.
        if self.peeked_snapshot.is_none() && !self.snapshot_done {
            match self.next_from_snapshot() {
                Some(Ok(a)) => self.peeked_snapshot = Some(a),
                Some(Err(e)) => return Some(Err(e)),
                None => self.snapshot_done = true,
            }
        }
        if self.peeked_table.is_none() && !self.tables_done {
            match self.next_from_tables() {
                Some(Ok(a)) => self.peeked_table = Some(a),
                Some(Err(e)) => return Some(Err(e)),
                None => self.tables_done = true,
            }
        }
        match (self.peeked_snapshot, self.peeked_table) {
            (None, None) => None,
            (Some(a), Some(b)) if scan_order(&b) < scan_order(&a) => {
                self.peeked_table = None;
                Some(Ok(b))
            }
            (Some(a), b) => {
                if b.is_some_and(|b| scan_order(&b) == scan_order(&a)) {
                    self.peeked_table = None;
                }
                self.peeked_snapshot = None;
                Some(Ok(a))
            }
            (None, Some(b)) => {
                self.peeked_table = None;
                Some(Ok(b))
            }
        }
    }
}

impl AdjacencyScan<'_> {
    /// The snapshot's next entry, in scan order.
    fn next_from_snapshot(&mut self) -> Option<Result<Adjacent, ReadError>> {
        let cache = self.cache.filter(|_| !self.read_tables);
        let snapshot = self.snapshot.as_mut()?;
        loop {
            let Some((dir, kept)) = snapshot.pending.last() else {
                self.snapshot_done = true;
                return None;
            };
            let dir = *dir;
            if let Some(list) = kept {
                if let Some(a) = next_kept(list, &mut snapshot.at, &self.types, dir) {
                    return Some(Ok(a));
                }
                snapshot.pending.pop();
                snapshot.at = 0;
                continue;
            }
            if !snapshot.started {
                // Only a scan of every type reads a whole list.
                snapshot.started = true;
                snapshot.collecting = (cache.is_some() && self.types.is_empty()).then(Vec::new);
            }
            match snapshot.cursor(dir).next_entry(&self.types) {
                Some(Ok((edge_type, edge, neighbour))) => {
                    let a = Adjacent {
                        edge,
                        edge_type,
                        neighbour,
                        direction: dir,
                    };
                    gather(&mut snapshot.collecting, &a);
                    return Some(Ok(a));
                }
                Some(Err(e)) => {
                    snapshot.pending.clear();
                    snapshot.collecting = None;
                    return Some(Err(e));
                }
                None => {
                    if let (Some(cache), Some(list)) = (cache, snapshot.collecting.take()) {
                        cache.insert(dir, AdjacencyPrefix::vertex(snapshot.vertex), list);
                    }
                    snapshot.pending.pop();
                    snapshot.started = false;
                }
            }
        }
    }

    /// The tables' (or the cache's) next entry, in scan order.
    fn next_from_tables(&mut self) -> Option<Result<Adjacent, ReadError>> {
        loop {
            if let Some((dir, list, at)) = &mut self.serving {
                if let Some(a) = next_kept(list, at, &self.types, *dir) {
                    return Some(Ok(a));
                }
                self.serving = None;
            }
            if let Some((dir, prefix)) = &self.active {
                let it = match dir {
                    Direction::Out => self.out.as_mut(),
                    _ => self.into.as_mut(),
                };
                if let Some(it) = it {
                    if let Some(key) = it.key().filter(|k| k.starts_with(prefix.get())) {
                        let adj =
                            keys::decode_adjacency_key(key).map(|(_, t, e, other)| Adjacent {
                                edge: e,
                                edge_type: t,
                                neighbour: other,
                                direction: *dir,
                            });
                        it.next();
                        if let Some(a) = &adj {
                            gather(&mut self.collecting, a);
                        }
                        return Some(adj.ok_or_else(|| {
                            ReadError::corruption("adjacency key", "wrong length")
                        }));
                    }
                    if let Err(e) = it.status() {
                        self.active = None;
                        self.collecting = None;
                        self.pending.clear();
                        return Some(Err(e.into()));
                    }
                    // The prefix is read whole: keep its list when it is one to keep.
                    if let (Some(cache), Some(list)) = (self.cache, self.collecting.take()) {
                        cache.insert(*dir, *prefix, list);
                    }
                }
            }
            let (dir, source) = self.pending.pop()?;
            let prefix = match source {
                AdjacencySource::Cached(list) => {
                    self.active = None;
                    self.serving = Some((dir, list, 0));
                    continue;
                }
                AdjacencySource::Table(prefix) => prefix,
            };
            self.collecting = self.cache.is_some().then(Vec::new);
            self.active = Some((dir, prefix));
            let (slot, table) = match dir {
                Direction::Out => (&mut self.out, Table::OutAdjacency),
                _ => (&mut self.into, Table::InAdjacency),
            };
            match slot {
                Some(it) => it.seek(prefix.get()),
                None => {
                    let mut it = match adjacency_iterator(self.tables, table) {
                        Ok(it) => it,
                        Err(e) => return Some(Err(e)),
                    };
                    it.seek(prefix.get());
                    *slot = Some(it);
                }
            }
        }
    }
}
