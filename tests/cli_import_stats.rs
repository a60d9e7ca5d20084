//! The `provdb import` and `provdb stats` commands, run as a user would.

mod common;

use std::process::Command;

use common::{provdb, stats_json, stdout_of};

#[test]
fn import_then_stats_json_has_exactly_the_documented_keys() {
    let Some(badlog) = common::sample("v0.2.2-w3c-badlog.log") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = provdb(dir.path())
        .args(["import", "--quiet"])
        .arg(&badlog)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("skipped lines (not JSON nor payload): 6"),
        "{text}"
    );
    assert!(text.contains("rejected documents: 0"), "{text}");

    let out = provdb(dir.path())
        .args(["stats", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "edge_types",
            "edges",
            "machines",
            "stub_vertices",
            "vertex_types",
            "vertices"
        ]
    );
    assert_eq!(json["vertices"], 1019);
    assert_eq!(json["stub_vertices"], 1);
    assert_eq!(json["edges"], 3020);
    // Per machine: vertices defined with that machine. Packets carry no machine in their
    // identifier and the one stub is not defined yet; the legacy machine description counts.
    let text = String::from_utf8_lossy(&std::fs::read(&badlog).unwrap()).into_owned();
    let mut with_machine = std::collections::HashSet::new();
    for line in text.lines() {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for section in ["activity", "entity", "agent"] {
            for (id, el) in doc
                .get(section)
                .and_then(|s| s.as_object())
                .into_iter()
                .flatten()
            {
                if el["cf:machine_id"] == 635200317 || el["prov:label"] == "[machine] 635200317" {
                    with_machine.insert(id.clone());
                }
            }
        }
    }
    assert_eq!(json["machines"]["635200317"], with_machine.len() as u64);
    let edge_total: u64 = json["edge_types"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(edge_total, 3020);

    let out = provdb(dir.path()).arg("stats").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("skipped lines") && table.contains("1019"),
        "{table}"
    );
}

#[test]
fn rejected_documents_are_listed_and_set_the_exit_status() {
    let files = tempfile::tempdir().unwrap();
    let bad = files.path().join("bad.log");
    std::fs::write(
        &bad,
        "{\"prefix\":{},\"activity\":{\"a\":{\"prov:type\":}}}\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = provdb(dir.path())
        .args(["import", "--quiet"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bad.log:1: invalid JSON"), "{text}");
}

#[test]
fn missing_files_and_databases_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = provdb(dir.path())
        .args(["import", "/nonexistent/file.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/file.log"), "{stderr}");
    // The OS's reason once, though the error also returns it as its source.
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    let out = provdb(&dir.path().join("nothing-here"))
        .arg("stats")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no provdb database"));
}

#[test]
fn a_folder_imports_as_its_files_without_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_provdb"))
        .args([
            "simulate",
            "--scenario",
            "webshell",
            "--documents",
            "30",
            "--out",
        ])
        .arg(&run)
        .output()
        .unwrap();
    stdout_of(&out);
    let mut logs = Vec::new();
    let mut truths = 0;
    for entry in std::fs::read_dir(&run).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("truth") {
            truths += 1;
        } else {
            logs.push(path);
        }
    }
    assert_eq!(truths, 1, "simulate --scenario writes one ground truth");
    assert!(!logs.is_empty());

    let by_folder = dir.path().join("by-folder");
    let out = provdb(&by_folder)
        .args(["import", "--quiet"])
        .arg(&run)
        .output()
        .unwrap();
    let printed = stdout_of(&out);
    assert!(
        printed.contains(&format!("imported {} file(s)", logs.len())),
        "{printed}"
    );
    assert!(printed.contains("rejected documents: 0"), "{printed}");

    let by_files = dir.path().join("by-files");
    provdb(&by_files)
        .args(["import", "--quiet"])
        .args(&logs)
        .output()
        .unwrap();
    let counts = |db: &std::path::Path| {
        let stats = stats_json(db);
        (stats["vertices"].clone(), stats["edges"].clone())
    };
    assert_eq!(counts(&by_folder), counts(&by_files));
    assert!(counts(&by_folder).1.as_u64().unwrap() > 0);
}
