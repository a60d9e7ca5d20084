//! `provdb stats`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use provdb::{Database, StoreStats};

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
    println!("{}", totals_table(&stats));
    for t in type_tables(&stats) {
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

/// Opens an existing database for writing, alone: the archive commands (check, prune,
/// compact) must not run beside `provdb serve` or another writer, and say so.
pub fn open_exclusive(db_path: &Path) -> anyhow::Result<Database> {
    if !db_path.join("CURRENT").exists() {
        anyhow::bail!("no database at {}", db_path.display());
    }
    Database::open(db_path).with_context(|| {
        format!(
            "opening {} for writing: another process holds it (is `provdb serve` using it?)",
            db_path.display()
        )
    })
}

/// The totals of `stats` (also the REPL's `.stats`).
pub fn totals_table(stats: &StoreStats) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(["", "count"]);
    for (name, n) in [
        ("vertices (stubs included)", stats.vertices),
        ("stub vertices", stats.stub_vertices),
        ("edges", stats.edges),
        ("machines", stats.machines.len() as u64),
        ("vertex types", stats.vertex_types.len() as u64),
        ("edge types", stats.edge_types.len() as u64),
        ("skipped lines", stats.skipped_lines),
        ("rejected documents", stats.rejected_documents),
    ] {
        t.add_row([name.to_owned(), n.to_string()]);
    }
    t
}

/// Counts per vertex type and per edge type (also the REPL's `.schema`).
pub fn type_tables(stats: &StoreStats) -> [Table; 2] {
    [
        ("vertex type", &stats.vertex_types),
        ("edge type", &stats.edge_types),
    ]
    .map(|(title, items)| {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_header([title, "count"]);
        for (name, n) in items.iter() {
            t.add_row([name.clone(), n.to_string()]);
        }
        t
    })
}
