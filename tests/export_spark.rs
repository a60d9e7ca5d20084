//! Spark reads two nodes' Parquet exports as one fleet: `examples/spark_graphframes.py` (its
//! Spark SQL part, with pyspark in local mode) counts the same edges per machine and per type
//! as provdb, and finds the same write -> read flows between processes as a federated provdb
//! query over both archives. Needs Java and pyspark; without Java it prints `SKIPPED: ...`.
#![cfg(feature = "parquet")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{bare, import, provdb, python_has, simulated_logs, stats_json, stdout_of};

fn java_present() -> bool {
    let ok = Command::new("java")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: no Java runtime (`java -version` failed), Spark cannot run");
    }
    ok
}

fn export(db: &Path, out: &Path) {
    stdout_of(
        &provdb(db)
            .args(["export", "--quiet", "--format", "parquet", "--out"])
            .arg(out)
            .output()
            .unwrap(),
    );
}

/// Adds `stats --json`'s counts of one section (`machines`: edges per machine are summed
/// from `machine_edges`; other sections by key) of an archive into `into`.
fn add_counts(into: &mut BTreeMap<String, u64>, section: &serde_json::Value) {
    for (k, n) in section.as_object().unwrap() {
        *into.entry(k.clone()).or_default() += n.as_u64().unwrap();
    }
}

fn counts_of(v: &serde_json::Value) -> BTreeMap<String, u64> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

#[test]
fn spark_reads_two_nodes_exports_as_one_fleet() {
    if !java_present() || !python_has("pyspark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = simulated_logs(dir.path(), 3, 12);
    assert_eq!(files.len(), 3, "one log per simulated machine");
    // Two nodes split the fleet: node A stores machine 1, node B machines 2 and 3.
    let (a, b) = (dir.path().join("node-a"), dir.path().join("node-b"));
    import(&a, &files[..1]);
    import(&b, &files[1..]);
    let (out_a, out_b) = (dir.path().join("export-a"), dir.path().join("export-b"));
    export(&a, &out_a);
    export(&b, &out_b);

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/spark_graphframes.py");
    let run = Command::new("python3")
        .arg(&example)
        .arg("--json")
        .args([&out_a, &out_b])
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("PYSPARK_PYTHON", "python3")
        .output()
        .unwrap();
    let text = stdout_of(&run);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line in the example's output:\n{text}"));
    let spark: serde_json::Value = serde_json::from_str(line).unwrap();

    // Edge counts per type and per machine: the sum of both archives' statistics.
    let (sa, sb) = (stats_json(&a), stats_json(&b));
    let mut edge_types = BTreeMap::new();
    add_counts(&mut edge_types, &sa["edge_types"]);
    add_counts(&mut edge_types, &sb["edge_types"]);
    assert_eq!(counts_of(&spark["edges_per_type"]), edge_types);
    let total: u64 = edge_types.values().sum();
    assert_eq!(spark["edges"].as_u64().unwrap(), total);
    let per_machine = counts_of(&spark["edges_per_machine"]);
    assert_eq!(per_machine.len(), 3, "{per_machine:?}");
    assert_eq!(per_machine.values().sum::<u64>(), total);

    // The two-hop flows, asked of both archives at once through provdb's federated query.
    let csv = stdout_of(
        &Command::new(env!("CARGO_BIN_EXE_provdb"))
            .arg("--db")
            .arg(&a)
            .arg("--db")
            .arg(&b)
            .args([
                "query",
                "--format",
                "csv",
                "(p:task) -[:write]-> (f) -[:read]-> (q:task) | where p.id != q.id \
                 | return distinct p.id, f.id, q.id",
            ])
            .output()
            .unwrap(),
    );
    let mut expected: Vec<Vec<String>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(bare).collect())
        .collect();
    expected.sort();
    expected.dedup();
    let mut found: Vec<Vec<String>> = spark["write_read_flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|id| bare(id.as_str().unwrap()))
                .collect()
        })
        .collect();
    found.sort();
    assert!(
        !expected.is_empty(),
        "the simulated fleet has write -> read flows"
    );
    assert_eq!(found, expected);
}
