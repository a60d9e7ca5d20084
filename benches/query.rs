//! Query latency on simulated archives: the shared W3C samples replicated as distinct machines
//! until the archive holds the asked number of edges (env `PROVDB_BENCH_EDGES`, default
//! `1000000`; e.g. `1000000,10000000`). Built archives are cached under
//! `target/bench-archives/edges-N` and reused. Prints median and p99 per query and size, then
//! runs the criterion benchmarks.

#![allow(missing_docs)] // criterion_group! generates undocumented public items

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use provdb::Database;

const V2: &str = "AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA=";
const WGET_FILE: &str = "AAIAAAAAACBw8gEAAAAAAAEAAABTTLt0AAAAAAAAAAA=";

fn sizes() -> Vec<u64> {
    std::env::var("PROVDB_BENCH_EDGES")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn archive(edges: u64) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-archives")
        .join(format!("edges-{edges}"));
    if dir.join("COMPLETE").exists() {
        return Some(dir);
    }
    let samples = common::w3c_samples()?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok()?;
    let db = Database::open(&dir).ok()?;
    let started = Instant::now();
    let mut k = 0;
    while db.stats().ok()?.edges < edges {
        for doc in common::replica(&samples, k) {
            let _ = db.ingest_json(doc.into_bytes());
        }
        k += 1;
    }
    let stats = db.stats().ok()?;
    eprintln!(
        "built {} ({} vertices, {} edges, {k} replicas) in {:.0} s",
        dir.display(),
        stats.vertices,
        stats.edges,
        started.elapsed().as_secs_f64()
    );
    db.close().ok()?;
    std::fs::write(dir.join("COMPLETE"), b"").ok()?;
    Some(dir)
}

fn queries() -> Vec<(&'static str, String)> {
    vec![
        (
            "1-hop neighbours",
            format!("(v {{id:'{V2}'}}) -[]- (n) | count"),
        ),
        (
            "3-hop lineage",
            format!("(v {{id:'{V2}'}}) <-[*1..3]- (a) | dedup a | count"),
        ),
        (
            "5-hop descendants",
            format!("(v {{id:'{V2}'}}) -[*1..5]-> (d) | dedup d | count"),
        ),
        ("count read edges", "() -[e:read]-> () | count".into()),
        ("count tasks", "(t:task) | count".into()),
        (
            "path between two vertices",
            format!("(a {{id:'{V2}'}}) -[*..8]- (b {{id:'{WGET_FILE}'}}) | shortest | path"),
        ),
        (
            "limit 10 of all reads",
            "(f) -[:read]-> (t) | limit 10 | return f.id, t.id".into(),
        ),
    ]
}

fn percentiles(db: &Database, q: &str) -> (Duration, Duration) {
    let mut samples = Vec::new();
    let budget = Instant::now();
    while samples.len() < 200 && (samples.len() < 10 || budget.elapsed() < Duration::from_secs(10))
    {
        let t = Instant::now();
        let r = db.query(q).expect("query runs");
        samples.push(t.elapsed());
        std::hint::black_box(r);
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    (median, p99)
}

fn bench(c: &mut Criterion) {
    for edges in sizes() {
        let Some(dir) = archive(edges) else {
            eprintln!("skipping the query benchmark: no samples");
            return;
        };
        let db = Database::open_read_only(&dir).expect("open archive");
        for (name, q) in queries() {
            let (median, p99) = percentiles(&db, &q);
            println!(
                "query {edges} edges | {name:<26} | median {:>10.3} ms | p99 {:>10.3} ms",
                median.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            );
        }
        let mut group = c.benchmark_group(format!("query-{edges}"));
        group.sample_size(20);
        for (name, q) in queries() {
            group.bench_function(name, |b| b.iter(|| db.query(&q).expect("query runs")));
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
