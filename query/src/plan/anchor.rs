//! Pass 4, choose the anchor: where matching starts and in which order the pattern is
//! expanded from there. A bare `count` is answered from the index headers alone. Otherwise
//! every candidate is costed from the index headers (an `{id: ...}` look-up costs 1 per id, a
//! node's type index its length, a single-hop edge's type index its length, a node without
//! constraints the whole vertex range), and only the winner's ids are read: the executor
//! iterates them lazily from the bitmaps. A single-hop edge's time window has no header: the
//! time index is read up to the winner's cost, and wins when it ends first.

use provdb_storage::{ExternalId, GraphRead, IdSet, TypeId};

use super::compile::{CNode, CStep, Pattern};
use crate::ast::Dir;
use crate::error::QueryError;

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
    /// Edge ids from an id lookup, an edge type index or the time index, at edge `edge`
    /// (between nodes `edge` and `edge+1`), iterated lazily from the bitmaps.
    Edges { edge: usize, ids: IdSet },
}

/// One expansion after the anchor: along edge `edge` from node `from` to node `to`
/// (`reversed` when that is against the pattern's left-to-right order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stage {
    pub edge: usize,
    pub from: usize,
    pub to: usize,
    pub reversed: bool,
}

/// How a query starts: a count the indexes answer, or an anchor and the expansions from it.
#[derive(Debug, Clone)]
pub(crate) struct Start {
    pub(crate) index_count: Option<u64>,
    pub(crate) anchor: Anchor,
    pub(crate) stages: Vec<Stage>,
}

/// Chooses how the query of `pattern` then `steps` (after push-down) starts on `g`.
pub(crate) fn choose_start(
    g: &dyn GraphRead,
    pattern: &Pattern,
    steps: &[CStep],
) -> Result<Start, QueryError> {
    if let Some(n) = index_count(g, pattern, steps)? {
        return Ok(Start {
            index_count: Some(n),
            anchor: Anchor::Vertices {
                node: 0,
                ids: IdSet::default(),
            },
            stages: Vec::new(),
        });
    }
    let anchor = choose_anchor(g, pattern)?;
    let stages = expansion_order(&anchor, pattern.edges.len());
    Ok(Start {
        index_count: None,
        anchor,
        stages,
    })
}

/// The answer of a query that is only `count` over one unconstrained node of some types, or
/// over one single-hop edge of some types between unconstrained nodes.
pub(crate) fn index_count(
    g: &dyn GraphRead,
    pattern: &Pattern,
    steps: &[CStep],
) -> Result<Option<u64>, QueryError> {
    if !matches!(steps, [CStep::Count]) {
        return Ok(None);
    }
    let (nodes, edges) = (&pattern.nodes, &pattern.edges);
    match (nodes.as_slice(), edges.as_slice()) {
        ([n], []) if n.filter.is_none() && n.ids.is_none() => Ok(Some(match &n.types {
            None => g.live_vertex_count()?,
            Some(ts) => vertices_of_types(g, ts)?,
        })),
        // `(a) -[]-> (a)` is a self-loop test, which the indexes cannot answer.
        ([a, b], [e])
            if e.var.is_none()
                && e.filter.is_none()
                && e.window.is_none()
                && a.unconstrained()
                && b.unconstrained()
                && a.slot != b.slot =>
        {
            let mut n = if e.never {
                0
            } else if e.types.is_empty() {
                g.live_edge_count()?
            } else {
                edges_of_types(g, &e.types)?
            };
            // Either way, every edge matches once in each orientation.
            if e.dir == Dir::Either {
                n *= 2;
            }
            Ok(Some(n))
        }
        _ => Ok(None),
    }
}

