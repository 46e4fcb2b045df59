//! One mart in memory: the measures of each group, in hash tables whose probes can be
//! prefetched. The client × product mart holds millions of groups, far more than the caches,
//! and a fold updates one per line: prefetched a few lines ahead, those misses overlap.
//!
//! A mart is cut into [`SHARDS`] tables by hash, so its largest allocation is a sixteenth of
//! it: growing one copies a sliver, and the allocator can place it in memory the engine's
//! run has just freed (its own tables were of that order), where one table of the whole
//! mart would need fresh memory on top.
//!
//! Keys are hashed by [`GroupKey::group_hash`], a fixed mix of their bits, the one a run's
//! client × product sums ([`super::pair_sums`]) use: a pair falls in the same shard of both,
//! so a run's sums move into a mart shard by shard, each thread reading only its shards'.

use duff_engine::prefetch::Prefetcher;
use hashbrown::HashTable;

use super::measures::Measures;

/// Tables per mart (a power of two).
pub(crate) const SHARDS: usize = 16;

/// splitmix64's finaliser: every input bit moves every output bit (the shard bits, the
/// bucket bits and hashbrown's tag bits alike), and distinct inputs never collide.
#[inline]
pub(crate) fn mix(x: u64) -> u64 {
    let mut h = x ^ (x >> 30);
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A mart's group key. Its hash is a fixed function of the key (ids from the lake's own
/// input, not from strangers: no per-process seed is needed against crafted collisions).
pub(crate) trait GroupKey: Copy + Eq {
    fn group_hash(&self) -> u64;
}

impl GroupKey for i64 {
    #[inline]
    fn group_hash(&self) -> u64 {
        mix(*self as u64)
    }
}

impl GroupKey for u32 {
    #[inline]
    fn group_hash(&self) -> u64 {
        mix(u64::from(*self))
    }
}

impl GroupKey for (u32, u32) {
    #[inline]
    fn group_hash(&self) -> u64 {
        mix(u64::from(self.0) << 32 | u64::from(self.1))
    }
}

impl GroupKey for (i64, u32) {
    #[inline]
    fn group_hash(&self) -> u64 {
        mix(mix(self.0 as u64) ^ u64::from(self.1))
    }
}

impl GroupKey for (i64, i64) {
    /// A pair of ids that fit 32 bits each hashes as its packed key in a run's sums.
    #[inline]
    fn group_hash(&self) -> u64 {
        match super::pair_sums::pair_key(self.0, self.1) {
            Some(packed) => mix(packed),
            None => mix(mix(self.0 as u64) ^ self.1 as u64),
        }
    }
}

/// Measures (or another sum, `V`) per group key.
#[derive(Clone)]
pub(crate) struct Groups<K, V = Measures> {
    shards: Vec<Shard<K, V>>,
}

#[derive(Clone)]
pub(crate) struct Shard<K, V> {
    table: HashTable<(K, V)>,
    prefetcher: Prefetcher,
}

impl<K, V> Default for Groups<K, V> {
    fn default() -> Self {
        Groups {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    table: HashTable::new(),
                    prefetcher: Prefetcher::default(),
                })
                .collect(),
        }
    }
}

/// The shard of a hash: bits hashbrown uses for neither the bucket (the low bits) nor the
/// tag (the top seven).
#[inline]
pub(crate) fn shard_of(h: u64) -> usize {
    (h >> 40) as usize & (SHARDS - 1)
}

impl<K: GroupKey, V: Default> Groups<K, V> {
    fn hash(&self, key: &K) -> u64 {
        key.group_hash()
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.table.len()).sum()
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        let h = self.hash(key);
        self.shards[shard_of(h)]
            .table
            .find(h, |(k, _)| k == key)
            .map(|(_, m)| m)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Room for `additional` more groups (spread evenly) without growing.
    pub fn reserve(&mut self, additional: usize) {
        for shard in &mut self.shards {
            shard
                .table
                .reserve(additional.div_ceil(SHARDS), |(k, _)| k.group_hash());
        }
    }

