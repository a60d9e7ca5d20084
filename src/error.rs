//! Errors of the provdb library facade.

use std::path::PathBuf;

use provdb_storage::StorageError;
use thiserror::Error;

use crate::decode::DecodeError;

/// Errors of [`crate::Database`] operations.
#[derive(Debug, Error)]
pub enum Error {
    /// The storage engine failed.
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
}

/// Result alias of the provdb library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
