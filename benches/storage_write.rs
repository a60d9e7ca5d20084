//! Storage write throughput (records/s into RocksDB, decoding excluded), and an archive build
//! (CamFlow JSON -> store, decoding included) reporting load rate and bytes on disk per record
//! after compaction.
//!
//! `PROVDB_BENCH_ARCHIVE_EDGES` (default 1000000; 0 skips) sets the archive size.

#![allow(missing_docs)] // criterion_group! generates undocumented public items

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use provdb::decode::decode_text;
use provdb::RecordBatch;
use provdb_storage::Store;

fn decoded_replicas(samples: &[(u32, Vec<String>)], replicas: u32) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    let mut current = RecordBatch::default();
    for k in 0..replicas {
        for doc in common::replica(samples, k) {
            current.append(decode_text(doc.into_bytes()).expect("sample decodes"));
            if current.len() >= 50_000 {
                batches.push(std::mem::take(&mut current));
            }
        }
    }
    batches.push(current);
    batches
}

fn bench_writes(c: &mut Criterion) {
    let Some(samples) = common::w3c_samples() else {
        return;
    };
    let batches = decoded_replicas(&samples, 20);
    let records: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let mut group = c.benchmark_group("storage");
    group.sample_size(10);
    group.throughput(Throughput::Elements(records));
    group.bench_function("write_records", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = Store::open(dir.path()).expect("open");
                let start = Instant::now();
                for batch in &batches {
                    store.write(batch).expect("write");
                }
                store.flush().expect("flush");
                total += start.elapsed();
                store.close().expect("close");
            }
            total
        })
    });
    group.finish();
    archive_build(&samples);
}

/// One archive build, timed end to end: decode + write + flush, then compaction and size.
fn archive_build(samples: &[(u32, Vec<String>)]) {
    let target: u64 = std::env::var("PROVDB_BENCH_ARCHIVE_EDGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    if target == 0 {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = provdb::Database::open(dir.path()).expect("open");
    let start = Instant::now();
    let loaded = common::load_replicas(&db, samples, target);
    let (k, json_bytes) = (loaded.replicas, loaded.json_bytes);
    db.store().flush().expect("flush");
    let load = start.elapsed().as_secs_f64();
    let stats = db.stats().expect("stats");
    db.store().compact().expect("compact");
    let bytes = db.store().disk_size().expect("size");
    let records = stats.vertices + stats.edges;
    println!(
        "archive: {} replicas, {} vertices, {} edges, {:.1} MB JSON in {:.1}s: {:.0} records/s, {:.0} edges/s, {:.1} MB/s JSON",
        k,
        stats.vertices,
        stats.edges,
        json_bytes as f64 / 1e6,
        load,
        records as f64 / load,
        stats.edges as f64 / load,
        json_bytes as f64 / 1e6 / load
    );
    println!(
        "archive on disk after compaction: {} bytes, {:.1} B/edge, {:.1} B/record",
        bytes,
        bytes as f64 / stats.edges as f64,
        bytes as f64 / records as f64
    );
    db.close().expect("close");
}

criterion_group!(benches, bench_writes);
criterion_main!(benches);
