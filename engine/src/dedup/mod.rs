//! Duplicate removal with hash sets sharded by key hash.
//!
//! Rows are routed to one of [`SHARDS`] tables by the top bits of their key hash; each shard is
//! visited by one thread, in file order, so there is no lock and the first occurrence of a key is
//! always the one kept — whatever the number of threads, chunk size or window size.

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use rayon::prelude::*;

pub(crate) mod keys;

use crate::prefetch::Prefetcher;
use keys::{SHARD_BITS, SHARDS, ShardedKeys, key_hash};

/// What the first occurrence of a key left behind: 24 bytes, since the key set of a big file is
/// most of the run's memory (10 M keys ≈ 400 MiB). The product id and the line share a word; keys
/// whose product id does not fit 24 bits, or whose line does not fit 40, go to [`Wide`] instead.
#[derive(Clone, Copy)]
struct Seen {
    order_id: i64,
    /// `product_id << LINE_BITS | line`.
    product_line: u64,
    fingerprint: u64,
}

/// The rare key that does not pack into [`Seen`]: 32 bytes.
#[derive(Clone, Copy)]
struct Wide {
    order_id: i64,
    product_id: i64,
    fingerprint: u64,
    line: u64,
}

const LINE_BITS: u32 = 40;
const PRODUCT_BITS: u32 = 64 - LINE_BITS;

/// `product_id` and `line` in one word, when both fit.
#[inline]
fn pack(product_id: i64, line: u64) -> Option<u64> {
    (packable_product(product_id) && line < 1 << LINE_BITS)
        .then_some((product_id as u64) << LINE_BITS | line)
}

#[inline]
fn packable_product(product_id: i64) -> bool {
    (0..1 << PRODUCT_BITS).contains(&product_id)
}

/// The fate of a row that is not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Same key and same content as an earlier row: dropped and counted.
    Duplicate,
    /// Same key, different content: quarantined, pointing at the kept row's line.
    Conflict { kept_line: u64 },
}

/// The dedup state of one file: every distinct key seen so far.
pub(crate) struct Deduper {
    shards: Vec<Shard>,
}

#[derive(Default)]
struct Shard {
    seen: HashTable<Seen>,
    wide: HashTable<Wide>,
}

/// What a shard knows of a key: the first occurrence's fingerprint and line.
struct Earlier {
    fingerprint: u64,
    line: u64,
}

impl Shard {
    fn find(&self, h: u64, order_id: i64, product_id: i64) -> Option<Earlier> {
        if packable_product(product_id) {
            let found = self.seen.find(h, |s| {
                s.order_id == order_id && s.product_line >> LINE_BITS == product_id as u64
            });
            if let Some(s) = found {
                return Some(Earlier {
                    fingerprint: s.fingerprint,
                    line: s.product_line & ((1 << LINE_BITS) - 1),
                });
            }
            // A packable key is wide only when its line did not fit: look there only if needed.
            if self.wide.is_empty() {
                return None;
            }
        }
        self.wide
            .find(h, |s| s.order_id == order_id && s.product_id == product_id)
            .map(|s| Earlier {
                fingerprint: s.fingerprint,
                line: s.line,
            })
    }

    /// The key's first occurrence if there is one; otherwise this row becomes it.
    fn find_or_insert(
        &mut self,
        h: u64,
        order_id: i64,
        product_id: i64,
        fingerprint: u64,
        line: u64,
    ) -> Option<Earlier> {
        // The common case in one probe: a key that packs, and no wide keys to look through.
        if self.wide.is_empty()
            && let Some(product_line) = pack(product_id, line)
        {
            let same = |s: &Seen| {
                s.order_id == order_id && s.product_line >> LINE_BITS == product_id as u64
            };
            return match self.seen.entry(h, same, seen_hash) {
                Entry::Occupied(e) => Some(Earlier {
                    fingerprint: e.get().fingerprint,
                    line: e.get().product_line & ((1 << LINE_BITS) - 1),
                }),
                Entry::Vacant(v) => {
                    v.insert(Seen {
                        order_id,
                        product_line,
                        fingerprint,
                    });
                    None
                }
            };
        }
        let found = self.find(h, order_id, product_id);
        if found.is_none() {
            self.insert(h, order_id, product_id, fingerprint, line);
        }
        found
    }

