//! A machine's decayed label histogram and its HistoSketch (Yang et al., ICDM 2017): a
//! fixed-size sketch whose slot-wise agreement estimates the weighted Jaccard similarity of
//! two histograms, by consistent weighted sampling (Ioffe's ICWS, 2010).
//!
//! For slot `k` and label `a` of weight `w`, with `r, c ~ Gamma(2, 1)` and `b ~ U(0, 1)`
//! drawn deterministically from `(k, a)`: `t = floor(ln w / r + b)`, `ln y = r (t - b)`,
//! `ln A = ln c - ln y - r`; the slot holds the label of least `A`. Two histograms' slots
//! agree with probability equal to their weighted Jaccard similarity.
//!
//! provdb takes the sketch of the decayed histogram at each snapshot, over all its labels
//! (O(size x labels) per snapshot), instead of updating it per label increment as the
//! paper's streaming form does (O(size) per increment): per edge that is cheaper whenever a
//! snapshot interval sees more label increments than the histogram holds labels, and the
//! sketch is exactly that of the histogram, without the streaming form's approximation of
//! decay.

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

    /// The sketch of the histogram as it is.
    pub(crate) fn sketch(&self, size: usize, seed: u64) -> Sketch {
        let mut best = vec![(f64::INFINITY, 0u64); size];
        // Sorted so that ties (practically impossible) break the same way in every process.
        let mut labels: Vec<(u64, f64)> = self.weights.iter().map(|(l, w)| (*l, *w)).collect();
        labels.sort_unstable_by_key(|(l, _)| *l);
        for (label, weight) in labels {
            let ln_w = weight.ln();
            for (k, slot) in best.iter_mut().enumerate() {
                let key = hash::combine(seed ^ k as u64, label);
                let r = -(hash::uniform(key, 0) * hash::uniform(key, 1)).ln();
                let c = -(hash::uniform(key, 2) * hash::uniform(key, 3)).ln();
                let b = hash::uniform(key, 4);
                let t = (ln_w / r + b).floor();
                let ln_y = r * (t - b);
                let ln_a = c.ln() - ln_y - r;
                if ln_a < slot.0 {
                    *slot = (ln_a, label);
                }
            }
        }
        Sketch {
            slots: best.into_iter().map(|(_, l)| l).collect(),
        }
    }
}

/// A HistoSketch: one sampled label per slot (0 when the histogram was empty).
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Sketch {
    /// The label chosen in each slot.
    pub slots: Vec<u64>,
}

impl Sketch {
    /// Estimated weighted Jaccard similarity: the fraction of slots that agree (0 for
    /// sketches of different sizes).
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

    /// Weighted Jaccard similarity, computed directly.
    fn weighted_jaccard(a: &[(u64, u32)], b: &[(u64, u32)]) -> f64 {
        let get = |v: &[(u64, u32)], l: u64| {
            v.iter()
                .find(|(x, _)| *x == l)
                .map_or(0.0, |(_, n)| *n as f64)
        };
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

    #[test]
    fn slot_agreement_estimates_weighted_jaccard() {
        let a: Vec<(u64, u32)> = (1..=40).map(|l| (l, (l % 7 + 1) as u32)).collect();
        let mut b = a.clone();
        b.truncate(30);
        b.extend((100..110).map(|l| (l, 3)));
        b[0].1 = 20;
        let expected = weighted_jaccard(&a, &b);
        let sa = histogram(&a).sketch(2000, 7);
        let sb = histogram(&b).sketch(2000, 7);
        let got = sa.similarity(&sb);
        // Standard error of the estimate: sqrt(J(1-J)/2000), about 0.011.
        assert!(
            (got - expected).abs() < 0.04,
            "estimated {got}, exact {expected}"
        );
    }

    #[test]
    fn identical_histograms_give_identical_sketches_and_scale_matters() {
        let a: Vec<(u64, u32)> = (1..=300).map(|l| (l, (l % 5 + 1) as u32)).collect();
        let b: Vec<(u64, u32)> = a.iter().map(|(l, n)| (*l, n * 2)).collect();
        assert_eq!(histogram(&a).sketch(64, 1), histogram(&a).sketch(64, 1));
        // Weighted Jaccard of a histogram and its double is 1/2. HistoSketch compares labels
        // only (0-bit CWS), an estimate that is close when the histogram has many labels.
        let s = histogram(&a)
            .sketch(2000, 1)
            .similarity(&histogram(&b).sketch(2000, 1));
        assert!((s - 0.5).abs() < 0.05, "{s}");
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
