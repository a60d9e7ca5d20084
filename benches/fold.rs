//! How long writes wait while the archive folds, as `provdb serve` folds beside its ingest:
//! a simulated fleet (`PROVDB_FOLD_BENCH_MACHINES` machines, default 10, of
//! `PROVDB_FOLD_BENCH_DOCS` documents each, default 5000, 50 records a document) imported
//! offline and not compacted (as `serve` leaves an archive), then folded while a thread writes
//! one-edge batches back to back, each timed. Reported: the fold's time, and the writes that
//! started while it ran: how many completed, their median, p99 and longest latency. A fold
//! holds the writer only to plan (a flush) and to name its generation: the longest write is
//! what ingest waits at most, against the fold's time in the same run.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use provdb::simulate::{Simulation, SimulationOptions};
use provdb::{Database, DatabaseOptions, Detection};
use provdb_storage::{
    EdgeInput, EndpointInput, ExternalId, Placement, ProvRelation, RecordBatch, Store,
};

/// The allocator of the `provdb` binary, tuned as `provdb serve` tunes it.
mod common;
use common::{allocator, env_or, percentile};

/// One new edge between two new vertices of the bench's own.
fn one_edge(i: u64) -> RecordBatch {
    let endpoint = |v: String| EndpointInput {
        ext_id: ExternalId::parse(&v),
        type_hint: Some("task".into()),
    };
    RecordBatch {
        edges: vec![EdgeInput {
            ext_id: ExternalId::parse(&format!("fold-bench-e{i}")),
            type_name: "clone".into(),
            relation: ProvRelation::WasInformedBy,
            src: endpoint(format!("fold-bench-v{i}")),
            dst: endpoint(format!("fold-bench-v{}", i + 1)),
            placement: Placement::default(),
            attrs: vec![],
        }],
        ..Default::default()
    }
}

/// Writes one-edge batches until `stop`, and returns the latency of each write that started
/// once `folding` was set.
fn write_until(store: &Store, folding: &AtomicBool, stop: &AtomicBool) -> Vec<Duration> {
    let mut during = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Acquire) {
        let counted = folding.load(Ordering::Acquire);
        let started = Instant::now();
        if let Err(e) = store.write(&one_edge(i)) {
            eprintln!("fold bench: a write failed: {e}");
            break;
        }
        if counted {
            during.push(started.elapsed());
        }
        i += 1;
    }
    during
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    allocator::tune(allocator::Workload::Service);
    let machines = env_or("PROVDB_FOLD_BENCH_MACHINES", 10) as u32;
    let documents = env_or("PROVDB_FOLD_BENCH_DOCS", 5000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-archives");
    let dir = root.join(format!("fold-{machines}x{documents}"));
    let log = root.join(format!("fold-{machines}x{documents}.log"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&root).expect("bench folder");
    let simulation = Simulation::new(&SimulationOptions {
        seed: 3,
        machines,
        documents_per_machine: documents,
        records_per_document: 50,
    });
    // Streamed to the file: the log of 8M edges is some 3.5 GB.
    let mut out = std::io::BufWriter::new(std::fs::File::create(&log).expect("creating the log"));
    for doc in simulation {
        writeln!(out, "{}", doc.json).expect("writing the log");
    }
    out.flush().expect("writing the log");
    drop(out);

    let db = Database::open_with(
        &dir,
        DatabaseOptions {
            detection: Detection::Off,
            direct_io_writes: true,
            ..DatabaseOptions::default()
        },
    )
    .expect("open");
    let started = Instant::now();
    db.import_files(std::slice::from_ref(&log), &mut |_| {})
        .expect("import");
    db.store().flush().expect("flush");
    let edges = db.stats().expect("stats").edges;
    println!(
        "fold bench: {machines} machines x {documents} documents: {edges} edges imported in {:.1} s (not compacted)",
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_file(&log);

    let store = db.store();
    let folding = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let (fold_time, mut during) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| write_until(store, &folding, &stop));
        // Writes run a moment before the fold, as ingest does.
        std::thread::sleep(Duration::from_millis(200));
        folding.store(true, Ordering::Release);
        let started = Instant::now();
        store.fold_adjacency().expect("fold");
        let fold_time = started.elapsed();
        stop.store(true, Ordering::Release);
        (fold_time, writer.join().expect("writer thread"))
    });
    during.sort_unstable();
    match during.last() {
        Some(&longest) => println!(
            "fold bench: fold {:.2} s; {} one-edge writes started during it: median {:.3} ms, p99 {:.3} ms, longest {:.3} ms ({:.0}% of the fold)",
            fold_time.as_secs_f64(),
            during.len(),
            millis(percentile(&during, 50)),
            millis(percentile(&during, 99)),
            millis(longest),
            100.0 * longest.as_secs_f64() / fold_time.as_secs_f64(),
        ),
        None => println!(
            "fold bench: fold {:.2} s; no write completed during it",
            fold_time.as_secs_f64()
        ),
    }
    db.close().expect("close");
    if std::env::var_os("PROVDB_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
