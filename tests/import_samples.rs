//! Importing every shared CamFlow sample: counts, per-type counts, edge direction, placement
//! decoded from identifiers. Expectations are computed here from the raw JSON with serde_json,
//! independently of provdb's decoder.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use provdb::{Database, Direction};
use serde_json::Value as Json;

use common::{bare, endpoints};

/// What a file should produce: vertex id -> type, edge id -> (type, sender, receiver).
#[derive(Default)]
struct Expected {
    vertices: HashMap<String, String>,
    vertex_attrs: HashMap<String, serde_json::Map<String, Json>>,
    edges: HashMap<String, (String, String, String)>,
    skipped: u64,
}

impl Expected {
    fn stubs(&self) -> HashSet<String> {
        let mut refs = HashSet::new();
        for (_, s, d) in self.edges.values() {
            refs.insert(s.clone());
            refs.insert(d.clone());
        }
        refs.retain(|r| !self.vertices.contains_key(r));
        refs
    }
}

fn expected_from(path: &Path) -> Expected {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    let mut exp = Expected::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(doc) = serde_json::from_str::<Json>(line) else {
            exp.skipped += 1;
            continue;
        };
        let obj = doc.as_object().unwrap();
        if obj.contains_key("annotations") {
            // SPADE: `to` is the sender, `from` the receiver.
            let ann = obj["annotations"].as_object().unwrap();
            match obj["type"].as_str().unwrap() {
                "Entity" | "Activity" | "Agent" => {
                    let id = obj["id"].as_str().unwrap().to_owned();
                    exp.vertices
                        .insert(id.clone(), ann["object_type"].as_str().unwrap().to_owned());
                    exp.vertex_attrs.insert(id, ann.clone());
                }
                _ => {
                    exp.edges.insert(
                        ann["id"].as_str().unwrap().to_owned(),
                        (
                            ann["relation_type"].as_str().unwrap().to_owned(),
                            obj["to"].as_str().unwrap().to_owned(),
                            obj["from"].as_str().unwrap().to_owned(),
                        ),
                    );
                }
            }
            continue;
        }
        for (section, elements) in obj {
            if section == "prefix" {
                continue;
            }
            for (key, el) in elements.as_object().unwrap() {
                let el = el.as_object().unwrap();
                if let Some((snd, rcv)) = endpoints(section) {
                    exp.edges.insert(
                        bare(key),
                        (
                            el["prov:type"].as_str().unwrap().to_owned(),
                            bare(el[snd].as_str().unwrap()),
                            bare(el[rcv].as_str().unwrap()),
                        ),
                    );
                } else {
                    let ty = el
                        .get("prov:type")
                        .and_then(Json::as_str)
                        .unwrap_or("machine")
                        .to_owned();
                    exp.vertices.insert(bare(key), ty);
                    exp.vertex_attrs.insert(bare(key), el.clone());
                }
            }
        }
    }
    exp
}

fn import_alone(path: &Path) -> (tempfile::TempDir, Database, provdb::ImportReport) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let report = db.import_files(&[path.to_path_buf()], &mut |_| {}).unwrap();
    (dir, db, report)
}

#[test]
fn each_sample_gives_the_expected_totals() {
    for (name, vertices, stubs, edges, skipped) in common::SAMPLES {
        let Some(path) = common::sample(name) else {
            return;
        };
        let exp = expected_from(&path);
        // The figures and the independent count agree.
        assert_eq!(
            exp.vertices.len() as u64 + exp.stubs().len() as u64,
            vertices,
            "{name}"
        );
        assert_eq!(exp.stubs().len() as u64, stubs, "{name}");
        assert_eq!(exp.edges.len() as u64, edges, "{name}");
        assert_eq!(exp.skipped, skipped, "{name}");

        let (_dir, db, report) = import_alone(&path);
        let stats = db.stats().unwrap();
        assert_eq!(
            (
                stats.vertices,
                stats.stub_vertices,
                stats.edges,
                stats.skipped_lines
            ),
            (vertices, stubs, edges, skipped),
            "{name}"
        );
        assert_eq!(report.rejected, 0, "{name}: {:?}", report.rejections);
        assert_eq!(stats.rejected_documents, 0);
        db.close().unwrap();
    }
}

