//! The streaming executor: a depth-first pipeline of iterators over bindings, pulled one row
//! at a time by [`Cursor`], so that `limit 10` stops the traversal after ten rows.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;

// Visited, emitted and dedup sets are probed for every row: foldhash (seeded per process, so
// values from possibly compromised machines cannot choose collisions) where SipHash was ~3%
// of a first-touch ancestry query.
use foldhash::{HashMap, HashMapExt as _, HashSet, HashSetExt as _};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use provdb_storage::{
    find_attr, AdjacencyCursor, Direction, Edge, EdgeId, ExternalId, GraphRead, TypeId, Vertex,
    VertexId,
};

use crate::error::{ErrorKind, QueryError};
use crate::naming;
use crate::plan::{Anchor, CEdge, CExpr, CNode, CStep, Plan, PropKey, Stage};
use crate::value::{DKey, Datum, EdgeRef, VertexRef};

/// Guards of a query run. Hitting one ends the result early with a [`Warning`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum hops of a variable-length pattern (`*1..` means `*1..max_depth`). Default 32.
    pub max_depth: u32,
    /// Maximum rows returned. Default 100,000.
    pub max_rows: u64,
    /// Wall-clock budget. Default 30 s.
    pub timeout: Option<Duration>,
    /// Maximum vertices one variable-length expansion may visit. Default 5,000,000.
    pub max_visited: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 32,
            max_rows: 100_000,
            timeout: Some(Duration::from_secs(30)),
            max_visited: 5_000_000,
        }
    }
}

/// Which guard a [`Warning`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guard {
    /// A variable-length hop stopped at the maximum depth with more to explore.
    MaxDepth,
    /// The result was cut at the maximum number of rows.
    MaxRows,
    /// The query ran out of time; the rows so far are returned.
    Timeout,
    /// A variable-length expansion visited the maximum number of vertices.
    MaxVisited,
    /// A type name of the query does not occur in the archive (it matches nothing).
    AbsentType,
}

/// A guard that was hit: the result is partial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The guard.
    pub guard: Guard,
    /// What happened, for people.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One result row: its values (one per column) and the vertices and edges it matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Values, one per column.
    pub values: Vec<Datum>,
    /// Vertices of the match (every node of the pattern).
    pub vertices: Vec<VertexId>,
    /// Edges of the match (every edge of every hop, variable-length hops included).
    pub edges: Vec<EdgeId>,
}

#[derive(Debug, Clone)]
pub(crate) enum Bound {
    None,
    V(VertexId),
    E(EdgeId),
    /// A variable-length hop: each edge and the vertex it reached.
    P(Rc<Vec<(EdgeId, VertexId)>>),
}

type Binding = Vec<Bound>;
type Res<T> = Result<T, QueryError>;
type BindIter<'g> = Box<dyn Iterator<Item = Res<Binding>> + 'g>;

struct Rec {
    b: Binding,
    vals: Option<Vec<Datum>>,
}

type RecIter<'g> = Box<dyn Iterator<Item = Res<Rec>> + 'g>;

const CACHE_CAP: usize = 200_000;

pub(crate) struct Exec<'g> {
    g: &'g dyn GraphRead,
    plan: Plan,
    limits: Limits,
    deadline: Option<Instant>,
    vcache: RefCell<HashMap<VertexId, Rc<Vertex>>>,
    ecache: RefCell<HashMap<EdgeId, Rc<Edge>>>,
    names: RefCell<HashMap<VertexId, Option<String>>>,
    /// The edge types naming follows, resolved at the first name asked for (most queries ask
    /// none, and resolving reads every edge type).
    naming: OnceCell<naming::NamingEdges>,
    /// External ids read ahead for the rows a `return` is about to produce.
    ext_ids: RefCell<HashMap<VertexId, ExternalId>>,
    warnings: RefCell<Vec<Warning>>,
    ticks: Cell<u64>,
}

fn guard_error(msg: &str) -> QueryError {
    QueryError::new(ErrorKind::Limit, msg.to_owned())
}

impl<'g> Exec<'g> {
    fn warn(&self, guard: Guard, message: String) {
        let mut w = self.warnings.borrow_mut();
        if guard == Guard::AbsentType {
            w.push(Warning { guard, message });
            return;
        }
        if !w.iter().any(|x| x.guard == guard) {
            w.push(Warning { guard, message });
        }
    }

    fn tick(&self) -> Res<()> {
        let t = self.ticks.get().wrapping_add(1);
        self.ticks.set(t);
        if t % 64 == 1 {
            if let (Some(d), Some(limit)) = (self.deadline, self.limits.timeout) {
                if Instant::now() > d {
                    self.warn(
                        Guard::Timeout,
                        format!(
                            "timeout: stopped after {:.1} s; the result is partial",
                            limit.as_secs_f64()
                        ),
                    );
                    return Err(guard_error("timeout"));
                }
            }
        }
        Ok(())
    }

    fn vertex(&self, id: VertexId) -> Res<Option<Rc<Vertex>>> {
        if let Some(v) = self.vcache.borrow().get(&id) {
            return Ok(Some(v.clone()));
        }
        let Some(v) = self.g.vertex(id)? else {
            return Ok(None);
        };
        let v = Rc::new(v);
        let mut c = self.vcache.borrow_mut();
        if c.len() >= CACHE_CAP {
            c.clear();
        }
        c.insert(id, v.clone());
        Ok(Some(v))
    }

