//! Column family names and their RocksDB options, in one place so that every open uses the
//! same options (re-opening with other options silently changes on-disk behaviour).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rocksdb::compaction_filter::Decision;
use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Options};

use crate::keys;

/// Metadata: format version, id counters, persistent counters, dictionaries.
pub const META: &str = "meta";
/// External id -> internal id (vertices and edges, by a kind byte).
pub const EXTERNAL_IDS: &str = "external_ids";
/// Vertex id -> vertex record.
pub const VERTICES: &str = "vertices";
/// Vertex id -> external id (format 2): returning ids never decodes a vertex record.
pub const VERTEX_EXTERNAL_IDS: &str = "vertex_external_ids";
/// Edge id -> edge record.
pub const EDGES: &str = "edges";
/// src | edge type | edge | dst -> empty.
pub const OUT_ADJACENCY: &str = "out_adjacency";
/// dst | edge type | edge | src -> empty.
pub const IN_ADJACENCY: &str = "in_adjacency";
/// vertex type | shard -> roaring bitmap of vertex ids.
pub const VERTEX_TYPE_INDEX: &str = "vertex_type_index";
/// edge type | shard -> roaring bitmap of edge ids.
pub const EDGE_TYPE_INDEX: &str = "edge_type_index";
/// machine | shard -> roaring bitmap of vertex ids.
pub const MACHINE_INDEX: &str = "machine_index";
/// time | edge -> empty.
pub const EDGE_TIME_INDEX: &str = "edge_time_index";
/// The graph's own column families, in creation order. Other column families of an archive are
/// side tables ([`crate::SideTable`]).
pub const GRAPH_TABLES: [&str; 11] = [
    META,
    EXTERNAL_IDS,
    VERTICES,
    EDGES,
    OUT_ADJACENCY,
    IN_ADJACENCY,
    VERTEX_TYPE_INDEX,
    EDGE_TYPE_INDEX,
    MACHINE_INDEX,
    EDGE_TIME_INDEX,
    VERTEX_EXTERNAL_IDS,
];

/// Graph tables added after format 1's archives were written: a reader opens them only where
/// the archive has them.
const ADDED_LATER: [&str; 1] = [VERTEX_EXTERNAL_IDS];

/// RocksDB's own column family, present in every database and unused by provdb.
const ROCKSDB_DEFAULT: &str = "default";

pub(crate) fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(2);
    opts.set_bytes_per_sync(1 << 20);
    opts.set_max_open_files(512);
    opts.set_keep_log_file_num(4);
    // Writes without the WAL (`Durability::Unlogged`) survive a crash only through flushes:
    // flushing every column family as one keeps a batch's records, adjacency and counters
    // together (a batch half on disk would leave adjacency entries of edges that are not).
    opts.set_atomic_flush(true);
    opts
}

/// Bottom-level compression of [`crate::Store::compact`] for the record tables: zstd level 9
/// with a dictionary trained per file (CamFlow records repeat their attribute names and
/// values; external ids share their machine and boot ids). The dictionary is 112 KiB, stored
/// once per file: against 32 KiB, the external id map is 5% smaller and the vertex records
/// 16% (1M-edge bench archive: 59.5 -> 58.2 bytes per edge in all), for about a second more
/// of `compact` (training on more samples).
pub(crate) const ARCHIVE_COMPRESSION: &str =
    "{level=9;max_dict_bytes=114688;zstd_max_train_bytes=11468800;enabled=true}";

/// When a column family's level-0 files (one per memtable flush) are merged into the levels
/// below. Every read probes each level-0 file, so a live archive merges them early; a bulk
/// import reads little and would rewrite the growing bottom level at each merge: at 4 files,
/// a 10M-edge import spent about a quarter of its CPU (33 of ~150 CPU-seconds) in compactions
/// whose output `compact` rewrites anyway.
///
/// Writes slow down at 64 level-0 files and stop at 96 at either pace (RocksDB's defaults are
/// 20 and 36): the writer of a live archive is the ingest, whose backlog costs more than reads
/// probing more files, and a flush (a durable point) waits while it would slow writes down, so
/// lower limits would make the first flush after a bulk import wait for the merges it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompactionPace {
    /// A merge at 4 level-0 files (RocksDB's default). The pace of an open unless
    /// [`crate::StoreOptions::compaction_pace`] says otherwise.
    Live,
    /// A merge at 32 level-0 files: a 10M-edge import flushes 26 times and merges nothing
    /// until it ends; a larger one merges every 32 flushes (bounded, so that the files a
    /// look-up probes and the files open stay bounded too). Set by `import` while it runs,
    /// or for a whole open that is a bulk load.
    Bulk,
}

