//! Rule files: TOML with named sets of globs and `[[rule]]` tables, each with a pattern in
//! the query language. Errors say file, line and column, with the line and a caret, like the
//! query language's.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use provdb_query::{ErrorKind, QueryError, Span};
use toml_edit::{Document, Item, Table, Value};

use super::pattern::{self, Pattern, Sets};

/// The default rule pack, built into the binary.
pub const DEFAULT_PACK: &str = include_str!("default_rules.toml");
/// How the default pack is named in errors and listings.
pub const DEFAULT_PACK_NAME: &str = "(default pack)";

/// Cap on one rule file (a rule file is a few kilobytes; a huge one is a mistake).
const MAX_RULE_FILE_BYTES: u64 = 4 << 20;

/// How serious an alert of a rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Suspicious.
    Medium,
    /// Likely an attack step.
    High,
    /// An attack step with little benign explanation.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// Its name in rule files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The severity called `name`.
    ///
    /// ```
    /// use provdb::detect::Severity;
    /// assert_eq!(Severity::parse("high"), Some(Severity::High));
    /// assert_eq!(Severity::parse("urgent"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which end of the completing edge identifies an alert for deduplication: the same rule on
/// the same object (all versions of one process, file or socket) is one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The edge's sender (e.g. the process that sends).
    Sender,
    /// The edge's receiver (e.g. the process image that runs a binary).
    Receiver,
}

/// One detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name (`download-exec`): lower-case letters, digits and `-`.
    pub name: String,
    /// Severity of its alerts.
    pub severity: Severity,
    /// What it detects, in a sentence.
    pub description: String,
    /// MITRE ATT&CK technique ids.
    pub attack: Vec<String>,
    /// Tags older than this (seconds before the completing edge) do not count.
    pub window: Option<i64>,
    /// The patterns as written (any of them completes the rule).
    pub patterns: Vec<String>,
    /// The summary template (`{var.property}` placeholders).
    pub summary: Option<String>,
    /// Which end deduplicates.
    pub anchor: Anchor,
    /// Where the rule comes from: a file's path, or [`DEFAULT_PACK_NAME`].
    pub origin: String,
    pub(crate) compiled: Vec<Pattern>,
}

/// The active rules and the named sets they use.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    pub(crate) sets: Sets,
    /// Rules by completing edge type (rules with an untyped edge are under ""), looked up
    /// twice per edge: foldhash, not SipHash (5% of the detector thread), since its keys come
    /// from the rules, not from the machines.
    pub(crate) by_edge_type: foldhash::HashMap<String, Vec<(usize, usize)>>,
    /// Names taken by rules that do not run: (name, origin).
    reserved: Vec<(String, String)>,
}

/// Which rules to load.
#[derive(Debug, Clone, Default)]
pub struct RulesOptions {
    /// Leave the default pack out (its named sets stay available to other rules).
    pub no_default_rules: bool,
    /// Rule files, or folders whose `*.toml` files are read (in name order).
    pub paths: Vec<PathBuf>,
}

