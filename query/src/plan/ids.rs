//! Pass 5, resolve ids: an `id = '...'` condition on a node or a single-hop edge becomes a
//! comparison of internal ids, the external id looked up once here. Evaluated as text, it
//! read back the external id of every candidate (a table or snapshot read and an allocation
//! each), and a search towards `(b {id: '...'})` meets thousands of candidates. On the
//! anchor, the condition its own id lookup answers is dropped: the anchor's vertex or edge is
//! that very one.

use provdb_storage::{ExternalId, GraphRead};

use super::anchor::Anchor;
use super::compile::{CExpr, Pattern};
use super::PropKey;
use crate::ast::CmpOp;
use crate::error::QueryError;
use crate::value::Datum;

/// Rewrites the `id = '...'` conditions of every node and single-hop edge of `pattern`
/// (anchored at `anchor`) into [`CExpr::IsVertex`] and [`CExpr::IsEdge`], reading each id
/// once from `g`.
pub(crate) fn resolve_ids(
    g: &dyn GraphRead,
    anchor: &Anchor,
    pattern: &mut Pattern,
) -> Result<(), QueryError> {
    // The external id the anchor found its vertices or edges by, when it did: the node or
    // edge with an id is the anchor (no index is cheaper than one id).
    let (anchor_node, anchor_edge) = match anchor {
        Anchor::Vertices { node, .. } => (Some(*node), None),
        Anchor::Edges { edge, .. } => (None, Some(*edge)),
        Anchor::AllVertices { .. } => (None, None),
    };
    for (node, n) in pattern.nodes.iter_mut().enumerate() {
        let answered = n.id.as_ref().filter(|_| anchor_node == Some(node));
        n.filter = resolve(g, n.filter.take(), n.slot, answered, Kind::Vertex)?;
    }
    for (edge, e) in pattern.edges.iter_mut().enumerate() {
        // A variable-length edge binds a path, which no one id names.
        if e.var.is_some() {
            continue;
        }
        let answered = e.id.as_ref().filter(|_| anchor_edge == Some(edge));
        e.filter = resolve(g, e.filter.take(), e.slot, answered, Kind::Edge)?;
    }
    Ok(())
}

/// What the slot of a filter binds.
#[derive(Clone, Copy)]
enum Kind {
    Vertex,
    Edge,
}

/// `filter` with its `id = '...'` conditions on `slot` resolved, less the one `answered`
/// by the anchor.
fn resolve(
    g: &dyn GraphRead,
    filter: Option<CExpr>,
    slot: usize,
    answered: Option<&ExternalId>,
    kind: Kind,
) -> Result<Option<CExpr>, QueryError> {
    let Some(filter) = filter else {
        return Ok(None);
    };
    let mut kept = None;
    for condition in filter.into_conjuncts() {
        let condition = match compared_id(&condition, slot) {
            Some(ext) if answered == Some(&ext) => continue,
            Some(ext) => match kind {
                Kind::Vertex => CExpr::IsVertex {
                    slot,
                    vertex: g.vertex_id(&ext)?,
                },
                Kind::Edge => CExpr::IsEdge {
                    slot,
                    edge: g.edge_id(&ext)?,
                },
            },
            None => condition,
        };
        kept = Some(CExpr::and(kept, condition));
    }
    Ok(kept)
}

