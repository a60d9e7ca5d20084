//! Streaming Weisfeiler-Lehman relabelling of a machine's provenance graph, as UNICORN does
//! it: a vertex's label at hop 0 is its type; at hop `r` it is the hash of its own label at
//! hop `r - 1` and of the set of `(edge type, sender's label at hop r - 1)` over its incoming
//! edges (information flow in). Each arriving edge updates its receiver's labels at hops
//! 1..=R in O(R); every label a vertex takes is counted once in the machine's histogram.
//!
//! The neighbourhood is a *set* (a repeated `(type, label)` adds nothing), kept as the XOR of
//! its members' hashes, so the label does not depend on arrival order or repetition. A vertex
//! remembers at most [`MAX_NEIGHBOURHOOD`] distinct members; beyond, its labels stop changing
//! (bounded memory per vertex against a flood of distinct senders).

use std::collections::HashMap;

use super::hash;

/// The most hops a model may use.
pub const MAX_HOPS: usize = 4;
/// Distinct `(hop, edge type, sender label)` members a vertex remembers.
pub(crate) const MAX_NEIGHBOURHOOD: usize = 24;
/// Label of a vertex referenced before it was defined (type unknown).
const UNKNOWN_TYPE: &str = "?";

/// A label change: the new label and its hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LabelEvent {
    pub(crate) label: u64,
    pub(crate) hop: u8,
}

#[derive(Debug, Clone)]
struct VertexLabels {
    labels: [u64; MAX_HOPS + 1],
    /// XOR of the neighbourhood members' hashes, per hop.
    neighbourhood: [u64; MAX_HOPS + 1],
    members: Vec<u64>,
    /// Edge count when last touched (for eviction).
    touched: u64,
}

impl VertexLabels {
    fn new(type_name: &str, hops: usize) -> VertexLabels {
        let mut labels = [0u64; MAX_HOPS + 1];
        labels[0] = hop0_label(type_name);
        for r in 1..=hops {
            labels[r] = hash::combine(hash::combine(r as u64, labels[r - 1]), 0);
        }
        VertexLabels {
            labels,
            neighbourhood: [0; MAX_HOPS + 1],
            members: Vec::new(),
            touched: 0,
        }
    }
}

/// A vertex's label at hop 0: its CamFlow type.
pub(crate) fn hop0_label(type_name: &str) -> u64 {
    hash::text(type_name)
}

/// The WL labels of one machine's recent vertices.
#[derive(Debug, Clone)]
pub(crate) struct LabelGraph {
    hops: usize,
    max_vertices: usize,
    vertices: HashMap<u64, VertexLabels>,
    clock: u64,
}

impl LabelGraph {
    /// A graph relabelled over `hops` hops (at most [`MAX_HOPS`]) that keeps the labels of at
    /// most about `max_vertices` recently touched vertices.
    pub(crate) fn new(hops: usize, max_vertices: usize) -> LabelGraph {
        LabelGraph {
            hops: hops.clamp(1, MAX_HOPS),
            max_vertices: max_vertices.max(16),
            vertices: HashMap::new(),
            clock: 0,
        }
    }

