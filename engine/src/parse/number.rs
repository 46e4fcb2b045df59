//! Integers and exact decimals parsed straight from bytes: no intermediate strings, no floats.

/// Fraction digits of every decimal column (price, volume and their totals): DECIMAL(18, 4).
pub const SCALE: u32 = 4;
/// Total digits of every decimal column.
pub const PRECISION: u8 = 18;
/// Largest unscaled value that fits DECIMAL(18, 4): 99999999999999.9999.
pub const MAX_UNSCALED: i64 = 999_999_999_999_999_999;
const MAX_INTEGER_DIGITS: u32 = PRECISION as u32 - SCALE;

/// Why a number did not parse; rendered into the quarantine `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumError {
    /// The field is empty or only blanks.
    Empty,
    /// A minus sign followed by something: numbers must not be negative.
    Negative,
    /// Not digits (for a decimal: digits, then optionally a `.` and more digits): a `+` sign,
    /// letters, a decimal point in an integer, inner blanks.
    NotANumber,
    /// Zero where the value must be positive (ids, units, volume).
    Zero,
    /// A decimal with more than [`SCALE`] fraction digits: it would have to be rounded.
    TooManyFractionDigits,
    /// An integer past `i64::MAX`, or a decimal with more integer digits than DECIMAL(18,4)
    /// holds.
    TooLarge,
}

impl std::fmt::Display for NumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NumError::Empty => "is empty",
            NumError::Negative => "is negative",
            NumError::NotANumber => "is not a number",
            NumError::Zero => "must be greater than zero",
            NumError::TooManyFractionDigits => "has more than 4 fraction digits",
            NumError::TooLarge => "is too large",
        })
    }
}

/// Strips ASCII spaces and tabs around a field.
#[inline]
pub fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[inline]
fn sign_error(s: &[u8]) -> NumError {
    if s.is_empty() {
        NumError::Empty
    } else if s[0] == b'-' && s.len() > 1 {
        NumError::Negative
    } else {
        NumError::NotANumber
    }
}

/// Parses a positive 64-bit integer (`[0-9]+`, surrounding blanks allowed, value > 0).
#[inline]
pub fn parse_positive_int(field: &[u8]) -> Result<i64, NumError> {
    parse_positive_int_at(field, 0, field.len())
}

/// [`parse_positive_int`] of `text[start..end]`; the bytes after `end` (the rest of a record)
/// let a plain number be read a word at a time.
#[inline(always)]
pub(crate) fn parse_positive_int_at(
    text: &[u8],
    start: usize,
    end: usize,
) -> Result<i64, NumError> {
    match super::digits::positive_int(text, start, end) {
        Some(v) => Ok(v),
        None => parse_positive_int_scalar(&text[start..end]),
    }
}

/// [`parse_positive_int`] a byte at a time: every spelling, and the reference of the fast path.
#[inline(never)]
pub(crate) fn parse_positive_int_scalar(field: &[u8]) -> Result<i64, NumError> {
    let s = trim(field);
    if s.is_empty() || !s[0].is_ascii_digit() {
        return Err(sign_error(s));
    }
    let mut v: i64 = 0;
    if s.len() <= 18 {
        // 18 digits cannot overflow: no check per digit (ids are parsed four times a row).
        for &b in s {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return Err(NumError::NotANumber);
            }
            v = v * 10 + d as i64;
        }
    } else {
        for &b in s {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return Err(NumError::NotANumber);
            }
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(d as i64))
                .ok_or(NumError::TooLarge)?;
        }
    }
    if v == 0 { Err(NumError::Zero) } else { Ok(v) }
}

/// Parses an exact decimal `[0-9]+(\.[0-9]+)?` into units of 10^-4 (DECIMAL(18,4)).
/// More than 4 fraction digits, or more than 14 significant integer digits, is an error:
/// values are never rounded.
#[inline]
pub fn parse_decimal(field: &[u8]) -> Result<i64, NumError> {
    parse_decimal_at(field, 0, field.len())
}

/// [`parse_decimal`] of `text[start..end]`, as [`parse_positive_int_at`].
#[inline(always)]
pub(crate) fn parse_decimal_at(text: &[u8], start: usize, end: usize) -> Result<i64, NumError> {
    match super::digits::decimal(text, start, end) {
        Some(v) => Ok(v),
        None => parse_decimal_scalar(&text[start..end]),
    }
}

/// [`parse_decimal`] a byte at a time: every spelling, and the reference of the fast path.
#[inline(never)]
pub(crate) fn parse_decimal_scalar(field: &[u8]) -> Result<i64, NumError> {
    let s = trim(field);
    if s.is_empty() || !s[0].is_ascii_digit() {
        return Err(sign_error(s));
    }
    let (mut v, mut i, mut int_digits) = (0i64, 0usize, 0u32);
    while i < s.len() && s[i].is_ascii_digit() {
        let d = (s[i] - b'0') as i64;
        if v != 0 || d != 0 {
            int_digits += 1;
            if int_digits > MAX_INTEGER_DIGITS {
                return Err(NumError::TooLarge);
            }
        }
        v = v * 10 + d;
        i += 1;
    }
    let mut frac_digits = 0u32;
    if i < s.len() && s[i] == b'.' {
        i += 1;
        while i < s.len() && s[i].is_ascii_digit() {
            if frac_digits == SCALE {
                // Tell "1.23456" (a real number, too precise) from "1.2.3" (garbage).
                return Err(if s[i..].iter().all(u8::is_ascii_digit) {
                    NumError::TooManyFractionDigits
                } else {
                    NumError::NotANumber
                });
            }
            v = v * 10 + (s[i] - b'0') as i64;
            frac_digits += 1;
            i += 1;
        }
        if frac_digits == 0 {
            return Err(NumError::NotANumber);
        }
    }
    if i != s.len() {
        return Err(NumError::NotANumber);
    }
    Ok(v * 10i64.pow(SCALE - frac_digits))
}

