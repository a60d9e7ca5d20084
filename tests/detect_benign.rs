//! Detection stays silent on benign activity: the simulator's background (shells, package
//! updates, cron jobs, compilers, ssh logins) and CamFlow's real samples (a wget download,
//! a boot, an Android device).

mod common;

use provdb::detect::AlertFilter;
use provdb::simulate::{Simulation, SimulationOptions};
use provdb::Database;

#[test]
fn the_benign_simulator_raises_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulation::new(&SimulationOptions {
        seed: 7,
        machines: 3,
        documents_per_machine: 80,
        records_per_document: 60,
    });
    let mut text = String::new();
    for d in sim {
        text.push_str(&d.json);
        text.push('\n');
    }
    let log = dir.path().join("benign.log");
    std::fs::write(&log, text).unwrap();
    let db = Database::open(dir.path().join("db")).unwrap();
    let report = db.import_files(&[log], &mut |_| {}).unwrap();
    assert!(report.stored.edges_added > 5_000, "{report:?}");
    let alerts = db.alerts(&AlertFilter::default()).unwrap();
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn the_real_samples_raise_no_alert() {
    for name in [
        "v0.5.0-w3c-wget.log",
        "v0.2.2-w3c-badlog.log",
        "v0.8.0-spade-android.log",
    ] {
        let Some(sample) = common::sample(name) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        let report = db.import_files(&[sample], &mut |_| {}).unwrap();
        assert!(report.stored.edges_added > 0, "{name}");
        let alerts = db.alerts(&AlertFilter::default()).unwrap();
        assert!(alerts.is_empty(), "{name}: {alerts:#?}");
    }
}
