//! Command-line interface: one module per subcommand.

mod alerts;
mod backup;
mod check;
mod compact;
mod detect;
mod export;
mod import;
mod machines;
mod prune;
mod publish;
mod quarantine;
mod query;
mod render;
mod repl;
mod rules;
mod serve;
mod signals;
mod simulate;
mod stats;
mod ui;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// provdb: an embedded graph database for CamFlow whole-system provenance.
#[derive(Debug, Parser)]
#[command(name = "provdb", version, about, long_about = None)]
pub struct Cli {
    /// Database folder (created on first write). `query` and `repl` take it several times, to answer
    /// over several archives as one.
    #[arg(
        long = "db",
        value_name = "DIR",
        global = true,
        env = "PROVDB_DB",
        default_value = "provdb-data"
    )]
    pub dbs: Vec<PathBuf>,
    /// The one database of every command but `query` (the first of `dbs`).
    #[arg(skip)]
    pub db: PathBuf,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import CamFlow files: W3C logs, SPADE JSON lines, or raw MQTT payloads (one per line).
    Import(import::ImportArgs),
    /// Show what the database holds.
    Stats(stats::StatsArgs),
    /// Rewrite the archive into its compact long-term form; prints sizes before and after.
    Compact(compact::CompactArgs),
    /// Run a traversal query and print the result (table, json, csv or dot).
    Query(query::QueryArgs),
    /// Interactive query shell with completion, history and dot-commands.
    Repl(repl::ReplArgs),
    /// Run the MQTT ingest service (embedded broker by default, or --broker URL).
    Serve(Box<serve::ServeArgs>),
    /// Publish CamFlow log files over MQTT as camflowd does.
    Publish(publish::PublishArgs),
    /// Generate synthetic CamFlow W3C documents (to files, stdout or a broker).
    Simulate(simulate::SimulateArgs),
    /// List the machines seen by `provdb serve`.
    Machines(machines::MachinesArgs),
    /// List messages that `provdb serve` could not store.
    Quarantine(quarantine::QuarantineArgs),
    /// Verify the archive: endpoints, adjacency, indexes, counters (exit 1 on a problem).
    Check(check::CheckArgs),
    /// Write a consistent copy of the archive (works beside `provdb serve`).
    Backup(backup::BackupArgs),
    /// Delete a machine's records or everything older than a time (retention).
    Prune(prune::PruneArgs),
    /// Write the archive (or a part, or a query's subgraph) as PROV-JSON, SPADE, Parquet, dot or SVG.
    Export(export::ExportArgs),
    /// List the alerts the detection rules raised, or show one's causal path.
    Alerts(alerts::AlertsArgs),
    /// List the active detection rules, or check rule files.
    Rules(rules::RulesCommandArgs),
    /// Serve the investigation page and its JSON API in the browser (read-only, live).
    Ui(ui::UiArgs),
    /// Anomaly detection: train models of normal behaviour, score history, evaluate.
    Detect(detect::DetectArgs),
}

impl Command {
    /// Whether the command answers a person's questions from an archive (short-lived reads
    /// whose latency is felt), as opposed to writing or scanning one in bulk.
    pub fn is_interactive(&self) -> bool {
        matches!(self, Self::Query(_) | Self::Repl(_) | Self::Ui(_))
    }

    /// Whether the command runs until it is stopped, idle at times (the ingest service), as
    /// opposed to ending when its work is done.
    pub fn is_service(&self) -> bool {
        matches!(self, Self::Serve(_))
    }
}

/// Sets up tracing to stderr.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only on a terminal: in a log file or journal they are noise.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// An error and its causes as one line, as `{:#}` prints it, but without repeating a cause
/// whose text the line already holds: many errors name their source in their own message
/// (`{path}: {source}`) and also return it from `source()`.
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// Runs a parsed command line.
pub fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.dbs.len() > 1 && !matches!(cli.command, Command::Query(_) | Command::Repl(_)) {
        anyhow::bail!("only `query` and `repl` take several --db");
    }
    cli.db = cli.dbs.first().cloned().unwrap_or_default();
    match cli.command {
        Command::Import(args) => import::run(&cli.db, args),
        Command::Stats(args) => stats::run(&cli.db, args),
        Command::Compact(args) => compact::run(&cli.db, args),
        Command::Query(args) => query::run(&cli.dbs, args),
        Command::Repl(args) => repl::run(&cli.dbs, args),
        Command::Serve(args) => serve::run(&cli.db, *args),
        Command::Publish(args) => publish::run(&cli.db, args),
        Command::Simulate(args) => simulate::run(&cli.db, args),
        Command::Machines(args) => machines::run(&cli.db, args),
        Command::Quarantine(args) => quarantine::run(&cli.db, args),
        Command::Check(args) => check::run(&cli.db, args),
        Command::Backup(args) => backup::run(&cli.db, args),
        Command::Prune(args) => prune::run(&cli.db, args),
        Command::Export(args) => export::run(&cli.db, args),
        Command::Alerts(args) => alerts::run(&cli.db, args),
        Command::Rules(args) => rules::run(args),
        Command::Ui(args) => ui::run(&cli.db, args),
        Command::Detect(args) => detect::run(&cli.db, args),
    }
}

#[cfg(test)]
mod tests {
    use super::error_line;

    #[test]
    fn error_line_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let repeating = provdb::Error::Io {
            path: "/x.log".into(),
            source: io,
        };
        let e = anyhow::Error::new(repeating).context("opening input");
        assert_eq!(error_line(&e), "opening input: /x.log: No such file");
        let plain = anyhow::anyhow!("disk full").context("writing");
        assert_eq!(error_line(&plain), "writing: disk full");
    }
}
