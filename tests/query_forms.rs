//! The query forms of issue 4 and the research file's section 6 on the shared CamFlow samples.
//! Every expected answer is computed here from the raw W3C JSON with serde_json and plain
//! breadth-first searches, independently of the executor.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::Path;

use provdb::query::Datum;
use provdb::Database;

const V2: &str = "AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=";

/// The graph as the W3C log states it.
#[derive(Default)]
struct Model {
    /// ext id -> (type, attributes)
    vertices: HashMap<String, (String, serde_json::Map<String, serde_json::Value>)>,
    /// ext id -> (type, sender, receiver, attributes)
    edges: HashMap<
        String,
        (
            String,
            String,
            String,
            serde_json::Map<String, serde_json::Value>,
        ),
    >,
}

fn bare(s: &str) -> String {
    s.strip_prefix("cf:").unwrap_or(s).to_owned()
}

impl Model {
    fn load(path: &Path) -> Model {
        let mut m = Model::default();
        let text = std::fs::read_to_string(path).expect("sample readable");
        for line in text.lines() {
            let Ok(serde_json::Value::Object(doc)) =
                serde_json::from_str::<serde_json::Value>(line)
            else {
                continue;
            };
            for (section, entries) in &doc {
                let Some(entries) = entries.as_object() else {
                    continue;
                };
                let ends = match section.as_str() {
                    "activity" | "entity" | "agent" => None,
                    "used" => Some(("prov:entity", "prov:activity")),
                    "wasGeneratedBy" => Some(("prov:activity", "prov:entity")),
                    "wasInformedBy" => Some(("prov:informant", "prov:informed")),
                    "wasDerivedFrom" => Some(("prov:usedEntity", "prov:generatedEntity")),
                    "wasAssociatedWith" => Some(("prov:agent", "prov:activity")),
                    "wasInfluencedBy" => Some(("prov:influencer", "prov:influencee")),
                    "relation" => Some(("cf:sender", "cf:receiver")),
                    _ => continue,
                };
                for (id, rec) in entries {
                    let Some(rec) = rec.as_object() else { continue };
                    let ty = rec
                        .get("prov:type")
                        .and_then(|t| t.as_str())
                        .unwrap_or("unknown")
                        .to_owned();
                    match ends {
                        None => {
                            m.vertices.insert(bare(id), (ty, rec.clone()));
                        }
                        Some((s, d)) => {
                            let (Some(s), Some(d)) = (
                                rec.get(s).and_then(|v| v.as_str()),
                                rec.get(d).and_then(|v| v.as_str()),
                            ) else {
                                continue;
                            };
                            m.edges
                                .insert(bare(id), (ty, bare(s), bare(d), rec.clone()));
                        }
                    }
                }
            }
        }
        m
    }

    fn vtype(&self, v: &str) -> Option<&str> {
        self.vertices.get(v).map(|(t, _)| t.as_str())
    }

    fn attr(&self, v: &str, key: &str) -> Option<&serde_json::Value> {
        self.vertices.get(v).and_then(|(_, a)| a.get(key))
    }

    /// Neighbours of `v`: `forward` follows sender -> receiver.
    fn adj(&self, v: &str, forward: Option<bool>, types: &[&str]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (id, (t, s, d, _)) in &self.edges {
            if !types.is_empty() && !types.contains(&t.as_str()) {
                continue;
            }
            if forward != Some(false) && s == v {
                out.push((id.clone(), d.clone()));
            }
            if forward != Some(true) && d == v {
                out.push((id.clone(), s.clone()));
            }
        }
        out
    }

    /// Vertices reachable from `start` in 1..=max hops (start excluded).
    fn reach(
        &self,
        start: &str,
        forward: Option<bool>,
        types: &[&str],
        max: usize,
    ) -> BTreeSet<String> {
        let mut seen: HashSet<String> = HashSet::from([start.to_owned()]);
        let mut out = BTreeSet::new();
        let mut queue = VecDeque::from([(start.to_owned(), 0usize)]);
        while let Some((v, d)) = queue.pop_front() {
            if d == max {
                continue;
            }
            for (_, w) in self.adj(&v, forward, types) {
                if seen.insert(w.clone()) {
                    out.insert(w.clone());
                    queue.push_back((w, d + 1));
                }
            }
        }
        out
    }

    fn pid(&self, v: &str) -> Option<i64> {
        self.attr(v, "cf:pid")
            .and_then(|p| p.as_i64().or_else(|| p.as_str()?.parse().ok()))
    }
}

