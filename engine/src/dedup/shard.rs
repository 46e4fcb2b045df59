//! One dedup shard: the first occurrence of every key routed to it.
//!
//! Order exports list an order's lines together and orders by id, so a shard mostly sees
//! order ids that never decrease. Such keys are appended to a list kept in order-id order
//! ([`Shard::in_order`]): a key whose order id is above the last one there cannot have been seen
//! (no lookup, no cache miss), and one equal to it can only be among the last order's lines.
//! A key that comes back to an earlier order (a repeated line, a late line) is searched in the
//! list from where the last such search ended, then in a hash table of the keys that came out
//! of order. A shard that sees many of those (an unsorted file) moves the list into the table
//! once and hashes every key from then on, as if there had never been a list.

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::keys::{SHARD_BITS, key_hash};
use crate::prefetch::Prefetcher;

/// What the first occurrence of a key left behind: 24 bytes, since the key set of a big file is
/// most of the run's memory (10 M keys ≈ 250 MiB). The product id and the line share a word; keys
/// whose product id does not fit 24 bits, or whose line does not fit 40, go to [`Wide`] instead.
#[derive(Clone, Copy)]
pub(super) struct Seen {
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

pub(super) const LINE_BITS: u32 = 40;
pub(super) const PRODUCT_BITS: u32 = 64 - LINE_BITS;

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

impl Seen {
    #[inline]
    fn is(&self, order_id: i64, product_id: i64) -> bool {
        self.order_id == order_id && self.product_line >> LINE_BITS == product_id as u64
    }

    #[inline]
    fn earlier(&self) -> Earlier {
        Earlier {
            fingerprint: self.fingerprint,
            line: self.product_line & ((1 << LINE_BITS) - 1),
        }
    }
}

/// What a shard knows of a key: the first occurrence's fingerprint and line.
pub(super) struct Earlier {
    pub fingerprint: u64,
    pub line: u64,
}

/// Out-of-order keys a shard takes before giving up its ordered list: an eighth of the list
/// (a file's repeated lines are a few percent of it), plus a start so that the first windows
/// of a file decide nothing.
fn out_of_order_limit(in_order: usize) -> usize {
    in_order / 8 + 4096
}

/// The first occurrences of one shard's keys.
#[derive(Default)]
pub(super) struct Shard {
    /// First occurrences of packable keys whose order id was at least that of every key
    /// before them here: sorted by order id.
    in_order: Vec<Seen>,
    /// Whether keys may still be appended to `in_order` (until the shard gives up on order).
    ordered: bool,
    /// Where in `in_order` the last search for an earlier order ended.
    finger: usize,
    /// Other first occurrences of packable keys. While the shard is `ordered`, each came when
    /// the last order id of `in_order` was above its own, so none matches a key at or above it.
    seen: HashTable<Seen>,
    /// Keys that do not pack, whenever they came.
    wide: HashTable<Wide>,
    /// Keys judged out of order (found or not).
    out_of_order: usize,
    /// The keys the shard was told to expect ([`Shard::reserve`]).
    expected: usize,
}

impl Shard {
    pub fn new() -> Self {
        Shard {
            ordered: true,
            ..Shard::default()
        }
    }

    /// Distinct keys.
    pub fn len(&self) -> usize {
        self.in_order.len() + self.seen.len() + self.wide.len()
    }

    /// Heap bytes held: the ordered list's keys (the rest of its capacity is address space a
    /// run never touches, and its size depends on when the estimate came), every bucket of the
    /// tables and its control byte.
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
        self.in_order.len() * std::mem::size_of::<Seen>() + bytes(&self.seen) + bytes(&self.wide)
    }

    /// Room for `keys` keys: in the ordered list while the shard is ordered (a sorted file's
    /// keys all go there; the table grows if they do not), else in the table.
    pub fn reserve(&mut self, keys: usize) {
        self.expected = keys;
        if self.ordered {
            self.in_order
                .reserve_exact(keys.saturating_sub(self.in_order.len()));
        } else if self.seen.capacity() < keys {
            self.seen.reserve(keys - self.seen.len(), seen_hash);
        }
    }

    /// Whether a key of `order_id` comes at or after every key of the ordered list.
    #[inline]
    fn in_turn(&self, order_id: i64) -> bool {
        self.ordered && self.in_order.last().is_none_or(|s| order_id >= s.order_id)
    }

