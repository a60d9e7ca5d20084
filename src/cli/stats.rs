//! `provdb stats`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use provdb::Database;

/// Arguments of `provdb stats`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "With --json, one object with exactly the keys vertices, stub_vertices, \
edges, vertex_types (type -> count), edge_types (type -> count) and machines (machine id -> \
vertex count). Works while `provdb serve` writes the same database."
)]
pub struct StatsArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(db_path: &Path, args: StatsArgs) -> anyhow::Result<ExitCode> {
    let db = open_for_reading(db_path)?;
    let stats = db.stats()?;
    if args.json {
        let map = |items: &[(String, u64)]| -> serde_json::Map<String, serde_json::Value> {
            items
                .iter()
                .map(|(k, v)| (k.clone(), (*v).into()))
                .collect()
        };
        let machines: serde_json::Map<String, serde_json::Value> = stats
            .machines
            .iter()
            .map(|(m, n)| (m.to_string(), (*n).into()))
            .collect();
        let out = serde_json::json!({
            "vertices": stats.vertices,
            "stub_vertices": stats.stub_vertices,
            "edges": stats.edges,
            "vertex_types": map(&stats.vertex_types),
            "edge_types": map(&stats.edge_types),
            "machines": machines,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut totals = Table::new();
    totals
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["", "count"]);
    totals.add_row([
        "vertices (stubs included)".to_string(),
        stats.vertices.to_string(),
    ]);
    totals.add_row(["stub vertices".to_string(), stats.stub_vertices.to_string()]);
    totals.add_row(["edges".to_string(), stats.edges.to_string()]);
    totals.add_row(["machines".to_string(), stats.machines.len().to_string()]);
    totals.add_row(["skipped lines".to_string(), stats.skipped_lines.to_string()]);
    totals.add_row([
        "rejected documents".to_string(),
        stats.rejected_documents.to_string(),
    ]);
    println!("{totals}");
    for (title, items) in [
        ("vertex type", &stats.vertex_types),
        ("edge type", &stats.edge_types),
    ] {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_header([title, "count"]);
        for (name, n) in items.iter() {
            t.add_row([name.clone(), n.to_string()]);
        }
        println!("{t}");
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(["machine", "vertices"]);
    for (m, n) in &stats.machines {
        t.add_row([m.to_string(), n.to_string()]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// Opens a database for reading. When another process (e.g. `provdb serve`) holds it, follows
/// it as a RocksDB secondary instead, so that reading never stops ingest.
pub fn open_for_reading(db_path: &Path) -> anyhow::Result<Database> {
    if !db_path.join("CURRENT").exists() {
        anyhow::bail!(
            "no provdb database at {} (create one with `provdb --db {} import FILE...` or `provdb serve`)",
            db_path.display(),
            db_path.display()
        );
    }
    match Database::open_read_only(db_path) {
        Ok(db) => Ok(db),
        Err(first) => {
            let secondary =
                std::env::temp_dir().join(format!("provdb-secondary-{}", std::process::id()));
            Database::open_secondary(db_path, secondary)
                .with_context(|| format!("opening {} for reading ({first})", db_path.display()))
        }
    }
}
