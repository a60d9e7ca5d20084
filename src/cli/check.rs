//! `provdb check`: verifies the archive's invariants.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `provdb check`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Verifies that every edge's endpoints exist; that out- and \
in-adjacency agree with each other and with the edge records; that the type, machine and time \
indexes and the external-id table agree with the records; that the counters agree with \
what is stored. On an archive folded by `compact`, the adjacency snapshot must match its \
checksum, and each vertex's adjacency as every read sees it (the snapshot merged with the \
tables) must match the edge records, every edge once in each direction. Exit \
status 0 when all hold, 1 with the first problems listed (at most 100). \
Needs the database to itself: stop `provdb serve` first (or check a `provdb backup`).\n\n\
With --json: {\"ok\", \"vertices\", \"edges\", \"problem_count\", \"problems\": [{\"invariant\", \
\"detail\"}], \"seconds\"}."
)]
pub struct CheckArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(db_path: &Path, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let db = super::stats::open_exclusive(db_path)?;
    let started = Instant::now();
    let report = db.check()?;
    let seconds = started.elapsed().as_secs_f64();
    db.close()?;
    if args.json {
        let problems: Vec<serde_json::Value> = report
            .problems
            .iter()
            .map(|p| serde_json::json!({"invariant": p.invariant, "detail": p.detail}))
            .collect();
        let out = serde_json::json!({
            "ok": report.is_ok(),
            "vertices": report.vertices,
            "edges": report.edges,
            "problem_count": report.problem_count,
            "problems": problems,
            "seconds": seconds,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if report.is_ok() {
        println!(
            "ok: {} vertices and {} edges, every invariant holds ({seconds:.1}s)",
            report.vertices, report.edges
        );
    } else {
        println!(
            "{} problems in {} vertices and {} edges ({seconds:.1}s):",
            report.problem_count, report.vertices, report.edges
        );
        for p in &report.problems {
            println!("  {}: {}", p.invariant, p.detail);
        }
        if report.problem_count > report.problems.len() as u64 {
            println!(
                "  ... and {} more",
                report.problem_count - report.problems.len() as u64
            );
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
