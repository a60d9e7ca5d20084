//! Archives written by earlier builds keep opening: `tests/fixtures/archive-format-N/` is an
//! archive the project made at on-disk format version N (see tests/fixtures/README.md), kept
//! byte for byte. This build must read every version it claims to read, with the graph the
//! fixture's source documents hold; an archive of any other version must be refused with an
//! error naming both versions, never read as garbage.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use provdb::Database;
use provdb_storage::{OpenError, StorageError, FORMAT_VERSION};

fn fixture(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/archive-format-{version}"))
}

/// A writable copy of a fixture archive (opening must never change the committed files).
fn copy_of(version: u32, into: &Path) -> PathBuf {
    let dest = into.join(format!("archive-format-{version}"));
    std::fs::create_dir_all(&dest).unwrap();
    for entry in std::fs::read_dir(fixture(version)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
    }
    dest
}

/// What the fixture's source documents hold, read with serde_json (independently of provdb's
/// decoder): distinct vertex ids (endpoints included), and distinct edge ids per edge type.
struct SourceGraph {
    vertices: usize,
    edges_by_type: BTreeMap<String, usize>,
}

fn source_graph(version: u32) -> SourceGraph {
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "tests/fixtures/archive-format-{version}.source.json"
    )))
    .unwrap();
    let mut vertices = HashSet::new();
    let mut edges: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        for (section, elements) in doc.as_object().unwrap() {
            let Some(elements) = elements.as_object() else {
                continue;
            };
            if ["activity", "entity", "agent"].contains(&section.as_str()) {
                vertices.extend(elements.keys().map(|k| common::bare(k)));
            } else if let Some((from, to)) = common::endpoints(section) {
                for (id, attrs) in elements {
                    for key in [from, to] {
                        vertices.insert(common::bare(attrs[key].as_str().unwrap()));
                    }
                    let kind = attrs["prov:type"].as_str().unwrap().to_owned();
                    edges.insert(common::bare(id), kind);
                }
            }
        }
    }
    let mut edges_by_type = BTreeMap::new();
    for kind in edges.into_values() {
        *edges_by_type.entry(kind).or_insert(0) += 1;
    }
    SourceGraph {
        vertices: vertices.len(),
        edges_by_type,
    }
}

fn assert_holds_its_source(db: &Database, version: u32) {
    let expected = source_graph(version);
    let stats = db.stats().unwrap();
    assert_eq!(stats.vertices as usize, expected.vertices, "vertices");
    let total: usize = expected.edges_by_type.values().sum();
    assert_eq!(stats.edges as usize, total, "edges");
    for (kind, count) in &expected.edges_by_type {
        let result = db.query(&format!("() -[:{kind}]-> () | count")).unwrap();
        let got = result.get(0, "count").unwrap().to_string();
        assert_eq!(got, count.to_string(), "edges of type {kind}");
    }
    assert!(db.check().unwrap().is_ok(), "check holds on the fixture");
}

#[test]
fn every_fixture_of_a_readable_version_opens_with_its_graph() {
    // Versions this build reads: each must have its fixture (a new version adds one).
    for version in 1..=FORMAT_VERSION {
        assert!(
            fixture(version).is_dir(),
            "no fixture archive of format version {version}: make one (tests/fixtures/README.md)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let path = copy_of(version, tmp.path());
        let db = Database::open_read_only(&path).unwrap();
        assert_holds_its_source(&db, version);
        // Fixtures from version 3 on were folded: their adjacency is in the snapshot alone
        // (version 4's with the id section, version 5's ids in the section alone).
        assert_eq!(db.store().uses_adjacency_snapshot(), version >= 3);
        drop(db);
        // Read-write too: a service started on an old archive must keep it readable.
        let db = Database::open(&path).unwrap();
        assert_holds_its_source(&db, version);
        db.close().unwrap();
    }
}

#[test]
fn an_archive_of_another_version_is_refused_naming_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let path = copy_of(FORMAT_VERSION, tmp.path());
    let future = FORMAT_VERSION + 1;
    {
        let opts = rocksdb::Options::default();
        let tables = rocksdb::DB::list_cf(&opts, &path).unwrap();
        let raw = rocksdb::DB::open_cf(&opts, &path, tables).unwrap();
        let meta = raw.cf_handle("meta").unwrap();
        raw.put_cf(meta, b"format_version", future.to_be_bytes())
            .unwrap();
        raw.flush_cf(meta).unwrap();
    }
    for read_only in [true, false] {
        let err = if read_only {
            Database::open_read_only(&path).unwrap_err()
        } else {
            Database::open(&path).unwrap_err()
        };
        assert!(
            matches!(
                err,
                provdb::Error::Storage(StorageError::Open(OpenError::UnsupportedFormat {
                    found,
                    supported
                }))
                    if found == future && supported == FORMAT_VERSION
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&future.to_string()) && message.contains(&FORMAT_VERSION.to_string()),
            "the message names both versions: {message}"
        );
    }
}

