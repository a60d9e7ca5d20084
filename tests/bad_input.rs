//! Bad input gets a clear, typed error that says what and where; everything around it is
//! stored; nothing panics.

mod common;

use std::io::Write as _;
use std::path::PathBuf;

use base64::Engine as _;
use provdb::decode::{decode_payload, DecodeError};
use provdb::{Database, DatabaseOptions, Error};

const TASK: &str = r#"{"prefix":{},"activity":{"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=":{"prov:type":"task","cf:pid":1}}}"#;
const FILE: &str = r#"{"prefix":{},"entity":{"cf:AAEAAAAAACCUMgQAAAAAAJ3zExw9Y9wlAAAAAAAAAAA=":{"prov:type":"file"}}}"#;

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn write_file(dir: &tempfile::TempDir, name: &str, lines: &[Vec<u8>]) -> PathBuf {
    let p = dir.path().join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    for l in lines {
        f.write_all(l).unwrap();
        f.write_all(b"\n").unwrap();
    }
    p
}

/// Imports `bad` between two good documents; returns the rejection and checks both good
/// documents were stored.
fn import_between(bad: Vec<u8>, max_inflated: usize) -> provdb::Rejection {
    let files = tempfile::tempdir().unwrap();
    let path = write_file(
        &files,
        "mixed.log",
        &[
            TASK.as_bytes().to_vec(),
            bad,
            b64(&zlib(FILE.as_bytes())).into_bytes(),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions {
            max_inflated,
            ..Default::default()
        },
    )
    .unwrap();
    let report = db
        .import_files(std::slice::from_ref(&path), &mut |_| {})
        .unwrap();
    assert_eq!(report.rejected, 1, "{:?}", report.rejections);
    let stats = db.stats().unwrap();
    assert_eq!(
        stats.vertices, 2,
        "the good documents around the bad one are stored"
    );
    assert_eq!(stats.rejected_documents, 1);
    assert!(db
        .vertex_by_external("AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=")
        .unwrap()
        .is_some());
    assert!(db
        .vertex_by_external("AAEAAAAAACCUMgQAAAAAAJ3zExw9Y9wlAAAAAAAAAAA=")
        .unwrap()
        .is_some());
    db.close().unwrap();
    let r = report.rejections[0].clone();
    assert_eq!((r.file.clone(), r.line), (path, 2), "the error says where");
    r
}

#[test]
fn invalid_base64_is_rejected_with_its_offset() {
    let mut payload = b64(&zlib(TASK.as_bytes()));
    payload.replace_range(10..11, "*");
    // '*' makes the line neither JSON nor base64: it is a skipped line, not a document.
    let files = tempfile::tempdir().unwrap();
    let path = write_file(&files, "p.log", &[payload.clone().into_bytes()]);
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let report = db.import_files(&[path], &mut |_| {}).unwrap();
    assert_eq!(report.skipped_lines, 1);
    db.close().unwrap();
    // Given as a payload (as MQTT delivers it), it is a base64 error at byte 10.
    match decode_payload(payload.as_bytes(), 1 << 20) {
        Err(DecodeError::Base64 { offset, .. }) => assert_eq!(offset, 10),
        other => panic!("expected a base64 error, got {other:?}"),
    }
    // A payload whose base64 is well-formed but wrongly padded is rejected in an import.
    let r = import_between(b"QUJDRA=A".to_vec(), 1 << 20);
    assert_eq!(r.error.kind(), "base64", "{}", r.error);
}

#[test]
fn truncated_zlib_is_rejected() {
    let z = zlib(TASK.as_bytes());
    let r = import_between(b64(&z[..z.len() - 6]).into_bytes(), 1 << 20);
    assert!(
        matches!(r.error, DecodeError::ZlibTruncated { .. }),
        "{}",
        r.error
    );
    let r = import_between(b64(b"this is not a zlib stream").into_bytes(), 1 << 20);
    assert!(matches!(r.error, DecodeError::Zlib { .. }), "{}", r.error);
}

#[test]
fn zlib_bomb_is_rejected_without_inflating_it_all() {
    // 32 MiB of zeros compress to ~32 KiB; the cap is 1 MiB.
    let bomb = zlib(&vec![b' '; 32 << 20]);
    let r = import_between(b64(&bomb).into_bytes(), 1 << 20);
    assert_eq!(r.error, DecodeError::TooLarge { limit: 1 << 20 });
    assert!(r.to_string().contains("decompression bomb"));
}

#[test]
fn invalid_json_is_rejected_with_its_position() {
    let r = import_between(
        br#"{"prefix":{},"activity":{"x":{"prov:type":"task",}}}"#.to_vec(),
        1 << 20,
    );
    match &r.error {
        DecodeError::Json { offset, .. } => assert!(*offset > 40 && *offset < 60, "{offset}"),
        other => panic!("{other:?}"),
    }
    // Inside a payload too.
    let r = import_between(b64(&zlib(b"{\"prefix\":")).into_bytes(), 1 << 20);
    assert_eq!(r.error.kind(), "json");
}

#[test]
fn element_errors_name_their_section_and_element() {
    let no_endpoint = br#"{"prefix":{},"used":{"cf:AAAEAAAAEIAkAAAAAAAAAJ3zExw9Y9wlAAAAAAAAAAA=":{"prov:type":"read","prov:activity":"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA="}}}"#;
    let r = import_between(no_endpoint.to_vec(), 1 << 20);
    let msg = r.to_string();
    assert!(msg.contains("section `used`"), "{msg}");
    assert!(msg.contains("AAAEAAAAEIAk"), "{msg}");
    assert!(msg.contains("prov:entity"), "{msg}");
    let no_type = br#"{"prefix":{},"entity":{"abc":{"cf:id":"1"}}}"#;
    let r = import_between(no_type.to_vec(), 1 << 20);
    assert!(r.to_string().contains("missing `prov:type`"), "{r}");
    let unknown_section = br#"{"prefix":{},"hadMember":{}}"#;
    let r = import_between(unknown_section.to_vec(), 1 << 20);
    assert!(r.to_string().contains("hadMember"), "{r}");
}

#[test]
fn edge_to_unknown_vertices_is_kept_with_stubs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let doc = br#"{"prefix":{},"used":{"cf:AAAEAAAAEIAkAAAAAAAAAJ3zExw9Y9wlAAAAAAAAAAA=":{"prov:type":"read","prov:entity":"cf:AAEAAAAAACCUMgQAAAAAAJ3zExw9Y9wlAAAAAAAAAAA=","prov:activity":"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA="}}}"#;
    let summary = db.ingest_json(doc.to_vec()).unwrap();
    assert_eq!((summary.edges_added, summary.stubs_created), (1, 2));
    let s = db.stats().unwrap();
    assert_eq!((s.vertices, s.stub_vertices, s.edges), (2, 2, 1));
    db.close().unwrap();
}

