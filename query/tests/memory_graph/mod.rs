//! A second implementation of `GraphRead`, in memory: the query engine must work on any
//! implementation of its read interface, not only on RocksDB's. Tests build small graphs by
//! hand and work out the expected answers by hand.
//!
//! Shared by the executor's integration tests and the planner's unit tests (which include this
//! file by path); each uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use provdb_storage::{
    Adjacent, AttrKeyId, Direction, Edge, EdgeId, ExternalId, GraphRead, IdSet, Placement,
    ProvClass, ProvRelation, ReadError, TypeId, Value, Vertex, VertexId,
};

/// What a [`GraphRead`] method returns.
type Result<T> = std::result::Result<T, ReadError>;

/// A graph held in vectors; vertex and edge ids are their positions.
#[derive(Default)]
pub struct MemoryGraph {
    vertices: Vec<Vertex>,
    edges: Vec<Edge>,
    vertex_types: Vec<Arc<str>>,
    edge_types: Vec<Arc<str>>,
    /// How many times `vertex` was asked: what a lazy plan must keep small.
    pub vertex_reads: std::cell::Cell<u64>,
    /// How many times a type index was read or counted: what planning an id lookup must not do.
    pub index_reads: std::cell::Cell<u64>,
    /// How many entries of the edge time index were read.
    pub time_index_reads: std::cell::Cell<u64>,
    /// A vertex whose record reads as corrupt (to test how storage errors come out).
    pub corrupt: Option<VertexId>,
}

fn type_id(types: &mut Vec<Arc<str>>, name: &str) -> TypeId {
    let i = types.iter().position(|t| &**t == name).unwrap_or_else(|| {
        types.push(name.into());
        types.len() - 1
    });
    TypeId(i as u16)
}

impl MemoryGraph {
    /// Adds a vertex `ext` of type `kind` (machine 1); returns its id.
    pub fn vertex(&mut self, ext: &str, kind: &str) -> VertexId {
        let id = VertexId(self.vertices.len() as u64);
        let type_id = type_id(&mut self.vertex_types, kind);
        self.vertices.push(Vertex {
            id,
            ext_id: ExternalId::parse(ext),
            type_id,
            type_name: kind.into(),
            class: if kind == "task" {
                ProvClass::Activity
            } else {
                ProvClass::Entity
            },
            stub: false,
            placement: Placement {
                machine: Some(1),
                ..Placement::default()
            },
            attrs: Vec::new(),
        });
        id
    }

    /// A graph drawn as its vertices `(type, [ext, ...])` and its edges
    /// `(ext, type, src, dst, time)`; ids follow the order of the drawing.
    pub fn drawn(vertices: &[(&str, &[&str])], edges: &[(&str, &str, &str, &str, i64)]) -> Self {
        let mut g = MemoryGraph::default();
        for (kind, exts) in vertices {
            for ext in *exts {
                // Spelled out: `GraphRead::vertex` (a read) is in scope here too.
                MemoryGraph::vertex(&mut g, ext, kind);
            }
        }
        for (ext, kind, src, dst, time) in edges {
            MemoryGraph::edge(&mut g, ext, kind, src, dst, *time);
        }
        g
    }

    /// Sets attribute `key` of vertex `v`; the key joins the graph's attribute keys.
    pub fn attr(&mut self, v: VertexId, key: &str, value: Value) {
        self.vertices[v.0 as usize].attrs.push((key.into(), value));
    }

    /// Adds an edge `ext` of type `kind` from the vertex named `src` to `dst` at `time`.
    pub fn edge(&mut self, ext: &str, kind: &str, src: &str, dst: &str, time: i64) -> EdgeId {
        let id = EdgeId(self.edges.len() as u64);
        let find = |name: &str| {
            let ext = ExternalId::parse(name);
            self.vertices
                .iter()
                .find(|v| v.ext_id == ext)
                .map(|v| v.id)
                .unwrap_or_else(|| panic!("no vertex {name}"))
        };
        let (src, dst) = (find(src), find(dst));
        let type_id = type_id(&mut self.edge_types, kind);
        self.edges.push(Edge {
            id,
            ext_id: ExternalId::parse(ext),
            type_id,
            type_name: kind.into(),
            relation: ProvRelation::Relation,
            src,
            dst,
            placement: Placement {
                machine: Some(1),
                time: Some(time),
                ..Placement::default()
            },
            attrs: Vec::new(),
        });
        id
    }
}

