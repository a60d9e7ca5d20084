//! Edges that arrive before their vertices create stubs, filled in when the definition comes.

mod common;

use std::io::Write;

use provdb::{Database, DatabaseOptions};

#[test]
fn spade_edge_before_its_path_vertex_creates_then_fills_a_stub() {
    let Some(path) = common::sample("v0.8.0-spade-android.log") else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The `named` edge references a path vertex defined on a later line (SOURCES.md).
    let named = lines
        .iter()
        .position(|l| l.contains("\"relation_type\":\"named\""))
        .expect("named edge");
    let path_id = {
        let j: serde_json::Value = serde_json::from_str(lines[named]).unwrap();
        j["to"].as_str().unwrap().to_owned()
    };
    let defined_at = lines
        .iter()
        .position(|l| l.contains(&format!("\"id\":\"{path_id}\"")))
        .expect("path vertex");
    assert!(defined_at > named);

    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let first = files.path().join("first.log");
    let second = files.path().join("second.log");
    std::fs::File::create(&first)
        .unwrap()
        .write_all(lines[..defined_at].join("\n").as_bytes())
        .unwrap();
    std::fs::File::create(&second)
        .unwrap()
        .write_all(lines[defined_at..].join("\n").as_bytes())
        .unwrap();

    let db = Database::open_with(
        dir.path(),
        DatabaseOptions {
            batch_records: 1,
            ..Default::default()
        },
    )
    .unwrap();
    db.import_files(&[first], &mut |_| {}).unwrap();
    let stub = db
        .vertex_by_external(&path_id)
        .unwrap()
        .expect("stub exists");
    assert!(stub.stub);
    // SPADE edges say the endpoint type: the stub carries it.
    assert_eq!(&*stub.type_name, "path");
    let stubs_before = db.stats().unwrap().stub_vertices;
    assert!(stubs_before >= 1);

    db.import_files(&[second], &mut |_| {}).unwrap();
    let filled = db.vertex_by_external(&path_id).unwrap().unwrap();
    assert!(!filled.stub);
    assert_eq!(filled.id, stub.id, "the stub keeps its id when filled");
    assert_eq!(
        provdb_storage::find_attr(&filled.attrs, "pathname").and_then(|v| v.as_str()),
        Some("/data/local/tmp/camflowexample")
    );
    let stats = db.stats().unwrap();
    assert_eq!(stats.stub_vertices, 0);
    assert_eq!((stats.vertices, stats.edges), (13, 14));
    // The type index moved the vertex from its stub type to its real type exactly once.
    let path_count = stats
        .vertex_types
        .iter()
        .find(|(t, _)| t == "path")
        .unwrap()
        .1;
    let expected_paths = lines
        .iter()
        .filter(|l| l.contains("\"object_type\":\"path\""))
        .count();
    assert_eq!(path_count, expected_paths as u64);
    db.close().unwrap();
}
