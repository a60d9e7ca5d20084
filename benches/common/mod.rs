//! Workloads shared by the benchmarks: the real CamFlow samples, replicated as distinct
//! machines with `provdb::workload::Replicator`.
#![allow(dead_code)]

use std::path::PathBuf;

use provdb::workload::{detect_machine, Replicator};

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
