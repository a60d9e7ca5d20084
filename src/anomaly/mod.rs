//! Anomaly detection (UNICORN, Han et al., NDSS 2020): a machine's behaviour departs from
//! what it normally does.
//!
//! ```text
//! edge --WL relabelling (R hops)--> labels --+1--> decayed histogram
//!      --every N edges--> sketch (DartMinHash) --vs model (clusters + transitions)--> score
//! ```
//!
//! * [`labels`]: streaming Weisfeiler-Lehman labels of each vertex's R-hop in-neighbourhood
//!   (vertex and edge types), updated in O(R) per edge.
//! * [`sketch`]: the label histogram with exponential decay, and its sketch (DartMinHash:
//!   consistent darts under the histogram), whose slot agreement estimates weighted Jaccard
//!   similarity, in the role of UNICORN's HistoSketch.
//! * [`model`]: training clusters sketches (k-medoids, k by silhouette) into an evolution
//!   model with per-cluster thresholds; scoring follows the machine through it.
//! * [`codec`]: the versioned byte format of models; [`archive`]: models in the archive,
//!   and replaying an archive's history.
//!
//! ```
//! use provdb::anomaly::{EdgeEvent, Params, Trainer};
//! use provdb::ExternalId;
//! let params = Params { snapshot_edges: 2, sketch_size: 16, ..Params::default() };
//! let mut trainer = Trainer::new(&params);
//! trainer.start_run("example");
//! let (file, task) = (ExternalId::parse("file-1"), ExternalId::parse("task-1"));
//! for i in 0..8 {
//!     let edge = ExternalId::parse(&format!("edge-{i}"));
//!     trainer.edge(1, &EdgeEvent { edge: &edge, edge_type: "read", src: &file,
//!         src_type: Some("file"), dst: &task, dst_type: Some("task"), time: None });
//! }
//! let (model, _cost) = trainer.finish().expect("four intervals");
//! assert_eq!(model.training.snapshots, 4);
//! ```

pub mod archive;
pub mod codec;
mod hash;
pub mod labels;
pub mod model;
mod params;
pub mod sketch;
pub mod stream;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use archive::{ModelScope, ReplayFilter, StoredModel};
pub use codec::{ModelDecodeError, MODEL_FORMAT_VERSION};
pub use model::{Assessment, Model, TrainError, TrainingRun, TrainingSummary};
pub use params::{Params, MAX_DECAY, MAX_SKETCH_SIZE};
pub use sketch::Sketch;
pub use stream::{EdgeEvent, MachineStream, NovelEdge, Snapshot};

/// Builds a model from runs of history: each run (a source) and machine is one stream, whose
/// intervals' sketches form one training sequence.
#[derive(Debug)]
pub struct Trainer {
    params: Params,
    run: u32,
    streams: HashMap<(u32, u32), (MachineStream, TrainingRun)>,
    finished: Vec<TrainingRun>,
    labels: HashSet<u64>,
    summary: TrainingSummary,
    cost: StreamCost,
}

/// What the streams cost while training (for figures).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamCost {
    /// Time spent in the streams (labels, histogram, sketches), in nanoseconds.
    pub nanos: u128,
    /// Edges streamed.
    pub edges: u64,
    /// The largest state one machine's stream held, in bytes (approximate).
    pub peak_machine_bytes: usize,
}

impl Trainer {
    /// A trainer with these parameters.
    pub fn new(params: &Params) -> Trainer {
        Trainer {
            params: params.clone(),
            run: 0,
            streams: HashMap::new(),
            finished: Vec::new(),
            labels: HashSet::new(),
            summary: TrainingSummary::default(),
            cost: StreamCost::default(),
        }
    }

    /// What the streams have cost so far.
    pub fn cost(&self) -> StreamCost {
        self.cost
    }

    /// Starts the next source (an archive or a folder of logs).
    pub fn start_run(&mut self, source: &str) {
        self.close_streams();
        self.run += 1;
        self.summary.sources.push(source.to_owned());
    }

