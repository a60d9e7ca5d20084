//! Errors of the provdb library facade.

use std::path::PathBuf;

use provdb_storage::{OpenError, ReadError, StorageError, WriteError};
use thiserror::Error;

use crate::decode::DecodeError;

/// Errors of [`crate::Database`] operations.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage engine failed (an open, read or write error of the engine, kept typed as
    /// the engine's union of them).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A payload or document could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A query failed (syntax, unknown names, storage); renders with a caret.
    #[error(transparent)]
    Query(#[from] provdb_query::QueryError),
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A stored alert could not be decoded (the alerts table is damaged).
    #[error("corrupt alert record: {0}")]
    CorruptAlert(String),
    /// A stored anomaly model could not be decoded (the models table is damaged, or written
    /// by a newer provdb).
    #[error("anomaly model {model}: {source}")]
    CorruptModel {
        /// Which model (`fleet v2`).
        model: String,
        /// Why.
        source: crate::anomaly::ModelDecodeError,
    },
    /// A rule file cannot be used.
    #[error(transparent)]
    Rules(#[from] crate::detect::RuleError),
    /// A thread of the ingest pipeline could not be started.
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        /// Which stage.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A stage of the ingest pipeline stopped abnormally (it panicked, or its consumer went
    /// away); nothing after its last completed write was acknowledged.
    #[error("the {0} stage of the ingest pipeline stopped")]
    StageFailed(&'static str),
}

// The engine's per-family errors, each as the variant of the engine's union that it is.
impl From<OpenError> for Error {
    fn from(e: OpenError) -> Self {
        Error::Storage(e.into())
    }
}

impl From<ReadError> for Error {
    fn from(e: ReadError) -> Self {
        Error::Storage(e.into())
    }
}

impl From<WriteError> for Error {
    fn from(e: WriteError) -> Self {
        Error::Storage(e.into())
    }
}

/// Result alias of the provdb library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