/// The external id `condition` compares slot `slot`'s id with, when it is `id = 'text'`
/// (either way round).
fn compared_id(condition: &CExpr, slot: usize) -> Option<ExternalId> {
    let CExpr::Cmp(CmpOp::Eq, a, b) = condition else {
        return None;
    };
    [(a, b), (b, a)]
        .into_iter()
        .find_map(|(p, l)| match (&**p, &**l) {
            (CExpr::Prop(s, PropKey::Id), CExpr::Lit(Datum::Str(text))) if *s == slot => {
                Some(ExternalId::parse(text))
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use provdb_storage::{EdgeId, VertexId};

    use super::*;
    use crate::plan::anchor::choose_start;
    use crate::plan::test_support::{archive, pushed_down, MemoryGraph};

    /// The node filters of `text` on `g` after passes 1 to 5.
    fn resolved(g: &MemoryGraph, text: &str) -> Vec<Option<CExpr>> {
        let (mut pattern, steps) = pushed_down(g, text);
        let start = choose_start(g, &pattern, &steps).expect("plans");
        resolve_ids(g, &start.anchor, &mut pattern).expect("resolves");
        pattern.nodes.into_iter().map(|n| n.filter).collect()
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
        assert!(matches!(
            filters[1],
            Some(CExpr::IsVertex {
                slot: 2,
                vertex: Some(VertexId(3))
            })
        ));
        let filters = resolved(&g, "(v {id: 't1'}) -[]-> (f) | where 'cf:f2' = f.id");
        assert!(matches!(
            filters[1],
            Some(CExpr::IsVertex {
                vertex: Some(VertexId(4)),
                ..
            })
        ));
    }

    #[test]
    fn an_edge_id_anchors_a_single_hop_and_is_resolved_elsewhere() {
        // Edge ids of the archive: e1..e8 = 0..7.
        let g = archive();
        let (mut pattern, steps) = pushed_down(&g, "(a) -[e {id: 'cf:e3', time: 30}]-> (b)");
        let start = choose_start(&g, &pattern, &steps).expect("plans");
        assert!(matches!(
            &start.anchor,
            Anchor::Edges { edge: 0, ids } if ids.iter().collect::<Vec<_>>() == [2]
        ));
        resolve_ids(&g, &start.anchor, &mut pattern).expect("resolves");
        // The anchor's own id condition is gone, the other stays.
        assert!(matches!(
            &pattern.edges[0].filter,
            Some(CExpr::Cmp(CmpOp::Eq, p, _)) if matches!(**p, CExpr::Prop(1, PropKey::Time))
        ));
        // Under a node id anchor, the edge compares its internal id; an absent id names none.
        let (mut pattern, steps) = pushed_down(
            &g,
            "(a {id: 't1'}) -[e {id: 'e5'}]-> (b) -[d {id: 'nowhere'}]-> (c)",
        );
        let start = choose_start(&g, &pattern, &steps).expect("plans");
        assert!(matches!(start.anchor, Anchor::Vertices { node: 0, .. }));
        resolve_ids(&g, &start.anchor, &mut pattern).expect("resolves");
        assert!(matches!(
            pattern.edges[0].filter,
            Some(CExpr::IsEdge {
                slot: 1,
                edge: Some(EdgeId(4))
            })
        ));
        assert!(matches!(
            pattern.edges[1].filter,
            Some(CExpr::IsEdge { edge: None, .. })
        ));
        // A variable-length edge binds a path: neither an anchor nor resolved.
        let (mut pattern, steps) = pushed_down(&g, "(a:task) -[e*1..2 {id: 'e1'}]-> (b)");
        assert!(pattern.edges[0].id.is_none());
        let start = choose_start(&g, &pattern, &steps).expect("plans");
        assert!(matches!(start.anchor, Anchor::Vertices { node: 0, .. }));
        resolve_ids(&g, &start.anchor, &mut pattern).expect("resolves");
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
        assert!(matches!(
            filters[0],
            Some(CExpr::IsVertex {
                slot: 0,
                vertex: Some(VertexId(1))
            })
        ));
        // An id the archive lacks names no vertex.
        let filters = resolved(&g, "(v {id: 't1'}) -[]-> (f {id: 'nowhere'})");
        assert!(matches!(
            filters[1],
            Some(CExpr::IsVertex { vertex: None, .. })
        ));
        // Other comparisons of an id are left to the executor.
        let filters = resolved(&g, "(v {id: 't1'}) -[]-> (f) | where f.id != 'f1'");
        assert!(matches!(&filters[1], Some(CExpr::Cmp(CmpOp::Ne, ..))));
    }
}
