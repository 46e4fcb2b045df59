//! An independent reference reader for the engine's data contract: splits
//! records with a quote-aware state machine, applies every validation rule,
//! and derives the counts a correct engine must report. It shares no code
//! with the generator, so agreement between the two means something.

use std::collections::{BTreeMap, HashMap, HashSet};

pub const COLUMNS: [&str; 10] = [
    "client_id",
    "client_name",
    "order_id",
    "product_id",
    "product_description",
    "product_price",
    "product_ccf",
    "product_volume",
    "point_of_sale_channel",
    "status",
];

/// 99999999999999.9999 in units of 1e-4.
const MAX_SCALED: i128 = 999_999_999_999_999_999;

#[derive(Debug)]
pub struct Record {
    /// Byte offset of the record in the file.
    pub start: usize,
    /// Record bytes without the line end.
    pub raw: Vec<u8>,
    pub fields: Vec<Vec<u8>>,
    /// `bad_quoting` or `unterminated_quote` when the quoting is broken.
    pub error: Option<&'static str>,
}

#[derive(PartialEq, Clone, Copy)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// Splits `data` (BOM allowed) into records, RFC 4180 style, leniently:
/// a stray quote in an unquoted field is kept as data and flagged.
pub fn split(data: &[u8]) -> Vec<Record> {
    let body_start = if data.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let mut records = Vec::new();
    let mut fields: Vec<Vec<u8>> = Vec::new();
    let mut field = Vec::new();
    let mut error = None;
    let mut state = State::FieldStart;
    let mut start = body_start;
    let mut i = body_start;
    while i < data.len() {
        let b = data[i];
        let line_end = match (b, data.get(i + 1)) {
            (b'\n', _) => Some(1),
            (b'\r', Some(b'\n')) => Some(2),
            _ => None,
        };
        match state {
            State::Quoted => {
                if b == b'"' {
                    state = State::QuoteInQuoted;
                } else {
                    field.push(b);
                }
            }
            _ if b == b',' => {
                fields.push(std::mem::take(&mut field));
                state = State::FieldStart;
            }
            _ if line_end.is_some() => {
                fields.push(std::mem::take(&mut field));
                records.push(Record {
                    start,
                    raw: data[start..i].to_vec(),
                    fields: std::mem::take(&mut fields),
                    error: error.take(),
                });
                i += line_end.unwrap();
                start = i;
                state = State::FieldStart;
                continue;
            }
            State::FieldStart if b == b'"' => state = State::Quoted,
            State::QuoteInQuoted if b == b'"' => {
                field.push(b'"');
                state = State::Quoted;
            }
            // A quote inside an unquoted field, or data after a closing quote.
            State::Unquoted | State::QuoteInQuoted
                if b == b'"' || state == State::QuoteInQuoted =>
            {
                error = Some("bad_quoting");
                field.push(b);
                state = State::Unquoted;
            }
            _ => {
                field.push(b);
                state = State::Unquoted;
            }
        }
        i += 1;
    }
    if start < data.len() {
        if state == State::Quoted {
            error = Some("unterminated_quote");
        }
        fields.push(field);
        records.push(Record {
            start,
            raw: data[start..].to_vec(),
            fields,
            error,
        });
    }
    records
}

fn id(v: &[u8]) -> Option<i64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v)
        .ok()?
        .parse::<i64>()
        .ok()
        .filter(|&n| n > 0)
}

/// Exact decimal >= 0, at most 4 fraction digits, scaled by 1e4.
fn decimal(v: &[u8]) -> Option<i128> {
    let s = std::str::from_utf8(v).ok()?;
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || frac.len() > 4 || s.ends_with('.') {
        return None;
    }
    if int.trim_start_matches('0').len() + frac.len() > 18 {
        return None;
    }
    let scaled: i128 = format!("{int}{frac:0<4}").parse().ok()?;
    (scaled <= MAX_SCALED).then_some(scaled)
}

fn blank(v: &[u8]) -> bool {
    v.iter().all(|b| b.is_ascii_whitespace())
}

fn one_of(v: &[u8], allowed: &[&str]) -> bool {
    allowed.iter().any(|a| v.eq_ignore_ascii_case(a.as_bytes()))
}

/// Canonical column -> position in the file, from the header record.
pub struct Header {
    pub pos: [usize; 10],
    pub width: usize,
}

