//! Typed errors of the storage engine, one enum per operation family.

use thiserror::Error;

/// Errors raised while opening, writing or reading a provdb store.
#[derive(Debug, Error)]
pub enum StorageError {
    /// RocksDB reported an error (I/O, lock held by another process, corruption it detected).
    #[error("RocksDB error: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored value or key could not be decoded: the database is damaged or was written by
    /// an incompatible version.
    #[error("corrupt {what}: {detail}")]
    Corruption {
        /// Which kind of stored item was unreadable (e.g. "vertex record").
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// The database on disk uses a format this build cannot read.
    #[error(
        "unsupported on-disk format version {found} (this build reads versions 1 to {supported})"
    )]
    UnsupportedFormat {
        /// Version found in the metadata.
        found: u32,
        /// Newest version this build reads (and the one it writes).
        supported: u32,
    },
    /// A dictionary (vertex types, edge types or attribute keys) is full.
    #[error("too many distinct {what} (limit {limit})")]
    DictionaryFull {
        /// Which dictionary.
        what: &'static str,
        /// Its capacity.
        limit: usize,
    },
    /// The store was opened read-only or as a secondary and a write was attempted.
    #[error("the store is open read-only")]
    ReadOnly,
    /// A prepared write was refused because one prepared before it failed or was dropped
    /// uncommitted (it may reference that write's ids). Nothing of it was written.
    #[error("write refused: an earlier prepared write failed or was dropped; prepare it again")]
    PipelineAborted,
    /// A side table was named that this store did not open (not declared in
    /// `StoreOptions::side_tables`, and not in the archive).
    #[error("side table `{name}` is not open in this store")]
    UnknownSideTable {
        /// The table's name.
        name: &'static str,
    },
    /// A side table was declared with the name of one of the graph's own tables.
    #[error("`{name}` is a graph table of the engine, not a side table name")]
    ReservedTableName {
        /// The name.
        name: &'static str,
    },
}

/// Result alias of the storage crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    pub(crate) fn corruption(what: &'static str, detail: impl Into<String>) -> Self {
        StorageError::Corruption {
            what,
            detail: detail.into(),
        }
    }
}
