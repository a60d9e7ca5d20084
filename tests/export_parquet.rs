//! `provdb export --format parquet`: DuckDB reads the hive-partitioned datasets unchanged,
//! with typed columns, the same counts and the same adjacency as the archive.
#![cfg(feature = "parquet")]

mod common;

use std::path::Path;

use common::{provdb, python, python_has, simulated_archive, stats_json, stdout_of};

fn query(db: &Path, q: &str) -> Vec<String> {
    let text = stdout_of(
        &provdb(db)
            .args(["query", "--format", "csv", q])
            .output()
            .unwrap(),
    );
    let mut rows: Vec<String> = text.lines().skip(1).map(str::to_owned).collect();
    rows.sort();
    rows
}

#[test]
fn duckdb_reads_the_parquet_export() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_archive(dir.path(), 2, 15);
    let out = dir.path().join("pq");
    let o = provdb(&db)
        .args(["export", "--quiet", "--format", "parquet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stats = stats_json(&db);
    for m in stats["machines"].as_object().unwrap().keys() {
        assert!(out
            .join(format!("vertices/machine={m}/part-0.parquet"))
            .is_file());
    }
    // Refuses to write over a dataset.
    let again = provdb(&db)
        .args(["export", "--format", "parquet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());

    if !python_has("duckdb") {
        return;
    }
    let script = r#"
import sys, duckdb
root = sys.argv[1]
con = duckdb.connect()
v = f"read_parquet('{root}/vertices/**/*.parquet', hive_partitioning = true)"
e = f"read_parquet('{root}/edges/**/*.parquet', hive_partitioning = true)"
print("types", {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {e}").fetchall()})
print("vertex_machine", {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {v}").fetchall()}["machine"])
for m, n in con.execute(f"SELECT machine, count(*) FROM {v} WHERE machine IS NOT NULL GROUP BY machine ORDER BY machine").fetchall():
    print("machine", m, n)
for t, n in con.execute(f"SELECT type, count(*) FROM {e} GROUP BY type ORDER BY type").fetchall():
    print("edge_type", t, n)
print("stubs", con.execute(f"SELECT count(*) FROM {v} WHERE class = 'unknown'").fetchone()[0])
for i, s, d in con.execute(f"SELECT id, src, dst FROM {e}").fetchall():
    print("edge", f"{i},{s},{d}")
print("pid_is_kept", con.execute(f"SELECT count(*) FROM {v} WHERE type = 'task' AND json_extract(attributes, '$.\"cf:pid\"') IS NOT NULL").fetchone()[0])
"#;
    let text = python(script, &[out.as_os_str()]);
    let lines: Vec<&str> = text.lines().collect();
    let types = lines.iter().find(|l| l.starts_with("types ")).unwrap();
    for column in [
        "'id': 'VARCHAR'",
        "'src': 'VARCHAR'",
        "'dst': 'VARCHAR'",
        "'time': 'BIGINT'",
        "'boot': 'UINTEGER'",
        "'attributes': 'VARCHAR'",
    ] {
        assert!(types.contains(column), "{column} not in {types}");
    }
    // Partition values are typed by DuckDB's inference: machine ids are integers, also when
    // stub vertices (no machine) sit under machine=NULL.
    assert!(types.contains("'machine': 'BIGINT'"), "{types}");
    assert!(lines.contains(&"vertex_machine BIGINT"), "{text}");
    let mut machines: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("machine "))
        .map(str::to_owned)
        .collect();
    machines.sort();
    let mut expected: Vec<String> = stats["machines"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect();
    expected.sort();
    assert_eq!(machines, expected);
    let edge_types: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("edge_type "))
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = stats["edge_types"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    assert_eq!(edge_types, expected);
    assert!(lines.contains(&format!("stubs {}", stats["stub_vertices"]).as_str()));
    let mut edges: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("edge "))
        .map(str::to_owned)
        .collect();
    edges.sort();
    assert_eq!(
        edges,
        query(&db, "(a) -[e]-> (b) | return e.id, a.id, b.id")
    );
    let tasks = query(&db, "(t:task) | where t.pid > 0 | return t.id").len();
    assert!(
        lines.contains(&format!("pid_is_kept {tasks}").as_str()),
        "{text}"
    );
}
