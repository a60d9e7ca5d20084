//! `provdb prune`: retention, by machine or by age.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use provdb::PruneSelection;

/// Arguments of `provdb prune`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "--machine M deletes every vertex of machine M, every edge of M or \
touching one of its vertices, the stub vertices those edges leave without any edge, and M's \
row of the machine registry. --before T deletes every edge whose time is before T (edges \
without a time stay) and every endpoint left without any edge. Adjacency, index, external-id \
and counter entries go with the records, in atomic fsynced writes of 20,000 edges, so the \
archive stays consistent after each and a prune cut short completes when run again; the \
affected ranges are compacted afterwards. T is a Unix time in seconds or a UTC date \
(2026-11-28, 2026-11-28T10:00:00). Needs the database to itself: stop `provdb serve` first."
)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["machine", "before"])))]
pub struct PruneArgs {
    /// Delete this machine's records.
    #[arg(long)]
    pub machine: Option<u32>,
    /// Delete edges older than this time (Unix seconds or a UTC date).
    #[arg(long, value_parser = parse_time_arg)]
    pub before: Option<i64>,
    /// Only count what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

/// A time argument: Unix seconds, or a date the query language accepts.
pub fn parse_time_arg(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .ok()
        .or_else(|| provdb::query::parse_time(s))
        .ok_or_else(|| {
            format!(
                "`{s}` is neither Unix seconds nor a date like 2026-11-28 or 2026-11-28T10:00:00"
            )
        })
}

pub fn run(db_path: &Path, args: PruneArgs) -> anyhow::Result<ExitCode> {
    let selection = match (args.machine, args.before) {
        (Some(m), _) => PruneSelection::Machine(m),
        (None, Some(t)) => PruneSelection::Before(t),
        (None, None) => anyhow::bail!("give --machine M or --before T"),
    };
    let db = super::stats::open_exclusive(db_path)?;
    let started = Instant::now();
    let report = db.prune(selection, args.dry_run)?;
    db.close()?;
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    println!(
        "{verb} {} vertices ({} of them stubs) and {} edges ({:.1}s)",
        report.vertices,
        report.stub_vertices,
        report.edges,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
