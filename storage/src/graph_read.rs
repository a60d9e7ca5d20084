//! [`GraphRead`]: the read interface that the query engine runs against. It names no RocksDB
//! type, so the executor can be tested on any implementation.

use std::sync::Arc;

use crate::error::ReadError;
use crate::id_set::IdSet;
use crate::ids::{AttrKeyId, EdgeId, TypeId, VertexId};
use crate::model::{Adjacent, Direction, Edge, ExternalId, Vertex};
use crate::store::Store;

/// Read access to a provenance graph.
pub trait GraphRead {
    /// The vertex with internal id `id`.
    fn vertex(&self, id: VertexId) -> Result<Option<Vertex>, ReadError>;
    /// The external id of vertex `id` (what a query returns for `v.id`); a store answers it
    /// without decoding the vertex record.
    fn vertex_external_id(&self, id: VertexId) -> Result<Option<ExternalId>, ReadError> {
        Ok(self.vertex(id)?.map(|v| v.ext_id))
    }
    /// The external ids of `ids`, in their order; a store reads them in one batch.
    fn vertex_external_ids(&self, ids: &[VertexId]) -> Result<Vec<Option<ExternalId>>, ReadError> {
        ids.iter().map(|id| self.vertex_external_id(*id)).collect()
    }
    /// The edge with internal id `id`.
    fn edge(&self, id: EdgeId) -> Result<Option<Edge>, ReadError>;
    /// Internal id of a vertex by external id.
    fn vertex_id(&self, ext: &ExternalId) -> Result<Option<VertexId>, ReadError>;
    /// Internal id of an edge by external id.
    fn edge_id(&self, ext: &ExternalId) -> Result<Option<EdgeId>, ReadError>;
    /// Id of a vertex type name.
    fn vertex_type_id(&self, name: &str) -> Option<TypeId>;
    /// Id of an edge type name.
    fn edge_type_id(&self, name: &str) -> Option<TypeId>;
    /// Every vertex type.
    fn vertex_types(&self) -> Vec<(TypeId, Arc<str>)>;
    /// Every edge type.
    fn edge_types(&self) -> Vec<(TypeId, Arc<str>)>;
    /// Every attribute key.
    fn attribute_keys(&self) -> Vec<(AttrKeyId, Arc<str>)>;
    /// Adjacency of one vertex, restricted to edge types (all when empty): one prefix scan
    /// per type.
    fn neighbours<'a>(
        &'a self,
        v: VertexId,
        direction: Direction,
        types: &[TypeId],
    ) -> Box<dyn Iterator<Item = Result<Adjacent, ReadError>> + 'a>;
    /// A reader of many vertices' adjacency, one after another (what a traversal level
    /// reads), in `direction` and restricted to `types`; a store reuses its iterators.
    fn adjacency_cursor<'a>(
        &'a self,
        direction: Direction,
        types: &[TypeId],
    ) -> Box<dyn AdjacencyCursor + 'a> {
        Box::new(PerVertex {
            graph: self,
            direction,
            types: types.to_vec(),
            current: None,
        })
    }
    /// Vertices of a type (roaring index).
    fn vertices_of_type(&self, t: TypeId) -> Result<IdSet, ReadError>;
    /// Edges of a type (roaring index).
    fn edges_of_type(&self, t: TypeId) -> Result<IdSet, ReadError>;
    /// Vertices of a machine (roaring index).
    fn vertices_of_machine(&self, machine: u32) -> Result<IdSet, ReadError>;
    /// Number of vertices of a type (what the planner costs and counts with).
    fn count_vertices_of_type(&self, t: TypeId) -> Result<u64, ReadError> {
        Ok(self.vertices_of_type(t)?.len())
    }
    /// Number of edges of a type.
    fn count_edges_of_type(&self, t: TypeId) -> Result<u64, ReadError> {
        Ok(self.edges_of_type(t)?.len())
    }
    /// Vertex ids are `0..vertex_count()`.
    fn vertex_count(&self) -> Result<u64, ReadError>;
    /// Edge ids are `0..edge_count()`.
    fn edge_count(&self) -> Result<u64, ReadError>;
    /// Vertices stored: fewer than [`GraphRead::vertex_count`] once some were pruned.
    fn live_vertex_count(&self) -> Result<u64, ReadError> {
        self.vertex_count()
    }
    /// Edges stored: fewer than [`GraphRead::edge_count`] once some were pruned.
    fn live_edge_count(&self) -> Result<u64, ReadError> {
        self.edge_count()
    }
    /// Edges with time in `from..=to` (Unix seconds), in time order.
    fn edges_in_time_range<'a>(
        &'a self,
        from: i64,
        to: i64,
    ) -> Box<dyn Iterator<Item = Result<EdgeId, ReadError>> + 'a>;
}

