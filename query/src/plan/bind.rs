//! Pass 1, bind: what each name of a parsed query refers to in this archive. Variables become
//! slots, type names become type ids, property keys become [`PropKey`]s. Literals, regular
//! expressions and time windows stay as written: turning them into values is
//! [`super::compile`]'s work, so that this pass only answers "what is this name here?".

use std::cell::OnceCell;
use std::collections::HashMap;

use provdb_storage::{GraphRead, TypeId};

use super::{camflow_types, error_at};
use crate::ast::{CmpOp, Dir, Expr, Literal, Name, Query, Step, TimeWindow};
use crate::error::{did_you_mean, ErrorKind, QueryError, Span};

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

/// What a variable holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotKind {
    Vertex,
    Edge,
}

impl SlotKind {
    fn noun(self) -> &'static str {
        match self {
            SlotKind::Vertex => "vertex",
            SlotKind::Edge => "edge",
        }
    }
}

/// A property as the executor reads it: a field of the record, or an attribute by its key.
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

/// The variables of a query, in pattern order: slot `i` is named `names[i]` (`_i` when the
/// element has no variable) and holds a `kinds[i]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Slots {
    pub(crate) names: Vec<String>,
    pub(crate) kinds: Vec<SlotKind>,
}

/// An expression whose names are resolved; its literals are still as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BoundExpr {
    Lit(Literal, Span),
    Var(usize),
    Prop(usize, PropKey),
    Cmp(CmpOp, Box<BoundExpr>, Box<BoundExpr>, Span),
    And(Box<BoundExpr>, Box<BoundExpr>),
    Or(Box<BoundExpr>, Box<BoundExpr>),
    Not(Box<BoundExpr>),
}

/// `{key: value}` in a pattern; `span` is the key's (where a bad value is reported).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BoundProp {
    pub(crate) key: PropKey,
    pub(crate) value: Literal,
    pub(crate) span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BoundNode {
    pub(crate) slot: usize,
    /// `None`: any type.
    pub(crate) types: Option<Vec<TypeId>>,
    pub(crate) props: Vec<BoundProp>,
    pub(crate) filter: Option<BoundExpr>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BoundEdge {
    pub(crate) slot: usize,
    /// Empty: any type (unless `absent`).
    pub(crate) types: Vec<TypeId>,
    /// Types were asked and none is in the archive: the edge matches nothing.
    pub(crate) absent: bool,
    pub(crate) dir: Dir,
    pub(crate) hops: Option<(u32, Option<u32>)>,
    pub(crate) causal: bool,
    pub(crate) props: Vec<BoundProp>,
    pub(crate) filter: Option<BoundExpr>,
}

/// A step with its variables and properties resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BoundStep {
    Where(BoundExpr),
    During(TimeWindow, Span),
    Dedup(Option<usize>),
    OrderBy(BoundExpr, bool),
    Skip(u64),
    Limit(u64),
    Count,
    Return {
        distinct: bool,
        /// Each item and its column name.
        items: Vec<(BoundExpr, String)>,
    },
    Shortest,
    Path,
    As(String),
}

/// The output of binding.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BoundQuery {
    pub(crate) slots: Slots,
    pub(crate) nodes: Vec<BoundNode>,
    pub(crate) edges: Vec<BoundEdge>,
    pub(crate) steps: Vec<BoundStep>,
    /// Notes for type names CamFlow has but this archive has not seen (they match nothing).
    pub(crate) warnings: Vec<String>,
}

/// Binds `query` (parsed from `text`, which error places point into) against the archive `g`.
pub(crate) fn bind(g: &dyn GraphRead, text: &str, query: &Query) -> Result<BoundQuery, QueryError> {
    let mut binder = Binder {
        g,
        text,
        attr_keys: OnceCell::new(),
        by_name: HashMap::new(),
        slots: Slots::default(),
        warnings: Vec::new(),
    };
    binder.query(query)
}

struct Binder<'a> {
    g: &'a dyn GraphRead,
    text: &'a str,
    /// Attribute keys of the archive without `cf:`, sorted (for binary search); read from the
    /// archive when a query first names an attribute (most name none).
    attr_keys: OnceCell<Vec<String>>,
    by_name: HashMap<String, usize>,
    slots: Slots,
    warnings: Vec<String>,
}