    fn edge(&self, id: EdgeId) -> Res<Option<Rc<Edge>>> {
        if let Some(e) = self.ecache.borrow().get(&id) {
            return Ok(Some(e.clone()));
        }
        let Some(e) = self.g.edge(id)? else {
            return Ok(None);
        };
        let e = Rc::new(e);
        let mut c = self.ecache.borrow_mut();
        if c.len() >= CACHE_CAP {
            c.clear();
        }
        c.insert(id, e.clone());
        Ok(Some(e))
    }

    /// Reads the external ids of the vertices at `slots` of `recs` in one batch, for a
    /// `return` of their ids.
    fn read_ahead_ids(&self, recs: &VecDeque<Res<Rec>>, slots: &[usize]) -> Res<()> {
        let mut wanted = Vec::new();
        {
            let known = self.ext_ids.borrow();
            let records = self.vcache.borrow();
            for rec in recs.iter().flatten() {
                for &s in slots {
                    if let Some(Bound::V(v)) = rec.b.get(s) {
                        if !known.contains_key(v) && !records.contains_key(v) {
                            wanted.push(*v);
                        }
                    }
                }
            }
        }
        if wanted.len() < 2 {
            return Ok(());
        }
        let found = self.g.vertex_external_ids(&wanted)?;
        let mut known = self.ext_ids.borrow_mut();
        if known.len() + wanted.len() > CACHE_CAP {
            known.clear();
        }
        for (v, ext) in wanted.into_iter().zip(found) {
            if let Some(ext) = ext {
                known.insert(v, ext);
            }
        }
        Ok(())
    }

    /// The name of a vertex ([`crate::naming`]), cached.
    pub(crate) fn name_of(&self, id: VertexId) -> Res<Option<String>> {
        if let Some(n) = self.names.borrow().get(&id) {
            return Ok(n.clone());
        }
        let edges = self
            .naming
            .get_or_init(|| naming::NamingEdges::resolve(self.g));
        let found = naming::name_of(self.g, edges, id, |v| self.vertex(v))?;
        let mut names = self.names.borrow_mut();
        if names.len() >= CACHE_CAP {
            names.clear();
        }
        names.insert(id, found.clone());
        Ok(found)
    }

    fn vertex_prop(&self, id: VertexId, key: &PropKey) -> Res<Datum> {
        match key {
            PropKey::Name => return Ok(self.name_of(id)?.map_or(Datum::Null, Datum::Str)),
            // The id has its own small table: returning ids never decodes vertex records,
            // unless this query already holds the record.
            PropKey::Id if !self.vcache.borrow().contains_key(&id) => {
                if let Some(ext) = self.ext_ids.borrow().get(&id) {
                    return Ok(Datum::Str(ext.to_text()));
                }
                return Ok(self
                    .g
                    .vertex_external_id(id)?
                    .map_or(Datum::Null, |ext| Datum::Str(ext.to_text())));
            }
            _ => {}
        }
        let Some(v) = self.vertex(id)? else {
            return Ok(Datum::Null);
        };
        let opt = |x: Option<u32>| x.map_or(Datum::Null, |x| Datum::Int(i64::from(x)));
        Ok(match key {
            PropKey::Id => Datum::Str(v.ext_id.to_text()),
            PropKey::Type => Datum::Str(v.type_name.to_string()),
            PropKey::Class => Datum::Str(v.class.as_str().to_owned()),
            PropKey::Machine => opt(v.placement.machine),
            PropKey::Boot => opt(v.placement.boot),
            PropKey::Version => opt(v.placement.version),
            PropKey::Time => v.placement.time.map_or(Datum::Null, Datum::Time),
            PropKey::ObjectId => v.placement.object_id.map_or(Datum::Null, |o| {
                i64::try_from(o).map_or(Datum::Str(o.to_string()), Datum::Int)
            }),
            PropKey::Stub => Datum::Bool(v.stub),
            PropKey::Relation | PropKey::Name => Datum::Null,
            PropKey::Attr(k) => find_attr(&v.attrs, k).map_or(Datum::Null, Datum::from_value),
        })
    }

    fn edge_prop(&self, id: EdgeId, key: &PropKey) -> Res<Datum> {
        let Some(e) = self.edge(id)? else {
            return Ok(Datum::Null);
        };
        let opt = |x: Option<u32>| x.map_or(Datum::Null, |x| Datum::Int(i64::from(x)));
        Ok(match key {
            PropKey::Id => Datum::Str(e.ext_id.to_text()),
            PropKey::Type => Datum::Str(e.type_name.to_string()),
            PropKey::Relation => Datum::Str(e.relation.as_str().to_owned()),
            PropKey::Machine => opt(e.placement.machine),
            PropKey::Boot => opt(e.placement.boot),
            PropKey::Time => e.placement.time.map_or(Datum::Null, Datum::Time),
            PropKey::Attr(k) => find_attr(&e.attrs, k).map_or(Datum::Null, Datum::from_value),
            _ => Datum::Null,
        })
    }

    fn vertex_ref(&self, id: VertexId) -> Res<Datum> {
        let Some(v) = self.vertex(id)? else {
            return Ok(Datum::Null);
        };
        Ok(Datum::Vertex(VertexRef {
            id,
            ext_id: v.ext_id.to_string(),
            type_name: v.type_name.to_string(),
            name: self.name_of(id)?,
        }))
    }

    fn edge_ref(&self, id: EdgeId) -> Res<Datum> {
        let Some(e) = self.edge(id)? else {
            return Ok(Datum::Null);
        };
        Ok(Datum::Edge(EdgeRef {
            id,
            ext_id: e.ext_id.to_string(),
            type_name: e.type_name.to_string(),
            src: e.src,
            dst: e.dst,
            time: e.placement.time,
        }))
    }

