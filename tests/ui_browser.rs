//! `provdb ui` in a real browser: headless Chromium driven by selenium
//! (`tests/browser/ui_page.py`). The page opened with `/?q=` on the wget sample shows the
//! expected rows and vertices; a vertex clicked shows its attributes and, expanded, its
//! ancestors from the log; an alert of a simulated scenario opens with its causal path; while
//! `serve` ingests a simulated fleet, machines and alerts appear without a reload, and the
//! alert list's filters (rule, severity, machine) list what `provdb alerts` lists.
//! Screenshots of every step are kept under the test's target tmp dir
//! (`target/.../tmp/ui-screenshots/`).
//!
//! Needs `chromium`, `chromium-driver` and Python's `selenium` (scripts/test.sh installs
//! them); without them it prints SKIPPED, except under CI=true where it fails.

mod common;
mod mqtt_support;

use std::collections::BTreeSet;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::ui::UiServer;
use common::{provdb, stdout_of};
use mqtt_support::{free_port, ServeProcess};

fn browser_available() -> bool {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .any(|p| Path::new(p).exists());
    let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .any(|p| Path::new(p).exists());
    if !(chromium && driver) {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("CI=true but chromium or chromium-driver is missing (scripts/test.sh installs them)");
        }
        eprintln!("SKIPPED: chromium and chromium-driver are not installed");
        return false;
    }
    common::python_has("selenium")
}

/// The query step, its expectations worked out from the log.
fn query_step(base: &str, sample: &Path) -> serde_json::Value {
    let log = common::read_w3c_log(sample);
    let wget_paths: BTreeSet<&String> = log
        .vertices
        .iter()
        .filter(|(_, a)| a["prov:type"] == "path" && a["cf:pathname"] == "/usr/bin/wget")
        .map(|(id, _)| id)
        .collect();
    let named: Vec<&(String, String, String)> = log
        .relations
        .values()
        .filter(|(t, s, _)| t == "named" && wget_paths.contains(s))
        .collect();
    let objects: BTreeSet<&String> = named.iter().map(|(_, _, d)| d).collect();
    // Each edge drawn is labelled with its type and its time of day (CamFlow's `cf:date`,
    // `2019:01:24T08:00:24`, is UTC).
    let mut edge_labels: Vec<String> = log
        .relations
        .iter()
        .filter(|(_, (t, s, _))| t == "named" && wget_paths.contains(s))
        .map(|(id, (t, _, _))| {
            let date = log.relation_attributes[id]["cf:date"]
                .as_str()
                .expect("cf:date");
            format!("{t} {}", &date[date.len() - 8..])
        })
        .collect();
    edge_labels.sort();
    let namers: BTreeSet<&String> = named.iter().map(|(_, s, _)| s).collect();
    assert!(!objects.is_empty());
    // Click the first named object; its ancestors are the senders of its relations.
    let click = objects.iter().next().unwrap().to_string();
    let mut ancestors: BTreeSet<String> = log
        .relations
        .values()
        .filter(|(_, _, d)| *d == click)
        .map(|(_, s, _)| s.clone())
        .collect();
    ancestors.insert(click.clone());
    let attribute = log.vertices[&click]
        .iter()
        .find(|(k, v)| k.starts_with("cf:") && *k != "cf:id" && v.is_string())
        .map(|(_, v)| v.as_str().unwrap().to_owned())
        .expect("an attribute");
    serde_json::json!({
        "kind": "query",
        "base": base,
        "query": "(p:path {pathname:'/usr/bin/wget'}) -[:named]-> (f) | return f.id, f.type",
        "rows": named.len(),
        "vertices": objects.len() + namers.len(),
        "click": click,
        "attribute": attribute,
        "ancestors": ancestors,
        "edge_labels": edge_labels,
    })
}

/// A filter of the alert list: as the page's controls take it, as `provdb alerts` options, and
/// as a predicate on the unfiltered list.
struct FilterCase<'a> {
    filter: serde_json::Value,
    options: Vec<&'a str>,
    keep: Box<dyn Fn(&serde_json::Value) -> bool + 'a>,
}

