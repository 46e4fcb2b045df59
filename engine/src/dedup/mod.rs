//! Duplicate removal, sharded by key hash.
//!
//! Rows are routed to one of [`SHARDS`] shards by the top bits of their key hash; each shard is
//! visited by one thread, in file order, so there is no lock and the first occurrence of a key is
//! always the one kept — whatever the number of threads, chunk size or window size. A shard
//! appends the keys of a file sorted by order id to a list, and hashes the others
//! ([`shard`]).

use rayon::prelude::*;

pub(crate) mod keys;
mod shard;

use crate::prefetch::Prefetcher;
use keys::{SHARDS, ShardedKeys};
use shard::{Shard, table_hash};

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

/// Rows ahead of the one being judged whose table slots are prefetched: enough to overlap
/// the cache misses of several probes, few enough that the lines are still there when used.
const PREFETCH_AHEAD: usize = 12;

impl Deduper {
    pub fn new() -> Self {
        Deduper {
            shards: (0..SHARDS).map(|_| Shard::new()).collect(),
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
                            table.prefetch(
                                table_hash(ahead.key_hash),
                                ahead.order_id,
                                &mut prefetcher,
                            );
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

    /// Makes room for about `keys` distinct keys in total, so the shards do not grow (copy or
    /// rehash) while the file is read. No margin on top: a table's size is a power of two, so
    /// a margin can double it, while an estimate a little short costs one growth of each small
    /// shard.
    pub fn reserve(&mut self, keys: usize) {
        let per_shard = keys / SHARDS + 16;
        for shard in &mut self.shards {
            shard.reserve(per_shard);
        }
    }

    /// Distinct keys seen.
    pub fn keys(&self) -> usize {
        self.shards.iter().map(Shard::len).sum()
    }

    /// Heap bytes held by the shards.
    pub fn heap_bytes(&self) -> usize {
        self.shards.iter().map(Shard::heap_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::keys::{KeyRow, key_hash};
    use super::shard::{LINE_BITS, PRODUCT_BITS, SEEN_BYTES};
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
        assert_eq!(SEEN_BYTES, 24);
        let rows: Vec<(i64, i64, u64, u64)> = (0..1000).map(|i| (i, 7, 1, i as u64)).collect();
        let (_, d) = judge_all(&[rows], &[2], 1, 1000);
        assert!(d.shards.iter().all(|s| s.wide_is_empty() && s.is_ordered()));
        // Keys in order are held in the ordered lists: 24 bytes each, whatever was reserved.
        assert_eq!(d.heap_bytes(), 1000 * 24);

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

    /// Rows of a file sorted by order id: orders of 1–6 lines, and now and then a line that
    /// repeats (same content, or not) one of the last `reach` orders' lines, or a later line of
    /// an order already seen.
    fn sorted_rows(seed: u64, orders: i64, reach: i64) -> Vec<(i64, i64, u64, u64)> {
        let mut x = seed | 1;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut rows = Vec::new();
        for order in 0..orders {
            for product in 0..1 + next(6) as i64 {
                rows.push((order, product, 0, rows.len() as u64));
                if next(10) == 0 {
                    let back = order - next(reach as u64 + 1) as i64;
                    rows.push((back.max(0), next(7) as i64, next(2), rows.len() as u64));
                }
            }
        }
        rows
    }

    /// A row as the tests write it: `(order_id, product_id, fingerprint, line_rel)`.
    type Row = (i64, i64, u64, u64);

    /// `rows` cut into ranges of `per` rows, with each range's first line.
    fn cut(rows: &[Row], per: usize) -> (Vec<Vec<Row>>, Vec<u64>) {
        let ranges: Vec<Vec<_>> = rows
            .chunks(per)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .map(|(i, &(o, p, fp, _))| (o, p, fp, i as u64))
                    .collect()
            })
            .collect();
        let firsts = (0..ranges.len() as u64)
            .map(|i| 1 + i * per as u64)
            .collect();
        (ranges, firsts)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// A file sorted by order id with lines repeated near and far, sent once, twice in a
        /// row, or with its second half shuffled (its keys go back to earlier orders, to the
        /// tables): the plain map's verdicts, whatever the path each key takes. Giving the
        /// lists up takes more keys than these files have: the next test.
        #[test]
        fn sorted_files_judge_like_a_plain_map(
            seed in any::<u64>(),
            orders in 1i64..6_000,
            reach in prop_oneof![Just(0i64), Just(3), Just(5_000)],
            shape in 0u8..3,
            per in prop_oneof![Just(97usize), Just(4_096)],
            reserve in prop_oneof![Just(0usize), Just(1 << 14)],
        ) {
            let mut rows = sorted_rows(seed, orders, reach);
            match shape {
                1 => rows.extend(rows.clone()),
                2 => {
                    let half = rows.len() / 2;
                    let mut x = seed | 1;
                    for i in (half + 1..rows.len()).rev() {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        rows.swap(i, half + (x >> 33) as usize % (i - half + 1));
                    }
                }
                _ => {}
            }
            let (ranges, firsts) = cut(&rows, per);
            let (got, _) = judge_all(&ranges, &firsts, 2, reserve);
            prop_assert_eq!(got, naive(&ranges, &firsts));
        }
    }

    #[test]
    fn a_sorted_file_is_appended_and_an_unsorted_one_hashed() {
        let sorted = sorted_rows(7, 200_000, 50);
        let (ranges, firsts) = cut(&sorted, 4_096);
        let (_, d) = judge_all(&ranges, &firsts, 1, sorted.len());
        assert!(d.shards.iter().all(|s| s.is_ordered()));
        assert!(d.shards.iter().all(|s| s.hashed() < s.len() / 8));

        let mut shuffled = sorted;
        let mut x = 1u64;
        for i in (1..shuffled.len()).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        let (ranges, firsts) = cut(&shuffled, 4_096);
        let (got, d) = judge_all(&ranges, &firsts, 1, shuffled.len());
        assert_eq!(got, naive(&ranges, &firsts));
        assert!(
            d.shards
                .iter()
                .all(|s| !s.is_ordered() && s.hashed() == s.len())
        );
    }
}