    fn eval(&self, e: &CExpr, b: &Binding) -> Res<Datum> {
        Ok(match e {
            CExpr::Lit(d) => d.clone(),
            CExpr::Var(s) => match b.get(*s) {
                Some(Bound::V(v)) => self.vertex_ref(*v)?,
                Some(Bound::E(x)) => self.edge_ref(*x)?,
                Some(Bound::P(p)) => match p.last() {
                    Some((x, _)) => self.edge_ref(*x)?,
                    None => Datum::Null,
                },
                _ => Datum::Null,
            },
            CExpr::Prop(s, k) => match b.get(*s) {
                Some(Bound::V(v)) => self.vertex_prop(*v, k)?,
                Some(Bound::E(x)) => self.edge_prop(*x, k)?,
                Some(Bound::P(p)) => match p.last() {
                    Some((x, _)) => self.edge_prop(*x, k)?,
                    None => Datum::Null,
                },
                _ => Datum::Null,
            },
            CExpr::Cmp(op, a, c) => {
                let (x, y) = (self.eval(a, b)?, self.eval(c, b)?);
                Datum::Bool(op.holds(x.compare(&y)))
            }
            CExpr::Match(a, re) => match self.eval(a, b)? {
                Datum::Null => Datum::Bool(false),
                d => Datum::Bool(re.is_match(&d.to_string())),
            },
            CExpr::In(a, list) => {
                let x = self.eval(a, b)?;
                Datum::Bool(list.iter().any(|l| x.loosely_equals(l)))
            }
            CExpr::And(..) | CExpr::Or(..) => Datum::Bool(self.chain(e, b)?),
            CExpr::Not(a) => Datum::Bool(!self.truthy(a, b)?),
            CExpr::IsVertex { slot, vertices } => Datum::Bool(
                matches!(b.get(*slot), Some(Bound::V(v)) if vertices.binary_search(v).is_ok()),
            ),
            CExpr::IsEdge { slot, edges } => Datum::Bool(
                matches!(b.get(*slot), Some(Bound::E(x)) if edges.binary_search(x).is_ok()),
            ),
        })
    }

    /// An `and` (or `or`) chain, evaluated left to right along its left spine without
    /// recursing on it: the parser builds `a and b and c` as `(a and b) and c`, a tree as deep
    /// as the chain is long (up to 256 conditions), and recursing on it overflowed a 2 MiB
    /// thread stack in debug builds. Stops at the first operand that decides.
    fn chain(&self, e: &CExpr, b: &Binding) -> Res<bool> {
        let is_and = matches!(e, CExpr::And(..));
        let mut rights = Vec::new();
        let mut leftmost = e;
        while let (CExpr::And(l, r), true) | (CExpr::Or(l, r), false) = (leftmost, is_and) {
            rights.push(r.as_ref());
            leftmost = l;
        }
        let mut value = self.truthy(leftmost, b)?;
        for right in rights.iter().rev() {
            // `and` goes on while true, `or` while false.
            if value != is_and {
                break;
            }
            value = self.truthy(right, b)?;
        }
        Ok(value)
    }

    fn truthy(&self, e: &CExpr, b: &Binding) -> Res<bool> {
        Ok(matches!(self.eval(e, b)?, Datum::Bool(true)))
    }

