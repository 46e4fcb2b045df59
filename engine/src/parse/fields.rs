//! Strict RFC 4180 field splitting of one record.
//!
//! simd-csv finds record boundaries fast but treats every `"` as a toggle, so a stray quote in
//! an unquoted field (`15" keg`) silently swallows the following lines. Every record it returns
//! is therefore re-read here under the strict rules: a quote may only open a field, `""` is an
//! escaped quote, and a closing quote must be followed by a comma or the end of the record.
//! A record that passes is split exactly as simd-csv split it; one that fails is reported so the
//! caller can quarantine it and resynchronise.

use memchr::{memchr, memchr2};

/// One field of a record: a byte range of the record, and whether its text must be unescaped
/// (it contained `""`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpan {
    /// Offset of the field's first byte in the record (after its opening quote, if quoted).
    pub start: u32,
    /// Offset just past the field's last byte (before its closing quote, if quoted).
    pub end: u32,
    /// Whether the text holds doubled quotes (`""`) that [`field_text`] turns into one.
    pub escaped: bool,
}

/// How a record breaks the quoting rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteError {
    /// A quote inside an unquoted field, or text after a closing quote.
    Stray,
    /// A quoted field that does not close before the end of the record.
    Unterminated,
}

/// Splits `record` (without its line terminator) into `out`.
#[inline]
pub fn split_fields(record: &[u8], out: &mut Vec<FieldSpan>) -> Result<(), QuoteError> {
    split_fields_counting_newlines(record, out).map(|_| ())
}

/// As [`split_fields`], also counting the newlines inside its quoted fields (one scan for
/// both). A record that splits has no other newline: outside quotes one ends the record.
#[inline]
pub(crate) fn split_fields_counting_newlines(
    record: &[u8],
    out: &mut Vec<FieldSpan>,
) -> Result<u32, QuoteError> {
    split_fields_with::<Blocks>(record, out)
}

/// [`split_fields`] with the portable block scanner whatever the machine (what arm64 runs), so
/// that benchmarks on x86-64 can compare the two.
#[doc(hidden)]
pub fn split_fields_portable(record: &[u8], out: &mut Vec<FieldSpan>) -> Result<(), QuoteError> {
    split_fields_with::<Words>(record, out).map(|_| ())
}

/// Unquoted text is scanned a block at a time for commas up to the next quote, which must open
/// a field; a quoted field is read up to its closing quote, and the scan resumes after it. Most
/// quoted records (a name with a comma) thus cost one block scan, not a call per field.
#[inline(always)]
fn split_fields_with<S: ScanBlocks>(
    record: &[u8],
    out: &mut Vec<FieldSpan>,
) -> Result<u32, QuoteError> {
    out.clear();
    let len = record.len();
    let mut newlines = 0;
    // Where the current field starts, and where the scan for its end resumes.
    let mut start = 0;
    let mut from = 0;
    loop {
        let quote = {
            let mut comma_at = |at: usize| {
                out.push(FieldSpan {
                    start: start as u32,
                    end: at as u32,
                    escaped: false,
                });
                start = at + 1;
            };
            match S::scan(record, from, &mut comma_at) {
                Err(quote) => Some(quote),
                Ok(scanned) => {
                    let mut quote = None;
                    for (i, &b) in record.iter().enumerate().skip(scanned) {
                        match b {
                            b'"' => {
                                quote = Some(i);
                                break;
                            }
                            b',' => comma_at(i),
                            _ => {}
                        }
                    }
                    quote
                }
            }
        };
        let Some(quote) = quote else {
            out.push(FieldSpan {
                start: start as u32,
                end: len as u32,
                escaped: false,
            });
            return Ok(newlines);
        };
        if quote != start {
            return Err(QuoteError::Stray);
        }
        let content_start = quote + 1;
        let mut escaped = false;
        let mut i = content_start;
        let content_end = loop {
            match S::find_quote_or_newline(record, i) {
                None => return Err(QuoteError::Unterminated),
                Some(at) if record[at] == b'\n' => {
                    newlines += 1;
                    i = at + 1;
                }
                Some(q) => {
                    if q + 1 < len && record[q + 1] == b'"' {
                        escaped = true;
                        i = q + 2;
                    } else {
                        break q;
                    }
                }
            }
        };
        out.push(FieldSpan {
            start: content_start as u32,
            end: content_end as u32,
            escaped,
        });
        let after = content_end + 1;
        if after == len {
            return Ok(newlines);
        }
        if record[after] != b',' {
            return Err(QuoteError::Stray);
        }
        start = after + 1;
        from = start;
    }
}

