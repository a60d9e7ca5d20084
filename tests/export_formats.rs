//! `provdb export`: PROV-JSON that the reference reader (Python `prov`) reads, SPADE lines,
//! and dot/svg; PROV-JSON and SPADE import back into an empty archive as the same graph.

mod common;

use std::path::Path;

use common::{provdb, python, python_has, simulated_archive, stats_json, stdout_of};

/// Every edge with its endpoints and type, by external ids: the adjacency of the graph.
const ADJACENCY: &str =
    "(a) -[e]-> (b) | return e.id, e.type, e.relation, a.id, a.type, b.id, b.type | order by e.id";
const VERTICES: &str = "(v) | return v.id, v.type, v.class, v.machine | order by v.id";

fn query(db: &Path, q: &str) -> String {
    stdout_of(
        &provdb(db)
            .args(["query", "--format", "csv", q])
            .output()
            .unwrap(),
    )
}

fn export(db: &Path, format: &str, out: &Path, extra: &[&str]) -> String {
    let o = provdb(db)
        .args(["export", "--quiet", "--format", format, "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_same_graph(original: &Path, copy: &Path) {
    assert_eq!(stats_json(copy), stats_json(original));
    assert_eq!(query(copy, VERTICES), query(original, VERTICES));
    assert_eq!(query(copy, ADJACENCY), query(original, ADJACENCY));
}

fn reimport(dir: &Path, name: &str, file: &Path) -> std::path::PathBuf {
    let db = dir.join(name);
    stdout_of(
        &provdb(&db)
            .args(["import", "--quiet"])
            .arg(file)
            .output()
            .unwrap(),
    );
    db
}

#[test]
fn prov_json_reads_in_python_prov_and_imports_back_as_the_same_graph() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_archive(dir.path(), 2, 15);
    let file = dir.path().join("export.json");
    let said = export(&db, "prov-json", &file, &[]);
    let stats = stats_json(&db);
    // Stub vertices (named by edges, never defined) are no elements.
    let vertices = stats["vertices"].as_u64().unwrap() - stats["stub_vertices"].as_u64().unwrap();
    let edges = stats["edges"].as_u64().unwrap();
    assert!(
        said.contains(&format!("exported {vertices} vertices and {edges} edges")),
        "{said}"
    );
    assert_same_graph(&db, &reimport(dir.path(), "from-prov", &file));

    if !python_has("prov") {
        return;
    }
    // The reference reader: element counts per PROV class, relation counts per section, and
    // one relation's endpoints and type, against provdb's own answers.
    let script = r#"
import sys, collections
from prov.model import ProvDocument
doc = ProvDocument.deserialize(sys.argv[1], format="json")
kinds = collections.Counter(type(r).__name__ for r in doc.get_records())
for k in sorted(kinds): print(k, kinds[k])
"#;
    let counts = python(script, &[file.as_os_str()]);
    let classes = query(&db, "(v) | return v.class");
    let relations = query(&db, "() -[e]-> () | return e.relation");
    let n = |text: &str, what: &str| text.lines().filter(|l| l.trim_matches('"') == what).count();
    let expect = [
        ("ProvActivity", n(&classes, "activity")),
        ("ProvEntity", n(&classes, "entity")),
        ("ProvAgent", n(&classes, "agent")),
        ("ProvUsage", n(&relations, "used")),
        ("ProvGeneration", n(&relations, "wasGeneratedBy")),
        ("ProvCommunication", n(&relations, "wasInformedBy")),
        ("ProvDerivation", n(&relations, "wasDerivedFrom")),
        ("ProvInfluence", n(&relations, "wasInfluencedBy")),
        ("ProvAssociation", n(&relations, "wasAssociatedWith")),
    ];
    for (kind, count) in expect {
        let line = counts.lines().find(|l| l.starts_with(&format!("{kind} ")));
        match line {
            Some(l) => assert_eq!(l, format!("{kind} {count}"), "{counts}"),
            None => assert_eq!(count, 0, "{kind} missing from:\n{counts}"),
        }
    }
    let total: usize = counts
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(total as u64, vertices + edges, "{counts}");

    // One `used` relation through prov's own model: entity -> activity, with its type.
    let row = query(
        &db,
        "(a) -[e:read]-> (b) | return e.id, a.id, b.id | order by e.id | limit 1",
    );
    let row = row.lines().nth(1).expect("a read edge");
    let ids: Vec<&str> = row.split(',').map(|s| s.trim_matches('"')).collect();
    let script = r#"
import sys
from prov.model import ProvDocument
doc = ProvDocument.deserialize(sys.argv[1], format="json")
for r in doc.get_records():
    if str(r.identifier) == "cf:" + sys.argv[2]:
        a = dict(r.formal_attributes)
        print(type(r).__name__, a[[k for k in a if str(k) == "prov:entity"][0]], a[[k for k in a if str(k) == "prov:activity"][0]], list(r.get_asserted_types()))
"#;
    let found = python(script, &[file.as_os_str(), std::ffi::OsStr::new(ids[0])]);
    assert_eq!(
        found.trim(),
        format!("ProvUsage cf:{} cf:{} ['read']", ids[1], ids[2])
    );
}

#[test]
fn spade_lines_import_back_as_the_same_graph() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_archive(dir.path(), 2, 15);
    let file = dir.path().join("export.spade");
    export(&db, "spade", &file, &[]);
    let stats = stats_json(&db);
    let lines = std::fs::read_to_string(&file).unwrap().lines().count() as u64;
    assert_eq!(
        lines,
        stats["vertices"].as_u64().unwrap() - stats["stub_vertices"].as_u64().unwrap()
            + stats["edges"].as_u64().unwrap()
    );
    assert_same_graph(&db, &reimport(dir.path(), "from-spade", &file));
}

