//! Vertices, edges and subgraphs as the page's JSON. One shape for every view (query
//! results, a vertex's neighbours, an alert's neighbourhood), so the page draws them alike:
//! a vertex is `{id, type, class, stub, machine, time, pid, name}`, an edge
//! `{id, type, from, to, time}` in information-flow direction (sender -> receiver), ids
//! external.

use provdb::query::{Datum, Namer};
use provdb::{Direction, Edge, Vertex};
use provdb_storage::{find_attr, GraphRead, Store};
use serde_json::{json, Map, Value as Json};

/// Adjacent edges listed at most per vertex in `/api/vertex/ID` (a hub, such as a shared
/// library's inode, can have millions).
pub const MAX_ADJACENT: usize = 500;

/// A time as the query language prints it (UTC, ISO 8601).
pub fn time_json(t: Option<i64>) -> Json {
    t.map_or(Json::Null, |t| Json::String(Datum::Time(t).to_string()))
}

/// The summary of a vertex the page labels and colours it by.
pub fn vertex_json(v: &Vertex, name: Option<String>) -> Json {
    json!({
        "id": v.ext_id.to_string(),
        "type": &*v.type_name,
        "class": v.class.as_str(),
        "stub": v.stub,
        "machine": v.placement.machine,
        "time": time_json(v.placement.time),
        "pid": find_attr(&v.attrs, "pid").map(provdb::export::json_value),
        "name": name,
    })
}

/// An edge, its ends by external id.
pub fn edge_json(e: &Edge, from: &str, to: &str) -> Json {
    json!({
        "id": e.ext_id.to_string(),
        "type": &*e.type_name,
        "from": from,
        "to": to,
        "time": time_json(e.placement.time),
    })
}

/// Every attribute, kinds kept.
pub fn attributes_json(v: &Vertex) -> Json {
    let mut map = Map::new();
    for (k, value) in &v.attrs {
        map.insert(k.to_string(), provdb::export::json_value(value));
    }
    Json::Object(map)
}

/// Vertices of a query's subgraph sent to the page at most (a browser cannot lay out and
/// draw a hundred thousand; the rows themselves are all in the table and `/api/query`).
pub const MAX_GRAPH_VERTICES: usize = 3000;

/// The vertices and edges a query's rows matched: the first [`MAX_GRAPH_VERTICES`] vertices and
/// the edges between them; `omitted_vertices` and `omitted_edges` count the rest.
pub fn subgraph_json(
    store: &Store,
    result: &provdb::query::QueryResult,
) -> Result<Json, provdb::query::QueryError> {
    let g: &dyn GraphRead = store;
    let sub = result.subgraph(g)?;
    let namer = Namer::new(g)?;
    let mut ext = std::collections::HashMap::new();
    let mut vertices = Vec::with_capacity(sub.vertices.len().min(MAX_GRAPH_VERTICES));
    for v in sub.vertices.iter().take(MAX_GRAPH_VERTICES) {
        ext.insert(v.id, v.ext_id.to_string());
        vertices.push(vertex_json(v, namer.name_of(v.id)?));
    }
    let edges: Vec<Json> = sub
        .edges
        .iter()
        .filter_map(|e| Some(edge_json(e, ext.get(&e.src)?, ext.get(&e.dst)?)))
        .collect();
    Ok(json!({
        "omitted_vertices": sub.vertices.len() - vertices.len(),
        "omitted_edges": sub.edges.len() - edges.len(),
        "vertices": vertices,
        "edges": edges,
    }))
}

/// One vertex with its attributes and up to `limit` adjacent edges each way, each with the
/// vertex at its other end (`truncated` names the directions that had more).
pub fn vertex_detail_json(
    store: &Store,
    v: &Vertex,
    limit: usize,
) -> Result<Json, provdb::query::QueryError> {
    let g: &dyn GraphRead = store;
    let namer = Namer::new(g)?;
    let mut out = vertex_json(v, namer.name_of(v.id)?);
    out["attributes"] = attributes_json(v);
    let own = v.ext_id.to_string();
    let mut adjacent = Vec::new();
    let mut truncated = Vec::new();
    for (direction, key) in [(Direction::In, "in"), (Direction::Out, "out")] {
        for (seen, adj) in store.neighbours(v.id, direction, &[]).enumerate() {
            if seen == limit {
                truncated.push(key);
                break;
            }
            let adj = adj?;
            let (Some(edge), Some(n)) = (store.edge(adj.edge)?, store.vertex(adj.neighbour)?)
            else {
                continue;
            };
            let other = n.ext_id.to_string();
            let (from, to) = match direction {
                Direction::Out => (own.as_str(), other.as_str()),
                _ => (other.as_str(), own.as_str()),
            };
            adjacent.push(json!({
                "direction": key,
                "edge": edge_json(&edge, from, to),
                "vertex": vertex_json(&n, namer.name_of(n.id)?),
            }));
        }
    }
    out["adjacent"] = Json::Array(adjacent);
    // Directions with more than `limit` edges: the page says so and offers the query.
    out["truncated"] = json!(truncated);
    Ok(out)
}
