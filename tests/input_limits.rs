//! Hostile sizes and depths at every entry point that takes outside bytes: JSON nested 100,000
//! deep (the issue's 1.1 KB MQTT message), lines and documents over the limit, huge
//! `--config` files and REPL lines. Each gives a typed error saying what and where, the rest
//! of the work goes on, and nothing is held whole in memory.

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;

use base64::Engine as _;
use provdb::decode::{decode_payload, decode_text, DecodeError, MAX_JSON_DEPTH};
use provdb::{Database, DatabaseOptions};

const TASK: &str = r#"{"prefix":{},"activity":{"cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=":{"prov:type":"task","cf:pid":1}}}"#;
const FILE: &str = r#"{"prefix":{},"entity":{"cf:AAEAAAAAACCUMgQAAAAAAJ3zExw9Y9wlAAAAAAAAAAA=":{"prov:type":"file"}}}"#;
const DEPTH: usize = 100_000;

/// A W3C document whose attribute value nests `DEPTH` arrays, and the byte offset of the
/// bracket that goes past the limit (the document itself opens 4 levels before the arrays).
fn deep_document() -> (String, usize) {
    let head = r#"{"prefix":{},"entity":{"cf:AAEAAAAAACCUMgQAAAAAAJ3zExw9Y9wlAAAAAAAAAAA=":{"prov:type":"file","cf:x":"#;
    let text = format!("{head}{}{}}}}}}}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let opened_before = 3; // `{` of the document, of `entity`, of the element
    (text, head.len() + (MAX_JSON_DEPTH - opened_before))
}

fn payload_of(json: &str) -> String {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(json.as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(z.finish().unwrap())
}

#[test]
fn the_issues_deep_mqtt_message_is_a_typed_error() {
    let (json, offset) = deep_document();
    let payload = payload_of(&json);
    assert!(
        payload.len() < 2_000,
        "a small message: {} bytes",
        payload.len()
    );
    assert_eq!(
        decode_payload(payload.as_bytes(), 1 << 20),
        Err(DecodeError::TooDeep {
            limit: MAX_JSON_DEPTH,
            offset
        })
    );
    // A SPADE array and SPADE lines nested as deep: the same error.
    let array = format!("[{}", "[".repeat(DEPTH));
    assert_eq!(
        decode_text(array.into_bytes()),
        Err(DecodeError::TooDeep {
            limit: MAX_JSON_DEPTH,
            offset: MAX_JSON_DEPTH
        })
    );
    let lines = format!("{TASK}\n{{\"type\":{}\n", "{\"a\":".repeat(DEPTH));
    assert!(matches!(
        decode_text(lines.into_bytes()),
        Err(DecodeError::TooDeep { .. })
    ));
    // Brackets inside strings (escaped quotes included) are not nesting.
    let quoted = format!(
        r#"{{"prefix":{{}},"entity":{{"cf:AAEAAAAAACCUMgQAAAAAAJ3zExw9Y9wlAAAAAAAAAAA=":{{"prov:type":"file","cf:s":"\"{}"}}}}}}"#,
        "[{".repeat(DEPTH)
    );
    assert_eq!(decode_text(quoted.into_bytes()).unwrap().vertices.len(), 1);
}

fn write_lines(dir: &tempfile::TempDir, name: &str, lines: &[&str]) -> PathBuf {
    let p = dir.path().join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    p
}

#[test]
fn import_rejects_a_deep_line_and_stores_the_rest_exit_status_2() {
    let (deep, _) = deep_document();
    let files = tempfile::tempdir().unwrap();
    let path = write_lines(&files, "deep.log", &[TASK, &deep, FILE]);
    let dir = tempfile::tempdir().unwrap();
    let out = common::provdb(dir.path())
        .args(["import", "--quiet"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "deep.log:2: JSON nested more than {MAX_JSON_DEPTH} deep"
        )),
        "{stdout}"
    );
    let stats = common::stdout_of(
        &common::provdb(dir.path())
            .args(["stats", "--json"])
            .output()
            .unwrap(),
    );
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["vertices"], 2, "{stats}");
}

#[test]
fn over_long_lines_and_documents_are_rejected_and_skipped() {
    let files = tempfile::tempdir().unwrap();
    let long = format!("{{\"prefix\":{{\"pad\":\"{}\"}}}}", "x".repeat(5_000));
    let lines = write_lines(&files, "long.log", &[TASK, &long, FILE]);
    // The same document pretty-printed (one document over lines), over the limit.
    let pretty = files.path().join("pretty.json");
    std::fs::write(
        &pretty,
        format!(
            "{{\n \"prefix\": {{\n  \"pad\": \"{}\"\n }}\n}}\n",
            "y".repeat(5_000)
        ),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions {
            max_document_bytes: 1_000,
            ..Default::default()
        },
    )
    .unwrap();
    let report = db
        .import_files(&[lines.clone(), pretty.clone()], &mut |_| {})
        .unwrap();
    assert_eq!((report.documents, report.rejected), (2, 2));
    let r = &report.rejections;
    assert_eq!((r[0].file.clone(), r[0].line), (lines, 2));
    assert_eq!(
        r[0].error,
        DecodeError::DocumentTooLong {
            limit: 1_000,
            bytes: long.len() as u64 + 1 // its newline
        }
    );
    assert_eq!((r[1].file.clone(), r[1].line), (pretty.clone(), 1));
    assert_eq!(
        r[1].error,
        DecodeError::DocumentTooLong {
            limit: 1_000,
            bytes: std::fs::metadata(&pretty).unwrap().len()
        }
    );
    assert_eq!(db.stats().unwrap().vertices, 2);
    db.close().unwrap();
}

#[test]
fn a_huge_config_file_is_an_error_not_a_read_without_end() {
    let files = tempfile::tempdir().unwrap();
    let big = files.path().join("big.ini");
    std::fs::write(&big, "[mqtt]\naddress=x:1\n".repeat(100_000)).unwrap();
    let err = provdb::ingest::MqttFileConfig::read(&big).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("big.ini"), "{err}");
    if std::path::Path::new("/dev/zero").exists() {
        let err =
            provdb::ingest::MqttFileConfig::read(std::path::Path::new("/dev/zero")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
    let ok = files.path().join("camflowd.ini");
    std::fs::write(&ok, "[mqtt]\naddress=tcp://h:1883\nqos=2\n").unwrap();
    let c = provdb::ingest::MqttFileConfig::read(&ok).unwrap();
    assert_eq!(
        (c.address.as_deref(), c.qos),
        (Some("tcp://h:1883"), Some(2))
    );
}

#[test]
fn a_huge_repl_line_is_dropped_with_an_error_and_the_script_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    Database::open(dir.path()).unwrap().close().unwrap();
    let mut child = common::provdb(dir.path())
        .arg("repl")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // 3 MiB on one line, then a statement that must still run.
        let _ = stdin.write_all(&vec![b'('; 3 << 20]);
        let _ = stdin.write_all(b"\n.stats\n");
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("is longer than 1048576: dropped"),
        "{stderr}"
    );
    assert!(stdout.contains("vertices"), "{stdout}");
    assert_eq!(out.status.code(), Some(1));
}
