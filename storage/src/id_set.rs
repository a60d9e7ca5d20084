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

pub(crate) fn split_id(id: u64) -> (u64, u32) {
    (id >> SHARD_BITS, (id & ((1 << SHARD_BITS) - 1)) as u32)
}
