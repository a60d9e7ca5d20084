//! `provdb import`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use provdb::Database;

/// Arguments of `provdb import`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each line's kind is detected from its text: a JSON object (W3C PROV-JSON \
document or SPADE record), base64 (an MQTT payload: zlib-compressed JSON), or anything else \
(skipped and counted, like the capture service's own log lines). A file whose first line opens \
a JSON object it does not close (a pretty-printed document, e.g. CamFlow v0.1.7-v0.1.8 output \
or W3C PROV tools' files) or that starts with `[` (a legacy SPADE JSON array) is read as one \
document. Importing the same data twice stores it once.\n\n\
While it runs, an import merges the files its memtable flushes write only every 32 flushes \
(a live archive merges every 4): run `provdb compact` after a large import for the archive's \
long-term form; otherwise the next writer (`serve`, another import) merges them in the \
background. An import writes those files with direct I/O, past the operating system's page \
cache, where the file system allows it (a bulk load does not read them back soon; the copy \
into the page cache was its flushes' largest cost).\n\n\
Limits: a line or multi-line document over --max-document-bytes is rejected (and skipped \
without being held in memory); JSON nested deeper than 64 levels is rejected; a payload \
inflating past --max-inflated is rejected.\n\n\
Exit status: 0 when every document was stored, 2 when some were rejected (listed), 1 on error."
)]
pub struct ImportArgs {
    /// Files to import. A folder stands for its files, sorted by name (not recursively;
    /// hidden files and `simulate`'s truth*.json are left out).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Cap on the inflated size of one payload, in bytes (decompression-bomb guard).
    #[arg(long, default_value_t = provdb::decode::DEFAULT_MAX_INFLATED)]
    pub max_inflated: usize,
    /// Cap on one line, or one document spread over lines, in bytes.
    #[arg(long, default_value_t = provdb::decode::DEFAULT_MAX_DOCUMENT_BYTES)]
    pub max_document_bytes: usize,
    /// Records per atomic write batch.
    #[arg(long, default_value_t = 50_000)]
    pub batch_records: usize,
    /// Decoder threads (default: the number of cores). Reading, writing and committing each
    /// have a thread of their own besides.
    #[arg(long)]
    pub decode_threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub rules: super::rules::RulesArgs,
}

pub fn run(db_path: &Path, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let options = provdb::DatabaseOptions {
        max_inflated: args.max_inflated,
        max_document_bytes: args.max_document_bytes,
        batch_records: args.batch_records.max(1),
        detection: args.rules.detection()?,
        direct_io_writes: true,
        // The command closes the archive when the import ends: no pace to set back.
        compaction_pace: provdb::CompactionPace::Bulk,
        ..Default::default()
    };
    let options = provdb::DatabaseOptions {
        decoders: args.decode_threads.unwrap_or(options.decoders).max(1),
        ..options
    };
    let db = Database::open_with(db_path, options)
        .with_context(|| format!("opening database {}", db_path.display()))?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let report = db.import_files(&args.files, &mut |p| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
        bar.set_message(format!("{} records", p.records));
    })?;
    bar.finish_and_clear();
    db.close().context("closing database")?;
    let secs = started.elapsed().as_secs_f64();
    let s = &report.stored;
    println!(
        "imported {} file(s), {} lines, {} documents, {} records in {:.2}s ({:.0} records/s)",
        report.files,
        report.lines,
        report.documents,
        report.records,
        secs,
        report.records as f64 / secs.max(1e-9)
    );
    println!(
        "stored: {} vertices ({} stubs filled), {} edges, {} stub vertices created",
        s.vertices_added, s.stubs_filled, s.edges_added, s.stubs_created
    );
    println!(
        "already stored (ignored): {} vertices, {} edges",
        s.vertices_duplicate, s.edges_duplicate
    );
    println!(
        "skipped lines (not JSON nor payload): {}",
        report.skipped_lines
    );
    println!("rejected documents: {}", report.rejected);
    if report.alerts > 0 {
        println!(
            "alerts: {} new (see `provdb --db {} alerts`)",
            report.alerts,
            db_path.display()
        );
    }
    for r in &report.rejections {
        println!("  rejected {r}");
    }
    if report.rejected as usize > report.rejections.len() {
        println!(
            "  ... and {} more",
            report.rejected as usize - report.rejections.len()
        );
    }
    Ok(if report.rejected > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
