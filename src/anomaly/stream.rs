//! One machine's edge stream: WL labels into a decayed histogram, a sketch every
//! `snapshot_edges` edges, and (when scoring against a model) the edges of the current
//! interval whose labels the model never saw in training, for the alert's path.

use std::collections::{HashMap, HashSet};

use provdb_storage::ExternalId;

use super::hash;
use super::labels::{LabelEvent, LabelGraph};
use super::params::Params;
use super::sketch::{Histogram, Sketch};

/// Novel edges an interval's explanation holds: the most novel, in causal order.
pub const MAX_EXPLAINING_EDGES: usize = 24;
/// Labels a training run remembers as known (beyond, later labels are not added).
pub(crate) const MAX_KNOWN_LABELS: usize = 1 << 18;
/// Labels up to this hop are "kinds": a vertex's type, and the types of its in-edges with
/// their senders' types. Benign activity repeats a small vocabulary of them, so a kind that
/// training never saw is a strong signal; higher hops are too varied for that.
pub const KIND_HOPS: u8 = 1;

/// One edge as the anomaly detector reads it.
#[derive(Debug, Clone, Copy)]
pub struct EdgeEvent<'a> {
    /// External id of the edge.
    pub edge: &'a ExternalId,
    /// Relation type.
    pub edge_type: &'a str,
    /// Sender's external id.
    pub src: &'a ExternalId,
    /// Sender's type, when known.
    pub src_type: Option<&'a str>,
    /// Receiver's external id.
    pub dst: &'a ExternalId,
    /// Receiver's type, when known.
    pub dst_type: Option<&'a str>,
    /// Time (Unix seconds).
    pub time: Option<i64>,
}

/// An edge that gave its receiver labels the model never saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NovelEdge {
    /// Edge external id.
    pub edge: String,
    /// Relation type.
    pub edge_type: String,
    /// Sender external id and type.
    pub src: (String, String),
    /// Receiver external id and type.
    pub dst: (String, String),
    /// Time (Unix seconds).
    pub time: Option<i64>,
    /// How novel: over the labels it gave its receiver that training never saw, the sum of
    /// `hops + 1 - hop` (a new label at hop 1, a new kind of edge or sender, weighs most).
    pub novelty: u32,
}

/// A machine's sketch at the end of an interval.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Number of the interval on this stream, from 0.
    pub index: u64,
    /// Edges of the stream up to the end of the interval.
    pub edges: u64,
    /// Time of the interval's first and last edge that had one.
    pub from: Option<i64>,
    /// See `from`.
    pub until: Option<i64>,
    /// The sketch of the decayed histogram.
    pub sketch: Sketch,
    /// With a model: the interval's most novel edges, in causal order.
    pub novel: Vec<NovelEdge>,
    /// With a model: how many edges of the interval had novel labels.
    pub novel_edges: u64,
    /// Label kinds (hops 0 and 1) the interval's edges produced.
    pub kinds: u64,
    /// With a model: how many of them training never saw.
    pub novel_kinds: u64,
    /// When collecting (training): each kind's count in the interval.
    pub kind_counts: Vec<(u64, u32)>,
}

impl Snapshot {
    /// The fraction of the interval's label kinds that training never saw.
    pub fn novelty(&self) -> f64 {
        if self.kinds == 0 {
            0.0
        } else {
            self.novel_kinds as f64 / self.kinds as f64
        }
    }
}

/// A machine's streaming state.
#[derive(Debug, Clone)]
pub struct MachineStream {
    params: Params,
    graph: LabelGraph,
    histogram: Histogram,
    edges: u64,
    in_window: u32,
    index: u64,
    from: Option<i64>,
    until: Option<i64>,
    /// The interval's most novel edges so far (at most [`MAX_EXPLAINING_EDGES`]).
    novel: Vec<RankedNovelEdge>,
    novel_edges: u64,
    kinds: u64,
    novel_kinds: u64,
    /// Training: each kind's count in the current interval.
    kind_counts: Option<HashMap<u64, u32>>,
    /// Training: every label seen (bounded).
    collected: Option<HashSet<u64>>,
}

