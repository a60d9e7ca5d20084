//! `provdb quarantine`: messages `provdb serve` could not store.

use std::path::Path;
use std::process::ExitCode;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use provdb::ingest::{format_time_ms, load_quarantine, QuarantineEntry};

use super::stats::open_for_reading;

/// Arguments of `provdb quarantine`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each entry keeps the topic, the error, the arrival time and the payload \
as received. Works while `provdb serve` writes the same database."
)]
pub struct QuarantineArgs {
    /// Print JSON lines (one object per message, payload included) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show at most this many entries (newest last).
    #[arg(long)]
    pub limit: Option<usize>,
}

pub fn run(db_path: &Path, args: QuarantineArgs) -> anyhow::Result<ExitCode> {
    let db = open_for_reading(db_path)?;
    let mut entries = load_quarantine(db.store())?;
    if let Some(n) = args.limit {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    if args.json {
        for e in &entries {
            let mut line = entry_json(e);
            line["payload"] = String::from_utf8_lossy(&e.payload).into();
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header([
        "arrival",
        "topic",
        "kind",
        "error",
        "payload bytes",
    ]);
    for e in &entries {
        let mut error = e.error.clone();
        if error.len() > 120 {
            let mut cut = 117;
            while !error.is_char_boundary(cut) {
                cut -= 1;
            }
            error.truncate(cut);
            error.push_str("...");
        }
        t.add_row([
            format_time_ms(e.arrival_ms),
            e.topic.clone(),
            e.kind.clone(),
            error,
            e.payload.len().to_string(),
        ]);
    }
    println!("{t}");
    println!("{} quarantined messages", entries.len());
    Ok(ExitCode::SUCCESS)
}

/// A quarantined message as JSON without its payload (`provdb ui`'s `/api/machines`;
/// `quarantine --json` adds `payload`).
pub fn entry_json(e: &QuarantineEntry) -> serde_json::Value {
    serde_json::json!({
        "arrival_ms": e.arrival_ms,
        "topic": e.topic,
        "machine": e.machine,
        "kind": e.kind,
        "error": e.error,
        "payload_bytes": e.payload.len(),
    })
}
