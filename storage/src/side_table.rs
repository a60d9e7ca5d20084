//! Side tables: named key-value tables that the layers above the engine keep in the archive
//! (the ingest service's machine registry, quarantine and session state; later, alerts),
//! written in the same atomic batch as the records they describe. The engine knows them only
//! by name: their keys and values are opaque to it.

use crate::error::{ReadError, WriteError};
use crate::store::Store;
use crate::tables::{Durability, RawEntry};

/// A side table, by name. Declare the tables a writer uses in
/// [`crate::StoreOptions::side_tables`]; a reader opens those the archive has.
///
/// ```
/// use provdb_storage::{Durability, SidePut, SideTable, Store, StoreOptions};
/// const NOTES: SideTable = SideTable::new("notes");
/// let dir = tempfile::tempdir()?;
/// let options = StoreOptions { side_tables: vec![NOTES], ..Default::default() };
/// let store = Store::open_with(dir.path(), options)?;
/// let put = SidePut { table: NOTES, key: b"k".to_vec(), value: b"v".to_vec() };
/// store.side_write(&[put], &[], Durability::Sync)?;
/// assert_eq!(store.side_get(NOTES, b"k")?, Some(b"v".to_vec()));
/// store.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SideTable {
    name: &'static str,
}

impl SideTable {
    /// The side table called `name` (the name of its column family; it must not be one of
    /// [`crate::column_families::GRAPH_TABLES`]).
    pub const fn new(name: &'static str) -> SideTable {
        SideTable { name }
    }

    /// Its name.
    pub const fn name(self) -> &'static str {
        self.name
    }
}

/// A put into a side table, committed with the records of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidePut {
    /// Table.
    pub table: SideTable,
    /// Key.
    pub key: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
}

impl Store {
    /// Reads one value of a side table. A table the archive does not have (a reader of an
    /// older archive) reads as empty.
    pub fn side_get(&self, table: SideTable, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        match self.tables.side(table) {
            Some(handle) => Ok(self.tables.db().get_cf(handle, key)?),
            None => Ok(None),
        }
    }

    /// Deletes one key of a side table, durably (WAL fsynced).
    pub fn side_delete(&self, table: SideTable, key: &[u8]) -> Result<(), WriteError> {
        self.tables.check_writable()?;
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete_cf(self.tables.side_for_write(table)?, key);
        self.tables.write(batch, Durability::Sync)
    }

    /// Iterates a side table in key order, from the first key `>= start` (empty for a table
    /// the archive does not have).
    pub fn side_scan(
        &self,
        table: SideTable,
        start: &[u8],
    ) -> impl Iterator<Item = Result<RawEntry, ReadError>> + '_ {
        let start = start.to_vec();
        self.tables
            .side(table)
            .into_iter()
            .flat_map(move |handle| {
                self.tables.db().iterator_cf(
                    handle,
                    rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
                )
            })
            .map(|r| r.map_err(ReadError::from))
    }

    /// Writes and deletes side-table entries at once, outside any record batch (state a layer
    /// keeps for itself, such as MQTT sessions).
    pub fn side_write(
        &self,
        puts: &[SidePut],
        deletes: &[(SideTable, Vec<u8>)],
        durability: Durability,
    ) -> Result<(), WriteError> {
        self.tables.check_writable()?;
        let mut batch = rocksdb::WriteBatch::default();
        for put in puts {
            batch.put_cf(self.tables.side_for_write(put.table)?, &put.key, &put.value);
        }
        for (table, key) in deletes {
            batch.delete_cf(self.tables.side_for_write(*table)?, key);
        }
        self.tables.write(batch, durability)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OpenMode, StoreOptions};

    const A: SideTable = SideTable::new("a_side");

    #[test]
    fn an_undeclared_table_is_an_error_to_write_and_empty_to_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let put = SidePut {
            table: A,
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        };
        assert!(matches!(
            store.side_write(std::slice::from_ref(&put), &[], Durability::Sync),
            Err(WriteError::UnknownSideTable { name: "a_side" })
        ));
        assert_eq!(store.side_get(A, b"k").unwrap(), None);
        assert_eq!(store.side_scan(A, b"").count(), 0);
        store.close().unwrap();
        // Declared: created; then opened again without declaring it, it is still there (a
        // writer opens every column family on disk) and readable by a reader.
        let with_a = || StoreOptions {
            side_tables: vec![A],
            ..Default::default()
        };
        let store = Store::open_with(dir.path(), with_a()).unwrap();
        store.side_write(&[put], &[], Durability::Sync).unwrap();
        store.close().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.side_get(A, b"k").unwrap(), Some(b"v".to_vec()));
        store.close().unwrap();
        let reader = Store::open_with(
            dir.path(),
            StoreOptions {
                mode: OpenMode::ReadOnly,
                ..Default::default()
            },
        )
        .unwrap();
        let rows: Vec<RawEntry> = reader.side_scan(A, b"").map(|r| r.unwrap()).collect();
        assert_eq!(rows, vec![(b"k".to_vec().into(), b"v".to_vec().into())]);
    }

    #[test]
    fn a_graph_table_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            side_tables: vec![SideTable::new("edges")],
            ..Default::default()
        };
        assert!(matches!(
            Store::open_with(dir.path(), options),
            Err(crate::OpenError::ReservedTableName { name: "edges" })
        ));
    }
}
