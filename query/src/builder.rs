//! A typed Rust builder for traversals. It produces the same [`Query`] syntax tree as the
//! parser, so a built query runs with the same semantics (and prints as query text).
//!
//! ```
//! use provdb_query::builder::{edge, node, Traversal};
//! let q = Traversal::new(node("t").of_type("task"))
//!     .out(edge().of_type("clone").of_type("exec_task").hops(1, None), node("c").of_type("task"))
//!     .where_eq("t", "pid", 3666)
//!     .dedup("c")
//!     .return_props(&[("c", "pid")])
//!     .build();
//! assert_eq!(
//!     q.to_string(),
//!     "(t:task) -[:clone|exec_task*1..]-> (c:task) | where t.pid = 3666 | dedup c | return c.pid"
//! );
//! ```

use crate::ast::*;

/// Starts a node pattern bound to `var` (use `""` for an anonymous node).
pub fn node(var: &str) -> NodeBuilder {
    NodeBuilder(NodePattern {
        var: (!var.is_empty()).then(|| Name::new(var)),
        ..NodePattern::default()
    })
}

/// Starts an anonymous single-hop edge pattern of any type.
pub fn edge() -> EdgeBuilder {
    EdgeBuilder(EdgePattern::default())
}

/// A node pattern under construction.
#[derive(Debug, Clone)]
pub struct NodeBuilder(NodePattern);

impl NodeBuilder {
    /// Accepts vertices of this type too.
    pub fn of_type(mut self, t: &str) -> Self {
        self.0.types.push(Name::new(t));
        self
    }

    /// Requires property `key` to equal `value`.
    pub fn with(mut self, key: &str, value: impl Into<Literal>) -> Self {
        self.0.props.push((Name::new(key), value.into()));
        self
    }
}

/// An edge pattern under construction.
#[derive(Debug, Clone)]
pub struct EdgeBuilder(EdgePattern);

impl EdgeBuilder {
    /// Binds the edge to `var`.
    pub fn var(mut self, var: &str) -> Self {
        self.0.var = Some(Name::new(var));
        self
    }

    /// Accepts edges of this type too.
    pub fn of_type(mut self, t: &str) -> Self {
        self.0.types.push(Name::new(t));
        self
    }

    /// Makes it a variable-length hop of `min..max` edges (`None`: up to the maximum depth).
    pub fn hops(mut self, min: u32, max: Option<u32>) -> Self {
        self.0.hops = Some((min, max));
        self
    }

    /// Requires edge times not to decrease along the path.
    pub fn causal(mut self) -> Self {
        self.0.causal = true;
        self
    }
}

/// A traversal under construction.
#[derive(Debug, Clone)]
pub struct Traversal(Query);

impl Traversal {
    /// Starts at the vertices matching `start`.
    pub fn new(start: NodeBuilder) -> Traversal {
        Traversal(Query {
            start: start.0,
            hops: Vec::new(),
            steps: Vec::new(),
        })
    }

    fn hop(mut self, mut e: EdgeBuilder, dir: Dir, to: NodeBuilder) -> Self {
        e.0.dir = dir;
        self.0.hops.push((e.0, to.0));
        self
    }

    /// Follows edges in information-flow direction (`-[...]->`).
    pub fn out(self, e: EdgeBuilder, to: NodeBuilder) -> Self {
        self.hop(e, Dir::Forward, to)
    }

    /// Follows edges against information flow (`<-[...]-`).
    pub fn back(self, e: EdgeBuilder, to: NodeBuilder) -> Self {
        self.hop(e, Dir::Backward, to)
    }

    /// Follows edges either way (`-[...]-`).
    pub fn both(self, e: EdgeBuilder, to: NodeBuilder) -> Self {
        self.hop(e, Dir::Either, to)
    }

    /// `| where expr`.
    pub fn filter(mut self, e: Expr) -> Self {
        self.0.steps.push(Step::Where(e));
        self
    }

    /// `| where var.key = value`.
    pub fn where_eq(self, var: &str, key: &str, value: impl Into<Literal>) -> Self {
        self.filter(Expr::cmp(CmpOp::Eq, Expr::prop(var, key), Expr::lit(value)))
    }

    /// `| dedup var`.
    pub fn dedup(mut self, var: &str) -> Self {
        self.0.steps.push(Step::Dedup(Some(Name::new(var))));
        self
    }

    /// `| order by var.key [desc]`.
    pub fn order_by(mut self, var: &str, key: &str, desc: bool) -> Self {
        self.0.steps.push(Step::OrderBy(Expr::prop(var, key), desc));
        self
    }

    /// `| skip n`.
    pub fn skip(mut self, n: u64) -> Self {
        self.0.steps.push(Step::Skip(n));
        self
    }

    /// `| limit n`.
    pub fn limit(mut self, n: u64) -> Self {
        self.0.steps.push(Step::Limit(n));
        self
    }

    /// `| count`.
    pub fn count(mut self) -> Self {
        self.0.steps.push(Step::Count);
        self
    }

    /// `| return var.key, ...` (columns named `var.key`).
    pub fn return_props(mut self, props: &[(&str, &str)]) -> Self {
        let items = props
            .iter()
            .map(|(v, k)| ReturnItem {
                expr: Expr::prop(v, k),
                column: format!("{v}.{k}"),
            })
            .collect();
        self.0.steps.push(Step::Return {
            distinct: false,
            items,
        });
        self
    }

    /// The syntax tree.
    pub fn build(self) -> Query {
        self.0
    }
}
