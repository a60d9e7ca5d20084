//! Load rate, size on disk and query latency on simulated archives, the workload of
//! `docs/peer-benchmarks.md`: the shared W3C samples replicated as distinct machines until the
//! archive holds the asked number of edges (env `PROVDB_BENCH_EDGES`, default `1000000`; e.g.
//! `1000000,10000000`).
//!
//! Each archive is built with the offline importer from a CamFlow W3C log of the replicas
//! (decoding included, every attribute kept, detection off: the graph alone, as the peers load
//! it) and its tables compacted without folding (`compact --keep-adjacency-tables`); the same
//! log is imported once more with the default detection rules, for the load rate and size of
//! `provdb import` as shipped. The peers' method runs on that archive, then on a copy folded
//! into the adjacency snapshot as the default `compact` leaves it. Archives live under
//! `target/bench-archives/edges-N` (`PROVDB_BENCH_REUSE=1` reuses one built before, with its
//! load figures, instead of loading again; `PROVDB_BENCH_KEEP=1` keeps the inputs beside it, to
//! profile with: the W3C log `edges-N.log` and the peers' folder `edges-N.peer`, with the
//! start vertices, the CSV and the SQLite database).
//!
//! Three sets of figures, over 200 fixed start vertices that have at least one edge:
//! 1. **The peers' method** (first touch): for each of Q1-Q4 a freshly started process opens
//!    the archive read-only and asks the question once per start, in order, fetching the
//!    vertex ids (`| dedup a | return a.id`); then asks them all once more (warm). Three such
//!    processes per question (`PROVDB_BENCH_PEER_ROUNDS`), alternated with SQLite's, each
//!    after a `sync`; medians and p99s are over the pooled times. Beside it,
//!    the same graph loaded into SQLite from CSV by `benches/sqlite_baseline.py` and queried
//!    the same way with recursive CTEs, in the same run: load rate, bytes per edge, medians and
//!    p99s, and the ratio provdb / SQLite. The two loads are then alternated
//!    (`PROVDB_BENCH_LOAD_ROUNDS`, default 3): provdb importing the W3C log into a new archive,
//!    SQLite loading the CSV, and Kuzu copying it where Python has `kuzu`; medians and the
//!    ratio of each round.
//!    To profile first touches alone, run a child by hand:
//!    `PROVDB_BENCH_CHILD='ARCHIVE|STARTS_FILE|Q2' PROVDB_BENCH_CHILD_FIRST_ONLY=1
//!    target/release/deps/query-*` (without `FIRST_ONLY` it also asks them all once more; `Qx`
//!    in place of `Q2` asks the question of `PROVDB_BENCH_QUERY`, `{}` for the start).
//! 2. Warm counts in this process (a warm-up pass, then a timed pass), for more query forms.
//! 3. criterion on one start vertex.

#![allow(missing_docs)] // criterion_group! generates undocumented public items

mod common;

/// The allocator of the `provdb` binary, tuned as `provdb query` tunes it (in the child that
/// answers) and as `provdb import` does (in the process that loads), so that the figures are
/// the binary's.
use common::{allocator, percentile};

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use provdb::{Database, DatabaseOptions, Detection, Direction, VertexId};

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

/// What one import of the bench log measured.
struct Loaded {
    seconds: f64,
    vertices: u64,
    edges: u64,
    rejected: u64,
    /// Size after compaction.
    bytes: u64,
}

/// Imports `log` into a new archive at `dir` (after a sync; timed up to the durable flush), then
/// compacts it.
fn load_into(dir: &Path, log: &Path, detection: Detection) -> Option<Loaded> {
    let (db, report, seconds) = timed_import(dir, log, detection)?;
    // Compacted as `provdb compact` does it, in a process of its own: with buffered writes
    // (the import's are direct), which leave the archive in the page cache, as the peers'
    // freshly loaded files are.
    db.close().ok()?;
    let db = Database::open_with(
        dir,
        DatabaseOptions {
            detection: Detection::Off,
            ..DatabaseOptions::default()
        },
    )
    .ok()?;
    let stats = db.stats().ok()?;
    // The tables compacted, not folded: the folded form is measured on a copy (below).
    db.store().compact_tables().ok()?;
    let bytes = db.store().disk_size().ok()?;
    db.close().ok()?;
    Some(Loaded {
        seconds,
        vertices: stats.vertices,
        edges: stats.edges,
        rejected: report.rejected,
        bytes,
    })
}

