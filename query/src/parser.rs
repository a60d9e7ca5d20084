//! Recursive-descent parser from tokens to the [`crate::ast`].

use crate::ast::*;
use crate::error::{did_you_mean, ErrorKind, QueryError, Span};
use crate::lexer::{lex, Tok, Token};

/// The step keywords, for completion and "did you mean".
pub const STEP_KEYWORDS: &[&str] = &[
    "where", "during", "dedup", "order", "skip", "limit", "count", "return", "shortest", "path",
    "as",
];

/// Every keyword of the language, for completion.
pub const KEYWORDS: &[&str] = &[
    "where", "during", "dedup", "order", "by", "desc", "asc", "skip", "limit", "count", "return",
    "distinct", "shortest", "path", "as", "and", "or", "not", "in", "true", "false", "null",
    "causal", "last",
];

/// Parses a query (an optional trailing `;` is allowed).
///
/// ```
/// let q = provdb_query::parse("(t:task) -[:clone|exec_task*1..]-> (c:task) | where t.pid = 3666 | dedup c | return c.pid")?;
/// assert_eq!(q.hops.len(), 1);
/// assert_eq!(q.hops[0].0.hops, Some((1, None)));
/// assert_eq!(q.steps.len(), 3);
/// # Ok::<(), provdb_query::QueryError>(())
/// ```
pub fn parse(text: &str) -> Result<Query, QueryError> {
    let tokens = lex(text)?;
    let mut p = Parser {
        text,
        tokens,
        pos: 0,
        anon: 0,
        depth: 0,
        conditions: 0,
    };
    let q = p.query()?;
    if p.peek() == &Tok::Semi {
        p.pos += 1;
    }
    if p.peek() != &Tok::Eof {
        let t = p.cur().clone();
        let help = if let Tok::Ident(w) = &t.tok {
            did_you_mean(w, STEP_KEYWORDS.iter().copied()).map(|s| format!("did you mean `| {s}`?"))
        } else {
            None
        };
        let mut e = p.error_at(
            t.span,
            format!(
                "expected `|` and a step, or the end of the query, found {}",
                t.tok.describe()
            ),
        );
        if let Some(h) = help {
            e = e.with_help(h);
        }
        return Err(e);
    }
    Ok(q)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    anon: usize,
    depth: usize,
    /// Conditions so far (`and`/`or` operands, `{key: value}` entries).
    conditions: usize,
}

/// Most conditions in one query: each `and`/`or` chain is a tree as deep as it is long, which
/// planning and evaluation walk recursively, so its length is bounded like the nesting.
const MAX_CONDITIONS: usize = 256;

/// Deepest nesting of parentheses and `not` in an expression.
const MAX_NESTING: usize = 64;

/// How bare identifiers in an expression are read.
#[derive(Clone, Copy)]
enum Scope<'s> {
    /// In a `where` step: a bare identifier is a variable.
    Step,
    /// Inside a node or edge pattern: a bare identifier is a property of that element.
    Element(&'s str),
}

