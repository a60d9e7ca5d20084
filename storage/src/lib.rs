//! # provdb-storage
//!
//! The storage engine of provdb: a provenance graph (typed vertices and typed, directed
//! edges in information-flow direction) persisted in RocksDB column families.
//!
//! * Dense `u64` internal ids ([`VertexId`], [`EdgeId`]) allocated by one writer.
//! * Adjacency in two column families keyed `vertex | edge type | edge | neighbour`, so that
//!   "neighbours of v over edge types T" is one prefix scan per type.
//! * Roaring-bitmap indexes of vertices by type and machine and of edges by type, sharded by
//!   2^20 ids; a time index of edges.
//! * Values are bincode 2 behind a format byte; the on-disk format version is in `meta`.
//! * Writes are idempotent and atomic per [`RecordBatch`]; stubs stand in for edge endpoints
//!   that have not arrived yet.
//! * Errors per operation family: opening fails with an [`OpenError`], reading with a
//!   [`ReadError`], writing with a [`WriteError`]; each converts into [`StorageError`].
//!
//! This crate knows nothing of JSON, MQTT or the query language.
//!
//! ```
//! use provdb_storage::*;
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//! let task = VertexInput {
//!     ext_id: ExternalId::parse("task-1"),
//!     type_name: "task".into(),
//!     class: ProvClass::Activity,
//!     placement: Placement { machine: Some(7), ..Default::default() },
//!     attrs: vec![("cf:pid".into(), Value::Int(42))],
//! };
//! store.write(&RecordBatch { vertices: vec![task], ..Default::default() })?;
//! let id = store.vertex_id(&ExternalId::parse("task-1"))?.expect("stored");
//! let v = store.vertex(id)?.expect("readable");
//! assert_eq!(&*v.type_name, "task");
//! assert_eq!(find_attr(&v.attrs, "pid"), Some(&Value::Int(42)));
//! store.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

mod adjacency_snapshot;
mod archive;
mod civil;
mod codec;
pub mod column_families;
mod dictionary;
mod error;
mod graph_read;
mod id_set;
mod ids;
mod keys;
mod model;
mod side_table;
mod store;
mod tables;
mod writer;
mod written_ids;

pub use adjacency_snapshot::FILE_PREFIX as ADJACENCY_SNAPSHOT_FILE_PREFIX;
pub use archive::{CheckProblem, CheckReport, PruneReport, PruneSelection, MAX_LISTED_PROBLEMS};
pub use civil::UtcDateTime;
pub use column_families::CompactionPace;
pub use error::{OpenError, ReadError, Result, StorageError, WriteError};
pub use graph_read::{AdjacencyCursor, GraphRead};
pub use id_set::IdSet;
pub use ids::{AttrKeyId, EdgeId, TypeId, VertexId};
pub use model::{
    find_attr, Adjacent, Direction, Edge, EdgeInput, EndpointInput, ExternalId, Name, Placement,
    ProvClass, ProvRelation, RecordBatch, Value, Vertex, VertexInput,
};
pub use side_table::{SidePut, SideTable};
pub use store::{
    AdjacencyScan, FoldBacklog, Store, StoreOptions, StoreStats, ADJACENCY_SNAPSHOT_SIZE_NAME,
};
pub use tables::{Durability, OpenMode, RawEntry, FORMAT_VERSION, OLDEST_FORMAT_VERSION};
pub use writer::{PreparedWrite, ResolvedWrite, WriteSummary};
