//! CamFlow naming: how a vertex gets the human name that `name` returns and renderings show.
//!
//! A version of a file, socket or process carries no path itself. CamFlow links a `path`
//! entity to it with a `named` edge (`named_process` on kernels up to v0.5.3), and chains the
//! versions of one object with `version_entity` / `version_activity` edges. So the name of a
//! vertex is its own `pathname` (or, for a socket, its `address`), else that of a path named
//! to it, else that of an older version (up to [`MAX_VERSIONS_BACK`] back).

use std::collections::HashSet;
use std::rc::Rc;

use provdb_storage::{find_attr, Direction, GraphRead, TypeId, Vertex, VertexId};

use crate::error::QueryError;

/// How far back a version chain is followed for a name.
pub(crate) const MAX_VERSIONS_BACK: usize = 32;
/// Named paths looked at per version.
const MAX_NAMED_PATHS: usize = 16;

/// The CamFlow edge families that naming follows (camflow-format.md, relation types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EdgeFamily {
    /// A path entity named to an object: `named`, `named_process`.
    Named,
    /// An object's next version: `version_entity`, `version_activity`.
    Version,
}

impl EdgeFamily {
    /// The family of an edge type, by its CamFlow name.
    pub(crate) fn of(type_name: &str) -> Option<EdgeFamily> {
        match type_name {
            "named" | "named_process" => Some(EdgeFamily::Named),
            "version_entity" | "version_activity" => Some(EdgeFamily::Version),
            _ => None,
        }
    }
}

/// The archive's edge type ids of each naming family.
#[derive(Debug, Clone, Default)]
pub(crate) struct NamingEdges {
    pub(crate) named: Vec<TypeId>,
    pub(crate) version: Vec<TypeId>,
}

impl NamingEdges {
    /// Resolves the families against the archive's edge types.
    pub(crate) fn resolve(g: &dyn GraphRead) -> NamingEdges {
        let mut edges = NamingEdges::default();
        for (id, name) in g.edge_types() {
            match EdgeFamily::of(&name) {
                Some(EdgeFamily::Named) => edges.named.push(id),
                Some(EdgeFamily::Version) => edges.version.push(id),
                None => {}
            }
        }
        edges
    }
}

/// The name of vertex `id` (see the module's documentation); `vertex` reads a vertex (through
/// the caller's cache).
pub(crate) fn name_of(
    g: &dyn GraphRead,
    edges: &NamingEdges,
    id: VertexId,
    vertex: impl Fn(VertexId) -> Result<Option<Rc<Vertex>>, QueryError>,
) -> Result<Option<String>, QueryError> {
    let mut cur = id;
    let mut seen = HashSet::new();
    for _ in 0..MAX_VERSIONS_BACK {
        if !seen.insert(cur) {
            break;
        }
        let Some(v) = vertex(cur)? else { break };
        if let Some(p) = find_attr(&v.attrs, "pathname") {
            return Ok(Some(p.to_string()));
        }
        if cur == id {
            if let Some(a) = find_attr(&v.attrs, "address") {
                return Ok(Some(a.to_string()));
            }
        }
        if !edges.named.is_empty() {
            for adj in g
                .neighbours(cur, Direction::In, &edges.named)
                .take(MAX_NAMED_PATHS)
            {
                if let Some(p) = vertex(adj?.neighbour)? {
                    if let Some(n) = find_attr(&p.attrs, "pathname") {
                        return Ok(Some(n.to_string()));
                    }
                }
            }
        }
        if edges.version.is_empty() {
            break;
        }
        match g
            .neighbours(cur, Direction::In, &edges.version)
            .next()
            .transpose()?
        {
            Some(older) => cur = older.neighbour,
            None => break,
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_the_camflow_relation_names() {
        assert_eq!(EdgeFamily::of("named"), Some(EdgeFamily::Named));
        assert_eq!(EdgeFamily::of("named_process"), Some(EdgeFamily::Named));
        assert_eq!(EdgeFamily::of("version_entity"), Some(EdgeFamily::Version));
        assert_eq!(
            EdgeFamily::of("version_activity"),
            Some(EdgeFamily::Version)
        );
        // Prefixes are not families: a type that merely starts with the word is not one.
        assert_eq!(EdgeFamily::of("named_pipe_open"), None);
        assert_eq!(EdgeFamily::of("versioned"), None);
        assert_eq!(EdgeFamily::of("write"), None);
    }
}
