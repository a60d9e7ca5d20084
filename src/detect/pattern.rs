//! A rule's pattern: one edge of the query language, `(a:types where ...) -[e:types]-> (b
//! where ...)`, with `| where` conditions over both ends, compiled to a test of the facts of
//! its sender and receiver as they were before that edge. The edge is the one that completes
//! the pattern; what came before it is in the facts' tags.

use std::collections::HashMap;

use provdb_query::ast::{CmpOp, Dir, Expr, Literal, Name, NodePattern, Query, Step};
use provdb_query::{Datum, Span};
use regex::Regex;

use super::facts::{Facts, TagKind};

/// Nesting of conditions a pattern may have (the query parser bounds it too).
const MAX_DEPTH: usize = 64;

/// Which element of the edge a property belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Sender,
    Receiver,
    Edge,
}

/// The properties a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prop {
    Type,
    Path,
    Exe,
    Argv,
    Uid,
    Remote,
    External,
    Truncated,
    ServerExe,
    Machine,
    /// Trust tags: `network`, `downloaded`.
    Trust,
    /// Confidentiality tags: `secret`.
    Conf,
    /// Has the `Server` tag.
    Server,
}

/// Vertex properties, by the name rules use.
pub(crate) const VERTEX_PROPS: &[(&str, Prop)] = &[
    ("type", Prop::Type),
    ("path", Prop::Path),
    ("name", Prop::Path),
    ("exe", Prop::Exe),
    ("argv", Prop::Argv),
    ("uid", Prop::Uid),
    ("remote", Prop::Remote),
    ("external", Prop::External),
    ("truncated", Prop::Truncated),
    ("server_exe", Prop::ServerExe),
    ("machine", Prop::Machine),
    ("trust", Prop::Trust),
    ("conf", Prop::Conf),
    ("server", Prop::Server),
];

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    /// A property used as a condition: true when it is `true` or a non-empty tag set.
    Truthy(End, Prop),
    Cmp(CmpOp, Operand, Operand),
    /// `x ~ 'regex'`
    Match(Operand, Regex),
    /// `x in $set`: the value matches one of the set's globs.
    InSet(Operand, usize),
}

#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Prop(End, Prop),
    Lit(Literal),
}

/// A value a condition compares.
#[derive(Debug, Clone, PartialEq)]
enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(&'a str),
    /// The tags of one family present on the vertex.
    Tags(Vec<&'static str>),
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) sender_types: Vec<String>,
    pub(crate) receiver_types: Vec<String>,
    /// Edge types (any when empty).
    pub(crate) edge_types: Vec<String>,
    pub(crate) cond: Option<Cond>,
    /// Variable names, for summaries: (name, end).
    pub(crate) vars: Vec<(String, End)>,
    /// The tags the conditions read, whose causal paths explain an alert.
    pub(crate) tags_read: Vec<(End, TagKind)>,
}

/// A compile error at a span of the pattern text.
#[derive(Debug, Clone)]
pub(crate) struct PatternError {
    pub(crate) span: Span,
    pub(crate) message: String,
}

fn err(span: Span, message: impl Into<String>) -> PatternError {
    PatternError {
        span,
        message: message.into(),
    }
}

/// Named sets of globs (`$secrets`), compiled to one anchored regex each.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sets {
    pub(crate) names: HashMap<String, usize>,
    pub(crate) entries: Vec<(String, Vec<String>, Regex)>,
}

impl Sets {
    /// Adds a set; `Err` with a message when the name is taken or a glob is unusable.
    pub(crate) fn add(&mut self, name: &str, globs: Vec<String>) -> Result<(), String> {
        if self.names.contains_key(name) {
            return Err(format!("set `{name}` is defined twice"));
        }
        let alternatives: Vec<String> = globs.iter().map(|g| glob_regex(g)).collect();
        let text = format!("^(?:{})$", alternatives.join("|"));
        let regex = regex::RegexBuilder::new(&text)
            .size_limit(1 << 22)
            .build()
            .map_err(|e| format!("set `{name}` does not compile: {e}"))?;
        self.names.insert(name.to_owned(), self.entries.len());
        self.entries.push((name.to_owned(), globs, regex));
        Ok(())
    }
}

/// A glob (`*` any text, `?` one character) as a regex.
fn glob_regex(glob: &str) -> String {
    let mut out = String::new();
    for c in glob.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out
}

