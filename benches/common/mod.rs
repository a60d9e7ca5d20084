//! Workloads shared by the benchmarks: the real CamFlow samples, replicated as distinct
//! machines with `provdb::workload::Replicator`.
#![allow(dead_code)]

use std::path::PathBuf;

/// The allocator of the `provdb` binary, so that the figures are the binary's.
#[path = "../../src/allocator.rs"]
pub mod allocator;

use provdb::workload::{detect_machine, Replicator};

/// The value of environment variable `name` as a number, `default` when unset or not one.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p`-th percentile of `sorted` (not empty), nearest rank.
pub fn percentile(sorted: &[std::time::Duration], p: usize) -> std::time::Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// The W3C samples (one document per line), or `None` when ../shared is absent.
pub fn w3c_samples() -> Option<Vec<(u32, Vec<String>)>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/camflow");
    if !dir.is_dir() {
        eprintln!(
            "benchmarks need the shared CamFlow samples at {}",
            dir.display()
        );
        return None;
    }
    let mut out = Vec::new();
    for name in ["v0.5.0-w3c-wget.log", "v0.2.2-w3c-badlog.log"] {
        let bytes = std::fs::read(dir.join(name)).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let docs: Vec<String> = text
            .lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .map(str::to_owned)
            .collect();
        let machine = docs.iter().find_map(|d| detect_machine(d))?;
        out.push((machine, docs));
    }
    Some(out)
}

/// Replica `k` of every sample document, as one list of JSON documents.
pub fn replica(samples: &[(u32, Vec<String>)], k: u32) -> Vec<String> {
    let mut docs = Vec::new();
    for (machine, lines) in samples {
        let r = Replicator::new(*machine, k);
        docs.extend(lines.iter().map(|l| r.rewrite(l)));
    }
    docs
}

/// What [`load_replicas`] stored.
pub struct Loaded {
    /// Replicas of the samples written.
    pub replicas: u32,
    /// Bytes of CamFlow JSON decoded.
    pub json_bytes: u64,
    /// Edges stored.
    pub edges: u64,
}

/// Decodes replicas of the samples and writes them in batches of about 50,000 records until
/// the database holds at least `target_edges` new edges (counted from the writer's summaries,
/// so the loop costs nothing per replica).
pub fn load_replicas(
    db: &provdb::Database,
    samples: &[(u32, Vec<String>)],
    target_edges: u64,
) -> Loaded {
    let mut loaded = Loaded {
        replicas: 0,
        json_bytes: 0,
        edges: 0,
    };
    let mut pending = provdb::RecordBatch::default();
    while loaded.edges < target_edges {
        for doc in replica(samples, loaded.replicas) {
            loaded.json_bytes += doc.len() as u64;
            pending.append(provdb::decode::decode_text(doc.into_bytes()).expect("sample decodes"));
            if pending.len() >= 50_000 {
                loaded.edges += db
                    .write(&std::mem::take(&mut pending))
                    .expect("write")
                    .edges_added;
            }
        }
        loaded.edges += db
            .write(&std::mem::take(&mut pending))
            .expect("write")
            .edges_added;
        loaded.replicas += 1;
    }
    loaded
}