/// Imports `log` into a new archive at `dir` (after a sync), timed up to the durable flush.
fn timed_import(
    dir: &Path,
    log: &Path,
    detection: Detection,
) -> Option<(Database, provdb::ImportReport, f64)> {
    let options = DatabaseOptions {
        detection,
        // As `provdb import` opens it.
        direct_io_writes: true,
        ..DatabaseOptions::default()
    };
    let db = Database::open_with(dir, options).ok()?;
    // The log was just written: its writeback must not run during the timed load.
    sync_disks();
    let started = Instant::now();
    let report = db
        .import_files(std::slice::from_ref(&log.to_path_buf()), &mut |_| {})
        .ok()?;
    db.store().flush().ok()?;
    Some((db, report, started.elapsed().as_secs_f64()))
}

/// Builds (or finds) the archive of `edges` edges; returns its directory and load figures.
fn archive(edges: u64) -> Option<(PathBuf, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-archives");
    let dir = root.join(format!("edges-{edges}"));
    let figures = dir.join("LOAD");
    if std::env::var_os("PROVDB_BENCH_REUSE").is_some() {
        if let Ok(text) = std::fs::read_to_string(&figures) {
            return Some((dir, format!("(reused, not this run) {text}")));
        }
    }
    let samples = common::w3c_samples()?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&root).ok()?;
    let log = root.join(format!("edges-{edges}.log"));
    let replicas = write_log(&samples, &log, edges).ok()?;
    let json_bytes = std::fs::metadata(&log).ok()?.len();

    // The measured archive holds the graph alone, as the peers' stores do; the same log
    // imported again with the default detection rules gives the load figures of `provdb
    // import` as shipped (rules run, and their per-vertex facts take disk).
    let graph = load_into(&dir, &log, Detection::Off)?;
    let rules_dir = root.join(format!("edges-{edges}-rules"));
    let _ = std::fs::remove_dir_all(&rules_dir);
    let rules = load_into(&rules_dir, &log, Detection::DefaultPack)?;
    let _ = std::fs::remove_dir_all(&rules_dir);
    let records = graph.vertices + graph.edges;
    let text = format!(
        "{replicas} replicas, {} vertices, {} edges, {:.0} MB of W3C JSON imported in {:.1} s: \
         {:.0} edges/s, {:.0} records/s, {:.1} MB/s JSON (rejected {}); \
         {} bytes after compacting the tables (--keep-adjacency-tables) = {:.1} B/edge, {:.1} B/record; \
         with the default detection rules: {:.1} s, {:.0} edges/s, {:.1} B/edge",
        graph.vertices,
        graph.edges,
        json_bytes as f64 / 1e6,
        graph.seconds,
        graph.edges as f64 / graph.seconds,
        records as f64 / graph.seconds,
        json_bytes as f64 / 1e6 / graph.seconds,
        graph.rejected,
        graph.bytes,
        graph.bytes as f64 / graph.edges as f64,
        graph.bytes as f64 / records as f64,
        rules.seconds,
        rules.edges as f64 / rules.seconds,
        rules.bytes as f64 / rules.edges as f64,
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
        let start_ids: Vec<String> = ends.iter().map(|(v, _)| v.clone()).collect();
        peer_method(edges, &dir, &db, &start_ids, &load);
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
                "warm count {edges} edges | {name:<30} | median {:>9.3} ms | p99 {:>9.3} ms | {} starts",
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

/// The peers' four questions, returning ids, for the fresh-process measurement. A child run by
/// hand can ask any other question instead: `Qx` reads it from `PROVDB_BENCH_QUERY`, with `{}`
/// standing for the start (to time a question's parts apart, e.g. the start's look-up alone).
fn peer_query(name: &str, v: &str) -> String {
    match name {
        "Qx" => std::env::var("PROVDB_BENCH_QUERY")
            .expect("Qx reads its question from PROVDB_BENCH_QUERY")
            .replace("{}", v),
        "Q1" => "() -[:read]-> () | count".into(),
        "Q2" => format!("(v {{id:'{v}'}}) <-[*1..3]- (a) | dedup a | return a.id"),
        "Q3" => format!("(v {{id:'{v}'}}) -[*1..5]-> (d) | dedup d | return d.id"),
        _ => format!("(v {{id:'{v}'}}) -[:read|write]-> (n) | dedup n | return n.id"),
    }
}

const PEER_QUERIES: [&str; 4] = ["Q1", "Q2", "Q3", "Q4"];

/// What one fresh process measured for one question over every start.
struct PeerTimes {
    first: Vec<Duration>,
    warm: Vec<Duration>,
    rows: u64,
}

/// The child process of the peers' method: opens the archive read-only, asks `query` once per
/// start, in order, then once more; prints the times in milliseconds and the row count in the
/// format of `sqlite_baseline.py`.
fn peer_child(spec: &str) {
    let mut parts = spec.splitn(3, '|');
    let (Some(dir), Some(starts), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("PROVDB_BENCH_CHILD is DIR|STARTS|Qn");
    };
    let starts = std::fs::read_to_string(starts).expect("starts file");
    let starts: Vec<&str> = starts.lines().filter(|l| !l.is_empty()).collect();
    let db = Database::open_read_only(dir).expect("open archive read-only");
    let mut rows = 0;
    // `PROVDB_BENCH_CHILD_FIRST_ONLY=1` skips the warm pass: a profile of first touches alone.
    // `PROVDB_BENCH_CHILD_WARM_PASSES=N` repeats the warm pass N times: a profile of warm
    // questions alone.
    let warm_passes: usize = std::env::var("PROVDB_BENCH_CHILD_WARM_PASSES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let passes: Vec<&str> = if std::env::var_os("PROVDB_BENCH_CHILD_FIRST_ONLY").is_some() {
        vec!["first"]
    } else {
        std::iter::once("first")
            .chain(std::iter::repeat_n("warm", warm_passes))
            .collect()
    };
    for label in passes.iter().copied() {
        let mut times = Vec::with_capacity(starts.len());
        for v in &starts {
            let text = peer_query(name, v);
            let t = Instant::now();
            let result = db.query(&text).expect("query runs");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            if label == "first" {
                rows += result.rows.len() as u64;
            }
            std::hint::black_box(result);
        }
        let text: Vec<String> = times.iter().map(|ms| format!("{ms:.6}")).collect();
        println!("times {label} {}", text.join(" "));
    }
    println!("rows {rows}");
}

/// Parses the `times first ...`, `times warm ...`, `rows N` lines of a child (provdb's or
/// SQLite's).
fn parse_peer_times(out: &str) -> Option<PeerTimes> {
    let mut times = PeerTimes {
        first: Vec::new(),
        warm: Vec::new(),
        rows: 0,
    };
    for line in out.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("times"), Some(label)) => {
                let list: Vec<Duration> = words
                    .filter_map(|w| w.parse::<f64>().ok())
                    .map(|ms| Duration::from_secs_f64(ms / 1e3))
                    .collect();
                if label == "first" {
                    times.first = list;
                } else {
                    times.warm = list;
                }
            }
            (Some("rows"), Some(n)) => times.rows = n.parse().ok()?,
            _ => {}
        }
    }
    (!times.first.is_empty()).then_some(times)
}