impl Binder<'_> {
    fn attr_keys(&self) -> &[String] {
        self.attr_keys.get_or_init(|| {
            let mut keys: Vec<String> = self
                .g
                .attribute_keys()
                .into_iter()
                .map(|(_, k)| k.strip_prefix("cf:").unwrap_or(&k).to_owned())
                .collect();
            keys.sort();
            keys.dedup();
            keys
        })
    }

    fn err(&self, kind: ErrorKind, span: Span, msg: impl Into<String>) -> QueryError {
        error_at(self.text, kind, span, msg)
    }

    fn query(&mut self, q: &Query) -> Result<BoundQuery, QueryError> {
        // Every slot first, in pattern order, so that any expression may name any variable.
        let mut node_slots = vec![self.slot(q.start.var.as_ref(), SlotKind::Vertex)?];
        let mut edge_slots = Vec::new();
        for (e, n) in &q.hops {
            edge_slots.push(self.slot(e.var.as_ref(), SlotKind::Edge)?);
            node_slots.push(self.slot(n.var.as_ref(), SlotKind::Vertex)?);
        }
        let node_pats = std::iter::once(&q.start).chain(q.hops.iter().map(|(_, n)| n));
        let mut nodes = Vec::new();
        for (np, slot) in node_pats.zip(node_slots) {
            let types = if np.types.is_empty() {
                None
            } else {
                Some(self.type_ids(&np.types, SlotKind::Vertex)?)
            };
            nodes.push(BoundNode {
                slot,
                types,
                props: self.props(&np.props, SlotKind::Vertex)?,
                filter: np.filter.as_ref().map(|f| self.expr(f)).transpose()?,
            });
        }
        let mut edges = Vec::new();
        for ((ep, _), slot) in q.hops.iter().zip(edge_slots) {
            let types = self.type_ids(&ep.types, SlotKind::Edge)?;
            edges.push(BoundEdge {
                slot,
                absent: !ep.types.is_empty() && types.is_empty(),
                types,
                dir: ep.dir,
                hops: ep.hops,
                causal: ep.causal,
                props: self.props(&ep.props, SlotKind::Edge)?,
                filter: ep.filter.as_ref().map(|f| self.expr(f)).transpose()?,
            });
        }
        let mut steps = Vec::new();
        for step in &q.steps {
            steps.push(self.step(step)?);
        }
        Ok(BoundQuery {
            slots: std::mem::take(&mut self.slots),
            nodes,
            edges,
            steps,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    /// The slot of a pattern element. A vertex variable named twice is one slot (the same
    /// vertex at both places); an edge variable may be named only once.
    fn slot(&mut self, name: Option<&Name>, kind: SlotKind) -> Result<usize, QueryError> {
        if let Some(n) = name {
            if let Some(&s) = self.by_name.get(&n.text) {
                let bound = self.slots.kinds[s];
                if bound != kind {
                    return Err(self.err(
                        ErrorKind::Invalid,
                        n.span,
                        format!("`{}` is already bound to a {}", n.text, bound.noun()),
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
        let s = self.slots.names.len();
        let text = name.map_or_else(|| format!("_{s}"), |n| n.text.clone());
        if name.is_some() {
            self.by_name.insert(text.clone(), s);
        }
        self.slots.names.push(text);
        self.slots.kinds.push(kind);
        Ok(s)
    }

    /// Type ids of `names`. A name that the archive lacks is an error when it looks like a
    /// typo of a name it has (with "did you mean"); a genuine CamFlow type name that this
    /// archive has not seen yet matches nothing, with a warning.
    fn type_ids(&mut self, names: &[Name], kind: SlotKind) -> Result<Vec<TypeId>, QueryError> {
        let mut out = Vec::new();
        for n in names {
            let (id, camflow) = match kind {
                SlotKind::Vertex => (self.g.vertex_type_id(&n.text), camflow_types::VERTEX_TYPES),
                SlotKind::Edge => (self.g.edge_type_id(&n.text), camflow_types::EDGE_TYPES),
            };
            if let Some(t) = id {
                out.push(t);
                continue;
            }
            let what = kind.noun();
            if camflow.contains(&n.text.as_str()) {
                self.warnings.push(format!(
                    "no {what} of type `{}` in this archive (it matches nothing)",
                    n.text
                ));
                continue;
            }
            let known = match kind {
                SlotKind::Vertex => self.g.vertex_types(),
                SlotKind::Edge => self.g.edge_types(),
            };
            let mut known: Vec<&str> = known.iter().map(|(_, s)| &**s).collect();
            let e = self.err(
                ErrorKind::Unknown,
                n.span,
                format!("unknown {what} type `{}`", n.text),
            );
            let help = match did_you_mean(&n.text, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if known.is_empty() => format!("the archive has no {what} types yet"),
                None => {
                    known.sort_unstable();
                    format!("{what} types here: {}", known.join(", "))
                }
            };
            return Err(e.with_help(help));
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
            .attr_keys()
            .binary_search_by(|a| a.as_str().cmp(bare))
            .is_ok()
        {
            return Ok(PropKey::Attr(k.to_owned()));
        }
        let virtuals = match kind {
            SlotKind::Vertex => VERTEX_PROPERTIES,
            SlotKind::Edge => EDGE_PROPERTIES,
        };
        let e = self.err(
            ErrorKind::Unknown,
            key.span,
            format!("unknown property `{k}`"),
        );
        let candidates = virtuals
            .iter()
            .copied()
            .chain(self.attr_keys().iter().map(String::as_str));
        Err(match did_you_mean(bare, candidates) {
            Some(s) => e.with_help(format!("did you mean `{s}`?")),
            None => {
                e.with_help("no vertex or edge in the archive has it; `.schema` lists the keys")
            }
        })
    }

    fn props(
        &self,
        props: &[(Name, Literal)],
        kind: SlotKind,
    ) -> Result<Vec<BoundProp>, QueryError> {
        props
            .iter()
            .map(|(k, v)| {
                Ok(BoundProp {
                    key: self.prop_key(k, kind)?,
                    value: v.clone(),
                    span: k.span,
                })
            })
            .collect()
    }

    fn var(&self, n: &Name) -> Result<usize, QueryError> {
        if let Some(&s) = self.by_name.get(&n.text) {
            return Ok(s);
        }
        let mut names: Vec<&str> = self
            .by_name
            .keys()
            .map(String::as_str)
            .filter(|s| !s.starts_with('_'))
            .collect();
        let e = self.err(
            ErrorKind::Unknown,
            n.span,
            format!("unknown variable `{}`", n.text),
        );
        Err(match did_you_mean(&n.text, names.iter().copied()) {
            Some(s) => e.with_help(format!("did you mean `{s}`?")),
            None if names.is_empty() => {
                e.with_help("name the element in the pattern, e.g. `(v:task)`")
            }
            None => {
                names.sort_unstable();
                e.with_help(format!("variables: {}", names.join(", ")))
            }
        })
    }

    fn expr(&self, e: &Expr) -> Result<BoundExpr, QueryError> {
        let bound = |e: &Expr| self.expr(e).map(Box::new);
        Ok(match e {
            Expr::Lit(l, span) => BoundExpr::Lit(l.clone(), *span),
            Expr::Var(n) => BoundExpr::Var(self.var(n)?),
            Expr::Prop(v, k) => {
                let s = self.var(v)?;
                BoundExpr::Prop(s, self.prop_key(k, self.slots.kinds[s])?)
            }
            Expr::Cmp(op, a, b, span) => BoundExpr::Cmp(*op, bound(a)?, bound(b)?, *span),
            Expr::And(a, b) => BoundExpr::And(bound(a)?, bound(b)?),
            Expr::Or(a, b) => BoundExpr::Or(bound(a)?, bound(b)?),
            Expr::Not(a) => BoundExpr::Not(bound(a)?),
        })
    }

    fn step(&self, step: &Step) -> Result<BoundStep, QueryError> {
        Ok(match step {
            Step::Where(e) => BoundStep::Where(self.expr(e)?),
            Step::During(w, span) => BoundStep::During(*w, *span),
            Step::Dedup(v) => BoundStep::Dedup(v.as_ref().map(|n| self.var(n)).transpose()?),
            Step::OrderBy(e, desc) => BoundStep::OrderBy(self.expr(e)?, *desc),
            Step::Skip(n) => BoundStep::Skip(*n),
            Step::Limit(n) => BoundStep::Limit(*n),
            Step::Count => BoundStep::Count,
            Step::Return { distinct, items } => BoundStep::Return {
                distinct: *distinct,
                items: items
                    .iter()
                    .map(|it| Ok((self.expr(&it.expr)?, it.column.clone())))
                    .collect::<Result<_, QueryError>>()?,
            },
            Step::Shortest => BoundStep::Shortest,
            Step::Path => BoundStep::Path,
            Step::As(n) => BoundStep::As(n.text.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::test_support::{archive, bound};

    #[test]
    fn a_typo_of_a_type_is_an_error_naming_the_type() {
        let g = archive();
        let e = bound(&g, "(a:tsk)").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unknown);
        assert_eq!(e.message(), "unknown vertex type `tsk`");
        assert_eq!(e.help(), Some("did you mean `task`?"));
        // The caret is under the name.
        assert_eq!(e.location().map(|l| l.column), Some(4));
        let e = bound(&g, "(a) -[:raed]-> (b)").unwrap_err();
        assert_eq!(e.message(), "unknown edge type `raed`");
        assert_eq!(e.help(), Some("did you mean `read`?"));
        // Nothing close: the help lists the types there are.
        let e = bound(&g, "(a:zzzzzz)").unwrap_err();
        assert_eq!(e.help(), Some("vertex types here: file, path, task"));
    }

    #[test]
    fn a_camflow_type_the_archive_lacks_matches_nothing_with_a_note() {
        let g = archive();
        let b = bound(&g, "(s:socket|task) -[:send|read]-> (x) -[:connect]-> (y)").unwrap();
        let task = g.vertex_type_id("task");
        assert_eq!(b.nodes[0].types, Some(task.into_iter().collect()));
        assert_eq!(
            b.edges[0].types,
            g.edge_type_id("read").into_iter().collect::<Vec<_>>()
        );
        // `send` is absent but `read` is not: the edge still matches reads.
        assert!(!b.edges[0].absent);
        assert!(b.edges[1].types.is_empty() && b.edges[1].absent);
        assert_eq!(
            b.warnings,
            [
                "no vertex of type `socket` in this archive (it matches nothing)",
                "no edge of type `send` in this archive (it matches nothing)",
                "no edge of type `connect` in this archive (it matches nothing)",
            ]
        );
    }

    #[test]
    fn variables_become_slots_in_pattern_order() {
        let g = archive();
        let b = bound(&g, "(a) -[e:read]-> (b) -[]-> (a) | return b.id, e").unwrap();
        assert_eq!(b.slots.names, ["a", "e", "b", "_3"]);
        use SlotKind::{Edge, Vertex};
        assert_eq!(b.slots.kinds, [Vertex, Edge, Vertex, Edge]);
        // `a` named twice is one slot: the pattern closes a cycle.
        let node_slots: Vec<usize> = b.nodes.iter().map(|n| n.slot).collect();
        assert_eq!(node_slots, [0, 2, 0]);
        let edge_slots: Vec<usize> = b.edges.iter().map(|e| e.slot).collect();
        assert_eq!(edge_slots, [1, 3]);
        let BoundStep::Return { items, .. } = &b.steps[0] else {
            panic!("{:?}", b.steps)
        };
        assert_eq!(
            items[0],
            (BoundExpr::Prop(2, PropKey::Id), "b.id".to_owned())
        );
        assert_eq!(items[1], (BoundExpr::Var(1), "e".to_owned()));
    }

    #[test]
    fn a_variable_holds_one_kind_and_an_edge_variable_one_edge() {
        let g = archive();
        let e = bound(&g, "(a) -[a]-> (b)").unwrap_err();
        assert_eq!(e.message(), "`a` is already bound to a vertex");
        let e = bound(&g, "(a) -[e]-> (b) -[e]-> (c)").unwrap_err();
        assert_eq!(e.message(), "edge variable `e` is used twice");
        let e = bound(&g, "(task) | return tsk.pid").unwrap_err();
        assert_eq!(e.message(), "unknown variable `tsk`");
        assert_eq!(e.help(), Some("did you mean `task`?"));
        let e = bound(&g, "() | return v").unwrap_err();
        assert_eq!(
            e.help(),
            Some("name the element in the pattern, e.g. `(v:task)`")
        );
    }

    #[test]
    fn property_keys_resolve_by_element_kind() {
        let g = archive();
        let b = bound(&g, "(t {pid: 3666}) -[e]-> (f where name ~ 'x') | where e.relation = 'used' and t.cf:pid > 1").unwrap();
        assert_eq!(
            b.nodes[0].props,
            [BoundProp {
                key: PropKey::Attr("pid".into()),
                value: Literal::Int(3666),
                span: Span::new(4, 7),
            }]
        );
        // A bare name inside a node's `where` is that node's property; `name` is virtual.
        let Some(BoundExpr::Cmp(CmpOp::Match, lhs, _, _)) = &b.nodes[1].filter else {
            panic!("{:?}", b.nodes[1].filter)
        };
        assert_eq!(**lhs, BoundExpr::Prop(2, PropKey::Name));
        let BoundStep::Where(BoundExpr::And(rel, pid)) = &b.steps[0] else {
            panic!("{:?}", b.steps)
        };
        assert!(
            matches!(&**rel, BoundExpr::Cmp(_, k, _, _) if **k == BoundExpr::Prop(1, PropKey::Relation))
        );
        // With `cf:` or without, an attribute key is kept as written.
        let cf_pid = BoundExpr::Prop(0, PropKey::Attr("cf:pid".into()));
        assert!(matches!(&**pid, BoundExpr::Cmp(_, k, _, _) if **k == cf_pid));
        // `relation` is an edge's, not a vertex's.
        let e = bound(&g, "(t) | return t.relation").unwrap_err();
        assert_eq!(e.message(), "unknown property `relation`");
        let e = bound(&g, "(t) | return t.pdi").unwrap_err();
        assert_eq!(e.help(), Some("did you mean `pid`?"));
    }
}
