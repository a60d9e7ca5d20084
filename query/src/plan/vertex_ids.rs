//! Pass 5, resolve vertex ids: an `id = '...'` condition on a node becomes a comparison of
//! internal vertex ids, the external id looked up once here. Evaluated as text, it read back
//! the external id of every candidate (a table or snapshot read and an allocation each), and
//! a search towards `(b {id: '...'})` meets thousands of candidates. On the anchor node, the
//! condition its own id lookup answers is dropped: the anchor's vertex is that very one.

use provdb_storage::{ExternalId, GraphRead};

use super::anchor::Anchor;
use super::compile::{CExpr, Pattern};
use super::PropKey;
use crate::ast::CmpOp;
use crate::error::QueryError;
use crate::value::Datum;

/// Rewrites the `id = '...'` conditions of every node of `pattern` (anchored at `anchor`)
/// into [`CExpr::IsVertex`], reading each id once from `g`.
pub(crate) fn resolve_vertex_ids(
    g: &dyn GraphRead,
    anchor: &Anchor,
    pattern: &mut Pattern,
) -> Result<(), QueryError> {
    let anchor_node = match anchor {
        Anchor::Vertices { node, .. } => Some(*node),
        Anchor::AllVertices { .. } | Anchor::Edges { .. } => None,
    };
    for (node, n) in pattern.nodes.iter_mut().enumerate() {
        let Some(filter) = n.filter.take() else {
            continue;
        };
        let slot = n.slot;
        // The external id the anchor found this node's vertices by, when it did: a node with
        // an id is always the anchor (no index is cheaper than one id).
        let answered = if anchor_node == Some(node) {
            n.id.as_ref()
        } else {
            None
        };
        let mut kept = None;
        for condition in filter.into_conjuncts() {
            let condition = match compared_id(&condition, slot) {
                Some(ext) if answered == Some(&ext) => continue,
                Some(ext) => CExpr::IsVertex {
                    slot,
                    vertex: g.vertex_id(&ext)?,
                },
                None => condition,
            };
            kept = Some(CExpr::and(kept, condition));
        }
        n.filter = kept;
    }
    Ok(())
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
    use provdb_storage::VertexId;

    use super::*;
    use crate::plan::anchor::choose_start;
    use crate::plan::test_support::{archive, pushed_down, MemoryGraph};

    /// The node filters of `text` on `g` after passes 1 to 5.
    fn resolved(g: &MemoryGraph, text: &str) -> Vec<Option<CExpr>> {
        let (mut pattern, steps) = pushed_down(g, text);
        let start = choose_start(g, &pattern, &steps).expect("plans");
        resolve_vertex_ids(g, &start.anchor, &mut pattern).expect("resolves");
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