fn run_child(command: &mut Command) -> Option<PeerTimes> {
    let out = command.output().ok()?;
    if !out.status.success() {
        eprintln!(
            "peer measurement failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    parse_peer_times(&String::from_utf8_lossy(&out.stdout))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Writes the graph as the peers load it: vertices.csv (id, type) and edges.csv (id, type,
/// src, dst), external ids as text.
fn write_csv(db: &Database, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let store = db.store();
    let mut ids = Vec::new();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("vertices.csv"))?);
    for v in store.scan_vertices() {
        let v = v.map_err(std::io::Error::other)?;
        let id = v.ext_id.to_string();
        writeln!(out, "{id},{}", v.type_name)?;
        let index = v.id.0 as usize;
        if ids.len() <= index {
            ids.resize(index + 1, String::new());
        }
        ids[index] = id;
    }
    out.flush()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("edges.csv"))?);
    for e in store.scan_edges() {
        let e = e.map_err(std::io::Error::other)?;
        let (src, dst) = (&ids[e.src.0 as usize], &ids[e.dst.0 as usize]);
        writeln!(out, "{},{},{src},{dst}", e.ext_id, e.type_name)?;
    }
    out.flush()
}

/// Adds one child's times to the pool of a question (rows are counted once: every round
/// returns the same).
fn pool(into: &mut Option<PeerTimes>, round: Option<PeerTimes>) {
    let Some(round) = round else { return };
    match into {
        Some(times) => {
            times.first.extend(round.first);
            times.warm.extend(round.warm);
        }
        None => *into = Some(round),
    }
}

