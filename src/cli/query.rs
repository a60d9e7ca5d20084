//! `provdb query`: runs one traversal query and prints the result.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use provdb::query::{Cursor, Limits};

use super::render::{self, Format};
use super::stats::open_for_reading;

/// Arguments of `provdb query`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Arrows follow information flow as CamFlow records it (sender -> receiver): `-[...]->` forward, \
`<-[...]-` backward, `-[...]-` either way. See docs/query-language.md for the whole language.

Examples:
  provdb --db DIR query '() -[e:read]-> () | count'
  provdb --db DIR query \"(p:path {pathname:'/usr/bin/wget'}) -[:named]-> (f) | return f.id, f.type\"
  provdb --db DIR query --format json \"(t:task) -[:clone|exec_task*1..]-> (c:task) | where t.pid = 3666 | dedup c | return c.pid\"
  provdb --db DIR query --format dot --svg lineage.svg \"(v {id:'AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA='}) <-[*1..3]- (a)\"
  echo '(v:task) | count' | provdb --db DIR query

Works while `provdb serve` writes the same database. Hitting a guard (--max-depth, --max-rows, \
--timeout) prints a warning on stderr; errors point at the place in the query.")]
pub struct QueryArgs {
    /// The query. Without it (or with `-`), the query is read from --file or standard input.
    pub query: Option<String>,
    /// Read the query from this file.
    #[arg(short, long, conflicts_with = "query")]
    pub file: Option<PathBuf>,
    /// Output format (`| as FORMAT` in the query overrides the default).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Also render the matched subgraph to this SVG file with Graphviz `dot`.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// The guards.
    #[command(flatten)]
    pub guards: GuardArgs,
    /// Print the plan (anchor and expansions) on stderr.
    #[arg(long)]
    pub explain: bool,
}

/// The guards of a query (`query`, `ui`): depth, rows, time.
#[derive(Debug, clap::Args)]
pub struct GuardArgs {
    /// Maximum hops of a variable-length pattern such as `*1..`.
    #[arg(long, default_value_t = 32)]
    pub max_depth: u32,
    /// Maximum rows of a result.
    #[arg(long, default_value_t = 100_000)]
    pub max_rows: u64,
    /// Time budget of a query in seconds (0: none).
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
}

impl GuardArgs {
    /// The query engine's limits for these options.
    pub fn limits(&self) -> Limits {
        Limits {
            max_depth: self.max_depth,
            max_rows: self.max_rows,
            timeout: (self.timeout > 0.0).then(|| Duration::from_secs_f64(self.timeout)),
            ..Limits::default()
        }
    }
}

pub fn run(db_paths: &[PathBuf], args: QueryArgs) -> anyhow::Result<ExitCode> {
    let text = match (&args.query, &args.file) {
        (Some(q), _) if q != "-" => q.clone(),
        (_, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading the query from {}", f.display()))?,
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the query from standard input")?;
            s
        }
    };
    let limits = args.guards.limits();
    let db_path = match db_paths {
        [one] => one,
        several => return run_federated(several, &text, limits, &args),
    };
    let db = open_for_reading(db_path)?;
    db.catch_up()?;
    let store = db.store();
    let cursor = match Cursor::new(store, query_text(&text), limits) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.explain {
        eprintln!("{}", cursor.explain());
    }
    let hint = cursor.format_hint().and_then(Format::parse);
    let format = args.format.or(hint).unwrap_or(Format::Table);
    let result = match cursor.collect_result() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let stdout = std::io::stdout();
    let width = if stdout.is_terminal() {
        crossterm_width()
    } else {
        None
    };
    let mut out = stdout.lock();
    render::render(&mut out, store, &result, format, width)?;
    out.flush()?;
    if let Some(svg) = &args.svg {
        let dot = render::to_dot(store, &result)?;
        render::write_svg(&dot, svg)?;
        eprintln!("wrote {}", svg.display());
    }
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One query over several archives (`--db A --db B`): rows concatenated, counts summed.
fn run_federated(
    db_paths: &[PathBuf],
    text: &str,
    limits: Limits,
    args: &QueryArgs,
) -> anyhow::Result<ExitCode> {
    let mut dbs = Vec::with_capacity(db_paths.len());
    for path in db_paths {
        let db = open_for_reading(path)?;
        db.catch_up()?;
        dbs.push(db);
    }
    let refs: Vec<&provdb::Database> = dbs.iter().collect();
    let result = match provdb::federation::query_all(&refs, query_text(text), limits) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let hint = result.format_hint.as_deref().and_then(Format::parse);
    let format = args.format.or(hint).unwrap_or(Format::Table);
    if format == Format::Dot || args.svg.is_some() {
        anyhow::bail!("dot and --svg draw one archive's subgraph: give one --db");
    }
    let mut out = std::io::stdout().lock();
    render::render(&mut out, dbs[0].store(), &result, format, None)?;
    out.flush()?;
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The query as run: without surrounding blanks and a closing `;` (also `provdb ui`'s).
pub fn query_text(raw: &str) -> &str {
    raw.trim().trim_end_matches(';')
}

/// The terminal width, when stdout is one.
pub fn crossterm_width() -> Option<u16> {
    comfy_table::Table::new().width()
}