impl CompactionPace {
    /// Level-0 files at which a compaction starts, writes slow down, writes stop.
    fn level0_triggers(self) -> [i32; 3] {
        match self {
            CompactionPace::Live => [4, 64, 96],
            CompactionPace::Bulk => [32, 64, 96],
        }
    }

    /// This pace as RocksDB's mutable column-family options (`SetOptions`).
    pub(crate) fn rocksdb_options(self) -> [(&'static str, String); 3] {
        let [trigger, slowdown, stop] = self.level0_triggers();
        [
            ("level0_file_num_compaction_trigger", trigger.to_string()),
            ("level0_slowdown_writes_trigger", slowdown.to_string()),
            ("level0_stop_writes_trigger", stop.to_string()),
        ]
    }

    fn apply(self, opts: &mut Options) {
        let [trigger, slowdown, stop] = self.level0_triggers();
        opts.set_level_zero_file_num_compaction_trigger(trigger);
        opts.set_level_zero_slowdown_writes_trigger(slowdown);
        opts.set_level_zero_stop_writes_trigger(stop);
    }
}

/// How a column family keeps its bytes, decided by what it is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoragePolicy {
    /// Read at every traversal step (adjacency) or for every result row (the vertex ->
    /// external id map): small blocks and LZ4 at every level, so a first touch reads and
    /// decompresses little. Keys are most of their bytes, which the
    /// blocks' prefix encoding already shares.
    Traversal,
    /// Point look-ups, a few per query (external ids, the time index): small blocks, so a
    /// look-up decompresses little, but the archive's zstd at the bottom level, since LZ4
    /// there cost 15 bytes per edge for the external ids alone. (2 KiB blocks answered no
    /// faster than 4 KiB in ten alternated rounds of bench children.)
    Lookup,
    /// Records and bitmaps, read once per result: larger blocks, zstd at the bottom level.
    Dense,
}

impl StoragePolicy {
    /// The policy of column family `name`.
    pub(crate) fn of(name: &str) -> StoragePolicy {
        match name {
            OUT_ADJACENCY | IN_ADJACENCY | VERTEX_EXTERNAL_IDS => StoragePolicy::Traversal,
            EXTERNAL_IDS | EDGE_TIME_INDEX => StoragePolicy::Lookup,
            _ => StoragePolicy::Dense,
        }
    }

    /// Whether `Store::compact` rewrites its bottom level with the archive's zstd.
    pub(crate) fn archive_compression(self) -> bool {
        self != StoragePolicy::Traversal
    }
}

/// The edge mark below which a writer's compactions drop the adjacency tables' entries: the
/// entries of the edges the named adjacency snapshot holds, which a fold leaves in the tables
/// for compaction to drop rather than deleting them under the writer (see
/// `Store::fold_adjacency`). 0 (nothing folded, or an unfold writing the snapshot's entries
/// back) drops nothing. Set only once the snapshot that holds the edges below it is named.
#[derive(Debug, Clone, Default)]
pub(crate) struct FoldedEdgeMark(Arc<AtomicU64>);

impl FoldedEdgeMark {
    /// Compactions from now on drop the entries of edges below `mark`.
    pub(crate) fn set(&self, mark: u64) {
        self.0.store(mark, Ordering::SeqCst);
    }

    /// Whether a compaction keeps the adjacency entry `key` (an entry it cannot read is kept:
    /// `check` reports it).
    fn keeps(&self, key: &[u8]) -> bool {
        let mark = self.0.load(Ordering::SeqCst);
        mark == 0 || keys::decode_adjacency_key(key).is_none_or(|(_, _, edge, _)| edge.0 >= mark)
    }
}

/// What an open needs: the descriptors of the column families to open and, among them, the
/// side tables.
pub(crate) struct OpenTables {
    pub(crate) descriptors: Vec<ColumnFamilyDescriptor>,
    pub(crate) side_tables: Vec<String>,
    /// Whether the external-id table opened with its memtable filter (see
    /// [`memtable_filter_options`]).
    pub(crate) external_id_memtable_filter: bool,
}

/// The share of a writer's memtable given to its whole-key filter, in the tables whose reads
/// are mostly misses (external ids, side tables).
const MEMTABLE_FILTER_RATIO: f64 = 0.05;

