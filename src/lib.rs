//! # provdb
//!
//! An embedded graph database for CamFlow whole-system provenance. It decodes CamFlow
//! payloads (base64 + zlib + W3C PROV-JSON or SPADE JSON), stores the graph in RocksDB with
//! roaring-bitmap indexes ([`provdb_storage`]), and answers traversal queries.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let db = provdb::Database::open(dir.path())?;
//! let doc = br#"{"prefix":{},"activity":{"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=":{"prov:type":"task","cf:pid":3666}},
//!   "entity":{"cf:AAAACAAAACDHHQIAAAAAAAEAAABTTLt0AAAAAAAAAAA=":{"prov:type":"process_memory"}},
//!   "wasGeneratedBy":{"cf:QAAAAAAAQIDNAgAAAAAAAAEAAABTTLt0AAAAAAAAAAA=":{"prov:type":"write",
//!     "prov:activity":"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=",
//!     "prov:entity":"cf:AAAACAAAACDHHQIAAAAAAAEAAABTTLt0AAAAAAAAAAA="}}}"#;
//! db.ingest_json(doc.to_vec())?;
//! let task = db.vertex_by_external("AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=")?.expect("stored");
//! let out = db.neighbours(task.id, provdb::Direction::Out, &["write"])?;
//! assert_eq!(out.len(), 1);
//! assert_eq!(db.stats()?.edges, 1);
//! db.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod anomaly;
mod database;
pub mod decode;
pub mod detect;
mod error;
pub mod export;
pub mod federation;
pub mod import;
/// The MQTT ingest service (`provdb serve`): embedded or external broker, machine registry,
/// quarantine. Feature `mqtt`.
#[cfg(feature = "mqtt")]
pub mod ingest;
#[cfg(feature = "parquet")]
pub mod parquet_export;
mod pipeline;
/// A camflowd-faithful MQTT publisher of CamFlow log files (`provdb publish`). Feature `mqtt`.
#[cfg(feature = "mqtt")]
pub mod publish;
/// Synthetic, format-faithful CamFlow W3C documents (`provdb simulate`).
pub mod side_tables;
pub mod simulate;
pub mod workload;

pub use database::{Database, DatabaseOptions, Detection};
pub use error::{Error, Result};
pub use import::{ImportProgress, ImportReport, Rejection};
/// The query language: parser, planner, streaming executor and builder ([`provdb_query`]).
pub use provdb_query as query;
pub use provdb_storage::{
    Adjacent, CheckProblem, CheckReport, CompactionPace, Direction, Durability, Edge, EdgeId,
    ExternalId, ProvClass, ProvRelation, PruneReport, PruneSelection, RecordBatch, StoreStats,
    Value, Vertex, VertexId, WriteSummary, ADJACENCY_SNAPSHOT_FILE_PREFIX,
};