/// The adjacency of one vertex after another ([`GraphRead::adjacency_cursor`]): `restart`
/// moves it to a vertex, whose adjacent edges it then yields.
pub trait AdjacencyCursor: Iterator<Item = Result<Adjacent, ReadError>> {
    /// Moves to the adjacency of `v` (what is left of the previous vertex's is dropped).
    fn restart(&mut self, v: VertexId);
}

impl AdjacencyCursor for crate::store::AdjacencyScan<'_> {
    fn restart(&mut self, v: VertexId) {
        crate::store::AdjacencyScan::restart(self, v);
    }
}

/// The cursor of a graph without one of its own: `neighbours` of each vertex in turn.
struct PerVertex<'a, G: GraphRead + ?Sized> {
    graph: &'a G,
    direction: Direction,
    types: Vec<TypeId>,
    current: Option<Box<dyn Iterator<Item = Result<Adjacent, ReadError>> + 'a>>,
}

impl<G: GraphRead + ?Sized> Iterator for PerVertex<'_, G> {
    type Item = Result<Adjacent, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.current.as_mut()?.next()
    }
}

impl<G: GraphRead + ?Sized> AdjacencyCursor for PerVertex<'_, G> {
    fn restart(&mut self, v: VertexId) {
        self.current = Some(self.graph.neighbours(v, self.direction, &self.types));
    }
}

impl GraphRead for Store {
    fn vertex(&self, id: VertexId) -> Result<Option<Vertex>, ReadError> {
        Store::vertex(self, id)
    }
    fn vertex_external_id(&self, id: VertexId) -> Result<Option<ExternalId>, ReadError> {
        Store::vertex_external_id(self, id)
    }
    fn vertex_external_ids(&self, ids: &[VertexId]) -> Result<Vec<Option<ExternalId>>, ReadError> {
        Store::vertex_external_ids(self, ids)
    }
    fn edge(&self, id: EdgeId) -> Result<Option<Edge>, ReadError> {
        Store::edge(self, id)
    }
    fn vertex_id(&self, ext: &ExternalId) -> Result<Option<VertexId>, ReadError> {
        Store::vertex_id(self, ext)
    }
    fn edge_id(&self, ext: &ExternalId) -> Result<Option<EdgeId>, ReadError> {
        Store::edge_id(self, ext)
    }
    fn vertex_type_id(&self, name: &str) -> Option<TypeId> {
        Store::vertex_type_id(self, name)
    }
    fn edge_type_id(&self, name: &str) -> Option<TypeId> {
        Store::edge_type_id(self, name)
    }
    fn vertex_types(&self) -> Vec<(TypeId, Arc<str>)> {
        Store::vertex_types(self)
    }
    fn edge_types(&self) -> Vec<(TypeId, Arc<str>)> {
        Store::edge_types(self)
    }
    fn attribute_keys(&self) -> Vec<(AttrKeyId, Arc<str>)> {
        Store::attribute_keys(self)
    }
    fn neighbours<'a>(
        &'a self,
        v: VertexId,
        direction: Direction,
        types: &[TypeId],
    ) -> Box<dyn Iterator<Item = Result<Adjacent, ReadError>> + 'a> {
        Box::new(Store::neighbours(self, v, direction, types))
    }
    fn adjacency_cursor<'a>(
        &'a self,
        direction: Direction,
        types: &[TypeId],
    ) -> Box<dyn AdjacencyCursor + 'a> {
        Box::new(Store::adjacency_cursor(self, direction, types))
    }
    fn vertices_of_type(&self, t: TypeId) -> Result<IdSet, ReadError> {
        Store::vertices_of_type(self, t)
    }
    fn edges_of_type(&self, t: TypeId) -> Result<IdSet, ReadError> {
        Store::edges_of_type(self, t)
    }
    fn count_vertices_of_type(&self, t: TypeId) -> Result<u64, ReadError> {
        Store::count_vertices_of_type(self, t)
    }
    fn count_edges_of_type(&self, t: TypeId) -> Result<u64, ReadError> {
        Store::count_edges_of_type(self, t)
    }
    fn vertices_of_machine(&self, machine: u32) -> Result<IdSet, ReadError> {
        Store::vertices_of_machine(self, machine)
    }
    fn vertex_count(&self) -> Result<u64, ReadError> {
        Store::vertex_count(self)
    }
    fn edge_count(&self) -> Result<u64, ReadError> {
        Store::edge_count(self)
    }
    fn live_vertex_count(&self) -> Result<u64, ReadError> {
        Store::live_vertex_count(self)
    }
    fn live_edge_count(&self) -> Result<u64, ReadError> {
        Store::live_edge_count(self)
    }
    fn edges_in_time_range<'a>(
        &'a self,
        from: i64,
        to: i64,
    ) -> Box<dyn Iterator<Item = Result<EdgeId, ReadError>> + 'a> {
        Box::new(Store::edges_in_time_range(self, from, to))
    }
}
