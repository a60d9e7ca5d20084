//! `provdb export`: the archive (or part of it) in formats other tools read.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use provdb::export::{export, ExportFormat, ExportSelection};
use provdb::query::{Cursor, Limits};

use super::prune::parse_time_arg;
use super::render;
use super::stats::open_for_reading;

/// Formats of `provdb export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormatArg {
    /// One W3C PROV-JSON document (the Python `prov` package reads it).
    ProvJson,
    /// SPADE JSON lines.
    Spade,
    /// Graphviz dot of a query's subgraph (needs --query).
    Dot,
    /// SVG of a query's subgraph, rendered by Graphviz `dot` (needs --query).
    Svg,
    /// Parquet datasets OUT/vertices/ and OUT/edges/, hive-partitioned by machine (whole
    /// archive).
    #[cfg(feature = "parquet")]
    Parquet,
}

/// Arguments of `provdb export`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "prov-json writes one W3C PROV-JSON document on one line: ids as \
`cf:<identifier>` (prefix `cf` = http://camflow.org/), `prov:type` = the CamFlow type, vertices \
in activity/entity/agent, relations in their PROV sections with the PROV endpoint keys \
(prov:entity/prov:activity for used, ...), every attribute with its JSON kind. The pre-2017 \
`relation` section is written as wasInfluencedBy. spade writes SPADE JSON lines (vertices, \
then edges; `from` = receiver, `to` = sender). Both import back with `provdb import` as the \
same graph; stub vertices (never defined, only named by edges) are not written as elements \
and come back as stubs.\n\n\
--machine, --since and --until select edges (of those machines, with a time in the window) \
and their endpoints; without a time window, a machine's vertices without edges come too. \
--query exports the subgraph a query matches (its vertices and edges, with the edges' \
endpoints). dot and svg need --query. Memory stays bounded whatever the archive's size: the \
export streams, one pass per PROV-JSON section. Works while `provdb serve` writes."
)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormatArg,
    /// Output file (a new or empty folder for parquet).
    #[arg(long)]
    pub out: PathBuf,
    /// Only this machine (repeatable).
    #[arg(long)]
    pub machine: Vec<u32>,
    /// Only edges at or after this time (Unix seconds or a UTC date).
    #[arg(long, value_parser = parse_time_arg)]
    pub since: Option<i64>,
    /// Only edges at or before this time (Unix seconds or a UTC date).
    #[arg(long, value_parser = parse_time_arg)]
    pub until: Option<i64>,
    /// Only the subgraph this query matches.
    #[arg(long, conflicts_with_all = ["machine", "since", "until"])]
    pub query: Option<String>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(db_path: &Path, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let db = open_for_reading(db_path)?;
    db.catch_up()?;
    let store = db.store();
    let result = match &args.query {
        Some(q) => match Cursor::new(store, q.trim().trim_end_matches(';'), Limits::default())
            .and_then(Cursor::collect_result)
        {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::FAILURE);
            }
        },
        None => None,
    };
    let format = match args.format {
        #[cfg(feature = "parquet")]
        ExportFormatArg::Parquet => return run_parquet(&db, &args),
        ExportFormatArg::ProvJson => ExportFormat::ProvJson,
        ExportFormatArg::Spade => ExportFormat::Spade,
        ExportFormatArg::Dot | ExportFormatArg::Svg => {
            let Some(result) = &result else {
                anyhow::bail!("--format dot and svg export a query's subgraph: give --query");
            };
            let dot = render::to_dot(store, result)?;
            if args.format == ExportFormatArg::Svg {
                render::write_svg(&dot, &args.out)?;
            } else {
                std::fs::write(&args.out, dot)
                    .with_context(|| format!("writing {}", args.out.display()))?;
            }
            eprintln!("wrote {}", args.out.display());
            return Ok(ExitCode::SUCCESS);
        }
    };
    let selection = match &result {
        Some(r) => {
            let g = r.subgraph(store)?;
            ExportSelection::Ids {
                vertices: g.vertices.iter().map(|v| v.id.0).collect(),
                edges: g.edges.iter().map(|e| e.id.0).collect(),
            }
        }
        None if args.machine.is_empty() && args.since.is_none() && args.until.is_none() => {
            ExportSelection::All
        }
        None => ExportSelection::Filter {
            machines: args.machine.clone(),
            since: args.since,
            until: args.until,
        },
    };
    let bar = progress_bar(&db, args.quiet)?;
    let mut file =
        File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let started = Instant::now();
    let report = export(store, &selection, format, &mut file, &mut |n| {
        bar.set_position(n)
    })?;
    file.sync_all()
        .with_context(|| format!("syncing {}", args.out.display()))?;
    bar.finish_and_clear();
    print_summary(&report, &args.out, started);
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(db: &provdb::Database, quiet: bool) -> anyhow::Result<ProgressBar> {
    let stats = db.stats()?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(stats.vertices + stats.edges)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Ok(bar)
}

fn print_summary(report: &provdb::export::ExportReport, out: &Path, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    let records = report.vertices + report.edges;
    eprintln!(
        "exported {} vertices and {} edges ({} stubs left as references) to {}: {} bytes, {:.0} records/s, {:.0} bytes/record",
        report.vertices,
        report.edges,
        report.stubs_skipped,
        out.display(),
        report.bytes,
        records as f64 / seconds.max(1e-9),
        report.bytes as f64 / records.max(1) as f64,
    );
}

/// The whole archive as two Parquet datasets under `--out`.
#[cfg(feature = "parquet")]
fn run_parquet(db: &provdb::Database, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    if args.query.is_some()
        || !args.machine.is_empty()
        || args.since.is_some()
        || args.until.is_some()
    {
        anyhow::bail!("--format parquet exports the whole archive (select in DuckDB or Spark)");
    }
    let occupied = std::fs::read_dir(&args.out).is_ok_and(|mut d| d.next().is_some());
    if occupied {
        anyhow::bail!(
            "{} is not empty: give a new folder for the Parquet datasets",
            args.out.display()
        );
    }
    let bar = progress_bar(db, args.quiet)?;
    let started = Instant::now();
    let report = provdb::parquet_export::export_parquet(db.store(), &args.out, &mut |n| {
        bar.set_position(n)
    })?;
    bar.finish_and_clear();
    print_summary(&report, &args.out, started);
    Ok(ExitCode::SUCCESS)
}
