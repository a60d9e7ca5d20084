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
rewritten too. Then it folds the adjacency tables into the adjacency snapshot: every edge's \
adjacency as compressed sparse rows in a file beside the column families \
(`provdb-adjacency.N.snapshot`), which replaces the tables' content, with the folded \
vertices' external ids (both ways). Every process then reads each traversal step, each \
start vertex and each returned id from it (first-touch questions about 4x faster than from the \
tables on the 1M-edge bench archive), merged with \
what was written since, which goes to the tables as before and joins the snapshot at the \
next compact. \
Run it after a large import, or now and then on a long-running archive. It needs the database \
to itself: stop `provdb serve` first. Prints the size of each column family (and of the \
snapshot) before and after.

`provdb prune` writes the snapshot back into the tables and folds again; `provdb backup` \
copies it; `provdb check` verifies it. A fold marks the archive format version 4: \
builds older than this one refuse to open it, naming both versions. With \
--keep-adjacency-tables an archive not folded yet stays so (and keeps its format version), \
and a folded one keeps the edges written since its last fold in the tables; an archive of \
format version 1 is never folded."
)]
pub struct CompactArgs {
    /// No spinner.
    #[arg(long, short)]
    pub quiet: bool,
    /// Compact the column families only: do not fold the adjacency tables into the
    /// adjacency snapshot.
    #[arg(long)]
    pub keep_adjacency_tables: bool,
    /// Accepted for scripts written before folding was the default (it is).
    #[arg(long, hide = true, conflicts_with = "keep_adjacency_tables")]
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
    spinner.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    db.store().flush()?;
    // `Store::compact` decides which archives fold.
    if args.keep_adjacency_tables {
        spinner.set_message("compacting");
        db.store().compact_tables()?;
    } else {
        spinner.set_message("compacting, then folding the adjacency tables into the snapshot");
        db.store().compact()?;
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
