//! Equality of a row's short byte strings (names, descriptions: tens of bytes), inlined: a call
//! to `memcmp` per row and column was a few percent of a run.

/// Whether `a == b`, comparing eight bytes at a time (four, then one, below eight).
#[inline(always)]
pub(crate) fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        if n >= 4 {
            // Two overlapping words cover 4 to 7 bytes.
            return word32(a, 0) == word32(b, 0) && word32(a, n - 4) == word32(b, n - 4);
        }
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let mut at = 0;
    while at + 8 <= n {
        if word64(a, at) != word64(b, at) {
            return false;
        }
        at += 8;
    }
    // The last, partial word, overlapping the one before.
    at == n || word64(a, n - 8) == word64(b, n - 8)
}

#[inline(always)]
fn word64(s: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(s[at..at + 8].try_into().unwrap())
}

#[inline(always)]
fn word32(s: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(s[at..at + 4].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use super::short_eq;
    use proptest::prelude::*;

    proptest! {
        /// Agrees with `==` on every length, for equal strings and strings that differ in one
        /// byte anywhere.
        #[test]
        fn agrees_with_slice_equality(a in prop::collection::vec(any::<u8>(), 0..40), at: usize, to: u8, cut in 0usize..3) {
            prop_assert!(short_eq(&a, &a.clone()));
            let mut b = a.clone();
            if !b.is_empty() {
                let i = at % b.len();
                b[i] = to;
            }
            prop_assert_eq!(short_eq(&a, &b), a == b);
            let shorter = &a[..a.len().saturating_sub(cut)];
            prop_assert_eq!(short_eq(&a, shorter), a[..] == shorter[..]);
        }
    }
}
