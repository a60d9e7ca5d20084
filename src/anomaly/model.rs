//! The model of a machine's normal behaviour (UNICORN's evolution model): its training
//! sketches clustered around medoids, each cluster with the distance within which a sketch
//! still belongs to it, and the transitions between clusters seen in training. A sketch is
//! normal when a cluster reachable from the machine's current one (itself or a successor)
//! is near enough.
//!
//! provdb adds a second criterion, the interval's *novelty*: the fraction of its label
//! kinds (hops 0 and 1: vertex types, in-edge types with their senders' types) that training
//! never saw. A short attack (tens of edges among hundreds) hardly moves the sketch of a
//! whole machine, but its new kinds of edges stand out; the threshold is learned like the
//! sketch thresholds, as the most novelty a benign training run shows against the others
//! (leave one run out).

use super::params::Params;
use super::sketch::Sketch;

/// Most clusters a model may have.
pub const MAX_CLUSTERS: usize = 64;
/// Most clusters training tries.
const MAX_TRAINED_CLUSTERS: usize = 8;
/// Training clusters at most this many sketches (an even subsample of longer histories):
/// clustering is quadratic in them.
const MAX_CLUSTERED_SKETCHES: usize = 800;
/// Below this mean silhouette, more clusters than one do not describe the data better.
const MIN_SILHOUETTE: f64 = 0.25;
/// Iterations of k-medoids' alternation.
const MAX_ITERATIONS: usize = 30;

/// What a model was trained on.
#[derive(Debug, Clone, Default, PartialEq, bincode::Encode, bincode::Decode)]
pub struct TrainingSummary {
    /// Training runs (one per machine and source).
    pub runs: u32,
    /// Sketches (intervals) trained on.
    pub snapshots: u64,
    /// Edges read.
    pub edges: u64,
    /// Machines whose history it learned.
    pub machines: Vec<u32>,
    /// Time range of the history (Unix seconds).
    pub since: Option<i64>,
    /// See `since`.
    pub until: Option<i64>,
    /// Sources (archives or folders), for the record.
    pub sources: Vec<String>,
}

/// A trained model.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct Model {
    /// Parameters it was trained with (scoring uses them).
    pub params: Params,
    /// The clusters' medoid sketches.
    pub medoids: Vec<Sketch>,
    /// Per cluster: the greatest distance to its medoid that is still normal.
    pub thresholds: Vec<f64>,
    /// Cluster transitions seen in training, `(from, to)`, self-loops included, sorted.
    pub transitions: Vec<(u32, u32)>,
    /// Every label seen in training, sorted (labels outside it are novel).
    pub known_labels: Vec<u64>,
    /// Novelty (fraction of an interval's label kinds never seen in training) above which an
    /// interval is anomalous.
    pub novelty_threshold: f64,
    /// What it learned from.
    pub training: TrainingSummary,
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The history had no complete interval.
    #[error("no interval to train on: the history has fewer edges than one snapshot interval ({0} edges)")]
    NoSnapshots(u32),
    /// The parameters cannot be used.
    #[error("invalid parameters: {0}")]
    InvalidParams(&'static str),
}

/// How a sketch compares with a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    /// The nearest cluster the machine may be in (reachable from its current one).
    pub cluster: u32,
    /// Distance to that cluster's medoid.
    pub distance: f64,
    /// That cluster's threshold.
    pub threshold: f64,
    /// `distance / threshold`: the sketch criterion (above 1 is anomalous).
    pub sketch_score: f64,
    /// The interval's novelty.
    pub novelty: f64,
    /// The model's novelty threshold.
    pub novelty_threshold: f64,
    /// The greater of `sketch_score` and `novelty / novelty_threshold`: above 1 is
    /// anomalous.
    pub score: f64,
    /// The nearest cluster overall, where the machine is taken to be afterwards.
    pub nearest: u32,
}

impl Assessment {
    /// True when no reachable cluster is near enough.
    pub fn is_anomalous(&self) -> bool {
        self.score > 1.0
    }
}

/// One training sequence: a machine's intervals in one source, in order.
#[derive(Debug, Clone, Default)]
pub struct TrainingRun {
    /// Each interval's sketch.
    pub sketches: Vec<Sketch>,
    /// Each interval's label kinds with their counts (sorted by label).
    pub kinds: Vec<Vec<(u64, u32)>>,
}

