//! `provdb backup`: consistent copies taken while another process writes the archive.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{flushing_often, provdb, simulated_logs, stats_json, stdout_of};

fn edges(db: &Path) -> u64 {
    stats_json(db)["edges"].as_u64().unwrap()
}

#[test]
fn backups_during_an_import_are_whole_batches_and_open_as_archives() {
    let dir = tempfile::tempdir().unwrap();
    let files = simulated_logs(dir.path(), 4, 150);
    let db = dir.path().join("db");
    // The import reads a FIFO that the test fills in two halves: the first backups are taken
    // while the second half is held back, so they catch the import mid-way however fast or
    // slow this machine is.
    let fifo = dir.path().join("stream.log");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    let read = |f: &PathBuf| std::fs::read(f).unwrap();
    let first_half: Vec<u8> = files[..2].iter().flat_map(read).collect();
    let second_half: Vec<u8> = files[2..].iter().flat_map(read).collect();
    // Small batches: many commits while the backups run, each soon flushed (a backup sees
    // what the import's flushes wrote).
    let mut import = flushing_often(&mut provdb(&db))
        .args(["import", "--quiet", "--batch-records", "500"])
        .arg(&fifo)
        .spawn()
        .unwrap();
    let (go, release) = mpsc::channel::<()>();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            // Opening blocks until the import opens its end.
            let mut out = std::fs::OpenOptions::new().write(true).open(&fifo)?;
            out.write_all(&first_half)?;
            out.flush()?;
            // Held back until the test has a partial copy (or gave up and hung up).
            let _ = release.recv();
            out.write_all(&second_half)?;
            out.flush()
        })
    };
    let mut copies: Vec<PathBuf> = Vec::new();
    let backup = |copies: &mut Vec<PathBuf>| {
        let dest = dir.path().join(format!("copy-{}", copies.len()));
        stdout_of(&provdb(&db).arg("backup").arg(&dest).output().unwrap());
        copies.push(dest.clone());
        dest
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(
            import.try_wait().unwrap().is_none(),
            "the import ended while its input was still open"
        );
        assert!(Instant::now() < deadline, "no batch committed in 300 s");
        if db.join("CURRENT").exists() && edges(&backup(&mut copies)) > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    go.send(()).unwrap();
    // More copies while the rest streams in (these may or may not catch it mid-way).
    while import.try_wait().unwrap().is_none() {
        backup(&mut copies);
        std::thread::sleep(Duration::from_millis(100));
    }
    writer.join().unwrap().unwrap();
    assert!(import.wait().unwrap().success());
    backup(&mut copies);
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
