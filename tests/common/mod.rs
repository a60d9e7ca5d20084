//! Shared helpers of the integration tests.
#![allow(dead_code)]

pub mod ui;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `provdb` binary with `--db DB`.
pub fn provdb(db: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_provdb"));
    c.arg("--db").arg(db);
    c
}

/// Makes a `provdb` import flush often. An import writes without the WAL: another process,
/// or a rerun after kill -9, sees only what its flushes wrote, every 64 MiB of memtable by
/// default. A 256 KiB memtable (`PROVDB_TEST_WRITE_BUFFER_BYTES`, read by debug builds only)
/// makes a test-sized import flush again and again.
pub fn flushing_often(c: &mut Command) -> &mut Command {
    c.env("PROVDB_TEST_WRITE_BUFFER_BYTES", (256 << 10).to_string())
}

/// Standard output of a command that must have succeeded (its stderr otherwise).
pub fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The shared CamFlow samples (`../shared/data/camflow`). `None`, with a visible message, when
/// the folder is absent (a user's own clone); a test failure when it is absent under CI.
pub fn shared_data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/camflow");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!(
            "CI=true but the shared CamFlow samples are missing at {}",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: shared CamFlow samples not found at {} (they ship beside the repository)",
        dir.display()
    );
    None
}

/// Path of one shared sample, or `None` (skip) as [`shared_data_dir`] decides.
pub fn sample(name: &str) -> Option<PathBuf> {
    shared_data_dir().map(|d| d.join(name))
}

/// The three samples with their expected (vertices, stub vertices, edges, skipped lines) when
/// each is imported alone (from the issue, cross-checked by an independent Python count).
pub const SAMPLES: [(&str, u64, u64, u64, u64); 3] = [
    ("v0.5.0-w3c-wget.log", 178, 0, 519, 0),
    ("v0.2.2-w3c-badlog.log", 1019, 1, 3020, 6),
    ("v0.8.0-spade-android.log", 13, 0, 14, 0),
];

/// Simulates `machines` CamFlow machines of `documents` documents each (deterministic, seed
/// 1) into log files under `dir`, and returns their paths, sorted.
pub fn simulated_logs(dir: &Path, machines: u32, documents: u64) -> Vec<PathBuf> {
    let logs = dir.join("logs");
    let out = Command::new(env!("CARGO_BIN_EXE_provdb"))
        .args(["simulate", "--machines", &machines.to_string()])
        .args(["--documents", &documents.to_string(), "--out"])
        .arg(&logs)
        .output()
        .unwrap();
    stdout_of(&out);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Imports `files` into the archive `db` with `provdb import` (which must succeed).
pub fn import(db: &Path, files: &[PathBuf]) {
    stdout_of(
        &provdb(db)
            .args(["import", "--quiet"])
            .args(files)
            .output()
            .unwrap(),
    );
}

/// An archive at `dir/db` holding the simulated logs of [`simulated_logs`].
pub fn simulated_archive(dir: &Path, machines: u32, documents: u64) -> PathBuf {
    let db = dir.join("db");
    import(&db, &simulated_logs(dir, machines, documents));
    db
}

/// `provdb stats --json` of an archive, parsed.
pub fn stats_json(db: &Path) -> serde_json::Value {
    serde_json::from_str(&stdout_of(
        &provdb(db).args(["stats", "--json"]).output().unwrap(),
    ))
    .unwrap()
}

/// Whether `python3` can import `module`. When it cannot, prints `SKIPPED: ...` (the caller
/// then returns), except under `CI=true`, where the missing package is a failure.
pub fn python_has(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("CI=true but python3 cannot import {module} (pip install {module})");
        }
        eprintln!("SKIPPED: python3 cannot import {module} (pip install {module})");
    }
    ok
}

/// Runs a Python script with arguments and returns its standard output (it must succeed).
pub fn python(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    stdout_of(&out)
}

/// An external id without its `cf:` prefix.
pub fn bare(id: &str) -> String {
    id.strip_prefix("cf:").unwrap_or(id).to_owned()
}

/// Sender/receiver keys of each W3C relation section (camflow-format.md, section 3.2).
pub fn endpoints(section: &str) -> Option<(&'static str, &'static str)> {
    Some(match section {
        "used" => ("prov:entity", "prov:activity"),
        "wasGeneratedBy" => ("prov:activity", "prov:entity"),
        "wasInformedBy" => ("prov:informant", "prov:informed"),
        "wasDerivedFrom" => ("prov:usedEntity", "prov:generatedEntity"),
        "wasAssociatedWith" => ("prov:agent", "prov:activity"),
        "wasInfluencedBy" => ("prov:influencer", "prov:influencee"),
        _ => return None,
    })
}

/// The external id of the vertex with `role` in a scenario's ground truth
/// (`truth-NAME.json` of `provdb simulate --scenario`).
pub fn truth_vertex<'a>(truth: &'a serde_json::Value, role: &str) -> &'a str {
    truth["vertices"]
        .as_array()
        .expect("truth vertices")
        .iter()
        .find(|v| v["role"] == role)
        .and_then(|v| v["id"].as_str())
        .unwrap_or_else(|| panic!("no {role} in the truth"))
}

/// A W3C CamFlow log as its text states it: vertices (bare id -> the element) and relations
/// (bare id -> type, sender, receiver), a relation repeated in several documents once.
pub struct W3cLog {
    pub vertices: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    pub relations: std::collections::BTreeMap<String, (String, String, String)>,
    /// Every attribute of each relation, by id.
    pub relation_attributes:
        std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

/// Reads a W3C log file (one document per line) with serde_json alone.
pub fn read_w3c_log(path: &Path) -> W3cLog {
    let mut log = W3cLog {
        vertices: Default::default(),
        relations: Default::default(),
        relation_attributes: Default::default(),
    };
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let Ok(serde_json::Value::Object(doc)) = serde_json::from_str(line) else {
            continue;
        };
        for (section, entries) in &doc {
            let Some(entries) = entries.as_object() else {
                continue;
            };
            let is_vertex = matches!(section.as_str(), "activity" | "entity" | "agent");
            let ends = match section.as_str() {
                "relation" => Some(("cf:sender", "cf:receiver")),
                other => endpoints(other),
            };
            for (id, rec) in entries {
                let Some(rec) = rec.as_object() else { continue };
                if is_vertex {
                    log.vertices.insert(bare(id), rec.clone());
                } else if let Some((s, d)) = ends {
                    let (Some(s), Some(d)) = (rec[s].as_str(), rec[d].as_str()) else {
                        continue;
                    };
                    let ty = rec["prov:type"].as_str().unwrap_or("").to_owned();
                    log.relations.insert(bare(id), (ty, bare(s), bare(d)));
                    log.relation_attributes.insert(bare(id), rec.clone());
                }
            }
        }
    }
    log
}

/// `provdb simulate --scenario NAME --documents 3` imported into `dir/scenario-db`: the archive
/// and the scenario's ground truth.
pub fn scenario_archive(dir: &Path, scenario: &str) -> (PathBuf, serde_json::Value) {
    let out = dir.join("scenario");
    stdout_of(
        &Command::new(env!("CARGO_BIN_EXE_provdb"))
            .args([
                "simulate",
                "--scenario",
                scenario,
                "--documents",
                "3",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap(),
    );
    let logs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    let db = dir.join("scenario-db");
    import(&db, &logs);
    let truth = std::fs::read_to_string(out.join(format!("truth-{scenario}.json"))).unwrap();
    (db, serde_json::from_str(&truth).unwrap())
}
