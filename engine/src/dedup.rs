//! Duplicate removal with hash sets sharded by key hash.
//!
//! Rows are routed to one of [`SHARDS`] tables by the top bits of their key hash; each shard is
//! visited by one thread, in file order, so there is no lock and the first occurrence of a key is
//! always the one kept — whatever the number of threads, chunk size or window size.

use hashbrown::HashTable;
use rayon::prelude::*;

use crate::chunk::{SHARD_BITS, SHARDS, ValidRows, key_hash};

/// What the first occurrence of a key left behind. 32 bytes per distinct key.
#[derive(Clone, Copy)]
struct Seen {
    order_id: i64,
    product_id: i64,
    fingerprint: u64,
    line: u64,
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
    shards: Vec<HashTable<Seen>>,
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
            shards: (0..SHARDS).map(|_| HashTable::new()).collect(),
        }
    }

    /// Judges the valid rows of consecutive ranges (in file order). `first_lines[i]` is the
    /// absolute line of range `i`'s start. Returns, per range, the rows not kept, in row order.
    pub fn judge(
        &mut self,
        ranges: &[&ValidRows],
        first_lines: &[u64],
    ) -> Vec<Vec<(u32, Verdict)>> {
        let found: Vec<Vec<(u32, u32, Verdict)>> = self
            .shards
            .par_iter_mut()
            .enumerate()
            .map(|(shard, table)| {
                let mut found = Vec::new();
                for (ri, rows) in ranges.iter().enumerate() {
                    for &r in &rows.by_shard[shard] {
                        let i = r as usize;
                        let (o, p) = (rows.order_id[i], rows.product_id[i]);
                        let h = table_hash(rows.key_hash[i]);
                        match table.find(h, |s| s.order_id == o && s.product_id == p) {
                            Some(seen) if seen.fingerprint == rows.fingerprint[i] => {
                                found.push((ri as u32, r, Verdict::Duplicate));
                            }
                            Some(seen) => {
                                found.push((
                                    ri as u32,
                                    r,
                                    Verdict::Conflict {
                                        kept_line: seen.line,
                                    },
                                ));
                            }
                            None => {
                                let seen = Seen {
                                    order_id: o,
                                    product_id: p,
                                    fingerprint: rows.fingerprint[i],
                                    line: first_lines[ri] + rows.line_rel[i],
                                };
                                table.insert_unique(h, seen, |s| {
                                    table_hash(key_hash(s.order_id, s.product_id))
                                });
                            }
                        }
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
    /// while the file is read.
    pub fn reserve(&mut self, keys: usize) {
        let per_shard = keys / SHARDS + keys / SHARDS / 8 + 16;
        for table in &mut self.shards {
            if table.capacity() < per_shard {
                table.reserve(per_shard - table.len(), |s| {
                    table_hash(key_hash(s.order_id, s.product_id))
                });
            }
        }
    }

    /// Distinct keys seen.
    pub fn keys(&self) -> usize {
        self.shards.iter().map(HashTable::len).sum()
    }

    /// Approximate heap bytes held by the tables.
    pub fn heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|t| t.capacity() * (std::mem::size_of::<Seen>() + 1))
            .sum()
    }
}
