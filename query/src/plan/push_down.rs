//! Pass 3, push-down: the leading `where`/`during` steps move into the pattern where they can,
//! so that they prune the traversal instead of filtering finished rows
//! (`| where t.pid = 3666` restricts the start node `t`). Each conjunct of a `where` that
//! reads one element moves into that node's filter, or into that edge's filter when the edge
//! is a single hop (a variable-length edge binds only its last edge, so a filter there would
//! wrongly constrain every hop); there, a comparison of the edge's time with a time or a
//! number narrows the edge's window instead. A `during` becomes the window of every edge.
//! What cannot move stays a step, in order, ahead of the other steps.

use super::compile::{CExpr, CStep, LeadingFilter, Pattern};
use super::PropKey;
use crate::ast::CmpOp;
use crate::value::Datum;

/// Moves what it can of `leading` into `pattern`; returns the filters left as steps.
pub(crate) fn push_down(pattern: &mut Pattern, leading: Vec<LeadingFilter>) -> Vec<CStep> {
    let mut left = Vec::new();
    for filter in leading {
        match filter {
            LeadingFilter::Where(e) => {
                for conjunct in e.into_conjuncts() {
                    if let Some(unmoved) = move_conjunct(pattern, conjunct) {
                        left.push(CStep::Where(unmoved));
                    }
                }
            }
            // Without edges there is no edge time to test: the window stays a step.
            LeadingFilter::During(from, to) if pattern.edges.is_empty() => {
                left.push(CStep::Window(from, to));
            }
            LeadingFilter::During(from, to) => {
                for e in &mut pattern.edges {
                    e.window = Some(intersect(e.window, (from, to)));
                }
            }
        }
    }
    left
}

/// Moves `conjunct` into the filter of the one element it reads; gives it back when it reads
/// none, several, or a variable-length edge.
fn move_conjunct(pattern: &mut Pattern, conjunct: CExpr) -> Option<CExpr> {
    let mut used = Vec::new();
    conjunct.slots(&mut used);
    used.sort_unstable();
    used.dedup();
    let [slot] = used.as_slice() else {
        return Some(conjunct);
    };
    // A vertex variable named at two nodes is one vertex: its first node is enough.
    let filter = if let Some(n) = pattern.nodes.iter_mut().find(|n| n.slot == *slot) {
        &mut n.filter
    } else if let Some(e) = pattern
        .edges
        .iter_mut()
        .find(|e| e.slot == *slot && e.var.is_none())
    {
        if let Some((from, to)) = time_bounds(&conjunct, *slot) {
            e.window = Some(intersect(e.window, (from, to)));
            return None;
        }
        &mut e.filter
    } else {
        return Some(conjunct);
    };
    *filter = Some(CExpr::and(filter.take(), conjunct));
    None
}

fn intersect(window: Option<(i64, i64)>, (from, to): (i64, i64)) -> (i64, i64) {
    match window {
        Some((a, b)) => (a.max(from), b.min(to)),
        None => (from, to),
    }
}

