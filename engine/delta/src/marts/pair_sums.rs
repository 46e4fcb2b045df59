//! A run's sums per client and product: millions of groups, one update per line, so every
//! update is a cache miss unless it was prefetched. hashbrown keeps an entry anywhere in a
//! probe group of 16 slots (up to 10 cache lines from where its probe starts), so a prefetch
//! of the start misses the entry about half the time; here slots are probed linearly from
//! the start, 32 bytes each (two per cache line), so the prefetched line usually holds the
//! entry. The table is cut in shards by hash: growing one copies a sliver of the whole.

use super::measures::Measures;

/// A client id (high 32 bits) and product id (low 32 bits).
pub(crate) type PairKey = u64;

/// No key: both ids `u32::MAX`, which [`pair_key`] refuses.
const EMPTY: PairKey = PairKey::MAX;

/// The key of a client and product; `None` when either id does not fit 32 bits (or both
/// are `u32::MAX`).
pub(crate) fn pair_key(client: i64, product: i64) -> Option<PairKey> {
    let key =
        u64::from(u32::try_from(client).ok()?) << 32 | u64::from(u32::try_from(product).ok()?);
    (key != EMPTY).then_some(key)
}

#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    key: PairKey,
    lines: u32,
    units: u32,
    sales: i64,
    volume: i64,
}

const FREE: Slot = Slot {
    key: EMPTY,
    lines: 0,
    units: 0,
    sales: 0,
    volume: 0,
};

#[derive(Debug, Default)]
struct Shard {
    slots: Vec<Slot>,
    len: usize,
}

/// Shards: a power of two, taken from the hash's top bits.
const SHARD_BITS: u32 = 4;
/// Slots of a new shard (a power of two).
const FIRST_SLOTS: usize = 1 << 10;

/// Sums per client and product of one run's lines (each line counts its order once: an
/// order has one line per product).
#[derive(Debug)]
pub(crate) struct PairSums {
    shards: Vec<Shard>,
}

impl Default for PairSums {
    fn default() -> Self {
        PairSums {
            shards: (0..1 << SHARD_BITS).map(|_| Shard::default()).collect(),
        }
    }
}

#[inline]
fn hash(key: PairKey) -> u64 {
    // A 64-bit mixer (splitmix64's finaliser): every key bit moves shard and slot bits.
    let mut h = key ^ (key >> 30);
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl PairSums {
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len).sum()
    }

    #[inline]
    fn place(&self, key: PairKey) -> (usize, usize) {
        let h = hash(key);
        let shard = (h >> (64 - SHARD_BITS)) as usize;
        (shard, h as usize)
    }

    /// Asks for the cache line where `key`'s probe starts.
    #[inline]
    pub fn prefetch(&self, key: PairKey) {
        let (shard, h) = self.place(key);
        let slots = &self.shards[shard].slots;
        if !slots.is_empty() {
            duff_engine::prefetch::prefetch_line(
                &slots[h & (slots.len() - 1)] as *const Slot as usize,
            );
        }
    }

    /// Adds a line of `units`, `sales` and `volume` to `key`'s group; `None` on overflow.
    #[inline]
    pub fn add(&mut self, key: PairKey, units: i64, sales: i64, volume: i64) -> Option<()> {
        debug_assert_ne!(key, EMPTY);
        let (shard, h) = self.place(key);
        let shard = &mut self.shards[shard];
        if (shard.len + 1) * 5 > shard.slots.len() * 4 {
            shard.grow();
        }
        let mask = shard.slots.len() - 1;
        let mut i = h & mask;
        loop {
            let slot = &mut shard.slots[i];
            if slot.key == key {
                break;
            }
            if slot.key == EMPTY {
                slot.key = key;
                shard.len += 1;
                break;
            }
            i = (i + 1) & mask;
        }
        let slot = &mut shard.slots[i];
        slot.lines = slot.lines.checked_add(1)?;
        slot.units = slot.units.checked_add(u32::try_from(units).ok()?)?;
        slot.sales = slot.sales.checked_add(sales)?;
        slot.volume = slot.volume.checked_add(volume)?;
        Some(())
    }

    /// Every group: `((client, product), measures)`.
    pub fn groups(&self) -> impl Iterator<Item = ((i64, i64), Measures)> {
        groups_of(&self.shards)
    }

    /// The groups in `parts` shares (of whole shards) of about equal size.
    pub fn parts(
        &self,
        parts: usize,
    ) -> impl Iterator<Item = impl Iterator<Item = ((i64, i64), Measures)>> {
        let shards = 1 << SHARD_BITS;
        self.shards
            .chunks(usize::div_ceil(shards, parts.clamp(1, shards)))
            .map(groups_of)
    }
}

