//! Tokens of the query language, each with its byte span.

use crate::error::{ErrorKind, QueryError, Span};

/// A token kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    Pipe,
    Dot,
    DotDot,
    Star,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Tilde,
    Semi,
    At,
    /// `-[`
    EdgeOpen,
    /// `<-[`
    EdgeOpenBack,
    /// `]->`
    EdgeCloseFwd,
    /// `]-`
    EdgeClose,
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    /// A number with a unit: `90s`, `15m`, `24h`, `7d` (seconds).
    Duration(i64),
    Eof,
}

impl Tok {
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Colon => "`:`".into(),
            Tok::Pipe => "`|`".into(),
            Tok::Dot => "`.`".into(),
            Tok::DotDot => "`..`".into(),
            Tok::Star => "`*`".into(),
            Tok::Eq => "`=`".into(),
            Tok::Ne => "`!=`".into(),
            Tok::Lt => "`<`".into(),
            Tok::Le => "`<=`".into(),
            Tok::Gt => "`>`".into(),
            Tok::Ge => "`>=`".into(),
            Tok::Tilde => "`~`".into(),
            Tok::Semi => "`;`".into(),
            Tok::At => "`@`".into(),
            Tok::EdgeOpen => "`-[`".into(),
            Tok::EdgeOpenBack => "`<-[`".into(),
            Tok::EdgeCloseFwd => "`]->`".into(),
            Tok::EdgeClose => "`]-`".into(),
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::Int(i) => format!("number {i}"),
            Tok::Float(x) => format!("number {x}"),
            Tok::Duration(d) => format!("duration {d}s"),
            Tok::Eof => "end of query".into(),
        }
    }
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Splits `text` into tokens (the last one is [`Tok::Eof`]). `#` and `//` start comments.
pub(crate) fn lex(text: &str) -> Result<Vec<Token>, QueryError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let simple = |t: Tok, n: usize| (t, n);
        let (tok, len) = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' => simple(Tok::LParen, 1),
            b')' => simple(Tok::RParen, 1),
            b'{' => simple(Tok::LBrace, 1),
            b'}' => simple(Tok::RBrace, 1),
            b'[' => simple(Tok::LBracket, 1),
            b']' => {
                if text[i..].starts_with("]->") {
                    simple(Tok::EdgeCloseFwd, 3)
                } else if text[i..].starts_with("]-") {
                    simple(Tok::EdgeClose, 2)
                } else {
                    simple(Tok::RBracket, 1)
                }
            }
            b',' => simple(Tok::Comma, 1),
            b':' => simple(Tok::Colon, 1),
            b'|' => simple(Tok::Pipe, 1),
            b'.' if bytes.get(i + 1) == Some(&b'.') => simple(Tok::DotDot, 2),
            b'.' => simple(Tok::Dot, 1),
            b'*' => simple(Tok::Star, 1),
            b'=' if bytes.get(i + 1) == Some(&b'=') => simple(Tok::Eq, 2),
            b'=' => simple(Tok::Eq, 1),
            b'!' if bytes.get(i + 1) == Some(&b'=') => simple(Tok::Ne, 2),
            b'<' if text[i..].starts_with("<-[") => simple(Tok::EdgeOpenBack, 3),
            b'<' if text[i..].starts_with("<>") => simple(Tok::Ne, 2),
            b'<' if bytes.get(i + 1) == Some(&b'=') => simple(Tok::Le, 2),
            b'<' => simple(Tok::Lt, 1),
            b'>' if bytes.get(i + 1) == Some(&b'=') => simple(Tok::Ge, 2),
            b'>' => simple(Tok::Gt, 1),
            b'~' => simple(Tok::Tilde, 1),
            b';' => simple(Tok::Semi, 1),
            b'@' => simple(Tok::At, 1),
            b'-' if bytes.get(i + 1) == Some(&b'[') => simple(Tok::EdgeOpen, 2),
            b'-' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (t, n) = number(text, i + 1)?;
                let t = match t {
                    Tok::Int(v) => Tok::Int(-v),
                    Tok::Float(v) => Tok::Float(-v),
                    other => other,
                };
                (t, n + 1)
            }
            b'-' if text[i..].starts_with("->") || text[i..].starts_with("--") => {
                return Err(QueryError::at(
                    ErrorKind::Syntax,
                    text,
                    Span::new(i, i + 2),
                    "an edge is written `-[...]->`, `<-[...]-` or `-[...]-`",
                )
                .with_help("e.g. `(a) -[:read]-> (b)`, or `-[]->` for any edge"));
            }
            b'\'' | b'"' => string(text, i)?,
            b'0'..=b'9' => number(text, i)?,
            b'$' | b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                // `cf:pid` and `prov:label` are one identifier when no space follows `:` and
                // the prefix is a CamFlow namespace.
                let word = &text[i..j];
                if (word == "cf" || word == "prov")
                    && bytes.get(j) == Some(&b':')
                    && bytes.get(j + 1).is_some_and(|b| b.is_ascii_alphabetic())
                {
                    j += 1;
                    while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_')
                    {
                        j += 1;
                    }
                }
                (Tok::Ident(text[i..j].to_owned()), j - i)
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(QueryError::at(
                    ErrorKind::Syntax,
                    text,
                    Span::new(i, i + ch.len_utf8()),
                    format!("unexpected character `{ch}`"),
                ));
            }
        };
        i += len;
        out.push(Token {
            tok,
            span: Span::new(start, i),
        });
    }
    out.push(Token {
        tok: Tok::Eof,
        span: Span::new(text.len(), text.len()),
    });
    Ok(out)
}

