//! Bad and hostile queries give typed errors with a caret, or guarded partial results; never
//! a panic or a hang.

use std::time::{Duration, Instant};

use provdb::query::{Cursor, Datum, ErrorKind, Guard, Limits};
use provdb::Database;
use provdb_storage::{
    EdgeInput, EndpointInput, ExternalId, Placement, ProvClass, ProvRelation, RecordBatch, Value,
    VertexInput,
};

/// A ring a -> b -> c -> a of `read` edges plus a task with a pid.
fn ring() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path()).expect("open");
    let v = |id: &str, t: &str| VertexInput {
        ext_id: ExternalId::parse(id),
        type_name: t.into(),
        class: ProvClass::Entity,
        placement: Placement::default(),
        attrs: vec![("cf:pid".into(), Value::Int(7))],
    };
    let e = |id: &str, s: &str, d: &str| EdgeInput {
        ext_id: ExternalId::parse(id),
        type_name: "read".into(),
        relation: ProvRelation::Used,
        src: EndpointInput {
            ext_id: ExternalId::parse(s),
            type_hint: None,
        },
        dst: EndpointInput {
            ext_id: ExternalId::parse(d),
            type_hint: None,
        },
        placement: Placement::default(),
        attrs: vec![],
    };
    db.write(&RecordBatch {
        vertices: vec![v("a", "file"), v("b", "file"), v("c", "task")],
        edges: vec![e("e1", "a", "b"), e("e2", "b", "c"), e("e3", "c", "a")],
        ..Default::default()
    })
    .expect("write");
    (dir, db)
}

fn err(db: &Database, q: &str) -> provdb::query::QueryError {
    match db.query_cursor(q, Limits::default()) {
        Ok(c) => match c.collect_result() {
            Ok(r) => panic!("{q} ran: {:?}", r.rows),
            Err(e) => e,
        },
        Err(provdb::Error::Query(e)) => e,
        Err(other) => panic!("{q}: {other}"),
    }
}

#[test]
fn syntax_errors_point_at_the_place() {
    let (_d, db) = ring();
    let e = err(&db, "(a:file)\n  -[:read]-> (b\n  | count");
    let loc = e.location().expect("located");
    assert_eq!((loc.line, loc.column), (3, 3), "{e}");
    assert!(e.to_string().contains("expected `)`"), "{e}");
    assert!(e.to_string().contains("3 |   | count"), "{e}");
    assert!(e.to_string().contains("^"), "{e}");
    let e = err(&db, "(a) -[:read] (b)");
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert!(e.to_string().contains("expected `]->` or `]-`"), "{e}");
    let e = err(&db, "(a) | limt 3");
    assert!(e.to_string().contains("did you mean `limit`"), "{e}");
}

#[test]
fn unknown_names_get_did_you_mean() {
    let (_d, db) = ring();
    let e = err(&db, "(t:taks) | count");
    assert_eq!(e.kind(), ErrorKind::Unknown);
    assert_eq!(e.help(), Some("did you mean `task`?"), "{e}");
    assert_eq!(e.location().map(|l| l.column), Some(4));
    let e = err(&db, "(a) -[:raed]-> (b) | count");
    assert_eq!(e.help(), Some("did you mean `read`?"), "{e}");
    let e = err(&db, "(t:task) | return t.pdi");
    assert!(e.to_string().contains("unknown property `pdi`"), "{e}");
    assert_eq!(e.help(), Some("did you mean `pid`?"), "{e}");
    let e = err(&db, "(t:task) | return x.pid");
    assert!(e.to_string().contains("unknown variable `x`"), "{e}");
    let e = err(&db, "(t:task where name ~ '(') | count");
    assert!(e.to_string().contains("invalid regular expression"), "{e}");
    // A CamFlow type this archive has not seen: matches nothing, with a note.
    let r = db.query("(a) -[:clone]-> (b) | count").expect("runs");
    assert_eq!(r.rows[0].values[0], Datum::Int(0));
    assert_eq!(r.warnings[0].guard, Guard::AbsentType);
}