/// A version-1 archive (no vertex -> external id table) keeps its version when a newer build
/// writes to it, and every id it returns is the one its records hold.
#[test]
fn a_version_1_archive_takes_writes_and_stays_version_1() {
    let tmp = tempfile::tempdir().unwrap();
    let path = copy_of(1, tmp.path());
    let db = Database::open(&path).unwrap();
    assert_eq!(db.store().format_version(), 1);
    let before = db.stats().unwrap().vertices;
    // One new process with a file it wrote, in CamFlow's W3C form.
    let doc = r#"{"prefix":{},"activity":{"cf:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=":{"prov:type":"task","cf:pid":4242}},"entity":{"cf:AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=":{"prov:type":"file"}},"wasGeneratedBy":{"cf:AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=":{"prov:type":"write","prov:activity":"cf:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","prov:entity":"cf:AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}"#;
    db.ingest_json(doc.as_bytes().to_vec()).unwrap();
    assert_eq!(db.stats().unwrap().vertices, before + 2);
    let r = db
        .query("(t:task {pid: 4242}) -[:write]-> (f) | return t.id, f.id")
        .unwrap();
    assert_eq!(
        r.get(0, "f.id").unwrap().to_string(),
        "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    );
    assert!(db.check().unwrap().is_ok());
    db.close().unwrap();
    let db = Database::open_read_only(&path).unwrap();
    assert_eq!(db.store().format_version(), 1);
    assert_holds_ids_of_its_records(&db);
}

/// The vertex ids a query returns are the external ids of the vertex records: one per vertex,
/// all distinct, each naming a vertex whose record holds it.
fn assert_holds_ids_of_its_records(db: &Database) {
    let r = db.query("(v) | return v.id").unwrap();
    assert_eq!(r.rows.len() as u64, db.stats().unwrap().vertices);
    let mut seen = HashSet::new();
    for row in 0..r.rows.len() {
        let id = r.get(row, "v.id").unwrap().to_string();
        let v = db.vertex_by_external(&id).unwrap().unwrap();
        assert_eq!(v.ext_id.to_string(), id);
        assert!(seen.insert(id), "ids are distinct");
    }
}

#[test]
fn a_new_archive_is_the_current_version_and_returns_the_ids_of_its_records() {
    let tmp = tempfile::tempdir().unwrap();
    let path = copy_of(FORMAT_VERSION, tmp.path());
    let db = Database::open_read_only(&path).unwrap();
    assert_eq!(db.store().format_version(), FORMAT_VERSION);
    assert_holds_ids_of_its_records(&db);
}

/// A version-2, 3 or 4 archive becomes the current version at its next fold (never by being
/// opened), and reads its graph, and its ids, from the new snapshot after (version 4's
/// snapshot already holds ids, which the fold carries over while deleting the table's).
#[test]
fn older_archives_fold_into_the_current_version() {
    for version in [2, 3, 4] {
        let tmp = tempfile::tempdir().unwrap();
        let path = copy_of(version, tmp.path());
        let db = Database::open(&path).unwrap();
        assert_eq!(db.store().format_version(), version);
        db.store().fold_adjacency().unwrap();
        assert_eq!(db.store().format_version(), FORMAT_VERSION);
        assert_holds_its_source(&db, version);
        db.close().unwrap();
        let db = Database::open_read_only(&path).unwrap();
        assert_eq!(db.store().format_version(), FORMAT_VERSION);
        assert!(db.store().uses_adjacency_snapshot());
        assert_holds_its_source(&db, version);
        assert_holds_ids_of_its_records(&db);
    }
}
