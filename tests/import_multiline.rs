//! A file holding ONE document spread over many lines (pretty-printed W3C PROV-JSON, a
//! pretty-printed SPADE array, the libprovenance v0.1.7-v0.1.8 format) is detected from its
//! content and imported with the counts and type names an independent reader (serde_json,
//! here) finds.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use provdb::Database;
use serde_json::Value as Json;

use common::{bare, endpoints};

/// Simulator output in the v0.1.7 format: see tests/fixtures/README.md.
const V0_1_7_FIXTURE: &str = "tests/fixtures/camflow-v0.1.7-sim.json";

/// Vertex and edge counts per type name, stubs counted as `unknown`, read with serde_json.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    vertices: BTreeMap<String, u64>,
    edges: BTreeMap<String, u64>,
}

/// The type of a W3C vertex element as written: `prov:type` without `cf:`, else the word in
/// brackets that starts `prov:label` (`[task] 0` -> `task`).
fn w3c_vertex_type(el: &serde_json::Map<String, Json>) -> String {
    if let Some(t) = el.get("prov:type").and_then(Json::as_str) {
        return bare(t);
    }
    let label = el["prov:label"].as_str().unwrap();
    let end = label.find(']').unwrap();
    label[1..end].to_owned()
}

fn counts_of(doc: &Json) -> Counts {
    let mut vertices: BTreeMap<String, String> = BTreeMap::new();
    let mut edges: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    if let Some(records) = doc.as_array() {
        for r in records {
            let ann = &r["annotations"];
            match r["type"].as_str().unwrap() {
                "Entity" | "Activity" | "Agent" => {
                    let ty = ann["object_type"].as_str().unwrap().to_owned();
                    vertices.insert(r["id"].as_str().unwrap().to_owned(), ty);
                }
                _ => {
                    let ty = ann["relation_type"].as_str().unwrap().to_owned();
                    let (snd, rcv) = (r["to"].as_str().unwrap(), r["from"].as_str().unwrap());
                    edges.insert(
                        ann["id"].as_str().unwrap().to_owned(),
                        (ty, snd.to_owned(), rcv.to_owned()),
                    );
                }
            }
        }
    } else {
        for (section, elements) in doc.as_object().unwrap() {
            if section == "prefix" {
                continue;
            }
            for (key, el) in elements.as_object().unwrap() {
                let el = el.as_object().unwrap();
                if let Some((snd, rcv)) = endpoints(section) {
                    let ty = el
                        .get("prov:type")
                        .or_else(|| el.get("cf:type"))
                        .and_then(Json::as_str)
                        .unwrap()
                        .to_owned();
                    let (s, r) = (
                        bare(el[snd].as_str().unwrap()),
                        bare(el[rcv].as_str().unwrap()),
                    );
                    edges.insert(bare(key), (ty, s, r));
                } else {
                    vertices.insert(bare(key), w3c_vertex_type(el));
                }
            }
        }
    }
    let mut counts = Counts::default();
    for ty in vertices.values() {
        *counts.vertices.entry(ty.clone()).or_default() += 1;
    }
    let stubs: HashSet<&String> = edges
        .values()
        .flat_map(|(_, s, r)| [s, r])
        .filter(|id| !vertices.contains_key(*id))
        .collect();
    if !stubs.is_empty() {
        *counts.vertices.entry("unknown".into()).or_default() += stubs.len() as u64;
    }
    for (ty, ..) in edges.values() {
        *counts.edges.entry(ty.clone()).or_default() += 1;
    }
    counts
}

/// Imports `path` alone; returns what the database holds, after checking nothing was rejected.
fn imported_counts(path: &Path) -> Counts {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let report = db.import_files(&[path.to_path_buf()], &mut |_| {}).unwrap();
    assert_eq!(report.rejected, 0, "{:?}", report.rejections);
    assert_eq!(report.documents, 1, "one document over many lines");
    let stats = db.stats().unwrap();
    db.close().unwrap();
    Counts {
        vertices: stats.vertex_types.into_iter().collect(),
        edges: stats.edge_types.into_iter().collect(),
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_v0_1_7_format_gives_label_types_and_string_relation_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(V0_1_7_FIXTURE);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().count() > 100, "the fixture is pretty-printed");
    let doc: Json = serde_json::from_str(&text).unwrap();
    let expected = counts_of(&doc);
    // The fixture has what makes the format: machines keyed by bare decimal ids, numeric
    // `cf:type` on vertices, relation types only in a string `cf:type`.
    let entities = doc["entity"].as_object().unwrap();
    let machines: Vec<&String> = entities
        .keys()
        .filter(|k| k.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(machines.len(), 2);
    assert!(doc["activity"]
        .as_object()
        .unwrap()
        .values()
        .all(|v| v["cf:type"].is_u64() && v.get("prov:type").is_none()));
    assert!(doc["used"]
        .as_object()
        .unwrap()
        .values()
        .all(|v| v["cf:type"].is_string() && v.get("prov:type").is_none()));
    assert!(expected.vertices["task"] > 0 && expected.vertices["machine"] == 2);
    assert!(!expected.edges.is_empty());

    assert_eq!(imported_counts(&path), expected);
}

#[test]
fn a_pretty_printed_w3c_document_is_one_document() {
    let Some(sample) = common::sample("v0.5.0-w3c-wget.log") else {
        return;
    };
    let text = std::fs::read_to_string(sample).unwrap();
    let first: Json = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let pretty = serde_json::to_string_pretty(&first).unwrap();
    assert!(pretty.lines().count() > 50);
    let files = tempfile::tempdir().unwrap();
    let path = write(&files, "pretty.json", &pretty);
    assert_eq!(imported_counts(&path), counts_of(&first));
}

#[test]
fn a_pretty_printed_spade_array_is_one_document() {
    let Some(sample) = common::sample("v0.8.0-spade-android.log") else {
        return;
    };
    let text = std::fs::read_to_string(sample).unwrap();
    let records: Vec<Json> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let array = Json::Array(records);
    let files = tempfile::tempdir().unwrap();
    let path = write(
        &files,
        "array.json",
        &serde_json::to_string_pretty(&array).unwrap(),
    );
    assert_eq!(imported_counts(&path), counts_of(&array));
}

#[test]
fn one_document_per_line_stays_line_by_line() {
    // Two one-line documents: two documents, not one, and a damaged first line (cut inside a
    // string) does not make the file one document: the second line is still stored.
    let task = r#"{"prefix":{},"activity":{"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=":{"prov:type":"task"}}}"#;
    let cut = r#"{"prefix":{},"activity":{"cf:AQAAAAAAAEDDHQIAAAAAAAEAA"#;
    let files = tempfile::tempdir().unwrap();
    let path = write(&files, "lines.log", &format!("{cut}\n{task}\n{task}\n"));
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let report = db.import_files(&[path], &mut |_| {}).unwrap();
    assert_eq!((report.documents, report.rejected), (2, 1));
    assert_eq!(report.rejections[0].line, 1);
    assert_eq!(db.stats().unwrap().vertices, 1);
    db.close().unwrap();
}