    /// Feeds one edge of a machine.
    pub fn edge(&mut self, machine: u32, e: &EdgeEvent<'_>) {
        let params = &self.params;
        let (stream, run) = self
            .streams
            .entry((self.run, machine))
            .or_insert_with(|| (MachineStream::new(params, true), TrainingRun::default()));
        let started = std::time::Instant::now();
        if let Some(s) = stream.edge(e, None) {
            run.sketches.push(s.sketch);
            run.kinds.push(s.kind_counts);
        }
        self.cost.nanos += started.elapsed().as_nanos();
        self.cost.edges += 1;
        self.summary.edges += 1;
        if let Some(t) = e.time {
            self.summary.since = Some(self.summary.since.map_or(t, |s| s.min(t)));
            self.summary.until = Some(self.summary.until.map_or(t, |u| u.max(t)));
        }
        if !self.summary.machines.contains(&machine) {
            self.summary.machines.push(machine);
        }
    }

    fn close_streams(&mut self) {
        let mut streams: Vec<_> = self.streams.drain().collect();
        streams.sort_unstable_by_key(|(k, _)| *k);
        for (_, (mut stream, mut run)) in streams {
            self.cost.peak_machine_bytes = self.cost.peak_machine_bytes.max(stream.memory_bytes());
            if let Some(s) = stream.flush() {
                run.sketches.push(s.sketch);
                run.kinds.push(s.kind_counts);
            }
            if self.labels.len() < stream::MAX_KNOWN_LABELS {
                self.labels.extend(stream.collected_labels());
            }
            if !run.sketches.is_empty() {
                self.finished.push(run);
            }
        }
    }

    /// Clusters what was fed into a model; also says what the streams cost.
    pub fn finish(mut self) -> Result<(Model, StreamCost), TrainError> {
        self.close_streams();
        let cost = self.cost;
        self.summary.runs = self.finished.len() as u32;
        self.summary.snapshots = self.finished.iter().map(|r| r.sketches.len() as u64).sum();
        self.summary.machines.sort_unstable();
        let model = Model::train(
            &self.params,
            &self.finished,
            self.labels.into_iter().collect(),
            self.summary,
        )?;
        Ok((model, cost))
    }
}

/// One interval of one machine, scored.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The machine.
    pub machine: u32,
    /// The model it was scored against (`fleet v1`, `machine 7 v2`).
    pub model: String,
    /// The interval.
    pub snapshot: Snapshot,
    /// How it compares with the model.
    pub assessment: Assessment,
}

/// Machines scored at once. A stream holds up to about a MiB (16,384 vertices' labels and
/// 16,384 histogram labels), and machine ids come from the data: a compromised machine could
/// claim any number of them. Past this many, the stream fed least recently is dropped (its
/// machine starts a new stream when it comes back).
pub const MAX_SCORED_MACHINES: usize = 1024;

/// Scores machines' edge streams against their models (a machine's own, else the fleet's).
#[derive(Debug, Default)]
pub struct Scorer {
    models: HashMap<ModelScope, Arc<StoredModel>>,
    streams: HashMap<u32, MachineScoring>,
    /// Edges fed so far: the clock of [`MachineScoring::last_fed`].
    fed: u64,
}

#[derive(Debug)]
struct MachineScoring {
    model: Arc<StoredModel>,
    stream: MachineStream,
    position: Option<u32>,
    last_fed: u64,
}

impl Scorer {
    /// A scorer with these models (the latest of each scope).
    pub fn new(models: impl IntoIterator<Item = StoredModel>) -> Scorer {
        Scorer {
            models: models.into_iter().map(|m| (m.scope, Arc::new(m))).collect(),
            streams: HashMap::new(),
            fed: 0,
        }
    }

    /// True when there is no model (nothing to score).
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The model a machine is scored against.
    pub fn model_for(&self, machine: u32) -> Option<&Arc<StoredModel>> {
        self.models
            .get(&ModelScope::Machine(machine))
            .or_else(|| self.models.get(&ModelScope::Fleet))
    }

