//! Pass 2, compile: a bound query to the form the executor evaluates. Literals become values,
//! `~` patterns become regular expressions (size-limited), `{key: value}` becomes an equality
//! (and `{id: ...}` on a vertex the id to start from), hop ranges are capped by the depth
//! guard, `during last N` becomes a window ending now, and steps get their output columns.
//! The leading `where`/`during` steps are kept apart for [`super::push_down`].

use provdb_storage::{Direction, EdgeId, ExternalId, TypeId, VertexId};
use regex::Regex;

use super::bind::{BoundEdge, BoundExpr, BoundNode, BoundProp, BoundQuery, BoundStep, PropKey};
use super::error_at;
use crate::ast::{CmpOp, Dir, Literal, TimeWindow};
use crate::error::{ErrorKind, QueryError, Span};
use crate::value::Datum;

/// An expression as the executor evaluates it.
#[derive(Debug, Clone)]
pub(crate) enum CExpr {
    Lit(Datum),
    Prop(usize, PropKey),
    Var(usize),
    Cmp(CmpOp, Box<CExpr>, Box<CExpr>),
    Match(Box<CExpr>, Regex),
    In(Box<CExpr>, Vec<Datum>),
    And(Box<CExpr>, Box<CExpr>),
    Or(Box<CExpr>, Box<CExpr>),
    Not(Box<CExpr>),
    /// Whether the vertex bound at `slot` is one of `vertices` (sorted: the ids the archive
    /// has). What `id = '...'` or `id in [...]` on a node becomes once the ids are looked up
    /// ([`super::ids`]).
    IsVertex {
        slot: usize,
        vertices: Vec<VertexId>,
    },
    /// The same for the edge bound at `slot`, on a single-hop edge.
    IsEdge {
        slot: usize,
        edges: Vec<EdgeId>,
    },
}

impl CExpr {
    /// The slots the expression reads, with repeats.
    pub(crate) fn slots(&self, out: &mut Vec<usize>) {
        match self {
            CExpr::Lit(_) => {}
            CExpr::Prop(s, _)
            | CExpr::Var(s)
            | CExpr::IsVertex { slot: s, .. }
            | CExpr::IsEdge { slot: s, .. } => out.push(*s),
            CExpr::Cmp(_, a, b) | CExpr::And(a, b) | CExpr::Or(a, b) => {
                a.slots(out);
                b.slots(out);
            }
            CExpr::Match(a, _) | CExpr::In(a, _) | CExpr::Not(a) => a.slots(out),
        }
    }

    /// The operands of a chain of `and`s, in order (taken apart with a stack: a long chain
    /// is a deep tree).
    pub(crate) fn into_conjuncts(self) -> Vec<CExpr> {
        let mut conjuncts = Vec::new();
        let mut pending = vec![self];
        while let Some(e) = pending.pop() {
            match e {
                CExpr::And(a, b) => {
                    pending.push(*b);
                    pending.push(*a);
                }
                other => conjuncts.push(other),
            }
        }
        conjuncts
    }