/// Turns a writer's whole-key memtable filter on or off, at open.
fn set_memtable_filter(opts: &mut Options, on: bool) {
    opts.set_memtable_whole_key_filtering(on);
    opts.set_memtable_prefix_bloom_ratio(if on { MEMTABLE_FILTER_RATIO } else { 0.0 });
}

/// The same as RocksDB's mutable options, to turn the filter on or off on an open table
/// (`SetOptions`; for the memtables made from then on).
///
/// The external-id table needs it only while the writer looks ids up. The writer looks up
/// every external id of a batch its caches lack, and most are new: a filter answers those
/// misses in the memtable too. But a writer that tracks what it wrote (an import into a new
/// archive, see `WrittenIds`) looks up nothing, and every insert paid the filter's cache miss:
/// 1M-edge imports took 3% less CPU without it. So the table opens without the filter on a new
/// archive, and the writer sets it to follow its tracking.
pub(crate) fn memtable_filter_options(on: bool) -> [(&'static str, String); 2] {
    let ratio = if on { MEMTABLE_FILTER_RATIO } else { 0.0 };
    [
        ("memtable_whole_key_filtering", on.to_string()),
        ("memtable_prefix_bloom_size_ratio", ratio.to_string()),
    ]
}

/// The column families to open at `path`. A writer opens every graph table, every declared
/// side table (created when missing) and every other column family on disk (RocksDB opens all
/// of a database's column families for writing, or fails). A reader opens what the archive
/// has: the graph tables, less those added after its version, and its side tables.
pub(crate) fn open_tables(
    opts: &Options,
    path: &std::path::Path,
    cache: &Cache,
    writer: bool,
    declared: &[crate::SideTable],
    folded: &FoldedEdgeMark,
    pace: CompactionPace,
) -> Result<OpenTables, crate::OpenError> {
    for t in declared {
        if GRAPH_TABLES.contains(&t.name()) || t.name() == ROCKSDB_DEFAULT {
            return Err(crate::OpenError::ReservedTableName { name: t.name() });
        }
    }
    // A missing database has no column families yet.
    let existing = rocksdb::DB::list_cf(opts, path).unwrap_or_default();
    let on_disk = |name: &str| existing.iter().any(|e| e == name);
    let external_id_memtable_filter = writer && !existing.is_empty();
    let mut descriptors: Vec<ColumnFamilyDescriptor> = GRAPH_TABLES
        .iter()
        .filter(|name| writer || !ADDED_LATER.contains(name) || on_disk(name))
        .map(|name| {
            let mut opts = cf_options(name, cache, writer, folded, pace);
            if *name == EXTERNAL_IDS && writer {
                set_memtable_filter(&mut opts, external_id_memtable_filter);
            }
            ColumnFamilyDescriptor::new(*name, opts)
        })
        .collect();
    let mut side_tables: Vec<String> = existing
        .iter()
        .filter(|e| !GRAPH_TABLES.contains(&e.as_str()) && e.as_str() != ROCKSDB_DEFAULT)
        .cloned()
        .collect();
    if writer {
        for t in declared {
            if !side_tables.iter().any(|s| s == t.name()) {
                side_tables.push(t.name().to_owned());
            }
        }
    }
    for name in &side_tables {
        descriptors.push(ColumnFamilyDescriptor::new(
            name,
            cf_options(name, cache, writer, folded, pace),
        ));
    }
    Ok(OpenTables {
        descriptors,
        side_tables,
        external_id_memtable_filter,
    })
}

/// Memtable bytes per column family. Debug builds take `PROVDB_TEST_WRITE_BUFFER_BYTES`, so
/// that crash tests see flushes in the middle of a small import.
fn write_buffer_bytes() -> usize {
    const DEFAULT: usize = 64 << 20;
    #[cfg(debug_assertions)]
    if let Some(bytes) = std::env::var("PROVDB_TEST_WRITE_BUFFER_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return bytes;
    }
    DEFAULT
}

/// The options of column family `name`; `writer` for the one process that writes (a reader's
/// memtables hold nothing, or only a writer's WAL it replays: no memtable filters, which
/// every open zeroed, megabytes each, and every seek probed, cold).
fn cf_options(
    name: &str,
    cache: &Cache,
    writer: bool,
    folded: &FoldedEdgeMark,
    pace: CompactionPace,
) -> Options {
    let mut opts = Options::default();
    let mut table = BlockBasedOptions::default();
    let policy = StoragePolicy::of(name);
    table.set_block_cache(cache);
    table.set_block_size(match policy {
        StoragePolicy::Traversal | StoragePolicy::Lookup => 4 * 1024,
        StoragePolicy::Dense => 16 * 1024,
    });
    // Partitioned indexes and filters: a lookup reads one small partition through the block
    // cache. A whole-file filter of a large file can outgrow a cache shard; it is then read
    // from disk on every lookup: a 10-million-edge import stalled on those reads.
    table.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_partition_filters(true);
    table.set_metadata_block_size(4096);
    table.set_cache_index_and_filter_blocks(true);
    table.set_cache_index_and_filter_blocks_with_high_priority(true);
    table.set_pin_top_level_index_and_filter(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    table.set_format_version(5);
    // A reader keeps every index and filter partition in the cache once a file is opened: a
    // cold look-up then reads one data block, not also a partition of the index and one of
    // the filter. Bench children on the 1M-edge archive: Q2 first touch about 10% faster, its
    // p99 halved; the process holds 6-15 MB more (charged to the block cache). The writer
    // does not: its files come and go, and it reads few of them.
    if !writer {
        table.set_partition_pinning_tier(rocksdb::BlockBasedTablePinningTier::All);
    }
    opts.set_compression_type(DBCompressionType::Lz4);
    // Memtable flushes (level 0) are compressed with LZ4 too. Uncompressed, they saved the
    // flush thread's LZ4 (4% of an import's CPU) on one machine, but doubled the bytes copied
    // into the page cache, which costs more wherever that copy is slow: on a VM whose page
    // cache was full, the flush thread spent 74% of its time copying (17% of a 10M-edge
    // import's CPU), and a 1M-edge import took 7.4-7.8 s uncompressed against 5.9-6.1 s with
    // LZ4. (Under dynamic level sizes, entry i > 0 is the i-th level from the base level
    // down; the bottommost level takes the setting below.)
    opts.set_compression_per_level(&[
        DBCompressionType::Lz4,
        DBCompressionType::Lz4,
        DBCompressionType::Lz4,
        DBCompressionType::Lz4,
        DBCompressionType::Lz4,
        DBCompressionType::Lz4,
        DBCompressionType::Lz4,
    ]);
    opts.set_bottommost_compression_type(match policy {
        StoragePolicy::Traversal => DBCompressionType::Lz4,
        StoragePolicy::Lookup | StoragePolicy::Dense => DBCompressionType::Zstd,
    });
    // Background compactions use zstd's default level: the archive's stronger settings
    // (ARCHIVE_COMPRESSION) cost too much CPU beside a running import; `Store::compact`
    // switches to them.
    opts.set_level_compaction_dynamic_level_bytes(true);
    pace.apply(&mut opts);
    opts.set_write_buffer_size(write_buffer_bytes());
    match name {
        OUT_ADJACENCY | IN_ADJACENCY => {
            // Every read is "the edges of one vertex": an 8-byte prefix bloom lets a seek skip
            // files that hold nothing of that vertex.
            opts.set_prefix_extractor(rocksdb::SliceTransform::create_fixed_prefix(8));
            if writer {
                opts.set_memtable_prefix_bloom_ratio(0.1);
                let folded = folded.clone();
                opts.set_compaction_filter(
                    "provdb-folded-adjacency",
                    move |_, key: &[u8], _: &[u8]| {
                        if folded.keeps(key) {
                            Decision::Keep
                        } else {
                            Decision::Remove
                        }
                    },
                );
            }
            table.set_bloom_filter(10.0, false);
            table.set_whole_key_filtering(false);
        }
        // Every write looks up each external id, and most are new. Side tables are read by
        // key, mostly for keys they lack (detection asks for the facts of every vertex it
        // meets for the first time). Both need cheap misses, in the memtable too, not only in
        // the files. A ribbon filter answers as a bloom filter of 10 bits per key does in
        // about 30% less space (these filters were 1.7 bytes per edge of a compacted archive).
        table_name if table_name == EXTERNAL_IDS || !GRAPH_TABLES.contains(&table_name) => {
            // Bloom filters in level-0 files: they are built at every flush and dropped at the
            // next compaction, and a ribbon filter costs more CPU to build (2% of an import's).
            table.set_hybrid_ribbon_filter(10.0, 1);
            if writer {
                set_memtable_filter(&mut opts, true);
            }
        }
        // No filter on the record tables: they are read by id, and an id that is asked for
        // exists (ids are dense and come from the indexes), so a filter would only cost space
        // (1.7 bytes per edge) and a probe per read.
        _ => {}
    }
    opts.set_block_based_table_factory(&table);
    opts
}
