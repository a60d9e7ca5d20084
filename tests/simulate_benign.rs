//! `provdb simulate` without a scenario: benign background activity (shells, package updates,
//! cron jobs, compilers, ssh logins) that writes only where ordinary programs write, so the
//! detection rules of the attack scenarios have nothing to find in it.

mod common;

use std::collections::BTreeSet;

use common::{provdb, simulated_archive, stdout_of};

/// Rows of a JSON query answer, as `column -> value` objects.
fn query(db: &std::path::Path, text: &str) -> Vec<serde_json::Value> {
    let out = stdout_of(
        &provdb(db)
            .args(["query", "--format", "json", text])
            .output()
            .unwrap(),
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn background_activity_is_varied_and_writes_only_ordinary_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_archive(dir.path(), 3, 20);
    let commands: BTreeSet<String> = query(&db, "(a:argv) | return a.value")
        .iter()
        .filter_map(|r| r["a.value"].as_str().map(str::to_owned))
        .collect();
    for kind in [
        "-bash",
        "dnf -y upgrade",
        "CROND",
        "gcc -O2",
        "make",
        "sshd: user",
    ] {
        assert!(
            commands.iter().any(|c| c.contains(kind)),
            "no {kind} among {commands:?}"
        );
    }
    let written: BTreeSet<String> = query(
        &db,
        "(t:task) -[e:write|setattr|inode_create|memory_write|file_lock]-> (f:file) | return f.name",
    )
    .iter()
    .filter_map(|r| r["f.name"].as_str().map(str::to_owned))
    .collect();
    assert!(!written.is_empty());
    let ordinary = [
        "/tmp/build.log",
        "/home/user/notes.txt",
        "/var/lib/rpm/Packages",
        "/dev/null",
    ];
    for name in &written {
        assert!(
            ordinary.contains(&name.as_str()),
            "background writes {name}"
        );
    }
    // No network and no program started from a file: those are the scenarios' material.
    let stats = common::stats_json(&db);
    for ty in ["socket", "packet", "address"] {
        assert!(stats["vertex_types"].get(ty).is_none(), "{ty}: {stats}");
    }
    assert!(stats["edge_types"].get("exec").is_none(), "{stats}");
}
