//! Load rate, size on disk and query latency on simulated archives, the workload of
//! `docs/peer-benchmarks.md`: the shared W3C samples replicated as distinct machines until the
//! archive holds the asked number of edges (env `PROVDB_BENCH_EDGES`, default `1000000`; e.g.
//! `1000000,10000000`).
//!
//! Each archive is built once with the offline importer from a CamFlow W3C log of the replicas
//! (decoding included, every attribute kept), compacted, and cached under
//! `target/bench-archives/edges-N` with its load figures. Queries run through the query
//! language, over 200 fixed start vertices that have at least one edge (warm cache, one
//! thread); the benchmark prints median and p99 per query and size, then runs criterion on one
//! start vertex.

#![allow(missing_docs)] // criterion_group! generates undocumented public items

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use provdb::{Database, Direction, VertexId};

/// Start vertices per query, as in the peer benchmarks.
const STARTS: usize = 200;

fn sizes() -> Vec<u64> {
    std::env::var("PROVDB_BENCH_EDGES")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Writes replicas of the samples to `log` until they hold at least `edges` edges (counted
/// from the first replica's edge count: every replica has the same shape).
fn write_log(samples: &[(u32, Vec<String>)], log: &Path, edges: u64) -> std::io::Result<u32> {
    let probe = tempfile::tempdir()?;
    let db = Database::open(probe.path()).expect("open probe");
    let per_replica = common::load_replicas(&db, samples, 1).edges.max(1);
    db.close().expect("close probe");
    let replicas = edges.div_ceil(per_replica) as u32;
    let mut out = std::io::BufWriter::new(std::fs::File::create(log)?);
    for k in 0..replicas {
        for doc in common::replica(samples, k) {
            writeln!(out, "{doc}")?;
        }
    }
    out.flush()?;
    Ok(replicas)
}

/// Builds (or finds) the archive of `edges` edges; returns its directory and load figures.
fn archive(edges: u64) -> Option<(PathBuf, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-archives");
    let dir = root.join(format!("edges-{edges}"));
    let figures = dir.join("LOAD");
    if let Ok(text) = std::fs::read_to_string(&figures) {
        return Some((dir, text));
    }
    let samples = common::w3c_samples()?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&root).ok()?;
    let log = root.join(format!("edges-{edges}.log"));
    let replicas = write_log(&samples, &log, edges).ok()?;
    let json_bytes = std::fs::metadata(&log).ok()?.len();

    let db = Database::open(&dir).ok()?;
    let started = Instant::now();
    let report = db
        .import_files(std::slice::from_ref(&log), &mut |_| {})
        .ok()?;
    db.store().flush().ok()?;
    let load = started.elapsed().as_secs_f64();
    let stats = db.stats().ok()?;
    db.store().compact().ok()?;
    let bytes = db.store().disk_size().ok()?;
    db.close().ok()?;
    let _ = std::fs::remove_file(&log);
    let records = stats.vertices + stats.edges;
    let text = format!(
        "{replicas} replicas, {} vertices, {} edges, {:.0} MB of W3C JSON imported in {load:.1} s: \
         {:.0} edges/s, {:.0} records/s, {:.1} MB/s JSON (rejected {}); \
         {bytes} bytes after compaction = {:.1} B/edge, {:.1} B/record",
        stats.vertices,
        stats.edges,
        json_bytes as f64 / 1e6,
        stats.edges as f64 / load,
        records as f64 / load,
        json_bytes as f64 / 1e6 / load,
        report.rejected,
        bytes as f64 / stats.edges as f64,
        bytes as f64 / records as f64,
    );
    std::fs::write(&figures, &text).ok()?;
    Some((dir, text))
}

/// 200 vertices spread over the whole id range (a fixed stride), each with at least one edge.
fn start_vertices(db: &Database) -> Vec<VertexId> {
    let store = db.store();
    let n = store.vertex_count().expect("count");
    let stride = (n / STARTS as u64 / 2).max(1) | 1;
    let mut starts = Vec::new();
    let mut i = 7 % n.max(1);
    while starts.len() < STARTS && i < n {
        let v = VertexId(i);
        if store.neighbours(v, Direction::Both, &[]).next().is_some() {
            starts.push(v);
        }
        i += stride;
    }
    starts
}

/// The farthest vertex a breadth-first walk over both directions reaches within 4 hops of `v`:
/// the other end of the path query.
fn far_vertex(db: &Database, v: VertexId) -> VertexId {
    let store = db.store();
    let mut seen = std::collections::HashSet::from([v]);
    let mut frontier = vec![v];
    let mut last = v;
    for _ in 0..4 {
        let mut next = Vec::new();
        for u in frontier {
            for a in store.neighbours(u, Direction::Both, &[]) {
                let a = a.expect("scan");
                if seen.insert(a.neighbour) {
                    next.push(a.neighbour);
                    last = a.neighbour;
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    last
}

fn external(db: &Database, v: VertexId) -> String {
    db.store()
        .vertex(v)
        .expect("read")
        .expect("vertex exists")
        .ext_id
        .to_string()
}

/// The queries: name and text, given a start vertex and the other end of a path.
fn queries(v: &str, far: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Q1 count read edges", "() -[:read]-> () | count".into()),
        (
            "Q2 ancestors within 3 hops",
            format!("(v {{id:'{v}'}}) <-[*1..3]- (a) | dedup a | count"),
        ),
        (
            "Q3 descendants within 5 hops",
            format!("(v {{id:'{v}'}}) -[*1..5]-> (d) | dedup d | count"),
        ),
        (
            "Q4 out-neighbours read|write",
            format!("(v {{id:'{v}'}}) -[:read|write]-> (n) | dedup n | count"),
        ),
        (
            "1-hop neighbours, any edge",
            format!("(v {{id:'{v}'}}) -[]- (n) | count"),
        ),
        ("count task vertices", "(t:task) | count".into()),
        (
            "shortest path (<= 8 hops)",
            format!("(a {{id:'{v}'}}) -[*..8]- (b {{id:'{far}'}}) | shortest | path"),
        ),
    ]
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn bench(c: &mut Criterion) {
    let machine = format!(
        "{} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for edges in sizes() {
        let Some((dir, load)) = archive(edges) else {
            eprintln!("skipping the query benchmark: no samples");
            return;
        };
        println!("archive {edges} edges ({machine}): {load}");
        let db = Database::open_read_only(&dir).expect("open archive");
        let edge_count = db.stats().expect("stats").edges.max(1) as f64;
        let by_cf: Vec<String> = db
            .store()
            .disk_size_by_column_family()
            .expect("sizes")
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("{name} {:.1}", n as f64 / edge_count))
            .collect();
        println!("bytes per edge by column family: {}", by_cf.join(", "));
        let starts = start_vertices(&db);
        let ends: Vec<(String, String)> = starts
            .iter()
            .map(|&v| (external(&db, v), external(&db, far_vertex(&db, v))))
            .collect();
        let names: Vec<&str> = queries("", "").iter().map(|(n, _)| *n).collect();
        for (qi, name) in names.iter().enumerate() {
            // One warm-up pass over all starts, then the timed pass.
            let mut times = Vec::with_capacity(ends.len());
            for pass in 0..2 {
                for (v, far) in &ends {
                    let q = &queries(v, far)[qi].1;
                    let t = Instant::now();
                    let r = db.query(q).expect("query runs");
                    let elapsed = t.elapsed();
                    std::hint::black_box(r);
                    if pass == 1 {
                        times.push(elapsed);
                    }
                }
            }
            times.sort();
            println!(
                "query {edges} edges | {name:<30} | median {:>9.3} ms | p99 {:>9.3} ms | {} starts",
                percentile(&times, 50).as_secs_f64() * 1e3,
                percentile(&times, 99).as_secs_f64() * 1e3,
                times.len()
            );
        }
        let mut group = c.benchmark_group(format!("query-{edges}"));
        group.sample_size(20);
        let (v, far) = &ends[0];
        for (name, q) in queries(v, far) {
            group.bench_function(name, |b| b.iter(|| db.query(&q).expect("query runs")));
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
