//! `provdb check`: holds on a sound archive, and finds damage made on purpose below the
//! storage API (a deleted adjacency key, a wrong counter, a damaged vertex id table).

mod common;

use std::path::Path;
use std::process::Output;

use common::{provdb, simulated_archive, stdout_of};

fn check(db: &Path, json: bool) -> Output {
    let mut c = provdb(db);
    c.arg("check");
    if json {
        c.arg("--json");
    }
    c.output().unwrap()
}

/// Opens the archive with plain RocksDB, as damage from outside provdb would happen.
fn raw(db: &Path) -> rocksdb::DB {
    let opts = rocksdb::Options::default();
    // Every column family, as RocksDB requires of a writer.
    let tables = rocksdb::DB::list_cf(&opts, db).unwrap();
    rocksdb::DB::open_cf(&opts, db, tables).unwrap()
}

#[test]
fn a_sound_archive_passes() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_archive(dir.path(), 2, 20);
    let stats = common::stats_json(&db);
    let out = check(&db, true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["problem_count"], 0);
    assert_eq!(report["vertices"], stats["vertices"]);
    assert_eq!(report["edges"], stats["edges"]);
    let text = stdout_of(&check(&db, false));
    assert!(text.starts_with("ok: "), "{text}");
}

#[test]
fn a_deleted_adjacency_key_is_found_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_archive(dir.path(), 1, 10);
    let deleted_edge = {
        let raw = raw(&db);
        let cf = raw.cf_handle("in_adjacency").unwrap();
        let (key, _) = raw
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .next()
            .unwrap()
            .unwrap();
        // Key layout (README, storage layout): vertex(8) | edge type(2) | edge(8) | other(8).
        let edge = u64::from_be_bytes(key[10..18].try_into().unwrap());
        raw.delete_cf(cf, &key).unwrap();
        raw.flush_wal(true).unwrap();
        edge
    };
    let out = check(&db, false);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 problems"), "{text}");
    assert!(
        text.contains(&format!("in adjacency: edge {deleted_edge} ")),
        "{text}"
    );
}

#[test]
fn a_damaged_vertex_id_table_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_archive(dir.path(), 1, 10);
    let vertices = common::stats_json(&db)["vertices"].as_u64().unwrap();
    let (wrong, missing, orphan) = (1u64, 2u64, vertices + 5);
    {
        let raw = raw(&db);
        let table = raw.cf_handle("vertex_external_ids").unwrap();
        // README, storage layout: vertex id (8, big-endian) -> tag byte + external id bytes.
        raw.put_cf(table, wrong.to_be_bytes(), b"tnot-the-id")
            .unwrap();
        raw.delete_cf(table, missing.to_be_bytes()).unwrap();
        raw.put_cf(table, orphan.to_be_bytes(), b"tghost").unwrap();
        raw.flush_wal(true).unwrap();
    }
    let out = check(&db, true);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let details: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["invariant"] == "vertex external id")
        .map(|p| p["detail"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(details.len(), 3, "{details:?}");
    assert!(
        details
            .iter()
            .any(|d| d.starts_with(&format!("vertex {wrong} ")) && d.ends_with("says not-the-id")),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.starts_with(&format!("vertex {missing} "))
                && d.contains("no vertex_external_ids entry")),
        "{details:?}"
    );
    assert!(
        details.contains(&format!("entry of vertex {orphan}, which does not exist")),
        "{details:?}"
    );
    // The damaged id is what a query returns: the table is what reads use.
    let ids = stdout_of(
        &provdb(&db)
            .args(["query", "--format", "csv", "(v) | return v.id"])
            .output()
            .unwrap(),
    );
    assert!(ids.lines().any(|l| l == "not-the-id"), "{ids}");
}

#[test]
fn a_wrong_counter_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_archive(dir.path(), 1, 10);
    let stats = common::stats_json(&db);
    let stored_edges = stats["edges"].as_u64().unwrap();
    let stubs = stats["stub_vertices"].as_u64().unwrap();
    assert_ne!(stubs, 7, "the damage must change the counter");
    {
        let raw = raw(&db);
        let meta = raw.cf_handle("meta").unwrap();
        raw.put_cf(meta, b"counter/stub_vertices", 7u64.to_be_bytes())
            .unwrap();
        // Ids allocated below what is stored: the next edge would overwrite one.
        raw.put_cf(meta, b"counter/next_edge", (stored_edges - 1).to_be_bytes())
            .unwrap();
        raw.flush_wal(true).unwrap();
    }
    let out = check(&db, true);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let details: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["invariant"] == "counter")
        .map(|p| p["detail"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains(&format!("stub counter says 7, {stubs} stub"))),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains(&format!("edge id Some({}) at or above", stored_edges - 1))),
        "{details:?}"
    );
}

#[test]
fn check_refuses_a_busy_or_missing_archive() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none");
    let out = check(&missing, false);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database at"));

    let busy = dir.path().join("busy");
    let held = provdb::Database::open(&busy).unwrap();
    let out = check(&busy, false);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another process holds it"), "{err}");
    held.close().unwrap();
}