    /// Feeds one edge of a machine; returns the interval it closes, scored.
    pub fn edge(&mut self, machine: u32, e: &EdgeEvent<'_>) -> Option<Scored> {
        self.fed += 1;
        if self.streams.len() >= MAX_SCORED_MACHINES && !self.streams.contains_key(&machine) {
            let stalest = self
                .streams
                .iter()
                .min_by_key(|(_, s)| s.last_fed)
                .map(|(m, _)| *m);
            if let Some(m) = stalest {
                self.streams.remove(&m);
            }
        }
        let scoring = match self.streams.entry(machine) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let model = self
                    .models
                    .get(&ModelScope::Machine(machine))
                    .or_else(|| self.models.get(&ModelScope::Fleet))?
                    .clone();
                v.insert(MachineScoring {
                    stream: MachineStream::new(&model.model.params, false),
                    model,
                    position: None,
                    last_fed: 0,
                })
            }
        };
        scoring.last_fed = self.fed;
        let snapshot = scoring
            .stream
            .edge(e, Some(&scoring.model.model.known_labels))?;
        Some(scoring.score(machine, snapshot))
    }

    /// Closes every machine's current interval (end of a run).
    pub fn flush(&mut self) -> Vec<Scored> {
        let mut machines: Vec<u32> = self.streams.keys().copied().collect();
        machines.sort_unstable();
        let mut out = Vec::new();
        for m in machines {
            if let Some(s) = self.streams.get_mut(&m) {
                if let Some(snapshot) = s.stream.flush() {
                    out.push(s.score(m, snapshot));
                }
            }
        }
        out
    }

    /// Forgets the streams (a new run starts).
    pub fn reset(&mut self) {
        self.streams.clear();
    }
}