    /// Checks vertex `v` against node pattern `n` and binds it.
    fn accept_node(&self, n: &CNode, v: VertexId, b: &mut Binding) -> Res<bool> {
        match &b[n.slot] {
            Bound::V(x) => return Ok(*x == v),
            _ => b[n.slot] = Bound::V(v),
        }
        if let Some(ts) = &n.types {
            let Some(vx) = self.vertex(v)? else {
                return Ok(false);
            };
            if !ts.contains(&vx.type_id) {
                return Ok(false);
            }
        }
        if let Some(f) = &n.filter {
            if !self.truthy(f, b)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Checks an edge of a hop (types are already checked by the adjacency scan). Returns its
    /// time when it passes.
    fn accept_edge(&self, e: &CEdge, id: EdgeId, b: &mut Binding) -> Res<Option<Option<i64>>> {
        if !e.needs_edge() {
            return Ok(Some(None));
        }
        let Some(edge) = self.edge(id)? else {
            return Ok(None);
        };
        let t = edge.placement.time;
        if let Some((from, to)) = e.window {
            match t {
                Some(t) if t >= from && t <= to => {}
                _ => return Ok(None),
            }
        }
        if let Some(f) = &e.filter {
            let saved = std::mem::replace(&mut b[e.slot], Bound::E(id));
            let ok = self.truthy(f, b)?;
            b[e.slot] = saved;
            if !ok {
                return Ok(None);
            }
        }
        Ok(Some(t))
    }

    fn start(self: &Rc<Self>) -> BindIter<'g> {
        let nslots = self.plan.slot_names.len();
        let ex = self.clone();
        match &self.plan.anchor {
            Anchor::Vertices { node, ids } => {
                let node = *node;
                let ids = ids.clone();
                Box::new(ids.into_iter().filter_map(move |id| {
                    let r = (|| {
                        ex.tick()?;
                        let mut b = vec![Bound::None; nslots];
                        let n = &ex.plan.nodes[node];
                        Ok(ex.accept_node(n, VertexId(id), &mut b)?.then_some(b))
                    })();
                    r.transpose()
                }))
            }
            Anchor::AllVertices { node, count, gaps } => {
                let (node, gaps) = (*node, *gaps);
                Box::new((0..*count).filter_map(move |id| {
                    let r = (|| {
                        ex.tick()?;
                        if gaps && ex.vertex(VertexId(id))?.is_none() {
                            return Ok(None);
                        }
                        let mut b = vec![Bound::None; nslots];
                        let n = &ex.plan.nodes[node];
                        Ok(ex.accept_node(n, VertexId(id), &mut b)?.then_some(b))
                    })();
                    r.transpose()
                }))
            }
            Anchor::Edges { edge, ids } => {
                let ei = *edge;
                let ids = ids.clone();
                Box::new(ids.into_iter().flat_map(move |id| {
                    let r = (|| -> Res<Vec<Binding>> {
                        ex.tick()?;
                        let Some(e) = ex.edge(EdgeId(id))? else {
                            return Ok(Vec::new());
                        };
                        let ce = &ex.plan.edges[ei];
                        // An id lookup, unlike a type index, says nothing of the edge's type.
                        if !ce.types.is_empty() && !ce.types.contains(&e.type_id) {
                            return Ok(Vec::new());
                        }
                        let mut out = Vec::new();
                        let orientations: &[(VertexId, VertexId)] = match ce.dir {
                            crate::ast::Dir::Forward => &[(e.src, e.dst)],
                            crate::ast::Dir::Backward => &[(e.dst, e.src)],
                            crate::ast::Dir::Either if e.src == e.dst => &[(e.src, e.dst)],
                            crate::ast::Dir::Either => &[(e.src, e.dst), (e.dst, e.src)],
                        };
                        for &(left, right) in orientations {
                            let mut b = vec![Bound::None; nslots];
                            if ex.accept_edge(ce, EdgeId(id), &mut b)?.is_none() {
                                continue;
                            }
                            b[ce.slot] = Bound::E(EdgeId(id));
                            if ex.accept_node(&ex.plan.nodes[ei], left, &mut b)?
                                && ex.accept_node(&ex.plan.nodes[ei + 1], right, &mut b)?
                            {
                                out.push(b);
                            }
                        }
                        Ok(out)
                    })();
                    let v: Vec<Res<Binding>> = match r {
                        Ok(v) => v.into_iter().map(Ok).collect(),
                        Err(e) => vec![Err(e)],
                    };
                    v
                }))
            }
        }
    }

    fn expand(self: &Rc<Self>, stage: Stage, b: Binding) -> BindIter<'g> {
        let Bound::V(from) = b[self.plan.nodes[stage.from].slot] else {
            return Box::new(std::iter::empty());
        };
        let e = &self.plan.edges[stage.edge];
        let dir = e.storage_dir(stage.reversed);
        if e.never && e.var.is_none_or(|(min, _, _)| min > 0) {
            return Box::new(std::iter::empty());
        }
        if let Some((min, max, capped)) = e.var {
            return Box::new(VarExpand {
                ex: self.clone(),
                stage,
                base: b,
                start: from,
                min,
                max,
                capped,
                dir,
                level: 0,
                started: false,
                frontier: vec![(from, None)],
                levels: Vec::new(),
                visited: {
                    let mut visited = HashMap::with_capacity(QUERY_SET_CAPACITY);
                    visited.insert(from, None);
                    visited
                },
                emitted: HashSet::with_capacity(QUERY_SET_CAPACITY),
                pending: VecDeque::new(),
                global: min <= 1,
                adjacency: None,
            });
        }
        let ex = self.clone();
        let types: Vec<TypeId> = e.types.clone();
        let scan = self.g.neighbours(from, dir, &types);
        Box::new(scan.filter_map(move |adj| {
            let r = (|| -> Res<Option<Binding>> {
                ex.tick()?;
                let adj = adj?;
                let ce = &ex.plan.edges[stage.edge];
                let mut nb = b.clone();
                if ex.accept_edge(ce, adj.edge, &mut nb)?.is_none() {
                    return Ok(None);
                }
                nb[ce.slot] = Bound::E(adj.edge);
                let ok = ex.accept_node(&ex.plan.nodes[stage.to], adj.neighbour, &mut nb)?;
                Ok(ok.then_some(nb))
            })();
            r.transpose()
        }))
    }
}

/// Room the sets of a variable-length expansion and of `dedup` start with: a few hops from
/// one vertex meet tens of vertices, and growing from empty rehashed each set several times
/// (~6% of a warm 3-hop query).
const QUERY_SET_CAPACITY: usize = 32;

/// Breadth-first variable-length expansion. With `min <= 1` each vertex is reached once, at
/// its shortest distance (so cycles end); with `min > 1` each level keeps its own vertices.
struct VarExpand<'g> {
    ex: Rc<Exec<'g>>,
    stage: Stage,
    base: Binding,
    start: VertexId,
    min: u32,
    max: u32,
    capped: bool,
    dir: Direction,
    level: u32,
    started: bool,
    /// Vertices of the current level, with the time of the edge that reached them.
    frontier: Vec<(VertexId, Option<i64>)>,
    /// `levels[d-1]`: vertex at depth d -> (parent, edge).
    levels: Vec<HashMap<VertexId, (VertexId, EdgeId)>>,
    visited: HashMap<VertexId, Option<i64>>,
    emitted: HashSet<VertexId>,
    pending: VecDeque<(VertexId, u32)>,
    global: bool,
    /// The adjacency reader, made at the first level and kept for the next ones: making one
    /// (a RocksDB iterator per direction) was ~5% of a warm 3-hop query.
    adjacency: Option<Box<dyn AdjacencyCursor + 'g>>,
}

