//! `provdb compact`: rewrites the archive into its long-term form.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use indicatif::ProgressBar;

/// Arguments of `provdb compact`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Compacts every column family down to the bottom level, where records are \
compressed with zstd and a trained dictionary; files that reached it without a rewrite are \
rewritten too. Run it after a large import, or now and then on a long-running archive. It \
needs the database to itself: stop `provdb serve` first. Prints the size of each column \
family before and after.

With --adjacency-snapshot it then writes the adjacency snapshot: both adjacency tables as \
compressed sparse rows in a file beside the column families (`provdb-adjacency.snapshot`). \
Queries of a process that opens the archive read-only (`provdb query`, the REPL, `provdb ui`) \
then read each traversal step from it: about a third faster on a first touch, for about as \
much disk as the adjacency tables (about 18 bytes per edge). Any later write (import, serve) \
leaves it unused (the tables stay complete), and the writing process removes it when it \
closes; run `compact --adjacency-snapshot` again after new data. `provdb check` verifies it."
)]
pub struct CompactArgs {
    /// No spinner.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also write the adjacency snapshot (faster first-touch traversals for read-only
    /// processes, about 18 more bytes per edge).
    #[arg(long)]
    pub adjacency_snapshot: bool,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

pub fn run(db_path: &Path, args: CompactArgs) -> anyhow::Result<ExitCode> {
    let db = super::stats::open_exclusive(db_path)?;
    let before = db.store().disk_size_by_column_family()?;
    let spinner = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    spinner.set_message("compacting");
    spinner.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    db.store().flush()?;
    db.store().compact()?;
    if args.adjacency_snapshot {
        spinner.set_message("writing the adjacency snapshot");
        db.store().write_adjacency_snapshot()?;
    }
    spinner.finish_and_clear();
    let after = db.store().disk_size_by_column_family()?;
    let edges = db.stats()?.edges;
    db.close()?;

    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(["column family", "before", "after"]);
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        t.add_row([name.to_string(), mib(*b), mib(*a)]);
    }
    let (b, a): (u64, u64) = (
        before.iter().map(|(_, n)| n).sum(),
        after.iter().map(|(_, n)| n).sum(),
    );
    t.add_row(["total".to_string(), mib(b), mib(a)]);
    println!("{t}");
    if edges > 0 {
        println!(
            "{:.1} bytes per edge ({edges} edges), compacted in {:.1}s",
            a as f64 / edges as f64,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}