impl Model {
    /// Trains a model on runs (each a machine's intervals in order).
    pub fn train(
        params: &Params,
        runs: &[TrainingRun],
        known_labels: Vec<u64>,
        training: TrainingSummary,
    ) -> Result<Model, TrainError> {
        if let Some(p) = params.problem() {
            return Err(TrainError::InvalidParams(p));
        }
        let all: Vec<&Sketch> = runs.iter().flat_map(|r| &r.sketches).collect();
        if all.is_empty() {
            return Err(TrainError::NoSnapshots(params.snapshot_edges));
        }
        let step = all.len().div_ceil(MAX_CLUSTERED_SKETCHES);
        let points: Vec<&Sketch> = all.iter().step_by(step.max(1)).copied().collect();
        let distances = DistanceMatrix::new(&points);
        let medoids = choose_clustering(&distances);
        let medoid_sketches: Vec<Sketch> = medoids.iter().map(|m| points[*m].clone()).collect();
        // Thresholds from every training sketch, not only the clustered subsample.
        let mut farthest = vec![0.0f64; medoids.len()];
        let mut transitions: Vec<(u32, u32)> = Vec::new();
        for run in runs {
            let mut previous: Option<u32> = None;
            for s in &run.sketches {
                let (c, d) = nearest(&medoid_sketches, s);
                farthest[c as usize] = farthest[c as usize].max(d);
                transitions.push((c, c));
                if let Some(p) = previous {
                    transitions.push((p, c));
                }
                previous = Some(c);
            }
        }
        transitions.sort_unstable();
        transitions.dedup();
        let thresholds = farthest
            .iter()
            .map(|d| (d * (1.0 + params.threshold_slack)).max(params.min_threshold))
            .collect();
        let mut known_labels = known_labels;
        known_labels.sort_unstable();
        known_labels.dedup();
        let novelty_threshold =
            (benign_novelty(runs) * (1.0 + params.threshold_slack)).clamp(params.min_novelty, 1.0);
        Ok(Model {
            params: params.clone(),
            medoids: medoid_sketches,
            thresholds,
            transitions,
            known_labels,
            novelty_threshold,
            training,
        })
    }

    /// Compares an interval (its sketch and novelty) with the model; `position` is the
    /// machine's current cluster (none at the start of a stream) and is moved to the
    /// nearest cluster.
    pub fn assess(&self, position: &mut Option<u32>, sketch: &Sketch, novelty: f64) -> Assessment {
        let score_of = |c: u32| {
            let i = c as usize;
            let d = self.medoids.get(i).map_or(1.0, |m| m.distance(sketch));
            let t = self.thresholds.get(i).copied().unwrap_or(0.0);
            (d, t, if t > 0.0 { d / t } else { f64::INFINITY })
        };
        let reachable: Vec<u32> = match *position {
            None => (0..self.medoids.len() as u32).collect(),
            Some(p) => self
                .transitions
                .iter()
                .filter(|(from, _)| *from == p)
                .map(|(_, to)| *to)
                .chain(std::iter::once(p))
                .collect(),
        };
        let best = |cs: &mut dyn Iterator<Item = u32>| {
            cs.map(|c| (c, score_of(c)))
                .min_by(|a, b| a.1 .2.total_cmp(&b.1 .2))
        };
        let overall =
            best(&mut (0..self.medoids.len() as u32)).unwrap_or((0, (1.0, 0.0, f64::INFINITY)));
        let (cluster, (distance, threshold, sketch_score)) =
            best(&mut reachable.into_iter()).unwrap_or(overall);
        *position = Some(overall.0);
        let novelty_score = if self.novelty_threshold > 0.0 {
            novelty / self.novelty_threshold
        } else {
            0.0
        };
        Assessment {
            cluster,
            distance,
            threshold,
            sketch_score,
            novelty,
            novelty_threshold: self.novelty_threshold,
            score: sketch_score.max(novelty_score),
            nearest: overall.0,
        }
    }

    /// Bytes of memory the model takes (for figures).
    pub fn memory_bytes(&self) -> usize {
        self.medoids
            .iter()
            .map(|m| m.slots.len() * 8)
            .sum::<usize>()
            + self.thresholds.len() * 8
            + self.transitions.len() * 8
            + self.known_labels.len() * 8
    }
}

/// The most novelty a benign interval shows against the rest of training: with several
/// runs, each run's intervals against the kinds of the other runs (leave one run out); with
/// one, each interval against the kinds of the intervals before it (its first excepted).
fn benign_novelty(runs: &[TrainingRun]) -> f64 {
    let kinds_of = |r: &TrainingRun| -> std::collections::HashSet<u64> {
        r.kinds.iter().flatten().map(|(l, _)| *l).collect()
    };
    let novelty = |interval: &[(u64, u32)], known: &dyn Fn(u64) -> bool| {
        let total: u64 = interval.iter().map(|(_, c)| u64::from(*c)).sum();
        let novel: u64 = interval
            .iter()
            .filter(|(l, _)| !known(*l))
            .map(|(_, c)| u64::from(*c))
            .sum();
        if total == 0 {
            0.0
        } else {
            novel as f64 / total as f64
        }
    };
    let mut most = 0.0f64;
    if runs.len() >= 2 {
        let sets: Vec<std::collections::HashSet<u64>> = runs.iter().map(kinds_of).collect();
        for (i, run) in runs.iter().enumerate() {
            let known = |l: u64| {
                sets.iter()
                    .enumerate()
                    .any(|(j, s)| j != i && s.contains(&l))
            };
            for interval in &run.kinds {
                most = most.max(novelty(interval, &known));
            }
        }
    } else if let Some(run) = runs.first() {
        let mut seen: std::collections::HashSet<u64> = std::collections::HashSet::new();
        for (k, interval) in run.kinds.iter().enumerate() {
            if k > 0 {
                most = most.max(novelty(interval, &|l| seen.contains(&l)));
            }
            seen.extend(interval.iter().map(|(l, _)| *l));
        }
    }
    most
}