impl VarExpand<'_> {
    fn path_to(&self, v: VertexId, depth: u32) -> Vec<(EdgeId, VertexId)> {
        let mut out = Vec::with_capacity(depth as usize);
        let mut cur = v;
        for d in (1..=depth as usize).rev() {
            match self.levels.get(d - 1).and_then(|m| m.get(&cur)) {
                Some(&(p, e)) => {
                    out.push((e, cur));
                    cur = p;
                }
                None => break,
            }
        }
        out.reverse();
        out
    }

    fn expand_level(&mut self) -> Res<()> {
        let ce = &self.ex.plan.edges[self.stage.edge];
        if ce.never {
            self.frontier.clear();
            return Ok(());
        }
        let mut next = Vec::new();
        let mut map = HashMap::with_capacity(QUERY_SET_CAPACITY);
        let mut scratch = self.base.clone();
        let g = self.ex.g;
        let adjacency = self
            .adjacency
            .get_or_insert_with(|| g.adjacency_cursor(self.dir, &ce.types));
        for &(u, tu) in &self.frontier {
            self.ex.tick()?;
            adjacency.restart(u);
            for adj in adjacency.by_ref() {
                let adj = adj?;
                let Some(t) = self.ex.accept_edge(ce, adj.edge, &mut scratch)? else {
                    continue;
                };
                if ce.causal {
                    if let (Some(a), Some(b)) = (tu, t) {
                        if b < a {
                            continue;
                        }
                    }
                }
                let arrival = if ce.causal { t.or(tu) } else { None };
                let w = adj.neighbour;
                if self.global {
                    match self.visited.get(&w) {
                        None => {}
                        // Causal: come back when an earlier arrival opens more paths.
                        Some(&Some(prev)) if ce.causal && arrival.is_some_and(|a| a < prev) => {}
                        Some(_) => continue,
                    }
                    if map.contains_key(&w) {
                        continue;
                    }
                    self.visited.insert(w, arrival);
                } else if map.contains_key(&w) {
                    continue;
                }
                map.insert(w, (u, adj.edge));
                next.push((w, arrival));
                if self.level + 1 >= self.min && self.emitted.insert(w) {
                    self.pending.push_back((w, self.level + 1));
                }
                if self.visited.len() as u64 > self.ex.limits.max_visited
                    || map.len() as u64 > self.ex.limits.max_visited
                {
                    let max = self.ex.limits.max_visited;
                    self.ex.warn(
                        Guard::MaxVisited,
                        format!(
                            "a variable-length hop visited {max} vertices (the maximum); the result is partial"
                        ),
                    );
                    self.levels.push(map);
                    self.frontier.clear();
                    self.level += 1;
                    return Ok(());
                }
            }
        }
        if !self.global {
            for &(w, _) in &next {
                self.visited.insert(w, None);
            }
        }
        self.levels.push(map);
        self.frontier = next;
        self.level += 1;
        Ok(())
    }

    /// Whether the frontier still leads somewhere new (so stopping at the depth cap lost rows).
    fn more_beyond(&self) -> Res<bool> {
        let ce = &self.ex.plan.edges[self.stage.edge];
        let mut adjacency = self.ex.g.adjacency_cursor(self.dir, &ce.types);
        for &(u, _) in self.frontier.iter().take(1000) {
            adjacency.restart(u);
            for adj in adjacency.by_ref().take(1000) {
                let adj = adj?;
                if !self.global || !self.visited.contains_key(&adj.neighbour) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

impl Iterator for VarExpand<'_> {
    type Item = Res<Binding>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((v, depth)) = self.pending.pop_front() {
                let path = self.path_to(v, depth);
                let ce = &self.ex.plan.edges[self.stage.edge];
                let mut b = self.base.clone();
                b[ce.slot] = Bound::P(Rc::new(path));
                match self
                    .ex
                    .accept_node(&self.ex.plan.nodes[self.stage.to], v, &mut b)
                {
                    Ok(true) => return Some(Ok(b)),
                    Ok(false) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            if !self.started {
                self.started = true;
                if self.min == 0 {
                    self.emitted.insert(self.start);
                    self.pending.push_back((self.start, 0));
                }
                continue;
            }
            if self.frontier.is_empty() {
                return None;
            }
            if self.level >= self.max {
                if self.capped {
                    match self.more_beyond() {
                        Ok(true) => self.ex.warn(
                            Guard::MaxDepth,
                            format!(
                                "a variable-length hop stopped at the maximum depth {}; deeper vertices are not shown",
                                self.max
                            ),
                        ),
                        Ok(false) => {}
                        Err(e) => return Some(Err(e)),
                    }
                }
                self.frontier.clear();
                return None;
            }
            if let Err(e) = self.expand_level() {
                self.frontier.clear();
                return Some(Err(e));
            }
        }
    }
}

/// Depth-first join of the anchor and the stages.
struct Matcher<'g> {
    ex: Rc<Exec<'g>>,
    stack: Vec<BindIter<'g>>,
}

impl Iterator for Matcher<'_> {
    type Item = Res<Binding>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let top = self.stack.last_mut()?;
            match top.next() {
                None => {
                    self.stack.pop();
                }
                Some(Err(e)) => {
                    self.stack.clear();
                    return Some(Err(e));
                }
                Some(Ok(b)) => {
                    let done = self.stack.len() - 1;
                    if done == self.ex.plan.stages.len() {
                        return Some(Ok(b));
                    }
                    let stage = self.ex.plan.stages[done];
                    let it = self.ex.expand(stage, b);
                    self.stack.push(it);
                }
            }
        }
    }
}

