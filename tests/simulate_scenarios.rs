//! `provdb simulate --scenario`: every attack scenario imports cleanly and its ground truth
//! is in the archive as stated (vertices with their types, edges with their types between
//! the stated vertices in information-flow direction, times that never decrease), among
//! benign activity of the same machine; `all` uses distinct machines; names are checked.

mod common;
mod mqtt_support;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{provdb, stats_json, stdout_of};
use provdb::Database;
use serde_json::Value;

const SCENARIOS: [&str; 12] = [
    "exfiltration",
    "download-exec",
    "webshell",
    "reverse-shell",
    "privilege-escalation",
    "tmp-exec",
    "log-tampering",
    "kernel-module",
    "persistence",
    "fileless",
    "credential-hunt",
    "sensitive-link",
];

fn simulate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("simulate")
        .args(args)
        .output()
        .unwrap()
}

/// The truth files of a scenario folder, by scenario name.
fn truths(dir: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains("truth") {
            let truth: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let scenario = truth["scenario"].as_str().unwrap().to_owned();
            assert_eq!(name, format!("truth-{scenario}.json"));
            out.insert(scenario, truth);
        }
    }
    out
}

/// Imports one machine's log into a fresh archive; the import must reject nothing.
fn import_fresh(db: &Path, log: &Path) {
    let out = provdb(db).args(["import"]).arg(log).output().unwrap();
    let text = stdout_of(&out);
    assert!(
        text.contains("rejected documents: 0"),
        "{}: {text}",
        log.display()
    );
}

/// Checks the truth against an archive: every vertex and edge, with its type, endpoints and
/// machine; edge times never decrease.
fn check_chain(db: &Database, truth: &Value) {
    let name = truth["scenario"].as_str().unwrap();
    let machine = truth["machine"].as_u64().unwrap() as u32;
    let vertices = truth["vertices"].as_array().unwrap();
    let edges = truth["edges"].as_array().unwrap();
    assert!(vertices.len() >= 4, "{name}: {} vertices", vertices.len());
    assert!(edges.len() >= 4, "{name}: {} edges", edges.len());
    for v in vertices {
        let id = v["id"].as_str().unwrap();
        let stored = db
            .vertex_by_external(id)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: vertex {} ({id}) missing", v["role"]));
        assert!(!stored.stub, "{name}: vertex {} is only a stub", v["role"]);
        assert_eq!(&*stored.type_name, v["type"].as_str().unwrap(), "{name}");
        assert!(!v["role"].as_str().unwrap().is_empty());
        // Packets carry no machine in their identifier; every other vertex is this machine's.
        if stored.type_name.as_ref() != "packet" {
            assert_eq!(stored.placement.machine, Some(machine), "{name}: {v}");
        }
    }
    let mut last_time = i64::MIN;
    for e in edges {
        let id = e["id"].as_str().unwrap();
        let stored = db
            .edge_by_external(id)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: edge {e} missing"));
        assert_eq!(&*stored.type_name, e["type"].as_str().unwrap(), "{name}");
        assert_eq!(stored.placement.machine, Some(machine), "{name}");
        for (end, stored_end) in [("from", stored.src), ("to", stored.dst)] {
            let want = db
                .vertex_by_external(e[end].as_str().unwrap())
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: endpoint {end} of {e} missing"));
            assert_eq!(want.id, stored_end, "{name}: {end} of {e}");
        }
        // The same edge through the query language, between the stated vertices.
        let query = format!(
            "(a {{id:'{}'}}) -[e:{}]-> (b {{id:'{}'}}) | return e.id",
            e["from"].as_str().unwrap(),
            e["type"].as_str().unwrap(),
            e["to"].as_str().unwrap()
        );
        let result = db.query(&query).unwrap();
        let ids: Vec<String> = (0..result.rows.len())
            .map(|row| result.get(row, "e.id").unwrap().to_string())
            .collect();
        assert!(ids.contains(&id.to_owned()), "{name}: {query} gave {ids:?}");
        let time = stored.placement.time.expect("edges carry cf:date");
        assert!(time >= last_time, "{name}: time goes back at {e}");
        last_time = time;
    }
    // Every truth vertex is an endpoint of a truth edge: the chain is connected to its parts.
    let endpoints: HashSet<&str> = edges
        .iter()
        .flat_map(|e| [e["from"].as_str().unwrap(), e["to"].as_str().unwrap()])
        .collect();
    for v in vertices {
        assert!(endpoints.contains(v["id"].as_str().unwrap()), "{name}: {v}");
    }
}