fn groups_of(shards: &[Shard]) -> impl Iterator<Item = ((i64, i64), Measures)> {
    shards
        .iter()
        .flat_map(|s| &s.slots)
        .filter(|s| s.key != EMPTY)
        .map(|s| {
            let measures = Measures {
                orders: s.lines.into(),
                order_lines: s.lines.into(),
                units: s.units.into(),
                sales: s.sales.into(),
                volume: s.volume.into(),
            };
            (
                ((s.key >> 32) as i64, (s.key & 0xffff_ffff) as i64),
                measures,
            )
        })
}

impl Shard {
    /// Doubles the slots (or makes the first ones) and places every key again.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(FIRST_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![FREE; size]);
        let mask = size - 1;
        for slot in old.into_iter().filter(|s| s.key != EMPTY) {
            let mut i = hash(slot.key) as usize & mask;
            while self.slots[i].key != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn sums_equal_a_map_of_the_same_lines_through_growth() {
        let mut table = PairSums::default();
        let mut expected: HashMap<(i64, i64), (i64, i64, i128)> = HashMap::new();
        let mut x: u64 = 7;
        for i in 0..300_000i64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let (client, product) = ((x >> 40) as i64 % 5_000, (x >> 20) as i64 % 97);
            let key = pair_key(client, product).unwrap();
            table.prefetch(key);
            table.add(key, i % 7, i, 2 * i).unwrap();
            let e = expected.entry((client, product)).or_default();
            *e = (e.0 + 1, e.1 + i % 7, e.2 + i128::from(i));
        }
        assert_eq!(table.len(), expected.len());
        // In shares, every group once.
        for parts in [1, 2, 3, 16, 40] {
            assert!(table.parts(parts).count() <= parts);
            let mut listed: Vec<_> = table.parts(parts).flatten().map(|(k, _)| k).collect();
            listed.sort_unstable();
            let all = listed.len();
            listed.dedup();
            assert_eq!((all, listed.len()), (expected.len(), expected.len()));
        }
        let mut seen = 0;
        for (k, m) in table.groups() {
            let (lines, units, sales) = expected[&k];
            assert_eq!(
                (m.orders, m.order_lines, m.units, m.sales),
                (lines, lines, units, sales)
            );
            assert_eq!(m.volume, 2 * sales);
            seen += 1;
        }
        assert_eq!(seen, expected.len());
    }

    #[test]
    fn keys_and_sums_that_do_not_fit_are_refused() {
        assert_eq!(pair_key(1, 2), Some(1 << 32 | 2));
        assert_eq!(pair_key(-1, 2), None);
        assert_eq!(pair_key(1 << 32, 2), None);
        assert_eq!(pair_key(u32::MAX.into(), u32::MAX.into()), None);
        let mut table = PairSums::default();
        let key = pair_key(1, 1).unwrap();
        assert_eq!(table.add(key, -1, 0, 0), None);
        assert_eq!(table.add(key, 1, i64::MAX, 0), Some(()));
        assert_eq!(table.add(key, 1, 1, 0), None);
    }
}
