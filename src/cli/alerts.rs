//! `provdb alerts`: the alerts the detection rules raised, and one alert's causal path.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use provdb::detect::{Alert, AlertFilter, Severity};
use provdb::{Database, Direction};

use super::render::write_svg;
use super::stats::open_for_reading;

/// Neighbours drawn around each vertex of a path in `alerts show --svg`, each way.
const NEIGHBOURS_PER_VERTEX: usize = 6;

/// Arguments of `provdb alerts`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Alerts are raised while `import` and `serve` store data (see `provdb rules \
list`), stored in the archive with the batch that completed them, and deduplicated: the same \
rule on the same object (every version of one process, file or socket) is one alert with a \
count. Works while `provdb serve` writes the same database.\n\n\
--format json prints one array of objects with the keys id, rule, severity, machine, time, \
summary, path (id, type, name) and edges (id, type, from, to)."
)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub action: Option<AlertsAction>,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
    pub format: String,
    /// Only alerts seen at or after this time: ISO 8601 (UTC) like 2024-05-01T09:00, or a
    /// duration back from now like 90m, 24h, 7d.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only this machine's alerts.
    #[arg(long)]
    pub machine: Option<u32>,
    /// Only this rule's alerts.
    #[arg(long)]
    pub rule: Option<String>,
    /// Only alerts of this severity or above (low, medium, high, critical).
    #[arg(long, value_name = "S")]
    pub severity: Option<String>,
}

/// `provdb alerts show`.
#[derive(Debug, clap::Subcommand)]
pub enum AlertsAction {
    /// Print one alert's causal path; --svg renders it with its neighbourhood (Graphviz).
    Show {
        /// The alert's id.
        id: u64,
        /// Write an SVG of the path and the vertices around it.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Print the alert as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(db_path: &Path, args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let db = open_for_reading(db_path)?;
    if let Some(AlertsAction::Show { id, svg, json }) = args.action {
        let Some(alert) = db.alert(id)? else {
            anyhow::bail!(
                "no alert {id} in {} (see `provdb alerts`)",
                db_path.display()
            );
        };
        if json {
            println!("{}", serde_json::to_string_pretty(&alert.to_json())?);
        } else {
            print!("{}", describe(&alert));
        }
        if let Some(file) = svg {
            write_svg(&alert_dot(&db, &alert)?, &file)?;
            eprintln!("wrote {}", file.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let filter = AlertFilter {
        since: args.since.as_deref().map(parse_since).transpose()?,
        machine: args.machine,
        rule: args.rule.clone(),
        min_severity: args
            .severity
            .as_deref()
            .map(|s| {
                Severity::parse(s).ok_or_else(|| {
                    anyhow::anyhow!("unknown severity `{s}`: low, medium, high or critical")
                })
            })
            .transpose()?,
    };
    let alerts = db.alerts(&filter)?;
    match args.format.as_str() {
        "json" => {
            let items: Vec<serde_json::Value> = alerts.iter().map(Alert::to_json).collect();
            println!("{}", serde_json::to_string_pretty(&items)?);
        }
        "csv" => {
            println!("id,rule,severity,machine,time,count,last_seen,summary");
            for a in &alerts {
                println!(
                    "{},{},{},{},{},{},{},{}",
                    a.id,
                    a.rule,
                    a.severity,
                    a.machine.map(|m| m.to_string()).unwrap_or_default(),
                    time_text(a.time),
                    a.count,
                    time_text(a.last_seen),
                    csv_field(&a.summary)
                );
            }
        }
        _ => {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED).set_header([
                "id", "severity", "rule", "machine", "time", "count", "summary",
            ]);
            for a in &alerts {
                t.add_row(row(a));
            }
            println!("{t}");
            println!(
                "{} alert(s); `provdb alerts show ID` prints one's causal path",
                alerts.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One alert as a table row: id, severity, rule, machine, time, count, summary.
pub fn row(a: &Alert) -> [String; 7] {
    [
        a.id.to_string(),
        a.severity.clone(),
        a.rule.clone(),
        a.machine.map(|m| m.to_string()).unwrap_or_default(),
        time_text(a.time),
        a.count.to_string(),
        a.summary.clone(),
    ]
}

/// `--since`: an ISO 8601 time or a duration back from now (`24h`), as Unix seconds.
pub fn parse_since(text: &str) -> anyhow::Result<i64> {
    if let Some(seconds) = provdb::detect::parse_duration(text) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        return Ok(now - seconds);
    }
    provdb::query::parse_time(text).ok_or_else(|| {
        anyhow::anyhow!("--since {text}: an ISO 8601 time (2024-05-01T09:00) or a duration (24h)")
    })
}

fn time_text(t: Option<i64>) -> String {
    t.map(|t| provdb::query::Datum::Time(t).to_string())
        .unwrap_or_default()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The alert in words: header, then the path, each vertex with the edge that reached it.
pub fn describe(a: &Alert) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "alert {}: {} ({})", a.id, a.rule, a.severity);
    let _ = writeln!(out, "  {}", a.summary);
    let _ = writeln!(
        out,
        "  machine {}  time {}  seen {} time(s), last {}",
        a.machine
            .map(|m| m.to_string())
            .unwrap_or_else(|| "?".into()),
        time_text(a.time),
        a.count,
        time_text(a.last_seen)
    );
    let _ = writeln!(out, "causal path:");
    for (i, v) in a.path.iter().enumerate() {
        let reached: Vec<&str> = a
            .edges
            .iter()
            .filter(|e| e.to == v.id)
            .map(|e| e.type_name.as_str())
            .collect();
        let via = if reached.is_empty() {
            String::new()
        } else {
            format!("-[{}]-> ", reached.join("|"))
        };
        let _ = writeln!(
            out,
            "  {:>2}. {via}{} {}  {}",
            i + 1,
            v.type_name,
            v.name.as_deref().unwrap_or(""),
            v.id
        );
    }
    out
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// DOT of the alert's path (bold) and up to [`NEIGHBOURS_PER_VERTEX`] neighbours each way of
/// each of its vertices (grey), so the path is seen in the context that explains it.
fn alert_dot(db: &Database, a: &Alert) -> anyhow::Result<String> {
    let mut s = format!(
        "digraph alert {{\n  label=\"alert {}: {} ({})\\n{}\";\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n",
        a.id,
        quote(&a.rule),
        quote(&a.severity),
        quote(&a.summary)
    );
    for v in &a.path {
        let _ = writeln!(
            s,
            "  \"{}\" [label=\"{}\\n{}\", style=bold, color=red];",
            quote(&v.id),
            quote(&v.type_name),
            quote(v.name.as_deref().unwrap_or(""))
        );
    }
    for e in &a.edges {
        let _ = writeln!(
            s,
            "  \"{}\" -> \"{}\" [label=\"{}\", style=bold, color=red];",
            quote(&e.from),
            quote(&e.to),
            quote(&e.type_name)
        );
    }
    for n in alert_neighbourhood(db, a)? {
        if n.first_sight {
            let _ = writeln!(
                s,
                "  \"{}\" [label=\"{}\\n{}\", color=grey, fontcolor=grey40];",
                quote(&n.neighbour.ext_id.to_string()),
                quote(&n.neighbour.type_name),
                quote(&n.pathname)
            );
        }
        let _ = writeln!(
            s,
            "  \"{}\" -> \"{}\" [label=\"{}\", color=grey, fontcolor=grey40];",
            quote(&n.from),
            quote(&n.to),
            quote(&n.edge_type)
        );
    }
    s.push_str("}\n");
    Ok(s)
}

/// An edge from a vertex of an alert's path to a vertex off the path: the context that
/// explains the path (`alerts show --svg`, `provdb ui`).
pub struct NeighbourEdge {
    /// The edge's external id.
    pub edge: String,
    /// Its type.
    pub edge_type: String,
    /// Sender and receiver, external ids (one of them is on the path).
    pub from: String,
    /// Receiver.
    pub to: String,
    /// The vertex off the path.
    pub neighbour: provdb::Vertex,
    /// Its path name attribute (`cf:pathname`), or empty.
    pub pathname: String,
    /// True the first time `neighbour` appears in the list.
    pub first_sight: bool,
}

/// Up to [`NEIGHBOURS_PER_VERTEX`] neighbours each way of each vertex of the alert's path.
pub fn alert_neighbourhood(db: &Database, a: &Alert) -> anyhow::Result<Vec<NeighbourEdge>> {
    let on_path: BTreeSet<&str> = a.path.iter().map(|v| v.id.as_str()).collect();
    let store = db.store();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for v in &a.path {
        let Some(vertex) = db
            .vertex_by_external(&v.id)
            .context("reading a path vertex")?
        else {
            continue;
        };
        for direction in [Direction::In, Direction::Out] {
            for adj in db
                .neighbours(vertex.id, direction, &[])?
                .into_iter()
                .take(NEIGHBOURS_PER_VERTEX)
            {
                let Some(n) = store.vertex(adj.neighbour)? else {
                    continue;
                };
                let nid = n.ext_id.to_string();
                if on_path.contains(nid.as_str()) {
                    continue;
                }
                let edge_type = store
                    .edge_type_name(adj.edge_type)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                let edge = store
                    .edge(adj.edge)?
                    .map(|e| e.ext_id.to_string())
                    .unwrap_or_default();
                let (from, to) = match direction {
                    Direction::Out => (v.id.clone(), nid.clone()),
                    _ => (nid.clone(), v.id.clone()),
                };
                let pathname = provdb_storage::find_attr(&n.attrs, "cf:pathname")
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                out.push(NeighbourEdge {
                    edge,
                    edge_type,
                    from,
                    to,
                    first_sight: seen.insert(nid),
                    neighbour: n,
                    pathname,
                });
            }
        }
    }
    Ok(out)
}
