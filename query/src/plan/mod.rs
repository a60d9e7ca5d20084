//! Turns a parsed [`Query`] into a [`Plan`]: variables become slots, names become type ids,
//! properties are checked against the archive's dictionaries, `where` conjuncts that mention
//! one element move into its pattern, and the cheapest anchor (an id lookup, a roaring type
//! index, an edge type index) is chosen.

use std::collections::HashMap;

use provdb_storage::{Direction, ExternalId, GraphRead, IdSet, TypeId};
use regex::Regex;

use crate::ast::*;
use crate::error::{did_you_mean, ErrorKind, QueryError, Span};
use crate::naming::NamingEdges;
use crate::value::Datum;

/// Virtual properties of vertices.
pub const VERTEX_PROPERTIES: &[&str] = &[
    "id",
    "type",
    "class",
    "machine",
    "boot",
    "version",
    "time",
    "object_id",
    "name",
    "path",
    "stub",
];

/// Virtual properties of edges.
pub const EDGE_PROPERTIES: &[&str] = &["id", "type", "relation", "machine", "boot", "time"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotKind {
    Vertex,
    Edge,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PropKey {
    Id,
    Type,
    Class,
    Machine,
    Boot,
    Version,
    Time,
    ObjectId,
    Name,
    Stub,
    Relation,
    Attr(String),
}

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
}

impl CExpr {
    fn slots(&self, out: &mut Vec<usize>) {
        match self {
            CExpr::Lit(_) => {}
            CExpr::Prop(s, _) | CExpr::Var(s) => out.push(*s),
            CExpr::Cmp(_, a, b) | CExpr::And(a, b) | CExpr::Or(a, b) => {
                a.slots(out);
                b.slots(out);
            }
            CExpr::Match(a, _) | CExpr::In(a, _) | CExpr::Not(a) => a.slots(out),
        }
    }
}

fn and(a: Option<CExpr>, b: CExpr) -> Option<CExpr> {
    Some(match a {
        None => b,
        Some(a) => CExpr::And(Box::new(a), Box::new(b)),
    })
}

#[derive(Debug, Clone)]
pub(crate) struct CNode {
    pub slot: usize,
    /// `None`: any type.
    pub types: Option<Vec<TypeId>>,
    pub filter: Option<CExpr>,
    /// `{id: ...}`: the vertex to start from.
    pub id: Option<ExternalId>,
}

impl CNode {
    pub(crate) fn unconstrained(&self) -> bool {
        self.types.is_none() && self.filter.is_none() && self.id.is_none()
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

/// Where matching starts.
#[derive(Debug, Clone)]
pub(crate) enum Anchor {
    /// Vertex ids from an id lookup or a type index, at node `node` (iterated lazily from
    /// the bitmaps).
    Vertices { node: usize, ids: IdSet },
    /// Every vertex, at node `node`.
    AllVertices {
        node: usize,
        count: u64,
        /// Some ids below `count` name no vertex (pruned): check each id exists.
        gaps: bool,
    },
    /// Edge ids from an edge type index, at edge `edge` (between nodes `edge` and `edge+1`),
    /// iterated lazily from the bitmaps.
    Edges { edge: usize, ids: IdSet },
}

/// One expansion after the anchor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stage {
    pub edge: usize,
    pub from: usize,
    pub to: usize,
    pub reversed: bool,
}

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

/// A compiled query, ready to run against the archive it was planned on.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(crate) slot_names: Vec<String>,
    pub(crate) nodes: Vec<CNode>,
    pub(crate) edges: Vec<CEdge>,
    pub(crate) anchor: Anchor,
    pub(crate) stages: Vec<Stage>,
    pub(crate) steps: Vec<CStep>,
    pub(crate) columns: Vec<String>,
    pub(crate) format: Option<String>,
    /// A count answered from the indexes alone.
    pub(crate) index_count: Option<u64>,
    /// The edge types naming follows.
    pub(crate) naming: NamingEdges,
    pub(crate) explain: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

impl Plan {
    /// Output column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The output format asked with `| as FORMAT`, if any.
    pub fn format_hint(&self) -> Option<&str> {
        self.format.as_deref()
    }

    /// A human-readable description of how the query will run (anchor and expansions).
    pub fn explain(&self) -> String {
        self.explain.join("\n")
    }
}

struct Planner<'a> {
    g: &'a dyn GraphRead,
    text: &'a str,
    max_depth: u32,
    slots: HashMap<String, usize>,
    slot_names: Vec<String>,
    slot_kinds: Vec<SlotKind>,
    attr_keys: Vec<String>,
    warnings: Vec<String>,
}

/// Vertex type names that CamFlow versions emit (an archive may not have seen them yet).
const CAMFLOW_VERTEX_TYPES: &[&str] = &[
    "task",
    "process_memory",
    "file",
    "directory",
    "link",
    "fifo",
    "socket",
    "char",
    "block",
    "mmaped_file",
    "msg",
    "shm",
    "address",
    "file_name",
    "path",
    "packet",
    "packet_content",
    "argv",
    "envp",
    "iattr",
    "xattr",
    "machine",
    "inode_unknown",
    "string",
    "disc_entity",
    "disc_activity",
    "disc_agent",
    "unknown",
];

/// Edge type names that CamFlow versions emit.
const CAMFLOW_EDGE_TYPES: &[&str] = &[
    "read",
    "write",
    "open",
    "exec",
    "clone",
    "exec_task",
    "exec_process",
    "version_entity",
    "version_activity",
    "named",
    "named_process",
    "send",
    "receive",
    "send_unix",
    "receive_unix",
    "send_msg",
    "receive_msg",
    "send_packet",
    "receive_packet",
    "connect",
    "bind",
    "listen",
    "accept",
    "mmap",
    "mmap_read",
    "mmap_write",
    "mmap_exec",
    "mmap_read_private",
    "mmap_write_private",
    "mmap_exec_private",
    "munmap",
    "setuid",
    "setgid",
    "change",
    "setattr",
    "getattr",
    "setxattr",
    "getxattr",
    "listxattr",
    "removexattr",
    "link",
    "unlink",
    "rename",
    "create",
    "terminate_task",
    "terminate_proc",
    "terminate",
    "arg",
    "env",
    "sh_read",
    "sh_write",
    "memory_read",
    "memory_write",
    "clone_mem",
    "perm_read",
    "perm_write",
    "perm_exec",
    "perm_append",
    "search",
    "read_ioctl",
    "write_ioctl",
    "socket_create",
    "socket_pair_create",
    "free",
    "ran_on",
    "addressed",
    "shmdt",
    "shmat",
    "sh_attach",
    "file_lock",
    "file_sigio",
    "inode_create",
    "proc_read",
    "proc_write",
    "ptrace_attach",
    "ptrace_read",
    "ptrace_attach_task",
    "ptrace_read_task",
    "load_file",
    "load_module",
    "packet_content",
    "unknown",
];

/// Compiles `query` (parsed from `text`, used for error places) against the archive `g`.
pub fn plan(
    g: &dyn GraphRead,
    text: &str,
    query: &Query,
    max_depth: u32,
) -> Result<Plan, QueryError> {
    let mut attr_keys: Vec<String> = g
        .attribute_keys()
        .into_iter()
        .map(|(_, k)| k.strip_prefix("cf:").unwrap_or(&k).to_owned())
        .collect();
    attr_keys.sort();
    attr_keys.dedup();
    let mut p = Planner {
        g,
        text,
        max_depth,
        slots: HashMap::new(),
        slot_names: Vec::new(),
        slot_kinds: Vec::new(),
        attr_keys,
        warnings: Vec::new(),
    };
    p.run(query)
}

impl Planner<'_> {
    fn err(&self, kind: ErrorKind, span: Span, msg: impl Into<String>) -> QueryError {
        if span == Span::default() && self.text.is_empty() {
            QueryError::new(kind, msg)
        } else {
            QueryError::at(kind, self.text, span, msg)
        }
    }

    fn slot(&mut self, name: Option<&Name>, kind: SlotKind) -> Result<usize, QueryError> {
        if let Some(n) = name {
            if let Some(&s) = self.slots.get(&n.text) {
                if self.slot_kinds[s] != kind {
                    return Err(self.err(
                        ErrorKind::Invalid,
                        n.span,
                        format!(
                            "`{}` is already bound to a {}",
                            n.text,
                            match self.slot_kinds[s] {
                                SlotKind::Vertex => "vertex",
                                SlotKind::Edge => "edge",
                            }
                        ),
                    ));
                }
                if kind == SlotKind::Edge {
                    return Err(self.err(
                        ErrorKind::Invalid,
                        n.span,
                        format!("edge variable `{}` is used twice", n.text),
                    ));
                }
                return Ok(s);
            }
        }
        let s = self.slot_names.len();
        let text = name.map_or_else(|| format!("_{s}"), |n| n.text.clone());
        if name.is_some() {
            self.slots.insert(text.clone(), s);
        }
        self.slot_names.push(text);
        self.slot_kinds.push(kind);
        Ok(s)
    }

    /// Type ids of `names`. A name that the archive lacks is an error when it looks like a
    /// typo of a name it has (with "did you mean"); a genuine CamFlow type name that this
    /// archive has not seen yet matches nothing, with a warning.
    fn type_ids(&mut self, names: &[Name], vertex: bool) -> Result<Vec<TypeId>, QueryError> {
        let known: Vec<(TypeId, std::sync::Arc<str>)> = if vertex {
            self.g.vertex_types()
        } else {
            self.g.edge_types()
        };
        let mut out = Vec::new();
        for n in names {
            let id = if vertex {
                self.g.vertex_type_id(&n.text)
            } else {
                self.g.edge_type_id(&n.text)
            };
            match id {
                Some(t) => out.push(t),
                None => {
                    let what = if vertex { "vertex" } else { "edge" };
                    let names: Vec<&str> = known.iter().map(|(_, s)| &**s).collect();
                    let suggestion = did_you_mean(&n.text, names.iter().copied());
                    let camflow = if vertex {
                        CAMFLOW_VERTEX_TYPES
                    } else {
                        CAMFLOW_EDGE_TYPES
                    };
                    if camflow.contains(&n.text.as_str()) {
                        self.warnings.push(format!(
                            "no {what} of type `{}` in this archive (it matches nothing)",
                            n.text
                        ));
                        continue;
                    }
                    let mut e = self.err(
                        ErrorKind::Unknown,
                        n.span,
                        format!("unknown {what} type `{}`", n.text),
                    );
                    e = match suggestion {
                        Some(s) => e.with_help(format!("did you mean `{s}`?")),
                        None if names.is_empty() => {
                            e.with_help(format!("the archive has no {what} types yet"))
                        }
                        None => {
                            let mut sorted = names.clone();
                            sorted.sort();
                            e.with_help(format!("{what} types here: {}", sorted.join(", ")))
                        }
                    };
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    fn prop_key(&self, key: &Name, kind: SlotKind) -> Result<PropKey, QueryError> {
        let k = key.text.as_str();
        let virt = match (kind, k) {
            (_, "id") => Some(PropKey::Id),
            (_, "type") => Some(PropKey::Type),
            (_, "machine") => Some(PropKey::Machine),
            (_, "boot") => Some(PropKey::Boot),
            (_, "time") => Some(PropKey::Time),
            (SlotKind::Vertex, "class") => Some(PropKey::Class),
            (SlotKind::Vertex, "version") => Some(PropKey::Version),
            (SlotKind::Vertex, "object_id") => Some(PropKey::ObjectId),
            (SlotKind::Vertex, "name" | "path") => Some(PropKey::Name),
            (SlotKind::Vertex, "stub") => Some(PropKey::Stub),
            (SlotKind::Edge, "relation") => Some(PropKey::Relation),
            _ => None,
        };
        if let Some(v) = virt {
            return Ok(v);
        }
        let bare = k.strip_prefix("cf:").unwrap_or(k);
        if self
            .attr_keys
            .binary_search_by(|a| a.as_str().cmp(bare))
            .is_ok()
        {
            return Ok(PropKey::Attr(k.to_owned()));
        }
        let virtuals = match kind {
            SlotKind::Vertex => VERTEX_PROPERTIES,
            SlotKind::Edge => EDGE_PROPERTIES,
        };
        let mut e = self.err(
            ErrorKind::Unknown,
            key.span,
            format!("unknown property `{k}`"),
        );
        let cands = virtuals
            .iter()
            .copied()
            .chain(self.attr_keys.iter().map(String::as_str));
        if let Some(s) = did_you_mean(bare, cands) {
            e = e.with_help(format!("did you mean `{s}`?"));
        } else {
            e = e.with_help("no vertex or edge in the archive has it; `.schema` lists the keys");
        }
        Err(e)
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

    fn var(&self, n: &Name) -> Result<usize, QueryError> {
        match self.slots.get(&n.text) {
            Some(&s) => Ok(s),
            None => {
                let names: Vec<&str> = self
                    .slots
                    .keys()
                    .map(String::as_str)
                    .filter(|s| !s.starts_with('_'))
                    .collect();
                let mut e = self.err(
                    ErrorKind::Unknown,
                    n.span,
                    format!("unknown variable `{}`", n.text),
                );
                e = match did_you_mean(&n.text, names.iter().copied()) {
                    Some(s) => e.with_help(format!("did you mean `{s}`?")),
                    None if names.is_empty() => {
                        e.with_help("name the element in the pattern, e.g. `(v:task)`")
                    }
                    None => {
                        let mut names = names.clone();
                        names.sort();
                        e.with_help(format!("variables: {}", names.join(", ")))
                    }
                };
                Err(e)
            }
        }
    }

    fn expr(&self, e: &Expr) -> Result<CExpr, QueryError> {
        Ok(match e {
            Expr::Lit(l, span) => CExpr::Lit(self.lit(l, *span)?),
            Expr::Var(n) => CExpr::Var(self.var(n)?),
            Expr::Prop(v, k) => {
                let s = self.var(v)?;
                CExpr::Prop(s, self.prop_key(k, self.slot_kinds[s])?)
            }
            Expr::And(a, b) => CExpr::And(Box::new(self.expr(a)?), Box::new(self.expr(b)?)),
            Expr::Or(a, b) => CExpr::Or(Box::new(self.expr(a)?), Box::new(self.expr(b)?)),
            Expr::Not(a) => CExpr::Not(Box::new(self.expr(a)?)),
            Expr::Cmp(CmpOp::Match, a, b, span) => {
                let Expr::Lit(Literal::Str(pattern), pspan) = &**b else {
                    return Err(self.err(
                        ErrorKind::Invalid,
                        *span,
                        "`~` takes a quoted regular expression on its right",
                    ));
                };
                let re = regex::RegexBuilder::new(pattern)
                    .size_limit(1 << 20)
                    .dfa_size_limit(1 << 20)
                    .build()
                    .map_err(|err| {
                        let msg = err.to_string();
                        let last = msg.lines().last().unwrap_or("invalid").trim().to_owned();
                        self.err(
                            ErrorKind::Invalid,
                            *pspan,
                            format!("invalid regular expression: {last}"),
                        )
                    })?;
                CExpr::Match(Box::new(self.expr(a)?), re)
            }
            Expr::Cmp(CmpOp::In, a, b, span) => {
                let Expr::Lit(Literal::List(items), lspan) = &**b else {
                    return Err(self.err(
                        ErrorKind::Invalid,
                        *span,
                        "`in` takes a list such as `[1, 2]` on its right",
                    ));
                };
                let mut vals = Vec::new();
                for l in items {
                    vals.push(self.lit(l, *lspan)?);
                }
                CExpr::In(Box::new(self.expr(a)?), vals)
            }
            Expr::Cmp(op, a, b, _) => {
                let mut ca = self.expr(a)?;
                let mut cb = self.expr(b)?;
                // `id` values are compared without the `cf:` prefix.
                strip_cf_id(&ca, &mut cb);
                strip_cf_id(&cb, &mut ca);
                CExpr::Cmp(*op, Box::new(ca), Box::new(cb))
            }
        })
    }

    fn props_filter(
        &self,
        slot: usize,
        kind: SlotKind,
        props: &[(Name, Literal)],
    ) -> Result<(Option<CExpr>, Option<ExternalId>), QueryError> {
        let mut filter = None;
        let mut id = None;
        for (k, v) in props {
            let key = self.prop_key(k, kind)?;
            let mut lit = match v {
                Literal::List(_) => {
                    let vals = match v {
                        Literal::List(items) => items
                            .iter()
                            .map(|l| self.lit(l, k.span))
                            .collect::<Result<Vec<_>, _>>()?,
                        _ => Vec::new(),
                    };
                    filter = and(filter, CExpr::In(Box::new(CExpr::Prop(slot, key)), vals));
                    continue;
                }
                other => self.lit(other, k.span)?,
            };
            if key == PropKey::Id {
                if let Datum::Str(s) = &mut lit {
                    if kind == SlotKind::Vertex && id.is_none() {
                        id = Some(ExternalId::parse(s));
                    }
                    if let Some(rest) = s.strip_prefix("cf:") {
                        *s = rest.to_owned();
                    }
                }
            }
            filter = and(
                filter,
                CExpr::Cmp(
                    CmpOp::Eq,
                    Box::new(CExpr::Prop(slot, key)),
                    Box::new(CExpr::Lit(lit)),
                ),
            );
        }
        Ok((filter, id))
    }

    fn run(&mut self, q: &Query) -> Result<Plan, QueryError> {
        let mut explain = Vec::new();
        // Slots, in pattern order.
        let mut node_pats = vec![&q.start];
        let mut edge_pats = Vec::new();
        for (e, n) in &q.hops {
            edge_pats.push(e);
            node_pats.push(n);
        }
        let mut node_slots = Vec::new();
        let mut edge_slots = Vec::new();
        node_slots.push(self.slot(q.start.var.as_ref(), SlotKind::Vertex)?);
        for (e, n) in &q.hops {
            edge_slots.push(self.slot(e.var.as_ref(), SlotKind::Edge)?);
            node_slots.push(self.slot(n.var.as_ref(), SlotKind::Vertex)?);
        }
        // Patterns.
        let mut nodes = Vec::new();
        for (np, &slot) in node_pats.iter().zip(&node_slots) {
            let types = if np.types.is_empty() {
                None
            } else {
                Some(self.type_ids(&np.types, true)?)
            };
            let (mut filter, id) = self.props_filter(slot, SlotKind::Vertex, &np.props)?;
            if let Some(f) = &np.filter {
                filter = and(filter, self.expr(f)?);
            }
            nodes.push(CNode {
                slot,
                types,
                filter,
                id,
            });
        }
        let mut edges = Vec::new();
        for (ep, &slot) in edge_pats.iter().zip(&edge_slots) {
            let types = self.type_ids(&ep.types, false)?;
            let never = !ep.types.is_empty() && types.is_empty();
            let (mut filter, _) = self.props_filter(slot, SlotKind::Edge, &ep.props)?;
            if let Some(f) = &ep.filter {
                filter = and(filter, self.expr(f)?);
            }
            let var = ep.hops.map(|(min, max)| {
                let cap = self.max_depth.max(1);
                match max {
                    Some(m) if m <= cap => (min.min(m), m, false),
                    _ => (min.min(cap), cap, true),
                }
            });
            edges.push(CEdge {
                slot,
                types,
                dir: ep.dir,
                var,
                causal: ep.causal,
                filter,
                window: None,
                never,
            });
        }
        // Steps; the leading `where`/`during` run moves into the patterns.
        let mut steps = Vec::new();
        let mut columns: Vec<String> = self
            .slot_names
            .iter()
            .filter(|n| !n.starts_with('_'))
            .cloned()
            .collect();
        let mut format = None;
        let mut leading = true;
        let now = now_secs();
        for step in &q.steps {
            match step {
                Step::Where(e) => {
                    let c = self.expr(e)?;
                    if leading {
                        for conj in split_and(c) {
                            let mut used = Vec::new();
                            conj.slots(&mut used);
                            used.sort_unstable();
                            used.dedup();
                            let target = match used.as_slice() {
                                [s] => Some(*s),
                                _ => None,
                            };
                            let node = target.and_then(|s| nodes.iter_mut().find(|n| n.slot == s));
                            if let Some(n) = node {
                                n.filter = and(n.filter.take(), conj);
                                continue;
                            }
                            let edge = target.and_then(|s| {
                                edges.iter_mut().find(|e| e.slot == s && e.var.is_none())
                            });
                            if let Some(e) = edge {
                                e.filter = and(e.filter.take(), conj);
                                continue;
                            }
                            steps.push(CStep::Where(conj));
                        }
                    } else {
                        steps.push(CStep::Where(c));
                    }
                }
                Step::During(w, span) => {
                    let (from, to) = match *w {
                        TimeWindow::Between(a, b) => (a, b),
                        TimeWindow::Last(s) => (now.saturating_sub(s), i64::MAX),
                    };
                    if from > to {
                        return Err(self.err(
                            ErrorKind::Invalid,
                            *span,
                            "the time window ends before it starts",
                        ));
                    }
                    if leading {
                        for e in &mut edges {
                            e.window = Some(match e.window {
                                Some((a, b)) => (a.max(from), b.min(to)),
                                None => (from, to),
                            });
                        }
                        if edges.is_empty() {
                            steps.push(CStep::Window(from, to));
                        }
                    } else {
                        steps.push(CStep::Window(from, to));
                    }
                }
                other => {
                    leading = false;
                    match other {
                        Step::Dedup(v) => {
                            let s = match v {
                                Some(n) => Some(self.var(n)?),
                                None => None,
                            };
                            steps.push(CStep::Dedup(s));
                        }
                        Step::OrderBy(e, desc) => steps.push(CStep::OrderBy(self.expr(e)?, *desc)),
                        Step::Skip(n) => steps.push(CStep::Skip(*n)),
                        Step::Limit(n) => steps.push(CStep::Limit(*n)),
                        Step::Count => {
                            steps.push(CStep::Count);
                            columns = vec!["count".into()];
                        }
                        Step::Return { distinct, items } => {
                            let mut c = Vec::new();
                            for it in items {
                                c.push(self.expr(&it.expr)?);
                            }
                            columns = items.iter().map(|i| i.column.clone()).collect();
                            steps.push(CStep::Return {
                                distinct: *distinct,
                                items: c,
                            });
                        }
                        Step::Shortest => steps.push(CStep::Shortest),
                        Step::Path => {
                            steps.push(CStep::Path);
                            columns = vec!["path".into()];
                        }
                        Step::As(n) => format = Some(n.text.clone()),
                        Step::Where(_) | Step::During(..) => {}
                    }
                }
            }
        }

        let naming = NamingEdges::resolve(self.g);

        // Counts that the indexes answer alone.
        let mut index_count = None;
        if matches!(steps.as_slice(), [CStep::Count]) {
            if edges.is_empty() && nodes[0].filter.is_none() && nodes[0].id.is_none() {
                index_count = Some(match &nodes[0].types {
                    None => self.g.live_vertex_count()?,
                    Some(ts) => {
                        let mut n = 0;
                        for t in ts {
                            n += self.g.count_vertices_of_type(*t)?;
                        }
                        n
                    }
                });
            } else if edges.len() == 1
                && edges[0].var.is_none()
                && edges[0].filter.is_none()
                && edges[0].window.is_none()
                && nodes.iter().all(CNode::unconstrained)
                && nodes[0].slot != nodes[1].slot
            {
                let mut n = if edges[0].never {
                    0
                } else if edges[0].types.is_empty() {
                    self.g.live_edge_count()?
                } else {
                    let mut n = 0;
                    for t in &edges[0].types {
                        n += self.g.count_edges_of_type(*t)?;
                    }
                    n
                };
                if edges[0].dir == Dir::Either {
                    n *= 2;
                }
                index_count = Some(n);
            }
            if let Some(n) = index_count {
                explain.push(format!("count from the type indexes: {n}"));
            }
        }

        // Anchor: the cheapest node or single-hop edge.
        let mut best: Option<(u64, Anchor)> = None;
        if index_count.is_none() {
            for (i, n) in nodes.iter().enumerate() {
                let (cost, anchor) = if let Some(ext) = &n.id {
                    let ids = self
                        .g
                        .vertex_id(ext)?
                        .map_or_else(IdSet::default, |v| IdSet::single(v.0));
                    (1, Anchor::Vertices { node: i, ids })
                } else if let Some(ts) = &n.types {
                    if best.as_ref().is_some_and(|(c, _)| *c <= 1) {
                        continue;
                    }
                    // Cost from the bitmap headers; the ids only for the node that wins.
                    let mut cost = 0;
                    for t in ts {
                        cost += self.g.count_vertices_of_type(*t)?;
                    }
                    if best.as_ref().is_some_and(|(c, _)| *c <= cost) {
                        continue;
                    }
                    let mut ids = IdSet::default();
                    for t in ts {
                        ids.union_with(&self.g.vertices_of_type(*t)?);
                    }
                    (cost, Anchor::Vertices { node: i, ids })
                } else {
                    let count = self.g.vertex_count()?;
                    let gaps = self.g.live_vertex_count()? != count;
                    (
                        count,
                        Anchor::AllVertices {
                            node: i,
                            count,
                            gaps,
                        },
                    )
                };
                if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                    best = Some((cost, anchor));
                }
            }
            for (i, e) in edges.iter().enumerate() {
                if e.never {
                    best = Some((
                        0,
                        Anchor::Edges {
                            edge: i,
                            ids: IdSet::default(),
                        },
                    ));
                    break;
                }
                if e.var.is_some()
                    || e.types.is_empty()
                    || best.as_ref().is_some_and(|(c, _)| *c <= 1)
                {
                    continue;
                }
                let mut cost = 0;
                for t in &e.types {
                    cost += self.g.count_edges_of_type(*t)?;
                }
                if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                    let mut ids = IdSet::default();
                    for t in &e.types {
                        ids.union_with(&self.g.edges_of_type(*t)?);
                    }
                    best = Some((cost, Anchor::Edges { edge: i, ids }));
                }
            }
        }
        let anchor = match best {
            Some((_, a)) => a,
            None => Anchor::Vertices {
                node: 0,
                ids: IdSet::default(),
            },
        };
        // Expansion order: right of the anchor, then left.
        let mut stages = Vec::new();
        let (right_from, left_from) = match &anchor {
            Anchor::Vertices { node, .. } | Anchor::AllVertices { node, .. } => (*node, *node),
            Anchor::Edges { edge, .. } => (edge + 1, *edge),
        };
        for i in right_from..edges.len() {
            stages.push(Stage {
                edge: i,
                from: i,
                to: i + 1,
                reversed: false,
            });
        }
        for i in (0..left_from).rev() {
            stages.push(Stage {
                edge: i,
                from: i + 1,
                to: i,
                reversed: true,
            });
        }
        match &anchor {
            Anchor::Vertices { node, ids } => explain.push(format!(
                "start at node {} from {} candidate vertices (id or type index)",
                node + 1,
                ids.len()
            )),
            Anchor::AllVertices { node, count, .. } => explain.push(format!(
                "start at node {} by scanning all {count} vertices",
                node + 1
            )),
            Anchor::Edges { edge, ids } => explain.push(format!(
                "start at edge {} from {} edges (edge type index)",
                edge + 1,
                ids.len()
            )),
        }
        for s in &stages {
            let e = &edges[s.edge];
            explain.push(format!(
                "expand node {} -> node {} ({:?}{}) by adjacency prefix scans",
                s.from + 1,
                s.to + 1,
                e.storage_dir(s.reversed),
                match e.var {
                    Some((a, b, _)) => format!(", {a}..{b} hops, breadth-first"),
                    None => String::new(),
                }
            ));
        }
        Ok(Plan {
            slot_names: self.slot_names.clone(),
            nodes,
            edges,
            anchor,
            stages,
            steps,
            columns,
            format,
            index_count,
            naming,
            explain,
            warnings: self.warnings.clone(),
        })
    }
}

fn strip_cf_id(x: &CExpr, y: &mut CExpr) {
    if let (CExpr::Prop(_, PropKey::Id), CExpr::Lit(Datum::Str(s))) = (x, y) {
        if let Some(rest) = s.strip_prefix("cf:") {
            *s = rest.to_owned();
        }
    }
}

fn split_and(e: CExpr) -> Vec<CExpr> {
    match e {
        CExpr::And(a, b) => {
            let mut v = split_and(*a);
            v.extend(split_and(*b));
            v
        }
        other => vec![other],
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