/// Compiles a parsed pattern.
pub(crate) fn compile(q: &Query, sets: &Sets) -> Result<Pattern, PatternError> {
    let [(edge, other)] = q.hops.as_slice() else {
        let span = q.hops.get(1).map_or(q.start.span, |(e, _)| e.span);
        return Err(err(
            span,
            "a rule's pattern is one edge, the one that completes it: `(a) -[:type]-> (b)`; what came before it is read from tags (trust, conf, server)",
        ));
    };
    if edge.hops.is_some() || edge.causal {
        return Err(err(
            edge.span,
            "a rule's edge is one edge: no `*` range and no `causal`",
        ));
    }
    let (sender, receiver) = match edge.dir {
        Dir::Forward => (&q.start, other),
        Dir::Backward => (other, &q.start),
        Dir::Either => {
            return Err(err(
                edge.span,
                "a rule's edge has a direction: `-[...]->` or `<-[...]-`",
            ))
        }
    };
    let mut c = Compiler {
        sets,
        vars: Vec::new(),
        tags_read: Vec::new(),
    };
    for (node, end) in [(sender, End::Sender), (receiver, End::Receiver)] {
        if let Some(v) = &node.var {
            c.bind(v, end)?;
        }
    }
    if let Some(v) = &edge.var {
        c.bind(v, End::Edge)?;
    }
    let mut conds = Vec::new();
    for (node, end) in [(sender, End::Sender), (receiver, End::Receiver)] {
        conds.extend(c.node(node, end)?);
    }
    for (key, lit) in &edge.props {
        conds.push(c.prop_eq(End::Edge, key, lit)?);
    }
    if let Some(f) = &edge.filter {
        conds.push(c.expr(f, 0)?);
    }
    for step in &q.steps {
        match step {
            Step::Where(e) => conds.push(c.expr(e, 0)?),
            _ => {
                return Err(err(
                    q.start.span,
                    "a rule's pattern takes only `| where` steps",
                ))
            }
        }
    }
    let cond = conds
        .into_iter()
        .reduce(|a, b| Cond::And(Box::new(a), Box::new(b)));
    let names = |ns: &[Name]| ns.iter().map(|n| n.text.clone()).collect::<Vec<_>>();
    Ok(Pattern {
        sender_types: names(&sender.types),
        receiver_types: names(&receiver.types),
        edge_types: names(&edge.types),
        cond,
        vars: c.vars,
        tags_read: c.tags_read,
    })
}

struct Compiler<'s> {
    sets: &'s Sets,
    vars: Vec<(String, End)>,
    tags_read: Vec<(End, TagKind)>,
}