#[test]
fn per_type_counts_match_the_json() {
    for (name, ..) in common::SAMPLES {
        let Some(path) = common::sample(name) else {
            return;
        };
        let exp = expected_from(&path);
        let mut vertex_types: BTreeMap<String, u64> = BTreeMap::new();
        for t in exp.vertices.values() {
            *vertex_types.entry(t.clone()).or_default() += 1;
        }
        // A stub without a type hint is counted as `unknown` until it is defined.
        for _ in exp.stubs() {
            *vertex_types.entry("unknown".into()).or_default() += 1;
        }
        let mut edge_types: BTreeMap<String, u64> = BTreeMap::new();
        for (t, ..) in exp.edges.values() {
            *edge_types.entry(t.clone()).or_default() += 1;
        }
        let (_dir, db, _) = import_alone(&path);
        let stats = db.stats().unwrap();
        assert_eq!(
            stats.vertex_types.into_iter().collect::<BTreeMap<_, _>>(),
            vertex_types,
            "{name}"
        );
        assert_eq!(
            stats.edge_types.into_iter().collect::<BTreeMap<_, _>>(),
            edge_types,
            "{name}"
        );
        db.close().unwrap();
    }
}

#[test]
fn every_edge_runs_from_sender_to_receiver() {
    for (name, ..) in common::SAMPLES {
        let Some(path) = common::sample(name) else {
            return;
        };
        let exp = expected_from(&path);
        let (_dir, db, _) = import_alone(&path);
        for (id, (ty, snd, rcv)) in &exp.edges {
            let e = db
                .edge_by_external(id)
                .unwrap()
                .unwrap_or_else(|| panic!("edge {id}"));
            assert_eq!(&*e.type_name, ty);
            let src = db.store().vertex(e.src).unwrap().unwrap();
            let dst = db.store().vertex(e.dst).unwrap().unwrap();
            assert_eq!(&src.ext_id.to_string(), snd, "{name} {id}");
            assert_eq!(&dst.ext_id.to_string(), rcv, "{name} {id}");
            // The adjacency agrees with the record, both ways.
            let out = db.neighbours(e.src, Direction::Out, &[ty]).unwrap();
            assert!(out.iter().any(|a| a.edge == e.id && a.neighbour == e.dst));
            let inc = db.neighbours(e.dst, Direction::In, &[ty]).unwrap();
            assert!(inc.iter().any(|a| a.edge == e.id && a.neighbour == e.src));
        }
        db.close().unwrap();
    }
}

#[test]
fn machine_boot_and_version_come_from_the_identifier() {
    for (name, ..) in common::SAMPLES {
        let Some(path) = common::sample(name) else {
            return;
        };
        let exp = expected_from(&path);
        let (_dir, db, _) = import_alone(&path);
        let mut checked = 0;
        for (id, attrs) in &exp.vertex_attrs {
            let v = db.vertex_by_external(id).unwrap().unwrap();
            let num = |k: &str| -> Option<u64> {
                let j = attrs.get(k)?;
                j.as_u64().or_else(|| {
                    let s = j.as_str()?;
                    s.strip_prefix("cf:").unwrap_or(s).parse().ok()
                })
            };
            let machine = num("cf:machine_id");
            let boot = num("cf:boot_id").or_else(|| num("boot_id"));
            let version = num("cf:version").or_else(|| num("version"));
            if let (Some(m), Some(b), Some(ver)) = (machine, boot, version) {
                assert_eq!(v.placement.machine.map(u64::from), Some(m), "{id}");
                assert_eq!(v.placement.boot.map(u64::from), Some(b), "{id}");
                assert_eq!(v.placement.version.map(u64::from), Some(ver), "{id}");
                checked += 1;
            }
        }
        assert!(
            checked > 0,
            "{name}: no vertex carried machine/boot/version attributes"
        );
        db.close().unwrap();
    }
}

#[test]
fn cf_date_becomes_a_unix_timestamp() {
    let Some(path) = common::sample("v0.5.0-w3c-wget.log") else {
        return;
    };
    let (_dir, db, _) = import_alone(&path);
    // cf:date "2019:01:24T08:00:25" of this task; 2019-01-24T08:00:25Z = 1548316825 (checked
    // with Python's datetime).
    let v = db
        .vertex_by_external("cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=")
        .unwrap()
        .unwrap();
    assert_eq!(v.placement.time, Some(1_548_316_825));
    assert_eq!(v.placement.machine, Some(1_958_431_827));
    assert_eq!(v.placement.version, Some(2));
    db.close().unwrap();
}

#[test]
fn legacy_machine_description_becomes_a_machine_vertex() {
    let Some(path) = common::sample("v0.2.2-w3c-badlog.log") else {
        return;
    };
    let (_dir, db, _) = import_alone(&path);
    let m = db
        .vertex_by_external("635200317")
        .unwrap()
        .expect("machine vertex");
    assert_eq!(&*m.type_name, "machine");
    assert_eq!(m.placement.machine, Some(635_200_317));
    let stats = db.stats().unwrap();
    assert_eq!(stats.machines.len(), 1);
    assert_eq!(stats.machines[0].0, 635_200_317);
    db.close().unwrap();
}
