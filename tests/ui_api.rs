//! `provdb ui`'s JSON API against the command line: the five pinned query forms of
//! `tests/query_forms.rs` give exactly `provdb query --format json`'s output; errors carry the
//! CLI's message and place; vertices, alerts and machines; the access rule; live catch-up.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::ui::{encode, request, UiServer};
use common::{provdb, stdout_of};

const V2: &str = "AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=";

/// The five forms of `tests/query_forms.rs`, as written there.
fn pinned_forms() -> Vec<String> {
    vec![
        "() -[e:read]-> () | count".to_owned(),
        format!("(v {{id:'{V2}'}}) <-[*1..3]- (a) | dedup a | count"),
        format!("(v {{id:'{V2}'}}) -[*1..5]-> (d) | dedup d | return d.id, d.type"),
        "(p:path {pathname:'/usr/bin/wget'}) -[:named]-> (f) | return f.id, f.type".to_owned(),
        "(t:task) -[:clone|exec_task*1..]-> (c:task) | where t.pid = 3666 | dedup c | return c.pid"
            .to_owned(),
    ]
}

fn archive_of(dir: &Path, samples: &[&str]) -> Option<PathBuf> {
    let mut files = Vec::new();
    for s in samples {
        files.push(common::sample(s)?);
    }
    let db = dir.join("db");
    common::import(&db, &files);
    Some(db)
}

#[test]
fn pinned_forms_equal_the_cli_json() {
    let dir = tempfile::tempdir().unwrap();
    // Both W3C samples: forms 1-4 are about the wget one, form 5's process tree is in badlog.
    let samples = ["v0.5.0-w3c-wget.log", "v0.2.2-w3c-badlog.log"];
    let Some(db) = archive_of(dir.path(), &samples) else {
        return;
    };
    let ui = UiServer::start(&db, &[]);
    for q in pinned_forms() {
        let cli = provdb(&db)
            .args(["query", "--format", "json"])
            .arg(&q)
            .output()
            .unwrap();
        let cli_warnings: Vec<String> = String::from_utf8_lossy(&cli.stderr)
            .lines()
            .filter_map(|l| l.strip_prefix("warning: "))
            .map(str::to_owned)
            .collect();
        let cli = stdout_of(&cli);
        let api = ui.get(&format!("/api/query?q={}", encode(&q)));
        assert_eq!(api.status, 200, "{q}: {}", api.text());
        assert_eq!(api.header("content-type"), Some("application/json"));
        assert_eq!(api.text(), cli, "{q}");
        // Forms 1-4 match something in these samples (form 5's pid 3666 clones nothing:
        // an empty array, as the CLI prints it).
        let rows = api.json();
        assert_eq!(
            rows.as_array().unwrap().is_empty(),
            q.contains("3666"),
            "{q}"
        );
        let warnings: Vec<String> =
            serde_json::from_str(api.header("x-provdb-warnings").unwrap()).unwrap();
        assert_eq!(warnings, cli_warnings, "{q}");
    }
    // Form 1 against the samples themselves: their read relations.
    let reads: usize = samples
        .iter()
        .map(|s| {
            let log = common::read_w3c_log(&common::sample(s).unwrap());
            log.relations.values().filter(|(t, ..)| t == "read").count()
        })
        .sum();
    assert!(reads > 0);
    let api = ui.get(&format!(
        "/api/query?q={}",
        encode("() -[e:read]-> () | count")
    ));
    assert_eq!(api.json(), serde_json::json!([{ "count": reads }]));
}

