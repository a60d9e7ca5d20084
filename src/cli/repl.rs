//! `provdb repl`: an interactive shell for traversal queries.

use std::borrow::Cow;
use std::fs::File;
use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use provdb::query::{Cursor, Limits};
use provdb::Database;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Context, Editor, Helper};

use super::render::{self, Format};
use super::stats::open_for_reading;

/// Arguments of `provdb repl`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Statements end with `;` and may span several lines. Dot-commands take effect at once:
  .help  .schema  .stats  .machines  .alerts [ID]  .mode table|json|csv|dot  .output FILE|stdout
  .timer on|off  .limit N  .explain on|off  .quit
Tab completes keywords, type names and property keys of the archive. History is kept in
$XDG_DATA_HOME/provdb/history (or ~/.local/share/provdb/history) unless --history says otherwise.

Example session:
  provdb> (t:task) -[:clone|exec_task*1..]-> (c:task)
     ...> | where t.pid = 3666 | dedup c | return c.pid;
  provdb> .mode json
  provdb> () -[e:read]-> () | count;

Works while `provdb serve` writes the same database: each statement sees the latest data.")]
pub struct ReplArgs {
    /// History file.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Maximum hops of a variable-length pattern such as `*1..`.
    #[arg(long, default_value_t = 32)]
    pub max_depth: u32,
    /// Time budget of one statement, in seconds (0: none).
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Initial output mode.
    #[arg(long, value_enum, default_value = "table")]
    pub mode: Format,
}

const DOT_COMMANDS: &[&str] = &[
    ".help",
    ".schema",
    ".stats",
    ".machines",
    ".alerts",
    ".mode",
    ".output",
    ".timer",
    ".limit",
    ".explain",
    ".quit",
    ".exit",
];

const HELP: &str = "\
Statements end with `;` (they may span lines). Examples:
  (t:task) -[:clone|exec_task*1..]-> (c:task) | where t.pid = 3666 | dedup c | return c.pid;
  (p:path {pathname:'/usr/bin/wget'}) -[:named]-> (f) | return f.id, f.type;
  () -[e:read]-> () | count;
Arrows follow information flow (sender -> receiver): -[...]-> forward, <-[...]- backward,
-[...]- either. Steps: where, during, dedup, order by, skip, limit, count, return, shortest, path.
Dot-commands:
  .help                  this text
  .schema                vertex and edge types with counts, property keys
  .stats                 totals
  .machines              machines with vertex counts (and ingest registry when present)
  .alerts [ID]           the alerts of the detection rules, or one alert's causal path
  .mode table|json|csv|dot   output format
  .output FILE|stdout    write results to FILE
  .timer on|off          show the time under each result
  .limit N               maximum rows per result (default 1000)
  .explain on|off        print the plan before running
  .quit                  leave (also Ctrl-D)";

struct ReplHelper {
    words: Vec<String>,
    types: Vec<String>,
    props: Vec<String>,
}

impl ReplHelper {
    fn new(db: &Database) -> ReplHelper {
        let store = db.store();
        let mut types: Vec<String> = store
            .vertex_types()
            .into_iter()
            .chain(store.edge_types())
            .map(|(_, n)| n.to_string())
            .collect();
        types.sort();
        types.dedup();
        let mut props: Vec<String> = provdb::query::VERTEX_PROPERTIES
            .iter()
            .chain(provdb::query::EDGE_PROPERTIES)
            .map(|s| s.to_string())
            .collect();
        for (_, k) in store.attribute_keys() {
            props.push(k.strip_prefix("cf:").unwrap_or(&k).to_owned());
        }
        props.sort();
        props.dedup();
        let mut words: Vec<String> = provdb::query::KEYWORDS
            .iter()
            .map(|s| s.to_string())
            .collect();
        words.extend(types.iter().cloned());
        words.extend(props.iter().cloned());
        words.sort();
        words.dedup();
        ReplHelper {
            words,
            types,
            props,
        }
    }
}