#[test]
fn real_samples_round_trip_through_both_formats() {
    let Some(sample) = common::sample("v0.5.0-w3c-wget.log") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    stdout_of(
        &provdb(&db)
            .args(["import", "--quiet"])
            .arg(&sample)
            .output()
            .unwrap(),
    );
    for (format, name) in [("prov-json", "a.json"), ("spade", "a.spade")] {
        let file = dir.path().join(name);
        export(&db, format, &file, &[]);
        assert_same_graph(&db, &reimport(dir.path(), &format!("{name}.db"), &file));
    }
}

#[test]
fn a_machine_or_a_query_selects_part_of_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_archive(dir.path(), 2, 10);
    let stats = stats_json(&db);
    let machine = stats["machines"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let file = dir.path().join("m.spade");
    export(&db, "spade", &file, &["--machine", &machine]);
    let part = reimport(dir.path(), "m", &file);
    let part_stats = stats_json(&part);
    assert_eq!(part_stats["machines"].as_object().unwrap().len(), 1);
    assert_eq!(
        part_stats["machines"][&machine],
        stats["machines"][&machine]
    );
    let edges_of = |db: &Path| {
        query(db, &format!("(a) -[e]-> (b) | where e.machine = {machine} | return e.id, a.id, b.id | order by e.id"))
    };
    assert_eq!(edges_of(&part), edges_of(&db));

    let q = "(t:task) -[e:clone]-> (c) | return e.id";
    assert!(
        query(&db, q).lines().count() > 2,
        "too few clone edges to test with"
    );
    let file = dir.path().join("q.json");
    export(&db, "prov-json", &file, &["--query", q]);
    let sub = reimport(dir.path(), "q", &file);
    assert_eq!(
        query(&sub, "() -[e]-> () | return e.id | order by e.id"),
        query(&db, &format!("{q} | order by e.id"))
    );

    let dot = dir.path().join("q.dot");
    export(&db, "dot", &dot, &["--query", q]);
    assert!(std::fs::read_to_string(&dot)
        .unwrap()
        .starts_with("digraph"));
    let out = provdb(&db)
        .args(["export", "--format", "dot", "--out"])
        .arg(&dot)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --query"));
}
