//! Which external ids a writer has written since its archive held none, as a filter: "not
//! written" is certain, "written" may be wrong. A write of an id the filter has never seen
//! needs no look-up, so an import into a new archive looks nothing up (those look-ups, all
//! misses, were 18% of the preparing thread).

use std::hash::BuildHasher as _;

use crate::model::ExternalId;

/// Bits of filter per id: about 1% false positives (each one costs the look-up it would have
/// cost without the filter).
const BITS_PER_ID: usize = 10;
/// Bits set per id, all within one 512-bit block (one cache line per probe).
const PROBES: u32 = 7;
/// Ids whose filter blocks are read together before they are probed or set.
const PROBE_GROUP: usize = 16;
/// Ids the first block filter is sized for (5 MB, allocated when tracking begins); each next
/// one is twice the size of the last. A probe reads one cache line per filter: an import of a
/// few million ids needs one.
const FIRST_CAPACITY: usize = 1 << 22;

/// The keyed hashes of every external id (vertex or edge) written since the archive held none,
/// in growing blocked bloom filters (about 1.3 bytes per id, where a set of 64-bit hashes took
/// 16-18 and had to stop at 8M ids, halfway through a 10M-edge import). Ids of writes that
/// failed and ids a prune deleted stay in it: it may hold more than the archive, never less.
/// Past `limit` ids it stops tracking and answers "maybe" from then on.
#[derive(Debug, Default)]
pub(crate) struct WrittenIds {
    /// `None`: not tracking (the archive held ids before, or the bound was passed).
    filters: Option<Vec<BlockFilter>>,
    /// Ids inserted (with repeats) since tracking began.
    inserted: usize,
    limit: usize,
    first_capacity: usize,
    /// Seeded per process, so that a compromised machine cannot choose ids that collide.
    hasher: foldhash::fast::RandomState,
}

impl WrittenIds {
    /// Tracking, from an archive that holds no external id, up to `limit` ids.
    pub(crate) fn tracking(limit: usize) -> WrittenIds {
        WrittenIds::tracking_from(limit, FIRST_CAPACITY)
    }

