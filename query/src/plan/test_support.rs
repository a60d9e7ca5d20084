//! What the planner's unit tests share: a small in-memory archive with counts known by hand,
//! and each pass run on query text.

#[path = "../../tests/memory_graph/mod.rs"]
pub(super) mod memory_graph;

use provdb_storage::Value;

use super::bind::{bind, BoundQuery};
use super::compile::{compile, CStep, CompileContext, CompiledQuery, Pattern};
use super::push_down::push_down;
use crate::error::QueryError;
use crate::parser::parse;
pub(super) use memory_graph::MemoryGraph;

/// The depth guard of the tests' plans.
pub(super) const MAX_DEPTH: u32 = 32;
/// The "now" of the tests' plans (Unix seconds).
pub(super) const NOW: i64 = 1_000_000;

/// 3 tasks, 5 files, 1 path; 4 `write`, 2 `read`, 1 `clone`, 1 `named` edges:
///
/// ```text
/// t1 -write-> f1 -read-> t2 -write-> f2 -read-> t3 -write-> f3
///  \___________________clone___________________/^  \-write-> f4
/// p1 -named-> f5
/// ```
///
/// `t1` has `cf:pid` 3666, `f1` has `cf:pathname` `/etc/passwd`.
pub(super) fn archive() -> MemoryGraph {
    let mut g = MemoryGraph::drawn(
        &[
            ("task", &["t1", "t2", "t3"]),
            ("file", &["f1", "f2", "f3", "f4", "f5"]),
            ("path", &["p1"]),
        ],
        &[
            ("e1", "write", "t1", "f1", 10),
            ("e2", "read", "f1", "t2", 20),
            ("e3", "write", "t2", "f2", 30),
            ("e4", "read", "f2", "t3", 40),
            ("e5", "clone", "t1", "t3", 50),
            ("e6", "write", "t3", "f3", 60),
            ("e7", "write", "t3", "f4", 70),
            ("e8", "named", "p1", "f5", 80),
        ],
    );
    g.attr(provdb_storage::VertexId(0), "cf:pid", Value::Int(3666));
    g.attr(
        provdb_storage::VertexId(3),
        "cf:pathname",
        Value::Str("/etc/passwd".into()),
    );
    g
}

/// Pass 1 on `text`.
pub(super) fn bound(g: &MemoryGraph, text: &str) -> Result<BoundQuery, QueryError> {
    bind(g, text, &parse(text)?)
}

/// Passes 1 and 2 on `text`, which must bind.
pub(super) fn compiled(g: &MemoryGraph, text: &str) -> Result<CompiledQuery, QueryError> {
    let cx = CompileContext {
        text,
        max_depth: MAX_DEPTH,
        now: NOW,
    };
    compile(bound(g, text).expect("binds"), cx)
}

/// Passes 1 to 3 on `text`, which must compile: the pattern and every step after it.
pub(super) fn pushed_down(g: &MemoryGraph, text: &str) -> (Pattern, Vec<CStep>) {
    let c = compiled(g, text).expect("compiles");
    let mut pattern = c.pattern;
    let mut steps = push_down(&mut pattern, c.leading);
    steps.extend(c.steps);
    (pattern, steps)
}
