//! `provdb machines`: the machine registry kept by `provdb serve`.

use std::path::Path;
use std::process::ExitCode;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use provdb::ingest::{format_time_ms, load_machines, MachineRecord};

use super::stats::open_for_reading;

/// Arguments of `provdb machines`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Works while `provdb serve` writes the same database.")]
pub struct MachinesArgs {
    /// Print JSON (one array of objects) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also print each machine's description (legacy machine packet).
    #[arg(long)]
    pub descriptions: bool,
}

pub fn run(db_path: &Path, args: MachinesArgs) -> anyhow::Result<ExitCode> {
    let db = open_for_reading(db_path)?;
    let machines = load_machines(db.store())?;
    if args.json {
        let items: Vec<serde_json::Value> = machines.iter().map(machine_json).collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header([
        "machine",
        "first seen",
        "last seen",
        "messages",
        "records",
        "bytes",
        "rejected",
    ]);
    for m in &machines {
        t.add_row([
            m.machine.to_string(),
            format_time_ms(m.first_seen_ms),
            format_time_ms(m.last_seen_ms),
            m.messages.to_string(),
            m.records.to_string(),
            m.bytes.to_string(),
            m.rejected.to_string(),
        ]);
    }
    println!("{t}");
    println!("{} machines", machines.len());
    if args.descriptions {
        for m in machines.iter().filter(|m| m.description.is_some()) {
            println!(
                "machine {}: {}",
                m.machine,
                m.description.as_deref().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One machine of the registry as JSON (`machines --json`, `provdb ui`'s `/api/machines`).
pub fn machine_json(m: &MachineRecord) -> serde_json::Value {
    serde_json::json!({
        "machine": m.machine,
        "first_seen_ms": m.first_seen_ms,
        "last_seen_ms": m.last_seen_ms,
        "messages": m.messages,
        "records": m.records,
        "bytes": m.bytes,
        "rejected": m.rejected,
        "description": m.description,
    })
}
