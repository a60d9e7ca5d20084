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
    let db = dir.path().join("db");
    import_fleet(dir.path(), &db, "2");
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

/// Imports a small simulated fleet into `db`.
fn import_fleet(dir: &Path, db: &Path, machines: &str) {
    let logs = dir.join("logs");
    let logs_arg = logs.to_str().unwrap();
    ok(&provdb(
        db,
        &[
            "simulate",
            "--machines",
            machines,
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
    ok(&provdb(db, &import));
}

#[test]
fn an_adjacency_snapshot_answers_traversals_as_the_tables_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    import_fleet(dir.path(), &db, "2");
    // Traversals in both directions, typed and untyped, over several hops.
    let queries = [
        "(a) -[:read|write]-> (b) | return a.id, b.id | order by a.id",
        "(a:task) -[*1..3]-> (d) | dedup d | return d.id | order by d.id",
        "(a:file) <-[*1..2]- (s) | return a.id, s.id | order by s.id",
        "(a) -[e]- (b) | count",
    ];
    let answers = |db: &Path| -> Vec<String> {
        queries
            .iter()
            .map(|q| ok(&provdb(db, &["query", "--format", "csv", q])))
            .collect()
    };
    ok(&provdb(&db, &["compact", "--quiet"]));
    let plain = answers(&db);
    assert!(!db.join("provdb-adjacency.snapshot").exists());

    let report = ok(&provdb(
        &db,
        &["compact", "--quiet", "--adjacency-snapshot"],
    ));
    assert!(report.contains("adjacency snapshot"), "{report}");
    assert!(db.join("provdb-adjacency.snapshot").exists());
    // A reading process uses it (and says so), and answers as before.
    let stats = ok(&provdb(&db, &["stats"]));
    assert!(stats.contains("adjacency snapshot: in use"), "{stats}");
    assert_eq!(answers(&db), plain);
    for answer in &plain[..3] {
        assert!(answer.lines().count() > 3, "{answer}");
    }
    let count: u64 = plain[3].lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(count > 100, "{}", plain[3]);
    let check = ok(&provdb(&db, &["check"]));
    assert!(check.starts_with("ok:"), "{check}");

    // Damage is found by `check`; reads then fail rather than answer wrongly.
    let path = db.join("provdb-adjacency.snapshot");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();
    let out = provdb(&db, &["check"]);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("adjacency snapshot"), "{text}");

    // An import leaves it stale: the importing process removes it.
    import_fleet(&dir.path().join("more"), &db, "3");
    assert!(!path.exists());
    let stats = ok(&provdb(&db, &["stats"]));
    assert!(!stats.contains("adjacency snapshot"), "{stats}");
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