    /// The group's measures, zero when it is new.
    #[inline]
    pub fn entry(&mut self, key: K) -> &mut V {
        let h = self.hash(&key);
        let (_, m) = self.shards[shard_of(h)]
            .table
            .entry(h, |(k, _)| *k == key, |(k, _)| k.group_hash())
            .or_insert_with(|| (key, V::default()))
            .into_mut();
        m
    }

    /// Adds groups that are not here yet, each key once, on up to `threads` threads: each
    /// takes a share of the shards and inserts the groups `shard_groups(s)` lists for each
    /// of its shards `s` (every group it lists must fall in shard `s`). A batch's slots are
    /// prefetched before it is inserted: a mart of millions of groups built from another
    /// table (a run's sums) then waits for its cache misses a batch at a time, not one by one.
    pub fn insert_new<I>(&mut self, shard_groups: impl Fn(usize) -> I + Sync, threads: usize)
    where
        I: Iterator<Item = (K, V)>,
        K: Send + Sync,
        V: Send,
    {
        let per = SHARDS.div_ceil(threads.clamp(1, SHARDS));
        let shard_groups = &shard_groups;
        std::thread::scope(|scope| {
            let mut shares = self.shards.chunks_mut(per).enumerate().peekable();
            while let Some((i, shards)) = shares.next() {
                let mut work = move || insert_new_into(shards, i * per, shard_groups);
                // The last share on this thread.
                if shares.peek().is_some() {
                    scope.spawn(work);
                } else {
                    work();
                }
            }
        });
    }

    /// Asks for the memory that [`Self::entry`] for `key` will touch first.
    #[inline]
    pub fn prefetch(&mut self, key: &K) {
        self.prefetch_hash(self.hash(key));
    }

    #[inline]
    fn prefetch_hash(&mut self, h: u64) {
        self.shards[shard_of(h)].prefetch(h);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards
            .iter()
            .flat_map(|s| s.table.iter())
            .map(|(k, m)| (k, m))
    }

    /// The groups in `parts` shares (of whole shards) of about equal size.
    pub fn parts(&self, parts: usize) -> impl Iterator<Item = impl Iterator<Item = (&K, &V)>> {
        self.shards
            .chunks(SHARDS.div_ceil(parts.clamp(1, SHARDS)))
            .map(|shards| {
                shards
                    .iter()
                    .flat_map(|s| s.table.iter())
                    .map(|(k, m)| (k, m))
            })
    }

    /// The groups of shard `shard` (those whose hash [`shard_of`] gives it).
    #[cfg(test)]
    pub fn shard_groups(&self, shard: usize) -> impl Iterator<Item = (&K, &V)> {
        self.shards[shard].table.iter().map(|(k, m)| (k, m))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for shard in &mut self.shards {
            shard.table.retain(|(k, m)| keep(k, m));
        }
    }
}

/// [`Groups::insert_new`] into `shards`, the shards `first..first + shards.len()`, of the
/// groups `shard_groups` lists for each.
fn insert_new_into<K: GroupKey, V, I: Iterator<Item = (K, V)>>(
    shards: &mut [Shard<K, V>],
    first: usize,
    shard_groups: impl Fn(usize) -> I,
) {
    const BATCH: usize = 16;
    let mut batch: Vec<(u64, K, V)> = Vec::with_capacity(BATCH);
    for (i, shard) in shards.iter_mut().enumerate() {
        let mut groups = shard_groups(first + i).map(|(k, v)| {
            let h = k.group_hash();
            assert_eq!(shard_of(h), first + i, "a group listed for another shard");
            (h, k, v)
        });
        loop {
            batch.extend(groups.by_ref().take(BATCH));
            if batch.is_empty() {
                break;
            }
            for (h, _, _) in &batch {
                shard.prefetch(*h);
            }
            for (h, k, v) in batch.drain(..) {
                debug_assert!(shard.table.find(h, |(o, _)| *o == k).is_none());
                shard
                    .table
                    .insert_unique(h, (k, v), |(k, _)| k.group_hash());
            }
        }
    }
}

