//! The syntax tree of a query. The parser and the [`crate::builder`] both produce it; its
//! `Display` prints it back as query text.

use std::fmt;

use crate::error::Span;

/// A name with its place in the query text (a zero span when built in code).
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    /// The name.
    pub text: String,
    /// Where it is.
    pub span: Span,
}

impl Name {
    /// A name without a place (built in code).
    pub fn new(text: impl Into<String>) -> Name {
        Name {
            text: text.into(),
            span: Span::default(),
        }
    }
}

/// A whole query: a chain of node and edge patterns, then pipeline steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The first node.
    pub start: NodePattern,
    /// Each hop: an edge pattern and the node it leads to.
    pub hops: Vec<(EdgePattern, NodePattern)>,
    /// Steps after `|`.
    pub steps: Vec<Step>,
}

/// `(var:type1|type2 {key: value} where expr)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodePattern {
    /// Variable name.
    pub var: Option<Name>,
    /// Accepted vertex types (any when empty).
    pub types: Vec<Name>,
    /// Property equalities.
    pub props: Vec<(Name, Literal)>,
    /// Extra condition on the vertex.
    pub filter: Option<Expr>,
    /// Where the pattern is.
    pub span: Span,
}

/// Direction of an edge pattern relative to information flow (sender -> receiver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// `-[...]->`: from sender to receiver.
    Forward,
    /// `<-[...]-`: from receiver back to sender.
    Backward,
    /// `-[...]-`: either way.
    Either,
}

/// `-[var:type1|type2*min..max causal where expr]->`.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgePattern {
    /// Variable name (bound to the last edge of a variable-length hop).
    pub var: Option<Name>,
    /// Accepted edge types (any when empty).
    pub types: Vec<Name>,
    /// Direction.
    pub dir: Dir,
    /// `Some((min, max))` for a variable-length hop (`max` `None` = the maximum depth).
    pub hops: Option<(u32, Option<u32>)>,
    /// Edge times must not decrease along the path.
    pub causal: bool,
    /// Property equalities.
    pub props: Vec<(Name, Literal)>,
    /// Extra condition on every edge.
    pub filter: Option<Expr>,
    /// Where the pattern is.
    pub span: Span,
}

impl Default for EdgePattern {
    fn default() -> Self {
        EdgePattern {
            var: None,
            types: Vec::new(),
            dir: Dir::Forward,
            hops: None,
            causal: false,
            props: Vec::new(),
            filter: None,
            span: Span::default(),
        }
    }
}

/// A pipeline step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `where expr`
    Where(Expr),
    /// `during @a..@b` / `during last 24h`: every edge of a row in the window.
    During(TimeWindow, Span),
    /// `dedup [var]`: first row per distinct binding of `var` (of the whole row without).
    Dedup(Option<Name>),
    /// `order by expr [desc]`
    OrderBy(Expr, bool),
    /// `skip n`
    Skip(u64),
    /// `limit n`
    Limit(u64),
    /// `count`: one row with the column `count`.
    Count,
    /// `return [distinct] item, ...`
    Return {
        /// Drop repeated rows.
        distinct: bool,
        /// Projected items.
        items: Vec<ReturnItem>,
    },
    /// `shortest`: keep the match with the fewest edges.
    Shortest,
    /// `path`: one row per match, shown as its path.
    Path,
    /// `as table|json|csv|dot`: an output format hint.
    As(Name),
}

/// A time window of `during`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWindow {
    /// Inclusive Unix seconds.
    Between(i64, i64),
    /// The last so many seconds before the query runs.
    Last(i64),
}

/// `expr [as alias]` in `return`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnItem {
    /// The value.
    pub expr: Expr,
    /// The column name: the alias, else the expression as written.
    pub column: String,
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`
    Null,
    /// `true`/`false`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// `@'2019-01-24T08:00:24'`: Unix seconds.
    Time(i64),
    /// `[a, b]`
    List(Vec<Literal>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `~` (regular expression search)
    Match,
    /// `in [..]`
    In,
}

impl CmpOp {
    /// Whether a comparison holds, given how its sides compare ([`crate::Datum::compare`]:
    /// `None` when they do not compare, so `!=` holds and the others do not). `~` and `in`
    /// are not orderings: false here.
    ///
    /// ```
    /// use provdb_query::{ast::CmpOp, Datum};
    /// let ord = Datum::Int(3).compare(&Datum::Str("3".into()));
    /// assert!(CmpOp::Eq.holds(ord) && CmpOp::Le.holds(ord) && !CmpOp::Ne.holds(ord));
    /// assert!(CmpOp::Ne.holds(Datum::Null.compare(&Datum::Int(0))));
    /// ```
    pub fn holds(self, ord: Option<std::cmp::Ordering>) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            CmpOp::Eq => ord == Some(Equal),
            CmpOp::Ne => ord != Some(Equal),
            CmpOp::Lt => ord == Some(Less),
            CmpOp::Le => matches!(ord, Some(Less | Equal)),
            CmpOp::Gt => ord == Some(Greater),
            CmpOp::Ge => matches!(ord, Some(Greater | Equal)),
            CmpOp::Match | CmpOp::In => false,
        }
    }
}

