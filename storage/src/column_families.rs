//! Column family names and their RocksDB options, in one place so that every open uses the
//! same options (re-opening with other options silently changes on-disk behaviour).

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Options};

/// Metadata: format version, id counters, persistent counters, dictionaries.
pub const META: &str = "meta";
/// External id -> internal id (vertices and edges, by a kind byte).
pub const EXTERNAL_IDS: &str = "external_ids";
/// Vertex id -> vertex record.
pub const VERTICES: &str = "vertices";
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
/// Machine registry of the ingest service: machine id -> record (opaque to the engine).
pub const MACHINES: &str = "machines";
/// Quarantined messages of the ingest service: sequence -> record (opaque to the engine).
pub const QUARANTINE: &str = "quarantine";

/// Every column family, in creation order.
pub const ALL: [&str; 12] = [
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
    MACHINES,
    QUARANTINE,
];

pub(crate) fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(2);
    opts.set_bytes_per_sync(1 << 20);
    opts.set_max_open_files(512);
    opts.set_keep_log_file_num(4);
    opts
}

pub(crate) fn descriptors(cache: &Cache) -> Vec<ColumnFamilyDescriptor> {
    ALL.iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name, cache)))
        .collect()
}

fn cf_options(name: &str, cache: &Cache) -> Options {
    let mut opts = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_block_size(16 * 1024);
    table.set_cache_index_and_filter_blocks(true);
    table.set_format_version(5);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_bottommost_compression_type(DBCompressionType::Zstd);
    opts.set_level_compaction_dynamic_level_bytes(true);
    opts.set_write_buffer_size(64 << 20);
    match name {
        OUT_ADJACENCY | IN_ADJACENCY => {
            // Every read is "the edges of one vertex": an 8-byte prefix bloom lets a seek skip
            // files that hold nothing of that vertex.
            opts.set_prefix_extractor(rocksdb::SliceTransform::create_fixed_prefix(8));
            opts.set_memtable_prefix_bloom_ratio(0.1);
            table.set_bloom_filter(10.0, false);
            table.set_whole_key_filtering(false);
        }
        EXTERNAL_IDS | VERTICES | EDGES => {
            table.set_bloom_filter(10.0, false);
        }
        _ => {}
    }
    opts.set_block_based_table_factory(&table);
    opts
}