fn binding_key(b: &Binding) -> Vec<DKey> {
    b.iter()
        .map(|x| match x {
            Bound::None => DKey::Null,
            Bound::V(v) => DKey::Vertex(v.0),
            Bound::E(e) => DKey::Edge(e.0),
            Bound::P(p) => DKey::Str(
                p.iter()
                    .map(|(e, _)| e.0.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        })
        .collect()
}

fn path_len(b: &Binding) -> usize {
    b.iter()
        .map(|x| match x {
            Bound::E(_) => 1,
            Bound::P(p) => p.len(),
            _ => 0,
        })
        .sum()
}

/// A running query: an iterator of rows. Rows are computed as they are pulled.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let store = provdb_storage::Store::open(dir.path())?;
/// use provdb_query::{Cursor, Limits};
/// let mut cursor = Cursor::new(&store, "() -[]-> () | count", Limits::default())?;
/// assert_eq!(cursor.columns(), ["count"]);
/// let row = cursor.next().expect("one row")?;
/// assert_eq!(row.values[0], provdb_query::Datum::Int(0));
/// assert!(cursor.warnings().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Cursor<'g> {
    ex: Rc<Exec<'g>>,
    inner: RecIter<'g>,
    rows: u64,
    done: bool,
}

impl fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cursor")
            .field("columns", &self.ex.plan.columns)
            .field("rows", &self.rows)
            .finish()
    }
}

impl<'g> Cursor<'g> {
    /// Starts a planned query.
    pub fn from_plan(g: &'g dyn GraphRead, plan: Plan, limits: Limits) -> Cursor<'g> {
        let deadline = limits.timeout.map(|t| Instant::now() + t);
        let ex = Rc::new(Exec {
            g,
            plan,
            limits,
            deadline,
            vcache: RefCell::new(HashMap::new()),
            ecache: RefCell::new(HashMap::new()),
            ext_ids: RefCell::new(HashMap::new()),
            names: RefCell::new(HashMap::new()),
            naming: OnceCell::new(),
            warnings: RefCell::new(Vec::new()),
            ticks: Cell::new(0),
        });
        for w in ex.plan.warnings.clone() {
            ex.warnings.borrow_mut().push(Warning {
                guard: Guard::AbsentType,
                message: w,
            });
        }
        let inner = pipeline(&ex);
        Cursor {
            ex,
            inner,
            rows: 0,
            done: false,
        }
    }

    /// Output column names: the `return` items as written (or their `as` aliases), `count`,
    /// `path`, or the pattern's named variables.
    pub fn columns(&self) -> &[String] {
        &self.ex.plan.columns
    }

    /// The format asked with `| as FORMAT`.
    pub fn format_hint(&self) -> Option<&str> {
        self.ex.plan.format_hint()
    }

    /// Guards hit so far (complete once the cursor is exhausted).
    pub fn warnings(&self) -> Vec<Warning> {
        self.ex.warnings.borrow().clone()
    }

    /// The plan's description.
    pub fn explain(&self) -> String {
        self.ex.plan.explain()
    }

    /// Reads every remaining row.
    pub fn collect_result(mut self) -> Result<QueryResult, QueryError> {
        let mut rows = Vec::new();
        for r in self.by_ref() {
            rows.push(r?);
        }
        Ok(QueryResult {
            columns: self.ex.plan.columns.clone(),
            rows,
            warnings: self.warnings(),
            format_hint: self.ex.plan.format.clone(),
        })
    }

    /// The path name of a vertex (its `pathname`, or through `named` edges and versions).
    pub fn name_of(&self, v: VertexId) -> Result<Option<String>, QueryError> {
        self.ex.name_of(v)
    }
}

impl Iterator for Cursor<'_> {
    type Item = Result<Row, QueryError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rec = match self.inner.next() {
            None => {
                self.done = true;
                return None;
            }
            Some(Err(e)) if e.kind() == ErrorKind::Limit => {
                self.done = true;
                return None;
            }
            Some(Err(e)) => {
                self.done = true;
                return Some(Err(e));
            }
            Some(Ok(r)) => r,
        };
        if self.rows >= self.ex.limits.max_rows {
            self.ex.warn(
                Guard::MaxRows,
                format!(
                    "the result was cut at {} rows (the maximum); add `| limit N` or raise the maximum",
                    self.ex.limits.max_rows
                ),
            );
            self.done = true;
            return None;
        }
        self.rows += 1;
        Some(finish_row(&self.ex, rec))
    }
}

fn finish_row(ex: &Exec<'_>, rec: Rec) -> Res<Row> {
    let mut vertices = Vec::new();
    let mut edges = Vec::new();
    for b in &rec.b {
        match b {
            Bound::V(v) => vertices.push(*v),
            Bound::E(e) => edges.push(*e),
            Bound::P(p) => {
                for (e, v) in p.iter() {
                    edges.push(*e);
                    vertices.push(*v);
                }
            }
            Bound::None => {}
        }
    }
    vertices.sort_unstable();
    vertices.dedup();
    edges.sort_unstable();
    edges.dedup();
    let values = match rec.vals {
        Some(v) => v,
        None => {
            let mut v = Vec::new();
            for (s, name) in ex.plan.slot_names.iter().enumerate() {
                if name.starts_with('_') {
                    continue;
                }
                v.push(ex.eval(&CExpr::Var(s), &rec.b)?);
            }
            v
        }
    };
    Ok(Row {
        values,
        vertices,
        edges,
    })
}

