//! Property-based and mutation tests of every entry point that takes outside bytes: MQTT
//! payloads and JSON text (`decode_payload`, `decode_text`, `classify_bytes`, `sniff`), whole
//! imported files, queries and `--config` ini text. Inputs are arbitrary bytes and mutations
//! (truncation, splicing, byte flips, deep nesting, huge numbers and strings, every JSON kind
//! at every position) of the real CamFlow samples and of simulator output.
//!
//! Properties: no panic; an `Ok` or a typed error with a kind and a message; no hang; and for
//! valid documents, as many records as an independent serde_json count of their elements.
//!
//! Cases per property: 128 by default (the file runs in well under a minute in debug). A longer
//! campaign: `PROVDB_CAMPAIGN_CASES=200000 cargo test --release --test fuzz_inputs`.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use proptest::prelude::*;
use proptest::sample::Index;
use provdb::decode::{
    classify_bytes, decode_payload, decode_text, sniff, DecodeError, MAX_JSON_DEPTH,
};
use provdb::simulate::{to_v0_1_7, Simulation, SimulationOptions};
use serde_json::Value as Json;

const INFLATE_CAP: usize = 4 << 20;

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROVDB_CAMPAIGN_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

/// Runs one decode, failing on a hang. The bound is far above any real cost (microseconds to
/// milliseconds): it catches loops without end or blow-ups, it does not measure speed.
fn no_hang<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "{what} took {took:?}: a hang"
    );
    out
}

/// Every error must be one of the known kinds with a message saying something.
fn check_error(e: &DecodeError) {
    let known = [
        "empty",
        "base64",
        "zlib",
        "too_large",
        "json",
        "too_deep",
        "too_long",
        "structure",
    ];
    assert!(known.contains(&e.kind()), "unexpected kind {e:?}");
    assert!(!e.to_string().is_empty());
    if let DecodeError::TooDeep { limit, .. } = e {
        assert_eq!(*limit, MAX_JSON_DEPTH);
    }
}

fn check(result: &Result<provdb_storage::RecordBatch, DecodeError>) {
    if let Err(e) = result {
        check_error(e);
    }
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

fn payload_of(json: &[u8]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(zlib(json))
        .into_bytes()
}

/// Valid JSON documents to mutate: every JSON line of the real samples, simulator documents
/// in the current format, and one v0.1.7 multi-line document.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds = Vec::new();
        if let Some(dir) = common::shared_data_dir() {
            for (name, ..) in common::SAMPLES {
                let text = std::fs::read(dir.join(name)).unwrap();
                for line in text.split(|b| *b == b'\n') {
                    if line.first() == Some(&b'{') {
                        seeds.push(line.to_vec());
                    }
                }
            }
        }
        let opts = SimulationOptions {
            seed: 11,
            machines: 2,
            documents_per_machine: 3,
            records_per_document: 20,
        };
        seeds.extend(Simulation::new(&opts).map(|d| d.json.into_bytes()));
        let small = SimulationOptions {
            documents_per_machine: 1,
            records_per_document: 6,
            ..opts
        };
        seeds.push(to_v0_1_7(Simulation::new(&small)).into_bytes());
        seeds
    })
}

/// Distinct records of a batch (a document may repeat an element key; serde_json keeps one).
fn distinct_records(batch: &provdb_storage::RecordBatch) -> usize {
    let vertices: std::collections::HashSet<_> = batch.vertices.iter().map(|v| &v.ext_id).collect();
    let edges: std::collections::HashSet<_> = batch.edges.iter().map(|e| &e.ext_id).collect();
    vertices.len() + edges.len()
}

/// Distinct records in a JSON text counted with serde_json: W3C elements, SPADE records.
fn independent_count(text: &[u8]) -> usize {
    let count_value = |v: &Json| -> usize {
        match v {
            Json::Array(items) => items.len(),
            Json::Object(o) if o.contains_key("annotations") || o.contains_key("type") => 1,
            Json::Object(o) => o
                .iter()
                .filter(|(k, _)| *k != "prefix")
                .map(|(_, s)| s.as_object().map_or(0, |m| m.len()))
                .sum(),
            _ => 0,
        }
    };
    match serde_json::from_slice::<Json>(text) {
        Ok(v) => count_value(&v),
        // JSON lines.
        Err(_) => text
            .split(|b| *b == b'\n')
            .filter(|l| !l.trim_ascii().is_empty())
            .map(|l| count_value(&serde_json::from_slice(l).unwrap()))
            .sum(),
    }
}

#[test]
fn valid_seeds_decode_to_the_independent_count() {
    for seed in seeds() {
        let batch = decode_text(seed.clone()).unwrap();
        assert_eq!(distinct_records(&batch), independent_count(seed));
        let batch = decode_payload(&payload_of(seed), INFLATE_CAP).unwrap();
        assert_eq!(distinct_records(&batch), independent_count(seed));
    }
}

