//! `provdb import` killed with SIGKILL in the middle of a file, then run again, stores exactly
//! what one uninterrupted import stores: nothing lost, nothing twice, no dangling edge. The
//! import writes without the WAL, so what the kill leaves is what its flushes made durable.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{flushing_often, provdb};

fn ok(out: std::process::Output) -> String {
    common::stdout_of(&out)
}

#[test]
fn a_killed_import_completes_on_rerun_with_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    ok(provdb(&dir.path().join("unused"))
        .args([
            "simulate",
            "--seed",
            "9",
            "--machines",
            "6",
            "--documents",
            "600",
        ])
        .arg("--out")
        .arg(&logs)
        .output()
        .unwrap());
    let mut files: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();

    // The reference: one uninterrupted import.
    let clean = dir.path().join("clean");
    ok(provdb(&clean)
        .args(["import", "--quiet"])
        .args(&files)
        .output()
        .unwrap());
    let expected = ok(provdb(&clean).args(["stats", "--json"]).output().unwrap());

    // Kill an import once some of it is durable, then run it again. What survives a kill is
    // what its flushes wrote, all column families at once; small batches, flushed often.
    let crashed = dir.path().join("crashed");
    let mut child = flushing_often(&mut provdb(&crashed))
        .args(["import", "--quiet", "--batch-records", "2000"])
        .args(&files)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let tables_written = std::fs::read_dir(&crashed)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "sst"))
                    .count()
            })
            .unwrap_or(0);
        // A flush writes a file for each of the graph's tables that holds data (nearly all
        // eleven): about two flushes, well before the end.
        if tables_written >= 22 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.code().is_none(),
        "the import finished before it could be killed; make the workload larger"
    );
    let partial = ok(provdb(&crashed).args(["stats", "--json"]).output().unwrap());
    assert_ne!(
        partial, expected,
        "the kill came after the import had finished"
    );
    let partial: serde_json::Value = serde_json::from_str(&partial).unwrap();
    assert!(
        partial["edges"].as_u64().unwrap() > 0,
        "nothing of the killed import was durable: {partial}"
    );

    ok(provdb(&crashed)
        .args(["import", "--quiet"])
        .args(&files)
        .output()
        .unwrap());
    let after = ok(provdb(&crashed).args(["stats", "--json"]).output().unwrap());
    assert_eq!(after, expected);

    // Walking every edge from its source to a loaded target finds them all: no adjacency
    // entry points at a missing edge or vertex.
    let stats: serde_json::Value = serde_json::from_str(&after).unwrap();
    let walked = ok(provdb(&crashed)
        .args(["query", "--format", "csv"])
        .arg("(a) -[e]-> (b) | where b.type <> 'no such type' | count")
        .output()
        .unwrap());
    let walked: u64 = walked.lines().last().unwrap().trim().parse().unwrap();
    assert_eq!(walked, stats["edges"].as_u64().unwrap());
}
