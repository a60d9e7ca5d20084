//! A machine's decayed label histogram and its sketch: a fixed number of slots whose
//! agreement estimates the weighted Jaccard similarity `sum min(x, y) / sum max(x, y)` of two
//! histograms, as the HistoSketch of UNICORN (Yang et al., ICDM 2017) does.
//!
//! The sketch is DartMinHash's (Christiani, "DartMinHash: Fast Sketching for Weighted
//! Sets", 2020, arXiv:2005.11547), with a simpler grid. Picture a histogram as the region
//! `{(label, u, t): 0 <= u < weight(label), t >= 0}` and throw darts at it: a Poisson process
//! of one dart per unit of weight and time per slot, each dart in a uniformly random slot.
//! Whether a dart exists, its time, slot and id depend only on `(seed, label, cell, n)`,
//! never on the histogram, so two histograms see the same darts where their regions overlap.
//! A slot holds the id of its earliest dart under the histogram. For two histograms `x` and
//! `y`, a slot's earliest dart under the union `max(x, y)` is uniform over that area; it is
//! the earliest of both exactly when it falls under `min(x, y)` (then both slots hold it),
//! and otherwise the two slots hold different darts. So slots agree with probability
//! exactly `sum min / sum max` (ids are 64-bit hashes: a chance collision is negligible).
//!
//! Cost: darts are generated label by label, in unit cells of weight, each cell's darts in
//! time order, only up to a horizon `T` chosen so that every slot is likely hit
//! (`T = (ln k + 3) / total weight` leaves a slot empty with probability `e^-3 / k`; a pass
//! that leaves one empty is redone with `2T`). A pass draws about `k (ln k + 3)` darts plus
//! one per label and unit of weight: O(labels + weight + k ln k), against ICWS's
//! O(k x labels), which was about 250 us of CPU per edge at k = 512 (`benches/anomaly.rs`).
//! The total weight is bounded by the decay (see [`crate::anomaly::MAX_DECAY`]).

use std::collections::HashMap;

use super::hash;

/// Below this weight a decayed label is dropped.
const MIN_WEIGHT: f64 = 0.01;

/// Label -> weight, decayed at each snapshot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Histogram {
    weights: HashMap<u64, f64>,
}

impl Histogram {
    pub(crate) fn add(&mut self, label: u64) {
        *self.weights.entry(label).or_insert(0.0) += 1.0;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.weights.len()
    }

    /// Approximate bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.weights.capacity() * (std::mem::size_of::<(u64, f64)>() + 1)
    }

    /// Multiplies every weight by `factor`, drops the negligible ones, and keeps at most
    /// `max_labels` (the heaviest).
    pub(crate) fn decay(&mut self, factor: f64, max_labels: usize) {
        self.weights.retain(|_, w| {
            *w *= factor;
            *w >= MIN_WEIGHT
        });
        if self.weights.len() > max_labels {
            let mut ws: Vec<f64> = self.weights.values().copied().collect();
            let cut = ws.len() - max_labels;
            ws.select_nth_unstable_by(cut, f64::total_cmp);
            let floor = ws[cut];
            self.weights.retain(|_, w| *w >= floor);
        }
    }

    /// The sketch of the histogram as it is (see the module's documentation).
    pub(crate) fn sketch(&self, size: usize, seed: u64) -> Sketch {
        let total: f64 = self.weights.values().sum();
        if size == 0 || !(total > 0.0 && total.is_finite()) {
            return Sketch {
                slots: vec![0; size],
            };
        }
        let mut horizon = Horizon::new(((size as f64).ln() + HORIZON_MARGIN) / total, size);
        let mut earliest = vec![Dart::NONE; size];
        for _ in 0..MAX_PASSES {
            earliest.fill(Dart::NONE);
            // In any order: the earliest dart of a slot does not depend on it (ties broken by
            // id), so the hash map's order, which varies by process, cannot change a sketch.
            for (label, weight) in &self.weights {
                throw_darts(seed, *label, *weight, horizon, &mut earliest);
            }
            if earliest.iter().all(|d| d.time.is_finite()) {
                break;
            }
            horizon = Horizon::new(horizon.time * 2.0, size);
        }
        Sketch {
            slots: earliest.iter().map(|d| d.id).collect(),
        }
    }
}

/// Margin of the first pass's horizon: a slot is left empty with probability `e^-3 / k`,
/// so a pass is redone for about 5% of sketches.
const HORIZON_MARGIN: f64 = 3.0;
/// Passes before giving up on filling every slot (each doubles the horizon: after the
/// first few, an empty slot has probability below `e^-100`). An empty slot holds 0.
const MAX_PASSES: usize = 12;

/// How far in time a pass throws darts.
#[derive(Debug, Clone, Copy)]
struct Horizon {
    time: f64,
    /// `exp(-k time)`: most cells have no dart before the horizon; their first gap
    /// `-ln(u) / k` exceeds it exactly when `u` is below this, tested without a logarithm.
    first_within: f64,
}