/// The nearest medoid and its distance.
fn nearest(medoids: &[Sketch], s: &Sketch) -> (u32, f64) {
    medoids
        .iter()
        .enumerate()
        .map(|(i, m)| (i as u32, m.distance(s)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 1.0))
}

/// Pairwise distances of the clustered sketches.
struct DistanceMatrix {
    n: usize,
    d: Vec<f32>,
}

impl DistanceMatrix {
    fn new(points: &[&Sketch]) -> DistanceMatrix {
        let n = points.len();
        let mut d = vec![0.0f32; n * n];
        for i in 0..n {
            for j in (i + 1)..n {
                let x = points[i].distance(points[j]) as f32;
                d[i * n + j] = x;
                d[j * n + i] = x;
            }
        }
        DistanceMatrix { n, d }
    }

    fn get(&self, i: usize, j: usize) -> f64 {
        f64::from(self.d[i * self.n + j])
    }
}

/// k-medoids for k = 1..=8, keeping the k of best mean silhouette (one cluster unless
/// several describe the data clearly better).
fn choose_clustering(d: &DistanceMatrix) -> Vec<usize> {
    let mut best = k_medoids(d, 1);
    let mut best_silhouette = MIN_SILHOUETTE;
    for k in 2..=MAX_TRAINED_CLUSTERS.min(d.n.saturating_sub(1)) {
        let medoids = k_medoids(d, k);
        let s = silhouette(d, &medoids);
        if s > best_silhouette {
            best_silhouette = s;
            best = medoids;
        }
    }
    best
}

fn assign(d: &DistanceMatrix, medoids: &[usize], i: usize) -> (usize, f64) {
    medoids
        .iter()
        .enumerate()
        .map(|(c, m)| (c, d.get(i, *m)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0))
}