impl Parser<'_> {
    fn cur(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek(&self) -> &Tok {
        &self.cur().tok
    }

    /// Moves past the current token and returns it. The token is taken, not cloned: the
    /// parser reads only the spans of tokens it has moved past (cloning each token's text was
    /// a tenth of a first-touch query's parse). The last token, `Eof`, is never moved past.
    fn bump(&mut self) -> Token {
        if self.pos < self.tokens.len() - 1 {
            let token = &mut self.tokens[self.pos];
            let tok = std::mem::replace(&mut token.tok, Tok::Eof);
            let span = token.span;
            self.pos += 1;
            Token { tok, span }
        } else {
            self.cur().clone()
        }
    }

    fn error_at(&self, span: Span, msg: impl Into<String>) -> QueryError {
        QueryError::at(ErrorKind::Syntax, self.text, span, msg)
    }

    fn expected(&self, what: &str) -> QueryError {
        let t = self.cur();
        self.error_at(
            t.span,
            format!("expected {what}, found {}", t.tok.describe()),
        )
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, QueryError> {
        if *self.peek() == tok {
            Ok(self.bump())
        } else {
            Err(self.expected(what))
        }
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn ident(&mut self, what: &str) -> Result<Name, QueryError> {
        // `Eof` is last, so an identifier is never the token `bump` declines to move past.
        let pos = self.pos.min(self.tokens.len() - 1);
        let Token {
            tok: Tok::Ident(text),
            span,
        } = &mut self.tokens[pos]
        else {
            return Err(self.expected(what));
        };
        let name = Name {
            text: std::mem::take(text),
            span: *span,
        };
        self.pos = pos + 1;
        Ok(name)
    }

    fn query(&mut self) -> Result<Query, QueryError> {
        if *self.peek() == Tok::Eof {
            return Err(self
                .expected("a pattern such as `(v:task)`")
                .with_help("e.g. `(t:task) -[:clone]-> (c) | return c.pid`"));
        }
        let start = self.node()?;
        let mut hops = Vec::new();
        while matches!(self.peek(), Tok::EdgeOpen | Tok::EdgeOpenBack) {
            let e = self.edge()?;
            let n = self.node()?;
            hops.push((e, n));
        }
        let mut steps = Vec::new();
        while *self.peek() == Tok::Pipe {
            self.bump();
            steps.push(self.step()?);
        }
        Ok(Query { start, hops, steps })
    }

    fn node(&mut self) -> Result<NodePattern, QueryError> {
        let open = match self.peek() {
            Tok::LParen => self.bump().span,
            _ => {
                return Err(self.expected("`(` to start a node pattern"));
            }
        };
        let mut node = NodePattern::default();
        if let Tok::Ident(w) = self.peek() {
            if !w.eq_ignore_ascii_case("where") {
                node.var = Some(self.ident("a variable")?);
            }
        }
        if *self.peek() == Tok::Colon {
            self.bump();
            node.types = self.alts("a vertex type name")?;
        }
        if *self.peek() == Tok::LBrace {
            node.props = self.props()?;
        }
        if self.eat_kw("where") {
            let var = self.element_var(&mut node.var);
            node.filter = Some(self.expr(Scope::Element(&var))?);
        }
        let close = self
            .expect(Tok::RParen, "`)` to close the node pattern")?
            .span;
        node.span = open.to(close);
        Ok(node)
    }

    fn element_var(&mut self, var: &mut Option<Name>) -> String {
        match var {
            Some(v) => v.text.clone(),
            None => {
                self.anon += 1;
                let name = format!("_{}", self.anon);
                *var = Some(Name::new(name.clone()));
                name
            }
        }
    }

    fn alts(&mut self, what: &str) -> Result<Vec<Name>, QueryError> {
        let mut out = vec![self.ident(what)?];
        while *self.peek() == Tok::Pipe {
            self.bump();
            out.push(self.ident(what)?);
        }
        Ok(out)
    }

    fn props(&mut self) -> Result<Vec<(Name, Literal)>, QueryError> {
        self.expect(Tok::LBrace, "`{`")?;
        let mut out = Vec::new();
        if *self.peek() != Tok::RBrace {
            loop {
                self.count_condition()?;
                let key = self.ident("a property name")?;
                self.expect(Tok::Colon, "`:` after the property name")?;
                let value = self.literal()?;
                out.push((key, value));
                if *self.peek() == Tok::Comma {
                    self.bump();
                    continue;
                }
                break;
            }
        }
        self.expect(Tok::RBrace, "`,` or `}`")?;
        Ok(out)
    }

    fn edge(&mut self) -> Result<EdgePattern, QueryError> {
        let open = self.bump();
        let back = open.tok == Tok::EdgeOpenBack;
        let mut edge = EdgePattern::default();
        if let Tok::Ident(w) = self.peek() {
            if !w.eq_ignore_ascii_case("where") && !w.eq_ignore_ascii_case("causal") {
                edge.var = Some(self.ident("a variable")?);
            }
        }
        if *self.peek() == Tok::Colon {
            self.bump();
            edge.types = self.alts("an edge type name")?;
        }
        if *self.peek() == Tok::Star {
            let star = self.bump().span;
            let min = match self.peek() {
                Tok::Int(v) => {
                    let v = *v;
                    self.bump();
                    Some(v)
                }
                _ => None,
            };
            let (min, max) = if *self.peek() == Tok::DotDot {
                self.bump();
                let max = match self.peek() {
                    Tok::Int(v) => {
                        let v = *v;
                        self.bump();
                        Some(v)
                    }
                    _ => None,
                };
                (min.unwrap_or(1), max)
            } else {
                match min {
                    Some(m) => (m, Some(m)),
                    None => (1, None),
                }
            };
            let span = star.to(self.tokens[self.pos.saturating_sub(1)].span);
            let to_u32 = |v: i64| u32::try_from(v).ok();
            let (Some(min), max) = (to_u32(min), max.map(to_u32)) else {
                return Err(self.error_at(span, "hop counts must be between 0 and 4294967295"));
            };
            let max = match max {
                Some(None) => {
                    return Err(self.error_at(span, "hop counts must be between 0 and 4294967295"))
                }
                Some(Some(m)) => Some(m),
                None => None,
            };
            if let Some(m) = max {
                if m < min {
                    return Err(QueryError::at(
                        ErrorKind::Invalid,
                        self.text,
                        span,
                        format!("empty hop range: {min} is more than {m}"),
                    ));
                }
            }
            edge.hops = Some((min, max));
        }
        if self.eat_kw("causal") {
            edge.causal = true;
        }
        if *self.peek() == Tok::LBrace {
            edge.props = self.props()?;
        }
        if self.eat_kw("where") {
            let var = self.element_var(&mut edge.var);
            edge.filter = Some(self.expr(Scope::Element(&var))?);
        }
        let close = self.cur().clone();
        edge.dir = match (back, &close.tok) {
            (false, Tok::EdgeCloseFwd) => Dir::Forward,
            (false, Tok::EdgeClose) => Dir::Either,
            (true, Tok::EdgeClose) => Dir::Backward,
            (true, Tok::EdgeCloseFwd) => {
                return Err(self
                    .error_at(close.span, "an edge cannot point both ways")
                    .with_help("write `-[...]-` to follow edges in either direction"))
            }
            _ => {
                return Err(self.expected(if back {
                    "`]-` to close the edge pattern"
                } else {
                    "`]->` or `]-` to close the edge pattern"
                }))
            }
        };
        self.bump();
        edge.span = open.span.to(close.span);
        Ok(edge)
    }

    fn step(&mut self) -> Result<Step, QueryError> {
        let t = self.cur().clone();
        let Tok::Ident(word) = &t.tok else {
            return Err(self.expected("a step (where, dedup, return, count, limit, ...)"));
        };
        let word = word.to_ascii_lowercase();
        self.bump();
        Ok(match word.as_str() {
            "where" => Step::Where(self.expr(Scope::Step)?),
            "during" => {
                let start = self.cur().span;
                let w = if self.eat_kw("last") {
                    match self.peek() {
                        Tok::Duration(d) => {
                            let d = *d;
                            self.bump();
                            TimeWindow::Last(d)
                        }
                        Tok::Int(d) => {
                            let d = *d;
                            self.bump();
                            TimeWindow::Last(d)
                        }
                        _ => return Err(self.expected("a duration such as `24h`")),
                    }
                } else {
                    let a = self.time()?;
                    self.expect(Tok::DotDot, "`..` between the two times")?;
                    let b = self.time()?;
                    TimeWindow::Between(a, b)
                };
                let span = start.to(self.tokens[self.pos.saturating_sub(1)].span);
                Step::During(w, span)
            }
            "dedup" => {
                if let Tok::Ident(_) = self.peek() {
                    Step::Dedup(Some(self.ident("a variable")?))
                } else {
                    Step::Dedup(None)
                }
            }
            "order" => {
                if !self.eat_kw("by") {
                    return Err(self.expected("`by`"));
                }
                let e = self.expr(Scope::Step)?;
                let desc = if self.eat_kw("desc") {
                    true
                } else {
                    self.eat_kw("asc");
                    false
                };
                Step::OrderBy(e, desc)
            }
            "skip" => Step::Skip(self.count_arg()?),
            "limit" => Step::Limit(self.count_arg()?),
            "count" => Step::Count,
            "return" | "select" => {
                let distinct = self.eat_kw("distinct");
                let mut items = Vec::new();
                loop {
                    let start = self.cur().span.start;
                    let expr = self.expr(Scope::Step)?;
                    let end = self.tokens[self.pos.saturating_sub(1)].span.end;
                    let column = if self.eat_kw("as") {
                        self.ident("a column name")?.text
                    } else {
                        self.text
                            .get(start..end)
                            .unwrap_or_default()
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    items.push(ReturnItem { expr, column });
                    if *self.peek() == Tok::Comma {
                        self.bump();
                        continue;
                    }
                    break;
                }
                Step::Return { distinct, items }
            }
            "shortest" => Step::Shortest,
            "path" => Step::Path,
            "as" => {
                let n = self.ident("a format (table, json, csv, dot)")?;
                if !["table", "json", "csv", "dot"].contains(&n.text.as_str()) {
                    return Err(QueryError::at(
                        ErrorKind::Unknown,
                        self.text,
                        n.span,
                        format!("unknown format `{}`", n.text),
                    )
                    .with_help("formats: table, json, csv, dot"));
                }
                Step::As(n)
            }
            other => {
                let mut e = QueryError::at(
                    ErrorKind::Syntax,
                    self.text,
                    t.span,
                    format!("unknown step `{other}`"),
                );
                e = match did_you_mean(other, STEP_KEYWORDS.iter().copied()) {
                    Some(s) => e.with_help(format!("did you mean `{s}`?")),
                    None => e.with_help(format!("steps: {}", STEP_KEYWORDS.join(", "))),
                };
                return Err(e);
            }
        })
    }

    fn count_arg(&mut self) -> Result<u64, QueryError> {
        match self.peek() {
            Tok::Int(v) if *v >= 0 => {
                let v = *v as u64;
                self.bump();
                Ok(v)
            }
            _ => Err(self.expected("a number")),
        }
    }

    fn time(&mut self) -> Result<i64, QueryError> {
        self.expect(Tok::At, "a time such as `@'2019-01-24T08:00'`")?;
        let t = self.cur().clone();
        match &t.tok {
            Tok::Str(s) => {
                self.bump();
                crate::time::parse_time(s).ok_or_else(|| {
                    self.error_at(t.span, format!("invalid time '{s}'"))
                        .with_help(
                            "write YYYY-MM-DDThh:mm:ss (UTC) or CamFlow's YYYY:MM:DDThh:mm:ss",
                        )
                })
            }
            Tok::Int(v) => {
                let v = *v;
                self.bump();
                Ok(v)
            }
            _ => Err(self.expected("a quoted time after `@`")),
        }
    }

    fn literal(&mut self) -> Result<Literal, QueryError> {
        if matches!(self.peek(), Tok::Str(_)) {
            if let Tok::Str(s) = self.bump().tok {
                return Ok(Literal::Str(s));
            }
        }
        let t = self.cur().clone();
        Ok(match &t.tok {
            Tok::Int(i) => {
                self.bump();
                Literal::Int(*i)
            }
            Tok::Float(x) => {
                self.bump();
                Literal::Float(*x)
            }
            Tok::At => Literal::Time(self.time()?),
            Tok::Ident(w) if w == "true" => {
                self.bump();
                Literal::Bool(true)
            }
            Tok::Ident(w) if w == "false" => {
                self.bump();
                Literal::Bool(false)
            }
            Tok::Ident(w) if w == "null" => {
                self.bump();
                Literal::Null
            }
            Tok::LBracket => {
                self.bump();
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err(
                        self.error_at(t.span, format!("lists nested more than {MAX_NESTING} deep"))
                    );
                }
                let mut items = Vec::new();
                if *self.peek() != Tok::RBracket {
                    loop {
                        items.push(self.literal()?);
                        if *self.peek() == Tok::Comma {
                            self.bump();
                            continue;
                        }
                        break;
                    }
                }
                self.expect(Tok::RBracket, "`,` or `]`")?;
                self.depth -= 1;
                Literal::List(items)
            }
            _ => return Err(self.expected("a value (a string, a number, true, false or null)")),
        })
    }

    fn expr(&mut self, scope: Scope<'_>) -> Result<Expr, QueryError> {
        let mut lhs = self.conj(scope)?;
        while self.eat_kw("or") {
            let rhs = self.conj(scope)?;
            lhs = Expr::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn conj(&mut self, scope: Scope<'_>) -> Result<Expr, QueryError> {
        let mut lhs = self.neg(scope)?;
        while self.eat_kw("and") {
            let rhs = self.neg(scope)?;
            lhs = Expr::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    /// Counts one condition at the current token; an error past [`MAX_CONDITIONS`].
    fn count_condition(&mut self) -> Result<(), QueryError> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(self.error_at(
                self.cur().span,
                format!("more than {MAX_CONDITIONS} conditions in one query"),
            ));
        }
        Ok(())
    }

    fn neg(&mut self, scope: Scope<'_>) -> Result<Expr, QueryError> {
        if !self.is_kw("not") {
            self.count_condition()?;
        }
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error_at(
                self.cur().span,
                format!("expression nested more than {MAX_NESTING} deep"),
            ));
        }
        let r = if self.eat_kw("not") {
            self.neg(scope).map(|e| Expr::Not(Box::new(e)))
        } else {
            self.cmp(scope)
        };
        self.depth -= 1;
        r
    }

    fn cmp(&mut self, scope: Scope<'_>) -> Result<Expr, QueryError> {
        let start = self.cur().span;
        let lhs = self.atom(scope)?;
        let op = match self.peek() {
            Tok::Eq => CmpOp::Eq,
            Tok::Ne => CmpOp::Ne,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Tilde => CmpOp::Match,
            Tok::Ident(w) if w.eq_ignore_ascii_case("in") => CmpOp::In,
            _ => return Ok(lhs),
        };
        self.bump();
        let rhs = self.atom(scope)?;
        let span = start.to(self.tokens[self.pos.saturating_sub(1)].span);
        Ok(Expr::Cmp(op, Box::new(lhs), Box::new(rhs), span))
    }

    fn atom(&mut self, scope: Scope<'_>) -> Result<Expr, QueryError> {
        let t = self.cur().clone();
        match &t.tok {
            Tok::LParen => {
                self.bump();
                let e = self.expr(scope)?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(e)
            }
            Tok::Ident(w) if !["true", "false", "null"].contains(&w.as_str()) => {
                let first = self.ident("a name")?;
                if *self.peek() == Tok::Dot {
                    self.bump();
                    let key = self.ident("a property name after `.`")?;
                    return Ok(Expr::Prop(first, key));
                }
                Ok(match scope {
                    Scope::Step => Expr::Var(first),
                    Scope::Element(var) => Expr::Prop(
                        Name {
                            text: var.to_owned(),
                            span: first.span,
                        },
                        first,
                    ),
                })
            }
            _ => {
                let lit = self
                    .literal()
                    .map_err(|_| self.expected("a value, a variable or `var.property`"))?;
                let span = t.span.to(self.tokens[self.pos.saturating_sub(1)].span);
                Ok(Expr::Lit(lit, span))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMS: &[&str] = &[
        "() -[e:read]-> () | count",
        "(v {id:'AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA='}) <-[*1..3]- (a) | dedup a | count",
        "(v {id:'AQAAAAAAAEDDHQIAAAAAAAEAAABTTLt0AgAAAAAAAAA='}) -[*1..5]-> (d) | dedup d | return d.id, d.type",
        "(p:path {pathname:'/usr/bin/wget'}) -[:named]-> (f) | return f.id, f.type",
        "(t:task) -[:clone|exec_task*1..]-> (c:task) | where t.pid = 3666 | dedup c | return c.pid",
        "(f:file {path:'/tmp/x.sh'}) <-[*..10]- (a) | dedup a | return a.type, a.name, a.time",
        "(p:task {pid:4242}) -[e]- (o) | order by e.time | return e.type, o.type, o.name, e.time",
        "(f:file {path:'/etc/shadow'}) -[*..8 causal]-> (s:socket|address) | path | limit 20",
        "(p:task) -[e:connect]-> (s:socket) | during @'2024-05-01T09:00'..@'2024-05-01T10:00' | return p.pid, s.name, e.time",
        "(l:file where path ~ '^/tmp/') -[:mmap_exec]-> (p) | return distinct p.pid, l.path",
        "(a:task {pid:1}) -[*..20]- (b:file {path:'/var/www/shell.php'}) | shortest | path",
        "() -[e where e.allowed = false]-> () | return e.type, e.time",
        "(p:task) -[e:setuid|change]-> (q) | during last 24h | return p.pid, p.name, e.time",
        "(a where name ~ 'elevateme') -[*..4]- (b where name ~ '^128\\.55\\.12\\.') | as dot",
    ];

    #[test]
    fn forms_parse_and_print_back() {
        for f in FORMS {
            let q = parse(f).unwrap_or_else(|e| panic!("{f}\n{e}"));
            let again = parse(&q.to_string()).unwrap_or_else(|e| panic!("{q}\n{e}"));
            assert_eq!(q.to_string(), again.to_string());
        }
    }

    #[test]
    fn return_columns_as_written() {
        let q = parse("(v) | return v.id,  v.type as t").unwrap_or_else(|e| panic!("{e}"));
        let Step::Return { items, .. } = &q.steps[0] else {
            panic!("not a return")
        };
        assert_eq!(items[0].column, "v.id");
        assert_eq!(items[1].column, "t");
    }

    #[test]
    fn syntax_errors() {
        for (q, needle) in [
            ("(a", "expected `)`"),
            ("(a) -[:read] (b)", "`]->` or `]-`"),
            ("(a) <-[:read]-> (b)", "both ways"),
            ("(a) | limt 3", "did you mean `limit`"),
            ("(a) -[*5..2]-> (b)", "empty hop range"),
            ("", "expected a pattern"),
            ("(a) | return", "expected a value"),
            ("(a) | as xml", "unknown format"),
        ] {
            match parse(q) {
                Ok(_) => panic!("{q} parsed"),
                Err(e) => assert!(e.to_string().contains(needle), "{q}: {e}"),
            }
        }
    }
}
