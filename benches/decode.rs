//! Decode throughput: CamFlow JSON documents and MQTT payloads (base64 + zlib + JSON) to
//! storage records, on documents of the real samples.

#![allow(missing_docs)] // criterion_group! generates undocumented public items

mod common;

use std::io::Write as _;

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use provdb::decode::{decode_payload, decode_text, DEFAULT_MAX_INFLATED};

fn payload(doc: &str) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(doc.as_bytes()).expect("in-memory write");
    let compressed = z.finish().expect("in-memory write");
    base64::engine::general_purpose::STANDARD
        .encode(compressed)
        .into_bytes()
}

fn bench_decode(c: &mut Criterion) {
    let Some(samples) = common::w3c_samples() else {
        return;
    };
    let docs = common::replica(&samples, 0);
    let payloads: Vec<Vec<u8>> = docs.iter().map(|d| payload(d)).collect();
    let json_bytes: u64 = docs.iter().map(|d| d.len() as u64).sum();
    let records: u64 = docs
        .iter()
        .map(|d| decode_text(d.clone().into_bytes()).map_or(0, |b| b.len() as u64))
        .sum();
    println!(
        "workload: {} documents, {} records, {} bytes of JSON, {} bytes of payload",
        docs.len(),
        records,
        json_bytes,
        payloads.iter().map(Vec::len).sum::<usize>()
    );

    let mut group = c.benchmark_group("decode");
    for (unit, throughput) in [
        ("bytes", Throughput::Bytes(json_bytes)),
        ("records", Throughput::Elements(records)),
    ] {
        group.throughput(throughput);
        group.bench_function(BenchmarkId::new("json_documents", unit), |b| {
            b.iter(|| {
                for d in &docs {
                    let batch = decode_text(d.clone().into_bytes()).expect("sample decodes");
                    std::hint::black_box(batch);
                }
            })
        });
        group.bench_function(BenchmarkId::new("mqtt_payloads", unit), |b| {
            b.iter(|| {
                for p in &payloads {
                    let batch = decode_payload(p, DEFAULT_MAX_INFLATED).expect("sample decodes");
                    std::hint::black_box(batch);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
