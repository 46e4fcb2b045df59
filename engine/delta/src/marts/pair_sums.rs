//! A run's sums per client and product: millions of groups, one update per line, so every
//! update is a cache miss unless it was prefetched. hashbrown keeps an entry anywhere in a
//! probe group of 16 slots (up to 10 cache lines from where its probe starts), so a prefetch
//! of the start misses the entry about half the time; here slots are probed linearly from
//! the start, 32 bytes each (two per cache line), so the prefetched line usually holds the
//! entry. The table is cut in shards by hash: growing one copies a sliver of the whole. Keys
//! are hashed and sharded as a mart's ([`super::groups`]), so a mart takes the groups of a
//! shard of these from the same shard. A batch of lines is added shard by shard: a shard's
//! pages stay within the TLB's reach while its lines are added, where lines in file order
//! would each touch a page anywhere in the whole table (a page walk per line, most of the
//! time).

use super::groups::{SHARDS, mix, shard_of};
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

/// Slots of a new shard (a power of two).
const FIRST_SLOTS: usize = 1 << 10;

/// A line to add to its client and product's group: `key` from [`pair_key`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PairLine {
    pub key: PairKey,
    pub units: i64,
    pub sales: i64,
    pub volume: i64,
}

/// Lines ahead (in a shard's share of a batch) whose slot is prefetched.
const PREFETCH_AHEAD: usize = 8;

/// Sums per client and product of one run's lines (each line counts its order once: an
/// order has one line per product).
#[derive(Debug)]
pub(crate) struct PairSums {
    shards: Vec<Shard>,
    /// A batch's lines, shard by shard, and each line's shard: kept to be reused.
    by_shard: Vec<PairLine>,
    shard_of_line: Vec<u8>,
}

impl Default for PairSums {
    fn default() -> Self {
        PairSums {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            by_shard: Vec::new(),
            shard_of_line: Vec::new(),
        }
    }
}

