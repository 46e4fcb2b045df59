//! Prefetching the memory a `hashbrown::HashTable` probe touches first, so that the cache
//! misses of several probes overlap: in a table much larger than the caches, each probe is a
//! miss, and a loop of probes otherwise waits for them one at a time.
//!
//! hashbrown does not publish where its buckets are. [`BucketLayout`] derives it from one full
//! bucket's address and index, using hashbrown's layout (elements stored before the control
//! bytes, in reverse order). A wrong guess costs nothing but useless prefetches: no result
//! ever depends on it, and a test per table type checks the guess.

use hashbrown::HashTable;

/// Where a table's buckets are: the address of its control bytes, its bucket count (a power of
/// two) and the size of an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketLayout {
    ctrl: usize,
    buckets: usize,
    element: usize,
}

impl BucketLayout {
    /// The layout of `table`, found through one of its elements (`hash` is the table's hash of
    /// an element, `same` its equality); `None` when the table is empty.
    pub fn of<T>(
        table: &HashTable<T>,
        hash: impl Fn(&T) -> u64,
        same: impl Fn(&T, &T) -> bool,
    ) -> Option<Self> {
        let probe = table.iter().next()?;
        let index = table.find_bucket_index(hash(probe), |t| same(t, probe))?;
        let element = std::mem::size_of::<T>();
        let at = table.get_bucket(index)? as *const T as usize;
        Some(BucketLayout {
            ctrl: at + (index + 1) * element,
            buckets: table.num_buckets(),
            element,
        })
    }

    /// The bucket count the layout was found for: a table that grew has a new layout.
    pub fn buckets(&self) -> usize {
        self.buckets
    }

    /// Where this layout says the element of bucket `index` is.
    pub fn bucket_address(&self, index: usize) -> usize {
        self.ctrl.wrapping_sub((index + 1) * self.element)
    }

    /// Asks for the cache lines a probe for hash `h` touches first: its control group and its
    /// first bucket.
    #[inline]
    pub fn prefetch(&self, h: u64) {
        let index = h as usize & (self.buckets - 1);
        prefetch_line(self.ctrl.wrapping_add(index));
        prefetch_line(self.bucket_address(index));
    }
}

/// A table's [`BucketLayout`], found again when the table has grown.
#[derive(Debug, Default, Clone, Copy)]
pub struct Prefetcher {
    layout: Option<BucketLayout>,
}

impl Prefetcher {
    /// Prefetches the probe for `h` in `table` ([`BucketLayout::prefetch`]).
    #[inline]
    pub fn prefetch<T>(
        &mut self,
        table: &HashTable<T>,
        h: u64,
        hash: impl Fn(&T) -> u64,
        same: impl Fn(&T, &T) -> bool,
    ) {
        // Nothing to find the layout from (and, were it tried, a scan of an empty table per
        // probe).
        if table.is_empty() {
            return;
        }
        if self
            .layout
            .is_none_or(|l| l.buckets() != table.num_buckets())
        {
            self.layout = BucketLayout::of(table, hash, same);
        }
        if let Some(layout) = &self.layout {
            layout.prefetch(h);
        }
    }
}

/// Asks the CPU to bring the cache line holding `address` into the caches, without waiting
/// for it. Only a hint: it never faults, whatever the address, and does nothing on targets
/// other than x86-64 and arm64.
#[inline]
pub fn prefetch_line(address: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(address as *const i8);
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM is a hint; it never faults, whatever the address, and writes nothing.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) address, options(nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = address;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout's addresses are where hashbrown keeps the buckets, for elements of several
    /// sizes and alignments and as the table grows (if hashbrown's layout changed, prefetching
    /// would silently stop helping: this says so).
    #[test]
    fn the_layout_finds_every_bucket() {
        fn check<T: Copy + PartialEq>(make: impl Fn(u64) -> T, hash: impl Fn(&T) -> u64) {
            let mut table: HashTable<T> = HashTable::new();
            for n in 0..5_000u64 {
                let v = make(n);
                table.insert_unique(hash(&v), v, &hash);
                if n % 997 != 0 {
                    continue;
                }
                let layout = BucketLayout::of(&table, &hash, |a, b| a == b).unwrap();
                assert_eq!(layout.buckets(), table.num_buckets());
                for v in table.iter() {
                    let index = table.find_bucket_index(hash(v), |t| t == v).unwrap();
                    let at = table.get_bucket(index).unwrap() as *const T as usize;
                    assert_eq!(at, layout.bucket_address(index));
                }
            }
        }
        let mix = |x: u64| x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
        check(|n| n, |v| mix(*v));
        check(|n| (n as i64, -(n as i64), n as u8), |v| mix(v.0 as u64));
        check(|n| (n as i128, [n; 5]), |v| mix(v.0 as u64));
        assert!(BucketLayout::of(&HashTable::<u64>::new(), |v| *v, |a, b| a == b).is_none());
    }
}
