//! Detection on the simulated attack scenarios: each scenario raises the alert of its own
//! name, whose causal path holds the ground truth's key vertices, and no alert of another
//! rule; the benign simulator output raises nothing; re-importing raises nothing new.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use provdb::detect::{Alert, AlertFilter};
use provdb::simulate::scenarios::{simulate_scenarios, Scenario, ScenarioOptions, ScenarioRun};
use provdb::Database;

fn write_log(dir: &Path, run: &ScenarioRun) -> PathBuf {
    let path = dir.join(format!("{}.log", run.truth.scenario.name()));
    let mut text = String::new();
    for d in &run.documents {
        text.push_str(&d.json);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn alerts_of(db: &Database) -> Vec<Alert> {
    db.alerts(&AlertFilter::default()).unwrap()
}

/// The roles of the ground truth that the scenario's alert path must hold: where the attack
/// came from and the step that completed it (worked out from each scenario's story, not
/// from the detector).
fn required_roles(s: Scenario) -> &'static [&'static str] {
    match s {
        Scenario::Exfiltration => &["secret file", "exfiltrating task", "c2 socket"],
        Scenario::DownloadExec => &[
            "c2 socket",
            "downloader",
            "payload file",
            "executable payload",
            "payload memory",
        ],
        Scenario::Webshell => &["web server", "shell binary"],
        Scenario::ReverseShell => &["shell", "c2 socket"],
        Scenario::PrivilegeEscalation => &["exploit task", "root credentials"],
        Scenario::TmpExec => &["executable tmpfs file", "tmpfs program memory"],
        Scenario::LogTampering => &["truncated auth log", "shell history"],
        Scenario::KernelModule => &["loader task", "kernel"],
        Scenario::Persistence => &["downloader", "authorized_keys", "crontab"],
        Scenario::Fileless => &["c2 socket", "memfd file", "fileless memory"],
        Scenario::CredentialHunt => &["find binary", "grep binary"],
        Scenario::SensitiveLink => &["linking task", "sensitive file"],
    }
}

fn import_run(dir: &Path, run: &ScenarioRun) -> (Database, PathBuf) {
    let name = run.truth.scenario.name();
    let log = write_log(dir, run);
    let db = Database::open(dir.join(format!("db-{name}"))).unwrap();
    let report = db
        .import_files(std::slice::from_ref(&log), &mut |_| {})
        .unwrap();
    assert_eq!(report.rejected, 0, "{name}");
    (db, log)
}

#[test]
fn every_scenario_raises_its_own_alert_with_its_path_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let runs = simulate_scenarios(&Scenario::ALL, &ScenarioOptions::default());
    for run in &runs {
        let name = run.truth.scenario.name();
        let (db, _) = import_run(dir.path(), run);
        let alerts = alerts_of(&db);
        let rules: BTreeSet<&str> = alerts.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(rules, BTreeSet::from([name]), "{name} raised {alerts:#?}");
        let in_path: BTreeSet<&str> = alerts
            .iter()
            .flat_map(|a| a.path.iter().map(|v| v.id.as_str()))
            .collect();
        for role in required_roles(run.truth.scenario) {
            // A role may name several versions of one object: one of them must be there.
            let versions: Vec<&str> = run
                .truth
                .vertices
                .iter()
                .filter(|v| v.role == *role)
                .map(|v| v.id.as_str())
                .collect();
            assert!(!versions.is_empty(), "{name}: no role {role} in the truth");
            assert!(
                versions.iter().any(|id| in_path.contains(id)),
                "{name}: {role} not in {alerts:#?}"
            );
        }
        for a in &alerts {
            assert_eq!(a.machine, Some(run.truth.machine), "{name}");
            assert_eq!(a.count, 1, "{name}: {a:?}");
            // The completing edge is last, between the path's vertices, and is an edge of the
            // archive with that type.
            let last = a.edges.last().unwrap();
            let stored = db
                .edge_by_external(&last.id)
                .unwrap()
                .expect("completing edge stored");
            assert_eq!(*stored.type_name, *last.type_name);
            for e in &a.edges {
                assert!(a.path.iter().any(|v| v.id == e.from), "{name}: {e:?}");
                assert!(a.path.iter().any(|v| v.id == e.to), "{name}: {e:?}");
            }
            let json = a.to_json();
            let keys: BTreeSet<&str> = json
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from([
                    "id", "rule", "severity", "machine", "time", "summary", "path", "edges"
                ])
            );
            assert!(
                !a.summary.is_empty() && !a.summary.contains("(unknown)"),
                "{a:?}"
            );
        }
        db.close().unwrap();
    }
}

#[test]
fn reimporting_a_scenario_raises_no_new_alert() {
    let dir = tempfile::tempdir().unwrap();
    let runs = simulate_scenarios(&[Scenario::Persistence], &ScenarioOptions::default());
    let (db, log) = import_run(dir.path(), &runs[0]);
    let first = alerts_of(&db);
    assert_eq!(first.len(), 2, "{first:#?}");
    let again = db
        .import_files(std::slice::from_ref(&log), &mut |_| {})
        .unwrap();
    assert_eq!(again.alerts, 0);
    assert_eq!(again.stored.edges_added, 0);
    assert_eq!(alerts_of(&db), first, "same alerts, same counts");
    db.close().unwrap();
    // And after a reopen (the facts and dedup keys come from disk).
    let db = Database::open(dir.path().join("db-persistence")).unwrap();
    db.import_files(&[log], &mut |_| {}).unwrap();
    assert_eq!(alerts_of(&db), first);
}

#[test]
fn a_scenario_split_over_reopens_raises_the_same_alerts() {
    // Each document imported by a fresh process-like open: tags and facts must come back
    // from the archive, not from memory.
    let dir = tempfile::tempdir().unwrap();
    let runs = simulate_scenarios(&[Scenario::DownloadExec], &ScenarioOptions::default());
    let run = &runs[0];
    let db_dir = dir.path().join("split");
    for (i, d) in run.documents.iter().enumerate() {
        let file = dir.path().join(format!("{i}.json"));
        std::fs::write(&file, &d.json).unwrap();
        let db = Database::open(&db_dir).unwrap();
        db.import_files(&[file], &mut |_| {}).unwrap();
        db.close().unwrap();
    }
    let db = Database::open_read_only(&db_dir).unwrap();
    let split = alerts_of(&db);
    let (whole, _) = import_run(dir.path(), run);
    let strip = |alerts: Vec<Alert>| -> Vec<(String, Vec<String>)> {
        alerts
            .into_iter()
            .map(|a| (a.rule, a.path.into_iter().map(|v| v.id).collect()))
            .collect()
    };
    assert_eq!(strip(split), strip(alerts_of(&whole)));
}
