//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `provdb` binary with `--db DB`.
pub fn provdb(db: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_provdb"));
    c.arg("--db").arg(db);
    c
}

/// Standard output of a command that must have succeeded (its stderr otherwise).
pub fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The shared CamFlow samples (`../shared/data/camflow`). `None`, with a visible message, when
/// the folder is absent (a user's own clone); a test failure when it is absent under CI.
pub fn shared_data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/camflow");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!(
            "CI=true but the shared CamFlow samples are missing at {}",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: shared CamFlow samples not found at {} (they ship beside the repository)",
        dir.display()
    );
    None
}

/// Path of one shared sample, or `None` (skip) as [`shared_data_dir`] decides.
pub fn sample(name: &str) -> Option<PathBuf> {
    shared_data_dir().map(|d| d.join(name))
}

/// The three samples with their expected (vertices, stub vertices, edges, skipped lines) when
/// each is imported alone (from the issue, cross-checked by an independent Python count).
pub const SAMPLES: [(&str, u64, u64, u64, u64); 3] = [
    ("v0.5.0-w3c-wget.log", 178, 0, 519, 0),
    ("v0.2.2-w3c-badlog.log", 1019, 1, 3020, 6),
    ("v0.8.0-spade-android.log", 13, 0, 14, 0),
];

/// An external id without its `cf:` prefix.
pub fn bare(id: &str) -> String {
    id.strip_prefix("cf:").unwrap_or(id).to_owned()
}

/// Sender/receiver keys of each W3C relation section (camflow-format.md, section 3.2).
pub fn endpoints(section: &str) -> Option<(&'static str, &'static str)> {
    Some(match section {
        "used" => ("prov:entity", "prov:activity"),
        "wasGeneratedBy" => ("prov:activity", "prov:entity"),
        "wasInformedBy" => ("prov:informant", "prov:informed"),
        "wasDerivedFrom" => ("prov:usedEntity", "prov:generatedEntity"),
        "wasAssociatedWith" => ("prov:agent", "prov:activity"),
        "wasInfluencedBy" => ("prov:influencer", "prov:influencee"),
        _ => return None,
    })
}