fn pairs<'a>(prefix: &str, cands: impl Iterator<Item = &'a str>, insert_prefix: &str) -> Vec<Pair> {
    cands
        .filter(|c| c.starts_with(prefix))
        .map(|c| Pair {
            display: c.to_owned(),
            replacement: format!("{insert_prefix}{c}"),
        })
        .collect()
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if start == 0 && word.starts_with('.') {
            return Ok((0, pairs(word, DOT_COMMANDS.iter().copied(), "")));
        }
        let trimmed = before.trim_start();
        if trimmed.starts_with(".mode") {
            return Ok((
                start,
                pairs(word, ["table", "json", "csv", "dot"].into_iter(), ""),
            ));
        }
        if let Some(dot) = word.rfind('.') {
            // `var.key`: property keys.
            let (var, key) = word.split_at(dot + 1);
            return Ok((
                start,
                pairs(key, self.props.iter().map(String::as_str), var),
            ));
        }
        let after_colon = before[..start].ends_with(':')
            || before[..start].ends_with('|') && {
                let head = &before[..start];
                head.rfind(['(', '[', ' '])
                    .is_some_and(|i| head[i..].contains(':'))
            };
        let cands: Vec<Pair> = if after_colon {
            pairs(word, self.types.iter().map(String::as_str), "")
        } else {
            pairs(word, self.words.iter().map(String::as_str), "")
        };
        Ok((start, cands))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if statement_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Helper for ReplHelper {}

/// A statement is complete when it is empty, a dot-command, or ends with `;`.
fn statement_complete(input: &str) -> bool {
    let t = input.trim();
    t.is_empty() || t.starts_with('.') || t.ends_with(';')
}

struct State {
    mode: Format,
    output: Option<(PathBuf, File)>,
    timer: bool,
    explain: bool,
    limit: u64,
    max_depth: u32,
    timeout: Option<Duration>,
    /// Further archives (`--db A --db B repl`): statements run over all, rows merged.
    others: Vec<Database>,
}

fn history_path(args: &ReplArgs) -> Option<PathBuf> {
    if let Some(h) = &args.history {
        return Some(h.clone());
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("provdb").join("history"))
}

pub fn run(db_paths: &[PathBuf], args: ReplArgs) -> anyhow::Result<ExitCode> {
    let Some((first, rest)) = db_paths.split_first() else {
        anyhow::bail!("give --db DIR");
    };
    let db = open_for_reading(first)?;
    let others = rest
        .iter()
        .map(|p| open_for_reading(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = Config::builder()
        .auto_add_history(false)
        .max_history_size(10_000)?
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut rl: Editor<ReplHelper, FileHistory> = Editor::with_config(config)?;
    rl.set_helper(Some(ReplHelper::new(&db)));
    let history = history_path(&args);
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = rl.load_history(h);
    }
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        let s = db.stats()?;
        println!(
            "provdb {} — {} vertices, {} edges. Statements end with `;`; `.help` for help, `.quit` to leave.",
            env!("CARGO_PKG_VERSION"),
            s.vertices,
            s.edges
        );
    }
    let mut state = State {
        mode: args.mode,
        output: None,
        timer: true,
        explain: false,
        limit: 1000,
        max_depth: args.max_depth,
        timeout: (args.timeout > 0.0).then(|| Duration::from_secs_f64(args.timeout)),
        others,
    };
    let mut buffer = String::new();
    let mut failed = false;
    let mut piped = std::io::BufReader::new(std::io::stdin());
    loop {
        let prompt = if buffer.is_empty() {
            "provdb> "
        } else {
            "   ...> "
        };
        let read = if interactive {
            rl.readline(prompt)
        } else {
            // A script or pipe: read with a bound, since rustyline would hold a line of any
            // length.
            read_piped_line(&mut piped)
        };
        let line = match read {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                failed = true;
                eprintln!("error: {e}");
                buffer.clear();
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if !buffer.is_empty() {
            buffer.push('\n');
        }
        buffer.push_str(&line);
        if buffer.len() > MAX_STATEMENT_BYTES {
            failed = true;
            eprintln!("error: statement longer than {MAX_STATEMENT_BYTES} bytes: dropped");
            buffer.clear();
            continue;
        }
        if !statement_complete(&buffer) {
            continue;
        }
        let stmt = std::mem::take(&mut buffer);
        let stmt = stmt.trim();
        if stmt.is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(stmt);
        if let Some(h) = &history {
            let _ = rl.append_history(h);
        }
        if stmt.starts_with('.') {
            match dot_command(&db, &mut state, stmt) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    failed = true;
                    eprintln!("error: {}", super::error_line(&e));
                }
            }
            continue;
        }
        for part in split_statements(stmt) {
            if let Err(e) = run_statement(&db, &mut state, &part) {
                failed = true;
                eprintln!("error: {}", super::error_line(&e));
            }
        }
    }
    if !buffer.trim().is_empty() {
        // Input ended inside a statement: run it anyway (a script without the last `;`).
        if let Err(e) = run_statement(&db, &mut state, buffer.trim()) {
            failed = true;
            eprintln!("error: {}", super::error_line(&e));
        }
    }
    Ok(if failed && !interactive {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Longest statement (or line) the REPL holds; queries are a few hundred bytes.
const MAX_STATEMENT_BYTES: usize = 1 << 20;

/// Next line of piped input, at most [`MAX_STATEMENT_BYTES`] long (a longer one is skipped
/// and reported as `InvalidData`).
fn read_piped_line(input: &mut impl std::io::BufRead) -> rustyline::Result<String> {
    use provdb::import::{read_line_bounded, BoundedLine};
    match read_line_bounded(input, MAX_STATEMENT_BYTES)? {
        None => Err(ReadlineError::Eof),
        Some(BoundedLine::Text(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
            Ok(text.trim_end_matches(['\n', '\r']).to_owned())
        }
        Some(BoundedLine::TooLong { bytes }) => Err(ReadlineError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("line of {bytes} bytes is longer than {MAX_STATEMENT_BYTES}: dropped"),
        ))),
    }
}

/// Splits on `;` outside quotes.
fn split_statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some(q) => {
                cur.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c == ';' => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_owned());
                }
                cur.clear();
            }
            None => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

