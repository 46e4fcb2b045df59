//! Plain numbers read eight bytes at a time (SWAR: a word of ASCII digits turned into its value
//! with three multiplies), the fast path of [`crate::parse::number`].
//!
//! These functions only ever accept the plain spelling — digits, and for a decimal one `.` with 1
//! to 4 digits after it — and answer `None` for anything else (blanks, signs, zero ids, long
//! values, garbage), which the scalar parsers in [`crate::parse::number`] then judge, with their
//! exact error. So the fast path can only be faster, never different; a property test checks it.

use super::fields::bytes_equal;

/// `text[start..end]` as a positive integer, when it is 1 to 16 digits and not zero.
#[inline(always)]
pub(crate) fn positive_int(text: &[u8], start: usize, end: usize) -> Option<i64> {
    let len = end - start;
    if !(1..=16).contains(&len) {
        return None;
    }
    let high = digits(word_at(text, start), len.min(8))?;
    let value = if len > 8 {
        high * POW10[len - 8] + digits(word_at(text, start + 8), len - 8)?
    } else {
        high
    };
    (value != 0).then_some(value as i64)
}

/// `text[start..end]` as a DECIMAL(18,4) in units of 10^-4, when it is at most 8 bytes of
/// digits with at most one `.` that has digits on both sides and at most 4 after it.
#[inline(always)]
pub(crate) fn decimal(text: &[u8], start: usize, end: usize) -> Option<i64> {
    let len = end - start;
    if !(1..=8).contains(&len) {
        return None;
    }
    let word = word_at(text, start);
    let dots = bytes_equal(word, b'.') & low_bytes(len);
    if dots == 0 {
        return Some(digits(word, len)? as i64 * 10_000);
    }
    let dot = dots.trailing_zeros() as usize / 8;
    let fraction = len - dot - 1;
    if dot == 0 || !(1..=4).contains(&fraction) {
        return None;
    }
    // The digits either side of the dot, joined: a second dot fails as a non-digit.
    let joined = (word & low_bytes(dot)) | ((word >> (8 * (dot + 1))) << (8 * dot));
    Some((digits(joined, len - 1)? * POW10[4 - fraction]) as i64)
}

