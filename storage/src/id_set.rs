//! A set of dense internal ids, held as roaring shards of 2^20 ids (as stored in the type and
//! machine indexes).

use roaring::RoaringBitmap;

use crate::keys::SHARD_BITS;

/// A set of internal ids (vertex or edge ids), as read from a roaring index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdSet {
    shards: Vec<(u64, RoaringBitmap)>,
}

impl IdSet {
    pub(crate) fn push_shard(&mut self, shard: u64, bitmap: RoaringBitmap) {
        self.shards.push((shard, bitmap));
    }

    /// The set of one id.
    ///
    /// ```
    /// let set = provdb_storage::IdSet::single(5_000_000);
    /// assert_eq!(set.into_iter().collect::<Vec<_>>(), vec![5_000_000]);
    /// ```
    pub fn single(id: u64) -> IdSet {
        let (shard, low) = split_id(id);
        let mut bitmap = RoaringBitmap::new();
        bitmap.insert(low);
        IdSet {
            shards: vec![(shard, bitmap)],
        }
    }

    /// Adds every id of `other` (a union of compressed bitmaps: no id is materialised).
    ///
    /// ```
    /// let mut a = provdb_storage::IdSet::single(3);
    /// a.union_with(&provdb_storage::IdSet::single(2_000_000));
    /// a.union_with(&provdb_storage::IdSet::single(1));
    /// assert_eq!(a.into_iter().collect::<Vec<_>>(), vec![1, 3, 2_000_000]);
    /// ```
    pub fn union_with(&mut self, other: &IdSet) {
        for (shard, bitmap) in &other.shards {
            match self.shards.binary_search_by_key(shard, |(s, _)| *s) {
                Ok(i) => self.shards[i].1 |= bitmap,
                Err(i) => self.shards.insert(i, (*shard, bitmap.clone())),
            }
        }
    }

    /// Number of ids.
    pub fn len(&self) -> u64 {
        self.shards.iter().map(|(_, b)| b.len()).sum()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|(_, b)| b.is_empty())
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u64) -> bool {
        let shard = id >> SHARD_BITS;
        let low = (id & ((1 << SHARD_BITS) - 1)) as u32;
        self.shards
            .iter()
            .any(|(s, b)| *s == shard && b.contains(low))
    }

    /// The ids in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.shards
            .iter()
            .flat_map(|(s, b)| b.iter().map(move |low| (s << SHARD_BITS) | u64::from(low)))
    }
}

impl FromIterator<u64> for IdSet {
    /// A set of the given ids (in any order, repeats allowed).
    ///
    /// ```
    /// let set: provdb_storage::IdSet = [9, 1, 9, 3_000_000].into_iter().collect();
    /// assert_eq!(set.len(), 3);
    /// assert!(set.contains(3_000_000));
    /// ```
    fn from_iter<T: IntoIterator<Item = u64>>(ids: T) -> Self {
        let mut set = IdSet::default();
        for id in ids {
            set.union_with(&IdSet::single(id));
        }
        set
    }
}

impl IntoIterator for IdSet {
    type Item = u64;
    type IntoIter = Box<dyn Iterator<Item = u64> + Send>;

    /// The ids in ascending order, decoded one at a time from the bitmaps (a `limit 10` over a
    /// type's millions of ids touches ten).
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.shards.into_iter().flat_map(|(shard, bitmap)| {
            bitmap
                .into_iter()
                .map(move |low| (shard << SHARD_BITS) | u64::from(low))
        }))
    }
}

/// Cardinality of a serialized roaring bitmap, read from its header alone (the portable
/// format lists each container's cardinality up front): counting a type's edges then costs no
/// deserialization. `None` when the bytes are not a roaring bitmap.
pub(crate) fn serialized_cardinality(bytes: &[u8]) -> Option<u64> {
    const NO_RUN_COOKIE: u32 = 12346;
    const RUN_COOKIE: u16 = 12347;
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let cookie = u32_at(0)?;
    let (containers, descriptions) = if cookie == NO_RUN_COOKIE {
        (u32_at(4)? as usize, 8)
    } else if cookie as u16 == RUN_COOKIE {
        let n = (cookie >> 16) as usize + 1;
        (n, 4 + n.div_ceil(8))
    } else {
        return None;
    };
    let mut total = 0u64;
    for i in 0..containers {
        let at = descriptions + 4 * i + 2;
        let card_minus_one = u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?);
        total += u64::from(card_minus_one) + 1;
    }
    Some(total)
}

pub(crate) fn split_id(id: u64) -> (u64, u32) {
    (id >> SHARD_BITS, (id & ((1 << SHARD_BITS) - 1)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bitmap: &RoaringBitmap) {
        let mut bytes = Vec::new();
        bitmap.serialize_into(&mut bytes).unwrap();
        assert_eq!(serialized_cardinality(&bytes), Some(bitmap.len()));
    }

    #[test]
    fn header_cardinality_matches_the_bitmap() {
        check(&RoaringBitmap::new());
        check(&(0..1).collect());
        // Array containers, bitmap containers, and (after optimize) run containers.
        let sparse: RoaringBitmap = (0..200_000u32).step_by(97).collect();
        let dense: RoaringBitmap = (0..300_000u32).filter(|i| i % 3 != 0).collect();
        let mut runs: RoaringBitmap = (10..70_000u32).chain(500_000..900_000).collect();
        check(&sparse);
        check(&dense);
        check(&runs);
        assert!(runs.optimize());
        check(&runs);
        // Full containers: cardinality 65536 is stored as 65535.
        check(&(0..(1u32 << 20)).collect());
    }

    #[test]
    fn garbage_is_not_a_bitmap() {
        assert_eq!(serialized_cardinality(b""), None);
        assert_eq!(serialized_cardinality(b"\x00\x01\x02\x03\x04"), None);
        // A header that promises more containers than it holds.
        let mut bytes = 12346u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&1000u32.to_le_bytes());
        assert_eq!(serialized_cardinality(&bytes), None);
    }
}