/// Finds the commas of whole blocks of a record in one pass, stopping at a quote. Records are
/// ~100 bytes with ten fields: one pass beats a `memchr` call per comma (about twice as fast).
trait ScanBlocks {
    /// Calls `comma_at` for each comma in the whole blocks of `record` from `from` on, up to
    /// the first quote; returns `Err` with the quote's offset, or `Ok` with how far it scanned
    /// (the tail shorter than a block is left to the caller).
    fn scan(record: &[u8], from: usize, comma_at: &mut impl FnMut(usize)) -> Result<usize, usize>;

    /// The first quote or newline of `record` from `from` on (a quoted field is ~20 bytes: a
    /// `memchr2` call costs more than the search).
    fn find_quote_or_newline(record: &[u8], from: usize) -> Option<usize>;
}

/// The scalar end of [`ScanBlocks::find_quote_or_newline`], for the tail shorter than a block.
#[inline(always)]
fn find_quote_or_newline_scalar(record: &[u8], from: usize) -> Option<usize> {
    let k = record[from..]
        .iter()
        .position(|&b| b == b'"' || b == b'\n')?;
    Some(from + k)
}

// x86-64 uses SSE2, part of every x86-64 CPU. Every other target (arm64: Graviton) uses the
// word-at-a-time scanner: plain Rust, tested on every machine, and under qemu for arm64 in CI
// (`.ci/arm64`). benches/README.md compares the two on x86-64.
#[cfg(target_arch = "x86_64")]
type Blocks = Sse2;
#[cfg(not(target_arch = "x86_64"))]
type Blocks = Words;

/// 16-byte blocks compared by SSE2.
#[cfg(target_arch = "x86_64")]
struct Sse2;

#[cfg(target_arch = "x86_64")]
impl ScanBlocks for Sse2 {
    #[inline(always)]
    fn scan(record: &[u8], from: usize, comma_at: &mut impl FnMut(usize)) -> Result<usize, usize> {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        let mut at = from;
        while at + 16 <= record.len() {
            let block = &record[at..at + 16];
            // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics are always
            // available; the load reads the 16 bytes of `block` and has no alignment requirement.
            let (quotes, commas) = unsafe {
                let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
                (
                    _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8))) as u32,
                    _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b',' as i8))) as u32,
                )
            };
            if quotes != 0 {
                let quote = quotes.trailing_zeros();
                each_bit(u64::from(commas & ((1 << quote) - 1)), |bit| {
                    comma_at(at + bit as usize)
                });
                return Err(at + quote as usize);
            }
            each_bit(u64::from(commas), |bit| comma_at(at + bit as usize));
            at += 16;
        }
        Ok(at)
    }

    #[inline(always)]
    fn find_quote_or_newline(record: &[u8], from: usize) -> Option<usize> {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        let mut at = from;
        while at + 16 <= record.len() {
            let block = &record[at..at + 16];
            // SAFETY: as in `scan`: SSE2 is always available, the load reads `block`.
            let found = unsafe {
                let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
                _mm_movemask_epi8(_mm_or_si128(
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8)),
                ))
            };
            if found != 0 {
                return Some(at + found.trailing_zeros() as usize);
            }
            at += 16;
        }
        find_quote_or_newline_scalar(record, at)
    }
}

