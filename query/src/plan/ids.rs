//! Pass 5, resolve ids: an `id = '...'` or `id in [...]` condition on a node or a single-hop
//! edge becomes a test of internal ids, the external ids looked up once here. Evaluated as
//! text, it read back the external id of every candidate (a table or snapshot read and an
//! allocation each), and a search towards `(b {id: '...'})` meets thousands of candidates.
//! On the anchor, the condition its own id look-ups answer is dropped: the anchor's vertices
//! or edges are those very ones.

use provdb_storage::{EdgeId, ExternalId, GraphRead, VertexId};

use super::anchor::{look_up, Anchor, Element};
use super::compile::{external_ids, CExpr, Pattern};
use super::PropKey;
use crate::ast::CmpOp;
use crate::error::QueryError;
use crate::value::Datum;

/// Rewrites the id conditions of every node and single-hop edge of `pattern` (anchored at
/// `anchor`) into [`CExpr::IsVertex`] and [`CExpr::IsEdge`], reading each id once from `g`.
pub(crate) fn resolve_ids(
    g: &dyn GraphRead,
    anchor: &Anchor,
    pattern: &mut Pattern,
) -> Result<(), QueryError> {
    // The external ids the anchor found its vertices or edges by, when it did: a node or
    // edge with ids is the anchor (no index is cheaper than a look-up per id).
    let (anchor_node, anchor_edge) = match anchor {
        Anchor::Vertices { node, .. } => (Some(*node), None),
        Anchor::Edges { edge, .. } => (None, Some(*edge)),
        Anchor::AllVertices { .. } => (None, None),
    };
    for (node, n) in pattern.nodes.iter_mut().enumerate() {
        let answered = n.ids.as_deref().filter(|_| anchor_node == Some(node));
        n.filter = resolve(g, n.filter.take(), n.slot, answered, Element::Vertex)?;
    }
    for (edge, e) in pattern.edges.iter_mut().enumerate() {
        // A variable-length edge binds a path, which no id names.
        if e.var.is_some() {
            continue;
        }
        let answered = e.ids.as_deref().filter(|_| anchor_edge == Some(edge));
        e.filter = resolve(g, e.filter.take(), e.slot, answered, Element::Edge)?;
    }
    Ok(())
}

/// `filter` with its id conditions on `slot` resolved, less the one `answered` by the
/// anchor.
fn resolve(
    g: &dyn GraphRead,
    filter: Option<CExpr>,
    slot: usize,
    answered: Option<&[ExternalId]>,
    element: Element,
) -> Result<Option<CExpr>, QueryError> {
    let Some(filter) = filter else {
        return Ok(None);
    };
    let mut kept = None;
    for condition in filter.into_conjuncts() {
        let condition = match compared_ids(&condition, slot) {
            Some(exts) if answered == Some(exts.as_slice()) => continue,
            Some(exts) => {
                let ids = look_up(g, element, &exts)?;
                match element {
                    Element::Vertex => CExpr::IsVertex {
                        slot,
                        vertices: ids.into_iter().map(VertexId).collect(),
                    },
                    Element::Edge => CExpr::IsEdge {
                        slot,
                        edges: ids.into_iter().map(EdgeId).collect(),
                    },
                }
            }
            None => condition,
        };
        kept = Some(CExpr::and(kept, condition));
    }
    Ok(kept)
}