const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// The value of the first `len` (1 to 8) bytes of `word` (little-endian: the first byte is the
/// most significant digit), or `None` unless each is an ASCII digit.
#[inline(always)]
fn digits(word: u64, len: usize) -> Option<u64> {
    debug_assert!((1..=8).contains(&len));
    // Each byte's digit value; shifted so the field's bytes are the word's most significant
    // ones and the bytes after it fall off: the zero bytes below read as leading zeros.
    let d = (word ^ repeat(b'0')) << (8 * (8 - len));
    // A byte is a digit when its value is below 10: adding 0x76 sets its top bit otherwise
    // (and bytes with the top bit already set are caught by `d` itself).
    if (d | d.wrapping_add(repeat(0x76))) & repeat(0x80) != 0 {
        return None;
    }
    // Pairs, then quads, then all eight: 10·a + b in each 16-bit lane, and so on.
    let d = (d.wrapping_mul(10) + (d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let d = (d.wrapping_mul(100) + (d >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((d.wrapping_mul(10_000) + (d >> 32)) & 0xFFFF_FFFF)
}

/// The 8 bytes of `text` from `at` as a little-endian word; bytes past its end read as 0.
#[inline(always)]
fn word_at(text: &[u8], at: usize) -> u64 {
    match text.get(at..at + 8) {
        Some(bytes) => u64::from_le_bytes(bytes.try_into().unwrap()),
        None => {
            let mut bytes = [0u8; 8];
            let tail = &text[at.min(text.len())..];
            bytes[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(bytes)
        }
    }
}

/// A mask of the first `n` (0 to 8) bytes of a word.
#[inline(always)]
fn low_bytes(n: usize) -> u64 {
    u64::MAX.checked_shr(8 * (8 - n) as u32).unwrap_or(0)
}

#[inline(always)]
const fn repeat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::number::{parse_decimal_scalar, parse_positive_int_scalar};
    use proptest::prelude::*;

    #[test]
    fn plain_numbers() {
        let at = |s: &str| positive_int(s.as_bytes(), 0, s.len());
        assert_eq!(at("7"), Some(7));
        assert_eq!(at("103100"), Some(103_100));
        assert_eq!(at("10001000000"), Some(10_001_000_000));
        assert_eq!(at("9999999999999999"), Some(9_999_999_999_999_999));
        assert_eq!(at("00000042"), Some(42));
        for other in [
            "",
            "0",
            "00",
            "12x",
            " 7",
            "-5",
            "+5",
            "1.5",
            "99999999999999999",
        ] {
            assert_eq!(at(other), None, "{other:?}");
        }
        let dec = |s: &str| decimal(s.as_bytes(), 0, s.len());
        assert_eq!(dec("17.73"), Some(177_300));
        assert_eq!(dec("0.5"), Some(5_000));
        assert_eq!(dec("50"), Some(500_000));
        assert_eq!(dec("0"), Some(0));
        assert_eq!(dec("1234.567"), Some(12_345_670));
        assert_eq!(dec("0.0001"), Some(1));
        for other in [
            "",
            ".5",
            "5.",
            "1.2.3",
            "1.23456",
            "1..2",
            "1,5",
            "123456789",
            " 1.5",
        ] {
            assert_eq!(dec(other), None, "{other:?}");
        }
    }

    #[test]
    fn the_bytes_after_a_field_do_not_matter() {
        // A record's next field follows the number in the same word.
        let record = b"17.73,126,0.5,Online";
        assert_eq!(decimal(record, 0, 5), Some(177_300));
        assert_eq!(positive_int(record, 6, 9), Some(126));
        assert_eq!(decimal(record, 10, 13), Some(5_000));
        assert_eq!(low_bytes(0), 0);
        assert_eq!(low_bytes(3), 0xFF_FFFF);
        assert_eq!(low_bytes(7), 0x00FF_FFFF_FFFF_FFFF);
        assert_eq!(low_bytes(8), u64::MAX);
    }

    /// Text from the bytes numbers are made of, and a few they must not contain.
    fn numberish() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            8 => b'0'..=b'9',
            2 => Just(b'.'),
            1 => prop::sample::select(b" -+,x/:\xff\x00".to_vec()),
        ];
        prop::collection::vec(byte, 0..20)
    }

    /// Plain decimals of at most 8 bytes — the fast path's whole domain — with 0 to 4 places
    /// and 1 to 8 integer digits, built to fit rather than filtered (a filter rejected most
    /// draws and made proptest give up on some seeds).
    fn short_decimal() -> impl Strategy<Value = String> {
        (0usize..5)
            .prop_flat_map(|places| {
                let widest = if places == 0 { 8 } else { 7 - places };
                (Just(places), 1..=widest)
            })
            .prop_flat_map(|(places, digits)| {
                let low = if digits == 1 {
                    0
                } else {
                    10u64.pow(digits as u32 - 1)
                };
                (
                    Just(places),
                    low..10u64.pow(digits as u32),
                    0..10u32.pow(places as u32),
                )
            })
            .prop_map(|(places, int, fraction)| {
                if places == 0 {
                    int.to_string()
                } else {
                    format!("{int}.{fraction:0places$}")
                }
            })
    }

    proptest! {
        /// The fast path agrees with the scalar parsers whenever it answers, and answers for
        /// every plain number it is meant for; whatever bytes follow the field.
        #[test]
        fn agrees_with_the_scalar_parsers(field in numberish(), after in numberish()) {
            let text = [&field[..], &after[..]].concat();
            let end = field.len();
            if let Some(v) = positive_int(&text, 0, end) {
                prop_assert_eq!(Ok(v), parse_positive_int_scalar(&field));
            } else if (1..=16).contains(&end) && field.iter().all(u8::is_ascii_digit) {
                prop_assert_eq!(parse_positive_int_scalar(&field), Err(crate::parse::number::NumError::Zero));
            }
            if let Some(v) = decimal(&text, 0, end) {
                prop_assert_eq!(Ok(v), parse_decimal_scalar(&field));
            } else if end <= 8 && field.iter().all(u8::is_ascii_digit) && end > 0 {
                prop_assert!(false, "a plain integer decimal {:?} missed", field);
            }
        }

        #[test]
        fn every_short_decimal_is_read(text in short_decimal()) {
            prop_assert!(text.len() <= 8);
            prop_assert_eq!(decimal(text.as_bytes(), 0, text.len()).map(Ok), Some(parse_decimal_scalar(text.as_bytes())));
        }
    }
}