impl MachineStream {
    /// A stream with these parameters; `collect_labels` remembers every label (training).
    pub fn new(params: &Params, collect_labels: bool) -> MachineStream {
        MachineStream {
            params: params.clone(),
            graph: LabelGraph::new(usize::from(params.hops), params.max_vertices as usize),
            histogram: Histogram::default(),
            edges: 0,
            in_window: 0,
            index: 0,
            from: None,
            until: None,
            novel: Vec::new(),
            novel_edges: 0,
            kinds: 0,
            novel_kinds: 0,
            kind_counts: collect_labels.then(HashMap::new),
            collected: collect_labels.then(HashSet::new),
        }
    }

    /// Labels seen, when collecting.
    pub fn collected_labels(&self) -> impl Iterator<Item = u64> + '_ {
        self.collected.iter().flatten().copied()
    }

    /// Approximate bytes of the stream's state: vertex labels and histogram (training's
    /// label collection excluded).
    pub fn memory_bytes(&self) -> usize {
        self.graph.memory_bytes() + self.histogram.memory_bytes()
    }

    /// Applies an edge; returns the snapshot when it closes an interval. `known`: the labels
    /// of the model scored against (sorted), to collect the interval's novel edges.
    pub fn edge(&mut self, e: &EdgeEvent<'_>, known: Option<&[u64]>) -> Option<Snapshot> {
        let (histogram, collected) = (&mut self.histogram, &mut self.collected);
        let (kinds, novel_kinds, kind_counts) = (
            &mut self.kinds,
            &mut self.novel_kinds,
            &mut self.kind_counts,
        );
        let mut novel = 0u32;
        let hops = u32::from(self.params.hops);
        self.graph.edge(
            (vertex_key(e.src), e.src_type),
            (vertex_key(e.dst), e.dst_type),
            e.edge_type,
            &mut |ev: LabelEvent| {
                let is_novel = known.is_some_and(|k| k.binary_search(&ev.label).is_err());
                if is_novel {
                    novel += (hops + 1).saturating_sub(u32::from(ev.hop));
                }
                if ev.hop <= KIND_HOPS {
                    *kinds += 1;
                    *novel_kinds += u64::from(is_novel);
                    if let Some(c) = kind_counts {
                        if c.len() < MAX_KNOWN_LABELS {
                            *c.entry(ev.label).or_insert(0) += 1;
                        }
                    }
                }
                count(histogram, collected, ev.label)
            },
        );
        if novel > 0 {
            self.offer_novel(e, novel);
            self.novel_edges += 1;
        }
        self.edges += 1;
        self.in_window += 1;
        if let Some(t) = e.time {
            self.from = Some(self.from.map_or(t, |f| f.min(t)));
            self.until = Some(self.until.map_or(t, |u| u.max(t)));
        }
        (self.in_window >= self.params.snapshot_edges).then(|| self.snapshot())
    }

    /// Closes the current interval now (end of a run), if it has edges.
    pub fn flush(&mut self) -> Option<Snapshot> {
        (self.in_window > 0).then(|| self.snapshot())
    }

    fn snapshot(&mut self) -> Snapshot {
        let sketch = self
            .histogram
            .sketch(usize::from(self.params.sketch_size), self.params.seed);
        let snapshot = Snapshot {
            index: self.index,
            edges: self.edges,
            from: self.from.take(),
            until: self.until.take(),
            sketch,
            novel: in_causal_order(std::mem::take(&mut self.novel)),
            novel_edges: std::mem::take(&mut self.novel_edges),
            kinds: std::mem::take(&mut self.kinds),
            novel_kinds: std::mem::take(&mut self.novel_kinds),
            kind_counts: self
                .kind_counts
                .as_mut()
                .map(|c| {
                    let mut v: Vec<(u64, u32)> = c.drain().collect();
                    v.sort_unstable();
                    v
                })
                .unwrap_or_default(),
        };
        self.index += 1;
        self.in_window = 0;
        self.histogram
            .decay(self.params.decay, self.params.max_labels as usize);
        snapshot
    }
}