#[test]
fn non_utf8_bytes_are_replaced_not_fatal() {
    let mut doc = br#"{"prefix":{},"entity":{"cf:AAAIAAAAACDIHQIAAAAAAAEAAABTTLt0AAAAAAAAAAA=":{"prov:type":"path","cf:pathname":"/tmp/"#.to_vec();
    doc.extend_from_slice(&[0xff, 0xfe]);
    doc.extend_from_slice(br#"x"}}}"#);
    let files = tempfile::tempdir().unwrap();
    let path = write_file(&files, "latin.log", &[doc.clone(), vec![0xc3, 0x28, b'!']]);
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let report = db.import_files(&[path], &mut |_| {}).unwrap();
    assert_eq!((report.rejected, report.skipped_lines), (0, 1));
    let v = db
        .vertex_by_external("AAAIAAAAACDIHQIAAAAAAAEAAABTTLt0AAAAAAAAAAA=")
        .unwrap()
        .unwrap();
    assert_eq!(
        provdb_storage::find_attr(&v.attrs, "pathname").and_then(|v| v.as_str()),
        Some("/tmp/\u{fffd}\u{fffd}x")
    );
    // The same bytes as an MQTT payload decode the same way.
    let batch = decode_payload(b64(&zlib(&doc)).as_bytes(), 1 << 20).unwrap();
    assert_eq!(batch.vertices.len(), 1);
    db.close().unwrap();
}

#[test]
fn library_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert!(matches!(
        db.ingest_payload(b"@@@@"),
        Err(Error::Decode(DecodeError::Base64 { offset: 0, .. }))
    ));
    assert!(matches!(
        db.ingest_payload(b""),
        Err(Error::Decode(DecodeError::Empty))
    ));
    assert!(matches!(
        db.ingest_json(b"[1,2]".to_vec()),
        Err(Error::Decode(DecodeError::Structure { .. }))
    ));
    assert!(matches!(
        db.ingest_json(b"{\"type\":\"Used\",\"from\":\"a\"}".to_vec()),
        Err(Error::Decode(DecodeError::Structure { .. }))
    ));
    assert_eq!(db.stats().unwrap().vertices, 0);
    db.close().unwrap();
}