fn out_writer(state: &mut State) -> Box<dyn Write + '_> {
    match &mut state.output {
        Some((_, f)) => Box::new(f),
        None => Box::new(std::io::stdout().lock()),
    }
}

fn run_statement(db: &Database, state: &mut State, text: &str) -> anyhow::Result<()> {
    db.catch_up()?;
    let started = Instant::now();
    let limits = Limits {
        max_depth: state.max_depth,
        max_rows: state.limit,
        timeout: state.timeout,
        ..Limits::default()
    };
    let store = db.store();
    let (result, format) = if state.others.is_empty() {
        let cursor = Cursor::new(store, text, limits).map_err(anyhow::Error::new)?;
        if state.explain {
            println!("{}", cursor.explain());
        }
        let format = cursor
            .format_hint()
            .and_then(Format::parse)
            .unwrap_or(state.mode);
        (cursor.collect_result()?, format)
    } else {
        // Several archives (`--db A --db B repl`): one query over all, rows merged.
        let mut all = vec![db];
        for other in &state.others {
            other.catch_up()?;
            all.push(other);
        }
        let result = provdb::federation::query_all(&all, text, limits)?;
        let format = result
            .format_hint
            .as_deref()
            .and_then(Format::parse)
            .unwrap_or(state.mode);
        if format == Format::Dot {
            anyhow::bail!("dot draws one archive's subgraph: start the REPL with one --db");
        }
        (result, format)
    };
    let elapsed = started.elapsed();
    let width = if state.output.is_none() && std::io::stdout().is_terminal() {
        super::query::crossterm_width()
    } else {
        None
    };
    {
        let mut out = out_writer(state);
        render::render(&mut out, store, &result, format, width)?;
        out.flush()?;
    }
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    let n = result.rows.len();
    let rows = if n == 1 {
        "1 row".to_owned()
    } else {
        format!("{n} rows")
    };
    if state.timer {
        println!("{rows} ({:.1} ms)", elapsed.as_secs_f64() * 1000.0);
    } else {
        println!("{rows}");
    }
    Ok(())
}