pub fn header(rec: &Record) -> Header {
    let names: Vec<String> = rec
        .fields
        .iter()
        .map(|f| {
            String::from_utf8(f.clone())
                .unwrap()
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    let pos = COLUMNS.map(|c| names.iter().position(|n| n == c).expect(c));
    Header {
        pos,
        width: names.len(),
    }
}

/// Every rule `rec` breaks, in a fixed order (empty for a valid row).
pub fn violations(rec: &Record, h: &Header) -> Vec<&'static str> {
    if rec.error == Some("unterminated_quote") {
        return vec!["unterminated_quote"];
    }
    if rec.fields.len() != h.width {
        return vec!["field_count"];
    }
    let mut out = Vec::new();
    out.extend(rec.error);
    if rec.fields.iter().any(|f| std::str::from_utf8(f).is_err()) {
        out.push("invalid_utf8");
    }
    let f = |i: usize| rec.fields[h.pos[i]].as_slice();
    if id(f(0)).is_none() {
        out.push("invalid_client_id");
    }
    if blank(f(1)) {
        out.push("empty_client_name");
    }
    if id(f(2)).is_none() {
        out.push("invalid_order_id");
    }
    if id(f(3)).is_none() {
        out.push("invalid_product_id");
    }
    if blank(f(4)) {
        out.push("empty_product_description");
    }
    let price = decimal(f(5));
    let ccf = id(f(6));
    let volume = decimal(f(7)).filter(|&v| v > 0);
    if price.is_none() {
        out.push("invalid_product_price");
    }
    if ccf.is_none() {
        out.push("invalid_product_ccf");
    }
    if volume.is_none() {
        out.push("invalid_product_volume");
    }
    if !one_of(f(8), &["retail", "online", "b2b"]) {
        out.push("unknown_channel");
    }
    if !one_of(f(9), &["created", "delivered", "broken"]) {
        out.push("unknown_status");
    }
    if let (Some(p), Some(c), Some(v)) = (price, ccf, volume)
        && (p * i128::from(c) > MAX_SCALED || v * i128::from(c) > MAX_SCALED)
    {
        out.push("total_overflow");
    }
    out
}

/// What the checker derived from a file.
#[derive(Debug, Default)]
pub struct Counts {
    pub rows: u64,
    pub kept: u64,
    pub exact_duplicates: u64,
    pub by_reason: BTreeMap<String, u64>,
}

/// Reads a whole file, asserting the generator's promises along the way:
/// bad rows fail exactly one rule, are single-line and unique; dims are
/// stable; orders have at most 6 lines.
pub fn check(data: &[u8]) -> Counts {
    let mut records = split(data).into_iter();
    let h = header(&records.next().expect("header"));
    let mut counts = Counts::default();
    let mut seen_raw = HashSet::new();
    let mut bad_raw = HashSet::new();
    let mut keys = HashSet::new();
    let mut clients: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut products: HashMap<Vec<u8>, [Vec<u8>; 3]> = HashMap::new();
    let mut lines_per_order: HashMap<Vec<u8>, u32> = HashMap::new();
    for rec in records {
        counts.rows += 1;
        let broken = violations(&rec, &h);
        if let [reason] = broken.as_slice() {
            assert!(!rec.raw.contains(&b'\n'), "multi-line bad row {rec:?}");
            assert!(bad_raw.insert(rec.raw.clone()), "repeated bad row {rec:?}");
            *counts.by_reason.entry(reason.to_string()).or_default() += 1;
            continue;
        }
        assert!(broken.is_empty(), "row breaks {broken:?}: {rec:?}");
        let f = |i: usize| rec.fields[h.pos[i]].clone();
        if seen_raw.contains(&rec.raw) {
            counts.exact_duplicates += 1;
        } else if !keys.insert((f(2), f(3))) {
            *counts.by_reason.entry("key_conflict".into()).or_default() += 1;
        } else {
            counts.kept += 1;
            seen_raw.insert(rec.raw.clone());
            let name = clients.entry(f(0)).or_insert_with(|| f(1));
            assert_eq!(*name, f(1), "client name changed");
            let product = products.entry(f(3)).or_insert_with(|| [f(4), f(5), f(7)]);
            assert_eq!(*product, [f(4), f(5), f(7)], "product changed");
            let lines = lines_per_order.entry(f(2)).or_default();
            *lines += 1;
            assert!(*lines <= 6, "order with more than 6 lines");
        }
    }
    counts
}

#[test]
fn splitter_handles_quotes() {
    let recs = split(b"a,\"b,\"\"c\"\"\nd\"\r\nx\"y,z\n\"open,1");
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].fields, vec![b"a".to_vec(), b"b,\"c\"\nd".to_vec()]);
    assert_eq!(recs[1].error, Some("bad_quoting"));
    assert_eq!(recs[2].error, Some("unterminated_quote"));
    assert_eq!(decimal(b"12.5"), Some(125_000));
    assert_eq!(decimal(b"99999999999999.9999"), Some(MAX_SCALED));
    assert_eq!(decimal(b"123456789012345678.5"), None);
    assert_eq!(decimal(b"1e3"), None);
}
