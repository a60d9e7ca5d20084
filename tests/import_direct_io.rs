//! `provdb import` writes its memtable flushes with direct I/O where the file system takes it
//! (a bulk load does not read them back soon), a later `provdb compact` with buffered I/O, and
//! the archive holds the same either way; where the file system refuses direct I/O (a ramfs:
//! see `file_system_takes_direct_io`), the import falls back to buffered writes.

mod common;

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use provdb::{Database, DatabaseOptions};

/// RocksDB's record of the options of the latest open: the `OPTIONS-<n>` file of highest `n`.
fn latest_rocksdb_options(db: &Path) -> String {
    let latest = std::fs::read_dir(db)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().ok()?;
            let number: u64 = name.strip_prefix("OPTIONS-")?.parse().ok()?;
            Some((number, name))
        })
        .max()
        .expect("an OPTIONS file");
    std::fs::read_to_string(db.join(latest.1)).unwrap()
}

/// What the latest open of `db` set for flushes and compactions.
fn flushes_write_direct(db: &Path) -> bool {
    let options = latest_rocksdb_options(db);
    let line = options
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("use_direct_io_for_flush_and_compaction="))
        .expect("the setting is recorded");
    line.parse().unwrap()
}

/// Whether the file system of `dir` opens a file with `O_DIRECT` (asked directly, not
/// through provdb or RocksDB). `scripts/test.sh` runs this file a second time with `TMPDIR`
/// on a ramfs, which refuses it, and `PROVDB_TEST_EXPECT_NO_DIRECT_IO=1`: then the refusal
/// is asserted, so that the run checks the fallback and not the direct branch again.
fn file_system_takes_direct_io(dir: &Path) -> bool {
    let probe = dir.join("direct-io-probe");
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe)
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    if std::env::var_os("PROVDB_TEST_EXPECT_NO_DIRECT_IO").is_some() {
        assert!(
            !opened,
            "{} takes O_DIRECT, yet the run is to check the fallback",
            dir.display()
        );
    }
    opened
}

#[test]
fn import_writes_direct_where_it_can_and_the_archive_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let logs = common::simulated_logs(dir.path(), 2, 40);

    let imported = dir.path().join("imported");
    common::import(&imported, &logs);
    let direct = file_system_takes_direct_io(dir.path());
    if !direct {
        eprintln!(
            "the file system of the temporary folder refuses O_DIRECT: checking the fallback"
        );
    }
    assert_eq!(flushes_write_direct(&imported), direct);

    // The same logs through the library's default (buffered) writes.
    let buffered = dir.path().join("buffered");
    let db = Database::open_with(&buffered, DatabaseOptions::default()).unwrap();
    assert!(!db.store().direct_io_writes());
    let report = db.import_files(&logs, &mut |_| {}).unwrap();
    db.close().unwrap();
    assert!(report.stored.edges_added > 1000, "{:?}", report.stored);
    assert!(!flushes_write_direct(&buffered));
    assert_eq!(common::stats_json(&imported), common::stats_json(&buffered));
    let every_edge = "() -[e]-> () | return e.id | order by e.id";
    let edges = |db: &Path| {
        common::stdout_of(
            &common::provdb(db)
                .args(["query", "--format", "csv", every_edge])
                .output()
                .unwrap(),
        )
    };
    let imported_edges = edges(&imported);
    assert_eq!(imported_edges, edges(&buffered));
    assert_eq!(
        imported_edges.lines().count() as u64,
        report.stored.edges_added + 1,
        "a header line and every edge"
    );

    // `compact` opens the archive as a live writer: buffered, so that what it writes is read
    // from memory.
    common::stdout_of(
        &common::provdb(&imported)
            .args(["compact", "--quiet"])
            .output()
            .unwrap(),
    );
    assert!(!flushes_write_direct(&imported));
    assert_eq!(edges(&imported), imported_edges);
}

#[test]
fn a_library_store_asked_for_direct_writes_says_whether_it_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let options = DatabaseOptions {
        direct_io_writes: true,
        ..DatabaseOptions::default()
    };
    let db = Database::open_with(&path, options).unwrap();
    let direct = file_system_takes_direct_io(dir.path());
    assert_eq!(db.store().direct_io_writes(), direct);
    db.close().unwrap();
    assert_eq!(flushes_write_direct(&path), direct);

    // Readers never write: the option is a writer's.
    let reader = Database::open_read_only(&path).unwrap();
    assert!(!reader.store().direct_io_writes());
}
