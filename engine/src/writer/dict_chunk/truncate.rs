//! A byte-array chunk's statistics cut to the writer's truncation length, as the parquet
//! crate's column writer cuts them (`truncate_statistics` in `parquet::column::writer`, which
//! is private): the minimum cut to at most that many bytes, the maximum cut and its last byte
//! (or character) incremented so that it stays an upper bound; a string column's values are
//! cut at character boundaries. Values such as an input's path, longer than the default 64
//! bytes, would otherwise send their chunk to the general writer, which interns every row.

use parquet::basic::{ConvertedType, LogicalType};
use parquet::data_type::ByteArray;
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::schema::types::ColumnDescPtr;

/// Whether the column holds UTF-8 strings (its values are then cut at character boundaries).
pub(super) fn is_utf8(descr: &ColumnDescPtr) -> bool {
    descr.logical_type_ref() == Some(&LogicalType::String)
        || descr.converted_type() == ConvertedType::UTF8
}

/// The statistics of a byte-array chunk whose smallest and largest values are `min` and
/// `max`, cut to `length` bytes (`None`: kept whole).
pub(super) fn truncated(
    min: &[u8],
    max: &[u8],
    length: Option<usize>,
    utf8: bool,
    signed: bool,
) -> Statistics {
    let (min, min_cut) = cut_min(min, length, utf8);
    let (max, max_cut) = cut_max(max, length, utf8);
    Statistics::ByteArray(
        ValueStatistics::new(
            Some(ByteArray::from(min)),
            Some(ByteArray::from(max)),
            None,
            Some(0),
            signed,
        )
        .with_max_is_exact(!max_cut)
        .with_min_is_exact(!min_cut),
    )
}

/// `data` cut to at most `length` bytes, and whether it was cut.
fn cut_min(data: &[u8], length: Option<usize>, utf8: bool) -> (Vec<u8>, bool) {
    cut(data, length, utf8, cut_utf8, |prefix| Some(prefix.to_vec()))
}

/// `data` cut to at most `length` bytes and incremented, and whether it was cut.
fn cut_max(data: &[u8], length: Option<usize>, utf8: bool) -> (Vec<u8>, bool) {
    cut(data, length, utf8, cut_and_increment_utf8, |prefix| {
        increment(prefix.to_vec())
    })
}

/// `data` kept whole when it is no longer than `length` or when the cut (`text` for a string
/// column's valid UTF-8, else `bytes` of its first `length` bytes) gives nothing.
fn cut(
    data: &[u8],
    length: Option<usize>,
    utf8: bool,
    text: fn(&str, usize) -> Option<Vec<u8>>,
    bytes: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> (Vec<u8>, bool) {
    length
        .filter(|&l| data.len() > l)
        .and_then(|l| match std::str::from_utf8(data) {
            Ok(data) if utf8 => text(data, l),
            _ => bytes(&data[..l]),
        })
        .map_or_else(|| (data.to_vec(), false), |cut| (cut, true))
}

/// The longest non-empty prefix of at most `length` bytes that ends on a character boundary.
fn cut_utf8(data: &str, length: usize) -> Option<Vec<u8>> {
    let split = (1..=length).rfind(|&x| data.is_char_boundary(x))?;
    Some(data.as_bytes()[..split].to_vec())
}

/// The longest prefix of at most `length` bytes (and at least `length - 3`) that ends on a
/// character boundary, with its last character that can be incremented without growing
/// incremented (those after it dropped).
fn cut_and_increment_utf8(data: &str, length: usize) -> Option<Vec<u8>> {
    let lower = length.saturating_sub(3);
    let split = (lower..=length).rfind(|&x| data.is_char_boundary(x))?;
    increment_utf8(data.get(..split)?)
}

fn increment_utf8(data: &str) -> Option<Vec<u8>> {
    for (at, c) in data.char_indices().rev() {
        let width = c.len_utf8();
        if let Some(next) = char::from_u32(c as u32 + 1)
            && next.len_utf8() == width
        {
            let mut out = data.as_bytes()[..at + width].to_vec();
            next.encode_utf8(&mut out[at..]);
            return Some(out);
        }
    }
    None
}

/// The bytes incremented as one big-endian number; `None` when they are all `0xff`.
fn increment(mut data: Vec<u8>) -> Option<Vec<u8>> {
    for byte in data.iter_mut().rev() {
        let (next, overflow) = byte.overflowing_add(1);
        *byte = next;
        if !overflow {
            return Some(data);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_as_the_column_writer_does() {
        // Bytes: cut, the maximum incremented (carrying over 0xff).
        assert_eq!(cut_min(b"abcdef", Some(3), false), (b"abc".to_vec(), true));
        assert_eq!(cut_max(b"abcdef", Some(3), false), (b"abd".to_vec(), true));
        assert_eq!(
            cut_max(b"a\xff\xffz", Some(3), false),
            (b"b\0\0".to_vec(), true)
        );
        // Nothing to increment: kept whole.
        assert_eq!(
            cut_max(b"\xff\xffz", Some(2), false),
            (b"\xff\xffz".to_vec(), false)
        );
        assert_eq!(cut_min(b"abc", Some(3), true), (b"abc".to_vec(), false));
        assert_eq!(cut_min(b"abc", None, true), (b"abc".to_vec(), false));
        // Strings: at a character boundary ("é" is two bytes).
        assert_eq!(
            cut_min("aéé".as_bytes(), Some(2), true),
            (b"a".to_vec(), true)
        );
        assert_eq!(
            cut_max("aéé".as_bytes(), Some(4), true),
            ("aê".as_bytes().to_vec(), true)
        );
    }
}
