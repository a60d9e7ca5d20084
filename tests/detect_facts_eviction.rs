//! Detection's facts cache dropped between batches (a limit of 0, through the debug builds'
//! `PROVDB_TEST_FACTS_CACHE_LIMIT`): facts then come back from the archive, also in an archive
//! that was new when the import began (where a vertex the cache lacks is otherwise known to
//! have no facts): a scenario imported document by document in one open raises the same
//! alerts, and leaves the same facts table, as the same documents imported in one batch (the
//! limit then drops nothing that a later batch needs). Benign documents between the scenario's push its facts out of the
//! batches whose writes may still be in flight (those are never dropped).

use provdb::detect::{Alert, AlertFilter};
use provdb::side_tables::DETECT_FACTS;
use provdb::simulate::scenarios::{simulate_scenarios, Scenario, ScenarioOptions};
use provdb::simulate::{Simulation, SimulationOptions};
use provdb::{Database, DatabaseOptions};

fn strip(alerts: Vec<Alert>) -> Vec<(String, Vec<String>)> {
    alerts
        .into_iter()
        .map(|a| (a.rule, a.path.into_iter().map(|v| v.id).collect()))
        .collect()
}

#[test]
fn facts_dropped_from_memory_come_back_from_the_archive() {
    // This binary's only test: the variable is read once, by the first batch.
    std::env::set_var("PROVDB_TEST_FACTS_CACHE_LIMIT", "0");
    let dir = tempfile::tempdir().unwrap();
    let runs = simulate_scenarios(&[Scenario::DownloadExec], &ScenarioOptions::default());
    let run = &runs[0];
    assert!(
        run.documents.len() > 1,
        "the scenario spans several documents"
    );
    let mut benign = Simulation::new(&SimulationOptions {
        seed: 7,
        documents_per_machine: 10 * run.documents.len() as u64,
        records_per_document: 4,
        ..SimulationOptions::default()
    });
    let mut documents: Vec<String> = Vec::new();
    for d in &run.documents {
        documents.push(d.json.clone());
        documents.extend(benign.by_ref().take(8).map(|b| b.json));
    }
    let mut files = Vec::new();
    for (i, json) in documents.iter().enumerate() {
        let file = dir.path().join(format!("{i}.json"));
        std::fs::write(&file, json).unwrap();
        files.push(file);
    }
    // One batch per document (each file is committed before the next is read).
    let options = DatabaseOptions {
        batch_records: 1,
        ..DatabaseOptions::default()
    };
    let split = Database::open_with(dir.path().join("split"), options).unwrap();
    for file in &files {
        split
            .import_files(std::slice::from_ref(file), &mut |_| {})
            .unwrap();
    }
    let whole = Database::open(dir.path().join("whole")).unwrap();
    let all: Vec<u8> = documents
        .iter()
        .flat_map(|json| [json.as_bytes(), b"\n"].concat())
        .collect();
    let log = dir.path().join("all.log");
    std::fs::write(&log, all).unwrap();
    whole
        .import_files(std::slice::from_ref(&log), &mut |_| {})
        .unwrap();
    let expected = strip(whole.alerts(&AlertFilter::default()).unwrap());
    assert!(!expected.is_empty(), "the scenario raises its alert");
    assert_eq!(
        strip(split.alerts(&AlertFilter::default()).unwrap()),
        expected
    );
    // Every vertex's facts as the one-batch import has them, those of vertices dropped from
    // memory included.
    let facts = |db: &Database| -> Vec<(Vec<u8>, Vec<u8>)> {
        db.store()
            .side_scan(DETECT_FACTS, &[])
            .map(|entry| {
                let entry = entry.unwrap();
                (entry.0.to_vec(), entry.1.to_vec())
            })
            .collect()
    };
    let expected_facts = facts(&whole);
    assert!(expected_facts.len() > 100, "facts of every vertex");
    assert!(facts(&split) == expected_facts, "the facts tables differ");
}