impl<K: GroupKey, V> Shard<K, V> {
    /// Asks for the memory a probe for hash `h` touches first.
    #[inline]
    fn prefetch(&mut self, h: u64) {
        self.prefetcher
            .prefetch(&self.table, h, |(k, _)| k.group_hash(), |a, b| a.0 == b.0);
    }
}

impl<K: GroupKey> Groups<K> {
    /// Adds each group's measures to this one's.
    pub fn add(&mut self, groups: impl IntoIterator<Item = (K, Measures)>) {
        for (k, m) in groups {
            let t = self.entry(k);
            t.orders += m.orders;
            t.order_lines += m.order_lines;
            t.units += m.units;
            t.sales += m.sales;
            t.volume += m.volume;
        }
    }
}

impl<K: GroupKey> std::ops::Index<&K> for Groups<K> {
    type Output = Measures;

    /// The group's measures; panics when there is no such group.
    fn index(&self, key: &K) -> &Measures {
        self.get(key).expect("a group of the mart")
    }
}

impl<K, V> IntoIterator for Groups<K, V> {
    type Item = (K, V);
    type IntoIter = std::iter::FlatMap<
        std::vec::IntoIter<Shard<K, V>>,
        hashbrown::hash_table::IntoIter<(K, V)>,
        fn(Shard<K, V>) -> hashbrown::hash_table::IntoIter<(K, V)>,
    >;

    /// Every group, each shard's in turn (its tables are freed as they are emptied).
    fn into_iter(self) -> Self::IntoIter {
        self.shards.into_iter().flat_map(|s| s.table.into_iter())
    }
}

impl<K: GroupKey> FromIterator<(K, Measures)> for Groups<K> {
    fn from_iter<I: IntoIterator<Item = (K, Measures)>>(groups: I) -> Self {
        let mut all = Groups::default();
        all.add(groups);
        all
    }
}

impl<K: GroupKey> PartialEq for Groups<K> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, m)| other.get(k) == Some(m))
    }
}

impl<K: GroupKey> Eq for Groups<K> {}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for Groups<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.shards
                    .iter()
                    .flat_map(|s| s.table.iter())
                    .map(|(k, m)| (k, m)),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(lines: i64) -> Measures {
        Measures {
            order_lines: lines,
            ..Measures::default()
        }
    }

    #[test]
    fn groups_add_up_and_compare_whatever_their_order() {
        let mut a: Groups<(i64, i64)> = Groups::default();
        for i in 0..10_000 {
            a.prefetch(&(i % 100, i));
            a.entry((i % 100, i)).order_lines += 1;
        }
        a.add([((1, 1), m(4)), ((-1, 7), m(2))]);
        assert_eq!(a.len(), 10_001);
        assert_eq!(a.get(&(1, 1)), Some(&m(5)));
        assert_eq!(a.get(&(-1, 7)), Some(&m(2)));
        assert!(!a.contains_key(&(2, 1)));
        let mut listed: Vec<((i64, i64), Measures)> = a.iter().map(|(k, m)| (*k, *m)).collect();
        listed.reverse();
        let b: Groups<(i64, i64)> = listed.into_iter().collect();
        assert_eq!(a, b);
        // Built from the same groups at once, new keys only.
        let of_shard = |s: usize| a.shard_groups(s).map(|(k, m)| (*k, *m));
        let mut c: Groups<(i64, i64)> = Groups::default();
        c.reserve(a.len());
        c.insert_new(of_shard, 1);
        assert_eq!(c, a);
        // On several threads, each inserting the groups of its shards.
        for threads in [2, 3, 16, 40] {
            let mut d: Groups<(i64, i64)> = Groups::default();
            d.insert_new(of_shard, threads);
            assert_eq!(d, a, "{threads} threads");
            let parts: Vec<usize> = a.parts(threads).map(|p| p.count()).collect();
            assert_eq!(parts.len(), threads.min(SHARDS));
            assert_eq!(parts.iter().sum::<usize>(), a.len());
        }
        a.retain(|k, _| k.0 != -1);
        assert_ne!(a, b);
        assert_eq!(a.keys().count(), 10_000);
    }
}