/// [`check_chain`] on an archive of one machine, and benign activity around the attack.
fn check_truth(db_path: &Path, truth: &Value) {
    let name = truth["scenario"].as_str().unwrap();
    let machine = truth["machine"].as_u64().unwrap() as u32;
    let vertices = truth["vertices"].as_array().unwrap();
    check_chain(&Database::open_read_only(db_path).unwrap(), truth);
    // Benign background of the same machine: far more than the attack.
    let stats = stats_json(db_path);
    let stored_vertices = stats["vertices"].as_u64().unwrap();
    assert!(
        stored_vertices > 5 * vertices.len() as u64,
        "{name}: {stored_vertices} vertices for {} in the truth",
        vertices.len()
    );
    let stored_machines = stats["machines"].as_object().unwrap();
    assert_eq!(
        stored_machines.keys().collect::<Vec<_>>(),
        [&machine.to_string()],
        "{name}"
    );
}

/// `--scenario all`: twelve truths on twelve distinct machines; each machine's log imports
/// into a fresh archive with nothing rejected and holds its attack as the truth says.
#[test]
fn every_scenario_imports_and_holds_its_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("all");
    let out = simulate(&["--scenario", "all", "--seed", "3", "--documents", "6"]);
    assert!(
        !out.status.success(),
        "--scenario without --out or --broker"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_provdb"))
        .args([
            "simulate",
            "--scenario",
            "all",
            "--seed",
            "3",
            "--documents",
            "6",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    stdout_of(&out);
    let truths = truths(&out_dir);
    assert_eq!(
        truths.keys().map(String::as_str).collect::<HashSet<_>>(),
        SCENARIOS.into_iter().collect::<HashSet<_>>()
    );
    let machines: HashSet<u64> = truths
        .values()
        .map(|t| t["machine"].as_u64().unwrap())
        .collect();
    assert_eq!(machines.len(), 12, "distinct machines: {machines:?}");
    for (name, truth) in &truths {
        let log: PathBuf = out_dir.join(format!("machine-{}.log", truth["machine"]));
        assert!(log.is_file(), "{name}: {}", log.display());
        let db = dir.path().join(format!("db-{name}"));
        import_fresh(&db, &log);
        check_truth(&db, truth);
    }
}

/// One scenario alone: deterministic for a seed, another seed another machine; the
/// download's executable version carries the exec mode the chmod gave it.
#[test]
fn one_scenario_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: &str, name: &str| {
        let out_dir = dir.path().join(name);
        stdout_of(&simulate(&[
            "--scenario",
            "download-exec",
            "--seed",
            seed,
            "--out",
            out_dir.to_str().unwrap(),
        ]));
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let bytes = std::fs::read(&p).unwrap();
                (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
            })
            .collect();
        files.sort();
        (out_dir, files)
    };
    let (out_dir, a) = run("11", "a");
    let (_, b) = run("11", "b");
    let (_, c) = run("12", "c");
    assert_eq!(a, b);
    assert_eq!(a.len(), 2, "one log and one truth");
    assert_ne!(a, c);
    let truth = &truths(&out_dir)["download-exec"];
    let log = out_dir.join(format!("machine-{}.log", truth["machine"]));
    let db = dir.path().join("db");
    import_fresh(&db, &log);
    check_truth(&db, truth);
    let archive = Database::open_read_only(&db).unwrap();
    let payload = common::truth_vertex(truth, "executable payload");
    let v = archive.vertex_by_external(payload).unwrap().unwrap();
    let mode = provdb_storage::find_attr(&v.attrs, "cf:mode").and_then(|m| m.as_str());
    assert_eq!(mode, Some("0x81ed"));
}

/// An unknown name fails and lists the valid ones; `--help` documents the option.
#[test]
fn unknown_scenario_lists_the_valid_names_and_help_documents_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = simulate(&[
        "--scenario",
        "rootkit",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown scenario 'rootkit'"), "{err}");
    for name in SCENARIOS {
        assert!(err.contains(name), "{name} missing from: {err}");
    }
    let help = String::from_utf8_lossy(&simulate(&["--help"]).stdout).into_owned();
    assert!(help.contains("--scenario"), "{help}");
    for name in SCENARIOS {
        assert!(help.contains(name), "{name} missing from --help");
    }
}

/// `--broker`: the documents are published as camflowd would (to provdb's embedded listener
/// here), the truths printed on stdout; what the service stored holds the chain.
#[test]
fn a_scenario_published_to_a_broker_is_stored_with_its_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let port = mqtt_support::free_port();
    let config = mqtt_support::test_config(
        provdb::ingest::IngestConfig::embedded(format!("127.0.0.1:{port}").parse().unwrap()),
        "scenario-broker",
    );
    let service =
        mqtt_support::Service::start(Database::open(tmp.path().join("db")).unwrap(), config);
    // QoS 1: provdb acknowledges only what is durable, so the publisher's exit means stored.
    let out = stdout_of(&simulate(&[
        "--scenario",
        "reverse-shell",
        "--seed",
        "4",
        "--broker",
        &format!("mqtt://127.0.0.1:{port}"),
    ]));
    let truths: Value = serde_json::from_str(&out).unwrap();
    let truths = truths.as_array().unwrap();
    assert_eq!(truths.len(), 1);
    assert_eq!(truths[0]["scenario"], "reverse-shell");
    let (db, stats) = service.stop();
    assert_eq!(stats.quarantined, 0, "{stats:?}");
    check_chain(&db, &truths[0]);
}

