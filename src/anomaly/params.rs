//! The detector's parameters, stored with each model (scoring must use those it was trained
//! with).

use super::labels::MAX_HOPS;

/// Largest sketch a model may have.
pub const MAX_SKETCH_SIZE: u16 = 4096;
/// Largest decay factor. The sketch's cost grows with the histogram's total weight, which
/// decay bounds to about `1 / (1 - decay)` intervals' label increments; without decay (1)
/// it would grow with the stream.
pub const MAX_DECAY: f64 = 0.99;

/// Parameters of the streaming histogram, its sketch and training.
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct Params {
    /// Hops of Weisfeiler-Lehman relabelling (UNICORN's R; 1..=4).
    pub hops: u8,
    /// Slots of the sketch.
    pub sketch_size: u16,
    /// Edges of a machine between two snapshots (the scoring interval).
    pub snapshot_edges: u32,
    /// Factor applied to every histogram weight at each snapshot (0 < decay <=
    /// [`MAX_DECAY`]): older activity counts less, so a sketch describes the machine's
    /// recent behaviour.
    pub decay: f64,
    /// Vertices whose labels a machine keeps in memory (the least recently touched go).
    pub max_vertices: u32,
    /// Labels a machine's histogram keeps (the lightest go).
    pub max_labels: u32,
    /// Seed of the sketch's hash functions.
    pub seed: u64,
    /// Margin over the farthest training member of a cluster that still counts as normal,
    /// as a fraction of that distance.
    pub threshold_slack: f64,
    /// The least threshold of a cluster (a cluster of near-identical sketches would
    /// otherwise flag any noise).
    pub min_threshold: f64,
    /// The least novelty threshold: the fraction of an interval's label kinds never seen in
    /// training above which it is anomalous, whatever training measured.
    pub min_novelty: f64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            hops: 3,
            sketch_size: 512,
            snapshot_edges: 250,
            decay: 0.5,
            max_vertices: 1 << 14,
            max_labels: 1 << 14,
            seed: 0x5eed_u64,
            threshold_slack: 0.1,
            min_threshold: 0.1,
            min_novelty: 0.01,
        }
    }
}

impl Params {
    /// Why these parameters cannot be used, if they cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if self.hops == 0 || usize::from(self.hops) > MAX_HOPS {
            return Some("hops must be 1 to 4");
        }
        if self.sketch_size == 0 || self.sketch_size > MAX_SKETCH_SIZE {
            return Some("the sketch size must be 1 to 4096");
        }
        if self.snapshot_edges == 0 {
            return Some("the snapshot interval must be at least one edge");
        }
        if !(self.decay > 0.0 && self.decay <= MAX_DECAY) {
            return Some("decay must be in (0, 0.99]");
        }
        if self.max_vertices == 0 || self.max_labels == 0 {
            return Some("memory limits must be positive");
        }
        let in_range = |x: f64, max: f64| (0.0..=max).contains(&x);
        if !in_range(self.threshold_slack, 10.0)
            || !in_range(self.min_threshold, 1.0)
            || !in_range(self.min_novelty, 1.0)
        {
            return Some("thresholds must be finite and in range");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_must_forget_something() {
        let with = |decay| Params {
            decay,
            ..Params::default()
        };
        assert_eq!(with(0.99).problem(), None);
        assert_eq!(with(0.5).problem(), None);
        for bad in [1.0, 0.0, -0.5, f64::NAN] {
            assert!(with(bad).problem().is_some(), "{bad}");
        }
    }
}