/// A candidate for an interval's explanation: a novel edge and its rank among the
/// interval's novel edges (its causal order).
#[derive(Debug, Clone)]
struct RankedNovelEdge {
    order: u64,
    edge: NovelEdge,
}

impl MachineStream {
    /// Keeps the [`MAX_EXPLAINING_EDGES`] most novel edges of the interval (the earliest
    /// among equals), building an edge's strings only when it ranks: most novel edges never
    /// do, and their ids' text would be an allocation or five per edge.
    fn offer_novel(&mut self, e: &EdgeEvent<'_>, novelty: u32) {
        if self.novel.len() >= MAX_EXPLAINING_EDGES {
            // The weakest: least novel, the latest among equals. A newcomer comes after every
            // candidate, so it must be strictly more novel to replace it.
            let weakest = self
                .novel
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| (c.edge.novelty, std::cmp::Reverse(c.order)));
            match weakest {
                Some((i, c)) if c.edge.novelty < novelty => {
                    self.novel.swap_remove(i);
                }
                _ => return,
            }
        }
        self.novel.push(RankedNovelEdge {
            order: self.novel_edges,
            edge: NovelEdge {
                edge: e.edge.to_string(),
                edge_type: e.edge_type.to_owned(),
                src: (e.src.to_string(), e.src_type.unwrap_or("").to_owned()),
                dst: (e.dst.to_string(), e.dst_type.unwrap_or("").to_owned()),
                time: e.time,
                novelty,
            },
        });
    }
}

/// The kept novel edges in causal order.
fn in_causal_order(mut ranked: Vec<RankedNovelEdge>) -> Vec<NovelEdge> {
    ranked.sort_unstable_by_key(|c| c.order);
    ranked.into_iter().map(|c| c.edge).collect()
}

fn count(histogram: &mut Histogram, collected: &mut Option<HashSet<u64>>, label: u64) {
    histogram.add(label);
    if let Some(c) = collected {
        if c.len() < MAX_KNOWN_LABELS {
            c.insert(label);
        }
    }
}

/// The key of a vertex in the label graph.
fn vertex_key(id: &ExternalId) -> u64 {
    match id {
        ExternalId::Binary(b) => hash::bytes(b),
        ExternalId::Text(t) => hash::combine(1, hash::text(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_explanation_keeps_the_most_novel_edges_earliest_first_in_causal_order() {
        let mut stream = MachineStream::new(&Params::default(), false);
        let (src, dst) = (ExternalId::parse("src"), ExternalId::parse("dst"));
        let novelties: Vec<u32> = (0..60u32).map(|i| (i * 7) % 11 + 1).collect();
        for (i, n) in novelties.iter().enumerate() {
            let id = ExternalId::parse(&format!("edge-{i}"));
            let e = EdgeEvent {
                edge: &id,
                edge_type: "read",
                src: &src,
                src_type: None,
                dst: &dst,
                dst_type: None,
                time: None,
            };
            stream.offer_novel(&e, *n);
            stream.novel_edges += 1;
        }
        // Expected independently: rank all 60 by novelty (descending), then position; keep
        // 24; back in position order.
        let mut ranked: Vec<usize> = (0..novelties.len()).collect();
        ranked.sort_by_key(|i| (std::cmp::Reverse(novelties[*i]), *i));
        ranked.truncate(MAX_EXPLAINING_EDGES);
        ranked.sort_unstable();
        let expected: Vec<String> = ranked
            .iter()
            .map(|i| ExternalId::parse(&format!("edge-{i}")).to_string())
            .collect();
        let kept: Vec<String> = in_causal_order(std::mem::take(&mut stream.novel))
            .into_iter()
            .map(|e| e.edge)
            .collect();
        assert_eq!(kept, expected);
    }
}