/// `unscaled × units`, or `None` when the product does not fit DECIMAL(18,4).
#[inline]
pub fn checked_total(unscaled: i64, units: i64) -> Option<i64> {
    let t = (unscaled as i128) * (units as i128);
    (t <= MAX_UNSCALED as i128).then_some(t as i64)
}

/// Renders an unscaled DECIMAL(18,4) value, e.g. `125000` → `"12.5000"`.
pub fn format_decimal(unscaled: i64) -> String {
    let p = 10i64.pow(SCALE);
    let sign = if unscaled < 0 { "-" } else { "" };
    let a = unscaled.unsigned_abs();
    format!("{sign}{}.{:04}", a / p as u64, a % p as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers() {
        assert_eq!(parse_positive_int(b"42"), Ok(42));
        assert_eq!(parse_positive_int(b" 007 "), Ok(7));
        assert_eq!(parse_positive_int(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(
            parse_positive_int(b"9223372036854775808"),
            Err(NumError::TooLarge)
        );
        assert_eq!(parse_positive_int(b"0"), Err(NumError::Zero));
        // Either side of the 18 digits parsed without overflow checks.
        assert_eq!(
            parse_positive_int(b"999999999999999999"),
            Ok(999_999_999_999_999_999)
        );
        assert_eq!(
            parse_positive_int(b"000000000000000000"),
            Err(NumError::Zero)
        );
        assert_eq!(parse_positive_int(b"00000000000000000000042"), Ok(42));
        assert_eq!(
            parse_positive_int(b"99999999999999999999"),
            Err(NumError::TooLarge)
        );
        assert_eq!(
            parse_positive_int(b"99999999999999999x"),
            Err(NumError::NotANumber)
        );
        assert_eq!(parse_positive_int(b"-5"), Err(NumError::Negative));
        assert_eq!(parse_positive_int(b""), Err(NumError::Empty));
        assert_eq!(parse_positive_int(b"  "), Err(NumError::Empty));
        for bad in [&b"12x"[..], b"1.5", b"+3", b"abc", b"1 2", b"-"] {
            assert_eq!(
                parse_positive_int(bad),
                Err(NumError::NotANumber),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal(b"12.50"), Ok(125_000));
        assert_eq!(parse_decimal(b"0"), Ok(0));
        assert_eq!(parse_decimal(b"0.0001"), Ok(1));
        assert_eq!(parse_decimal(b"30"), Ok(300_000));
        assert_eq!(parse_decimal(b" 1.000 "), Ok(10_000));
        assert_eq!(parse_decimal(b"99999999999999.9999"), Ok(MAX_UNSCALED));
        assert_eq!(parse_decimal(b"000000000000000001.5"), Ok(15_000));
        assert_eq!(parse_decimal(b"100000000000000"), Err(NumError::TooLarge));
        assert_eq!(
            parse_decimal(b"12.34567"),
            Err(NumError::TooManyFractionDigits)
        );
        assert_eq!(parse_decimal(b"-1.00"), Err(NumError::Negative));
        assert_eq!(parse_decimal(b""), Err(NumError::Empty));
        for bad in [
            &b"1e3"[..],
            b"12.",
            b".5",
            b"1.2.3",
            b"abc",
            b"1,5",
            b"1.23456x",
        ] {
            assert_eq!(parse_decimal(bad), Err(NumError::NotANumber), "{bad:?}");
        }
    }

    #[test]
    fn totals_and_formatting() {
        assert_eq!(checked_total(125_000, 3), Some(375_000));
        assert_eq!(checked_total(99_999_999_999_900, 1_000_000), None);
        assert_eq!(checked_total(MAX_UNSCALED, 1), Some(MAX_UNSCALED));
        assert_eq!(format_decimal(125_000), "12.5000");
        assert_eq!(format_decimal(1), "0.0001");
    }

    proptest! {
        /// Any value the column can hold round-trips through its text form, at every
        /// number of written fraction digits.
        #[test]
        fn decimal_round_trip(v in 0i64..=MAX_UNSCALED, trailing in 0usize..4) {
            let text = format_decimal(v);
            prop_assert_eq!(parse_decimal(text.as_bytes()), Ok(v));
            let shorter = &text[..text.len() - trailing];
            let expect = if shorter.ends_with('.') { Err(NumError::NotANumber) } else {
                Ok(v - v % 10i64.pow(trailing as u32))
            };
            if !shorter.ends_with('.') && v % 10i64.pow(trailing as u32) == 0 {
                prop_assert_eq!(parse_decimal(shorter.as_bytes()), expect);
            }
        }

        #[test]
        fn integers_match_std(v in 1i64..=i64::MAX) {
            prop_assert_eq!(parse_positive_int(v.to_string().as_bytes()), Ok(v));
        }
    }
}