    fn insert(&mut self, h: u64, order_id: i64, product_id: i64, fingerprint: u64, line: u64) {
        match pack(product_id, line) {
            Some(product_line) => {
                let seen = Seen {
                    order_id,
                    product_line,
                    fingerprint,
                };
                self.seen.insert_unique(h, seen, seen_hash);
            }
            None => {
                let wide = Wide {
                    order_id,
                    product_id,
                    fingerprint,
                    line,
                };
                self.wide
                    .insert_unique(h, wide, |s| table_hash(key_hash(s.order_id, s.product_id)));
            }
        }
    }
}

/// Rows ahead of the one being judged whose table slots are prefetched: enough to overlap
/// the cache misses of several probes, few enough that the lines are still there when used.
const PREFETCH_AHEAD: usize = 12;

impl Shard {
    /// Asks for the cache lines a probe for `h` will touch first (its control group and
    /// bucket). The table grows rarely (it is reserved up front); `prefetcher` follows it.
    #[inline]
    fn prefetch(&self, h: u64, prefetcher: &mut Prefetcher) {
        prefetcher.prefetch(&self.seen, h, seen_hash, same_seen);
    }
}

fn same_seen(a: &Seen, b: &Seen) -> bool {
    a.order_id == b.order_id && a.product_line == b.product_line
}

/// The table hash of a stored packed key.
fn seen_hash(s: &Seen) -> u64 {
    table_hash(key_hash(s.order_id, (s.product_line >> LINE_BITS) as i64))
}

/// The hash a shard's table uses: the shard bits are rotated away, so the bits hashbrown looks
/// at (top 7 for its tags, bottom for buckets) vary within a shard.
#[inline]
fn table_hash(kh: u64) -> u64 {
    kh.rotate_left(SHARD_BITS)
}

