//! `provdb compact`: the archive keeps every record, and the command says what it did.

mod common;

use std::path::Path;
use std::process::Output;

use common::stdout_of as ok;

fn provdb(db: &Path, args: &[&str]) -> Output {
    common::provdb(db).args(args).output().unwrap()
}

#[test]
fn compaction_keeps_every_record_and_reports_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let db = dir.path().join("db");
    let logs_arg = logs.to_str().unwrap();
    ok(&provdb(
        &db,
        &[
            "simulate",
            "--machines",
            "2",
            "--documents",
            "30",
            "--out",
            logs_arg,
        ],
    ));
    let mut files: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut import = vec!["import", "--quiet"];
    import.extend(files.iter().map(String::as_str));
    ok(&provdb(&db, &import));
    let stats_before = ok(&provdb(&db, &["stats", "--json"]));
    let query = "() -[e:read|write]-> () | return e.id | order by e.id";
    let rows_before = ok(&provdb(&db, &["query", "--format", "csv", query]));

    let report = ok(&provdb(&db, &["compact", "--quiet"]));
    for cf in ["edges", "vertices", "out_adjacency", "total"] {
        assert!(report.contains(cf), "no {cf} row in:\n{report}");
    }
    assert!(report.contains("bytes per edge"), "{report}");

    assert_eq!(ok(&provdb(&db, &["stats", "--json"])), stats_before);
    let rows_after = ok(&provdb(&db, &["query", "--format", "csv", query]));
    assert_eq!(rows_after, rows_before);
    assert!(rows_before.lines().count() > 10, "{rows_before}");
}

#[test]
fn compact_refuses_a_missing_or_busy_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let out = provdb(&missing, &["compact"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no database at"), "{err}");
    assert!(!missing.exists(), "compact created {}", missing.display());

    let busy = dir.path().join("busy");
    let held = provdb::Database::open(&busy).unwrap();
    let out = provdb(&busy, &["compact"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("provdb serve"), "{err}");
    held.close().unwrap();
}
