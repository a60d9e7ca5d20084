//! `provdb backup`: a consistent copy of the archive, also while `provdb serve` writes it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use provdb::Database;

/// Arguments of `provdb backup`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Writes a consistent copy of the archive to DEST (which must not \
exist). When nothing else writes the archive, the copy is a RocksDB checkpoint: SST files are \
hard-linked when DEST is on the same file system (instant, and no extra space until the \
archive compacts them away), copied otherwise. Beside `provdb serve` (or an import), it follows \
the writer as a secondary instance and copies record by record every batch committed when the \
backup starts, and no part of a later one. Either way the adjacency snapshot of a folded \
archive (see `provdb compact --help`) goes with the copy (hard-linked or copied). DEST opens \
as an archive directly: `provdb --db DEST stats`."
)]
pub struct BackupArgs {
    /// Folder of the copy (must not exist).
    pub dest: PathBuf,
}

pub fn run(db_path: &Path, args: BackupArgs) -> anyhow::Result<ExitCode> {
    if !db_path.join("CURRENT").exists() {
        anyhow::bail!("no database at {}", db_path.display());
    }
    if args.dest.exists() {
        anyhow::bail!("{} already exists: give a new folder", args.dest.display());
    }
    let started = Instant::now();
    // Alone, the archive is opened for writing (a checkpoint of hard links); beside a writer,
    // as a secondary that follows it (a record-by-record copy).
    let secondary = std::env::temp_dir().join(format!("provdb-backup-{}", std::process::id()));
    let db = match Database::open(db_path) {
        Ok(db) => db,
        Err(_) => Database::open_secondary(db_path, secondary.clone())
            .with_context(|| format!("opening {} for a backup", db_path.display()))?,
    };
    let written = db
        .backup_to(&args.dest)
        .with_context(|| format!("writing the backup to {}", args.dest.display()));
    let stats = db.stats();
    db.close()?;
    // The secondary's private folder (its log and options) is of no use afterwards.
    let _ = std::fs::remove_dir_all(&secondary);
    written?;
    let stats = stats?;
    println!(
        "backed up {} vertices and {} edges to {} in {:.1}s",
        stats.vertices,
        stats.edges,
        args.dest.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