fn open(sample: &str) -> Option<(tempfile::TempDir, Database, Model)> {
    let path = common::sample(sample)?;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path()).expect("open");
    db.import_files(std::slice::from_ref(&path), &mut |_| {})
        .expect("import");
    Some((dir, db, Model::load(&path)))
}

fn column(db: &Database, q: &str, col: usize) -> Vec<Datum> {
    let r = db.query(q).unwrap_or_else(|e| panic!("{q}\n{e}"));
    assert!(r.warnings.is_empty(), "{q}: {:?}", r.warnings);
    r.rows.iter().map(|row| row.values[col].clone()).collect()
}

fn count(db: &Database, q: &str) -> i64 {
    match column(db, q, 0).as_slice() {
        [Datum::Int(n)] => *n,
        other => panic!("{q}: {other:?}"),
    }
}

fn strings(v: Vec<Datum>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().map(|d| d.to_string()).collect();
    v.sort();
    v
}

#[test]
fn form1_count_of_read_edges() {
    for sample in ["v0.5.0-w3c-wget.log", "v0.2.2-w3c-badlog.log"] {
        let Some((_d, db, m)) = open(sample) else {
            return;
        };
        let expected = m.edges.values().filter(|(t, ..)| t == "read").count() as i64;
        assert!(expected > 0);
        assert_eq!(
            count(&db, "() -[e:read]-> () | count"),
            expected,
            "{sample}"
        );
        // The same count without the index shortcut (a filter forces the traversal).
        assert_eq!(
            count(&db, "() -[e:read where e.type = 'read']-> () | count"),
            expected,
            "{sample}"
        );
    }
}

#[test]
fn form2_backward_lineage_count() {
    let Some((_d, db, m)) = open("v0.5.0-w3c-wget.log") else {
        return;
    };
    let expected = m.reach(V2, Some(false), &[], 3).len() as i64;
    assert!(expected > 0);
    let q = format!("(v {{id:'{V2}'}}) <-[*1..3]- (a) | dedup a | count");
    assert_eq!(count(&db, &q), expected);
    // `cf:` prefix accepted.
    let q = format!("(v {{id:'cf:{V2}'}}) <-[*1..3]- (a) | dedup a | count");
    assert_eq!(count(&db, &q), expected);
}

#[test]
fn form3_forward_descendants() {
    let Some((_d, db, m)) = open("v0.5.0-w3c-wget.log") else {
        return;
    };
    let reach = m.reach(V2, Some(true), &[], 5);
    let mut expected: Vec<String> = reach
        .iter()
        .map(|v| format!("{v}|{}", m.vtype(v).unwrap_or("unknown")))
        .collect();
    expected.sort();
    let q = format!("(v {{id:'{V2}'}}) -[*1..5]-> (d) | dedup d | return d.id, d.type");
    let r = db.query(&q).expect("query");
    assert_eq!(r.columns, ["d.id", "d.type"]);
    let mut got: Vec<String> = r
        .rows
        .iter()
        .map(|row| format!("{}|{}", row.values[0], row.values[1]))
        .collect();
    got.sort();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
}

#[test]
fn form4_path_named_objects() {
    let Some((_d, db, m)) = open("v0.5.0-w3c-wget.log") else {
        return;
    };
    let mut expected = Vec::new();
    for (t, s, d, _) in m.edges.values() {
        if t == "named"
            && m.vtype(s) == Some("path")
            && m.attr(s, "cf:pathname").and_then(|p| p.as_str()) == Some("/usr/bin/wget")
        {
            expected.push(format!("{d}|{}", m.vtype(d).unwrap_or("unknown")));
        }
    }
    expected.sort();
    assert!(!expected.is_empty());
    let r = db
        .query("(p:path {pathname:'/usr/bin/wget'}) -[:named]-> (f) | return f.id, f.type")
        .expect("query");
    let mut got: Vec<String> = r
        .rows
        .iter()
        .map(|row| format!("{}|{}", row.values[0], row.values[1]))
        .collect();
    got.sort();
    assert_eq!(got, expected);
}