#[test]
fn graph_view_holds_the_rows_and_their_subgraph() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = archive_of(dir.path(), &["v0.5.0-w3c-wget.log"]) else {
        return;
    };
    let ui = UiServer::start(&db, &[]);
    let q = "(p:path {pathname:'/usr/bin/wget'}) -[e:named]-> (f) | return p, e, f";
    let rows = ui.get(&format!("/api/query?q={}", encode(q))).json();
    let g = ui.get(&format!("/api/graph?q={}", encode(q))).json();
    assert_eq!(g["columns"], serde_json::json!(["p", "e", "f"]));
    let rows = rows.as_array().unwrap();
    assert_eq!(g["rows"].as_array().unwrap().len(), rows.len());
    // The path vertices (one per version) and the objects they name, one edge per row.
    let ids = |key: &str| -> std::collections::BTreeSet<String> {
        rows.iter()
            .map(|r| r[key]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (paths, named) = (ids("p"), ids("f"));
    assert_eq!(g["edges"].as_array().unwrap().len(), rows.len());
    let drawn: std::collections::BTreeSet<String> = g["vertices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(drawn, paths.union(&named).cloned().collect());
    for e in g["edges"].as_array().unwrap() {
        assert_eq!(e["type"], "named");
        assert!(named.contains(e["to"].as_str().unwrap()));
        assert!(paths.contains(e["from"].as_str().unwrap()));
    }
}

#[test]
fn visible_graph_exports_as_prov_json() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = archive_of(dir.path(), &["v0.5.0-w3c-wget.log"]) else {
        return;
    };
    let log = common::read_w3c_log(&common::sample("v0.5.0-w3c-wget.log").unwrap());
    let ui = UiServer::start(&db, &[]);
    // One vertex alone, and one relation of the log (its ends come with it).
    let (edge, (ty, from, to)) = log.relations.iter().next().unwrap();
    let body = serde_json::json!({ "vertices": [V2], "edges": [edge] }).to_string();
    let r = request(
        &ui.addr,
        "POST",
        "/api/export/prov-json",
        &[("Host", &ui.addr), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = r.json();
    let elements = |sections: &[&str]| -> std::collections::BTreeSet<String> {
        sections
            .iter()
            .filter_map(|s| doc.get(*s).and_then(|x| x.as_object()))
            .flat_map(|m| m.keys().map(|k| common::bare(k)))
            .collect()
    };
    let vertices = elements(&["activity", "entity", "agent"]);
    let expected: std::collections::BTreeSet<String> =
        [V2.to_owned(), from.clone(), to.clone()].into();
    assert_eq!(vertices, expected);
    let relations = elements(&[
        "used",
        "wasGeneratedBy",
        "wasInformedBy",
        "wasDerivedFrom",
        "wasAssociatedWith",
        "wasInfluencedBy",
    ]);
    assert_eq!(relations, [edge.clone()].into());
    assert!(doc.to_string().contains(ty.as_str()));
    // Not JSON, or ids that are not strings: 400.
    for bad in ["{", r#"{"vertices": [1]}"#, r#"{"edges": "x"}"#] {
        let r = request(
            &ui.addr,
            "POST",
            "/api/export/prov-json",
            &[("Host", &ui.addr)],
            bad.as_bytes(),
        );
        assert_eq!(r.status, 400, "{bad}");
    }
}

#[test]
fn errors_are_json_with_the_cli_message_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = archive_of(dir.path(), &["v0.5.0-w3c-wget.log"]) else {
        return;
    };
    let ui = UiServer::start(&db, &[]);
    for (q, line, column, help) in [
        ("(a) -[:read]-> (b) | limit x", 1, 28, None),
        ("(t:tsk) -[:clone]-> (c)", 1, 4, Some("task")),
        ("(a) -[:read]-> (b)\n| retrun a", 2, 3, Some("return")),
    ] {
        let cli = provdb(&db).args(["query", q]).output().unwrap();
        assert!(!cli.status.success());
        let cli_error = String::from_utf8_lossy(&cli.stderr);
        let api = ui.get(&format!("/api/query?q={}", encode(q)));
        assert_eq!(api.status, 400, "{q}");
        let e = api.json();
        assert_eq!(
            format!("error: {}\n", e["error"].as_str().unwrap()),
            cli_error,
            "{q}"
        );
        assert_eq!(e["line"], line, "{q}: {e}");
        assert_eq!(e["column"], column, "{q}: {e}");
        assert!(e["error"].as_str().unwrap().contains('^'));
        if let Some(word) = help {
            assert!(e["help"].as_str().unwrap().contains(word), "{q}: {e}");
        }
        // The page's view answers the same.
        let g = ui.get(&format!("/api/graph?q={}", encode(q)));
        assert_eq!(g.status, 400);
        assert_eq!(g.json()["error"], e["error"]);
    }
    assert_eq!(ui.get("/api/query").status, 400);
    let long = "x".repeat(20_000);
    let r = ui.get(&format!("/api/query?q={long}"));
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("over the limit"));
    assert_eq!(ui.get("/api/vertex/AAAA").status, 404);
    assert_eq!(ui.get("/api/alerts/x").status, 400);
    assert_eq!(ui.get("/api/alerts/99").status, 404);
    assert_eq!(ui.get("/api/alerts?severity=bad").status, 400);
    // The API is read-only: no route writes.
    let r = request(
        &ui.addr,
        "POST",
        "/api/query?q=x",
        &[("Host", &ui.addr)],
        b"",
    );
    assert_eq!(r.status, 405);
    // A body over the limit is refused from its declared length, before it is sent.
    let r = common::ui::request_declaring_length(&ui.addr, "/api/export/prov-json", 5 << 20);
    assert_eq!(r.status, 413);
}

#[test]
fn vertex_attributes_and_adjacent_edges_are_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = archive_of(dir.path(), &["v0.5.0-w3c-wget.log"]) else {
        return;
    };
    let log = common::read_w3c_log(&common::sample("v0.5.0-w3c-wget.log").unwrap());
    let vertices = &log.vertices;
    // How many relations touch each vertex (a relation from a vertex to itself twice: it is
    // listed as incoming and as outgoing).
    let mut touching: std::collections::HashMap<&str, usize> = Default::default();
    for (_, from, to) in log.relations.values() {
        *touching.entry(from).or_default() += 1;
        *touching.entry(to).or_default() += 1;
    }
    let ui = UiServer::start(&db, &[]);
    // V2, and a vertex whose id needs percent-encoding in a path ('/' or '+').
    let awkward = vertices
        .keys()
        .find(|id| id.contains('/') || id.contains('+'))
        .expect("some id holds / or +")
        .clone();
    for id in [V2.to_owned(), awkward] {
        let expected = &vertices[&id];
        let v = ui.get(&format!("/api/vertex/{}", encode(&id)));
        assert_eq!(v.status, 200, "{id}: {}", v.text());
        let v = v.json();
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["type"], expected["prov:type"]);
        let attrs = v["attributes"].as_object().unwrap();
        for (k, value) in expected {
            if k == "prov:type" {
                continue;
            }
            let bare = k.trim_start_matches("cf:");
            let got = attrs.get(k).or_else(|| attrs.get(bare));
            assert_eq!(got, Some(value), "{id} {k}");
        }
        assert_eq!(
            v["adjacent"].as_array().unwrap().len(),
            touching.get(id.as_str()).copied().unwrap_or(0),
            "{id}"
        );
        for a in v["adjacent"].as_array().unwrap() {
            let e = &a["edge"];
            let end = if a["direction"] == "out" {
                &e["from"]
            } else {
                &e["to"]
            };
            assert_eq!(end, id.as_str());
        }
        // `cf:` prefix accepted.
        assert_eq!(
            ui.get(&format!("/api/vertex/{}", encode(&format!("cf:{id}"))))
                .status,
            200
        );
    }
}

