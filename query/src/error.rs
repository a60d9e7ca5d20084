//! [`QueryError`]: every way a query can fail, with its place in the query text.

use std::fmt;

use provdb_storage::ReadError;

/// A byte range of the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` (bytes).
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// What kind of error a [`QueryError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text is not a valid query.
    Syntax,
    /// A type name, property or variable that does not exist.
    Unknown,
    /// A valid query that cannot be run as written (e.g. an empty range).
    Invalid,
    /// The storage engine failed.
    Storage,
    /// A guard (timeout, row or depth limit) stopped the query. A [`crate::Cursor`] turns it
    /// into a [`crate::Warning`] and ends the result; it is never returned to callers.
    Limit,
}

/// A query error. Syntax and name errors carry the place in the query and render it with a
/// caret under the offending text:
///
/// ```
/// let err = provdb_query::parse("(a) -[:read]-> (b) | limit x").unwrap_err();
/// let text = err.to_string();
/// assert!(text.contains("line 1, column 28"), "{text}");
/// assert!(text.contains("expected a number"), "{text}");
/// assert!(text.contains('^'));
/// ```
#[derive(Debug, Clone)]
pub struct QueryError {
    kind: ErrorKind,
    message: String,
    help: Option<String>,
    location: Option<Location>,
    /// The storage engine's own error, kept typed (kind [`ErrorKind::Storage`]): a query only
    /// reads, so it is a read error.
    storage: Option<std::sync::Arc<ReadError>>,
}

/// Where an error is in the query text (1-based line and column, in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The whole line.
    pub line_text: String,
    /// Number of characters to underline (at least 1).
    pub width: usize,
}

impl QueryError {
    /// An error at `span` of `text`.
    pub fn at(kind: ErrorKind, text: &str, span: Span, message: impl Into<String>) -> QueryError {
        QueryError {
            kind,
            message: message.into(),
            help: None,
            location: Some(locate(text, span)),
            storage: None,
        }
    }

    /// An error without a place in the text.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> QueryError {
        QueryError {
            kind,
            message: message.into(),
            help: None,
            location: None,
            storage: None,
        }
    }

    /// Adds a help line (e.g. "did you mean `task`?").
    pub fn with_help(mut self, help: impl Into<String>) -> QueryError {
        self.help = Some(help.into());
        self
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without place or help.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The help line, if any.
    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// The place in the query, if the error has one.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// The storage engine's error, when the storage engine failed (also the error's
    /// [`std::error::Error::source`]): callers can tell corruption from I/O, for instance.
    pub fn storage_error(&self) -> Option<&ReadError> {
        self.storage.as_deref()
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            None => {
                write!(f, "{}", self.message)?;
                if let Some(h) = &self.help {
                    write!(f, " ({h})")?;
                }
                Ok(())
            }
            Some(loc) => {
                writeln!(
                    f,
                    "{} at line {}, column {}",
                    self.message, loc.line, loc.column
                )?;
                let gutter = loc.line.to_string();
                let pad = " ".repeat(gutter.len());
                let shown = ShownLine::around(loc);
                writeln!(f, "{pad} |")?;
                writeln!(f, "{gutter} | {}", shown.text)?;
                write!(
                    f,
                    "{pad} | {}{}",
                    " ".repeat(shown.caret_column),
                    "^".repeat(shown.caret_width)
                )?;
                if let Some(h) = &self.help {
                    write!(f, " {h}")?;
                }
                Ok(())
            }
        }
    }
}

/// The part of an error's line that is printed: all of it when short, else a window around
/// the error with `…` where text is cut (a query of one 16 KiB line must not be echoed whole).
struct ShownLine {
    text: String,
    /// Characters before the caret.
    caret_column: usize,
    caret_width: usize,
}

impl ShownLine {
    /// Longest line printed whole, in characters.
    const MAX_CHARS: usize = 100;
    /// Characters kept before the error when the line is cut.
    const CONTEXT_BEFORE: usize = 40;

    fn around(loc: &Location) -> ShownLine {
        let chars: Vec<char> = loc.line_text.chars().collect();
        let at = loc.column.saturating_sub(1).min(chars.len());
        if chars.len() <= Self::MAX_CHARS {
            return ShownLine {
                text: loc.line_text.clone(),
                caret_column: at,
                caret_width: loc.width.max(1),
            };
        }
        let start = at.saturating_sub(Self::CONTEXT_BEFORE);
        let end = (start + Self::MAX_CHARS).min(chars.len());
        let mut text = String::new();
        if start > 0 {
            text.push('…');
        }
        text.extend(&chars[start..end]);
        if end < chars.len() {
            text.push('…');
        }
        ShownLine {
            text,
            caret_column: at - start + usize::from(start > 0),
            caret_width: loc.width.clamp(1, (end.saturating_sub(at)).max(1)),
        }
    }
}

impl std::error::Error for QueryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.storage
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<ReadError> for QueryError {
    fn from(e: ReadError) -> QueryError {
        let mut err = QueryError::new(ErrorKind::Storage, format!("storage error: {e}"));
        err.storage = Some(std::sync::Arc::new(e));
        err
    }
}

fn locate(text: &str, span: Span) -> Location {
    let start = clamp_boundary(text, span.start);
    let end = clamp_boundary(text, span.end.max(start));
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let width = text[start..end.min(line_end)].chars().count().max(1);
    Location {
        line,
        column,
        line_text: text[line_start..line_end].trim_end_matches('\r').to_owned(),
        width,
    }
}

fn clamp_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The candidate closest to `word` (edit distance at most a third of its length, at least 1),
/// for "did you mean" hints.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = word.chars().count().div_ceil(3).clamp(1, 3);
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c)
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("taks", ["task", "file"]), Some("task"));
        assert_eq!(did_you_mean("raed", ["read", "write"]), Some("read"));
        assert_eq!(did_you_mean("zzzz", ["read", "write"]), None);
    }

    #[test]
    fn a_long_line_is_shown_around_the_error_with_the_caret_under_it() {
        // 5,000 characters of padding, the bad word, 5,000 more.
        let text = format!("{}limt{}", "x".repeat(5000), "y".repeat(5000));
        let e = QueryError::at(ErrorKind::Syntax, &text, Span::new(5000, 5004), "bad");
        let s = e.to_string();
        assert!(s.contains("line 1, column 5001"), "{s}");
        let lines: Vec<&str> = s.lines().collect();
        let (shown, caret) = (lines[2], lines[3]);
        assert!(shown.chars().count() < 120, "{shown}");
        assert!(shown.contains("…xxx") && shown.ends_with("yyy…"), "{shown}");
        let under = |line: &str, col: usize| line.chars().nth(col);
        let caret_at = caret.chars().position(|c| c == '^').unwrap();
        assert_eq!(caret.chars().filter(|c| *c == '^').count(), 4);
        let word: String = (0..4).filter_map(|i| under(shown, caret_at + i)).collect();
        assert_eq!(word, "limt");
    }

    #[test]
    fn caret_on_second_line() {
        let e = QueryError::at(ErrorKind::Syntax, "(a)\n | limt 3", Span::new(7, 11), "bad");
        let s = e.to_string();
        assert!(s.contains("line 2, column 4"), "{s}");
        assert!(s.contains("   ^^^^"), "{s}");
    }
}