#[test]
fn unbounded_traversal_on_a_cycle_ends() {
    let (_d, db) = ring();
    let started = Instant::now();
    let r = db
        .query("(x {id:'a'}) -[*1..]-> (y) | count")
        .expect("runs");
    assert_eq!(r.rows[0].values[0], Datum::Int(2)); // b and c; a is the start
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let r = db
        .query("(x {id:'a'}) -[*]- (y) | return y.id")
        .expect("runs");
    assert_eq!(r.rows.len(), 2);
    // Walk semantics (min > 1) on a cycle stops at the depth guard, and says so.
    let limits = Limits {
        max_depth: 50,
        ..Limits::default()
    };
    let r = db
        .query_cursor("(x {id:'a'}) -[*3..]-> (y) | return y.id", limits)
        .expect("plans")
        .collect_result()
        .expect("runs");
    assert_eq!(r.rows.len(), 3);
    assert!(
        r.warnings.iter().any(|w| w.guard == Guard::MaxDepth),
        "{:?}",
        r.warnings
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn guards_are_reported() {
    let (_d, db) = ring();
    let limits = Limits {
        max_rows: 1,
        ..Limits::default()
    };
    let r = db
        .query_cursor("(v) | return v.id", limits)
        .expect("plans")
        .collect_result()
        .expect("runs");
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.warnings[0].guard, Guard::MaxRows);
    let limits = Limits {
        timeout: Some(Duration::ZERO),
        ..Limits::default()
    };
    let c = Cursor::new(
        db.store(),
        "(a) -[*0..]- (b) -[*0..]- (c) -[*0..]- (d)",
        limits,
    )
    .expect("plans");
    let r = c.collect_result().expect("partial result");
    assert!(
        r.warnings.iter().any(|w| w.guard == Guard::Timeout),
        "{:?}",
        r.warnings
    );
    let limits = Limits {
        max_visited: 1,
        ..Limits::default()
    };
    let r = db
        .query_cursor("(x {id:'a'}) -[*1..]-> (y) | count", limits)
        .expect("plans")
        .collect_result()
        .expect("runs");
    assert!(
        r.warnings.iter().any(|w| w.guard == Guard::MaxVisited),
        "{:?}",
        r.warnings
    );
}

#[test]
fn hostile_text_never_panics() {
    let (_d, db) = ring();
    let forms = [
        "() -[e:read]-> () | count",
        "(v {id:'a'}) <-[*1..3]- (a) | dedup a | count",
        "(t:task) -[:read*1..]-> (c:file) | where t.pid = 7 and not (c.id in ['a', 'b']) | dedup c | order by c.id desc | skip 0 | limit 5 | return distinct c.pid as p",
        "(p:task) -[e:read]-> (q) | during @'2024-05-01T09:00'..@'2024-05-01T10:00' | return p.pid",
    ];
    for f in forms {
        db.query(f).unwrap_or_else(|e| panic!("{f}\n{e}"));
        // Every prefix of a valid query: an error or a result, not a panic.
        for (i, _) in f.char_indices() {
            let _ = db.query(&f[..i]);
        }
    }
    let deep = format!(
        "(a where {}1 = 1{}) | count",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(db.query(&deep).is_err());
    let lists = format!(
        "(a where a.pid in {}1{}) | count",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(db.query(&lists).is_err());
    // Long flat chains: each is a tree as deep as it is long (5,000 `and`s overflowed the
    // stack before the limit). Thrown on a thread with a 2 MiB stack, a library's default.
    let chains = [
        format!(
            "(a where {}) | count",
            vec!["a.pid = 1"; 5_000].join(" and ")
        ),
        format!(
            "(a where {}) | count",
            vec!["a.pid = 1"; 5_000].join(" or ")
        ),
        format!("(a {{{}}}) | count", vec!["pid: 1"; 5_000].join(", ")),
    ];
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn_scoped(s, || {
                for q in &chains {
                    let err = db.query(q).unwrap_err().to_string();
                    assert!(err.contains("more than 256 conditions"), "{err}");
                }
                // 256 conditions are answered.
                let q = format!("(a where {}) | count", vec!["a.pid = 1"; 256].join(" and "));
                db.query(&q).unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    });
    for junk in [
        "\u{0}",
        "(((",
        "-[",
        "]->",
        "'",
        "(a) | limit 99999999999999999999",
        "(a {id: @'x'})",
        "(a) -[*4294967296]-> (b)",
        "(a) | during last 5y",
        "@",
        "(é)",
    ] {
        assert!(db.query(junk).is_err(), "{junk}");
    }
}