/// The relation names of CamFlow kernel v0.9.0 by PROV section (camflow-format.md, 4.1).
const CAMFLOW_RELATIONS: [(&str, &[&str]); 6] = [
    (
        "used",
        &[
            "accept",
            "file_rcv",
            "file_sigio",
            "getattr",
            "getpgid",
            "getxattr",
            "listxattr",
            "load_file",
            "log",
            "memory_read",
            "mmap",
            "mmap_private",
            "open",
            "perm_check",
            "ptrace_read",
            "read",
            "read_ioctl",
            "read_link",
            "receive",
            "receive_msg",
            "receive_msg_queue",
            "search",
            "used_disc",
        ],
    ),
    (
        "wasGeneratedBy",
        &[
            "bind",
            "clone_mem",
            "connect",
            "connect_unix_stream",
            "exec_task",
            "file_lock",
            "generated_disc",
            "inode_create",
            "link",
            "listen",
            "memory_write",
            "msg_create",
            "ptrace_attach",
            "removexattr",
            "rename",
            "send",
            "send_msg",
            "send_msg_queue",
            "setattr",
            "setpgid",
            "setuid",
            "setxattr",
            "sh_attach",
            "sh_create",
            "socket_create",
            "socket_pair_create",
            "splice_out",
            "symlink",
            "unlink",
            "write",
            "write_ioctl",
        ],
    ),
    (
        "wasInformedBy",
        &[
            "clone",
            "informed_disc",
            "ptrace_attach_task",
            "ptrace_read_task",
            "ptrace_traceme",
            "terminate_task",
            "version_activity",
        ],
    ),
    (
        "wasDerivedFrom",
        &[
            "accept_socket",
            "addressed",
            "arg",
            "derived_disc",
            "env",
            "exec",
            "free",
            "getxattr_inode",
            "named",
            "packet_content",
            "receive_packet",
            "receive_unix",
            "removexattr_inode",
            "send_packet",
            "send_unix",
            "setattr_inode",
            "setxattr_inode",
            "sh_read",
            "sh_write",
            "terminate_proc",
            "version_entity",
        ],
    ),
    (
        "wasInfluencedBy",
        &[
            "influenced_disc",
            "load_certificate",
            "load_firmware",
            "load_kexec_image",
            "load_kexec_initramfs",
            "load_module",
            "load_policy",
            "load_undefined",
            "load_unknown",
        ],
    ),
    ("wasAssociatedWith", &["associated_disc", "ran_on"]),
];

/// Every relation a scenario writes is a CamFlow v0.9.0 name in the PROV section that kernel
/// gives it, and every vertex type is one of its names: the scenarios are what CamFlow emits.
#[test]
fn scenarios_use_camflow_names_in_their_sections() {
    use provdb::simulate::scenarios::{simulate_scenarios, Scenario, ScenarioOptions};
    const VERTEX_TYPES: [&str; 12] = [
        "task",
        "process_memory",
        "file",
        "directory",
        "socket",
        "path",
        "argv",
        "address",
        "packet",
        "iattr",
        "machine",
        "link",
    ];
    let runs = simulate_scenarios(&Scenario::ALL, &ScenarioOptions::default());
    for run in runs {
        for doc in &run.documents {
            let batch = provdb::decode::decode_text(doc.json.clone().into_bytes()).unwrap();
            for e in &batch.edges {
                let section = e.relation.as_str();
                let names = CAMFLOW_RELATIONS
                    .iter()
                    .find(|(s, _)| *s == section)
                    .map(|(_, n)| *n)
                    .unwrap_or_default();
                assert!(
                    names.contains(&e.type_name.as_str()),
                    "{}: {} in {section}",
                    run.truth.scenario,
                    e.type_name
                );
            }
            for v in &batch.vertices {
                assert!(
                    VERTEX_TYPES.contains(&v.type_name.as_str()),
                    "{}: vertex type {}",
                    run.truth.scenario,
                    v.type_name
                );
            }
        }
    }
}
