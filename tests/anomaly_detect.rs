//! Anomaly detection end to end: train on seeded benign simulator runs, then a held-back
//! benign run scores normal and an attack run scores anomalous, for the reason worked out
//! from the scenario (edge types the benign simulator never produces); live scoring at
//! import raises an `anomaly` alert whose path holds those edges.
//!
//! Why the webshell stands out (worked out from `provdb simulate --help` and the benign
//! generator, not from the detector): benign machines only read, write, map, open, clone
//! and version files and processes; they never accept a connection, receive a packet or
//! exec a program. The webshell has apache2 accept a socket and receive a request, clone a
//! child that execs `sh`, which execs `whoami`: `accept`, `receive`, `receive_packet`,
//! `exec` and `exec_task` edges give the web server and the shell neighbourhood labels
//! (hops 1-3) that training never saw, so their weight in the decayed histogram moves the
//! interval's sketch away from every benign cluster.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{provdb, stdout_of};

/// Benign documents per run: a few seconds of simulation, several intervals per run.
const DOCUMENTS: &str = "120";
/// Edge types of the webshell absent from benign activity (see the module comment).
const WEBSHELL_ONLY: [&str; 5] = ["accept", "receive", "receive_packet", "exec", "exec_task"];

fn simulate(dir: &Path, name: &str, seed: u64, scenario: Option<&str>) -> PathBuf {
    let out = dir.join(name);
    let mut c = Command::new(env!("CARGO_BIN_EXE_provdb"));
    c.args([
        "simulate",
        "--seed",
        &seed.to_string(),
        "--documents",
        DOCUMENTS,
        "--out",
    ])
    .arg(&out);
    if let Some(s) = scenario {
        c.args(["--scenario", s]);
    }
    stdout_of(&c.output().unwrap());
    out
}

fn logs_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

/// `provdb import` of a simulated run's logs into `db` (live scoring when it has a model).
fn import_run(db: &Path, run: &Path) {
    stdout_of(
        &provdb(db)
            .args(["import", "--quiet"])
            .args(logs_in(run))
            .output()
            .unwrap(),
    );
}

fn truth_ids(dir: &Path, role: &str) -> Vec<String> {
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth-webshell.json")).unwrap())
            .unwrap();
    truth["vertices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["role"] == role)
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn eval_trains_on_benign_seeds_flags_the_attack_and_not_the_held_back_run() {
    let dir = tempfile::tempdir().unwrap();
    let benign: Vec<PathBuf> = (1..=4)
        .map(|s| simulate(dir.path(), &format!("benign-{s}"), s, None))
        .collect();
    let attack = simulate(dir.path(), "webshell", 11, Some("webshell"));
    let out = Command::new(env!("CARGO_BIN_EXE_provdb"))
        .args([
            "detect",
            "eval",
            "--format",
            "json",
            "--train-runs",
            "3",
            "--benign",
        ])
        .args(&benign)
        .arg("--attack")
        .arg(&attack)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    let keys: BTreeSet<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["accuracy", "f1", "fpr", "precision", "recall", "runs"])
    );
    let runs = report["runs"].as_array().unwrap();
    let role = |i: usize| runs[i]["role"].as_str().unwrap();
    assert_eq!(
        (role(0), role(1), role(2), role(3), role(4)),
        ("train", "train", "train", "test", "test")
    );
    assert_eq!(runs[3]["kind"], "benign");
    assert_eq!(runs[3]["flagged"], false, "held-back benign run: {report}");
    assert_eq!(runs[4]["kind"], "attack");
    assert_eq!(runs[4]["flagged"], true, "webshell run: {report}");
    // One true positive, one true negative.
    for key in ["precision", "recall", "accuracy", "f1"] {
        assert_eq!(report[key], 1.0, "{key}: {report}");
    }
    assert_eq!(report["fpr"], 0.0);
}

#[test]
fn import_scores_live_and_the_alert_path_holds_the_attack_edges() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // The fleet model from three benign seeds' history.
    for s in 1..=3 {
        let run = simulate(dir.path(), &format!("benign-{s}"), s, None);
        import_run(&db, &run);
    }
    let trained = stdout_of(&provdb(&db).args(["detect", "train"]).output().unwrap());
    assert!(trained.starts_with("trained model fleet v1:"), "{trained}");
    // The benign history scores normal against its own model.
    let scores: serde_json::Value = serde_json::from_str(&stdout_of(
        &provdb(&db)
            .args(["detect", "score", "--format", "json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let scores = scores.as_array().unwrap();
    assert!(!scores.is_empty());
    assert!(scores.iter().all(|s| s["anomalous"] == false), "{scores:?}");
    assert!(scores.iter().all(|s| s["model"] == "fleet v1"));

    // A held-back benign seed imported live: no anomaly alert.
    let held_back = simulate(dir.path(), "benign-9", 9, None);
    import_run(&db, &held_back);
    let alerts = |db: &Path| -> Vec<serde_json::Value> {
        serde_json::from_str::<serde_json::Value>(&stdout_of(
            &provdb(db)
                .args(["alerts", "--rule", "anomaly", "--format", "json"])
                .output()
                .unwrap(),
        ))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
    };
    assert_eq!(alerts(&db), Vec::<serde_json::Value>::new());

    // The webshell run imported live: an anomaly alert on its machine, whose path holds
    // the attack's edges that benign activity never has, and the web server.
    let attack = simulate(dir.path(), "webshell", 11, Some("webshell"));
    import_run(&db, &attack);
    let raised = alerts(&db);
    assert!(!raised.is_empty(), "no anomaly alert");
    let machine = logs_in(&attack)[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_start_matches("machine-")
        .parse::<u64>()
        .unwrap();
    assert!(raised.iter().all(|a| a["machine"] == machine), "{raised:?}");
    let edge_types: BTreeSet<String> = raised
        .iter()
        .flat_map(|a| a["edges"].as_array().unwrap().iter())
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        WEBSHELL_ONLY.iter().any(|t| edge_types.contains(*t)),
        "path edge types {edge_types:?}"
    );
    let path_ids: BTreeSet<String> = raised
        .iter()
        .flat_map(|a| a["path"].as_array().unwrap().iter())
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    let web_server = truth_ids(&attack, "web server");
    assert!(
        web_server.iter().any(|id| path_ids.contains(id)),
        "web server {web_server:?} not in {path_ids:?}"
    );
    assert!(raised[0]["summary"].as_str().unwrap().contains("fleet v1"));
}