impl Horizon {
    fn new(time: f64, slots: usize) -> Horizon {
        Horizon {
            time,
            first_within: (-(slots as f64) * time).exp(),
        }
    }
}

/// A slot's earliest dart so far.
#[derive(Debug, Clone, Copy)]
struct Dart {
    time: f64,
    id: u64,
}

impl Dart {
    const NONE: Dart = Dart {
        time: f64::INFINITY,
        id: 0,
    };

    fn is_before(&self, other: &Dart) -> bool {
        self.time < other.time || (self.time == other.time && self.id < other.id)
    }
}

/// Throws the darts of one label up to the horizon: in each unit cell `[j, j + 1)` of weight
/// below `weight`, a Poisson process in time of rate `k` (one per slot), darts numbered
/// `n = 0, 1, ...`; the dart lands at weight `j + v` (kept if below `weight`) in slot `s`.
fn throw_darts(seed: u64, label: u64, weight: f64, horizon: Horizon, earliest: &mut [Dart]) {
    let k = earliest.len();
    let rate = k as f64;
    let of_label = hash::combine(seed, label);
    // Unit cells up to the weight, rounded up (a cast, cheaper than `ceil`). A weight is at
    // most the label increments of a few intervals' edges: a small finite count.
    let whole = weight as u64;
    let cells = whole + u64::from((whole as f64) < weight);
    for j in 0..cells {
        let cell = hash::mix(of_label ^ j.wrapping_mul(CELL_STREAM));
        let mut id = hash::mix(cell);
        let u = hash::unit(id);
        if u < horizon.first_within {
            continue;
        }
        let mut time = -u.ln() / rate;
        let mut n = 0u64;
        while time <= horizon.time {
            let place = hash::mix(id ^ PLACE_STREAM);
            // Slot: the high 32 bits scaled to k (k <= 4096); weight: the low 32 bits.
            let slot = (((place >> 32) * k as u64) >> 32) as usize;
            let at = j as f64 + (place & 0xffff_ffff) as f64 / 4_294_967_296.0;
            if at < weight {
                let dart = Dart { time, id };
                if let Some(e) = earliest.get_mut(slot) {
                    if dart.is_before(e) {
                        *e = dart;
                    }
                }
            }
            n += 1;
            id = hash::mix(cell.wrapping_add(n.wrapping_mul(DART_STREAM)));
            time += -hash::unit(id).ln() / rate;
        }
    }
}

/// Odd constants that separate the hash streams of cells, darts and placements.
const CELL_STREAM: u64 = 0x9e37_79b9_7f4a_7c15;
/// See [`CELL_STREAM`].
const DART_STREAM: u64 = 0xd1b5_4a32_d192_ed03;
/// Distinguishes a dart's placement hash from its time hash.
const PLACE_STREAM: u64 = 0x243f_6a88_85a3_08d3;

/// A sketch of a histogram: per slot, the id of its earliest dart (0 when the histogram was
/// empty). Only agreement between slots means anything.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Sketch {
    /// The dart chosen in each slot.
    pub slots: Vec<u64>,
}

impl Sketch {
    /// Estimated weighted Jaccard similarity: the fraction of slots that agree (0 for
    /// sketches of different sizes). Unbiased, with standard error `sqrt(J (1 - J) / k)`.
    pub fn similarity(&self, other: &Sketch) -> f64 {
        if self.slots.len() != other.slots.len() || self.slots.is_empty() {
            return 0.0;
        }
        let same = self
            .slots
            .iter()
            .zip(&other.slots)
            .filter(|(a, b)| a == b)
            .count();
        same as f64 / self.slots.len() as f64
    }