/// The times `conjunct` keeps when it compares the time of the edge at `slot` with a time or
/// a number (`e.time >= @'...'`, `1548316824 < e.time`): that edge's window then tests the
/// same (an edge without a time fails both), and the anchor can read the time index for it.
fn time_bounds(conjunct: &CExpr, slot: usize) -> Option<(i64, i64)> {
    let CExpr::Cmp(op, a, b) = conjunct else {
        return None;
    };
    let literal = |e: &CExpr| match e {
        CExpr::Lit(Datum::Time(v) | Datum::Int(v)) => Some(*v),
        _ => None,
    };
    let is_time = |e: &CExpr| matches!(e, CExpr::Prop(s, PropKey::Time) if *s == slot);
    // As `e.time OP value`.
    let (op, value) = if is_time(a) {
        (*op, literal(b)?)
    } else if is_time(b) {
        let flipped = match op {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => *other,
        };
        (flipped, literal(a)?)
    } else {
        return None;
    };
    Some(match op {
        CmpOp::Eq => (value, value),
        CmpOp::Ge => (value, i64::MAX),
        CmpOp::Gt => (value.checked_add(1)?, i64::MAX),
        CmpOp::Le => (i64::MIN, value),
        CmpOp::Lt => (i64::MIN, value.checked_sub(1)?),
        CmpOp::Ne | CmpOp::Match | CmpOp::In => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::CmpOp;
    use crate::plan::bind::PropKey;
    use crate::plan::test_support::{archive, pushed_down, NOW};
    use crate::value::Datum;

    fn is_pid_eq(e: &CExpr, slot: usize, pid: i64) -> bool {
        matches!(e, CExpr::Cmp(CmpOp::Eq, p, l)
            if matches!(&**p, CExpr::Prop(s, PropKey::Attr(k)) if *s == slot && k == "pid")
            && matches!(**l, CExpr::Lit(Datum::Int(v)) if v == pid))
    }

    #[test]
    fn a_where_on_one_node_lands_in_that_nodes_filter() {
        let g = archive();
        let (p, steps) = pushed_down(
            &g,
            "(t:task) -[:clone|exec_task*1..]-> (c:task) | where t.pid = 3666 | dedup c | return c.pid",
        );
        let t = p.nodes[0].filter.as_ref().expect("t has the filter");
        assert!(is_pid_eq(t, 0, 3666), "{t:?}");
        assert!(p.nodes[1].filter.is_none());
        assert!(matches!(
            steps.as_slice(),
            [CStep::Dedup(Some(2)), CStep::Return { .. }]
        ));
    }

    #[test]
    fn a_where_on_two_elements_stays_a_step() {
        let g = archive();
        let (p, steps) = pushed_down(&g, "(a) -[]-> (b) | where a.pid = b.pid");
        assert!(p.nodes.iter().all(|n| n.filter.is_none()));
        assert!(matches!(
            steps.as_slice(),
            [CStep::Where(CExpr::Cmp(CmpOp::Eq, ..))]
        ));
        // Nor does a conjunct that reads no element move.
        let (_, steps) = pushed_down(&g, "(a) | where 1 = 1");
        assert!(matches!(steps.as_slice(), [CStep::Where(_)]));
    }

    #[test]
    fn a_conjunction_splits_and_each_part_goes_its_own_way() {
        let g = archive();
        let (p, steps) = pushed_down(
            &g,
            "(a) -[e]-> (b) | where a.pid = 1 and b.pid = 2 and a.pid < b.pid and e.machine > 5 and e.time > 5",
        );
        assert!(is_pid_eq(p.nodes[0].filter.as_ref().expect("a"), 0, 1));
        assert!(is_pid_eq(p.nodes[1].filter.as_ref().expect("b"), 2, 2));
        assert!(matches!(p.edges[0].filter, Some(CExpr::Cmp(CmpOp::Gt, ..))));
        assert_eq!(p.edges[0].window, Some((6, i64::MAX)));
        assert!(matches!(
            steps.as_slice(),
            [CStep::Where(CExpr::Cmp(CmpOp::Lt, ..))]
        ));
        // Into an existing filter, after it.
        let (p, _) = pushed_down(&g, "(a {pid: 1}) | where a.pid = 2");
        let Some(CExpr::And(first, second)) = &p.nodes[0].filter else {
            panic!("{:?}", p.nodes[0].filter)
        };
        assert!(is_pid_eq(first, 0, 1) && is_pid_eq(second, 0, 2));
    }

    #[test]
    fn a_variable_length_edge_keeps_its_filter_as_a_step() {
        let g = archive();
        let (p, steps) = pushed_down(&g, "(a) -[e*1..3]-> (b) | where e.time > 5");
        assert!(p.edges[0].filter.is_none());
        assert!(matches!(steps.as_slice(), [CStep::Where(_)]));
    }

    #[test]
    fn a_vertex_named_twice_is_filtered_at_its_first_node() {
        let g = archive();
        let (p, steps) = pushed_down(&g, "(a) -[]-> (b) -[]-> (a) | where a.pid = 1");
        assert!(p.nodes[0].filter.is_some());
        assert!(p.nodes[2].filter.is_none());
        assert!(steps.is_empty());
    }

    #[test]
    fn only_leading_filters_move() {
        let g = archive();
        let (p, steps) = pushed_down(&g, "(t) | limit 5 | where t.pid = 3666");
        assert!(p.nodes[0].filter.is_none());
        assert!(matches!(
            steps.as_slice(),
            [CStep::Limit(5), CStep::Where(_)]
        ));
    }

    #[test]
    fn a_single_hop_edge_time_comparison_narrows_its_window() {
        let g = archive();
        let (p, steps) = pushed_down(
            &g,
            "(a) -[e]-> (b) | where e.time >= 20 and e.time < @'1970-01-01T00:01:00' and 30 < e.time",
        );
        assert!(steps.is_empty());
        assert_eq!(p.edges[0].window, Some((31, 59)));
        assert!(p.edges[0].filter.is_none());
        // Each comparison with the time on the right.
        for (condition, window) in [
            ("20 < e.time", (21, i64::MAX)),
            ("20 <= e.time", (20, i64::MAX)),
            ("20 > e.time", (i64::MIN, 19)),
            ("20 >= e.time", (i64::MIN, 20)),
            ("20 = e.time", (20, 20)),
        ] {
            let (p, _) = pushed_down(&g, &format!("(a) -[e]-> (b) | where {condition}"));
            assert_eq!(p.edges[0].window, Some(window), "{condition}");
        }
        // `=` is a window of one second, and meets a `during`.
        let (p, _) = pushed_down(
            &g,
            "(a) -[e]-> (b) | where e.time = 40 | during @'1970-01-01T00:00:00'..@'1970-01-01T00:00:50'",
        );
        assert_eq!(p.edges[0].window, Some((40, 40)));
        // Other comparisons stay filters: `!=`, a string, another property.
        let (p, _) = pushed_down(
            &g,
            "(a) -[e]-> (b) | where e.time != 40 and e.time > '1970' and e.machine > 1",
        );
        assert_eq!(p.edges[0].window, None);
        assert_eq!(
            p.edges[0]
                .filter
                .clone()
                .expect("filter")
                .into_conjuncts()
                .len(),
            3
        );
        // A variable-length edge keeps the comparison as a step (it binds its last edge).
        let (p, steps) = pushed_down(&g, "(a) -[e*1..2]-> (b) | where e.time > 40");
        assert_eq!(p.edges[0].window, None);
        assert_eq!(steps.len(), 1);
    }

    #[test]
    fn windows_go_to_every_edge_and_intersect() {
        let g = archive();
        let (p, steps) = pushed_down(
            &g,
            "(a) -[]-> (b) -[*..2]-> (c) | during @'2019-01-24T08:00'..@'2019-01-24T10:00' | during last 30000d",
        );
        assert!(steps.is_empty());
        // The second window starts long before the first and never ends.
        for e in &p.edges {
            assert_eq!(e.window, Some((1_548_316_800, 1_548_324_000)));
        }
        // Without edges a window stays a step.
        let (_, steps) = pushed_down(&g, "(a) | during last 1h");
        assert!(matches!(steps.as_slice(), [CStep::Window(from, i64::MAX)] if *from == NOW - 3600));
    }
}