/// A rule file that cannot be used, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The file (or [`DEFAULT_PACK_NAME`]).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, in characters, when known.
    pub column: Option<usize>,
    /// The line, for the caret.
    pub line_text: Option<String>,
    /// Characters to underline.
    pub width: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message)?,
            _ => write!(f, "{}: {}", self.file, self.message)?,
        }
        if let (Some(text), Some(l), Some(c)) = (&self.line_text, self.line, self.column) {
            let gutter = l.to_string().len();
            write!(
                f,
                "\n{l} | {text}\n{} | {}{}",
                " ".repeat(gutter),
                " ".repeat(c.saturating_sub(1)),
                "^".repeat(self.width.max(1))
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleError {}

impl RuleError {
    fn whole_file(file: &str, message: impl Into<String>) -> RuleError {
        RuleError {
            file: file.to_owned(),
            line: None,
            column: None,
            line_text: None,
            width: 1,
            message: message.into(),
        }
    }

    /// An error at a byte span of the file's text.
    fn at(
        file: &str,
        text: &str,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        // The query language's own locator: line, column in characters, the line's text.
        let located = QueryError::at(
            ErrorKind::Syntax,
            text,
            Span::new(span.start.min(text.len()), span.end.min(text.len())),
            message.clone(),
        );
        match located.location() {
            Some(loc) => RuleError {
                file: file.to_owned(),
                line: Some(loc.line),
                column: Some(loc.column),
                line_text: Some(loc.line_text.clone()),
                width: loc.width,
                message,
            },
            None => RuleError::whole_file(file, message),
        }
    }
}

impl RuleSet {
    /// No rules at all.
    pub fn empty() -> RuleSet {
        RuleSet::default()
    }

    /// The default pack alone.
    ///
    /// ```
    /// let pack = provdb::detect::RuleSet::default_pack();
    /// assert_eq!(pack.rules().len(), 12);
    /// assert!(pack.rule("download-exec").is_some());
    /// ```
    pub fn default_pack() -> RuleSet {
        let mut set = RuleSet::default();
        // The pack is tested to load (tests/detect_rules.rs); an error here is a build bug.
        if let Err(e) = set.add_text(DEFAULT_PACK, DEFAULT_PACK_NAME, UseRules::Keep) {
            panic!("the default rule pack does not load: {e}");
        }
        set
    }

    /// The rules the options ask for: the default pack (unless left out), then each file.
    pub fn load(options: &RulesOptions) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::default();
        let pack = if options.no_default_rules {
            UseRules::Drop
        } else {
            UseRules::Keep
        };
        set.add_text(DEFAULT_PACK, DEFAULT_PACK_NAME, pack)?;
        for path in &options.paths {
            for file in rule_files(path)? {
                set.add_file(&file)?;
            }
        }
        Ok(set)
    }

    /// Parses rule-file text (`origin` names it in errors) on top of the default pack's sets
    /// (and names, which its rules may not reuse); returns just its rules.
    ///
    /// ```
    /// use provdb::detect::RuleSet;
    /// let text = r#"
    /// [[rule]]
    /// name = "any-ptrace"
    /// severity = "medium"
    /// description = "A process attaches to another with ptrace."
    /// pattern = "(a:task) -[:ptrace_attach|ptrace_attach_task]-> (b)"
    /// "#;
    /// let rules = RuleSet::parse_text(text, "mine.toml")?;
    /// assert_eq!(rules.rules()[0].name, "any-ptrace");
    /// let bad = RuleSet::parse_text(&text.replace("(b)", "(b where colour = 1)"), "mine.toml");
    /// let err = bad.unwrap_err();
    /// assert_eq!((err.line, err.column), (Some(6), Some(69)));
    /// # Ok::<(), provdb::detect::RuleError>(())
    /// ```
    pub fn parse_text(text: &str, origin: &str) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::default();
        set.add_text(DEFAULT_PACK, DEFAULT_PACK_NAME, UseRules::Reserve)?;
        set.add_text(text, origin, UseRules::Keep)?;
        Ok(set)
    }

    /// Checks one rule file against the default pack's sets and rule names (as it would load
    /// beside the pack); returns its rules.
    pub fn check_file(path: &Path) -> Result<Vec<Rule>, RuleError> {
        let mut set = RuleSet::default();
        set.add_text(DEFAULT_PACK, DEFAULT_PACK_NAME, UseRules::Reserve)?;
        let before = set.rules.len();
        set.add_file(path)?;
        Ok(set.rules.split_off(before))
    }

    /// The active rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule called `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The named sets: (name, globs).
    pub fn sets(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.sets
            .entries
            .iter()
            .map(|(n, globs, _)| (n.as_str(), globs.as_slice()))
    }

    fn add_file(&mut self, path: &Path) -> Result<(), RuleError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path)
            .map_err(|e| RuleError::whole_file(&name, format!("cannot read: {e}")))?;
        if meta.len() > MAX_RULE_FILE_BYTES {
            return Err(RuleError::whole_file(
                &name,
                format!(
                    "{} bytes: a rule file is at most {MAX_RULE_FILE_BYTES}",
                    meta.len()
                ),
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| RuleError::whole_file(&name, format!("cannot read: {e}")))?;
        self.add_text(&text, &name, UseRules::Keep)
    }

    /// Adds the sets of one file's text, and its rules as `use_rules` says.
    fn add_text(&mut self, text: &str, file: &str, use_rules: UseRules) -> Result<(), RuleError> {
        let doc = Document::parse(text).map_err(|e| match e.span() {
            Some(span) => RuleError::at(file, text, span, e.message().trim().to_owned()),
            None => RuleError::whole_file(file, e.message().trim().to_owned()),
        })?;
        let at = |item_span: Option<std::ops::Range<usize>>, message: String| match item_span {
            Some(span) => RuleError::at(file, text, span, message),
            None => RuleError::whole_file(file, message),
        };
        for (key, item) in doc.iter() {
            if !["sets", "rule"].contains(&key) {
                let span = doc.key(key).and_then(|k| k.span());
                return Err(at(
                    span,
                    format!("unknown section `{key}`; a rule file has `[sets]` and `[[rule]]`"),
                ));
            }
            let _ = item;
        }
        if let Some(sets) = doc.get("sets") {
            let Some(table) = sets.as_table() else {
                return Err(at(sets.span(), "`sets` is a table of lists".into()));
            };
            for (name, item) in table.iter() {
                let globs = string_list(item)
                    .ok_or_else(|| at(item.span(), format!("set `{name}` is a list of strings")))?;
                self.sets
                    .add(name, globs)
                    .map_err(|m| at(table.key(name).and_then(|k| k.span()), m))?;
            }
        }
        let Some(rules) = doc.get("rule") else {
            return Ok(());
        };
        let Some(rules) = rules.as_array_of_tables() else {
            return Err(at(rules.span(), "rules are `[[rule]]` tables".into()));
        };
        for table in rules.iter() {
            let rule = parse_rule(table, file, text, &self.sets)?;
            let taken = self
                .rules
                .iter()
                .map(|r| (&r.name, &r.origin))
                .chain(self.reserved.iter().map(|(n, o)| (n, o)))
                .find(|(n, _)| **n == rule.name);
            if let Some((_, origin)) = taken {
                return Err(at(
                    table.get("name").and_then(Item::span),
                    format!("rule `{}` is already defined in {origin}", rule.name),
                ));
            }
            match use_rules {
                UseRules::Keep => self.push(rule),
                UseRules::Reserve => self.reserved.push((rule.name, rule.origin)),
                UseRules::Drop => {}
            }
        }
        Ok(())
    }

    fn push(&mut self, rule: Rule) {
        let index = self.rules.len();
        for (pi, p) in rule.compiled.iter().enumerate() {
            if p.edge_types.is_empty() {
                self.by_edge_type
                    .entry(String::new())
                    .or_default()
                    .push((index, pi));
            }
            for t in &p.edge_types {
                self.by_edge_type
                    .entry(t.clone())
                    .or_default()
                    .push((index, pi));
            }
        }
        self.rules.push(rule);
    }
}