/// 8-byte words, compared eight bytes at a time in a `u64` (SWAR): portable.
struct Words;

impl ScanBlocks for Words {
    #[inline(always)]
    fn scan(record: &[u8], from: usize, comma_at: &mut impl FnMut(usize)) -> Result<usize, usize> {
        let mut at = from;
        while at + 8 <= record.len() {
            let word = u64::from_le_bytes(record[at..at + 8].try_into().expect("8 bytes"));
            let (quotes, commas) = (bytes_equal(word, b'"'), bytes_equal(word, b','));
            // Byte k of the word is flagged by bit 8k + 7.
            if quotes != 0 {
                let quote = quotes.trailing_zeros() / 8;
                let before = (1u64 << (quote * 8)) - 1;
                each_bit(commas & before, |bit| comma_at(at + bit as usize / 8));
                return Err(at + quote as usize);
            }
            each_bit(commas, |bit| comma_at(at + bit as usize / 8));
            at += 8;
        }
        Ok(at)
    }

    #[inline(always)]
    fn find_quote_or_newline(record: &[u8], from: usize) -> Option<usize> {
        let mut at = from;
        while at + 8 <= record.len() {
            let word = u64::from_le_bytes(record[at..at + 8].try_into().expect("8 bytes"));
            let found = bytes_equal(word, b'"') | bytes_equal(word, b'\n');
            if found != 0 {
                return Some(at + found.trailing_zeros() as usize / 8);
            }
            at += 8;
        }
        find_quote_or_newline_scalar(record, at)
    }
}

/// Calls `f` with the position of each set bit of `mask`, lowest first.
#[inline(always)]
fn each_bit(mut mask: u64, mut f: impl FnMut(u32)) {
    while mask != 0 {
        f(mask.trailing_zeros());
        mask &= mask - 1;
    }
}