    fn tracking_from(limit: usize, first_capacity: usize) -> WrittenIds {
        WrittenIds {
            filters: Some(Vec::new()),
            inserted: 0,
            limit,
            first_capacity,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    pub(crate) fn is_tracking(&self) -> bool {
        self.filters.is_some()
    }

    fn hash(&self, kind: u8, ext: &ExternalId) -> u64 {
        self.hasher.hash_one((kind, ext))
    }

    /// Whether the archive may hold each of `ids` (of `kind`: [`crate::keys::EXT_VERTEX`] or
    /// [`crate::keys::EXT_EDGE`]), in order; false only when it certainly does not. The
    /// filters' blocks are read a group of ids at a time before any is tested: a few megabytes
    /// of filter miss the cache on nearly every probe, and independent reads overlap their
    /// misses where probing id by id waited for each in turn (3.3% of an import's CPU samples
    /// probing one by one, 0.8% by groups).
    pub(crate) fn may_hold_each(&self, kind: u8, ids: &[&ExternalId]) -> Vec<bool> {
        let Some(filters) = &self.filters else {
            return vec![true; ids.len()];
        };
        let mut held = Vec::with_capacity(ids.len());
        for group in ids.chunks(PROBE_GROUP) {
            let mut hashes = [0u64; PROBE_GROUP];
            for (h, ext) in hashes.iter_mut().zip(group) {
                *h = self.hash(kind, ext);
            }
            let hashes = &hashes[..group.len()];
            for f in filters {
                f.touch(hashes);
            }
            held.extend(
                hashes
                    .iter()
                    .map(|&h| filters.iter().any(|f| f.contains(h))),
            );
        }
        held
    }

    /// Records ids about to be written (before their write commits: "written" may run ahead
    /// of the archive, never behind it).
    pub(crate) fn insert_all<'a>(
        &mut self,
        kind: u8,
        ids: impl ExactSizeIterator<Item = &'a ExternalId>,
    ) {
        if self.filters.is_none() {
            return;
        }
        if self.inserted + ids.len() > self.limit {
            self.filters = None;
            return;
        }
        self.inserted += ids.len();
        let hashes: Vec<u64> = ids.map(|ext| self.hash(kind, ext)).collect();
        let Some(filters) = &mut self.filters else {
            return;
        };
        for group in hashes.chunks(PROBE_GROUP) {
            if let Some(filter) = filters.last() {
                filter.touch(group);
            }
            for &h in group {
                let full = filters.last().is_none_or(BlockFilter::is_full);
                if full {
                    let capacity = filters
                        .last()
                        .map_or(self.first_capacity, |f| f.capacity * 2);
                    filters.push(BlockFilter::with_capacity(capacity));
                }
                if let Some(filter) = filters.last_mut() {
                    filter.insert(h);
                }
            }
        }
    }
}

/// A blocked bloom filter: each id sets [`PROBES`] bits of one 512-bit block.
#[derive(Debug)]
struct BlockFilter {
    blocks: Vec<[u64; 8]>,
    capacity: usize,
    len: usize,
}

impl BlockFilter {
    fn with_capacity(capacity: usize) -> BlockFilter {
        let blocks = (capacity * BITS_PER_ID).div_ceil(512).max(1);
        BlockFilter {
            blocks: vec![[0; 8]; blocks],
            capacity,
            len: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    /// The block of `h` (from its high bits, by multiply-shift) and the bits within it (from a
    /// second mix of `h`, 9 bits per probe).
    fn slots(&self, h: u64) -> (usize, impl Iterator<Item = (usize, u64)>) {
        let block = ((u128::from(h) * self.blocks.len() as u128) >> 64) as usize;
        let bits = h.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (h >> 29);
        let probes = (0..PROBES).map(move |i| {
            let bit = (bits >> (i * 9)) & 511;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        });
        (block, probes)
    }

    fn insert(&mut self, h: u64) {
        let (block, probes) = self.slots(h);
        if let Some(words) = self.blocks.get_mut(block) {
            for (word, mask) in probes {
                words[word] |= mask;
            }
        }
        self.len += 1;
    }

    /// Reads a word of the block of each of `hashes`, bringing the blocks into the cache
    /// together (see [`WrittenIds::may_hold_each`]).
    fn touch(&self, hashes: &[u64]) {
        let words = hashes.iter().fold(0u64, |acc, &h| {
            let (block, _) = self.slots(h);
            acc ^ self.blocks.get(block).map_or(0, |words| words[0])
        });
        // Kept, or the reads would be optimised away.
        std::hint::black_box(words);
    }

    fn contains(&self, h: u64) -> bool {
        let (block, mut probes) = self.slots(h);
        self.blocks
            .get(block)
            .is_some_and(|words| probes.all(|(word, mask)| words[word] & mask != 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{EXT_EDGE, EXT_VERTEX};
    use proptest::prelude::*;

    fn id(n: u64) -> ExternalId {
        ExternalId::parse(&format!("id{n}"))
    }

    /// One id's answer, through the grouped probe.
    fn may_hold(written: &WrittenIds, kind: u8, ext: &ExternalId) -> bool {
        written.may_hold_each(kind, &[ext])[0]
    }

    proptest! {
        /// Every id inserted is "maybe" held, whatever the kinds and however many filters
        /// the ids grew to.
        #[test]
        fn an_inserted_id_is_never_said_absent(ids in proptest::collection::vec((any::<bool>(), any::<u64>()), 0..200)) {
            // A first filter of 16 ids, so that the ids grow to several.
            let mut written = WrittenIds::tracking_from(usize::MAX, 16);
            let of_kind = |vertex: bool| -> Vec<ExternalId> {
                ids.iter().filter(|(v, _)| *v == vertex).map(|(_, n)| id(*n)).collect()
            };
            let (vertices, edges) = (of_kind(true), of_kind(false));
            // Calls of 37 ids: groups of 16 and a rest, filters filling within a group.
            for (v, e) in vertices.chunks(37).zip(edges.chunks(37)) {
                written.insert_all(EXT_VERTEX, v.iter());
                written.insert_all(EXT_EDGE, e.iter());
            }
            let (v_done, e_done) = (vertices.chunks(37).count(), edges.chunks(37).count());
            for v in vertices.chunks(37).skip(e_done) {
                written.insert_all(EXT_VERTEX, v.iter());
            }
            for e in edges.chunks(37).skip(v_done) {
                written.insert_all(EXT_EDGE, e.iter());
            }
            for (kind, all) in [(EXT_VERTEX, &vertices), (EXT_EDGE, &edges)] {
                let refs: Vec<&ExternalId> = all.iter().collect();
                prop_assert!(written.may_hold_each(kind, &refs).iter().all(|&held| held));
                for ext in all {
                    prop_assert!(may_hold(&written, kind, ext));
                }
            }
        }
    }

    /// Past the first filter's capacity ids go to a second, twice as large; ids never inserted
    /// are mostly said absent (about 1% false positives by design; 3% allowed here).
    #[test]
    fn filters_grow_and_say_absent_for_most_other_ids() {
        let first = 1 << 16;
        let mut written = WrittenIds::tracking_from(usize::MAX, first);
        let n = first as u64 + 1000;
        let ids: Vec<ExternalId> = (0..n).map(id).collect();
        for chunk in ids.chunks(5_000) {
            written.insert_all(EXT_EDGE, chunk.iter());
        }
        let filters = written.filters.as_ref().expect("tracking");
        assert_eq!(filters.len(), 2);
        assert_eq!(filters[0].capacity, first);
        assert_eq!(filters[1].capacity, 2 * first);
        assert!(ids.iter().all(|e| may_hold(&written, EXT_EDGE, e)));
        let others = 20_000u64;
        let false_positives = (n..n + others)
            .filter(|k| may_hold(&written, EXT_EDGE, &id(*k)))
            .count();
        assert!(
            false_positives < (others as usize) * 3 / 100,
            "{false_positives} false positives in {others}"
        );
        // The other kind's ids are apart.
        let other_kind = (0..others)
            .filter(|k| may_hold(&written, EXT_VERTEX, &id(*k)))
            .count();
        assert!(other_kind < (others as usize) * 3 / 100);
    }

    /// Below its bound the filter says "not stored" for ids it was not given; past it,
    /// "maybe" for every id; not tracking (an archive that held ids when opened), "maybe".
    #[test]
    fn past_the_bound_every_id_may_be_held() {
        let mut written = WrittenIds::tracking(3);
        written.insert_all(EXT_VERTEX, [id(1), id(2)].iter());
        assert!(may_hold(&written, EXT_VERTEX, &id(1)));
        assert!(!may_hold(&written, EXT_VERTEX, &id(3)));
        written.insert_all(EXT_EDGE, [id(3), id(4)].iter());
        assert!(!written.is_tracking());
        assert!(may_hold(&written, EXT_EDGE, &id(9)));
        assert!(may_hold(&WrittenIds::default(), EXT_VERTEX, &id(1)));
    }
}