/// What [`RuleSet::add_text`] does with a file's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UseRules {
    /// They become active.
    Keep,
    /// Their names are taken (the default pack when checking a file: a rule of the same
    /// name would clash when the pack is on), but they do not run.
    Reserve,
    /// Only the file's sets count (the pack turned off).
    Drop,
}

/// The rule files of a path: the file itself, or a folder's `*.toml` in name order.
fn rule_files(path: &Path) -> Result<Vec<PathBuf>, RuleError> {
    let name = path.display().to_string();
    if path.is_dir() {
        let mut files = Vec::new();
        let entries = std::fs::read_dir(path)
            .map_err(|e| RuleError::whole_file(&name, format!("cannot read folder: {e}")))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| RuleError::whole_file(&name, format!("cannot read folder: {e}")))?;
            let p = entry.path();
            if p.extension().is_some_and(|x| x == "toml") && p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        Ok(files)
    } else if path.exists() {
        Ok(vec![path.to_path_buf()])
    } else {
        Err(RuleError::whole_file(&name, "no such file or folder"))
    }
}

fn string_list(item: &Item) -> Option<Vec<String>> {
    item.as_array().and_then(|a| {
        a.iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
    })
}

/// A string value and where it is in the file.
type Spanned = (String, Option<std::ops::Range<usize>>);

