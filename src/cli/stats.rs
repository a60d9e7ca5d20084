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
    if db.store().uses_adjacency_snapshot() {
        println!("adjacency snapshot: folded (traversals read it; see `provdb compact --help`)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens a database for reading. When another process (e.g. `provdb serve`) holds it, follows
/// it as a RocksDB secondary instead, so that reading never stops ingest and sees its new
/// writes at each catch-up (a read-only open beside a writer would succeed, but stay frozen at
/// the moment of opening, and could fail later on a file the writer's compaction deleted).
pub fn open_for_reading(db_path: &Path) -> anyhow::Result<Database> {
    if !db_path.join("CURRENT").exists() {
        anyhow::bail!(
            "no provdb database at {} (create one with `provdb --db {} import FILE...` or `provdb serve`)",
            db_path.display(),
            db_path.display()
        );
    }
    if held_by_another_process(db_path) {
        return open_following(db_path)
            .with_context(|| format!("following {} beside its writer", db_path.display()));
    }
    match Database::open_read_only(db_path) {
        Ok(db) => Ok(db),
        Err(first) => open_following(db_path)
            .with_context(|| format!("opening {} for reading ({first})", db_path.display())),
    }
}

/// Opens `db_path` as a secondary instance, in a folder of this process under the temporary
/// directory. Folders left by processes that have ended are removed first.
fn open_following(db_path: &Path) -> provdb::Result<Database> {
    const PREFIX: &str = "provdb-secondary-";
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix(PREFIX))
                .and_then(|pid| pid.parse::<u32>().ok());
            if pid.is_some_and(|pid| !process_alive(pid)) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let secondary = tmp.join(format!("{PREFIX}{}", std::process::id()));
    Database::open_secondary(db_path, secondary)
}

/// Whether another process holds the archive's RocksDB lock (a running `provdb serve` or
/// `import`): RocksDB takes an fcntl write lock on the `LOCK` file, which `F_GETLK` reports
/// without taking it.
#[allow(unsafe_code)]
fn held_by_another_process(db_path: &Path) -> bool {
    use std::os::fd::AsRawFd as _;
    let Ok(lock) = std::fs::File::open(db_path.join("LOCK")) else {
        return false;
    };
    // SAFETY: an all-zero `flock` is a valid value of this plain C struct.
    let mut probe: libc::flock = unsafe { std::mem::zeroed() };
    probe.l_type = libc::F_WRLCK as libc::c_short;
    probe.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: F_GETLK only writes into `probe`, which outlives the call; the descriptor is open.
    let rc = unsafe { libc::fcntl(lock.as_raw_fd(), libc::F_GETLK, &mut probe) };
    rc == 0 && probe.l_type != libc::F_UNLCK as libc::c_short
}

/// Whether process `pid` exists (signal 0 checks without sending anything).
#[allow(unsafe_code)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 performs only the existence and permission checks.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_alive_until_it_has_ended_and_been_reaped() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
        assert!(!process_alive(u32::MAX), "not a pid_t");
    }

    #[test]
    fn an_archive_without_a_writer_is_not_held() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!held_by_another_process(dir.path()), "no LOCK file");
        std::fs::write(dir.path().join("LOCK"), b"").unwrap();
        assert!(
            !held_by_another_process(dir.path()),
            "an unlocked LOCK file"
        );
    }
}