impl PairSums {
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len).sum()
    }

    /// Adds each line's `units`, `sales` and `volume` to its key's group, shard by shard;
    /// `None` on overflow (the sums are then partly added).
    pub fn add_lines(&mut self, lines: &[PairLine]) -> Option<()> {
        let mut starts = [0usize; SHARDS + 1];
        self.shard_of_line.clear();
        self.shard_of_line.extend(lines.iter().map(|line| {
            let shard = shard_of(mix(line.key));
            starts[shard + 1] += 1;
            shard as u8
        }));
        for s in 0..SHARDS {
            starts[s + 1] += starts[s];
        }
        let mut next = starts;
        self.by_shard.clear();
        self.by_shard.resize(lines.len(), PairLine::default());
        for (line, &shard) in lines.iter().zip(&self.shard_of_line) {
            let at = &mut next[usize::from(shard)];
            self.by_shard[*at] = *line;
            *at += 1;
        }
        for (shard, part) in self.shards.iter_mut().zip(starts.windows(2)) {
            let part = &self.by_shard[part[0]..part[1]];
            for (i, line) in part.iter().enumerate() {
                if let Some(ahead) = part.get(i + PREFETCH_AHEAD) {
                    shard.prefetch(mix(ahead.key));
                }
                shard.add(line)?;
            }
        }
        Some(())
    }

    /// The groups of shard `shard`: in a mart, they fall in its shard `shard` too.
    pub fn shard_groups(&self, shard: usize) -> impl Iterator<Item = ((i64, i64), Measures)> {
        groups_of(std::slice::from_ref(&self.shards[shard]))
    }

    /// The groups in `parts` shares (of whole shards) of about equal size.
    pub fn parts(
        &self,
        parts: usize,
    ) -> impl Iterator<Item = impl Iterator<Item = ((i64, i64), Measures)>> {
        self.shards
            .chunks(SHARDS.div_ceil(parts.clamp(1, SHARDS)))
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
    /// Asks for the cache line where the probe of a key hashed to `h` starts.
    #[inline]
    fn prefetch(&self, h: u64) {
        if !self.slots.is_empty() {
            let slot = &self.slots[h as usize & (self.slots.len() - 1)];
            duff_engine::prefetch::prefetch_line(slot as *const Slot as usize);
        }
    }

    /// Adds `line` to its key's group; `None` on overflow.
    #[inline]
    fn add(&mut self, line: &PairLine) -> Option<()> {
        debug_assert_ne!(line.key, EMPTY);
        if (self.len + 1) * 5 > self.slots.len() * 4 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = mix(line.key) as usize & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.key == line.key {
                break;
            }
            if slot.key == EMPTY {
                slot.key = line.key;
                self.len += 1;
                break;
            }
            i = (i + 1) & mask;
        }
        let slot = &mut self.slots[i];
        slot.lines = slot.lines.checked_add(1)?;
        slot.units = slot.units.checked_add(u32::try_from(line.units).ok()?)?;
        slot.sales = slot.sales.checked_add(line.sales)?;
        slot.volume = slot.volume.checked_add(line.volume)?;
        Some(())
    }

    /// Doubles the slots (or makes the first ones) and places every key again.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(FIRST_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![FREE; size]);
        let mask = size - 1;
        for slot in old.into_iter().filter(|s| s.key != EMPTY) {
            let mut i = mix(slot.key) as usize & mask;
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
        // Batches of every size from one line to many times a shard's first slots.
        let mut batch = Vec::new();
        let sizes = [1, 2, 9, 1_000, 40_000, 3];
        for i in 0..300_000i64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let (client, product) = ((x >> 40) as i64 % 5_000, (x >> 20) as i64 % 97);
            let key = pair_key(client, product).unwrap();
            batch.push(line(key, i % 7, i, 2 * i));
            if batch.len() == sizes[i as usize % sizes.len()] {
                table.add_lines(&batch).unwrap();
                batch.clear();
            }
            let e = expected.entry((client, product)).or_default();
            *e = (e.0 + 1, e.1 + i % 7, e.2 + i128::from(i));
        }
        table.add_lines(&batch).unwrap();
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
        for (k, m) in (0..SHARDS).flat_map(|s| table.shard_groups(s)) {
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

    /// A mart takes a run's groups shard by shard ([`super::super::groups::Groups::insert_new`]
    /// asserts that each falls in the shard it is listed for).
    #[test]
    fn a_pair_falls_in_the_same_shard_here_and_in_a_mart() {
        use crate::marts::groups::{GroupKey, Groups};
        let mut table = PairSums::default();
        let mut x: u64 = 11;
        let mut keys = vec![(0, 0), (0, 1), (1, 0), (i64::from(u32::MAX), 0), (5, 7)];
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            keys.push(((x >> 32) as i64, (x & 0xffff_ffff) as i64));
        }
        let lines: Vec<PairLine> = keys
            .iter()
            .map(|&(c, p)| line(pair_key(c, p).unwrap(), 1, 1, 1))
            .collect();
        table.add_lines(&lines).unwrap();
        let mut listed = 0;
        for shard in 0..SHARDS {
            for ((c, p), _) in table.shard_groups(shard) {
                assert_eq!(shard_of((c, p).group_hash()), shard, "({c}, {p})");
                listed += 1;
            }
        }
        assert_eq!(listed, table.len());
        let mut mart: Groups<(i64, i64)> = Groups::default();
        mart.insert_new(|s| table.shard_groups(s), 2);
        assert_eq!(mart.len(), table.len());
        assert!(keys.iter().all(|k| mart.get(k).is_some()));
    }

    #[test]
    fn keys_and_sums_that_do_not_fit_are_refused() {
        assert_eq!(pair_key(1, 2), Some(1 << 32 | 2));
        assert_eq!(pair_key(-1, 2), None);
        assert_eq!(pair_key(1 << 32, 2), None);
        assert_eq!(pair_key(u32::MAX.into(), u32::MAX.into()), None);
        let mut table = PairSums::default();
        let key = pair_key(1, 1).unwrap();
        assert_eq!(table.add_lines(&[line(key, -1, 0, 0)]), None);
        assert_eq!(table.add_lines(&[line(key, 1, i64::MAX, 0)]), Some(()));
        assert_eq!(table.add_lines(&[line(key, 1, 1, 0)]), None);
        // An overflow amid a batch, on a line of another shard than the first's.
        let other = (2..)
            .map(|c| pair_key(c, 1).unwrap())
            .find(|k| shard_of(mix(*k)) != shard_of(mix(key)))
            .unwrap();
        let mut table = PairSums::default();
        let batch = [
            line(other, 1, 1, 1),
            line(key, 1, i64::MAX, 0),
            line(key, 1, 1, 0),
        ];
        assert_eq!(table.add_lines(&batch), None);
        assert_eq!(table.add_lines(&batch[..1]), Some(()));
    }

    fn line(key: PairKey, units: i64, sales: i64, volume: i64) -> PairLine {
        PairLine {
            key,
            units,
            sales,
            volume,
        }
    }
}