const RULE_KEYS: &[&str] = &[
    "name",
    "severity",
    "description",
    "attack",
    "window",
    "pattern",
    "summary",
    "anchor",
];

fn parse_rule(table: &Table, file: &str, text: &str, sets: &Sets) -> Result<Rule, RuleError> {
    let at = |span: Option<std::ops::Range<usize>>, message: String| match span {
        Some(span) => RuleError::at(file, text, span, message),
        None => RuleError::whole_file(file, message),
    };
    let table_span = table.span();
    for (key, _) in table.iter() {
        if !RULE_KEYS.contains(&key) {
            return Err(at(
                table.key(key).and_then(|k| k.span()),
                format!("unknown key `{key}`; a rule has {}", RULE_KEYS.join(", ")),
            ));
        }
    }
    let string = |key: &str| -> Result<Option<Spanned>, RuleError> {
        match table.get(key) {
            None => Ok(None),
            Some(item) => match item.as_str() {
                Some(s) => Ok(Some((s.to_owned(), item.span()))),
                None => Err(at(item.span(), format!("`{key}` is a string"))),
            },
        }
    };
    let required = |key: &str| -> Result<Spanned, RuleError> {
        string(key)?.ok_or_else(|| at(table_span.clone(), format!("a rule needs `{key}`")))
    };
    let (name, name_span) = required("name")?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(at(
            name_span,
            format!("rule name `{name}`: use lower-case letters, digits and `-`"),
        ));
    }
    let (severity_text, severity_span) = required("severity")?;
    let severity = Severity::parse(&severity_text).ok_or_else(|| {
        at(
            severity_span,
            format!("severity `{severity_text}`: one of low, medium, high, critical"),
        )
    })?;
    let (description, _) = required("description")?;
    let attack = match table.get("attack") {
        None => Vec::new(),
        Some(item) => {
            let list = string_list(item)
                .ok_or_else(|| at(item.span(), "`attack` is a list of technique ids".into()))?;
            for id in &list {
                let ok = id.len() >= 5
                    && id.starts_with('T')
                    && id[1..].chars().all(|c| c.is_ascii_digit() || c == '.');
                if !ok {
                    return Err(at(
                        item.span(),
                        format!("`{id}` is not an ATT&CK technique id (e.g. T1059.004)"),
                    ));
                }
            }
            list
        }
    };
    let window = match string("window")? {
        None => None,
        Some((w, span)) => Some(parse_duration(&w).ok_or_else(|| {
            at(
                span,
                format!("window `{w}`: a duration such as 90s, 15m, 24h or 7d"),
            )
        })?),
    };
    let anchor = match string("anchor")? {
        None => Anchor::Receiver,
        Some((a, span)) => match a.as_str() {
            "sender" => Anchor::Sender,
            "receiver" => Anchor::Receiver,
            _ => return Err(at(span, format!("anchor `{a}`: sender or receiver"))),
        },
    };
    let summary = string("summary")?.map(|(s, _)| s);
    let Some(pattern_item) = table.get("pattern") else {
        return Err(at(table_span, "a rule needs `pattern`".into()));
    };
    let pattern_values: Vec<&Value> = match pattern_item {
        Item::Value(Value::Array(a)) => a.iter().collect(),
        Item::Value(v @ Value::String(_)) => vec![v],
        other => {
            return Err(at(
                other.span(),
                "`pattern` is a string, or a list of strings (any of them completes the rule)"
                    .into(),
            ))
        }
    };
    if pattern_values.is_empty() {
        return Err(at(pattern_item.span(), "`pattern` is empty".into()));
    }
    let mut patterns = Vec::new();
    let mut compiled = Vec::new();
    for value in pattern_values {
        let Some(source) = value.as_str() else {
            return Err(at(value.span(), "a pattern is a string".into()));
        };
        // Where the pattern's text starts in the file, to place its errors (exact for a
        // string without escapes; else the error points at the string).
        let value_span = value.span();
        let origin = value_span
            .as_ref()
            .and_then(|s| text_start(text, s, source));
        let place = |span: Span| match (&origin, &value_span) {
            (Some(start), _) => Some(start + span.start..start + span.end.max(span.start + 1)),
            (None, s) => s.clone(),
        };
        let parsed = provdb_query::parse(source).map_err(|e| {
            let span = e
                .location()
                .and_then(|l| offset_of(source, l.line, l.column))
                .map(|o| Span::new(o, o + e.location().map_or(1, |l| l.width)));
            at(span.and_then(place), format!("pattern: {}", e.message()))
        })?;
        let p = pattern::compile(&parsed, sets)
            .map_err(|e| at(place(e.span), format!("pattern: {}", e.message)))?;
        if let Some(s) = &summary {
            check_summary(s, &p).map_err(|m| at(table.get("summary").and_then(Item::span), m))?;
        }
        patterns.push(source.to_owned());
        compiled.push(p);
    }
    Ok(Rule {
        name,
        severity,
        description,
        attack,
        window,
        patterns,
        summary,
        anchor,
        origin: file.to_owned(),
        compiled,
    })
}

