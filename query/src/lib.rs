//! # provdb-query
//!
//! The traversal query language of provdb: a lexer, a recursive-descent parser with
//! line/column/caret errors, a planner in passes (bind names, compile expressions, push
//! filters down into the pattern, choose the cheapest anchor from the indexes), and a
//! streaming executor ([`Cursor`]) with guards (maximum depth, rows, visited vertices, time).
//! This crate root runs them in that order: parse, then [`plan`], then execute a [`Plan`].
//! It runs against [`provdb_storage::GraphRead`] and knows nothing of RocksDB.
//!
//! ```text
//! (t:task) -[:clone|exec_task*1..]-> (c:task) | where t.pid = 3666 | dedup c | return c.pid
//! ```
//!
//! Arrows follow information flow as CamFlow stores it (sender -> receiver): `-[...]->`
//! forward, `<-[...]-` backward, `-[...]-` either way. See `docs/query-language.md`.
//!
//! ```
//! use provdb_storage::*;
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//! let v = |id: &str, t: &str, attrs: Vec<(Name, Value)>| VertexInput {
//!     ext_id: ExternalId::parse(id), type_name: t.into(), class: ProvClass::Entity,
//!     placement: Placement::default(), attrs,
//! };
//! let e = |id: &str, t: &str, s: &str, d: &str| EdgeInput {
//!     ext_id: ExternalId::parse(id), type_name: t.into(), relation: ProvRelation::Used,
//!     src: EndpointInput { ext_id: ExternalId::parse(s), type_hint: None },
//!     dst: EndpointInput { ext_id: ExternalId::parse(d), type_hint: None },
//!     placement: Placement::default(), attrs: vec![],
//! };
//! store.write(&RecordBatch {
//!     vertices: vec![
//!         v("p1", "path", vec![("cf:pathname".into(), Value::Str("/etc/passwd".into()))]),
//!         v("f1", "file", vec![]),
//!         v("t1", "task", vec![("cf:pid".into(), Value::Int(42))]),
//!     ],
//!     edges: vec![e("n1", "named", "p1", "f1"), e("r1", "read", "f1", "t1")],
//!     ..Default::default()
//! })?;
//! let result = provdb_query::query(&store, "(f:file) -[:read]-> (t:task) | return f.name, t.pid")?;
//! assert_eq!(result.columns, ["f.name", "t.pid"]);
//! assert_eq!(result.rows[0].values[0].to_string(), "/etc/passwd");
//! assert_eq!(result.rows[0].values[1], provdb_query::Datum::Int(42));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod ast;
pub mod builder;
mod error;
mod executor;
mod lexer;
mod naming;
mod parser;
mod plan;
mod time;
mod value;

pub use error::{ErrorKind, Location, QueryError, Span};
pub use executor::{Cursor, Guard, Limits, QueryResult, Row, Subgraph, Warning};
pub use parser::{parse, KEYWORDS, STEP_KEYWORDS};
pub use plan::{plan, Plan, EDGE_PROPERTIES, VERTEX_PROPERTIES};
pub use time::parse_time;
pub use value::{Datum, EdgeRef, VertexRef};

use provdb_storage::GraphRead;

// Here, not in the executor, a query goes from text to rows: parse, then plan against the
// archive, then execute. The executor only ever sees a `Plan`.
impl<'g> Cursor<'g> {
    /// Parses `text`, plans it against `g` and starts it.
    pub fn new(g: &'g dyn GraphRead, text: &str, limits: Limits) -> Result<Cursor<'g>, QueryError> {
        let query = parse(text)?;
        let plan = plan(g, text, &query, limits.max_depth)?;
        Ok(Cursor::from_plan(g, plan, limits))
    }
}

/// Runs `text` on `g` with the default [`Limits`] and collects the result.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let store = provdb_storage::Store::open(dir.path())?;
/// let r = provdb_query::query(&store, "() -[]-> () | count")?;
/// assert_eq!(r.columns, ["count"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn query(g: &dyn GraphRead, text: &str) -> Result<QueryResult, QueryError> {
    Cursor::new(g, text, Limits::default())?.collect_result()
}

/// Runs a syntax tree (e.g. from [`builder`]) on `g`.
///
/// ```
/// use provdb_query::builder::{node, Traversal};
/// # let dir = tempfile::tempdir()?;
/// # let store = provdb_storage::Store::open(dir.path())?;
/// let q = Traversal::new(node("v")).count().build();
/// let r = provdb_query::run(&store, &q, provdb_query::Limits::default())?.collect_result()?;
/// assert_eq!(r.rows[0].values[0], provdb_query::Datum::Int(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run<'g>(
    g: &'g dyn GraphRead,
    query: &ast::Query,
    limits: Limits,
) -> Result<Cursor<'g>, QueryError> {
    let p = plan(g, "", query, limits.max_depth)?;
    Ok(Cursor::from_plan(g, p, limits))
}

/// Resolves vertex names the way the `name`/`path` property does: a vertex's own
/// `pathname`, else that of a path vertex `named` to it or to an older version of it.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let store = provdb_storage::Store::open(dir.path())?;
/// let namer = provdb_query::Namer::new(&store)?;
/// assert_eq!(namer.name_of(provdb_storage::VertexId(0))?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Namer<'g>(Cursor<'g>);

impl<'g> Namer<'g> {
    /// A namer over `g`.
    pub fn new(g: &'g dyn GraphRead) -> Result<Namer<'g>, QueryError> {
        Ok(Namer(Cursor::new(g, "(v) | limit 0", Limits::default())?))
    }

    /// The name of vertex `v`, if it has one.
    pub fn name_of(&self, v: provdb_storage::VertexId) -> Result<Option<String>, QueryError> {
        self.0.name_of(v)
    }
}
