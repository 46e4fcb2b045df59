//! What dedup needs of each valid row, and which shard judges it. The parser fills a range's
//! [`ShardedKeys`] as it goes, so each shard later reads its rows in one sequential sweep.

/// Bits of the key hash that choose a row's shard.
pub(crate) const SHARD_BITS: u32 = 6;
/// Number of dedup shards (a power of two): each is one hash table, judged by one thread.
pub(crate) const SHARDS: usize = 1 << SHARD_BITS;

/// Mixes the key into a well-spread 64-bit hash (fixed, so results never depend on a seed).
#[inline]
pub(crate) fn key_hash(order_id: i64, product_id: i64) -> u64 {
    let mut h = (order_id as u64)
        ^ (product_id as u64)
            .rotate_left(32)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A valid row as dedup sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyRow {
    pub(crate) order_id: i64,
    pub(crate) product_id: i64,
    pub(crate) key_hash: u64,
    /// Fingerprint of the normalised content, to tell exact copies from key conflicts.
    pub(crate) fingerprint: u64,
    pub(crate) line_rel: u64,
    /// The row's index in its range.
    pub(crate) row: u32,
}

/// A range's key rows, by shard, each shard's in file order.
pub(crate) struct ShardedKeys {
    shards: Vec<Vec<KeyRow>>,
}

impl ShardedKeys {
    /// Room for about `rows` rows spread over the shards.
    pub(crate) fn with_capacity(rows: usize) -> Self {
        ShardedKeys {
            shards: (0..SHARDS)
                .map(|_| Vec::with_capacity(rows / SHARDS + 4))
                .collect(),
        }
    }

    /// Adds the next row of the range to its shard: the top bits of its key hash.
    #[inline]
    pub(crate) fn push(&mut self, key: KeyRow) {
        self.shards[(key.key_hash >> (64 - SHARD_BITS)) as usize].push(key);
    }

    /// The rows of shard `shard`, in file order.
    pub(crate) fn shard(&self, shard: usize) -> &[KeyRow] {
        &self.shards[shard]
    }
}

impl Default for ShardedKeys {
    fn default() -> Self {
        ShardedKeys::with_capacity(0)
    }
}
