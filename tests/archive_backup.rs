//! `provdb backup`: consistent copies taken while another process writes the archive.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{provdb, simulated_logs, stats_json, stdout_of};

fn edges(db: &Path) -> u64 {
    stats_json(db)["edges"].as_u64().unwrap()
}

#[test]
fn backups_during_an_import_are_whole_batches_and_open_as_archives() {
    let dir = tempfile::tempdir().unwrap();
    let files = simulated_logs(dir.path(), 4, 150);
    let db = dir.path().join("db");
    // Small batches: many commits while the backups run.
    let mut import = provdb(&db)
        .args(["import", "--quiet", "--batch-records", "500"])
        .args(&files)
        .spawn()
        .unwrap();
    let mut copies: Vec<PathBuf> = Vec::new();
    let mut taken_while_running = 0;
    loop {
        let running = import.try_wait().unwrap().is_none();
        if db.join("CURRENT").exists() {
            let dest = dir.path().join(format!("copy-{}", copies.len()));
            let out = provdb(&db).arg("backup").arg(&dest).output().unwrap();
            stdout_of(&out);
            let still_running = import.try_wait().unwrap().is_none();
            if running && still_running {
                taken_while_running += 1;
            }
            copies.push(dest);
        }
        if !running {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(import.wait().unwrap().success());
    assert!(
        taken_while_running > 0,
        "the import ended before any backup"
    );
    let total = edges(&db);
    let mut partial = 0;
    for copy in &copies {
        // A torn batch would leave counters, indexes or adjacency out of step with records.
        let check = stdout_of(&provdb(copy).arg("check").output().unwrap());
        assert!(check.starts_with("ok: "), "{}: {check}", copy.display());
        let n = edges(copy);
        assert!(n <= total, "{n} > {total}");
        if n > 0 && n < total {
            partial += 1;
        }
    }
    assert!(partial > 0, "no copy caught the import mid-way");
    // The last copy was taken after the import: all of it.
    assert_eq!(stats_json(copies.last().unwrap()), stats_json(&db));
    // A partial copy is a prefix of the stream: importing the rest gives the archive.
    let first_partial = copies
        .iter()
        .find(|c| (1..total).contains(&edges(c)))
        .unwrap();
    stdout_of(
        &provdb(first_partial)
            .args(["import", "--quiet"])
            .args(&files)
            .output()
            .unwrap(),
    );
    assert_eq!(edges(first_partial), total);
}

#[test]
fn backup_refuses_an_existing_destination() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::simulated_archive(dir.path(), 1, 5);
    let out = provdb(&db).arg("backup").arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}
