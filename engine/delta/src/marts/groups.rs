//! One mart in memory: the measures of each group, in hash tables whose probes can be
//! prefetched. The client × product mart holds millions of groups, far more than the caches,
//! and a fold updates one per line: prefetched a few lines ahead, those misses overlap.
//!
//! A mart is cut into [`SHARDS`] tables by hash, so its largest allocation is a sixteenth of
//! it: growing one copies a sliver, and the allocator can place it in memory the engine's
//! run has just freed (its own tables were of that order), where one table of the whole
//! mart would need fresh memory on top.

use std::hash::{BuildHasher, Hash};

use duff_engine::prefetch::Prefetcher;
use hashbrown::{DefaultHashBuilder, HashTable};

use super::measures::Measures;

/// Tables per mart (a power of two).
const SHARDS: usize = 16;

/// Measures (or another sum, `V`) per group key.
#[derive(Clone)]
pub(crate) struct Groups<K, V = Measures> {
    shards: Vec<Shard<K, V>>,
    hasher: DefaultHashBuilder,
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
            hasher: DefaultHashBuilder::default(),
        }
    }
}

/// The shard of a hash: bits hashbrown uses for neither the bucket (the low bits) nor the
/// tag (the top seven).
#[inline]
fn shard_of(h: u64) -> usize {
    (h >> 40) as usize & (SHARDS - 1)
}

impl<K: Hash + Eq + Copy, V: Default> Groups<K, V> {
    fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
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
        let hasher = &self.hasher;
        for shard in &mut self.shards {
            shard
                .table
                .reserve(additional.div_ceil(SHARDS), |(k, _)| hasher.hash_one(k));
        }
    }

    /// The group's measures, zero when it is new.
    #[inline]
    pub fn entry(&mut self, key: K) -> &mut V {
        let h = self.hash(&key);
        let hasher = &self.hasher;
        let (_, m) = self.shards[shard_of(h)]
            .table
            .entry(h, |(k, _)| *k == key, |(k, _)| hasher.hash_one(k))
            .or_insert_with(|| (key, V::default()))
            .into_mut();
        m
    }

    /// Adds groups that are not here yet, each key once, on up to `threads` threads: each
    /// takes a share of the shards and, of the groups `groups()` lists, those that fall in
    /// them. A batch's slots are prefetched before it is inserted: a mart of millions of
    /// groups built from another table (a run's sums) then waits for its cache misses a
    /// batch at a time, not one by one.
    pub fn insert_new<I>(&mut self, groups: impl Fn() -> I + Sync, threads: usize)
    where
        I: Iterator<Item = (K, V)>,
        K: Send + Sync,
        V: Send,
    {
        let per = SHARDS.div_ceil(threads.clamp(1, SHARDS));
        let hasher = &self.hasher;
        let groups = &groups;
        std::thread::scope(|scope| {
            let mut shares = self.shards.chunks_mut(per).enumerate().peekable();
            while let Some((i, shards)) = shares.next() {
                let mut work = move || insert_new_into(shards, i * per, hasher, groups());
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
        self.shards[shard_of(h)].prefetch(h, &self.hasher);
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

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for shard in &mut self.shards {
            shard.table.retain(|(k, m)| keep(k, m));
        }
    }
}

/// [`Groups::insert_new`] of the groups of `groups` whose shard is in `shards`, the shards
/// `first..first + shards.len()`.
fn insert_new_into<K: Hash + Eq + Copy, V>(
    shards: &mut [Shard<K, V>],
    first: usize,
    hasher: &DefaultHashBuilder,
    groups: impl Iterator<Item = (K, V)>,
) {
    const BATCH: usize = 16;
    let count = shards.len();
    let mut groups = groups.filter_map(|(k, v)| {
        let h = hasher.hash_one(k);
        let shard = shard_of(h).checked_sub(first)?;
        (shard < count).then_some((h, shard, k, v))
    });
    let mut batch: Vec<(u64, usize, K, V)> = Vec::with_capacity(BATCH);
    loop {
        batch.extend(groups.by_ref().take(BATCH));
        if batch.is_empty() {
            return;
        }
        for (h, shard, _, _) in &batch {
            shards[*shard].prefetch(*h, hasher);
        }
        for (h, shard, k, v) in batch.drain(..) {
            let table = &mut shards[shard].table;
            debug_assert!(table.find(h, |(o, _)| *o == k).is_none());
            table.insert_unique(h, (k, v), |(k, _)| hasher.hash_one(k));
        }
    }
}

impl<K: Hash + Eq, V> Shard<K, V> {
    /// Asks for the memory a probe for hash `h` touches first.
    #[inline]
    fn prefetch(&mut self, h: u64, hasher: &DefaultHashBuilder) {
        self.prefetcher.prefetch(
            &self.table,
            h,
            |(k, _)| hasher.hash_one(k),
            |a, b| a.0 == b.0,
        );
    }
}

impl<K: Hash + Eq + Copy> Groups<K> {
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

impl<K: Hash + Eq + Copy> std::ops::Index<&K> for Groups<K> {
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

impl<K: Hash + Eq + Copy> FromIterator<(K, Measures)> for Groups<K> {
    fn from_iter<I: IntoIterator<Item = (K, Measures)>>(groups: I) -> Self {
        let mut all = Groups::default();
        all.add(groups);
        all
    }
}

impl<K: Hash + Eq + Copy> PartialEq for Groups<K> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, m)| other.get(k) == Some(m))
    }
}

impl<K: Hash + Eq + Copy> Eq for Groups<K> {}

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
        let mut c: Groups<(i64, i64)> = Groups::default();
        c.reserve(a.len());
        c.insert_new(|| a.iter().map(|(k, m)| (*k, *m)), 1);
        assert_eq!(c, a);
        // On several threads, each inserting the groups of its shards.
        for threads in [2, 3, 16, 40] {
            let mut d: Groups<(i64, i64)> = Groups::default();
            d.insert_new(|| a.iter().map(|(k, m)| (*k, *m)), threads);
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