    /// The key's first occurrence if there is one; otherwise this row becomes it.
    #[inline]
    pub fn find_or_insert(
        &mut self,
        h: u64,
        order_id: i64,
        product_id: i64,
        fingerprint: u64,
        line: u64,
    ) -> Option<Earlier> {
        let packed = pack(product_id, line);
        if self.in_turn(order_id) {
            // Only the last order's lines can match (and a wide key, of any order).
            let mut last_order = self
                .in_order
                .iter()
                .rev()
                .take_while(|s| s.order_id == order_id);
            if let Some(s) = last_order.find(|s| s.is(order_id, product_id)) {
                return Some(s.earlier());
            }
            let found = self.find_wide(h, order_id, product_id);
            if found.is_none() {
                match packed {
                    Some(product_line) => self.in_order.push(Seen {
                        order_id,
                        product_line,
                        fingerprint,
                    }),
                    None => self.insert_wide(h, order_id, product_id, fingerprint, line),
                }
            }
            return found;
        }
        if self.ordered {
            if let Some(found) = self.find_in_order(order_id, product_id) {
                return Some(found);
            }
            self.out_of_order += 1;
            if self.out_of_order > out_of_order_limit(self.in_order.len()) {
                self.give_up_order();
            }
        }
        // The common case in one probe: a key that packs, and no wide keys to look through.
        if self.wide.is_empty()
            && let Some(product_line) = packed
        {
            let same = |s: &Seen| s.is(order_id, product_id);
            return match self.seen.entry(h, same, seen_hash) {
                Entry::Occupied(e) => Some(e.get().earlier()),
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
        let found = self.find_hashed(h, order_id, product_id);
        if found.is_none() {
            match packed {
                Some(product_line) => {
                    let seen = Seen {
                        order_id,
                        product_line,
                        fingerprint,
                    };
                    self.seen.insert_unique(h, seen, seen_hash);
                }
                None => self.insert_wide(h, order_id, product_id, fingerprint, line),
            }
        }
        found
    }

    /// Searches the ordered list for a key below its last order id: galloping from the end of
    /// the last search (a repeated line usually follows its original closely, and a file sent
    /// twice in one walks the list forward), then halving.
    fn find_in_order(&mut self, order_id: i64, product_id: i64) -> Option<Earlier> {
        let list = &self.in_order;
        let below = |i: usize| list[i].order_id < order_id;
        // Bounds with `below(lo - 1)` (or lo = 0) and `!below(hi)` (or hi = len).
        let at = self.finger.min(list.len() - 1);
        let (mut lo, mut hi);
        if below(at) {
            (lo, hi) = (at + 1, list.len());
            let mut step = 1;
            while lo + step - 1 < hi {
                if below(lo + step - 1) {
                    lo += step;
                    step *= 2;
                } else {
                    hi = lo + step - 1;
                    break;
                }
            }
        } else {
            (lo, hi) = (0, at);
            let mut step = 1;
            while step <= hi {
                if below(hi - step) {
                    lo = hi - step + 1;
                    break;
                }
                hi -= step;
                step *= 2;
            }
        }
        let start = lo + list[lo..hi].partition_point(|s| s.order_id < order_id);
        self.finger = start;
        list[start..]
            .iter()
            .take_while(|s| s.order_id == order_id)
            .find(|s| s.is(order_id, product_id))
            .map(Seen::earlier)
    }

    /// Moves the ordered list into the table, for good: keys come out of order too often for
    /// the list to pay.
    #[cold]
    fn give_up_order(&mut self) {
        self.ordered = false;
        let list = std::mem::take(&mut self.in_order);
        let room = self.expected.max(self.seen.len() + list.len());
        self.seen.reserve(room - self.seen.len(), seen_hash);
        for s in list {
            self.seen.insert_unique(seen_hash(&s), s, seen_hash);
        }
    }

    /// The key in the tables (not the ordered list).
    fn find_hashed(&self, h: u64, order_id: i64, product_id: i64) -> Option<Earlier> {
        if packable_product(product_id)
            && let Some(s) = self.seen.find(h, |s| s.is(order_id, product_id))
        {
            return Some(s.earlier());
        }
        // A packable key is wide only when its line did not fit: look there only if needed.
        self.find_wide(h, order_id, product_id)
    }

    fn find_wide(&self, h: u64, order_id: i64, product_id: i64) -> Option<Earlier> {
        if self.wide.is_empty() {
            return None;
        }
        self.wide
            .find(h, |s| s.order_id == order_id && s.product_id == product_id)
            .map(|s| Earlier {
                fingerprint: s.fingerprint,
                line: s.line,
            })
    }

    fn insert_wide(&mut self, h: u64, order_id: i64, product_id: i64, fingerprint: u64, line: u64) {
        let wide = Wide {
            order_id,
            product_id,
            fingerprint,
            line,
        };
        self.wide
            .insert_unique(h, wide, |s| table_hash(key_hash(s.order_id, s.product_id)));
    }

    /// Asks for the cache lines a probe of the table for `h` will touch first (its control
    /// group and bucket), when the key will be looked up there (`order_id` is below the
    /// ordered list's last). `prefetcher` follows the table as it grows.
    #[inline]
    pub fn prefetch(&self, h: u64, order_id: i64, prefetcher: &mut Prefetcher) {
        if !self.in_turn(order_id) {
            prefetcher.prefetch(&self.seen, h, seen_hash, same_seen);
        }
    }

    #[cfg(test)]
    pub fn wide_is_empty(&self) -> bool {
        self.wide.is_empty()
    }

    #[cfg(test)]
    pub fn is_ordered(&self) -> bool {
        self.ordered
    }

    /// Keys in the tables, not the ordered list.
    #[cfg(test)]
    pub fn hashed(&self) -> usize {
        self.seen.len() + self.wide.len()
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
pub(super) fn table_hash(kh: u64) -> u64 {
    kh.rotate_left(SHARD_BITS)
}

#[cfg(test)]
pub(super) const SEEN_BYTES: usize = std::mem::size_of::<Seen>();