impl Deduper {
    pub fn new() -> Self {
        Deduper {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }

    /// Judges the valid rows of consecutive ranges (in file order). `first_lines[i]` is the
    /// absolute line of range `i`'s start. Returns, per range, the rows not kept, in row order.
    pub fn judge(
        &mut self,
        ranges: &[&ShardedKeys],
        first_lines: &[u64],
    ) -> Vec<Vec<(u32, Verdict)>> {
        let found: Vec<Vec<(u32, u32, Verdict)>> = self
            .shards
            .par_iter_mut()
            .enumerate()
            .map(|(shard, table)| {
                let mut found = Vec::new();
                let mut prefetcher = Prefetcher::default();
                for (ri, rows) in ranges.iter().enumerate() {
                    let keys = rows.shard(shard);
                    for (k, key) in keys.iter().enumerate() {
                        if let Some(ahead) = keys.get(k + PREFETCH_AHEAD) {
                            table.prefetch(table_hash(ahead.key_hash), &mut prefetcher);
                        }
                        let h = table_hash(key.key_hash);
                        let line = first_lines[ri] + key.line_rel;
                        let fp = key.fingerprint;
                        let verdict =
                            match table.find_or_insert(h, key.order_id, key.product_id, fp, line) {
                                Some(seen) if seen.fingerprint == fp => Verdict::Duplicate,
                                Some(seen) => Verdict::Conflict {
                                    kept_line: seen.line,
                                },
                                None => continue,
                            };
                        found.push((ri as u32, key.row, verdict));
                    }
                }
                found
            })
            .collect();
        let mut per_range: Vec<Vec<(u32, Verdict)>> = vec![Vec::new(); ranges.len()];
        for (ri, row, verdict) in found.into_iter().flatten() {
            per_range[ri as usize].push((row, verdict));
        }
        for v in &mut per_range {
            v.sort_unstable_by_key(|&(row, _)| row);
        }
        per_range
    }

    /// Makes room for about `keys` distinct keys in total, so the tables do not grow (and rehash)
    /// while the file is read. No margin on top: a table's size is a power of two, so a margin
    /// can double it, while an estimate a little short costs one rehash of each small shard.
    pub fn reserve(&mut self, keys: usize) {
        let per_shard = keys / SHARDS + 16;
        for shard in &mut self.shards {
            let table = &mut shard.seen;
            if table.capacity() < per_shard {
                table.reserve(per_shard - table.len(), seen_hash);
            }
        }
    }

    /// Distinct keys seen.
    pub fn keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.seen.len() + s.wide.len())
            .sum()
    }

    /// Heap bytes held by the tables: every bucket and its control byte.
    pub fn heap_bytes(&self) -> usize {
        // hashbrown keeps 7/8 of its buckets usable once it has 8 or more.
        fn bytes<T>(t: &HashTable<T>) -> usize {
            let buckets = match t.capacity() {
                0 => 0,
                c if c < 7 => c + 1,
                c => c / 7 * 8,
            };
            buckets * (std::mem::size_of::<T>() + 1)
        }
        self.shards
            .iter()
            .map(|s| bytes(&s.seen) + bytes(&s.wide))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::keys::KeyRow;
    use super::*;

    /// One range of rows `(order_id, product_id, fingerprint, line_rel)`, as the parser would
    /// hand it over.
    fn range(rows: &[(i64, i64, u64, u64)]) -> ShardedKeys {
        let mut keys = ShardedKeys::with_capacity(rows.len());
        for (i, &(o, p, fp, line)) in rows.iter().enumerate() {
            keys.push(KeyRow {
                order_id: o,
                product_id: p,
                key_hash: key_hash(o, p),
                fingerprint: fp,
                line_rel: line,
                row: i as u32,
            });
        }
        keys
    }

    /// The reference: a plain map from key to the first occurrence.
    fn naive(
        ranges: &[Vec<(i64, i64, u64, u64)>],
        first_lines: &[u64],
    ) -> Vec<Vec<(u32, Verdict)>> {
        let mut seen: HashMap<(i64, i64), (u64, u64)> = HashMap::new();
        let mut out = Vec::new();
        for (rows, first) in ranges.iter().zip(first_lines) {
            let mut verdicts = Vec::new();
            for (i, &(o, p, fp, line)) in rows.iter().enumerate() {
                match seen.get(&(o, p)) {
                    Some(&(kept_fp, _)) if kept_fp == fp => {
                        verdicts.push((i as u32, Verdict::Duplicate))
                    }
                    Some(&(_, kept_line)) => {
                        verdicts.push((i as u32, Verdict::Conflict { kept_line }))
                    }
                    None => {
                        seen.insert((o, p), (fp, first + line));
                    }
                }
            }
            out.push(verdicts);
        }
        out
    }

    fn judge_all(
        ranges: &[Vec<(i64, i64, u64, u64)>],
        first_lines: &[u64],
        windows: usize,
        reserve: usize,
    ) -> (Vec<Vec<(u32, Verdict)>>, Deduper) {
        let mut d = Deduper::new();
        d.reserve(reserve);
        let valid: Vec<ShardedKeys> = ranges.iter().map(|r| range(r)).collect();
        let per_window = ranges.len().div_ceil(windows.max(1)).max(1);
        let mut out = Vec::new();
        for (w, lines) in valid.chunks(per_window).zip(first_lines.chunks(per_window)) {
            let refs: Vec<&ShardedKeys> = w.iter().collect();
            out.extend(d.judge(&refs, lines));
        }
        (out, d)
    }

    /// Product ids around the packing limit, negative ones, and lines beyond 40 bits.
    fn product() -> impl Strategy<Value = i64> {
        prop_oneof![
            4 => 0i64..4,
            1 => Just((1 << PRODUCT_BITS) - 1),
            1 => Just(1 << PRODUCT_BITS),
            1 => Just(-1i64),
            1 => Just(i64::MIN),
            1 => Just(i64::MAX),
        ]
    }

    proptest! {
        #[test]
        fn judges_like_a_plain_map(
            ranges in prop::collection::vec(
                prop::collection::vec((0i64..6, product(), 0u64..3, 0u64..1000), 0..40),
                1..6,
            ),
            huge_lines in any::<bool>(),
            windows in 1usize..4,
            reserve in 0usize..200,
        ) {
            let base = if huge_lines { (1 << LINE_BITS) - 500 } else { 1 };
            let first_lines: Vec<u64> = (0..ranges.len() as u64).map(|i| base + i * 1000).collect();
            let (got, d) = judge_all(&ranges, &first_lines, windows, reserve);
            prop_assert_eq!(got, naive(&ranges, &first_lines));
            let distinct: std::collections::HashSet<(i64, i64)> =
                ranges.iter().flatten().map(|&(o, p, _, _)| (o, p)).collect();
            prop_assert_eq!(d.keys(), distinct.len());
        }
    }

    /// Rows of `n` keys drawn from a seeded generator: many repeats, some with other content.
    fn seeded_rows(seed: u64, rows: usize, keys: u64) -> Vec<(i64, i64, u64, u64)> {
        let mut x = seed;
        let mut next = move || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        (0..rows)
            .map(|i| {
                let k = next() % keys;
                (1 + (k / 3) as i64, (k % 3) as i64, next() % 2, i as u64)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Big tables, big windows and tables that grow mid-window (prefetching follows them):
        /// still the plain map's verdicts.
        #[test]
        fn big_and_growing_tables_judge_like_a_plain_map(
            seed in any::<u64>(),
            keys in 2_000u64..40_000,
            windows in 1usize..3,
            reserve in prop_oneof![Just(0usize), Just(1 << 16)],
        ) {
            let ranges: Vec<_> = (0..4).map(|r| seeded_rows(seed ^ r, 8_000, keys)).collect();
            let first_lines: Vec<u64> = (0..4).map(|i| 1 + i * 10_000).collect();
            let (got, _) = judge_all(&ranges, &first_lines, windows, reserve);
            prop_assert_eq!(got, naive(&ranges, &first_lines));
        }
    }

    #[test]
    fn realistic_keys_take_24_bytes_and_wide_ones_still_dedup() {
        assert_eq!(std::mem::size_of::<Seen>(), 24);
        let rows: Vec<(i64, i64, u64, u64)> = (0..1000).map(|i| (i, 7, 1, i as u64)).collect();
        let (_, d) = judge_all(&[rows], &[2], 1, 1000);
        assert!(d.shards.iter().all(|s| s.wide.is_empty()));
        // Room for 1000/64 + 16 = 31 keys a shard: 64 buckets (56 usable), 25 bytes each.
        assert_eq!(d.heap_bytes(), SHARDS * 64 * 25);

        let wide = vec![
            (1, 1 << PRODUCT_BITS, 5, 0),
            (1, 1 << PRODUCT_BITS, 5, 1),
            (1, 1 << PRODUCT_BITS, 6, 2),
            (1, -3, 5, 3),
            (1, -3, 5, 4),
        ];
        let (got, d) = judge_all(&[wide], &[10], 1, 0);
        assert_eq!(
            got,
            vec![vec![
                (1, Verdict::Duplicate),
                (2, Verdict::Conflict { kept_line: 10 }),
                (4, Verdict::Duplicate),
            ]]
        );
        assert_eq!(d.keys(), 2);
    }
}