/// The top bit of each byte of `word` that equals `byte`, and no other bit. (The usual
/// `(x - 0x0101..) & !x & 0x8080..` only says whether some byte matches: its borrow can also
/// flag the byte after a match.)
#[inline(always)]
pub(crate) fn bytes_equal(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (u64::from(byte) * 0x0101_0101_0101_0101);
    // A byte of x is zero iff neither its low seven bits (the carry into bit 7) nor bit 7 is set.
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Whether every byte of `bytes` is ASCII, eight at a time. (The standard library's check
/// reads 64-byte blocks, then the rest one byte at a time: most of a ~100-byte record.)
#[inline]
pub(crate) fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let Some(last) = bytes.len().checked_sub(8) else {
        return bytes.iter().all(u8::is_ascii);
    };
    let (words, _) = bytes.as_chunks::<8>();
    // The last eight bytes cover the tail shorter than a word (overlapping the last word).
    let tail = u64::from_le_bytes(bytes[last..].try_into().expect("8 bytes"));
    words
        .iter()
        .fold(tail, |any, word| any | u64::from_le_bytes(*word))
        & HIGH
        == 0
}

/// End (just after its `\n`) of the record starting at `start`, under simd-csv's quote-toggle
/// rules, or `None` if it does not end before `end`.
///
/// simd-csv 0.14 mis-reads a `\r` after a closing quote (it looks two bytes ahead), ending such
/// a record before its newline depending on where its buffer happens to end. That only happens
/// on malformed records; the parser detects it and asks this exact, scalar version instead.
pub fn record_end(buf: &[u8], start: usize, end: usize) -> Option<usize> {
    let mut i = start;
    loop {
        // Outside quotes: the next newline ends the record, the next quote opens a quoted run.
        let k = memchr2(b'\n', b'"', &buf[i..end])?;
        i += k + 1;
        if buf[i - 1] == b'\n' {
            return Some(i);
        }
        // Inside quotes until a quote that is not doubled.
        loop {
            i += memchr(b'"', &buf[i..end])? + 1;
            if i < end && buf[i] == b'"' {
                i += 1;
            } else {
                break;
            }
        }
        if i == end {
            return None;
        }
    }
}

/// The text of a field: borrowed when it needs no unescaping, else `""` → `"` into `scratch`.
#[inline]
pub fn field_text<'a>(record: &'a [u8], f: FieldSpan, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    let raw = &record[f.start as usize..f.end as usize];
    if !f.escaped {
        return raw;
    }
    scratch.clear();
    let mut rest = raw;
    while let Some(q) = memchr(b'"', rest) {
        scratch.extend_from_slice(&rest[..=q]);
        rest = &rest[q + 2..];
    }
    scratch.extend_from_slice(rest);
    scratch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(rec: &str) -> Result<Vec<String>, QuoteError> {
        let mut spans = Vec::new();
        split_fields(rec.as_bytes(), &mut spans)?;
        let mut scratch = Vec::new();
        Ok(spans
            .iter()
            .map(|&f| {
                String::from_utf8(field_text(rec.as_bytes(), f, &mut scratch).to_vec()).unwrap()
            })
            .collect())
    }

    #[test]
    fn plain_and_quoted() {
        assert_eq!(fields("a,b,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(fields("a,,").unwrap(), ["a", "", ""]);
        assert_eq!(fields("").unwrap(), [""]);
        assert_eq!(fields(r#""a,b",c"#).unwrap(), ["a,b", "c"]);
        assert_eq!(
            fields(r#"x,"say ""hi""","#).unwrap(),
            ["x", r#"say "hi""#, ""]
        );
        assert_eq!(fields("\"two\nlines\",z").unwrap(), ["two\nlines", "z"]);
        assert_eq!(fields(r#""""#).unwrap(), [""]);
        assert_eq!(fields(r#""""""#).unwrap(), ["\""]);
    }

    #[test]
    fn record_ends() {
        let b = b"a,b\n\"x\ny\",z\n\"a\"\rq\nrest\n\"open";
        let first = record_end(b, 0, b.len()).unwrap();
        assert_eq!(&b[..first], b"a,b\n");
        let second = record_end(b, first, b.len()).unwrap();
        assert_eq!(&b[first..second], b"\"x\ny\",z\n");
        let third = record_end(b, second, b.len()).unwrap();
        assert_eq!(&b[second..third], b"\"a\"\rq\n");
        let fourth = record_end(b, third, b.len()).unwrap();
        assert_eq!(record_end(b, fourth, b.len()), None);
        assert_eq!(record_end(b"\"a\"\"\"\n", 0, 6), Some(6));
    }

    /// The strict rules, one byte at a time: the reference for the fast paths.
    fn reference(record: &[u8]) -> Result<Vec<FieldSpan>, QuoteError> {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            if record.get(i) == Some(&b'"') {
                let mut j = i + 1;
                let mut escaped = false;
                loop {
                    match record.get(j) {
                        None => return Err(QuoteError::Unterminated),
                        Some(b'"') if record.get(j + 1) == Some(&b'"') => {
                            escaped = true;
                            j += 2;
                        }
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                out.push(FieldSpan {
                    start: i as u32 + 1,
                    end: j as u32,
                    escaped,
                });
                match record.get(j + 1) {
                    None => return Ok(out),
                    Some(b',') => i = j + 2,
                    Some(_) => return Err(QuoteError::Stray),
                }
            } else {
                let mut j = i;
                while j < record.len() && record[j] != b',' {
                    if record[j] == b'"' {
                        return Err(QuoteError::Stray);
                    }
                    j += 1;
                }
                out.push(FieldSpan {
                    start: i as u32,
                    end: j as u32,
                    escaped: false,
                });
                if j == record.len() {
                    return Ok(out);
                }
                i = j + 1;
            }
        }
    }

    /// `split_fields` with the block scanner `S` in place of this machine's.
    fn split_with<S: ScanBlocks>(record: &[u8]) -> Result<Vec<FieldSpan>, QuoteError> {
        let mut spans = Vec::new();
        split_fields_with::<S>(record, &mut spans).map(|_| spans)
    }

    proptest::proptest! {
        #[test]
        fn is_ascii_agrees_with_the_standard_library(
            mut bytes in proptest::collection::vec(0u8..0x80, 0..300),
            high in proptest::option::of((0usize..300, 0x80u8..=0xff)),
        ) {
            if let Some((at, byte)) = high && !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            proptest::prop_assert_eq!(is_ascii(&bytes), bytes.is_ascii());
        }
    }

    proptest::proptest! {
        /// Records of any length (whole blocks and tails), commas and quotes anywhere, and
        /// two-byte letters whose second byte is a comma or a quote with the top bit set
        /// (`¬` is C2 AC, `¢` is C2 A2), through every block scanner.
        #[test]
        fn splits_as_the_strict_rules_do(
            record in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => proptest::char::range('a', 'c'),
                    3 => proptest::strategy::Just(','),
                    1 => proptest::strategy::Just('"'),
                    1 => proptest::sample::select(vec!['¬', '¢', '-', '#', '\0', '\n']),
                ],
                0..80,
            ),
        ) {
            let record: String = record.into_iter().collect();
            let expected = reference(record.as_bytes());
            if let Ok(spans) = &expected {
                let bytes = record.as_bytes();
                let quoted_newlines: usize = spans
                    .iter()
                    .filter(|f| f.start > 0 && bytes[f.start as usize - 1] == b'"')
                    .map(|f| bytes[f.start as usize..f.end as usize].iter().filter(|&&b| b == b'\n').count())
                    .sum();
                let mut spans = Vec::new();
                proptest::prop_assert_eq!(
                    split_fields_counting_newlines(bytes, &mut spans),
                    Ok(quoted_newlines as u32)
                );
                proptest::prop_assert_eq!(
                    split_fields_with::<Words>(bytes, &mut spans),
                    Ok(quoted_newlines as u32)
                );
            }
            let mut spans = Vec::new();
            let ours = split_fields(record.as_bytes(), &mut spans).map(|()| spans);
            proptest::prop_assert_eq!(&ours, &expected);
            proptest::prop_assert_eq!(&split_with::<Words>(record.as_bytes()), &expected);
            #[cfg(target_arch = "x86_64")]
            proptest::prop_assert_eq!(&split_with::<Sse2>(record.as_bytes()), &expected);
        }
    }

    /// Every pair of neighbouring byte values, for the bytes the scanners look for and the
    /// extremes: a borrow or carry between bytes would show as a wrong bit beside a match.
    #[test]
    fn bytes_equal_flags_exactly_the_equal_bytes() {
        for target in [b',', b'"', 0x00, 0x01, 0x7f, 0x80, 0xff] {
            for a in 0..=255u8 {
                for b in 0..=255u8 {
                    let bytes = [a, b, b, a, a, a, b, b];
                    let expected = (0..8)
                        .filter(|&i| bytes[i] == target)
                        .fold(0u64, |m, i| m | 0x80 << (8 * i));
                    assert_eq!(
                        bytes_equal(u64::from_le_bytes(bytes), target),
                        expected,
                        "{bytes:?} {target}"
                    );
                }
            }
        }
    }

    #[test]
    fn quoting_errors() {
        assert_eq!(fields(r#"1,15" keg,2"#), Err(QuoteError::Stray));
        assert_eq!(fields(r#"1,"abc"def,2"#), Err(QuoteError::Stray));
        assert_eq!(fields(r#"1, "abc",2"#), Err(QuoteError::Stray));
        assert_eq!(fields(r#"1,"abc,2"#), Err(QuoteError::Unterminated));
        assert_eq!(fields(r#"1,"abc"""#), Err(QuoteError::Unterminated));
    }
}