/// k-medoids: greedy build, then alternate assignment and medoid update until stable.
fn k_medoids(d: &DistanceMatrix, k: usize) -> Vec<usize> {
    let n = d.n;
    let mut medoids: Vec<usize> = Vec::with_capacity(k);
    let cost_with = |medoids: &[usize], extra: usize| -> f64 {
        (0..n)
            .map(|i| {
                medoids
                    .iter()
                    .map(|m| d.get(i, *m))
                    .fold(d.get(i, extra), f64::min)
            })
            .sum()
    };
    while medoids.len() < k.min(n) {
        let next = (0..n)
            .filter(|c| !medoids.contains(c))
            .map(|c| (c, cost_with(&medoids, c)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match next {
            Some((c, _)) => medoids.push(c),
            None => break,
        }
    }
    for _ in 0..MAX_ITERATIONS {
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); medoids.len()];
        for i in 0..n {
            members[assign(d, &medoids, i).0].push(i);
        }
        let mut changed = false;
        for (c, ms) in members.iter().enumerate() {
            let centre = ms
                .iter()
                .map(|a| (*a, ms.iter().map(|b| d.get(*a, *b)).sum::<f64>()))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((m, _)) = centre {
                if m != medoids[c] {
                    medoids[c] = m;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    medoids
}

/// Mean silhouette of a clustering.
fn silhouette(d: &DistanceMatrix, medoids: &[usize]) -> f64 {
    let n = d.n;
    let labels: Vec<usize> = (0..n).map(|i| assign(d, medoids, i).0).collect();
    let mut total = 0.0;
    for i in 0..n {
        let mut sums = vec![(0.0f64, 0usize); medoids.len()];
        for j in 0..n {
            if i != j {
                sums[labels[j]].0 += d.get(i, j);
                sums[labels[j]].1 += 1;
            }
        }
        let own = sums[labels[i]];
        if own.1 == 0 {
            continue; // a singleton's silhouette is 0
        }
        let a = own.0 / own.1 as f64;
        let b = sums
            .iter()
            .enumerate()
            .filter(|(c, s)| *c != labels[i] && s.1 > 0)
            .map(|(_, s)| s.0 / s.1 as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() && a.max(b) > 0.0 {
            total += (b - a) / a.max(b);
        }
    }
    total / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch(prefix: u64, agree: usize, size: usize, salt: u64) -> Sketch {
        // The first `agree` slots carry the group's labels, the rest noise.
        Sketch {
            slots: (0..size)
                .map(|i| {
                    if i < agree {
                        prefix + i as u64
                    } else {
                        salt * 10_000 + i as u64
                    }
                })
                .collect(),
        }
    }

    /// A model of one run of sketches (no label kinds).
    fn train_one(params: &Params, sketches: Vec<Sketch>) -> Model {
        let run = TrainingRun {
            kinds: vec![Vec::new(); sketches.len()],
            sketches,
        };
        Model::train(params, &[run], vec![], TrainingSummary::default()).expect("trains")
    }

    #[test]
    fn novelty_beyond_what_benign_runs_show_is_anomalous() {
        let params = Params {
            sketch_size: 4,
            ..Params::default()
        };
        let s = Sketch {
            slots: vec![1, 2, 3, 4],
        };
        // Run A knows kinds 1, 2; run B 1, 2, 3 (3 once in 10). Left out, B's interval is
        // 1/10 novel against A: the benign novelty, so the threshold is 0.1 x 1.1.
        let a = TrainingRun {
            sketches: vec![s.clone()],
            kinds: vec![vec![(1, 5), (2, 5)]],
        };
        let b = TrainingRun {
            sketches: vec![s.clone()],
            kinds: vec![vec![(1, 5), (2, 4), (3, 1)]],
        };
        let model = Model::train(&params, &[a, b], vec![1, 2, 3], TrainingSummary::default())
            .expect("trains");
        assert!(
            (model.novelty_threshold - 0.11).abs() < 1e-9,
            "{}",
            model.novelty_threshold
        );
        let mut position = None;
        assert!(!model.assess(&mut position, &s, 0.1).is_anomalous());
        let novel = model.assess(&mut position, &s, 0.2);
        assert!(novel.is_anomalous() && novel.sketch_score < 1.0);
        assert!((novel.score - 0.2 / 0.11).abs() < 1e-9);
    }

    #[test]
    fn two_behaviours_make_two_clusters_and_a_third_is_anomalous() {
        let params = Params {
            sketch_size: 100,
            ..Params::default()
        };
        // Behaviour A then B, alternating in runs of sketches that agree on 80 of 100 slots.
        let run: Vec<Sketch> = (0..20)
            .map(|i| {
                let group = if (i / 5) % 2 == 0 {
                    1_000_000
                } else {
                    2_000_000
                };
                sketch(group, 80, 100, i)
            })
            .collect();
        let model = train_one(&params, run);
        assert_eq!(model.medoids.len(), 2);
        // Members are 0.2 from each other: thresholds are 0.2 x 1.1.
        for t in &model.thresholds {
            assert!((t - 0.22).abs() < 1e-9, "{t}");
        }
        let mut position = None;
        let a = model.assess(&mut position, &sketch(1_000_000, 80, 100, 99), 0.0);
        assert!(!a.is_anomalous() && (a.distance - 0.2).abs() < 1e-9);
        // A sketch sharing half the slots with A is 0.5 away: anomalous, score 0.5 / 0.22.
        let c = model.assess(&mut position, &sketch(1_000_000, 50, 100, 98), 0.0);
        assert!(c.is_anomalous());
        assert!((c.score - 0.5 / 0.22).abs() < 1e-9, "{}", c.score);
    }

    #[test]
    fn a_cluster_never_reached_from_the_current_one_is_anomalous() {
        let params = Params {
            sketch_size: 100,
            ..Params::default()
        };
        // A, A, A, B, B, B, C, C, C: C is reached from B, never from A directly.
        let groups = [1u64, 1, 1, 2, 2, 2, 3, 3, 3];
        let run: Vec<Sketch> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| sketch(g * 1_000_000, 90, 100, i as u64))
            .collect();
        let model = train_one(&params, run);
        assert_eq!(model.medoids.len(), 3);
        let mut position = None;
        assert!(!model
            .assess(&mut position, &sketch(1_000_000, 90, 100, 50), 0.0)
            .is_anomalous());
        let jump = model.assess(&mut position, &sketch(3_000_000, 90, 100, 51), 0.0);
        assert!(jump.is_anomalous(), "A -> C was never seen");
        // The machine is now taken to be in C: staying there is normal.
        assert!(!model
            .assess(&mut position, &sketch(3_000_000, 90, 100, 52), 0.0)
            .is_anomalous());
    }

    #[test]
    fn training_without_intervals_is_an_error() {
        let e = Model::train(
            &Params::default(),
            &[TrainingRun::default()],
            vec![],
            TrainingSummary::default(),
        );
        assert!(matches!(e, Err(TrainError::NoSnapshots(250))));
    }
}