/// One change to a document.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(Index),
    FlipByte(Index, u8),
    SetByte(Index, u8),
    Delete(Index, Index),
    /// Insert a piece of another seed.
    Splice(Index, Index, Index, usize),
    /// Insert `depth` opening brackets (arrays, objects or a mix).
    Nest(Index, usize, u8),
    /// Insert raw text (huge numbers, long strings, JSON punctuation).
    Insert(Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = prop_oneof![
        Just(b"99999999999999999999999999999999999999".to_vec()),
        Just(b"-1e999999".to_vec()),
        Just(b"1.7976931348623157e309".to_vec()),
        Just(b"\"\\u0000\\ud800\"".to_vec()),
        Just(b"\"cf:\"".to_vec()),
        Just(b"null".to_vec()),
        Just(b"{}".to_vec()),
        Just(b"[]".to_vec()),
        Just(b",".to_vec()),
        Just(b":".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        (1usize..200_000).prop_map(|n| {
            let mut s = vec![b'"'];
            s.resize(n, b'a');
            s.push(b'"');
            s
        }),
        (1usize..20_000).prop_map(|n| vec![b'9'; n]),
        proptest::collection::vec(any::<u8>(), 1..16),
    ];
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1u8..=255).prop_map(|(i, x)| Mutation::FlipByte(i, x)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        (any::<Index>(), any::<Index>(), any::<Index>(), 1usize..4096)
            .prop_map(|(a, s, f, n)| Mutation::Splice(a, s, f, n)),
        (any::<Index>(), 1usize..200_000, 0u8..3).prop_map(|(i, d, k)| Mutation::Nest(i, d, k)),
        (any::<Index>(), token).prop_map(|(i, t)| Mutation::Insert(i, t)),
    ]
}

fn apply(mut doc: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    let seeds = seeds();
    for m in mutations {
        let at = |i: &Index, len: usize| i.index(len + 1);
        match m {
            Mutation::Truncate(i) => doc.truncate(at(i, doc.len())),
            Mutation::FlipByte(i, x) if !doc.is_empty() => {
                let k = i.index(doc.len());
                doc[k] ^= x;
            }
            Mutation::SetByte(i, b) if !doc.is_empty() => {
                let k = i.index(doc.len());
                doc[k] = *b;
            }
            Mutation::Delete(a, b) => {
                let (x, y) = (at(a, doc.len()), at(b, doc.len()));
                doc.drain(x.min(y)..x.max(y));
            }
            Mutation::Splice(a, s, f, n) => {
                let other = &seeds[s.index(seeds.len())];
                let from = f.index(other.len().max(1)).min(other.len());
                let piece = &other[from..(from + n).min(other.len())];
                let k = at(a, doc.len());
                doc.splice(k..k, piece.iter().copied());
            }
            Mutation::Nest(i, depth, kind) => {
                let piece: Vec<u8> = match kind {
                    0 => vec![b'['; *depth],
                    1 => b"{\"a\":".repeat(*depth),
                    _ => b"[{\"a\":".repeat(*depth / 2 + 1),
                };
                let k = at(i, doc.len());
                doc.splice(k..k, piece);
            }
            Mutation::Insert(i, t) => {
                let k = at(i, doc.len());
                doc.splice(k..k, t.iter().copied());
            }
            _ => {}
        }
    }
    doc
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (any::<Index>(), proptest::collection::vec(mutation(), 1..4)).prop_map(|(seed, ms)| {
        let seeds = seeds();
        apply(seeds[seed.index(seeds.len())].clone(), &ms)
    })
}

/// Every value position of a JSON document, as a path of keys and indexes.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