/// A candidate anchor, before its ids are read.
enum Candidate<'p> {
    VertexTypes { node: usize, types: &'p [TypeId] },
    AllVertices { node: usize },
    EdgeTypes { edge: usize, types: &'p [TypeId] },
}

/// The cheapest anchor of `pattern`: the leftmost node with ids, else the leftmost
/// single-hop edge with ids, else the smallest index (ties go to the leftmost node, nodes
/// before edges), unless a single-hop edge's time window holds fewer edges.
pub(crate) fn choose_anchor(g: &dyn GraphRead, pattern: &Pattern) -> Result<Anchor, QueryError> {
    // An edge whose every type is absent matches nothing: start there and read nothing.
    if let Some(edge) = pattern.edges.iter().position(|e| e.never) {
        return Ok(Anchor::Edges {
            edge,
            ids: IdSet::default(),
        });
    }
    // An id names at most one vertex: no index can be cheaper (one that counts 0 leaves the
    // result as empty as the id does), so none is counted. Counting reads bitmaps, a
    // first-touch block each, and a question about one vertex should read that vertex's
    // neighbourhood only. A list of ids is as many look-ups.
    if let Some((node, exts)) = pattern
        .nodes
        .iter()
        .enumerate()
        .find_map(|(node, n)| n.ids.as_ref().map(|exts| (node, exts)))
    {
        return Ok(Anchor::Vertices {
            node,
            ids: look_up(g, Element::Vertex, exts)?.into_iter().collect(),
        });
    }
    // Likewise ids on a single-hop edge (an alert names its edges): a look-up per id.
    if let Some((edge, exts)) = pattern
        .edges
        .iter()
        .enumerate()
        .find_map(|(edge, e)| e.ids.as_ref().map(|exts| (edge, exts)))
    {
        return Ok(Anchor::Edges {
            edge,
            ids: look_up(g, Element::Edge, exts)?.into_iter().collect(),
        });
    }
    let mut best: Option<(u64, Candidate<'_>)> = None;
    let mut consider = |cost: u64, candidate| {
        if best.as_ref().is_none_or(|(c, _)| cost < *c) {
            best = Some((cost, candidate));
        }
    };
    for (node, n) in pattern.nodes.iter().enumerate() {
        match n {
            CNode {
                types: Some(types), ..
            } => consider(
                vertices_of_types(g, types)?,
                Candidate::VertexTypes { node, types },
            ),
            _ => consider(g.vertex_count()?, Candidate::AllVertices { node }),
        }
    }
    for (edge, e) in pattern.edges.iter().enumerate() {
        // A variable-length edge's type index says nothing of where its path starts.
        if e.var.is_none() && !e.types.is_empty() {
            let types = e.types.as_slice();
            consider(
                edges_of_types(g, types)?,
                Candidate::EdgeTypes { edge, types },
            );
        }
    }
    // A single-hop edge with a time window (`during`): the time index lists the edges in the
    // window, in time order and without counts, so they are read, up to as many as the
    // cheapest candidate above would visit; a window holding fewer is the anchor. (Without it
    // `() -[e]-> () | during last 1h` visited every vertex: 6 s on a 1M-edge archive.)
    let mut budget = best.as_ref().map_or(u64::MAX, |(cost, _)| *cost);
    let mut windowed = None;
    // A `during` gives every edge the same window: each window is read once (a second read
    // could not hold fewer edges, and ties go to the leftmost edge).
    let mut read = Vec::new();
    for (edge, e) in pattern.edges.iter().enumerate() {
        let (Some((from, to)), None) = (e.window, e.var) else {
            continue;
        };
        if read.contains(&(from, to)) {
            continue;
        }
        read.push((from, to));
        if let Some(ids) = edges_in_window(g, from, to, budget)? {
            budget = ids.len();
            windowed = Some(Anchor::Edges { edge, ids });
        }
    }
    if let Some(anchor) = windowed {
        return Ok(anchor);
    }
    Ok(match best {
        None => Anchor::Vertices {
            node: 0,
            ids: IdSet::default(),
        },
        Some((_, Candidate::VertexTypes { node, types })) => {
            let mut ids = IdSet::default();
            for t in types {
                ids.union_with(&g.vertices_of_type(*t)?);
            }
            Anchor::Vertices { node, ids }
        }
        Some((count, Candidate::AllVertices { node })) => Anchor::AllVertices {
            node,
            count,
            gaps: g.live_vertex_count()? != count,
        },
        Some((_, Candidate::EdgeTypes { edge, types })) => {
            let mut ids = IdSet::default();
            for t in types {
                ids.union_with(&g.edges_of_type(*t)?);
            }
            Anchor::Edges { edge, ids }
        }
    })
}

/// The edges whose time is in `from..=to`, when fewer than `budget`.
fn edges_in_window(
    g: &dyn GraphRead,
    from: i64,
    to: i64,
    budget: u64,
) -> Result<Option<IdSet>, QueryError> {
    let mut ids = Vec::new();
    for e in g.edges_in_time_range(from, to) {
        if ids.len() as u64 + 1 >= budget {
            return Ok(None);
        }
        ids.push(e?.0);
    }
    Ok(Some(ids.into_iter().collect()))
}

/// What a pattern element binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Element {
    Vertex,
    Edge,
}

/// The internal ids of the vertices or edges named by `exts`, sorted, without repeats (an id
/// the archive lacks names none): one look-up each.
pub(crate) fn look_up(
    g: &dyn GraphRead,
    element: Element,
    exts: &[ExternalId],
) -> Result<Vec<u64>, QueryError> {
    let mut ids = Vec::with_capacity(exts.len());
    for ext in exts {
        ids.extend(match element {
            Element::Vertex => g.vertex_id(ext)?.map(|v| v.0),
            Element::Edge => g.edge_id(ext)?.map(|e| e.0),
        });
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The expansions from `anchor` over a pattern of `edge_count` edges: rightwards to the end,
/// then leftwards to the start.
pub(crate) fn expansion_order(anchor: &Anchor, edge_count: usize) -> Vec<Stage> {
    let (right_from, left_from) = match anchor {
        Anchor::Vertices { node, .. } | Anchor::AllVertices { node, .. } => (*node, *node),
        Anchor::Edges { edge, .. } => (edge + 1, *edge),
    };
    let right = (right_from..edge_count).map(|i| Stage {
        edge: i,
        from: i,
        to: i + 1,
        reversed: false,
    });
    let left = (0..left_from).rev().map(|i| Stage {
        edge: i,
        from: i + 1,
        to: i,
        reversed: true,
    });
    right.chain(left).collect()
}

fn vertices_of_types(g: &dyn GraphRead, types: &[TypeId]) -> Result<u64, QueryError> {
    let mut n = 0;
    for t in types {
        n += g.count_vertices_of_type(*t)?;
    }
    Ok(n)
}

fn edges_of_types(g: &dyn GraphRead, types: &[TypeId]) -> Result<u64, QueryError> {
    let mut n = 0;
    for t in types {
        n += g.count_edges_of_type(*t)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::test_support::{archive, pushed_down, MemoryGraph};

    /// The start of `text` on `g`.
    fn start(g: &MemoryGraph, text: &str) -> Start {
        let (pattern, steps) = pushed_down(g, text);
        choose_start(g, &pattern, &steps).expect("plans")
    }

    /// The anchor of `text` on `g`, as (node or edge, ids) or for a scan (node, count).
    fn anchor(g: &MemoryGraph, text: &str) -> (&'static str, usize, Vec<u64>) {
        match start(g, text).anchor {
            Anchor::Vertices { node, ids } => ("vertices", node, ids.iter().collect()),
            Anchor::AllVertices { node, count, gaps } => {
                assert!(!gaps);
                ("all vertices", node, vec![count])
            }
            Anchor::Edges { edge, ids } => ("edges", edge, ids.iter().collect()),
        }
    }

    #[test]
    fn a_time_window_anchors_when_it_holds_fewer_edges_than_any_index() {
        // Edge times: e1..e8 at 10, 20, ..., 80 (ids 0..7); 9 vertices, 1 `named` edge.
        let g = archive();
        let window = "during @'1970-01-01T00:00:30'..@'1970-01-01T00:01:00'";
        assert_eq!(
            anchor(&g, &format!("(a) -[e]-> (b) | {window}")),
            ("edges", 0, vec![2, 3, 4, 5])
        );
        // The second edge's window, where the first has none to use.
        assert_eq!(
            anchor(&g, &format!("(a) -[*1..2]- (b) -[]-> (c) | {window}")),
            ("edges", 1, vec![2, 3, 4, 5])
        );
        // A smaller index wins: one `named` edge, one path vertex.
        assert_eq!(
            anchor(&g, &format!("(a) -[e:named]-> (b) | {window}")),
            ("edges", 0, vec![7])
        );
        assert_eq!(
            anchor(&g, &format!("(a:path) -[e]-> (b) | {window}")),
            ("vertices", 0, vec![8])
        );
        // The same window on two edges is read once.
        let before = g.time_index_reads.get();
        assert_eq!(
            anchor(&g, &format!("(a) -[]-> (b) -[]-> (c) | {window}")),
            ("edges", 0, vec![2, 3, 4, 5])
        );
        assert_eq!(g.time_index_reads.get() - before, 4);
        // A variable-length edge's window says nothing of where its path starts.
        assert_eq!(
            anchor(&g, &format!("(a) -[*1..2]-> (b) | {window}")),
            ("all vertices", 0, vec![9])
        );
    }

    #[test]
    fn the_smaller_type_index_wins() {
        // 3 tasks (ids 0..3) against 5 files.
        let g = archive();
        assert_eq!(
            anchor(&g, "(t:task) -[]-> (f:file)"),
            ("vertices", 0, vec![0, 1, 2])
        );
        assert_eq!(
            anchor(&g, "(f:file) -[]-> (t:task)"),
            ("vertices", 1, vec![0, 1, 2])
        );
        // Two types of one node add up: 3 tasks and 1 path are fewer than 5 files.
        assert_eq!(
            anchor(&g, "(f:file) -[]-> (t:task|path)"),
            ("vertices", 1, vec![0, 1, 2, 8])
        );
        // A tie goes to the left.
        assert_eq!(
            anchor(&g, "(a:task) -[]-> (b:task)"),
            ("vertices", 0, vec![0, 1, 2])
        );
    }

    #[test]
    fn an_id_lookup_beats_a_type_index() {
        let g = archive();
        assert_eq!(
            anchor(&g, "(t:task) -[]-> (f {id: 'f1'})"),
            ("vertices", 1, vec![3])
        );
        // An id the archive lacks: nothing to start from.
        assert_eq!(
            anchor(&g, "(t:task) -[]-> (f {id: 'nope'})"),
            ("vertices", 1, vec![])
        );
    }

    #[test]
    fn an_id_lookup_reads_no_index() {
        let g = archive();
        let before = g.index_reads.get();
        assert_eq!(
            anchor(&g, "(t:task) -[:clone]-> (f:file {id: 'f1'})"),
            ("vertices", 1, vec![3])
        );
        assert_eq!(g.index_reads.get(), before, "an index was read or counted");
        // Without the id, the indexes are counted.
        anchor(&g, "(t:task) -[:clone]-> (f:file)");
        assert!(g.index_reads.get() > before);
    }

    #[test]
    fn a_single_hop_edge_type_index_can_win() {
        // 1 clone edge (id 4) against 3 tasks and 5 files.
        let g = archive();
        assert_eq!(
            anchor(&g, "(a:file) -[:clone]-> (b:task)"),
            ("edges", 0, vec![4])
        );
        // Not a variable-length one: its type index says nothing of where paths start.
        assert_eq!(
            anchor(&g, "(a:file) -[:clone*1..2]-> (b)"),
            ("vertices", 0, vec![3, 4, 5, 6, 7])
        );
        // An edge type this archive lacks matches nothing: no index is read.
        assert_eq!(
            anchor(&g, "(t:task {id: 't1'}) -[:send]-> (b)"),
            ("edges", 0, vec![])
        );
    }

    #[test]
    fn without_constraints_every_vertex_is_scanned() {
        let g = archive();
        assert_eq!(anchor(&g, "(a) -[]-> (b)"), ("all vertices", 0, vec![9]));
        assert_eq!(anchor(&g, "(a) -[]-> (b:path)"), ("vertices", 1, vec![8]));
    }

    #[test]
    fn a_bare_count_comes_from_the_indexes() {
        let g = archive();
        let count = |text: &str| start(&g, text).index_count;
        assert_eq!(count("(t:task|path) | count"), Some(4));
        assert_eq!(count("(v) | count"), Some(9));
        assert_eq!(count("() -[:write]-> () | count"), Some(4));
        // Either way, each edge counts once per orientation: (4 writes + 2 reads) * 2.
        assert_eq!(count("() -[:write|read]- () | count"), Some(12));
        assert_eq!(count("() -[:send]-> () | count"), Some(0));
        // What the indexes cannot answer: a self-loop, an id, a filter, another step first.
        assert_eq!(count("(a) -[:write]-> (a) | count"), None);
        assert_eq!(count("(t:task {id: 't1'}) | count"), None);
        assert_eq!(count("(t:task) | where t.pid = 3666 | count"), None);
        assert_eq!(count("(t:task) | limit 1 | count"), None);
        assert_eq!(count("() -[*1..2]-> () | count"), None);
    }

    #[test]
    fn expansion_goes_right_of_the_anchor_then_left() {
        let stage = |edge, from, to, reversed| Stage {
            edge,
            from,
            to,
            reversed,
        };
        let at_node = Anchor::Vertices {
            node: 1,
            ids: IdSet::default(),
        };
        assert_eq!(
            expansion_order(&at_node, 3),
            [
                stage(1, 1, 2, false),
                stage(2, 2, 3, false),
                stage(0, 1, 0, true)
            ]
        );
        // An edge anchor binds both its nodes.
        let at_edge = Anchor::Edges {
            edge: 1,
            ids: IdSet::default(),
        };
        assert_eq!(
            expansion_order(&at_edge, 3),
            [stage(2, 2, 3, false), stage(0, 1, 0, true)]
        );
    }
}
