//! The anomaly detector's per-edge cost, on a simulated machine's edges (decoded from
//! `provdb simulate` documents, in causal order, vertex types as import resolves them):
//!
//! * `stream/labels_histogram`: WL relabelling and the decayed histogram, no sketch (the
//!   interval never closes);
//! * `stream/with_sketch`: the same plus the sketch at each interval's end (the defaults:
//!   250 edges, 512 slots), what training pays per edge;
//! * `scorer/with_model`: what `import` and `serve` pay per edge with a model: the stream,
//!   the novelty of each label against the model's known labels, and scoring each interval.
//!
//! It first prints the same three as CPU time of the bench's thread per edge (Linux's
//! schedstat, best of three passes), a figure that other work on a shared machine inflates
//! far less than criterion's wall time; then the memory of one machine's stream after the
//! run and the size of a model trained on three other simulated runs. `cargo bench --bench anomaly` (env
//! ANOMALY_BENCH_DOCS: documents of the simulated machine, default 400).

#![allow(missing_docs)] // criterion_group! generates undocumented public items

use std::collections::HashMap;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use provdb::anomaly::{
    codec, EdgeEvent, MachineStream, ModelScope, Params, Scorer, StoredModel, Trainer,
};
use provdb::decode::decode_text;
use provdb::simulate::{Simulation, SimulationOptions};
use provdb::ExternalId;

/// The allocator of the `provdb` binary, tuned as the binary tunes it.
#[path = "../src/allocator.rs"]
mod allocator;

/// One decoded edge, owned.
struct Edge {
    id: ExternalId,
    edge_type: String,
    src: ExternalId,
    src_type: Option<String>,
    dst: ExternalId,
    dst_type: Option<String>,
    time: Option<i64>,
}

impl Edge {
    fn event(&self) -> EdgeEvent<'_> {
        EdgeEvent {
            edge: &self.id,
            edge_type: &self.edge_type,
            src: &self.src,
            src_type: self.src_type.as_deref(),
            dst: &self.dst,
            dst_type: self.dst_type.as_deref(),
            time: self.time,
        }
    }
}

/// The edges of one simulated machine, in document order; a vertex's type is the one its
/// definition gave (in any earlier document), else the edge's hint.
fn simulated_edges(seed: u64, documents: u64) -> Vec<Edge> {
    let mut types: HashMap<ExternalId, String> = HashMap::new();
    let mut edges = Vec::new();
    for doc in Simulation::new(&SimulationOptions {
        seed,
        machines: 1,
        documents_per_machine: documents,
        records_per_document: 40,
    }) {
        let batch = decode_text(doc.json.into_bytes()).expect("simulated documents decode");
        for v in &batch.vertices {
            types.insert(v.ext_id.clone(), v.type_name.clone());
        }
        for e in batch.edges {
            let type_of = |end: &provdb_storage::EndpointInput| {
                types
                    .get(&end.ext_id)
                    .cloned()
                    .or_else(|| end.type_hint.clone())
            };
            edges.push(Edge {
                src_type: type_of(&e.src),
                dst_type: type_of(&e.dst),
                id: e.ext_id,
                edge_type: e.type_name,
                src: e.src.ext_id,
                dst: e.dst.ext_id,
                time: e.placement.time,
            });
        }
    }
    edges
}

fn trained_model(params: &Params, documents: u64) -> StoredModel {
    let mut trainer = Trainer::new(params);
    for seed in [1, 2, 3] {
        trainer.start_run(&format!("seed {seed}"));
        for e in simulated_edges(seed, documents) {
            trainer.edge(1, &e.event());
        }
    }
    let (model, cost) = trainer.finish().expect("simulated runs train");
    println!(
        "training: {} edges, {:.1} us per edge in the streams, largest stream {:.0} KiB",
        cost.edges,
        cost.nanos as f64 / 1e3 / cost.edges.max(1) as f64,
        cost.peak_machine_bytes as f64 / 1024.0
    );
    StoredModel {
        scope: ModelScope::Fleet,
        version: 1,
        model,
    }
}

/// Nanoseconds this thread has run on a CPU (Linux's `/proc/thread-self/schedstat`).
fn thread_cpu_nanos() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Microseconds of CPU per edge of `pass` over `edges` edges. The thread's CPU time advances
/// in scheduler ticks on some kernels (4 ms on the CI machine, longer than one pass: single
/// passes read 0 or 1 us per edge), so passes repeat until at least 0.4 s has been counted.
fn cpu_us_per_edge(edges: usize, mut pass: impl FnMut()) -> Option<f64> {
    let start = thread_cpu_nanos()?;
    let mut passes = 0u64;
    loop {
        pass();
        passes += 1;
        let spent = thread_cpu_nanos()?.saturating_sub(start);
        if spent >= 400_000_000 || passes >= 10_000 {
            return Some(spent as f64 / 1e3 / (edges.max(1) as u64 * passes) as f64);
        }
    }
}

fn bench_anomaly(c: &mut Criterion) {
    allocator::tune(allocator::Workload::Batch);
    let documents = std::env::var("ANOMALY_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400u64);
    let edges = simulated_edges(11, documents);
    let params = Params::default();
    let model = trained_model(&params, documents);
    println!(
        "workload: {} edges of one simulated machine; model: {} bytes encoded, {} known labels, {} clusters",
        edges.len(),
        codec::encode(&model.model).len(),
        model.model.known_labels.len(),
        model.model.medoids.len()
    );
    let mut stream = MachineStream::new(&params, false);
    let mut snapshots = 0;
    for e in &edges {
        snapshots += usize::from(stream.edge(&e.event(), None).is_some());
    }
    println!(
        "one machine's stream after {} edges ({snapshots} intervals): {:.0} KiB",
        edges.len(),
        stream.memory_bytes() as f64 / 1024.0
    );

    let stream_pass = |params: &Params| {
        let mut stream = MachineStream::new(params, false);
        for e in &edges {
            std::hint::black_box(stream.edge(&e.event(), None));
        }
    };
    let scorer_pass = || {
        let mut scorer = Scorer::new([model.clone()]);
        for e in &edges {
            std::hint::black_box(scorer.edge(7, &e.event()));
        }
    };
    let no_sketch = Params {
        snapshot_edges: u32::MAX,
        ..params.clone()
    };
    let cpu = [
        cpu_us_per_edge(edges.len(), || stream_pass(&no_sketch)),
        cpu_us_per_edge(edges.len(), || stream_pass(&params)),
        cpu_us_per_edge(edges.len(), scorer_pass),
    ];
    if let [Some(labels), Some(sketch), Some(scorer)] = cpu {
        println!(
            "CPU per edge: labels and histogram {labels:.2} us; with the sketch {sketch:.2} us; \
             scoring with a model {scorer:.2} us"
        );
    }

    let mut group = c.benchmark_group("anomaly");
    group.sample_size(10);
    group.throughput(Throughput::Elements(edges.len() as u64));
    group.bench_function(BenchmarkId::new("stream", "labels_histogram"), |b| {
        b.iter(|| stream_pass(&no_sketch))
    });
    group.bench_function(BenchmarkId::new("stream", "with_sketch"), |b| {
        b.iter(|| stream_pass(&params))
    });
    group.bench_function(BenchmarkId::new("scorer", "with_model"), |b| {
        b.iter(scorer_pass)
    });
    group.finish();
}

criterion_group!(benches, bench_anomaly);
criterion_main!(benches);