fn paths(v: &Json, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match v {
        Json::Object(o) => {
            for (k, child) in o {
                prefix.push(Step::Key(k.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Json::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(Step::At(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'a>(v: &'a mut Json, path: &[Step]) -> &'a mut Json {
    path.iter().fold(v, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::At(i) => &mut v[*i],
    })
}

/// One value of each JSON kind.
fn kinds() -> [Json; 7] {
    [
        Json::Null,
        Json::Bool(true),
        serde_json::json!(18446744073709551615u64),
        serde_json::json!(-1.5e300),
        serde_json::json!("cf:AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA="),
        serde_json::json!([]),
        serde_json::json!({}),
    ]
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn mutated_documents_give_ok_or_a_typed_error(doc in mutated()) {
        let sniffed = sniff(&doc);
        let _ = (sniffed, classify_bytes(&doc));
        check(&no_hang("decode_text", || decode_text(doc.clone())));
        check(&no_hang("decode_payload", || decode_payload(&payload_of(&doc), INFLATE_CAP)));
    }

    #[test]
    fn mutated_payload_text_gives_ok_or_a_typed_error(
        seed in any::<Index>(),
        ms in proptest::collection::vec(mutation(), 1..4),
    ) {
        let seeds = seeds();
        let payload = payload_of(&seeds[seed.index(seeds.len())]);
        let bad = apply(payload, &ms);
        check(&no_hang("decode_payload", || decode_payload(&bad, INFLATE_CAP)));
    }

    #[test]
    fn arbitrary_bytes_give_ok_or_a_typed_error(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = (sniff(&bytes), classify_bytes(&bytes));
        check(&no_hang("decode_text", || decode_text(bytes.clone())));
        check(&no_hang("decode_payload", || decode_payload(&bytes, INFLATE_CAP)));
    }

    #[test]
    fn every_json_kind_at_every_position(seed in any::<Index>(), position in any::<Index>(), kind in 0usize..7) {
        let seeds = seeds();
        let mut doc: Json = serde_json::from_slice(&seeds[seed.index(seeds.len())]).unwrap();
        let mut all = Vec::new();
        paths(&doc, &mut Vec::new(), &mut all);
        let path = &all[position.index(all.len())];
        *at_path(&mut doc, path) = kinds()[kind].clone();
        let text = serde_json::to_vec(&doc).unwrap();
        let result = no_hang("decode_text", || decode_text(text.clone()));
        check(&result);
        if let Ok(batch) = result {
            // Nothing is invented: at most one record per element of the document.
            prop_assert!(distinct_records(&batch) <= independent_count(&text).max(1));
        }
    }

    #[test]
    fn simulated_fleets_decode_to_the_independent_count(seed in any::<u64>(), records in 4usize..80) {
        let opts = SimulationOptions { seed, machines: 2, documents_per_machine: 2, records_per_document: records };
        for doc in Simulation::new(&opts) {
            let batch = decode_text(doc.json.clone().into_bytes()).unwrap();
            prop_assert_eq!(distinct_records(&batch), independent_count(doc.json.as_bytes()));
            prop_assert_eq!(batch.len(), doc.records);
        }
        let old = to_v0_1_7(Simulation::new(&opts));
        prop_assert!(sniff(old.as_bytes()).spans_lines);
        let batch = decode_text(old.clone().into_bytes()).unwrap();
        prop_assert_eq!(distinct_records(&batch), independent_count(old.as_bytes()));
    }

    #[test]
    fn queries_parse_or_give_a_located_error(
        base in prop::sample::select(vec![
            "(p:path {pathname:'/usr/bin/wget'}) -[:named]-> (f) | return f.id, f.type",
            "(t:task) -[:clone|exec_task*1..]-> (c:task) | where t.pid = 3666 | dedup c | return c.pid",
            "(a where name ~ 'x') -[*..4]- (b) | where not (a.pid = 1 or b.pid in [1,[2,[3]]]) | as dot",
            "() -[e where e.allowed = false]-> () | during @'2024-05-01T09:00'..@'2024-05-01T10:00' | count",
        ]),
        ms in proptest::collection::vec(mutation(), 0..4),
    ) {
        let text = String::from_utf8_lossy(&apply(base.as_bytes().to_vec(), &ms)).into_owned();
        if let Err(e) = no_hang("query parse", || provdb::query::parse(&text)) {
            prop_assert!(!e.message().is_empty());
        }
    }

    #[test]
    fn ini_text_never_fails(text in ".{0,2000}", mqtt in any::<bool>()) {
        let text = if mqtt { format!("[mqtt]\n{text}") } else { text };
        let _ = no_hang("ini parse", || provdb::ingest::MqttFileConfig::parse(&text));
    }
}

/// Whole files: mutated concatenations of documents, payloads and log lines. An import never
/// fails on content, and every non-blank line is a document, a rejection or a skipped line.
#[test]
fn imported_files_of_mutated_content_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let db = provdb::Database::open(dir.path()).unwrap();
    let files = tempfile::tempdir().unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(config(16));
    let content = proptest::collection::vec(
        prop_oneof![
            mutated(),
            mutated().prop_map(|d| payload_of(&d)),
            Just(b"Starting audit service...".to_vec()),
        ],
        1..6,
    );
    let n = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(&(content, any::<bool>()), |(parts, one_document)| {
            let case = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = files.path().join(format!("case-{case}.log"));
            let text = if one_document {
                // Starts like a pretty-printed document.
                let mut t = b"{\n".to_vec();
                t.extend(parts.concat());
                t
            } else {
                parts.join(&b"\n"[..])
            };
            std::fs::write(&path, &text).unwrap();
            let report = no_hang("import", || db.import_files(&[path], &mut |_| {})).unwrap();
            for r in &report.rejections {
                check_error(&r.error);
            }
            prop_assert!(
                report.documents + report.rejected + report.skipped_lines <= report.lines.max(1)
            );
            Ok(())
        })
        .unwrap();
    db.close().unwrap();
}