/// Writes dirty pages back (`sync(2)`), so a measurement does not share the disk with the
/// writeback of what ran before it.
fn sync_disks() {
    // SAFETY: sync takes no arguments and only schedules and waits for writeback.
    #[allow(unsafe_code)]
    unsafe {
        libc::sync()
    };
}

/// The peers' method, provdb beside SQLite on the same graph, in this run.
fn peer_method(edges: u64, dir: &Path, db: &Database, starts: &[String], load_figures: &str) {
    let work = dir.with_extension("peer");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("peer work folder");
    let starts_file = work.join("starts.txt");
    std::fs::write(&starts_file, starts.join("\n")).expect("starts file");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/sqlite_baseline.py");
    let sqlite_db = work.join("sqlite.db");
    // After a sync, as before provdb's load: the CSV's writeback must not run during this one.
    let sqlite_load = write_csv(db, &work)
        .ok()
        .and_then(|()| baseline_load(&script, &work, &sqlite_db));
    match &sqlite_load {
        Some(load) => println!(
            "peer method {edges} edges | SQLite load from CSV: {:.0} edges/s, {:.0} B/edge | provdb: {load_figures}",
            load.edges / load.seconds,
            load.bytes / load.edges
        ),
        None => println!(
            "peer method {edges} edges | SQLite baseline SKIPPED (python3 with sqlite3 needed)"
        ),
    }
    if sqlite_load.is_some() {
        load_rounds(edges, dir, &script);
    }
    let sqlite = sqlite_load.is_some().then_some(SqliteBaseline {
        script: &script,
        db: &sqlite_db,
    });
    networkx_baseline(edges, &work, &starts_file);
    compare_queries(edges, dir, &starts_file, sqlite.as_ref(), "");
    // A copy of the archive folded as `compact` does by default, against SQLite again in this
    // run (the archive itself stays unfolded, as `compact --keep-adjacency-tables` leaves it,
    // for the next run).
    let folded_dir = dir.with_extension("folded");
    let _ = std::fs::remove_dir_all(&folded_dir);
    let folded = Database::open(dir)
        .and_then(|db| {
            db.store().backup_to(&folded_dir)?;
            db.close()
        })
        .and_then(|()| {
            let db = Database::open(&folded_dir)?;
            let bytes = db.store().fold_adjacency()?;
            let total = db.store().disk_size()?;
            db.close()?;
            Ok((bytes, total))
        });
    match folded {
        Ok((bytes, total)) => {
            println!(
                "peer method {edges} edges | folded into the adjacency snapshot (default \
                 `compact`): {:.1} B/edge in all (the snapshot {:.1})",
                total as f64 / edges as f64,
                bytes as f64 / edges as f64
            );
            compare_queries(
                edges,
                &folded_dir,
                &starts_file,
                sqlite.as_ref(),
                " (adjacency snapshot)",
            );
        }
        Err(e) => println!("peer method {edges} edges | adjacency snapshot FAILED: {e}"),
    }
    let _ = std::fs::remove_dir_all(&folded_dir);
    if !keep_inputs() {
        let _ = std::fs::remove_dir_all(&work);
        let _ = std::fs::remove_file(dir.with_extension("log"));
    }
}

/// What a baseline script's `load` printed: "load <seconds> <edges> <bytes>".
struct BaselineLoad {
    seconds: f64,
    edges: f64,
    bytes: f64,
}

/// Runs `script load CSV_DIR DB` (`benches/sqlite_baseline.py`, `benches/kuzu_baseline.py`)
/// after a sync; `None` when it fails or prints something else.
fn baseline_load(script: &Path, csv_dir: &Path, db: &Path) -> Option<BaselineLoad> {
    sync_disks();
    let out = Command::new("python3")
        .arg(script)
        .arg("load")
        .arg(csv_dir)
        .arg(db)
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect();
    match f[..] {
        [seconds, edges, bytes] => Some(BaselineLoad {
            seconds,
            edges,
            bytes,
        }),
        _ => None,
    }
}