/// Filters of the alert list and the alerts each must list: the ids `provdb alerts` prints
/// with the same options, checked here against the unfiltered list filtered by hand.
fn alert_filters(db: &Path) -> serde_json::Value {
    let listed = |options: &[&str]| -> Vec<serde_json::Value> {
        let out = stdout_of(
            &provdb(db)
                .args(["alerts", "--format", "json"])
                .args(options)
                .output()
                .unwrap(),
        );
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let all = listed(&[]);
    let severities = ["low", "medium", "high", "critical"];
    let rank = |a: &serde_json::Value| {
        severities
            .iter()
            .position(|s| a["severity"] == *s)
            .expect("a known severity")
    };
    let first = &all[0];
    let rule = first["rule"].as_str().unwrap().to_owned();
    let machine = first["machine"].as_u64().unwrap();
    let m = machine.to_string();
    let cases = [
        FilterCase {
            filter: serde_json::json!({ "rule": rule }),
            options: vec!["--rule", &rule],
            keep: Box::new(|a| a["rule"] == *rule),
        },
        FilterCase {
            filter: serde_json::json!({ "severity": "critical" }),
            options: vec!["--severity", "critical"],
            keep: Box::new(|a| rank(a) >= 3),
        },
        FilterCase {
            filter: serde_json::json!({ "machine": m }),
            options: vec!["--machine", &m],
            keep: Box::new(|a| a["machine"].as_u64() == Some(machine)),
        },
        // All three at once (an empty list when the rule's alerts are below critical).
        FilterCase {
            filter: serde_json::json!({ "rule": rule, "machine": m, "severity": "critical" }),
            options: vec!["--rule", &rule, "--machine", &m, "--severity", "critical"],
            keep: Box::new(|a| {
                a["rule"] == *rule && a["machine"].as_u64() == Some(machine) && rank(a) >= 3
            }),
        },
    ];
    let mut filters = Vec::new();
    for FilterCase {
        filter,
        options,
        keep,
    } in cases
    {
        let ids: Vec<u64> = listed(&options)
            .iter()
            .map(|a| a["id"].as_u64().unwrap())
            .collect();
        let by_hand: Vec<u64> = all
            .iter()
            .filter(|a| keep(a))
            .map(|a| a["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, by_hand, "{filter}");
        let combined = filter.as_object().is_some_and(|f| f.len() > 1);
        assert!(
            (combined || !ids.is_empty()) && ids.len() < all.len(),
            "{filter}: {} of {}",
            ids.len(),
            all.len()
        );
        filters.push(serde_json::json!({ "filter": filter, "ids": ids }));
    }
    serde_json::Value::Array(filters)
}

/// Runs the script on `plan`; on its `READY` line, `on_ready` runs and its answer goes to the
/// script's stdin as one line.
fn run_browser(
    plan: &serde_json::Value,
    shots: &Path,
    mut on_ready: impl FnMut() -> String,
) -> String {
    let plan_file = shots.join("plan.json");
    std::fs::create_dir_all(shots).unwrap();
    std::fs::write(&plan_file, serde_json::to_string_pretty(plan).unwrap()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/ui_page.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(&plan_file)
        .stdout(Stdio::piped())
        .stdin(Stdio::piped())
        .spawn()
        .expect("run python3");
    let mut stdin = child.stdin.take().unwrap();
    let mut transcript = String::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        eprintln!("[browser] {line}");
        if line == "READY" {
            let answer = on_ready();
            writeln!(stdin, "{answer}").unwrap();
            stdin.flush().unwrap();
        }
        transcript.push_str(&line);
        transcript.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "the browser test failed:\n{transcript}");
    assert!(transcript.contains("\nOK\n"), "{transcript}");
    transcript
}

#[test]
fn the_page_in_headless_chromium() {
    if !browser_available() {
        return;
    }
    let Some(sample) = common::sample("v0.5.0-w3c-wget.log") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    let _ = std::fs::remove_dir_all(&shots);

    // An archive of the real sample.
    let sample_db = dir.path().join("sample-db");
    common::import(&sample_db, std::slice::from_ref(&sample));
    let sample_ui = UiServer::start(&sample_db, &[]);

    // An archive of one attack scenario; its alert's path as the command line prints it.
    let (scenario_db, _truth) = common::scenario_archive(dir.path(), "download-exec");
    let alerts: serde_json::Value = serde_json::from_str(&stdout_of(
        &provdb(&scenario_db)
            .args(["alerts", "--format", "json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let path: Vec<&str> = alerts[0]["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    let scenario_ui = UiServer::start(&scenario_db, &[]);

    // A served archive, empty until the fleet is published (after the page is open).
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let served_db = dir.path().join("served-db");
    let serve = ServeProcess::start(&served_db, &["--listen", &listen], &[]);
    let live_ui = UiServer::start(&served_db, &[]);

    let plan = serde_json::json!({
        "screenshots": shots,
        "steps": [
            query_step(&format!("http://{}", sample_ui.addr), &sample),
            {
                "kind": "alert",
                "base": format!("http://{}", scenario_ui.addr),
                "rule": "download-exec",
                "path": path,
            },
            { "kind": "live", "base": format!("http://{}", live_ui.addr) },
        ],
    });
    let broker = format!("mqtt://{listen}");
    let transcript = run_browser(&plan, &shots, || {
        // Every scenario, each on its own machine (acknowledged, so durable, once this returns).
        stdout_of(
            &Command::new(env!("CARGO_BIN_EXE_provdb"))
                .args([
                    "simulate",
                    "--scenario",
                    "all",
                    "--documents",
                    "2",
                    "--broker",
                ])
                .arg(&broker)
                .output()
                .unwrap(),
        );
        let count = |args: &[&str]| {
            let out = stdout_of(&provdb(&served_db).args(args).output().unwrap());
            serde_json::from_str::<serde_json::Value>(&out)
                .unwrap()
                .as_array()
                .unwrap()
                .len()
        };
        let machines = count(&["machines", "--json"]);
        let alerts = count(&["alerts", "--format", "json"]);
        assert_eq!(machines, 12, "--scenario all: twelve machines");
        assert!(alerts >= 12, "each scenario raises its own alert: {alerts}");
        serde_json::json!({
            "machines": machines,
            "alerts": alerts,
            "filters": alert_filters(&served_db),
        })
        .to_string()
    });
    drop(serve);
    for name in [
        "1-query",
        "2-vertex",
        "3-expanded",
        "4-alerts",
        "5-alert-path",
        "7-live-after",
        "8-alert-filter-3",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}");
    }
    eprintln!("{transcript}");
}