impl Compiler<'_> {
    fn bind(&mut self, v: &Name, end: End) -> Result<(), PatternError> {
        if self.vars.iter().any(|(n, _)| *n == v.text) {
            return Err(err(v.span, format!("variable `{}` is bound twice", v.text)));
        }
        self.vars.push((v.text.clone(), end));
        Ok(())
    }

    fn end_of(&self, var: &Name) -> Result<End, PatternError> {
        self.vars
            .iter()
            .find(|(n, _)| *n == var.text)
            .map(|(_, e)| *e)
            .ok_or_else(|| err(var.span, format!("unknown variable `{}`", var.text)))
    }

    fn node(&mut self, node: &NodePattern, end: End) -> Result<Vec<Cond>, PatternError> {
        let mut out = Vec::new();
        for (key, lit) in &node.props {
            out.push(self.prop_eq(end, key, lit)?);
        }
        if let Some(f) = &node.filter {
            out.push(self.expr(f, 0)?);
        }
        Ok(out)
    }

    fn prop(&mut self, end: End, key: &Name) -> Result<Prop, PatternError> {
        let known: &[(&str, Prop)] = match end {
            End::Edge => &[("type", Prop::Type)],
            _ => VERTEX_PROPS,
        };
        let name = key.text.strip_prefix("cf:").unwrap_or(&key.text);
        let prop = known
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| *p)
            .ok_or_else(|| {
                let list: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                err(
                    key.span,
                    format!(
                        "unknown property `{}`; rules read {}",
                        key.text,
                        list.join(", ")
                    ),
                )
            })?;
        let tag = match prop {
            Prop::Trust => Some([TagKind::Network, TagKind::Downloaded].as_slice()),
            Prop::Conf => Some([TagKind::Secret].as_slice()),
            Prop::Server => Some([TagKind::Server].as_slice()),
            _ => None,
        };
        for kind in tag.unwrap_or_default() {
            if !self.tags_read.contains(&(end, *kind)) {
                self.tags_read.push((end, *kind));
            }
        }
        Ok(prop)
    }

    fn prop_eq(&mut self, end: End, key: &Name, lit: &Literal) -> Result<Cond, PatternError> {
        let p = self.prop(end, key)?;
        let op = if matches!(lit, Literal::List(_)) {
            CmpOp::In
        } else {
            CmpOp::Eq
        };
        Ok(Cond::Cmp(
            op,
            Operand::Prop(end, p),
            Operand::Lit(lit.clone()),
        ))
    }

    fn operand(&mut self, e: &Expr) -> Result<Operand, PatternError> {
        match e {
            Expr::Lit(l, _) => Ok(Operand::Lit(l.clone())),
            Expr::Prop(var, key) => {
                let end = self.end_of(var)?;
                Ok(Operand::Prop(end, self.prop(end, key)?))
            }
            Expr::Var(v) => Err(err(
                v.span,
                format!(
                    "`{}` is a whole element; compare one of its properties",
                    v.text
                ),
            )),
            _ => Err(err(
                expr_span(e),
                "a comparison's sides are properties or values",
            )),
        }
    }

    fn expr(&mut self, e: &Expr, depth: usize) -> Result<Cond, PatternError> {
        if depth > MAX_DEPTH {
            return Err(err(expr_span(e), "conditions nest too deeply"));
        }
        Ok(match e {
            Expr::And(a, b) => Cond::And(
                Box::new(self.expr(a, depth + 1)?),
                Box::new(self.expr(b, depth + 1)?),
            ),
            Expr::Or(a, b) => Cond::Or(
                Box::new(self.expr(a, depth + 1)?),
                Box::new(self.expr(b, depth + 1)?),
            ),
            Expr::Not(a) => Cond::Not(Box::new(self.expr(a, depth + 1)?)),
            Expr::Prop(var, key) => {
                let end = self.end_of(var)?;
                Cond::Truthy(end, self.prop(end, key)?)
            }
            Expr::Cmp(op, a, b, span) => {
                let lhs = self.operand(a)?;
                match (op, &**b) {
                    (CmpOp::In, Expr::Prop(_, key) | Expr::Var(key))
                        if key.text.starts_with('$') =>
                    {
                        let name = &key.text[1..];
                        let set = self.sets.names.get(name).copied().ok_or_else(|| {
                            let mut known: Vec<&str> =
                                self.sets.names.keys().map(String::as_str).collect();
                            known.sort_unstable();
                            err(
                                key.span,
                                format!(
                                    "unknown set `${name}`; sets: {}",
                                    known
                                        .iter()
                                        .map(|k| format!("${k}"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            )
                        })?;
                        Cond::InSet(lhs, set)
                    }
                    (CmpOp::Match, Expr::Lit(Literal::Str(pattern), pspan)) => {
                        let regex = regex::RegexBuilder::new(pattern)
                            .size_limit(1 << 22)
                            .build()
                            .map_err(|e| err(*pspan, format!("bad regular expression: {e}")))?;
                        Cond::Match(lhs, regex)
                    }
                    (CmpOp::Match, _) => {
                        return Err(err(*span, "`~` takes a quoted regular expression"))
                    }
                    (CmpOp::In, Expr::Lit(Literal::List(_), _)) => {
                        Cond::Cmp(CmpOp::In, lhs, self.operand(b)?)
                    }
                    (CmpOp::In, _) => {
                        return Err(err(*span, "`in` takes a list `[..]` or a set `$name`"))
                    }
                    _ => Cond::Cmp(*op, lhs, self.operand(b)?),
                }
            }
            Expr::Lit(Literal::Bool(b), _) => Cond::Cmp(
                CmpOp::Eq,
                Operand::Lit(Literal::Bool(*b)),
                Operand::Lit(Literal::Bool(true)),
            ),
            other => return Err(err(expr_span(other), "not a condition")),
        })
    }
}

fn expr_span(e: &Expr) -> Span {
    match e {
        Expr::Lit(_, s) | Expr::Cmp(_, _, _, s) => *s,
        Expr::Var(n) => n.span,
        Expr::Prop(v, k) => v.span.to(k.span),
        Expr::And(a, b) | Expr::Or(a, b) => expr_span(a).to(expr_span(b)),
        Expr::Not(a) => expr_span(a),
    }
}

/// The facts of one edge's ends, before the edge, and the edge's type and time.
pub(crate) struct Subject<'a> {
    pub(crate) sender: &'a Facts,
    pub(crate) receiver: &'a Facts,
    pub(crate) edge_type: &'a str,
    pub(crate) time: Option<i64>,
    /// Tags older than this many seconds before the edge do not count.
    pub(crate) window: Option<i64>,
}

impl Pattern {
    /// True when the edge's type and ends match the pattern.
    pub(crate) fn matches(&self, s: &Subject<'_>, sets: &Sets) -> bool {
        let type_ok =
            |types: &[String], ty: &str| types.is_empty() || types.iter().any(|t| t == ty);
        type_ok(&self.edge_types, s.edge_type)
            && type_ok(&self.sender_types, &s.sender.ty)
            && type_ok(&self.receiver_types, &s.receiver.ty)
            && self.cond.as_ref().is_none_or(|c| eval(c, s, sets))
    }
}

fn eval(c: &Cond, s: &Subject<'_>, sets: &Sets) -> bool {
    match c {
        Cond::And(a, b) => eval(a, s, sets) && eval(b, s, sets),
        Cond::Or(a, b) => eval(a, s, sets) || eval(b, s, sets),
        Cond::Not(a) => !eval(a, s, sets),
        Cond::Truthy(end, p) => match value(*end, *p, s) {
            Val::Bool(b) => b,
            Val::Tags(t) => !t.is_empty(),
            _ => false,
        },
        Cond::Match(a, regex) => match operand(a, s) {
            Val::Str(t) => regex.is_match(t),
            _ => false,
        },
        Cond::InSet(a, set) => {
            let Some((_, _, regex)) = sets.entries.get(*set) else {
                return false;
            };
            match operand(a, s) {
                Val::Str(t) => regex.is_match(t),
                _ => false,
            }
        }
        Cond::Cmp(CmpOp::In, a, list) => eval_in(a, list, s),
        Cond::Cmp(op, a, b) => compare(*op, &operand(a, s), &operand(b, s)),
    }
}

fn operand<'a>(o: &'a Operand, s: &Subject<'a>) -> Val<'a> {
    match o {
        Operand::Prop(end, p) => value(*end, *p, s),
        Operand::Lit(l) => lit(l),
    }
}

fn lit(l: &Literal) -> Val<'_> {
    match l {
        Literal::Null | Literal::List(_) => Val::Null,
        Literal::Bool(b) => Val::Bool(*b),
        Literal::Int(i) | Literal::Time(i) => Val::Int(*i),
        Literal::Float(x) => Val::Int(*x as i64),
        Literal::Str(t) => Val::Str(t),
    }
}

