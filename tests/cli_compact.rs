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
    import(db, &simulate_fleet(dir, machines));
}

/// Simulates a small fleet's logs in `dir/logs`; returns their paths.
fn simulate_fleet(dir: &Path, machines: &str) -> Vec<String> {
    let logs = dir.join("logs");
    let logs_arg = logs.to_str().unwrap();
    ok(&provdb(
        dir,
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
    files
}

fn import(db: &Path, files: &[String]) {
    let mut import = vec!["import", "--quiet"];
    import.extend(files.iter().map(String::as_str));
    ok(&provdb(db, &import));
}

/// Traversals in both directions, typed and untyped, over several hops.
const TRAVERSALS: [&str; 4] = [
    "(a) -[:read|write]-> (b) | return a.id, b.id | order by a.id",
    "(a:task) -[*1..3]-> (d) | dedup d | return d.id | order by d.id",
    "(a:file) <-[*1..2]- (s) | return a.id, s.id | order by s.id",
    "(a) -[e]- (b) | count",
];

/// The answers, each with its rows sorted (rows of equal sort keys come in any order).
fn answers(db: &Path) -> Vec<String> {
    TRAVERSALS
        .iter()
        .map(|q| {
            let csv = ok(&provdb(db, &["query", "--format", "csv", q]));
            let mut lines: Vec<&str> = csv.lines().collect();
            lines[1..].sort_unstable();
            lines.join("\n")
        })
        .collect()
}

/// The adjacency snapshot files in `db`, by name.
/// Entries of the two adjacency tables, read with RocksDB itself (provdb reads them merged
/// with the snapshot's).
fn adjacency_table_entries(db: &Path) -> usize {
    let opts = rocksdb::Options::default();
    let tables = rocksdb::DB::list_cf(&opts, db).unwrap();
    let raw = rocksdb::DB::open_cf_for_read_only(&opts, db, &tables, false).unwrap();
    ["out_adjacency", "in_adjacency"]
        .iter()
        .map(|name| {
            raw.iterator_cf(raw.cf_handle(name).unwrap(), rocksdb::IteratorMode::Start)
                .inspect(|entry| assert!(entry.is_ok(), "{entry:?}"))
                .count()
        })
        .sum()
}

fn snapshot_files(db: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(db)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("provdb-adjacency."))
        .collect();
    names.sort();
    names
}

#[test]
fn a_folded_archive_answers_traversals_as_the_tables_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // The same logs into a second archive that is never folded: the reference.
    let reference = dir.path().join("reference");
    let first = simulate_fleet(&dir.path().join("first"), "2");
    import(&db, &first);
    import(&reference, &first);
    ok(&provdb(
        &db,
        &["compact", "--quiet", "--keep-adjacency-tables"],
    ));
    let plain = answers(&db);
    assert!(snapshot_files(&db).is_empty());
    let stats = ok(&provdb(&db, &["stats"]));
    assert!(!stats.contains("adjacency snapshot"), "{stats}");

    let report = ok(&provdb(&db, &["compact", "--quiet"]));
    assert!(report.contains("adjacency snapshot"), "{report}");
    assert_eq!(snapshot_files(&db), ["provdb-adjacency.1.snapshot"]);
    // The tables' entries moved into the file.
    let out_row = report
        .lines()
        .find(|l| l.contains("out_adjacency"))
        .unwrap();
    assert!(
        out_row.contains("0.0 MiB │ ") || out_row.ends_with("0.0 MiB │"),
        "{report}"
    );
    // Every reading process uses it (and says so), and answers as before.
    let stats = ok(&provdb(&db, &["stats"]));
    assert!(stats.contains("adjacency snapshot: folded"), "{stats}");
    assert_eq!(answers(&db), plain);
    for answer in &plain[..3] {
        assert!(answer.lines().count() > 3, "{answer}");
    }
    let count: u64 = plain[3].lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(count > 100, "{}", plain[3]);
    let check = ok(&provdb(&db, &["check"]));
    assert!(check.starts_with("ok:"), "{check}");

    // Edges imported since are read with the snapshot's, and the next compact folds them.
    let more = simulate_fleet(&dir.path().join("more"), "3");
    import(&db, &more);
    import(&reference, &more);
    let grown = answers(&reference);
    assert_ne!(grown, plain);
    assert_eq!(answers(&db), grown);
    ok(&provdb(&db, &["compact", "--quiet"]));
    assert_eq!(snapshot_files(&db), ["provdb-adjacency.2.snapshot"]);
    assert_eq!(answers(&db), grown);
    let check = ok(&provdb(&db, &["check"]));
    assert!(check.starts_with("ok:"), "{check}");

    // Damage is found by `check`; reads then fail rather than answer wrongly.
    let path = db.join("provdb-adjacency.2.snapshot");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();
    let out = provdb(&db, &["check"]);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("adjacency snapshot"), "{text}");
}

/// A fold killed after it wrote the new generation (not named yet), or after it named it
/// (before its compaction dropped the folded entries from the tables, and before it removed
/// the old generation): the archive answers as before, `check` holds, a later compaction
/// drops the folded entries, and the next fold completes.
#[test]
#[cfg(debug_assertions)] // the crash points exist in debug builds only
fn a_fold_killed_at_any_step_leaves_the_archive_answering_as_before() {
    for step in ["file-written", "named"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        import_fleet(&dir.path().join("first"), &db, "2");
        ok(&provdb(&db, &["compact", "--quiet"]));
        // Edges in the tables too: the killed fold merges generation 1 with them.
        import_fleet(&dir.path().join("more"), &db, "3");
        let before = answers(&db);
        let killed = common::provdb(&db)
            .args(["compact", "--quiet"])
            .env("PROVDB_TEST_ABORT_FOLD_AT", step)
            .output()
            .unwrap();
        assert!(!killed.status.success(), "{step}: the fold was not killed");
        assert!(
            String::from_utf8_lossy(&killed.stderr).contains("aborting a fold"),
            "{step}: {}",
            String::from_utf8_lossy(&killed.stderr)
        );
        assert_eq!(answers(&db), before, "{step}");
        let check = ok(&provdb(&db, &["check"]));
        assert!(check.starts_with("ok:"), "{step}: {check}");
        if step == "named" {
            // The killed fold named its generation before its compaction: the tables still
            // hold the folded entries, and any writer's compaction drops them from then on
            // (the mark comes from the named generation at open).
            assert!(
                adjacency_table_entries(&db) > 0,
                "{step}: nothing left to drop"
            );
            ok(&provdb(
                &db,
                &["compact", "--quiet", "--keep-adjacency-tables"],
            ));
            assert_eq!(adjacency_table_entries(&db), 0, "{step}");
            assert_eq!(answers(&db), before, "{step}");
        }
        // The older spelling of the default still works.
        ok(&provdb(
            &db,
            &["compact", "--quiet", "--adjacency-snapshot"],
        ));
        assert_eq!(answers(&db), before, "{step}");
        // One generation is left: the one the archive names.
        assert_eq!(
            snapshot_files(&db).len(),
            1,
            "{step}: {:?}",
            snapshot_files(&db)
        );
        let check = ok(&provdb(&db, &["check"]));
        assert!(check.starts_with("ok:"), "{step}: {check}");
    }
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