/// A boolean or value expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Lit(Literal, Span),
    /// `var` (the bound vertex or edge).
    Var(Name),
    /// `var.key`
    Prop(Name, Name),
    /// A comparison.
    Cmp(CmpOp, Box<Expr>, Box<Expr>, Span),
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `not a`
    Not(Box<Expr>),
}

impl Expr {
    /// `var.key`, built in code.
    pub fn prop(var: &str, key: &str) -> Expr {
        Expr::Prop(Name::new(var), Name::new(key))
    }

    /// `lhs op rhs`, built in code.
    pub fn cmp(op: CmpOp, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Cmp(op, Box::new(lhs), Box::new(rhs), Span::default())
    }

    /// A literal, built in code.
    pub fn lit(l: impl Into<Literal>) -> Expr {
        Expr::Lit(l.into(), Span::default())
    }
}

impl From<i64> for Literal {
    fn from(v: i64) -> Literal {
        Literal::Int(v)
    }
}
impl From<&str> for Literal {
    fn from(v: &str) -> Literal {
        Literal::Str(v.to_owned())
    }
}
impl From<String> for Literal {
    fn from(v: String) -> Literal {
        Literal::Str(v)
    }
}
impl From<bool> for Literal {
    fn from(v: bool) -> Literal {
        Literal::Bool(v)
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Float(x) => write!(f, "{x:?}"),
            Literal::Str(s) => f.write_str(&quote(s)),
            Literal::Time(t) => write!(f, "@{}", quote(&crate::time::format_time(*t))),
            Literal::List(items) => {
                f.write_str("[")?;
                for (i, l) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{l}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Match => "~",
            CmpOp::In => "in",
        })
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Lit(l, _) => write!(f, "{l}"),
            Expr::Var(v) => f.write_str(&v.text),
            Expr::Prop(v, k) => write!(f, "{}.{}", v.text, k.text),
            Expr::Cmp(op, a, b, _) => write!(f, "{a} {op} {b}"),
            Expr::And(a, b) => write!(f, "({a} and {b})"),
            Expr::Or(a, b) => write!(f, "({a} or {b})"),
            Expr::Not(a) => write!(f, "not ({a})"),
        }
    }
}

fn write_alts(f: &mut fmt::Formatter<'_>, types: &[Name]) -> fmt::Result {
    for (i, t) in types.iter().enumerate() {
        f.write_str(if i == 0 { ":" } else { "|" })?;
        f.write_str(&t.text)?;
    }
    Ok(())
}

fn write_props(f: &mut fmt::Formatter<'_>, props: &[(Name, Literal)]) -> fmt::Result {
    if props.is_empty() {
        return Ok(());
    }
    f.write_str(" {")?;
    for (i, (k, v)) in props.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}:{v}", k.text)?;
    }
    f.write_str("}")
}

impl fmt::Display for NodePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        if let Some(v) = &self.var {
            f.write_str(&v.text)?;
        }
        write_alts(f, &self.types)?;
        write_props(f, &self.props)?;
        if let Some(e) = &self.filter {
            write!(f, " where {e}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for EdgePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.dir == Dir::Backward {
            "<-["
        } else {
            "-["
        })?;
        if let Some(v) = &self.var {
            f.write_str(&v.text)?;
        }
        write_alts(f, &self.types)?;
        if let Some((min, max)) = self.hops {
            write!(f, "*{min}..")?;
            if let Some(m) = max {
                write!(f, "{m}")?;
            }
        }
        if self.causal {
            f.write_str(" causal")?;
        }
        write_props(f, &self.props)?;
        if let Some(e) = &self.filter {
            write!(f, " where {e}")?;
        }
        f.write_str(if self.dir == Dir::Forward {
            "]->"
        } else {
            "]-"
        })
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Where(e) => write!(f, "where {e}"),
            Step::During(TimeWindow::Between(a, b), _) => {
                write!(f, "during {}..{}", Literal::Time(*a), Literal::Time(*b))
            }
            Step::During(TimeWindow::Last(s), _) => write!(f, "during last {s}s"),
            Step::Dedup(None) => f.write_str("dedup"),
            Step::Dedup(Some(v)) => write!(f, "dedup {}", v.text),
            Step::OrderBy(e, desc) => {
                write!(f, "order by {e}{}", if *desc { " desc" } else { "" })
            }
            Step::Skip(n) => write!(f, "skip {n}"),
            Step::Limit(n) => write!(f, "limit {n}"),
            Step::Count => f.write_str("count"),
            Step::Return { distinct, items } => {
                f.write_str("return ")?;
                if *distinct {
                    f.write_str("distinct ")?;
                }
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    let shown = it.expr.to_string();
                    if shown == it.column {
                        f.write_str(&shown)?;
                    } else {
                        write!(f, "{shown} as {}", it.column)?;
                    }
                }
                Ok(())
            }
            Step::Shortest => f.write_str("shortest"),
            Step::Path => f.write_str("path"),
            Step::As(n) => write!(f, "as {}", n.text),
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.start)?;
        for (e, n) in &self.hops {
            write!(f, " {e} {n}")?;
        }
        for s in &self.steps {
            write!(f, " | {s}")?;
        }
        Ok(())
    }
}
