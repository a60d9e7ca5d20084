//! Turns a parsed [`Query`] into a [`Plan`], in five passes, each a module with a typed input
//! and output:
//!
//! 1. [`bind`]: variables to slots, type names to type ids, property keys to [`PropKey`]s,
//!    against the archive's dictionaries ("did you mean" errors, notes for absent types);
//! 2. [`compile`]: literals to values, `~` patterns to regular expressions, patterns and steps
//!    to the form the executor evaluates;
//! 3. [`push_down`]: the leading `where`/`during` steps into the pattern;
//! 4. [`anchor`]: a count from the indexes, or the cheapest anchor and the expansion order;
//! 5. [`ids`]: `id = '...'` conditions on nodes and single-hop edges to internal ids, each
//!    read once.

mod anchor;
mod bind;
mod camflow_types;
mod compile;
mod ids;
mod push_down;

#[cfg(test)]
mod test_support;

use provdb_storage::GraphRead;

pub(crate) use anchor::{Anchor, Stage};
pub(crate) use bind::PropKey;
pub use bind::{EDGE_PROPERTIES, VERTEX_PROPERTIES};
pub(crate) use compile::{CEdge, CExpr, CNode, CStep};

use crate::ast::Query;
use crate::error::{ErrorKind, QueryError, Span};

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
        // Written when asked, not at planning: formatting it was ~2% of a first-touch query.
        explain(self.index_count, &self.anchor, &self.stages, &self.edges).join("\n")
    }
}

/// Compiles `query` (parsed from `text`, used for error places) against the archive `g`.
pub fn plan(
    g: &dyn GraphRead,
    text: &str,
    query: &Query,
    max_depth: u32,
) -> Result<Plan, QueryError> {
    let bound = bind::bind(g, text, query)?;
    let cx = compile::CompileContext {
        text,
        max_depth,
        now: now_secs(),
    };
    let compiled = compile::compile(bound, cx)?;
    let mut pattern = compiled.pattern;
    let mut steps = push_down::push_down(&mut pattern, compiled.leading);
    steps.extend(compiled.steps);
    let start = anchor::choose_start(g, &pattern, &steps)?;
    ids::resolve_ids(g, &start.anchor, &mut pattern)?;
    Ok(Plan {
        slot_names: compiled.slot_names,
        nodes: pattern.nodes,
        edges: pattern.edges,
        anchor: start.anchor,
        stages: start.stages,
        steps,
        columns: compiled.columns,
        format: compiled.format,
        index_count: start.index_count,
        warnings: compiled.warnings,
    })
}

/// The lines of `--explain`: where the query starts and each expansion from there.
fn explain(
    index_count: Option<u64>,
    anchor: &Anchor,
    stages: &[Stage],
    edges: &[CEdge],
) -> Vec<String> {
    if let Some(n) = index_count {
        return vec![format!("count from the type indexes: {n}")];
    }
    let mut lines = vec![match anchor {
        Anchor::Vertices { node, ids } => format!(
            "start at node {} from {} candidate vertices (id or type index)",
            node + 1,
            ids.len()
        ),
        Anchor::AllVertices { node, count, .. } => {
            format!(
                "start at node {} by scanning all {count} vertices",
                node + 1
            )
        }
        Anchor::Edges { edge, ids } => format!(
            "start at edge {} from {} edges (id, edge type or time index)",
            edge + 1,
            ids.len()
        ),
    }];
    for s in stages {
        let e = &edges[s.edge];
        lines.push(format!(
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
    lines
}

/// An error at `span` of `text`; without a place when the query was built in code (no text).
fn error_at(text: &str, kind: ErrorKind, span: Span, msg: impl Into<String>) -> QueryError {
    if span == Span::default() && text.is_empty() {
        QueryError::new(kind, msg)
    } else {
        QueryError::at(kind, text, span, msg)
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::test_support::archive;

    fn explained(text: &str) -> String {
        let g = archive();
        let q = crate::parser::parse(text).expect("parses");
        plan(&g, text, &q, 32).expect("plans").explain()
    }

    #[test]
    fn explain_says_where_the_query_starts_and_how_it_expands() {
        assert_eq!(
            explained("(f:file) <-[:write]- (t:task) -[*..3]- (x)"),
            "start at node 2 from 3 candidate vertices (id or type index)\n\
             expand node 2 -> node 3 (Both, 1..3 hops, breadth-first) by adjacency prefix scans\n\
             expand node 2 -> node 1 (Out) by adjacency prefix scans"
        );
        assert_eq!(
            explained("(a) -[:clone]-> (b)"),
            "start at edge 1 from 1 edges (id, edge type or time index)"
        );
        // An edge's id is one edge to start from.
        assert_eq!(
            explained("(a) -[e {id: 'e2'}]-> (b)"),
            "start at edge 1 from 1 edges (id, edge type or time index)"
        );
        assert_eq!(
            explained("(a) -[]-> (b)"),
            "start at node 1 by scanning all 9 vertices\n\
             expand node 1 -> node 2 (Out) by adjacency prefix scans"
        );
        // A count from the indexes reads nothing else.
        assert_eq!(
            explained("(t:task) | count"),
            "count from the type indexes: 3"
        );
    }
}