/// The load rates of provdb, SQLite and Kuzu alternated (`PROVDB_BENCH_LOAD_ROUNDS` rounds,
/// default 3; 0 leaves them out), each after a sync: one load of each is one sample of a noisy
/// machine, and their ratio swung by 10% between runs. provdb imports the W3C log (decoding
/// every attribute, detection off) into a new archive, timed up to the durable flush; SQLite
/// loads the CSV of the same graph and builds its indexes (`benches/sqlite_baseline.py`); Kuzu
/// copies the same CSV (`benches/kuzu_baseline.py`, left out where Python lacks `kuzu`). Needs
/// the log (kept from this run's load, or from one with `PROVDB_BENCH_KEEP=1`).
fn load_rounds(edges: u64, dir: &Path, script: &Path) {
    let rounds: usize = std::env::var("PROVDB_BENCH_LOAD_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let log = dir.with_extension("log");
    if rounds == 0 {
        return;
    }
    if !log.exists() {
        println!("load rounds {edges} edges | SKIPPED: no W3C log (reused archive without PROVDB_BENCH_KEEP)");
        return;
    }
    let work = dir.with_extension("peer");
    let round_dir = dir.with_extension("load-round");
    let round_db = work.join("sqlite-round.db");
    let kuzu_script = script.with_file_name("kuzu_baseline.py");
    let kuzu_db = work.join("kuzu-round.db");
    let with_kuzu = Command::new("python3")
        .args(["-c", "import kuzu"])
        .output()
        .is_ok_and(|out| out.status.success());
    let peer_load = |script: &Path, db: &Path| baseline_load(script, &work, db).map(|l| l.seconds);
    let (mut ours, mut sqlite_times, mut kuzu_times) = (Vec::new(), Vec::new(), Vec::new());
    let (mut vs_sqlite, mut vs_kuzu) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let sqlite = peer_load(script, &round_db);
        let kuzu = if with_kuzu {
            peer_load(&kuzu_script, &kuzu_db)
        } else {
            None
        };
        let _ = std::fs::remove_dir_all(&round_dir);
        let provdb = timed_import(&round_dir, &log, Detection::Off).and_then(|(db, _, seconds)| {
            db.close().ok()?;
            Some(seconds)
        });
        let _ = std::fs::remove_dir_all(&round_dir);
        let (Some(sqlite), Some(provdb)) = (sqlite, provdb) else {
            println!("load rounds {edges} edges | FAILED (a load did not complete)");
            return;
        };
        sqlite_times.push(sqlite);
        ours.push(provdb);
        vs_sqlite.push(sqlite / provdb);
        if let Some(kuzu) = kuzu {
            kuzu_times.push(kuzu);
            vs_kuzu.push(kuzu / provdb);
        }
    }
    for f in [
        &round_db,
        &round_db.with_extension("db-wal"),
        &round_db.with_extension("db-shm"),
        &kuzu_db,
        &kuzu_db.with_extension("db.wal"),
    ] {
        let _ = std::fs::remove_file(f);
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let listed = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "load rounds {edges} edges | {rounds} alternated | provdb import median {:.2} s | SQLite load median {:.2} s | provdb load rate / SQLite's per round: {} (median {:.2})",
        median(&ours),
        median(&sqlite_times),
        listed(&vs_sqlite),
        median(&vs_sqlite),
    );
    if kuzu_times.len() == rounds {
        println!(
            "load rounds {edges} edges | Kuzu COPY median {:.2} s | provdb load rate / Kuzu's per round: {} (median {:.2})",
            median(&kuzu_times),
            listed(&vs_kuzu),
            median(&vs_kuzu),
        );
    } else {
        println!("load rounds {edges} edges | Kuzu SKIPPED (pip install kuzu to compare)");
    }
}