impl MachineScoring {
    fn score(&mut self, machine: u32, snapshot: Snapshot) -> Scored {
        let assessment =
            self.model
                .model
                .assess(&mut self.position, &snapshot.sketch, snapshot.novelty());
        Scored {
            machine,
            model: self.model.name(),
            snapshot,
            assessment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provdb_storage::ExternalId;

    /// A benign-looking machine: tasks read and write files and clone children; `salt`
    /// changes every id (a different run), not the structure's kinds.
    fn benign_edges(
        salt: u64,
        n: u64,
    ) -> Vec<(String, &'static str, String, &'static str, &'static str)> {
        (0..n)
            .map(|i| {
                let task = format!("{salt}-task-{}", i / 6);
                let file = format!("{salt}-file-{}", (i * 7) % 40);
                match i % 3 {
                    0 => (file, "file", task, "task", "read"),
                    1 => (task, "task", file, "file", "write"),
                    _ => (
                        task,
                        "task",
                        format!("{salt}-task-{}", i / 6 + 1),
                        "task",
                        "clone",
                    ),
                }
            })
            .collect()
    }

    fn event_of<'a>(
        ids: &'a (ExternalId, ExternalId, ExternalId),
        e: &'a (String, &'static str, String, &'static str, &'static str),
    ) -> EdgeEvent<'a> {
        EdgeEvent {
            edge: &ids.0,
            edge_type: e.4,
            src: &ids.1,
            src_type: Some(e.1),
            dst: &ids.2,
            dst_type: Some(e.3),
            time: None,
        }
    }

    fn ids(
        i: usize,
        e: &(String, &'static str, String, &'static str, &'static str),
    ) -> (ExternalId, ExternalId, ExternalId) {
        (
            ExternalId::parse(&format!("edge-{i}-{}", e.0)),
            ExternalId::parse(&e.0),
            ExternalId::parse(&e.2),
        )
    }

    fn params() -> Params {
        Params {
            snapshot_edges: 60,
            sketch_size: 128,
            ..Params::default()
        }
    }

    fn trained() -> StoredModel {
        let mut trainer = Trainer::new(&params());
        for salt in [1, 2] {
            trainer.start_run(&format!("run {salt}"));
            for (i, e) in benign_edges(salt, 600).iter().enumerate() {
                let ids = ids(i, e);
                trainer.edge(1, &event_of(&ids, e));
            }
        }
        StoredModel {
            scope: ModelScope::Fleet,
            version: 1,
            model: trainer.finish().expect("trains").0,
        }
    }

    fn score(
        model: &StoredModel,
        edges: &[(String, &'static str, String, &'static str, &'static str)],
    ) -> Vec<Scored> {
        let mut scorer = Scorer::new([model.clone()]);
        let mut out = Vec::new();
        for (i, e) in edges.iter().enumerate() {
            let ids = ids(i, e);
            out.extend(scorer.edge(5, &event_of(&ids, e)));
        }
        out.extend(scorer.flush());
        out
    }

    #[test]
    fn machines_claimed_by_the_data_are_bounded_and_the_stalest_go() {
        let model = trained();
        let mut scorer = Scorer::new([model]);
        let e = &benign_edges(1, 1)[0];
        let ids = ids(0, e);
        // A machine fed first, then one more than the bound of other machines, then the
        // first again half-way: it stays, the stalest go.
        let extra = 10u32;
        for m in 0..MAX_SCORED_MACHINES as u32 + extra {
            scorer.edge(1000 + m, &event_of(&ids, e));
            if m == MAX_SCORED_MACHINES as u32 / 2 {
                scorer.edge(1000, &event_of(&ids, e));
            }
        }
        assert_eq!(scorer.streams.len(), MAX_SCORED_MACHINES);
        assert!(scorer.streams.contains_key(&1000), "fed recently: kept");
        for m in 1..=extra {
            assert!(
                !scorer.streams.contains_key(&(1000 + m)),
                "machine {m} was stalest"
            );
        }
        let newest = 1000 + MAX_SCORED_MACHINES as u32 + extra - 1;
        assert!(scorer.streams.contains_key(&newest));
    }

    #[test]
    fn another_run_of_the_same_behaviour_is_normal() {
        let model = trained();
        let scored = score(&model, &benign_edges(3, 600));
        assert_eq!(scored.len(), 10);
        assert!(
            scored.iter().all(|s| !s.assessment.is_anomalous()),
            "{scored:?}"
        );
        assert!(scored.iter().all(|s| s.snapshot.novel_edges == 0));
    }

    #[test]
    fn a_server_spawning_a_shell_is_anomalous_and_explained_by_its_edges() {
        let model = trained();
        let mut edges = benign_edges(4, 600);
        // In interval 5 (edges 300-359): a socket accepted by a task that execs a shell,
        // which connects out: edge types (and so labels at every hop) never seen before.
        let attack: Vec<(String, &'static str, String, &'static str, &'static str)> = (0..20)
            .flat_map(|i| {
                [
                    (
                        format!("sock-{i}"),
                        "socket",
                        format!("srv-{i}"),
                        "task",
                        "accept",
                    ),
                    (
                        format!("srv-{i}"),
                        "task",
                        format!("sh-{i}"),
                        "task",
                        "exec",
                    ),
                    (
                        format!("sh-{i}"),
                        "task",
                        format!("out-{i}"),
                        "socket",
                        "connect",
                    ),
                ]
            })
            .collect();
        edges.splice(300..300, attack);
        let scored = score(&model, &edges);
        let anomalous: Vec<&Scored> = scored
            .iter()
            .filter(|s| s.assessment.is_anomalous())
            .collect();
        assert!(!anomalous.is_empty(), "{scored:?}");
        // Where the attack is: intervals 5 and 6 (it is 60 edges long, from edge 300).
        assert!(
            anomalous.iter().all(|s| s.snapshot.index >= 5),
            "{anomalous:?}"
        );
        let first = anomalous[0];
        let types: Vec<&str> = first
            .snapshot
            .novel
            .iter()
            .map(|e| e.edge_type.as_str())
            .collect();
        // The most novel come first: accept and connect also bring a vertex type (socket)
        // never seen, so they outrank exec.
        assert!(
            types.contains(&"accept") && types.contains(&"connect"),
            "{types:?}"
        );
        assert!(
            types
                .iter()
                .all(|t| ["accept", "exec", "connect"].contains(t)),
            "{types:?}"
        );
        assert_eq!(first.snapshot.novel_edges, 60);
        // Benign intervals before it have nothing novel.
        assert!(scored[..5].iter().all(|s| s.snapshot.novel_edges == 0));
    }
}
