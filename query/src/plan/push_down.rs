//! Pass 3, push-down: the leading `where`/`during` steps move into the pattern where they can,
//! so that they prune the traversal instead of filtering finished rows
//! (`| where t.pid = 3666` restricts the start node `t`). Each conjunct of a `where` that
//! reads one element moves into that node's filter, or into that edge's filter when the edge
//! is a single hop (a variable-length edge binds only its last edge, so a filter there would
//! wrongly constrain every hop). A `during` becomes the window of every edge. What cannot
//! move stays a step, in order, ahead of the other steps.

use super::compile::{CExpr, CStep, LeadingFilter, Pattern};

/// Moves what it can of `leading` into `pattern`; returns the filters left as steps.
pub(crate) fn push_down(pattern: &mut Pattern, leading: Vec<LeadingFilter>) -> Vec<CStep> {
    let mut left = Vec::new();
    for filter in leading {
        match filter {
            LeadingFilter::Where(e) => {
                for conjunct in split_and(e) {
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
                    e.window = Some(match e.window {
                        Some((a, b)) => (a.max(from), b.min(to)),
                        None => (from, to),
                    });
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
        &mut e.filter
    } else {
        return Some(conjunct);
    };
    *filter = Some(CExpr::and(filter.take(), conjunct));
    None
}

/// The conjuncts of `e`, left to right.
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