    /// Vertices whose labels are in memory.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.vertices.len()
    }

    /// Approximate bytes held (table slots and neighbourhood lists).
    pub(crate) fn memory_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u64, VertexLabels)>() + 1;
        self.vertices.capacity() * slot
            + self
                .vertices
                .values()
                .map(|v| v.members.capacity() * 8)
                .sum::<usize>()
    }

    /// Applies an edge `src -edge_type-> dst` (types used for vertices not yet known),
    /// reporting the receiver's new labels (and the hop-0 label of a vertex first seen).
    pub(crate) fn edge(
        &mut self,
        (src, src_type): (u64, Option<&str>),
        (dst, dst_type): (u64, Option<&str>),
        edge_type: &str,
        out: &mut impl FnMut(LabelEvent),
    ) {
        self.clock += 1;
        let hops = self.hops;
        let sender = self.touch(src, src_type, out).labels;
        let v = self.touch(dst, dst_type, out);
        let edge_label = hash::text(edge_type);
        for r in 1..=hops {
            let member = hash::combine(hash::combine(r as u64, edge_label), sender[r - 1]);
            if !v.members.contains(&member) && v.members.len() < MAX_NEIGHBOURHOOD {
                v.members.push(member);
                v.neighbourhood[r] ^= member;
            }
            let label = hash::combine(hash::combine(r as u64, v.labels[r - 1]), v.neighbourhood[r]);
            if label != v.labels[r] {
                v.labels[r] = label;
                out(LabelEvent {
                    label,
                    hop: r as u8,
                });
            }
        }
    }

    /// A vertex's labels, marked as touched now; a vertex not yet known is added with its
    /// type (`?` when unknown) and its hop-0 label reported. One table lookup: this runs
    /// twice per edge.
    fn touch(
        &mut self,
        key: u64,
        type_name: Option<&str>,
        out: &mut impl FnMut(LabelEvent),
    ) -> &mut VertexLabels {
        if self.vertices.len() >= self.max_vertices && !self.vertices.contains_key(&key) {
            self.evict();
        }
        let (hops, clock) = (self.hops, self.clock);
        let v = self.vertices.entry(key).or_insert_with(|| {
            let v = VertexLabels::new(type_name.unwrap_or(UNKNOWN_TYPE), hops);
            out(LabelEvent {
                label: v.labels[0],
                hop: 0,
            });
            v
        });
        v.touched = clock;
        v
    }

    /// Makes room: keeps the vertices touched by the last edges (a vertex is touched by at
    /// most two per edge); the decayed histogram has all but forgotten the others.
    fn evict(&mut self) {
        let keep_after = self.clock.saturating_sub((self.max_vertices / 4) as u64);
        self.vertices.retain(|_, v| v.touched > keep_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels_of(g: &mut LabelGraph, edges: &[(u64, &str, u64, &str, &str)]) -> Vec<LabelEvent> {
        let mut out = Vec::new();
        for (s, st, d, dt, e) in edges {
            g.edge((*s, Some(*st)), (*d, Some(*dt)), e, &mut |ev| out.push(ev));
        }
        out
    }

    #[test]
    fn same_structure_gives_same_labels_whatever_the_ids() {
        let mut a = LabelGraph::new(3, 1000);
        let mut b = LabelGraph::new(3, 1000);
        let la = labels_of(
            &mut a,
            &[
                (1, "file", 2, "task", "read"),
                (2, "task", 3, "file", "write"),
            ],
        );
        let lb = labels_of(
            &mut b,
            &[
                (7, "file", 9, "task", "read"),
                (9, "task", 4, "file", "write"),
            ],
        );
        assert_eq!(la, lb);
        // Two new vertices at hop 0, then the task's hops 1..3; then the written file is
        // new (hop 0) and changes at hops 1..3.
        let hops: Vec<u8> = la.iter().map(|e| e.hop).collect();
        assert_eq!(hops, vec![0, 0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn a_repeated_edge_adds_no_label() {
        let mut g = LabelGraph::new(3, 1000);
        labels_of(&mut g, &[(1, "file", 2, "task", "read")]);
        assert!(labels_of(&mut g, &[(1, "file", 2, "task", "read")]).is_empty());
    }

    #[test]
    fn a_different_edge_type_gives_a_different_label() {
        let mut a = LabelGraph::new(2, 1000);
        let mut b = LabelGraph::new(2, 1000);
        let la = labels_of(&mut a, &[(1, "socket", 2, "task", "receive")]);
        let lb = labels_of(&mut b, &[(1, "socket", 2, "task", "read")]);
        assert_eq!(la[..2], lb[..2]);
        assert_ne!(la[2], lb[2]);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut g = LabelGraph::new(3, 100);
        for i in 0..10_000u64 {
            g.edge(
                (i, Some("file")),
                (i + 1_000_000, Some("task")),
                "read",
                &mut |_| {},
            );
        }
        assert!(g.len() <= 102, "{}", g.len());
    }

    #[test]
    fn a_vertex_remembers_a_bounded_neighbourhood() {
        let mut g = LabelGraph::new(1, 1000);
        let mut changes = 0;
        for i in 0..100u64 {
            let ty = format!("t{i}");
            g.edge((i, Some(&ty)), (1000, Some("task")), "read", &mut |e| {
                if e.hop == 1 {
                    changes += 1;
                }
            });
        }
        assert_eq!(changes, MAX_NEIGHBOURHOOD);
    }
}