    /// `1 - similarity`.
    pub fn distance(&self, other: &Sketch) -> f64 {
        1.0 - self.similarity(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(items: &[(u64, u32)]) -> Histogram {
        let mut h = Histogram::default();
        for (label, n) in items {
            for _ in 0..*n {
                h.add(*label);
            }
        }
        h
    }

    /// Labels with their weights.
    type Weights = Vec<(u64, f64)>;

    /// A histogram with these (fractional) weights, as decay leaves them.
    fn weighted(items: &[(u64, f64)]) -> Histogram {
        Histogram {
            weights: items.iter().copied().collect(),
        }
    }

    /// Weighted Jaccard similarity `sum min / sum max`, computed directly from the lists.
    fn weighted_jaccard(a: &[(u64, f64)], b: &[(u64, f64)]) -> f64 {
        let get = |v: &[(u64, f64)], l: u64| v.iter().find(|(x, _)| *x == l).map_or(0.0, |p| p.1);
        let mut labels: Vec<u64> = a.iter().chain(b).map(|(l, _)| *l).collect();
        labels.sort_unstable();
        labels.dedup();
        let (mut min, mut max) = (0.0, 0.0);
        for l in labels {
            min += f64::min(get(a, l), get(b, l));
            max += f64::max(get(a, l), get(b, l));
        }
        min / max
    }

    /// Two decayed histograms: shared labels whose weights differ, labels of one only, a
    /// heavy label (many unit cells) and labels below one (a partial cell).
    fn two_histograms() -> (Weights, Weights) {
        let a: Weights = (1..=60)
            .map(|l| (l, f64::from((l % 7) as u32) * 0.75 + 0.05))
            .chain([(500, 40.0)])
            .collect();
        let mut b: Weights = a[10..].iter().map(|(l, w)| (*l, w * 1.5)).collect();
        b.extend((100..120).map(|l| (l, 0.3)));
        b.push((500, 25.5));
        (a, b)
    }

    #[test]
    fn slot_agreement_estimates_weighted_jaccard() {
        let (a, b) = two_histograms();
        // Worked out from the lists above: 0.5 to 0.6.
        let expected = weighted_jaccard(&a, &b);
        assert!((0.4..0.7).contains(&expected), "{expected}");
        let got = weighted(&a)
            .sketch(2048, 7)
            .similarity(&weighted(&b).sketch(2048, 7));
        // Standard error of the estimate: sqrt(J(1-J)/2048), about 0.011.
        assert!(
            (got - expected).abs() < 0.045,
            "estimated {got}, exact {expected}"
        );
    }

    #[test]
    fn the_estimate_is_unbiased_over_seeds() {
        let (a, b) = two_histograms();
        let expected = weighted_jaccard(&a, &b);
        let seeds = 40u64;
        let mean = (0..seeds)
            .map(|seed| {
                weighted(&a)
                    .sketch(256, seed)
                    .similarity(&weighted(&b).sketch(256, seed))
            })
            .sum::<f64>()
            / seeds as f64;
        // Standard error of the mean of 40 x 256 slots: about 0.003.
        assert!(
            (mean - expected).abs() < 0.015,
            "mean estimate {mean}, exact {expected}"
        );
    }

    #[test]
    fn identical_histograms_give_identical_sketches_and_scale_matters() {
        let a: Vec<(u64, u32)> = (1..=300).map(|l| (l, (l % 5 + 1) as u32)).collect();
        let b: Vec<(u64, u32)> = a.iter().map(|(l, n)| (*l, n * 2)).collect();
        assert_eq!(histogram(&a).sketch(64, 1), histogram(&a).sketch(64, 1));
        // Weighted Jaccard of a histogram and its double is exactly 1/2 (a label-only
        // estimate, as 0-bit consistent weighted sampling gives, would be above it).
        let s = histogram(&a)
            .sketch(2000, 1)
            .similarity(&histogram(&b).sketch(2000, 1));
        assert!((s - 0.5).abs() < 0.04, "{s}");
        // Disjoint histograms share nothing.
        let c: Vec<(u64, u32)> = a.iter().map(|(l, n)| (l + 1000, *n)).collect();
        let d = histogram(&a)
            .sketch(512, 1)
            .similarity(&histogram(&c).sketch(512, 1));
        assert_eq!(d, 0.0);
    }

    #[test]
    fn the_sketch_does_not_depend_on_insertion_order() {
        let (a, _) = two_histograms();
        let reversed: Vec<(u64, f64)> = a.iter().rev().copied().collect();
        assert_eq!(
            weighted(&a).sketch(128, 3),
            weighted(&reversed).sketch(128, 3)
        );
    }

    #[test]
    fn light_histograms_fill_every_slot() {
        // Total weight 0.2: the first pass's horizon is long; every slot still gets a dart.
        let light = weighted(&[(1, 0.05), (2, 0.1), (3, 0.05)]);
        let s = light.sketch(512, 9);
        assert!(s.slots.iter().all(|d| *d != 0));
        // Slots sample labels in proportion to weight: label 2 holds about half of them.
        let of_2 = weighted(&[(2, 0.1)]).sketch(512, 9);
        let share = s.similarity(&of_2);
        assert!((share - 0.5).abs() < 0.08, "{share}");
    }

    #[test]
    fn decay_drops_what_is_negligible_and_bounds_the_labels() {
        let mut h = histogram(&[(1, 100), (2, 2), (3, 50), (4, 5), (5, 1)]);
        h.decay(0.1, 1000);
        h.decay(0.1, 1000);
        // 1 -> 1.0, 2 -> 0.02, 3 -> 0.5, 4 -> 0.05; 5 -> 0.01 minus rounding: dropped or
        // not, 5 goes at the next decay.
        h.decay(1.0 - 1e-9, 1000);
        assert_eq!(h.len(), 4);
        h.decay(0.5, 2);
        assert_eq!(h.len(), 2);
        assert!(h.weights.contains_key(&1) && h.weights.contains_key(&3));
    }

    #[test]
    fn an_empty_histogram_sketches_to_empty_slots() {
        let s = Histogram::default().sketch(8, 0);
        assert_eq!(s.slots, vec![0; 8]);
    }
}