#[test]
fn alerts_and_machines_equal_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (db, truth) = common::scenario_archive(dir.path(), "download-exec");
    let ui = UiServer::start(&db, &[]);
    let cli: serde_json::Value = serde_json::from_str(&stdout_of(
        &provdb(&db)
            .args(["alerts", "--format", "json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let api = ui.get("/api/alerts").json();
    let list = api.as_array().unwrap();
    assert_eq!(list.len(), 1, "{api}");
    assert_eq!(list[0]["rule"], "download-exec");
    let mut without_extra = list[0].clone();
    let extra = without_extra.as_object_mut().unwrap();
    assert_eq!(extra.remove("count"), Some(serde_json::json!(1)));
    extra.remove("last_seen");
    assert_eq!(serde_json::Value::Array(vec![without_extra]), cli);
    assert_eq!(
        ui.get("/api/alerts?severity=critical").json(),
        serde_json::json!([])
    );
    assert_eq!(
        ui.get("/api/alerts?rule=download-exec")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // One alert with its path and neighbourhood: the truth's payload file is on the path.
    let id = list[0]["id"].as_u64().unwrap();
    let a = ui.get(&format!("/api/alerts/{id}")).json();
    let graph = &a["graph"];
    let on_path: Vec<&str> = graph["vertices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["on_path"] == true)
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(on_path.len(), list[0]["path"].as_array().unwrap().len());
    let payload = common::truth_vertex(&truth, "executable payload");
    assert!(on_path.contains(&payload));
    let all: Vec<&str> = graph["vertices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert!(all.len() > on_path.len(), "the neighbourhood adds vertices");
    for e in graph["edges"].as_array().unwrap() {
        assert!(all.contains(&e["from"].as_str().unwrap()));
        assert!(all.contains(&e["to"].as_str().unwrap()));
    }
    // Machines: the registry as `machines --json` lists it (import fills none; serve does).
    let cli: serde_json::Value = serde_json::from_str(&stdout_of(
        &provdb(&db).args(["machines", "--json"]).output().unwrap(),
    ))
    .unwrap();
    let m = ui.get("/api/machines").json();
    assert_eq!(m["machines"], cli);
    assert_eq!(m["quarantine_total"], 0);
}

#[test]
fn stops_on_sigterm_and_removes_its_secondary_folder() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    common::import(&db, &common::simulated_logs(dir.path(), 1, 2));
    let mut ui = UiServer::start(&db, &[]);
    assert_eq!(ui.get("/api/machines").status, 200);
    let secondary = std::env::temp_dir().join(format!("provdb-ui-{}", ui.pid()));
    assert!(secondary.is_dir(), "{}", secondary.display());
    let status = ui.stop().expect("exits on SIGTERM");
    assert!(status.success(), "{status}");
    assert!(!secondary.exists());
}

/// The address line is the signal that the server is up: SIGTERM sent the moment it appears
/// (before any request) must be handled, not kill the process with the default action.
#[test]
fn sigterm_right_after_the_address_line_is_a_graceful_stop() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    common::import(&db, &common::simulated_logs(dir.path(), 1, 2));
    for round in 0..5 {
        let mut ui = UiServer::start(&db, &[]);
        let secondary = std::env::temp_dir().join(format!("provdb-ui-{}", ui.pid()));
        let status = ui.stop().expect("exits on SIGTERM");
        assert!(status.success(), "round {round}: {status}");
        assert!(!secondary.exists(), "round {round}");
    }
}

#[test]
fn refuses_a_non_loopback_address_without_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let logs = common::simulated_logs(dir.path(), 1, 2);
    common::import(&db, &logs);
    let out = provdb(&db)
        .args(["ui", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing") && err.contains("--password-file"),
        "{err}"
    );
    assert!(err.contains("--allow-anonymous"), "{err}");
}

#[test]
fn password_file_and_host_checks() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    common::import(&db, &common::simulated_logs(dir.path(), 1, 2));
    // Loopback without a password: only loopback host names (no DNS rebinding).
    let ui = UiServer::start(&db, &[]);
    assert_eq!(ui.get("/api/machines").status, 200);
    let r = request(
        &ui.addr,
        "GET",
        "/api/machines",
        &[("Host", "attacker.example")],
        b"",
    );
    assert_eq!(r.status, 403);
    drop(ui);
    // With a password file: basic authentication.
    let passwd = dir.path().join("ui.passwd");
    std::fs::write(&passwd, "analyst:s3cret\n").unwrap();
    let ui = UiServer::start(&db, &["--password-file", passwd.to_str().unwrap()]);
    let r = ui.get("/api/machines");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    // base64("analyst:s3cret") and base64("analyst:wrong"), worked out by hand.
    for (creds, status) in [("YW5hbHlzdDpzM2NyZXQ=", 200), ("YW5hbHlzdDp3cm9uZw==", 401)] {
        let auth = format!("Basic {creds}");
        let r = request(
            &ui.addr,
            "GET",
            "/api/machines",
            &[("Host", &ui.addr), ("Authorization", &auth)],
            b"",
        );
        assert_eq!(r.status, status, "{creds}");
    }
}

#[test]
fn new_data_appears_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = archive_of(dir.path(), &["v0.5.0-w3c-wget.log"]) else {
        return;
    };
    let ui = UiServer::start(&db, &[]);
    let count = || {
        ui.get(&format!("/api/query?q={}", encode("() -[e]-> () | count")))
            .json()
    };
    assert_eq!(count(), serde_json::json!([{"count": 519}]));
    // Another sample imported while the page is served (the importer writes; ui follows).
    common::import(&db, &[common::sample("v0.2.2-w3c-badlog.log").unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if count() == serde_json::json!([{"count": 519 + 3020}]) {
            break;
        }
        assert!(Instant::now() < deadline, "still {}", count());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_page_gets_at_most_3000_vertices_of_a_large_result() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::simulated_archive(dir.path(), 4, 80);
    let total = common::stats_json(&db)["vertices"].as_u64().unwrap() as usize;
    assert!(total > 3000, "{total}");
    let ui = UiServer::start(&db, &[]);
    let g = ui
        .get(&format!("/api/graph?q={}", encode("(v) | return v.id")))
        .json();
    assert_eq!(g["rows"].as_array().unwrap().len(), total);
    assert_eq!(g["vertices"].as_array().unwrap().len(), 3000);
    assert_eq!(g["omitted_vertices"], total - 3000);
}

/// Reads `stream` until `needle` has come (or `within` has passed); what was read.
fn read_until(stream: &mut std::net::TcpStream, needle: &str, within: Duration) -> String {
    use std::io::Read as _;
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while Instant::now() < deadline && !String::from_utf8_lossy(&seen).contains(needle) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading the event stream: {e}"),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn events_announce_new_data_and_end_when_the_server_stops() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = archive_of(dir.path(), &["v0.5.0-w3c-wget.log"]) else {
        return;
    };
    let mut ui = UiServer::start(&db, &[]);
    let mut stream = std::net::TcpStream::connect(&ui.addr).unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        ui.addr
    )
    .unwrap();
    let head = read_until(&mut stream, "\r\n\r\n", Duration::from_secs(10));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    // Nothing changes: no event (the keep-alive comment comes every 15 s).
    let quiet = read_until(&mut stream, "event:", Duration::from_secs(3));
    assert!(!quiet.contains("event:"), "{quiet}");
    // Another sample imported while served: the next catch-up announces it.
    common::import(&db, &[common::sample("v0.2.2-w3c-badlog.log").unwrap()]);
    let announced = read_until(&mut stream, "\n\n", Duration::from_secs(20));
    assert!(announced.contains("event: change\ndata: "), "{announced:?}");
    // The page then sees the new data.
    assert_eq!(
        ui.get(&format!("/api/query?q={}", encode("() -[e]-> () | count")))
            .json(),
        serde_json::json!([{"count": 519 + 3020}])
    );
    // SIGTERM with the stream open: the server ends it and exits.
    let status = ui
        .stop()
        .expect("exits on SIGTERM with an event stream open");
    assert!(status.success(), "{status}");
}
