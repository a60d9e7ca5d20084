//! Typed errors of the storage engine, one enum per operation family (as redb does): opening
//! ([`OpenError`]), reading ([`ReadError`]) and writing ([`WriteError`]) a store each fail in
//! their own ways, and a caller matches only those of the operation it called. Each converts
//! into [`StorageError`] for callers that want one type.

use thiserror::Error;

/// Errors raised while opening a store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// RocksDB could not open the database (I/O, lock held by another process, corruption it
    /// detected).
    #[error("RocksDB error: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// Reading the metadata loaded at open (format version, dictionaries, counters) failed.
    #[error(transparent)]
    Read(#[from] ReadError),
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
    /// A side table was declared with the name of one of the graph's own tables.
    #[error("`{name}` is a graph table of the engine, not a side table name")]
    ReservedTableName {
        /// The name.
        name: &'static str,
    },
}

/// Errors raised while reading a store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// RocksDB reported an error (I/O, corruption it detected).
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
    /// A file of the archive kept beside RocksDB's (the adjacency snapshot) could not be read.
    #[error("reading {}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

/// Errors raised while writing to a store (records, side tables, prunes, flushes).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WriteError {
    /// RocksDB could not write (I/O, a full disk, corruption it detected).
    #[error("RocksDB error: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A read that the write needed (an external id, an index shard, a counter) failed, or
    /// what it read was inconsistent.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The store was opened read-only or as a secondary and a write was attempted.
    #[error("the store is open read-only")]
    ReadOnly,
    /// A prepared write was refused because one prepared before it failed or was dropped
    /// uncommitted (it may reference that write's ids). Nothing of it was written.
    #[error("write refused: an earlier prepared write failed or was dropped; prepare it again")]
    PipelineAborted,
    /// A resolved write was encoded with a batch other than the one it was resolved from
    /// (`ResolvedWrite::encode`). Nothing of it was written.
    #[error("a resolved write was encoded with another batch than it was resolved from")]
    BatchMismatch,
    /// A dictionary (vertex types, edge types or attribute keys) is full.
    #[error("too many distinct {what} (limit {limit})")]
    DictionaryFull {
        /// Which dictionary.
        what: &'static str,
        /// Its capacity.
        limit: usize,
    },
    /// A side table was named that this store did not open (not declared in
    /// `StoreOptions::side_tables`, and not in the archive).
    #[error("side table `{name}` is not open in this store")]
    UnknownSideTable {
        /// The table's name.
        name: &'static str,
    },
    /// The adjacency snapshot was asked of an archive of format version 1, which a build
    /// that reads the snapshot would have to mark the current version and so lose what 1 says (no
    /// vertex -> external id table). Export and import it into a new archive first.
    #[error(
        "the adjacency snapshot needs an archive of format version 2 or later; this one is \
         version {found} (export it and import it into a new archive)"
    )]
    SnapshotNeedsFormat {
        /// The archive's format version.
        found: u32,
    },
    /// A fold waited for a prepared write's commit (`Store::commit_prepared`) that did not come:
    /// the fold would empty the adjacency tables under it.
    #[error("a prepared write stayed uncommitted for {seconds} s; commit or drop it first")]
    WritesInFlight {
        /// How long the fold waited.
        seconds: u64,
    },
    /// A file of the archive kept beside RocksDB's (the adjacency snapshot) could not be
    /// written.
    #[error("writing {}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

/// Any error of the storage engine: one of [`OpenError`], [`ReadError`] and [`WriteError`],
/// for callers (and operations, such as a backup) that span families. Displays as the error
/// it holds.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Opening the store failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A read failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A write failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl StorageError {
    /// Whether stored data could not be decoded (the archive is damaged), whichever operation
    /// found it.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            StorageError::Open(OpenError::Read(ReadError::Corruption { .. }))
                | StorageError::Read(ReadError::Corruption { .. })
                | StorageError::Write(WriteError::Read(ReadError::Corruption { .. }))
        )
    }
}

/// Result alias of the storage crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl ReadError {
    pub(crate) fn corruption(what: &'static str, detail: impl Into<String>) -> Self {
        ReadError::Corruption {
            what,
            detail: detail.into(),
        }
    }
}

impl WriteError {
    /// Damage found while writing (a counter out of range, a value that would not encode):
    /// the same corruption a read reports.
    pub(crate) fn corruption(what: &'static str, detail: impl Into<String>) -> Self {
        WriteError::Read(ReadError::corruption(what, detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_errors_keep_their_message_in_the_union() {
        let read = ReadError::corruption("vertex record", "empty value");
        let text = read.to_string();
        let general = StorageError::from(read);
        assert_eq!(general.to_string(), text);
        assert!(general.is_corruption());
        assert!(matches!(
            general,
            StorageError::Read(ReadError::Corruption {
                what: "vertex record",
                ..
            })
        ));
        let write = WriteError::from(ReadError::corruption("index bitmap", "bad"));
        assert!(matches!(
            write,
            WriteError::Read(ReadError::Corruption { .. })
        ));
        assert!(!StorageError::from(WriteError::PipelineAborted).is_corruption());
    }
}