fn value<'a>(end: End, p: Prop, s: &Subject<'a>) -> Val<'a> {
    let f = match end {
        End::Sender => s.sender,
        End::Receiver => s.receiver,
        End::Edge => {
            return match p {
                Prop::Type => Val::Str(s.edge_type),
                _ => Val::Null,
            }
        }
    };
    // A tag counts while it is younger than the rule's window.
    vertex_value(f, p, |since| match (s.window, s.time, since) {
        (Some(w), Some(now), Some(since)) => now - since <= w,
        _ => true,
    })
}

/// A vertex property as rules read it; `fresh` says whether a tag set at a time still counts.
fn vertex_value<'a>(f: &'a Facts, p: Prop, fresh: impl Fn(Option<i64>) -> bool) -> Val<'a> {
    let opt = |v: &'a Option<String>| v.as_deref().map_or(Val::Null, Val::Str);
    let tags = |kinds: &[TagKind]| {
        Val::Tags(
            kinds
                .iter()
                .filter_map(|k| f.tag(*k))
                .filter(|t| fresh(t.since))
                .map(|t| t.kind.value())
                .collect(),
        )
    };
    match p {
        Prop::Type if f.ty.is_empty() => Val::Null,
        Prop::Type => Val::Str(&f.ty),
        Prop::Path => opt(&f.path),
        Prop::Exe => opt(&f.exe),
        Prop::Argv => opt(&f.argv),
        Prop::Uid => f.uid.map_or(Val::Null, Val::Int),
        Prop::Remote => opt(&f.remote),
        Prop::External => Val::Bool(f.external),
        Prop::Truncated => Val::Bool(f.truncated),
        Prop::ServerExe => opt(&f.server_exe),
        Prop::Machine => f.machine.map_or(Val::Null, |m| Val::Int(i64::from(m))),
        Prop::Trust => tags(&[TagKind::Network, TagKind::Downloaded]),
        Prop::Conf => tags(&[TagKind::Secret]),
        Prop::Server => tags(&[TagKind::Server]),
    }
}