impl GraphRead for MemoryGraph {
    fn vertex(&self, id: VertexId) -> Result<Option<Vertex>> {
        self.vertex_reads.set(self.vertex_reads.get() + 1);
        if self.corrupt == Some(id) {
            return Err(ReadError::Corruption {
                what: "vertex record",
                detail: "test damage".to_owned(),
            });
        }
        Ok(self.vertices.get(id.0 as usize).cloned())
    }
    fn edge(&self, id: EdgeId) -> Result<Option<Edge>> {
        Ok(self.edges.get(id.0 as usize).cloned())
    }
    fn vertex_id(&self, ext: &ExternalId) -> Result<Option<VertexId>> {
        Ok(self
            .vertices
            .iter()
            .find(|v| &v.ext_id == ext)
            .map(|v| v.id))
    }
    fn edge_id(&self, ext: &ExternalId) -> Result<Option<EdgeId>> {
        Ok(self.edges.iter().find(|e| &e.ext_id == ext).map(|e| e.id))
    }
    fn vertex_type_id(&self, name: &str) -> Option<TypeId> {
        self.vertex_types
            .iter()
            .position(|t| &**t == name)
            .map(|i| TypeId(i as u16))
    }
    fn edge_type_id(&self, name: &str) -> Option<TypeId> {
        self.edge_types
            .iter()
            .position(|t| &**t == name)
            .map(|i| TypeId(i as u16))
    }
    fn vertex_types(&self) -> Vec<(TypeId, Arc<str>)> {
        let ids = (0..).map(TypeId);
        ids.zip(self.vertex_types.iter().cloned()).collect()
    }
    fn edge_types(&self) -> Vec<(TypeId, Arc<str>)> {
        let ids = (0..).map(TypeId);
        ids.zip(self.edge_types.iter().cloned()).collect()
    }
    fn attribute_keys(&self) -> Vec<(AttrKeyId, Arc<str>)> {
        let mut keys: Vec<Arc<str>> = Vec::new();
        let attrs = self.vertices.iter().flat_map(|v| &v.attrs);
        for (k, _) in attrs.chain(self.edges.iter().flat_map(|e| &e.attrs)) {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        (0..).map(AttrKeyId).zip(keys).collect()
    }
    fn neighbours<'a>(
        &'a self,
        v: VertexId,
        direction: Direction,
        types: &[TypeId],
    ) -> Box<dyn Iterator<Item = Result<Adjacent>> + 'a> {
        // Ordered as the store orders adjacency keys: by edge type, then edge id.
        let mut found: BTreeMap<(TypeId, EdgeId, u8), Adjacent> = BTreeMap::new();
        for e in &self.edges {
            if !types.is_empty() && !types.contains(&e.type_id) {
                continue;
            }
            for (dir, here, there, order) in [
                (Direction::Out, e.src, e.dst, 0),
                (Direction::In, e.dst, e.src, 1),
            ] {
                if here == v && (direction == dir || direction == Direction::Both) {
                    found.insert(
                        (e.type_id, e.id, order),
                        Adjacent {
                            edge: e.id,
                            edge_type: e.type_id,
                            neighbour: there,
                            direction: dir,
                        },
                    );
                }
            }
        }
        Box::new(found.into_values().map(Ok))
    }
    fn vertices_of_type(&self, t: TypeId) -> Result<IdSet> {
        self.index_reads.set(self.index_reads.get() + 1);
        Ok(self
            .vertices
            .iter()
            .filter(|v| v.type_id == t)
            .map(|v| v.id.0)
            .collect())
    }
    fn edges_of_type(&self, t: TypeId) -> Result<IdSet> {
        self.index_reads.set(self.index_reads.get() + 1);
        Ok(self
            .edges
            .iter()
            .filter(|e| e.type_id == t)
            .map(|e| e.id.0)
            .collect())
    }
    fn vertices_of_machine(&self, machine: u32) -> Result<IdSet> {
        Ok(self
            .vertices
            .iter()
            .filter(|v| v.placement.machine == Some(machine))
            .map(|v| v.id.0)
            .collect())
    }
    fn vertex_count(&self) -> Result<u64> {
        Ok(self.vertices.len() as u64)
    }
    fn edge_count(&self) -> Result<u64> {
        Ok(self.edges.len() as u64)
    }
    fn edges_in_time_range<'a>(
        &'a self,
        from: i64,
        to: i64,
    ) -> Box<dyn Iterator<Item = Result<EdgeId>> + 'a> {
        let mut timed: Vec<(i64, EdgeId)> = self
            .edges
            .iter()
            .filter_map(|e| e.placement.time.map(|t| (t, e.id)))
            .filter(|(t, _)| (from..=to).contains(t))
            .collect();
        timed.sort();
        Box::new(timed.into_iter().map(|(_, e)| {
            self.time_index_reads.set(self.time_index_reads.get() + 1);
            Ok(e)
        }))
    }
}
