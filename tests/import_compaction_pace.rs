//! An import runs at the bulk compaction pace (level-0 files wait for 32 of them before a
//! merge: merging every 4 rewrote the growing bottom level again and again) and leaves the
//! store at the live pace when it ends: the background merges then bring the files under 4,
//! and every record imported is there; a database opened at the bulk pace keeps it. What
//! each pace does is tested in `storage/tests/compaction_pace.rs`.

use std::time::{Duration, Instant};

use provdb::simulate::{Simulation, SimulationOptions};
use provdb::{Database, DatabaseOptions, Detection};
use provdb_storage::CompactionPace;

#[test]
fn an_import_defers_merges_while_it_runs_and_resumes_them_when_it_ends() {
    // Read by debug builds when a store opens (this file's only test, before any open):
    // 64 KiB memtables make a test-sized import flush dozens of times.
    std::env::set_var("PROVDB_TEST_WRITE_BUFFER_BYTES", (64 << 10).to_string());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("fleet.log");
    std::fs::write(&log, simulated_log(11)).unwrap();

    let options = DatabaseOptions {
        batch_records: 500,
        detection: Detection::Off,
        ..Default::default()
    };
    let db = Database::open_with(dir.path().join("db"), options.clone()).unwrap();
    assert_eq!(db.store().compaction_pace(), CompactionPace::Live);
    let mut paces = Vec::new();
    let mut most_files = 0;
    db.import_files(std::slice::from_ref(&log), &mut |_| {
        paces.push(db.store().compaction_pace());
        most_files = most_files.max(db.store().level0_files().unwrap());
    })
    .unwrap();
    assert!(paces.len() > 10, "{paces:?}");
    assert!(
        paces.iter().all(|p| *p == CompactionPace::Bulk),
        "{paces:?}"
    );
    assert_eq!(db.store().compaction_pace(), CompactionPace::Live);
    // Level-0 files piled up (what a store's test shows the bulk pace does: no merge below 32
    // files), and the background merges the live pace runs bring them under 4 again.
    assert!(most_files >= 12, "at most {most_files} level-0 files");

    let started = Instant::now();
    let mut files = db.store().level0_files().unwrap();
    while files >= 4 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
        files = db.store().level0_files().unwrap();
    }
    assert!(files < 4, "{files} level-0 files a minute after the import");

    // Everything imported is there: as many edges as the log has distinct relation ids (the
    // sections of a W3C document other than its prefix and its vertices), and importing the
    // log again adds none.
    let stats = db.stats().unwrap();
    assert_eq!(stats.edges, distinct_relation_ids(&log));
    db.close().unwrap();
    let again = Database::open_with(dir.path().join("db"), options.clone()).unwrap();
    let rerun = again
        .import_files(std::slice::from_ref(&log), &mut |_| {})
        .unwrap();
    assert_eq!(rerun.stored.edges_added, 0, "{rerun:?}");
    assert_eq!(again.stats().unwrap().edges, stats.edges);
    again.close().unwrap();

    // Opened at the bulk pace (as `provdb import` opens), the import runs at it and leaves it
    // so: the files of another fleet's log pile up and stay.
    let other = dir.path().join("other.log");
    std::fs::write(&other, simulated_log(12)).unwrap();
    let bulk = Database::open_with(
        dir.path().join("db"),
        DatabaseOptions {
            compaction_pace: CompactionPace::Bulk,
            ..options
        },
    )
    .unwrap();
    let mut paces = Vec::new();
    bulk.import_files(std::slice::from_ref(&other), &mut |_| {
        paces.push(bulk.store().compaction_pace())
    })
    .unwrap();
    assert!(
        !paces.is_empty() && paces.iter().all(|p| *p == CompactionPace::Bulk),
        "{paces:?}"
    );
    assert_eq!(bulk.store().compaction_pace(), CompactionPace::Bulk);
    assert!(bulk.store().level0_files().unwrap() >= 12);
    let expected = distinct_relation_ids(&log) + distinct_relation_ids(&other);
    assert_eq!(bulk.stats().unwrap().edges, expected);
    bulk.close().unwrap();
}

/// A simulated fleet's log, one W3C document per line.
fn simulated_log(seed: u64) -> String {
    let mut text = String::new();
    for d in Simulation::new(&SimulationOptions {
        seed,
        machines: 4,
        documents_per_machine: 400,
        records_per_document: 60,
    }) {
        text.push_str(&d.json);
        text.push('\n');
    }
    text
}

/// The distinct ids of the relations (edges) of a log of W3C documents, one per line.
fn distinct_relation_ids(log: &std::path::Path) -> u64 {
    let mut ids = std::collections::HashSet::new();
    for line in std::fs::read_to_string(log).unwrap().lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        for (section, members) in doc.as_object().unwrap() {
            if !["prefix", "activity", "entity", "agent"].contains(&section.as_str()) {
                ids.extend(members.as_object().unwrap().keys().cloned());
            }
        }
    }
    assert!(ids.len() > 10_000, "{} relations", ids.len());
    ids.len() as u64
}
