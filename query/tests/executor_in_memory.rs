//! The planner and executor over an in-memory `GraphRead` (not RocksDB): a small graph built
//! by hand, and answers worked out by hand from its drawing.
//!
//! ```text
//! t1 -write(e1)-> f1 -read(e2)-> t2 -write(e3)-> f2 -read(e4)-> t3 -write(e6)-> f3
//!  \______________________clone(e5)________________________/^
//! ```

mod memory_graph;

use memory_graph::MemoryGraph;
use provdb_query::{query, Datum};

fn drawing() -> MemoryGraph {
    let mut g = MemoryGraph::default();
    for (ext, kind) in [
        ("t1", "task"),
        ("t2", "task"),
        ("t3", "task"),
        ("f1", "file"),
        ("f2", "file"),
        ("f3", "file"),
    ] {
        g.vertex(ext, kind);
    }
    g.edge("e1", "write", "t1", "f1", 10);
    g.edge("e2", "read", "f1", "t2", 20);
    g.edge("e3", "write", "t2", "f2", 30);
    g.edge("e4", "read", "f2", "t3", 40);
    g.edge("e5", "clone", "t1", "t3", 50);
    g.edge("e6", "write", "t3", "f3", 60);
    g
}

/// The first column of every row, as text.
fn ids(g: &MemoryGraph, text: &str) -> Vec<String> {
    let result = query(g, text).unwrap_or_else(|e| panic!("{text}: {e}"));
    result
        .rows
        .iter()
        .map(|row| match &row.values[0] {
            Datum::Str(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn ancestors_within_three_hops() {
    // f3 <- t3 (1 hop); t3 <- f2, t3 <- t1 (2 hops); f2 <- t2 (3 hops). f1 is 4 hops away.
    let g = drawing();
    let got = ids(&g, "(v {id:'f3'}) <-[*1..3]- (a) | dedup a | return a.id");
    assert_eq!(sorted(got), ["f2", "t1", "t2", "t3"]);
}

#[test]
fn descendants_within_five_hops() {
    // From t1: f1, t3; then t2, f3; then f2 (t3 again via f2 is not new).
    let g = drawing();
    let got = ids(&g, "(v {id:'t1'}) -[*1..5]-> (d) | dedup d | return d.id");
    assert_eq!(sorted(got), ["f1", "f2", "f3", "t2", "t3"]);
}

#[test]
fn typed_one_hop_neighbours() {
    let g = drawing();
    assert_eq!(
        ids(&g, "(v {id:'t1'}) -[:read|write]-> (n) | return n.id"),
        ["f1"]
    );
    assert_eq!(
        sorted(ids(&g, "(v {id:'t1'}) -[]-> (n) | return n.id")),
        ["f1", "t3"]
    );
    assert_eq!(
        ids(&g, "(v {id:'t3'}) <-[:clone]- (n) | return n.id"),
        ["t1"]
    );
}

#[test]
fn an_id_on_another_node_than_the_start_ends_paths_at_that_vertex() {
    let g = drawing();
    // t1 reaches f2 forwards only by t1 -> f1 -> t2 -> f2.
    assert_eq!(
        ids(&g, "(a {id:'t1'}) -[*1..5]-> (b {id:'f2'}) | return b.id"),
        ["f2"]
    );
    // A variable-length hop reaches each vertex once (t3 first by clone, at 1 hop); the
    // `cf:` prefix is optional.
    assert_eq!(
        ids(
            &g,
            "(a {id:'t1'}) -[*1..5]-> (b {id:'cf:t3'}) | return b.id"
        ),
        ["t3"]
    );
    // The same condition written as a `where`, either way round.
    assert_eq!(
        ids(
            &g,
            "(a {id:'t1'}) -[]-> (b) | where 't3' = b.id | return b.id"
        ),
        ["t3"]
    );
    // Nothing leaves f3, and no vertex has the id `nowhere`.
    assert_eq!(
        ids(&g, "(a {id:'f3'}) -[*1..5]-> (b {id:'t1'}) | count"),
        ["0"]
    );
    assert_eq!(
        ids(&g, "(a {id:'t1'}) -[*1..5]-> (b {id:'nowhere'}) | count"),
        ["0"]
    );
    // On the start node, its own id holds and another id does not.
    assert_eq!(
        ids(&g, "(a {id:'t1'}) | where a.id = 't1' | return a.id"),
        ["t1"]
    );
    assert_eq!(ids(&g, "(a {id:'t1'}) | where a.id = 't2' | count"), ["0"]);
}

#[test]
fn an_edge_id_names_one_edge_in_either_orientation_and_keeps_its_type() {
    let g = drawing();
    // e3 is t2 -write-> f2.
    assert_eq!(ids(&g, "() -[e {id:'e3'}]-> () | return e.id"), ["e3"]);
    assert_eq!(ids(&g, "(a) -[e {id:'cf:e3'}]-> (b) | return a.id"), ["t2"]);
    assert_eq!(ids(&g, "(a) <-[e {id:'e3'}]- (b) | return a.id"), ["f2"]);
    assert_eq!(
        sorted(ids(&g, "(a) -[e {id:'e3'}]- (b) | return a.id")),
        ["f2", "t2"]
    );
    // The edge's type still counts, as do the nodes' conditions.
    assert_eq!(ids(&g, "() -[e:read {id:'e3'}]-> () | count"), ["0"]);
    assert_eq!(ids(&g, "() -[e:write {id:'e3'}]-> () | count"), ["1"]);
    assert_eq!(ids(&g, "(a:file) -[e {id:'e3'}]-> () | count"), ["0"]);
    // From a start vertex, an edge id picks among its edges.
    assert_eq!(
        ids(&g, "(a {id:'t1'}) -[e {id:'e5'}]-> (b) | return b.id"),
        ["t3"]
    );
    assert_eq!(ids(&g, "(a {id:'t2'}) -[e {id:'e1'}]-> (b) | count"), ["0"]);
    assert_eq!(ids(&g, "() -[e {id:'nowhere'}]-> () | count"), ["0"]);
}

#[test]
fn a_list_of_ids_names_those_vertices_or_edges() {
    let g = drawing();
    // As the start (an id the archive lacks names nothing), with or without `cf:`.
    assert_eq!(
        sorted(ids(&g, "(v {id: ['t2', 'cf:f3', 'nope']}) | return v.id")),
        ["f3", "t2"]
    );
    // As the end of paths from t1, which reaches f2 and f3 forwards.
    assert_eq!(
        sorted(ids(
            &g,
            "(a {id:'t1'}) -[*1..5]-> (b {id: ['f2', 'f3', 't1']}) | return b.id"
        )),
        ["f2", "f3"]
    );
    // As `in`, on a scan and after a hop.
    assert_eq!(
        ids(&g, "(v) | where v.id in ['cf:t2'] | return v.id"),
        ["t2"]
    );
    assert_eq!(
        ids(
            &g,
            "(a {id:'t1'}) -[]-> (b) | where b.id in ['cf:t3', 'f3'] | return b.id"
        ),
        ["t3"]
    );
    // On an edge: e1 ends at f1, e6 at f3.
    assert_eq!(
        sorted(ids(&g, "() -[e {id: ['e1', 'cf:e6']}]-> (b) | return b.id")),
        ["f1", "f3"]
    );
}

#[test]
fn a_time_window_over_one_hop_keeps_the_edges_in_it_with_their_types() {
    // Edge times: e1..e6 at 10..60 seconds after the epoch; the window holds e3..e6.
    let g = drawing();
    let window = "during @'1970-01-01T00:00:30'..@'1970-01-01T00:01:00'";
    assert_eq!(
        sorted(ids(&g, &format!("() -[e]-> () | {window} | return e.id"))),
        ["e3", "e4", "e5", "e6"]
    );
    // Narrower windows, so that the window (not a type index) is where matching starts: the
    // edge's and the nodes' types still hold. 40..60 s: e4 read, e5 clone, e6 write.
    let narrow = "during @'1970-01-01T00:00:40'..@'1970-01-01T00:01:00'";
    assert_eq!(
        sorted(ids(
            &g,
            &format!("() -[e:write|read]-> () | {narrow} | return e.id")
        )),
        ["e4", "e6"]
    );
    // 50..60 s: e5 (t1 -> t3) and e6 (t3 -> f3), both from a task.
    let narrowest = "during @'1970-01-01T00:00:50'..@'1970-01-01T00:01:00'";
    assert_eq!(
        sorted(ids(
            &g,
            &format!("(a:task) -[e]-> () | {narrowest} | return e.id")
        )),
        ["e5", "e6"]
    );
    assert_eq!(
        ids(&g, &format!("(a:file) -[e]-> () | {narrowest} | count")),
        ["0"]
    );
    // A comparison of the edge's time is the same window, either way round.
    assert_eq!(
        sorted(ids(&g, "() -[e]-> () | where e.time > 40 | return e.id")),
        ["e5", "e6"]
    );
    assert_eq!(
        sorted(ids(&g, "() -[e]-> () | where 20 >= e.time | return e.id")),
        ["e1", "e2"]
    );
    assert_eq!(
        ids(
            &g,
            "() -[e]-> () | where e.time = @'1970-01-01T00:00:30' | return e.id"
        ),
        ["e3"]
    );
    // Either way round, each edge from each end.
    assert_eq!(ids(&g, &format!("(a) -[e]- (b) | {window} | count")), ["8"]);
    // A window holding nothing.
    assert_eq!(
        ids(
            &g,
            "() -[e]-> () | during @'1970-01-01T00:01:01'..@'1970-01-02T00:00:00' | count"
        ),
        ["0"]
    );
}

#[test]
fn counts_from_the_type_indexes() {
    let g = drawing();
    assert_eq!(ids(&g, "() -[:read]-> () | count"), ["2"]);
    assert_eq!(ids(&g, "() -[:write]-> () | count"), ["3"]);
    assert_eq!(ids(&g, "(t:task) | count"), ["3"]);
}

#[test]
fn unknown_names_are_errors_that_say_where() {
    let g = drawing();
    let err = query(&g, "(t:tsak) | count").unwrap_err().to_string();
    assert!(err.contains("tsak"), "{err}");
}

#[test]
fn a_limit_over_a_type_stops_after_its_rows() {
    let mut g = MemoryGraph::default();
    for i in 0..20_000 {
        g.vertex(&format!("task-{i:05}"), "task");
    }
    let before = g.vertex_reads.get();
    let got = ids(&g, "(t:task) | limit 3 | return t.id");
    assert_eq!(got, ["task-00000", "task-00001", "task-00002"]);
    let reads = g.vertex_reads.get() - before;
    assert!(
        reads < 100,
        "the anchor is iterated lazily: {reads} vertex reads for 3 rows"
    );
}

#[test]
fn a_storage_failure_keeps_its_type() {
    let mut g = drawing();
    g.corrupt = Some(provdb_storage::VertexId(2)); // t3
    let err = query(&g, "(v {id:'t3'}) | return v.type").unwrap_err();
    assert_eq!(err.kind(), provdb_query::ErrorKind::Storage);
    assert!(
        matches!(
            err.storage_error(),
            Some(provdb_storage::ReadError::Corruption {
                what: "vertex record",
                ..
            })
        ),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn and_or_chains_evaluate_left_to_right_as_boolean_logic() {
    let g = drawing();
    let is = |id: &str| format!("a.id = '{id}'");
    let chain = |ids: &[&str], op: &str| ids.iter().map(|i| is(i)).collect::<Vec<_>>().join(op);
    let ask = |cond: String| sorted(ids(&g, &format!("(a where {cond}) | return a.id")));
    assert_eq!(ask(chain(&["t1", "f2", "t3"], " or ")), ["f2", "t1", "t3"]);
    assert_eq!(
        ask(chain(&["t1", "t1", "f2"], " and ")),
        Vec::<String>::new()
    );
    assert_eq!(ask(chain(&["t2", "t2", "t2"], " and ")), ["t2"]);
    assert_eq!(
        ask(format!(
            "({}) and ({})",
            chain(&["t1", "f1"], " or "),
            chain(&["f1", "t2"], " or ")
        )),
        ["f1"]
    );
    assert_eq!(
        ask(format!("not ({})", chain(&["t1", "t2", "t3"], " or "))),
        ["f1", "f2", "f3"]
    );
    // Long chains (the deepest trees the parser builds): only the last operand decides.
    let misses = vec!["none"; 200];
    let last_true: Vec<&str> = misses.iter().copied().chain(["f3"]).collect();
    assert_eq!(ask(chain(&last_true, " or ")), ["f3"]);
    let all_true = vec!["t2"; 200];
    let last_false: Vec<&str> = all_true.iter().copied().chain(["t3"]).collect();
    assert_eq!(ask(chain(&last_false, " and ")), Vec::<String>::new());
    assert_eq!(ask(chain(&all_true, " and ")), ["t2"]);
}