fn expected_descendant_pids(m: &Model, pid: i64) -> Vec<String> {
    let mut cs = BTreeSet::new();
    for v in m.vertices.keys() {
        if m.vtype(v) == Some("task") && m.pid(v) == Some(pid) {
            for c in m.reach(v, Some(true), &["clone", "exec_task"], usize::MAX) {
                if m.vtype(&c) == Some("task") {
                    cs.insert(c);
                }
            }
        }
    }
    let mut pids: Vec<String> = cs
        .iter()
        .map(|c| {
            m.pid(c)
                .map_or_else(|| "null".to_owned(), |p| p.to_string())
        })
        .collect();
    pids.sort();
    pids
}

#[test]
fn form5_process_tree() {
    for (sample, pids) in [
        ("v0.5.0-w3c-wget.log", vec![3666]),
        ("v0.2.2-w3c-badlog.log", vec![3666, 5866, 5730, 1]),
    ] {
        let Some((_d, db, m)) = open(sample) else {
            return;
        };
        for pid in pids {
            let q = format!(
                "(t:task) -[:clone|exec_task*1..]-> (c:task) | where t.pid = {pid} | dedup c | return c.pid"
            );
            let r = db.query(&q).unwrap_or_else(|e| panic!("{q}\n{e}"));
            // Only "no such type here" notes, never a guard.
            assert!(
                r.warnings
                    .iter()
                    .all(|w| w.guard == provdb::query::Guard::AbsentType),
                "{:?}",
                r.warnings
            );
            let got = strings(r.rows.iter().map(|row| row.values[0].clone()).collect());
            assert_eq!(got, expected_descendant_pids(&m, pid), "{sample} pid {pid}");
        }
    }
}

#[test]
fn form5_has_descendants_on_badlog() {
    let Some((_d, db, m)) = open("v0.2.2-w3c-badlog.log") else {
        return;
    };
    // A pid whose tree is not empty, chosen from the JSON.
    let pid = m
        .vertices
        .keys()
        .filter(|v| m.vtype(v) == Some("task"))
        .filter_map(|v| m.pid(v))
        .find(|p| !expected_descendant_pids(&m, *p).is_empty())
        .expect("some task clones another");
    let q = format!("(t:task {{pid:{pid}}}) -[:clone*1..]-> (c:task) | dedup c | return c.pid");
    let got = strings(column(&db, &q, 0));
    let expected = {
        let mut cs = BTreeSet::new();
        for v in m.vertices.keys() {
            if m.vtype(v) == Some("task") && m.pid(v) == Some(pid) {
                cs.extend(
                    m.reach(v, Some(true), &["clone"], usize::MAX)
                        .into_iter()
                        .filter(|c| m.vtype(c) == Some("task")),
                );
            }
        }
        let mut p: Vec<String> = cs
            .iter()
            .map(|c| m.pid(c).map_or("null".into(), |p| p.to_string()))
            .collect();
        p.sort();
        p
    };
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
}

#[test]
fn research_q2_q9_q12_q14() {
    let Some((_d, db, m)) = open("v0.5.0-w3c-wget.log") else {
        return;
    };
    let tasks: HashSet<&String> = m
        .vertices
        .keys()
        .filter(|v| m.vtype(v) == Some("task") && m.pid(v) == Some(3666))
        .collect();
    // Q2: every edge touching the process, either way (an edge between two of its versions
    // counts from both ends).
    let mut q2 = 0;
    for (_, s, d, _) in m.edges.values() {
        q2 += usize::from(tasks.contains(s)) + usize::from(tasks.contains(d));
    }
    let r = db
        .query("(p:task {pid:3666}) -[e]- (o) | order by e.time | return e.type, o.type, o.name, e.time")
        .expect("Q2");
    assert_eq!(r.rows.len(), q2);
    let times: Vec<&Datum> = r.rows.iter().map(|row| &row.values[3]).collect();
    assert!(times
        .windows(2)
        .all(|w| w[0].compare(w[1]) != Some(std::cmp::Ordering::Greater)));
    // Q9: distinct files read by the process.
    let files: HashSet<&String> = m
        .edges
        .values()
        .filter(|(t, s, d, _)| t == "read" && tasks.contains(d) && m.vtype(s) == Some("file"))
        .map(|(_, s, ..)| s)
        .collect();
    assert_eq!(
        count(
            &db,
            "(f:file) -[:read]-> (p:task {pid:3666}) | dedup f | count"
        ),
        files.len() as i64
    );
    // Q12: blocked flows.
    let blocked = m
        .edges
        .values()
        .filter(|(.., a)| matches!(a.get("cf:allowed"), Some(v) if v == "false" || v == false))
        .count();
    let r = db
        .query("() -[e where e.allowed = false]-> () | return e.type, e.time")
        .expect("Q12");
    assert_eq!(r.rows.len(), blocked);
    // Q14: the sample is from 2019, nothing in the last 24 hours.
    let r = db
        .query("(p:task) -[e:write]-> (q) | during last 24h | return p.pid, p.name, e.time")
        .expect("Q14");
    assert!(r.rows.is_empty());
}

