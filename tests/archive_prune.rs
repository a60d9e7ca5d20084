//! `provdb prune`: retention by machine and by time leaves a sound archive whose remaining
//! part answers queries as before.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{provdb, simulated_archive, stats_json, stdout_of};

fn run(db: &Path, args: &[&str]) -> String {
    stdout_of(&provdb(db).args(args).output().unwrap())
}

fn csv(db: &Path, query: &str) -> Vec<String> {
    run(db, &["query", "--format", "csv", query])
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[test]
fn pruning_a_machine_removes_it_and_keeps_the_others_answers() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_archive(dir.path(), 2, 20);
    let before = stats_json(&db);
    let machines: Vec<(String, u64)> = before["machines"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(m, n)| (m.clone(), n.as_u64().unwrap()))
        .collect();
    assert_eq!(machines.len(), 2, "{before}");
    let (gone, gone_vertices) = machines[0].clone();
    let kept = machines[1].0.clone();
    // Simulated machines do not exchange edges. Stub vertices (no machine) whose every edge
    // belongs to the pruned machine go with it.
    let mut stub_machines: std::collections::BTreeMap<String, BTreeSet<String>> =
        Default::default();
    for row in csv(&db, "(s:unknown) -[e]- () | return s.id, e.machine") {
        let (stub, machine) = row.split_once(',').unwrap();
        stub_machines
            .entry(stub.to_owned())
            .or_default()
            .insert(machine.to_owned());
    }
    let gone_stubs = stub_machines
        .values()
        .filter(|ms| ms.iter().all(|m| *m == gone))
        .count() as u64;
    assert_eq!(
        stub_machines.len() as u64,
        before["stub_vertices"].as_u64().unwrap()
    );
    let kept_vertices =
        format!("(v) | where v.machine = {kept} | return v.id, v.type | order by v.id");
    let kept_edges = format!(
        "(a) -[e]-> (b) | where e.machine = {kept} | return e.id, e.type, a.id, b.id | order by e.id"
    );
    let gone_edges = csv(
        &db,
        &format!("() -[e]-> () | where e.machine = {gone} | return e.id"),
    );
    let vertices_before = csv(&db, &kept_vertices);
    let edges_before = csv(&db, &kept_edges);
    assert!(edges_before.len() > 10 && !gone_edges.is_empty());

    let dry = run(&db, &["prune", "--machine", &gone, "--dry-run"]);
    assert!(
        dry.starts_with(&format!(
            "would delete {} vertices ({gone_stubs} of them stubs) and {} edges",
            gone_vertices + gone_stubs,
            gone_edges.len()
        )),
        "{dry}"
    );
    assert_eq!(stats_json(&db), before, "a dry run changed the archive");

    let done = run(&db, &["prune", "--machine", &gone]);
    assert!(
        done.starts_with(&format!("deleted {} vertices", gone_vertices + gone_stubs)),
        "{done}"
    );
    let after = stats_json(&db);
    assert_eq!(
        after["vertices"].as_u64().unwrap(),
        before["vertices"].as_u64().unwrap() - gone_vertices - gone_stubs
    );
    assert_eq!(
        after["edges"].as_u64().unwrap(),
        before["edges"].as_u64().unwrap() - gone_edges.len() as u64
    );
    assert!(after["machines"].get(&gone).is_none(), "{after}");
    assert!(run(&db, &["check"]).starts_with("ok: "));
    assert_eq!(csv(&db, &kept_vertices), vertices_before);
    assert_eq!(csv(&db, &kept_edges), edges_before);
    // Counts come from the counters and indexes, which the prune kept in step.
    assert_eq!(csv(&db, "(v) | count"), [after["vertices"].to_string()],);
    assert_eq!(
        csv(&db, "() -[e]-> () | count"),
        [after["edges"].to_string()]
    );
    assert!(csv(
        &db,
        &format!("(v) | where v.machine = {gone} | return v.id")
    )
    .is_empty());
    // The machine registry forgets it too.
    assert!(!run(&db, &["machines"]).contains(&gone));
}

#[test]
fn pruning_before_a_time_removes_older_edges_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_archive(dir.path(), 1, 40);
    let times: Vec<i64> = csv(&db, "() -[e]-> () | return e.time | order by e.time")
        .iter()
        .map(|t| provdb::query::parse_time(t.trim_matches('"')).expect(t))
        .collect();
    let cut = times[times.len() / 2];
    let older = times.iter().filter(|t| **t < cut).count() as u64;
    assert!(older > 0 && older < times.len() as u64, "{cut} {times:?}");
    let before = stats_json(&db);
    let newer = "(a) -[e]-> (b) | return e.id, e.type, a.id, b.id | order by e.id";
    let newer_before: Vec<String> = {
        let rows = csv(
            &db,
            "(a) -[e]-> (b) | return e.id, e.type, a.id, b.id, e.time | order by e.id",
        );
        rows.iter()
            .filter(|r| {
                let t = r.rsplit(',').next().unwrap().trim_matches('"');
                provdb::query::parse_time(t).unwrap() >= cut
            })
            .map(|r| r.rsplit_once(',').unwrap().0.to_owned())
            .collect()
    };

    let done = run(&db, &["prune", "--before", &cut.to_string()]);
    assert!(done.contains(&format!(" and {older} edges")), "{done}");
    let after = stats_json(&db);
    assert_eq!(
        after["edges"].as_u64().unwrap(),
        before["edges"].as_u64().unwrap() - older
    );
    assert!(run(&db, &["check"]).starts_with("ok: "));
    assert_eq!(csv(&db, newer), newer_before);
}

#[test]
fn prune_refuses_a_busy_archive_and_a_bad_time() {
    let dir = tempfile::tempdir().unwrap();
    let busy = dir.path().join("busy");
    let held = provdb::Database::open(&busy).unwrap();
    let out = provdb(&busy)
        .args(["prune", "--machine", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another process holds it"));
    held.close().unwrap();

    let out = provdb(&busy)
        .args(["prune", "--before", "yesterday"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither Unix seconds nor a date"));
    let out = provdb(&busy).args(["prune"]).output().unwrap();
    assert!(!out.status.success());
}
