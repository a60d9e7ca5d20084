//! Importing the same data twice changes nothing; a reopened database has everything.

mod common;

use provdb::Database;

#[test]
fn importing_twice_stores_once() {
    for (name, vertices, stubs, edges, _) in common::SAMPLES {
        let Some(path) = common::sample(name) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        let first = db
            .import_files(std::slice::from_ref(&path), &mut |_| {})
            .unwrap();
        let before = db.stats().unwrap();
        let second = db
            .import_files(std::slice::from_ref(&path), &mut |_| {})
            .unwrap();
        let after = db.stats().unwrap();
        assert_eq!(
            (after.vertices, after.stub_vertices, after.edges),
            (vertices, stubs, edges)
        );
        assert_eq!(before.vertex_types, after.vertex_types);
        assert_eq!(before.edge_types, after.edge_types);
        assert_eq!(before.machines, after.machines);
        assert_eq!(
            second.stored.vertices_added + second.stored.edges_added,
            0,
            "{name}"
        );
        assert_eq!(
            second.stored.edges_duplicate, first.stored.edges_added,
            "{name}"
        );
        db.close().unwrap();
    }
}

#[test]
fn duplicates_inside_one_file_are_stored_once() {
    let Some(path) = common::sample("v0.5.0-w3c-wget.log") else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let doubled = files.path().join("doubled.log");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&doubled, format!("{text}\n{text}")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.import_files(&[doubled], &mut |_| {}).unwrap();
    let s = db.stats().unwrap();
    assert_eq!((s.vertices, s.edges), (178, 519));
    db.close().unwrap();
}

#[test]
fn reopened_database_has_everything() {
    let Some(path) = common::sample("v0.2.2-w3c-badlog.log") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.import_files(&[path], &mut |_| {}).unwrap();
    let before = db.stats().unwrap();
    db.close().unwrap();

    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.stats().unwrap(), before);
    let e = db
        .edge_by_external("AAAEAAAAEIAkAAAAAAAAAJ3zExw9Y9wlAAAAAAAAAAA=")
        .unwrap()
        .expect("edge survives reopen");
    assert_eq!(&*e.type_name, "read");
    // New writes after reopen continue the id sequence instead of overwriting.
    let doc = br#"{"prefix":{},"activity":{"bmV3LXZlcnRleA==":{"prov:type":"task"}}}"#;
    db.ingest_json(doc.to_vec()).unwrap();
    let s = db.stats().unwrap();
    assert_eq!(s.vertices, before.vertices + 1);
    let v = db.vertex_by_external("bmV3LXZlcnRleA==").unwrap().unwrap();
    assert_eq!(v.id.0, before.vertices);
    db.close().unwrap();

    // A read-only open sees the same.
    let ro = Database::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.stats().unwrap().vertices, before.vertices + 1);
}