/// Rows of `it`, pulled in growing chunks (8 up to 256, so a `limit` after the `return`
/// costs little extra), with the external ids of the vertices at `slots` read in one batch per
/// chunk.
fn read_ahead<'g>(ex: Rc<Exec<'g>>, mut it: RecIter<'g>, slots: Vec<usize>) -> RecIter<'g> {
    let mut chunk = VecDeque::new();
    let mut size = 8;
    let mut done = false;
    Box::new(std::iter::from_fn(move || {
        if chunk.is_empty() && !done {
            while chunk.len() < size {
                match it.next() {
                    Some(r) => {
                        let failed = r.is_err();
                        chunk.push_back(r);
                        if failed {
                            done = true;
                            break;
                        }
                    }
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            size = (size * 2).min(256);
            if let Err(e) = ex.read_ahead_ids(&chunk, &slots) {
                chunk.clear();
                done = true;
                return Some(Err(e));
            }
        }
        chunk.pop_front()
    }))
}

fn pipeline<'g>(ex: &Rc<Exec<'g>>) -> RecIter<'g> {
    if let Some(n) = ex.plan.index_count {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        return Box::new(std::iter::once(Ok(Rec {
            b: Vec::new(),
            vals: Some(vec![Datum::Int(n)]),
        })));
    }
    let matcher = Matcher {
        ex: ex.clone(),
        stack: vec![ex.start()],
    };
    let mut it: RecIter<'g> = Box::new(matcher.map(|r| r.map(|b| Rec { b, vals: None })));
    for step in ex.plan.steps.clone() {
        let ex = ex.clone();
        it = match step {
            CStep::Where(e) => Box::new(it.filter_map(move |r| match r {
                Ok(rec) => match ex.truthy(&e, &rec.b) {
                    Ok(true) => Some(Ok(rec)),
                    Ok(false) => None,
                    Err(e) => Some(Err(e)),
                },
                Err(e) => Some(Err(e)),
            })),
            CStep::Window(from, to) => Box::new(it.filter_map(move |r| {
                let rec = match r {
                    Ok(rec) => rec,
                    Err(e) => return Some(Err(e)),
                };
                let mut ids = Vec::new();
                for b in &rec.b {
                    match b {
                        Bound::E(e) => ids.push(*e),
                        Bound::P(p) => ids.extend(p.iter().map(|(e, _)| *e)),
                        _ => {}
                    }
                }
                for id in ids {
                    match ex.edge(id) {
                        Ok(Some(e)) => match e.placement.time {
                            Some(t) if t >= from && t <= to => {}
                            _ => return None,
                        },
                        Ok(None) => return None,
                        Err(e) => return Some(Err(e)),
                    }
                }
                Some(Ok(rec))
            })),
            CStep::Dedup(slot) => {
                let mut seen: HashSet<Vec<DKey>> = HashSet::with_capacity(QUERY_SET_CAPACITY);
                Box::new(it.filter_map(move |r| {
                    let rec = match r {
                        Ok(rec) => rec,
                        Err(e) => return Some(Err(e)),
                    };
                    let key = match (slot, &rec.vals) {
                        (Some(s), _) => binding_key(&rec.b[s..=s].to_vec()),
                        (None, Some(v)) => v.iter().map(Datum::key).collect(),
                        (None, None) => binding_key(&rec.b),
                    };
                    seen.insert(key).then_some(Ok(rec))
                }))
            }
            CStep::OrderBy(e, desc) => {
                let mut source = Some(it);
                let mut sorted: Option<std::vec::IntoIter<Rec>> = None;
                Box::new(std::iter::from_fn(move || {
                    if sorted.is_none() {
                        let mut keyed = Vec::new();
                        for r in source.take()? {
                            let rec = match r {
                                Ok(rec) => rec,
                                Err(e) => return Some(Err(e)),
                            };
                            let k = match ex.eval(&e, &rec.b) {
                                Ok(k) => k,
                                Err(e) => return Some(Err(e)),
                            };
                            keyed.push((k, rec));
                            if keyed.len() as u64 > ex.limits.max_rows.saturating_mul(10) {
                                ex.warn(
                                    Guard::MaxRows,
                                    "order by: too many rows to sort; sorted the first ones only"
                                        .into(),
                                );
                                break;
                            }
                        }
                        keyed.sort_by(|a, b| {
                            let o = a.0.sort_cmp(&b.0);
                            if desc {
                                o.reverse()
                            } else {
                                o
                            }
                        });
                        sorted = Some(
                            keyed
                                .into_iter()
                                .map(|(_, r)| r)
                                .collect::<Vec<_>>()
                                .into_iter(),
                        );
                    }
                    sorted.as_mut()?.next().map(Ok)
                }))
            }
            CStep::Skip(n) => Box::new(it.skip(usize::try_from(n).unwrap_or(usize::MAX))),
            CStep::Limit(n) => Box::new(it.take(usize::try_from(n).unwrap_or(usize::MAX))),
            CStep::Count => {
                let mut source = Some(it);
                Box::new(std::iter::from_fn(move || {
                    let src = source.take()?;
                    let mut n: i64 = 0;
                    for r in src {
                        match r {
                            Ok(_) => n += 1,
                            // A guard stops counting: report what was counted.
                            Err(e) if e.kind() == ErrorKind::Limit => break,
                            Err(e) => return Some(Err(e)),
                        }
                    }
                    Some(Ok(Rec {
                        b: Vec::new(),
                        vals: Some(vec![Datum::Int(n)]),
                    }))
                }))
            }
            CStep::Return { distinct, items } => {
                let id_slots: Vec<usize> = items
                    .iter()
                    .filter_map(|e| match e {
                        CExpr::Prop(s, PropKey::Id) => Some(*s),
                        _ => None,
                    })
                    .collect();
                if !id_slots.is_empty() {
                    it = read_ahead(ex.clone(), it, id_slots);
                }
                let mut seen: HashSet<Vec<DKey>> = HashSet::with_capacity(QUERY_SET_CAPACITY);
                Box::new(it.filter_map(move |r| {
                    let mut rec = match r {
                        Ok(rec) => rec,
                        Err(e) => return Some(Err(e)),
                    };
                    let mut vals = Vec::with_capacity(items.len());
                    for e in &items {
                        match ex.eval(e, &rec.b) {
                            Ok(v) => vals.push(v),
                            Err(e) => return Some(Err(e)),
                        }
                    }
                    if distinct && !seen.insert(vals.iter().map(Datum::key).collect()) {
                        return None;
                    }
                    rec.vals = Some(vals);
                    Some(Ok(rec))
                }))
            }
            CStep::Shortest => {
                let mut source = Some(it);
                Box::new(std::iter::from_fn(move || {
                    let src = source.take()?;
                    let mut best: Option<(usize, Rec)> = None;
                    for r in src {
                        match r {
                            Ok(rec) => {
                                let l = path_len(&rec.b);
                                if best.as_ref().is_none_or(|(b, _)| l < *b) {
                                    best = Some((l, rec));
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::Limit => break,
                            Err(e) => return Some(Err(e)),
                        }
                    }
                    best.map(|(_, r)| Ok(r))
                }))
            }
            CStep::Path => Box::new(it.map(move |r| {
                let mut rec = r?;
                let text = path_text(&ex, &rec.b)?;
                rec.vals = Some(vec![Datum::Str(text)]);
                Ok(rec)
            })),
        };
    }
    it
}

/// `task 3666 (/usr/bin/wget) -[read]-> file ...`, in pattern order.
fn path_text(ex: &Exec<'_>, b: &Binding) -> Res<String> {
    let label = |v: VertexId| -> Res<String> {
        let Some(vx) = ex.vertex(v)? else {
            return Ok(format!("#{}", v.0));
        };
        let mut s = vx.type_name.to_string();
        if let Some(pid) = find_attr(&vx.attrs, "pid") {
            s.push_str(&format!(" pid {pid}"));
        }
        if let Some(n) = ex.name_of(v)? {
            s.push_str(&format!(" ({n})"));
        }
        Ok(s)
    };
    let etype = |e: EdgeId| -> Res<String> {
        Ok(ex
            .edge(e)?
            .map_or_else(|| "?".to_owned(), |e| e.type_name.to_string()))
    };
    let plan = &ex.plan;
    let Some(Bound::V(first)) = plan.nodes.first().map(|n| &b[n.slot]) else {
        return Ok(String::new());
    };
    let mut out = label(*first)?;
    for (i, ce) in plan.edges.iter().enumerate() {
        let (open, close) = match ce.dir {
            crate::ast::Dir::Forward => ("-[", "]->"),
            crate::ast::Dir::Backward => ("<-[", "]-"),
            crate::ast::Dir::Either => ("-[", "]-"),
        };
        match &b[ce.slot] {
            Bound::E(e) => {
                out.push_str(&format!(" {open}{}{close} ", etype(*e)?));
            }
            Bound::P(p) => {
                for (k, (e, v)) in p.iter().enumerate() {
                    out.push_str(&format!(" {open}{}{close} ", etype(*e)?));
                    if k + 1 < p.len() {
                        out.push_str(&label(*v)?);
                    }
                }
                if p.is_empty() {
                    out.push_str(" = ");
                }
            }
            _ => out.push_str(" ... "),
        }
        if let Bound::V(v) = &b[plan.nodes[i + 1].slot] {
            out.push_str(&label(*v)?);
        }
    }
    Ok(out)
}

/// A whole result: columns, rows, and the guards that were hit.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Row>,
    /// Guards hit (empty when the result is complete).
    pub warnings: Vec<Warning>,
    /// The format asked with `| as FORMAT`.
    pub format_hint: Option<String>,
}

/// The vertices and edges that a result matched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subgraph {
    /// Vertices, by internal id.
    pub vertices: Vec<Vertex>,
    /// Edges, by internal id (both ends are in `vertices`).
    pub edges: Vec<Edge>,
}

impl QueryResult {
    /// The value of column `column` in row `row`.
    pub fn get(&self, row: usize, column: &str) -> Option<&Datum> {
        let c = self.columns.iter().position(|x| x == column)?;
        self.rows.get(row)?.values.get(c)
    }

    /// Loads the matched vertices and edges (for graph output).
    pub fn subgraph(&self, g: &dyn GraphRead) -> Result<Subgraph, QueryError> {
        let mut vs: Vec<VertexId> = Vec::new();
        let mut es: Vec<EdgeId> = Vec::new();
        for r in &self.rows {
            vs.extend(&r.vertices);
            es.extend(&r.edges);
        }
        es.sort_unstable();
        es.dedup();
        let mut edges = Vec::new();
        for e in es {
            if let Some(e) = g.edge(e)? {
                vs.push(e.src);
                vs.push(e.dst);
                edges.push(e);
            }
        }
        vs.sort_unstable();
        vs.dedup();
        let mut vertices = Vec::new();
        for v in vs {
            if let Some(v) = g.vertex(v)? {
                vertices.push(v);
            }
        }
        Ok(Subgraph { vertices, edges })
    }
}
