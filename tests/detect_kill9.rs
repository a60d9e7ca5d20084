//! Alert durability: `provdb import` of the twelve attack scenarios is killed (SIGKILL) again
//! and again in mid-stream, then run to the end; the alerts are exactly those of an
//! uninterrupted import (same ids, rules, counts, paths), because facts and alerts are
//! committed in the same atomic write as the batch that completed them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use provdb::detect::{Alert, AlertFilter};
use provdb::simulate::scenarios::{simulate_scenarios, Scenario, ScenarioOptions};
use provdb::Database;

fn import(db: &Path, logs: &[PathBuf]) -> Command {
    let mut c = common::provdb(db);
    // Small batches: many commits, so kills land between and inside them; flushed often, so
    // that kills leave part of the import stored.
    common::flushing_often(&mut c)
        .args([
            "import",
            "-q",
            "--batch-records",
            "400",
            "--decode-threads",
            "1",
        ])
        .args(logs)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn alerts(db: &Path) -> Vec<Alert> {
    Database::open_read_only(db)
        .expect("open")
        .alerts(&AlertFilter::default())
        .expect("alerts")
}

#[test]
fn alerts_after_kill_9_and_restart_are_those_of_an_uninterrupted_import() {
    let dir = tempfile::tempdir().unwrap();
    let runs = simulate_scenarios(
        &Scenario::ALL,
        &ScenarioOptions {
            seed: 5,
            background_documents: 120,
            records_per_document: 60,
        },
    );
    // One log with the machines interleaved, as a collector would write them.
    let mut lines: Vec<(usize, &str)> = Vec::new();
    for run in &runs {
        for (i, d) in run.documents.iter().enumerate() {
            lines.push((i, &d.json));
        }
    }
    lines.sort_by_key(|(i, _)| *i);
    let log = dir.path().join("fleet.log");
    let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    std::fs::write(&log, text).unwrap();
    let logs = vec![log];

    let reference = dir.path().join("reference");
    assert!(import(&reference, &logs).status().unwrap().success());
    let expected = alerts(&reference);
    let rules: std::collections::BTreeSet<&str> =
        expected.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(rules.len(), 12, "{rules:?}");

    let total_edges = Database::open_read_only(&reference)
        .unwrap()
        .stats()
        .unwrap()
        .edges;
    let killed = dir.path().join("killed");
    let mut kills = 0;
    let mut at_kill = Vec::new();
    let mut waits = [300u64, 1200, 2200, 3500].into_iter();
    for wait in waits.by_ref() {
        let mut child = import(&killed, &logs).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(wait));
        if child.try_wait().unwrap().is_some() {
            break; // finished before the kill: the machine is fast; the rest still checks
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        at_kill.push(
            Database::open_read_only(&killed)
                .and_then(|d| d.stats())
                .map_or(0, |s| s.edges),
        );
    }
    assert!(import(&killed, &logs).status().unwrap().success());
    eprintln!("{kills} kills; edges stored at each kill: {at_kill:?} of {total_edges}");
    assert!(
        at_kill.iter().any(|e| *e < total_edges),
        "no kill landed before the end of the import: {at_kill:?}"
    );
    assert_eq!(alerts(&killed), expected);
}