    /// `a and b`, where a missing `a` is true.
    pub(crate) fn and(a: Option<CExpr>, b: CExpr) -> CExpr {
        match a {
            None => b,
            Some(a) => CExpr::And(Box::new(a), Box::new(b)),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CNode {
    pub slot: usize,
    /// `None`: any type.
    pub types: Option<Vec<TypeId>>,
    pub filter: Option<CExpr>,
    /// `{id: ...}`: the vertices to start from (one, or a list's).
    pub ids: Option<Vec<ExternalId>>,
}

impl CNode {
    pub(crate) fn unconstrained(&self) -> bool {
        self.types.is_none() && self.filter.is_none() && self.ids.is_none()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CEdge {
    pub slot: usize,
    pub types: Vec<TypeId>,
    pub dir: Dir,
    /// `(min, max, max was capped by the depth guard or unbounded)`
    pub var: Option<(u32, u32, bool)>,
    pub causal: bool,
    pub filter: Option<CExpr>,
    pub window: Option<(i64, i64)>,
    /// Every type asked is absent from the archive: matches nothing.
    pub never: bool,
    /// `{id: ...}` on a single-hop edge: the edges to start from (one, or a list's).
    pub ids: Option<Vec<ExternalId>>,
}

impl CEdge {
    pub(crate) fn needs_edge(&self) -> bool {
        self.filter.is_some() || self.window.is_some() || self.causal
    }

    /// Storage direction when walking from node `i-1` to node `i` (or back when `reversed`).
    pub(crate) fn storage_dir(&self, reversed: bool) -> Direction {
        match (self.dir, reversed) {
            (Dir::Either, _) => Direction::Both,
            (Dir::Forward, false) | (Dir::Backward, true) => Direction::Out,
            (Dir::Forward, true) | (Dir::Backward, false) => Direction::In,
        }
    }
}

/// The node and edge patterns of a query, in pattern order (edge `i` joins nodes `i` and `i+1`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Pattern {
    pub(crate) nodes: Vec<CNode>,
    pub(crate) edges: Vec<CEdge>,
}

/// A step of the pipeline after the pattern.
#[derive(Debug, Clone)]
pub(crate) enum CStep {
    Where(CExpr),
    Window(i64, i64),
    Dedup(Option<usize>),
    OrderBy(CExpr, bool),
    Skip(u64),
    Limit(u64),
    Count,
    Return { distinct: bool, items: Vec<CExpr> },
    Shortest,
    Path,
}

/// A `where` or `during` before any other step: a filter that may move into the pattern.
#[derive(Debug, Clone)]
pub(crate) enum LeadingFilter {
    Where(CExpr),
    /// Inclusive Unix seconds.
    During(i64, i64),
}

/// The output of compiling.
#[derive(Debug, Clone)]
pub(crate) struct CompiledQuery {
    pub(crate) slot_names: Vec<String>,
    pub(crate) pattern: Pattern,
    /// The leading filters, in order; [`CompiledQuery::steps`] come after them.
    pub(crate) leading: Vec<LeadingFilter>,
    pub(crate) steps: Vec<CStep>,
    pub(crate) columns: Vec<String>,
    /// `| as FORMAT`.
    pub(crate) format: Option<String>,
    pub(crate) warnings: Vec<String>,
}

/// What compiling needs besides the bound query.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CompileContext<'t> {
    /// The query text, which error places point into (empty for a built query).
    pub(crate) text: &'t str,
    /// Hop ranges are capped here (the depth guard).
    pub(crate) max_depth: u32,
    /// Unix seconds that `during last N` counts back from.
    pub(crate) now: i64,
}

/// Compiles a bound query.
pub(crate) fn compile(
    bound: BoundQuery,
    cx: CompileContext<'_>,
) -> Result<CompiledQuery, QueryError> {
    let compiler = Compiler { cx };
    let mut pattern = Pattern::default();
    for n in &bound.nodes {
        pattern.nodes.push(compiler.node(n)?);
    }
    for e in &bound.edges {
        pattern.edges.push(compiler.edge(e)?);
    }
    let mut columns: Vec<String> = bound
        .slots
        .names
        .iter()
        .filter(|n| !n.starts_with('_'))
        .cloned()
        .collect();
    let mut format = None;
    let mut leading = Vec::new();
    let mut steps = Vec::new();
    // Filters before any other step (`as` included) are leading; later ones stay steps.
    let mut in_leading_run = true;
    for step in &bound.steps {
        if !matches!(step, BoundStep::Where(_) | BoundStep::During(..)) {
            in_leading_run = false;
        }
        match step {
            BoundStep::Where(e) => {
                let c = compiler.expr(e)?;
                if in_leading_run {
                    leading.push(LeadingFilter::Where(c));
                } else {
                    steps.push(CStep::Where(c));
                }
            }
            BoundStep::During(w, span) => {
                let (from, to) = compiler.window(*w, *span)?;
                if in_leading_run {
                    leading.push(LeadingFilter::During(from, to));
                } else {
                    steps.push(CStep::Window(from, to));
                }
            }
            BoundStep::Dedup(s) => steps.push(CStep::Dedup(*s)),
            BoundStep::OrderBy(e, desc) => steps.push(CStep::OrderBy(compiler.expr(e)?, *desc)),
            BoundStep::Skip(n) => steps.push(CStep::Skip(*n)),
            BoundStep::Limit(n) => steps.push(CStep::Limit(*n)),
            BoundStep::Count => {
                steps.push(CStep::Count);
                columns = vec!["count".into()];
            }
            BoundStep::Return { distinct, items } => {
                let mut compiled = Vec::new();
                for (e, _) in items {
                    compiled.push(compiler.expr(e)?);
                }
                columns = items.iter().map(|(_, column)| column.clone()).collect();
                steps.push(CStep::Return {
                    distinct: *distinct,
                    items: compiled,
                });
            }
            BoundStep::Shortest => steps.push(CStep::Shortest),
            BoundStep::Path => {
                steps.push(CStep::Path);
                columns = vec!["path".into()];
            }
            BoundStep::As(name) => format = Some(name.clone()),
        }
    }
    Ok(CompiledQuery {
        slot_names: bound.slots.names,
        pattern,
        leading,
        steps,
        columns,
        format,
        warnings: bound.warnings,
    })
}

struct Compiler<'t> {
    cx: CompileContext<'t>,
}

impl Compiler<'_> {
    fn err(&self, kind: ErrorKind, span: Span, msg: impl Into<String>) -> QueryError {
        error_at(self.cx.text, kind, span, msg)
    }

    fn node(&self, n: &BoundNode) -> Result<CNode, QueryError> {
        let (mut filter, ids) = self.props(n.slot, &n.props, true)?;
        if let Some(f) = &n.filter {
            filter = Some(CExpr::and(filter, self.expr(f)?));
        }
        Ok(CNode {
            slot: n.slot,
            types: n.types.clone(),
            filter,
            ids,
        })
    }

    fn edge(&self, e: &BoundEdge) -> Result<CEdge, QueryError> {
        // Only a single hop is one edge that an id can name.
        let (mut filter, ids) = self.props(e.slot, &e.props, e.hops.is_none())?;
        if let Some(f) = &e.filter {
            filter = Some(CExpr::and(filter, self.expr(f)?));
        }
        let cap = self.cx.max_depth.max(1);
        let var = e.hops.map(|(min, max)| match max {
            Some(m) if m <= cap => (min.min(m), m, false),
            _ => (min.min(cap), cap, true),
        });
        Ok(CEdge {
            slot: e.slot,
            types: e.types.clone(),
            dir: e.dir,
            var,
            causal: e.causal,
            filter,
            window: None,
            never: e.absent,
            ids,
        })
    }

    /// `{key: value, ...}` as one conjunction, and, when `names_one` (a vertex, or a
    /// single-hop edge), the first `id` given as text or a list of texts as the vertices or
    /// edges to start from.
    fn props(
        &self,
        slot: usize,
        props: &[BoundProp],
        names_one: bool,
    ) -> Result<(Option<CExpr>, Option<Vec<ExternalId>>), QueryError> {
        let mut filter = None;
        let mut ids = None;
        for p in props {
            let prop = Box::new(CExpr::Prop(slot, p.key.clone()));
            let condition = match &p.value {
                Literal::List(items) => {
                    let mut values = self.list(items, p.span)?;
                    if p.key == PropKey::Id {
                        if names_one && ids.is_none() {
                            ids = external_ids(&values);
                        }
                        values.iter_mut().for_each(strip_cf_datum);
                    }
                    CExpr::In(prop, values)
                }
                value => {
                    let mut value = self.lit(value, p.span)?;
                    if p.key == PropKey::Id {
                        if names_one && ids.is_none() {
                            ids = external_ids(std::slice::from_ref(&value));
                        }
                        strip_cf_datum(&mut value);
                    }
                    CExpr::Cmp(CmpOp::Eq, prop, Box::new(CExpr::Lit(value)))
                }
            };
            filter = Some(CExpr::and(filter, condition));
        }
        Ok((filter, ids))
    }

    fn lit(&self, l: &Literal, span: Span) -> Result<Datum, QueryError> {
        Ok(match l {
            Literal::Null => Datum::Null,
            Literal::Bool(b) => Datum::Bool(*b),
            Literal::Int(i) => Datum::Int(*i),
            Literal::Float(x) => Datum::Float(*x),
            Literal::Str(s) => Datum::Str(s.clone()),
            Literal::Time(t) => Datum::Time(*t),
            Literal::List(_) => {
                return Err(self.err(
                    ErrorKind::Invalid,
                    span,
                    "a list is only allowed after `in`",
                ))
            }
        })
    }

    /// The items of an `in` list (flat: a list inside is an error).
    fn list(&self, items: &[Literal], span: Span) -> Result<Vec<Datum>, QueryError> {
        items.iter().map(|l| self.lit(l, span)).collect()
    }

    fn expr(&self, e: &BoundExpr) -> Result<CExpr, QueryError> {
        let compiled = |e: &BoundExpr| self.expr(e).map(Box::new);
        Ok(match e {
            BoundExpr::Lit(l, span) => CExpr::Lit(self.lit(l, *span)?),
            BoundExpr::Var(s) => CExpr::Var(*s),
            BoundExpr::Prop(s, k) => CExpr::Prop(*s, k.clone()),
            BoundExpr::And(a, b) => CExpr::And(compiled(a)?, compiled(b)?),
            BoundExpr::Or(a, b) => CExpr::Or(compiled(a)?, compiled(b)?),
            BoundExpr::Not(a) => CExpr::Not(compiled(a)?),
            BoundExpr::Cmp(CmpOp::Match, a, b, span) => {
                let BoundExpr::Lit(Literal::Str(pattern), pattern_span) = &**b else {
                    return Err(self.err(
                        ErrorKind::Invalid,
                        *span,
                        "`~` takes a quoted regular expression on its right",
                    ));
                };
                let re = self.regex(pattern, *pattern_span)?;
                CExpr::Match(compiled(a)?, re)
            }
            BoundExpr::Cmp(CmpOp::In, a, b, span) => {
                let BoundExpr::Lit(Literal::List(items), list_span) = &**b else {
                    return Err(self.err(
                        ErrorKind::Invalid,
                        *span,
                        "`in` takes a list such as `[1, 2]` on its right",
                    ));
                };
                let mut values = self.list(items, *list_span)?;
                let a = compiled(a)?;
                // `id` values are compared without the `cf:` prefix.
                if matches!(*a, CExpr::Prop(_, PropKey::Id)) {
                    values.iter_mut().for_each(strip_cf_datum);
                }
                CExpr::In(a, values)
            }
            BoundExpr::Cmp(op, a, b, _) => {
                let mut ca = self.expr(a)?;
                let mut cb = self.expr(b)?;
                // `id` values are compared without the `cf:` prefix.
                strip_cf_id(&ca, &mut cb);
                strip_cf_id(&cb, &mut ca);
                CExpr::Cmp(*op, Box::new(ca), Box::new(cb))
            }
        })
    }

    /// A `~` pattern. The size limits keep a hostile pattern from taking the memory.
    fn regex(&self, pattern: &str, span: Span) -> Result<Regex, QueryError> {
        regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .dfa_size_limit(1 << 20)
            .build()
            .map_err(|err| {
                let msg = err.to_string();
                let last = msg.lines().last().unwrap_or("invalid").trim().to_owned();
                self.err(
                    ErrorKind::Invalid,
                    span,
                    format!("invalid regular expression: {last}"),
                )
            })
    }

    /// A `during` window as inclusive Unix seconds.
    fn window(&self, w: TimeWindow, span: Span) -> Result<(i64, i64), QueryError> {
        let (from, to) = match w {
            TimeWindow::Between(a, b) => (a, b),
            TimeWindow::Last(s) => (self.cx.now.saturating_sub(s), i64::MAX),
        };
        if from > to {
            return Err(self.err(
                ErrorKind::Invalid,
                span,
                "the time window ends before it starts",
            ));
        }
        Ok((from, to))
    }
}

fn strip_cf(s: &mut String) {
    if let Some(rest) = s.strip_prefix("cf:") {
        *s = rest.to_owned();
    }
}

fn strip_cf_datum(d: &mut Datum) {
    if let Datum::Str(s) = d {
        strip_cf(s);
    }
}

/// `values` as external ids, when every one is text (`{id: 'x'}`, `{id: ['x', 'y']}`).
pub(crate) fn external_ids(values: &[Datum]) -> Option<Vec<ExternalId>> {
    values
        .iter()
        .map(|v| match v {
            Datum::Str(s) => Some(ExternalId::parse(s)),
            _ => None,
        })
        .collect()
}

fn strip_cf_id(x: &CExpr, y: &mut CExpr) {
    if let (CExpr::Prop(_, PropKey::Id), CExpr::Lit(Datum::Str(s))) = (x, y) {
        strip_cf(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::test_support::{archive, compiled, NOW};

    #[test]
    fn an_id_property_is_the_start_vertex_and_compares_without_cf() {
        let g = archive();
        let c = compiled(&g, "(v {id: 'cf:t1', type: ['task', 'file']})").unwrap();
        let v = &c.pattern.nodes[0];
        assert_eq!(v.ids, Some(vec![ExternalId::parse("cf:t1")]));
        let Some(CExpr::And(id, ty)) = &v.filter else {
            panic!("{:?}", v.filter)
        };
        assert!(matches!(&**id,
            CExpr::Cmp(CmpOp::Eq, p, l)
                if matches!(**p, CExpr::Prop(0, PropKey::Id))
                && matches!(&**l, CExpr::Lit(Datum::Str(s)) if s == "t1")));
        // A list value means "in".
        assert!(matches!(&**ty,
            CExpr::In(p, values)
                if matches!(**p, CExpr::Prop(0, PropKey::Type))
                && values == &[Datum::Str("task".into()), Datum::Str("file".into())]));
        // In an expression too, on either side.
        let c = compiled(&g, "(v) | where 'cf:t1' = v.id").unwrap();
        let LeadingFilter::Where(CExpr::Cmp(_, l, _)) = &c.leading[0] else {
            panic!("{:?}", c.leading)
        };
        assert!(matches!(&**l, CExpr::Lit(Datum::Str(s)) if s == "t1"));
    }

    #[test]
    fn literals_regexes_and_lists_are_checked() {
        let g = archive();
        let c = compiled(
            &g,
            "(v where name ~ '^/etc/' and pid in [1, 'x', @'2019-01-24T08:00:24'])",
        )
        .unwrap();
        let Some(CExpr::And(m, i)) = &c.pattern.nodes[0].filter else {
            panic!("{:?}", c.pattern.nodes[0].filter)
        };
        assert!(
            matches!(&**m, CExpr::Match(_, re) if re.is_match("/etc/passwd") && !re.is_match("/tmp/etc/"))
        );
        assert!(matches!(&**i, CExpr::In(_, v)
            if v == &[Datum::Int(1), Datum::Str("x".into()), Datum::Time(1_548_316_824)]));
        let e = compiled(&g, "(v where name ~ '(')").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.message().starts_with("invalid regular expression"), "{e}");
        let e = compiled(&g, "(v) | where v.id ~ 3").unwrap_err();
        assert_eq!(
            e.message(),
            "`~` takes a quoted regular expression on its right"
        );
        let e = compiled(&g, "(v) | where v.id in 3").unwrap_err();
        assert_eq!(
            e.message(),
            "`in` takes a list such as `[1, 2]` on its right"
        );
        let e = compiled(&g, "(v) | where v.id = [1]").unwrap_err();
        assert_eq!(e.message(), "a list is only allowed after `in`");
        let e = compiled(&g, "(v {pid: [1, [2]]})").unwrap_err();
        assert_eq!(e.message(), "a list is only allowed after `in`");
    }

    #[test]
    fn hop_ranges_are_capped_by_the_depth_guard() {
        let g = archive();
        let c = compiled(
            &g,
            "(a) -[*]-> (b) -[*2..3]-> (c) -[*..40]-> (d) -[*0..]-> (e) -[]-> (f) -[*5]-> (g)",
        )
        .unwrap();
        let ranges: Vec<_> = c.pattern.edges.iter().map(|e| e.var).collect();
        // The guard is 32: an unbounded or deeper range stops there, marked as capped.
        assert_eq!(
            ranges,
            [
                Some((1, 32, true)),
                Some((2, 3, false)),
                Some((1, 32, true)),
                Some((0, 32, true)),
                None,
                Some((5, 5, false)),
            ]
        );
    }

    #[test]
    fn windows_count_back_from_now_and_must_not_end_before_they_start() {
        let g = archive();
        let c = compiled(&g, "(a) -[]-> (b) | during last 1h | during @'2019-01-24T08:00:00'..@'2019-01-24T09:00:00'").unwrap();
        assert!(
            matches!(c.leading[0], LeadingFilter::During(from, i64::MAX) if from == NOW - 3600)
        );
        assert!(matches!(
            c.leading[1],
            LeadingFilter::During(1_548_316_800, 1_548_320_400)
        ));
        let e = compiled(&g, "(a) | during @'2019-01-25T00:00'..@'2019-01-24T00:00'").unwrap_err();
        assert_eq!(e.message(), "the time window ends before it starts");
    }

    #[test]
    fn only_filters_before_any_other_step_are_leading() {
        let g = archive();
        let c = compiled(
            &g,
            "(a) | where a.pid = 1 | limit 2 | where a.pid = 2 | during last 1h",
        )
        .unwrap();
        assert_eq!(c.leading.len(), 1);
        assert!(matches!(
            c.steps.as_slice(),
            [CStep::Limit(2), CStep::Where(_), CStep::Window(_, i64::MAX)]
        ));
        // `as` is a step too: a `where` after it is not leading.
        let c = compiled(&g, "(a) | as json | where a.pid = 1").unwrap();
        assert!(c.leading.is_empty());
        assert_eq!(c.format.as_deref(), Some("json"));
        assert!(matches!(c.steps.as_slice(), [CStep::Where(_)]));
    }

    #[test]
    fn columns_are_the_named_variables_or_what_the_steps_make() {
        let g = archive();
        let columns = |text: &str| compiled(&g, text).unwrap().columns;
        assert_eq!(columns("(a) -[e]-> () -[]-> (b)"), ["a", "e", "b"]);
        assert_eq!(columns("(a) | count"), ["count"]);
        assert_eq!(columns("(a) | return a.id, a.pid as p"), ["a.id", "p"]);
        assert_eq!(columns("(a) -[*..3]-> (b) | shortest | path"), ["path"]);
    }
}