/// The in-memory peer (networkx, `benches/networkx_baseline.py`) on the same CSV, in this run:
/// one process loads the graph and asks Q1-Q4; a line per question.
fn networkx_baseline(edges: u64, csv_dir: &Path, starts_file: &Path) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/networkx_baseline.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(csv_dir)
        .arg(starts_file)
        .output();
    let text = match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => {
            println!("peer method {edges} edges | networkx baseline SKIPPED (python3 with networkx needed)");
            return;
        }
    };
    println!(
        "peer method {edges} edges | networkx (in memory) | query | first median / p99 ms | warm median / p99 ms | rows"
    );
    for section in text.split("query ").skip(1) {
        let name = section.split_whitespace().next().unwrap_or("?");
        let Some(mut times) = parse_peer_times(section) else {
            continue;
        };
        times.first.sort();
        times.warm.sort();
        println!(
            "peer method {edges} edges | networkx (in memory) | {name} | {:.4} / {:.4} | {:.4} / {:.4} | {}",
            ms(percentile(&times.first, 50)),
            ms(percentile(&times.first, 99)),
            ms(percentile(&times.warm, 50)),
            ms(percentile(&times.warm, 99)),
            times.rows
        );
    }
}

/// The SQLite side of the peers' method: its script and loaded database.
struct SqliteBaseline<'a> {
    script: &'a Path,
    db: &'a Path,
}

/// Asks each peer question of provdb's archive at `dir` and of SQLite, in fresh processes,
/// alternated, and prints a line per question; `variant` names what is measured.
fn compare_queries(
    edges: u64,
    dir: &Path,
    starts_file: &Path,
    sqlite_baseline: Option<&SqliteBaseline<'_>>,
    variant: &str,
) {
    println!(
        "peer method {edges} edges | query | provdb{variant} first median / p99 ms | SQLite first median / p99 ms | ratio | provdb warm median / p99 | SQLite warm median | rows provdb / SQLite"
    );
    let exe = std::env::current_exe().expect("bench executable");
    let rounds = std::env::var("PROVDB_BENCH_PEER_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(3)
        .max(1);
    for name in PEER_QUERIES {
        // Fresh processes, provdb and SQLite alternated; each child starts after a sync, so
        // neither pays for the other's (or the archive build's) writeback. The rounds' times
        // are pooled.
        let mut provdb: Option<PeerTimes> = None;
        let mut sqlite: Option<PeerTimes> = None;
        for _ in 0..rounds {
            sync_disks();
            let p = run_child(Command::new(&exe).env(
                "PROVDB_BENCH_CHILD",
                format!("{}|{}|{name}", dir.display(), starts_file.display()),
            ));
            pool(&mut provdb, p);
            if let Some(baseline) = sqlite_baseline {
                sync_disks();
                let s = run_child(
                    Command::new("python3")
                        .arg(baseline.script)
                        .arg("query")
                        .arg(baseline.db)
                        .arg(starts_file)
                        .arg(name),
                );
                pool(&mut sqlite, s);
            }
        }
        let Some(mut p) = provdb else { continue };
        p.first.sort();
        p.warm.sort();
        let (s_first, s_warm, s_rows, ratio) = match sqlite {
            Some(mut s) => {
                s.first.sort();
                s.warm.sort();
                let ratio = ms(percentile(&p.first, 50)) / ms(percentile(&s.first, 50));
                (
                    format!(
                        "{:.3} / {:.3}",
                        ms(percentile(&s.first, 50)),
                        ms(percentile(&s.first, 99))
                    ),
                    format!("{:.3}", ms(percentile(&s.warm, 50))),
                    s.rows.to_string(),
                    format!("{ratio:.2}x"),
                )
            }
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        println!(
            "peer method {edges} edges | {name} | {:.3} / {:.3} | {s_first} | {ratio} | {:.3} / {:.3} | {s_warm} | {} / {s_rows}",
            ms(percentile(&p.first, 50)),
            ms(percentile(&p.first, 99)),
            ms(percentile(&p.warm, 50)),
            ms(percentile(&p.warm, 99)),
            p.rows,
        );
    }
}

/// `PROVDB_BENCH_KEEP` is set: keep the log and the peers' folder.
fn keep_inputs() -> bool {
    std::env::var_os("PROVDB_BENCH_KEEP").is_some()
}

fn main() {
    if let Ok(spec) = std::env::var("PROVDB_BENCH_CHILD") {
        allocator::tune(allocator::Workload::Query);
        peer_child(&spec);
        return;
    }
    // This process builds the archives (the load figures).
    allocator::tune(allocator::Workload::Batch);
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
