//! Archives written by earlier builds keep opening: `tests/fixtures/archive-format-N/` is an
//! archive the project made at on-disk format version N (see tests/fixtures/README.md), kept
//! byte for byte. This build must read every version it claims to read, with the graph the
//! fixture's source documents hold; an archive of any other version must be refused with an
//! error naming both versions, never read as garbage.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use provdb::Database;
use provdb_storage::{StorageError, FORMAT_VERSION};

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
        let raw = rocksdb::DB::open_cf(&opts, &path, provdb_storage::column_families::ALL).unwrap();
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
                provdb::Error::Storage(StorageError::UnsupportedFormat { found, supported })
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