/// Runs a dot-command; `Ok(true)` means quit.
fn dot_command(db: &Database, state: &mut State, text: &str) -> anyhow::Result<bool> {
    let text = text.trim_end_matches(';').trim();
    let mut parts = text.split_whitespace();
    let cmd = parts.next().unwrap_or_default();
    let arg = parts.next();
    let table = || {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t
    };
    match cmd {
        ".quit" | ".exit" | ".q" => return Ok(true),
        ".help" => println!("{HELP}"),
        ".schema" => {
            db.catch_up()?;
            let s = db.stats()?;
            for t in super::stats::type_tables(&s) {
                println!("{t}");
            }
            let mut keys: Vec<String> = db
                .store()
                .attribute_keys()
                .into_iter()
                .map(|(_, k)| k.to_string())
                .collect();
            keys.sort();
            println!("property keys: {}", keys.join(", "));
            println!(
                "virtual properties: vertices {}; edges {}",
                provdb::query::VERTEX_PROPERTIES.join(", "),
                provdb::query::EDGE_PROPERTIES.join(", ")
            );
        }
        ".stats" => {
            db.catch_up()?;
            let s = db.stats()?;
            println!("{}", super::stats::totals_table(&s));
        }
        ".machines" => {
            db.catch_up()?;
            let s = db.stats()?;
            let registry = provdb::ingest::load_machines(db.store()).unwrap_or_default();
            let mut t = table();
            t.set_header(["machine", "vertices", "messages", "last seen"]);
            for (m, n) in &s.machines {
                let r = registry.iter().find(|r| r.machine == *m);
                t.add_row([
                    m.to_string(),
                    n.to_string(),
                    r.map_or_else(String::new, |r| r.messages.to_string()),
                    r.map_or_else(String::new, |r| {
                        provdb::ingest::format_time_ms(r.last_seen_ms)
                    }),
                ]);
            }
            println!("{t}");
        }
        ".alerts" => {
            db.catch_up()?;
            match arg {
                Some(id) => {
                    let id: u64 = id
                        .parse()
                        .map_err(|_| anyhow::anyhow!("usage: .alerts [ID]"))?;
                    match db.alert(id)? {
                        Some(a) => print!("{}", super::alerts::describe(&a)),
                        None => anyhow::bail!("no alert {id}"),
                    }
                }
                None => {
                    let alerts = db.alerts(&provdb::detect::AlertFilter::default())?;
                    let mut t = table();
                    t.set_header([
                        "id", "severity", "rule", "machine", "time", "count", "summary",
                    ]);
                    for a in &alerts {
                        t.add_row(super::alerts::row(a));
                    }
                    println!("{t}");
                    println!(
                        "{} alert(s); `.alerts ID` prints one's causal path",
                        alerts.len()
                    );
                }
            }
        }
        ".mode" => match arg.and_then(Format::parse) {
            Some(f) => state.mode = f,
            None => anyhow::bail!("usage: .mode table|json|csv|dot"),
        },
        ".output" => match arg {
            None | Some("stdout") | Some("-") => state.output = None,
            Some(path) => {
                let f = File::create(path).with_context(|| format!("creating {path}"))?;
                state.output = Some((PathBuf::from(path), f));
            }
        },
        ".timer" => match arg {
            Some("on") => state.timer = true,
            Some("off") => state.timer = false,
            _ => anyhow::bail!("usage: .timer on|off"),
        },
        ".explain" => match arg {
            Some("on") => state.explain = true,
            Some("off") => state.explain = false,
            _ => anyhow::bail!("usage: .explain on|off"),
        },
        ".limit" => match arg.and_then(|a| a.parse::<u64>().ok()) {
            Some(n) if n > 0 => state.limit = n,
            _ => anyhow::bail!("usage: .limit N (N > 0)"),
        },
        other => {
            let hint = DOT_COMMANDS
                .iter()
                .find(|c| c.starts_with(other) || other.starts_with(*c))
                .map(|c| format!(" (did you mean {c}?)"))
                .unwrap_or_default();
            anyhow::bail!("unknown command {other}{hint}; .help lists the commands");
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() {
        assert!(statement_complete(".mode json"));
        assert!(!statement_complete("(v:task)\n| count"));
        assert!(statement_complete("(v:task)\n| count;"));
        assert_eq!(
            split_statements("(a {x:'a;b'}) | count; (b) | count;"),
            vec!["(a {x:'a;b'}) | count", "(b) | count"]
        );
    }
}