/// The external ids `condition` tests slot `slot`'s id against, when it is `id = 'text'`
/// (either way round) or `id in ['text', ...]`.
fn compared_ids(condition: &CExpr, slot: usize) -> Option<Vec<ExternalId>> {
    let is_id = |p: &CExpr| matches!(p, CExpr::Prop(s, PropKey::Id) if *s == slot);
    match condition {
        CExpr::Cmp(CmpOp::Eq, a, b) => [(a, b), (b, a)].into_iter().find_map(|(p, l)| match &**l {
            CExpr::Lit(value @ Datum::Str(_)) if is_id(p) => {
                external_ids(std::slice::from_ref(value))
            }
            _ => None,
        }),
        CExpr::In(p, values) if is_id(p) => external_ids(values),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::anchor::choose_start;
    use crate::plan::test_support::{archive, pushed_down, MemoryGraph};

    /// The pattern of `text` on `g` after passes 1 to 5, and its anchor.
    fn resolved_pattern(g: &MemoryGraph, text: &str) -> (Pattern, Anchor) {
        let (mut pattern, steps) = pushed_down(g, text);
        let start = choose_start(g, &pattern, &steps).expect("plans");
        resolve_ids(g, &start.anchor, &mut pattern).expect("resolves");
        (pattern, start.anchor)
    }

    /// The node filters of `text` on `g` after passes 1 to 5.
    fn resolved(g: &MemoryGraph, text: &str) -> Vec<Option<CExpr>> {
        let (pattern, _) = resolved_pattern(g, text);
        pattern.nodes.into_iter().map(|n| n.filter).collect()
    }

    /// `(slot, internal ids)` of an [`CExpr::IsVertex`] or [`CExpr::IsEdge`] filter.
    fn ids_of(filter: &Option<CExpr>) -> (usize, Vec<u64>) {
        match filter {
            Some(CExpr::IsVertex { slot, vertices }) => {
                (*slot, vertices.iter().map(|v| v.0).collect())
            }
            Some(CExpr::IsEdge { slot, edges }) => (*slot, edges.iter().map(|e| e.0).collect()),
            other => panic!("not an id test: {other:?}"),
        }
    }

    #[test]
    fn a_type_anchor_keeps_every_condition_of_its_node() {
        let g = archive();
        let filters = resolved(&g, "(t:task {pid: 3666}) -[]-> (f)");
        assert!(matches!(
            &filters[0],
            Some(CExpr::Cmp(CmpOp::Eq, p, _)) if matches!(**p, CExpr::Prop(0, PropKey::Attr(_)))
        ));
        assert!(filters[1].is_none());
    }

    #[test]
    fn the_anchor_drops_its_own_id_and_other_nodes_compare_internal_ids() {
        // Vertex ids of the archive: t1 t2 t3 = 0 1 2, f1..f5 = 3..7.
        let g = archive();
        let filters = resolved(
            &g,
            "(v {id: 'cf:t1'}) -[]-> (f {id: 'f1'}) | where v.pid = 1",
        );
        // The anchor's own `id = 't1'` is gone, its `pid = 1` stays.
        let Some(CExpr::Cmp(CmpOp::Eq, p, _)) = &filters[0] else {
            panic!("{:?}", filters[0])
        };
        assert!(matches!(**p, CExpr::Prop(0, PropKey::Attr(_))), "{p:?}");
        // The other node (slot 2, after the edge) compares its internal id, read once; either
        // way round, with or without `cf:`.
        assert_eq!(ids_of(&filters[1]), (2, vec![3]));
        let filters = resolved(&g, "(v {id: 't1'}) -[]-> (f) | where 'cf:f2' = f.id");
        assert_eq!(ids_of(&filters[1]), (2, vec![4]));
    }

    #[test]
    fn a_list_of_ids_anchors_and_resolves_like_one_id() {
        let g = archive();
        // The anchor looks each id up (one the archive lacks adds none) and drops its list.
        let (pattern, anchor) = resolved_pattern(&g, "(v {id: ['f2', 'cf:t3', 'nope']}) -[]-> (w)");
        assert!(matches!(
            &anchor,
            Anchor::Vertices { node: 0, ids } if ids.iter().collect::<Vec<_>>() == [2, 4]
        ));
        assert!(pattern.nodes[0].filter.is_none());
        // Elsewhere, the list is the sorted internal ids it names.
        let filters = resolved(
            &g,
            "(v {id: 't1'}) -[]-> (f) | where f.id in ['f3', 'cf:f1']",
        );
        assert_eq!(ids_of(&filters[1]), (2, vec![3, 5]));
        // A list that is not all text stays as it was.
        let filters = resolved(&g, "(v {id: 't1'}) -[]-> (f) | where f.id in ['f3', 1]");
        assert!(matches!(&filters[1], Some(CExpr::In(..))));
    }

    #[test]
    fn an_edge_id_anchors_a_single_hop_and_is_resolved_elsewhere() {
        // Edge ids of the archive: e1..e8 = 0..7.
        let g = archive();
        let (pattern, anchor) = resolved_pattern(&g, "(a) -[e {id: 'cf:e3', time: 30}]-> (b)");
        assert!(matches!(
            &anchor,
            Anchor::Edges { edge: 0, ids } if ids.iter().collect::<Vec<_>>() == [2]
        ));
        // The anchor's own id condition is gone, the other stays.
        assert!(matches!(
            &pattern.edges[0].filter,
            Some(CExpr::Cmp(CmpOp::Eq, p, _)) if matches!(**p, CExpr::Prop(1, PropKey::Time))
        ));
        // Under a node id anchor, the edge compares its internal id; an absent id names none.
        let (pattern, anchor) = resolved_pattern(
            &g,
            "(a {id: 't1'}) -[e {id: 'e5'}]-> (b) -[d {id: ['nowhere']}]-> (c)",
        );
        assert!(matches!(anchor, Anchor::Vertices { node: 0, .. }));
        assert_eq!(ids_of(&pattern.edges[0].filter), (1, vec![4]));
        assert_eq!(ids_of(&pattern.edges[1].filter), (3, vec![]));
        // A variable-length edge binds a path: neither an anchor nor resolved.
        let (pattern, anchor) = resolved_pattern(&g, "(a:task) -[e*1..2 {id: 'e1'}]-> (b)");
        assert!(pattern.edges[0].ids.is_none());
        assert!(matches!(anchor, Anchor::Vertices { node: 0, .. }));
        assert!(matches!(
            &pattern.edges[0].filter,
            Some(CExpr::Cmp(CmpOp::Eq, ..))
        ));
    }

    #[test]
    fn another_or_an_unknown_id_makes_a_node_match_nothing() {
        let g = archive();
        // A second id on the anchor stays, as that id's vertex: never the anchor's.
        let filters = resolved(&g, "(v {id: 't1'}) | where v.id = 't2'");
        assert_eq!(ids_of(&filters[0]), (0, vec![1]));
        // An id the archive lacks names no vertex.
        let filters = resolved(&g, "(v {id: 't1'}) -[]-> (f {id: 'nowhere'})");
        assert_eq!(ids_of(&filters[1]), (2, vec![]));
        // Other comparisons of an id are left to the executor.
        let filters = resolved(&g, "(v {id: 't1'}) -[]-> (f) | where f.id != 'f1'");
        assert!(matches!(&filters[1], Some(CExpr::Cmp(CmpOp::Ne, ..))));
    }
}