/// A vertex property by the name rules use (`path`, `trust`, ...), as text for an alert's
/// summary: the value a rule compares (a tag family as its tags, comma-separated, or
/// `none`). `None` for an unknown property or a value the vertex lacks.
pub(crate) fn display(f: &Facts, name: &str) -> Option<String> {
    let (_, prop) = VERTEX_PROPS.iter().find(|(n, _)| *n == name)?;
    match vertex_value(f, *prop, |_| true) {
        Val::Null => None,
        Val::Bool(b) => Some(b.to_string()),
        Val::Int(i) => Some(i.to_string()),
        Val::Str(t) => Some(t.to_owned()),
        Val::Tags(tags) if tags.is_empty() => Some("none".to_owned()),
        Val::Tags(tags) => Some(tags.join(",")),
    }
}

fn as_text<'a>(v: &'a Val<'_>) -> Option<&'a str> {
    match v {
        Val::Str(t) => Some(t),
        _ => None,
    }
}

/// Comparison with the query language's rules ([`provdb_query::Datum::compare`] and
/// [`CmpOp::holds`]): a quoted number equals the number, null equals null and compares with
/// nothing else, so `!=` is true between values that do not compare. A tag set "equals" a
/// tag it holds.
fn compare(op: CmpOp, a: &Val<'_>, b: &Val<'_>) -> bool {
    if let (Val::Tags(tags), other) | (other, Val::Tags(tags)) = (a, b) {
        let has = as_text(other).is_some_and(|t| tags.contains(&t));
        return match op {
            CmpOp::Eq => has,
            CmpOp::Ne => !has,
            _ => false,
        };
    }
    op.holds(datum(a).compare(&datum(b)))
}

fn datum(v: &Val<'_>) -> Datum {
    match v {
        Val::Null | Val::Tags(_) => Datum::Null,
        Val::Bool(b) => Datum::Bool(*b),
        Val::Int(i) => Datum::Int(*i),
        Val::Str(s) => Datum::Str((*s).to_owned()),
    }
}

/// `x in [a, b]`: equal to one of the items (for tags: one of them is present).
fn in_list(a: &Val<'_>, items: &[Literal]) -> bool {
    items.iter().any(|l| compare(CmpOp::Eq, a, &lit(l)))
}

fn eval_in(a: &Operand, list: &Operand, s: &Subject<'_>) -> bool {
    match list {
        Operand::Lit(Literal::List(items)) => in_list(&operand(a, s), items),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::display;
    use crate::detect::facts::{Facts, Tag, TagKind};

    fn tag(kind: TagKind) -> Tag {
        Tag {
            kind,
            since: Some(0),
            path: Vec::new(),
        }
    }

    #[test]
    fn summaries_show_each_property_as_rules_read_it() {
        let f = Facts {
            ty: "task".to_owned(),
            uid: Some(0),
            external: true,
            tags: vec![tag(TagKind::Downloaded), tag(TagKind::Server)],
            ..Facts::default()
        };
        // Each tag family shows only its own tags.
        assert_eq!(display(&f, "trust").as_deref(), Some("downloaded"));
        assert_eq!(display(&f, "server").as_deref(), Some("server"));
        assert_eq!(display(&f, "conf").as_deref(), Some("none"));
        assert_eq!(display(&f, "external").as_deref(), Some("true"));
        assert_eq!(display(&f, "truncated").as_deref(), Some("false"));
        assert_eq!(display(&f, "uid").as_deref(), Some("0"));
        assert_eq!(display(&f, "type").as_deref(), Some("task"));
        assert_eq!(display(&f, "name"), None, "no path known");
        assert_eq!(display(&f, "colour"), None, "not a property");
    }
}