fn string(text: &str, start: usize) -> Result<(Tok, usize), QueryError> {
    let quote = text.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((k, ch)) = chars.next() {
        if ch == quote {
            return Ok((Tok::Str(out), k + 2));
        }
        if ch == '\\' {
            match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, c)) if c == quote || c == '\\' => out.push(c),
                // Keep other escapes as written, so that regexes like '\.' work.
                Some((_, c)) => {
                    out.push('\\');
                    out.push(c);
                }
                None => break,
            }
        } else {
            out.push(ch);
        }
    }
    Err(QueryError::at(
        ErrorKind::Syntax,
        text,
        Span::new(start, text.len()),
        "unterminated string",
    )
    .with_help(format!("close it with {quote}")))
}

fn number(text: &str, start: usize) -> Result<(Tok, usize), QueryError> {
    let bytes = text.as_bytes();
    let mut j = start;
    while j < bytes.len() && bytes[j].is_ascii_digit() {
        j += 1;
    }
    let mut is_float = false;
    if bytes.get(j) == Some(&b'.') && bytes.get(j + 1).is_some_and(u8::is_ascii_digit) {
        is_float = true;
        j += 1;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
    }
    let digits = &text[start..j];
    let bad =
        |msg: &str| QueryError::at(ErrorKind::Syntax, text, Span::new(start, j), msg.to_owned());
    if is_float {
        let v: f64 = digits.parse().map_err(|_| bad("invalid number"))?;
        return Ok((Tok::Float(v), j - start));
    }
    let v: i64 = digits
        .parse()
        .map_err(|_| bad("number too large (the limit is 9223372036854775807)"))?;
    // A unit right after the digits makes a duration.
    let unit_end = {
        let mut k = j;
        while k < bytes.len() && bytes[k].is_ascii_alphabetic() {
            k += 1;
        }
        k
    };
    if unit_end > j {
        let unit = &text[j..unit_end];
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => {
                return Err(QueryError::at(
                    ErrorKind::Syntax,
                    text,
                    Span::new(j, unit_end),
                    format!("unknown duration unit `{unit}`"),
                )
                .with_help("use s, m, h or d (e.g. 24h)"))
            }
        };
        let secs = v
            .checked_mul(mult)
            .ok_or_else(|| bad("duration too large"))?;
        return Ok((Tok::Duration(secs), unit_end - start));
    }
    Ok((Tok::Int(v), j - start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        lex(s)
            .map(|v| v.into_iter().map(|t| t.tok).collect())
            .unwrap_or_default()
    }

    #[test]
    fn arrows_and_ranges() {
        assert_eq!(
            kinds("(a)<-[*1..3]-(b)"),
            vec![
                Tok::LParen,
                Tok::Ident("a".into()),
                Tok::RParen,
                Tok::EdgeOpenBack,
                Tok::Star,
                Tok::Int(1),
                Tok::DotDot,
                Tok::Int(3),
                Tok::EdgeClose,
                Tok::LParen,
                Tok::Ident("b".into()),
                Tok::RParen,
                Tok::Eof
            ]
        );
        assert_eq!(kinds("24h")[0], Tok::Duration(86_400));
        assert_eq!(kinds("cf:pid")[0], Tok::Ident("cf:pid".into()));
        assert_eq!(kinds("'a\\'b'")[0], Tok::Str("a'b".into()));
    }

    #[test]
    fn errors() {
        assert!(lex("'open").is_err());
        assert!(lex("(a) -> (b)").is_err());
        assert!(lex("99999999999999999999").is_err());
        assert!(lex("é").is_err());
    }
}