/// The byte offset in `text` where a string value's content starts, when the raw text there
/// holds the value verbatim (no escapes), so errors in the pattern point at their place.
fn text_start(text: &str, span: &std::ops::Range<usize>, value: &str) -> Option<usize> {
    let raw = text.get(span.clone())?;
    for quote in ["'''", "\"\"\"", "'", "\""] {
        if let Some(rest) = raw.strip_prefix(quote) {
            let skip_newline = quote.len() == 3 && rest.starts_with('\n');
            let start = span.start + quote.len() + usize::from(skip_newline);
            return text
                .get(start..start + value.len())
                .filter(|t| *t == value)
                .map(|_| start);
        }
    }
    None
}

/// Byte offset of a 1-based line and character column in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let mut start = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            let col = l
                .char_indices()
                .nth(column.saturating_sub(1))
                .map_or(l.len(), |(o, _)| o);
            return Some(start + col);
        }
        start += l.len() + 1;
    }
    None
}

/// `{var.property}` placeholders must name the pattern's variables and known properties.
fn check_summary(summary: &str, p: &Pattern) -> Result<(), String> {
    for placeholder in placeholders(summary) {
        let (var, prop) = placeholder.split_once('.').ok_or_else(|| {
            format!("summary placeholder `{{{placeholder}}}`: write {{var.property}}")
        })?;
        if !p.vars.iter().any(|(v, _)| v == var) {
            return Err(format!(
                "summary placeholder `{{{placeholder}}}`: no variable `{var}` in the pattern"
            ));
        }
        if !pattern::VERTEX_PROPS.iter().any(|(n, _)| *n == prop) {
            return Err(format!(
                "summary placeholder `{{{placeholder}}}`: unknown property `{prop}`"
            ));
        }
    }
    Ok(())
}

/// The `{...}` placeholders of a summary template.
pub(crate) fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(p, _)| p))
}

/// `90s`, `15m`, `24h`, `7d` in seconds (rule windows, `alerts --since`).
///
/// ```
/// assert_eq!(provdb::detect::parse_duration("24h"), Some(86_400));
/// assert_eq!(provdb::detect::parse_duration("soon"), None);
/// ```
pub fn parse_duration(text: &str) -> Option<i64> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = digits.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// A rule set shared by the threads of an ingest.
pub type SharedRules = Arc<RuleSet>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("24h"), Some(86_400));
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    #[test]
    fn offsets_of_lines_and_columns() {
        let text = "ab\ncdé f";
        assert_eq!(offset_of(text, 1, 2), Some(1));
        assert_eq!(offset_of(text, 2, 5), Some(8));
        assert_eq!(offset_of(text, 3, 1), None);
    }
}