#[test]
fn research_q1_q4_q8_q10_q11_q16_run() {
    let Some((_d, db, _m)) = open("v0.5.0-w3c-wget.log") else {
        return;
    };
    for q in [
        "(f:file {path:'/usr/bin/wget'}) <-[*..10]- (a) | dedup a | return a.type, a.name, a.time",
        "(p:task {pid:3666}) -[:clone_mem|exec_task*]-> (c) | return c.type, c.name, c.time",
        "(f:file {path:'/usr/bin/wget'}) -[*..6 causal]-> (o:file) | dedup o | return o.path",
        "(l:file where path ~ '^/usr/lib64/') -[:mmap_exec_private]-> (p) | return distinct p.type, l.path",
        "(a:task {pid:3666}) -[*..20]- (b:file {path:'/etc/ld.so.cache'}) | shortest | path",
        "(a where name ~ 'wget') -[*..2]- (b:socket) | as dot",
        "(s:socket) -[r:receive|receive_msg*1..3]-> (p:task) | return distinct s.name, p.pid",
        "(p:task) -[e:connect]-> (s) | during @'2019-01-24T00:00'..@'2019-01-25T00:00' | return p.pid, s.type, e.time",
    ] {
        let r = db.query(q).unwrap_or_else(|e| panic!("{q}\n{e}"));
        assert!(r.warnings.is_empty(), "{q}: {:?}", r.warnings);
    }
    // Q11: the shortest link has the BFS distance.
    let r = db
        .query("(a:task {pid:3666}) -[*..20]- (b:file {path:'/usr/bin/wget'}) | shortest | path")
        .expect("Q11");
    assert_eq!(r.rows.len(), 1);
    assert!(r.rows[0].values[0].to_string().contains("/usr/bin/wget"));
}

#[test]
fn names_resolve_through_named_edges() {
    let Some((_d, db, m)) = open("v0.5.0-w3c-wget.log") else {
        return;
    };
    // Files named /usr/bin/wget directly by a path vertex.
    let direct: BTreeSet<String> = m
        .edges
        .values()
        .filter(|(t, s, d, _)| {
            t == "named"
                && m.vtype(d) == Some("file")
                && m.attr(s, "cf:pathname").and_then(|p| p.as_str()) == Some("/usr/bin/wget")
        })
        .map(|(_, _, d, _)| d.clone())
        .collect();
    assert!(!direct.is_empty());
    let got: BTreeSet<String> = column(&db, "(f:file {name:'/usr/bin/wget'}) | return f.id", 0)
        .into_iter()
        .map(|d| d.to_string())
        .collect();
    assert!(direct.is_subset(&got), "{direct:?} vs {got:?}");
}

#[test]
fn json_keys_are_the_return_items_as_written() {
    let Some((dir, db, _m)) = open("v0.5.0-w3c-wget.log") else {
        return;
    };
    db.close().expect("close");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--db")
        .arg(dir.path())
        .args(["query", "--format", "json"])
        .arg(format!(
            "(v {{id:'{V2}'}}) -[*1..5]-> (d) | dedup d | return d.id, d.type"
        ))
        .output()
        .expect("run provdb");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON array");
    let rows = v.as_array().expect("array");
    assert!(!rows.is_empty());
    for r in rows {
        let keys: Vec<&String> = r.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["d.id", "d.type"]);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--db")
        .arg(dir.path())
        .args(["query", "--format", "json", "() -[e:read]-> () | count"])
        .output()
        .expect("run provdb");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(v[0]["count"].as_i64().is_some_and(|n| n > 0));
    // csv and dot
    for (fmt, needle) in [("csv", "d.id,d.type"), ("dot", "digraph")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_provdb"))
            .arg("--db")
            .arg(dir.path())
            .args(["query", "--format", fmt])
            .arg(format!(
                "(v {{id:'{V2}'}}) -[*1..5]-> (d) | dedup d | return d.id, d.type"
            ))
            .output()
            .expect("run provdb");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(needle),
            "{fmt}"
        );
    }
}
