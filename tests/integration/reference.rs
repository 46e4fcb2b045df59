//! An independent, deliberately naive implementation of the data contract on top of the `csv`
//! crate. It shares no code with the engine: splitting, quoting checks, number parsing and
//! dedup are all written again the obvious way, so the differential tests compare two
//! implementations of the input rules (the README's "The data contract"), not one with itself.

use std::collections::HashMap;

/// A kept row, with values rendered the way the engine's Parquet renders them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RefRow {
    pub line: u64,
    pub values: Vec<String>,
}

#[derive(Debug, Default)]
pub struct RefOutput {
    pub rows_read: u64,
    pub kept: Vec<RefRow>,
    pub exact_duplicates: u64,
    /// (line, reason code, kept line for conflicts)
    pub quarantine: Vec<(u64, String, Option<u64>)>,
    /// client_id → name of its last kept row
    pub clients: HashMap<i64, String>,
}

// Column names are data, not logic: the reference shares only these with the engine.
use duff_engine::rules::REQUIRED_COLUMNS as REQUIRED;

/// Ok, or the reason code of the quoting error; a plain character loop.
fn check_quoting(raw: &[u8]) -> Result<(), &'static str> {
    let mut i = 0;
    loop {
        // at the start of a field
        if i < raw.len() && raw[i] == b'"' {
            i += 1;
            loop {
                if i >= raw.len() {
                    return Err("unterminated_quote");
                }
                if raw[i] == b'"' {
                    if i + 1 < raw.len() && raw[i + 1] == b'"' {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            if i == raw.len() {
                return Ok(());
            }
            if raw[i] != b',' {
                return Err("bad_quoting");
            }
            i += 1;
        } else {
            loop {
                if i >= raw.len() {
                    return Ok(());
                }
                match raw[i] {
                    b'"' => return Err("bad_quoting"),
                    b',' => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
        }
    }
}

fn blank_trim(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

fn positive_int(s: &str) -> Option<i64> {
    let s = blank_trim(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok().filter(|v| *v > 0)
}

/// Units of 10^-4, or None.
fn decimal(s: &str) -> Option<i128> {
    let s = blank_trim(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || (s.contains('.') && !digits(frac)) || frac.len() > 4 {
        return None;
    }
    if int.trim_start_matches('0').len() > 14 {
        return None;
    }
    let padded = format!("{frac:0<4}");
    Some(int.parse::<i128>().ok()? * 10_000 + padded.parse::<i128>().ok()?)
}

fn render(units: i128) -> String {
    format!("{}.{:04}", units / 10_000, units % 10_000)
}

/// Runs the contract over a whole file.
pub fn reference(data: &[u8], channels: &[&str]) -> RefOutput {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut records = Vec::new();
    let mut rec = csv::ByteRecord::new();
    // Line numbers counted here: the csv crate's own are off for CRLF files.
    let (mut line, mut counted_to) = (1u64, 0usize);
    loop {
        let mut start = reader.position().byte() as usize;
        if !reader.read_byte_record(&mut rec).expect("csv reads bytes") {
            break;
        }
        // With CRLF the csv crate's position can sit on the previous record's `\n`.
        while start < data.len() && matches!(data[start], b'\n' | b'\r') {
            start += 1;
        }
        line += data[counted_to..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        counted_to = start;
        records.push((start, line, rec.clone()));
    }
    let header: Vec<String> = records[0]
        .2
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim().to_ascii_lowercase())
        .collect();
    let index: Vec<usize> = REQUIRED
        .iter()
        .map(|r| header.iter().position(|h| h == r).expect("required column"))
        .collect();
    let mut out = RefOutput::default();
    let mut seen: HashMap<(i64, i64), (Vec<String>, u64)> = HashMap::new();
    for k in 1..records.len() {
        let (start, line, ref fields) = records[k];
        let end = records.get(k + 1).map_or(data.len(), |r| r.0);
        let mut raw = &data[start..end];
        while let [rest @ .., b'\n' | b'\r'] = raw {
            raw = rest;
        }
        out.rows_read += 1;
        let mut reject = |reason: &str| out.quarantine.push((line, reason.to_string(), None));
        if let Err(reason) = check_quoting(raw) {
            reject(reason);
            continue;
        }
        if fields.len() != header.len() {
            reject("field_count");
            continue;
        }
        if std::str::from_utf8(raw).is_err() {
            reject("invalid_utf8");
            continue;
        }
        let f = |c: usize| String::from_utf8(fields[index[c]].to_vec()).unwrap();
        let Some(client_id) = positive_int(&f(0)) else {
            reject("invalid_client_id");
            continue;
        };
        let name = blank_trim(&f(1)).to_string();
        if name.is_empty() {
            reject("empty_client_name");
            continue;
        }
        let Some(order_id) = positive_int(&f(2)) else {
            reject("invalid_order_id");
            continue;
        };
        let Some(product_id) = positive_int(&f(3)) else {
            reject("invalid_product_id");
            continue;
        };
        let desc = blank_trim(&f(4)).to_string();
        if desc.is_empty() {
            reject("empty_product_description");
            continue;
        }
        let Some(price) = decimal(&f(5)) else {
            reject("invalid_product_price");
            continue;
        };
        let Some(ccf) = positive_int(&f(6)) else {
            reject("invalid_product_ccf");
            continue;
        };
        let Some(volume) = decimal(&f(7)).filter(|v| *v > 0) else {
            reject("invalid_product_volume");
            continue;
        };
        let chan = blank_trim(&f(8)).to_string();
        let Some(channel) = channels.iter().find(|c| c.eq_ignore_ascii_case(&chan)) else {
            reject("unknown_channel");
            continue;
        };
        let status = blank_trim(&f(9)).to_ascii_lowercase();
        if !["created", "delivered", "broken"].contains(&status.as_str()) {
            reject("unknown_status");
            continue;
        }
        let max = 999_999_999_999_999_999i128;
        let (total_price, total_volume) = (price * ccf as i128, volume * ccf as i128);
        if total_price > max || total_volume > max {
            reject("total_overflow");
            continue;
        }
        let values = vec![
            client_id.to_string(),
            name.clone(),
            order_id.to_string(),
            product_id.to_string(),
            desc,
            render(price),
            ccf.to_string(),
            render(volume),
            channel.to_string(),
            status,
            render(total_price),
            render(total_volume),
        ];
        match seen.get(&(order_id, product_id)) {
            Some((first, _)) if *first == values => out.exact_duplicates += 1,
            Some((_, kept_line)) => {
                out.quarantine
                    .push((line, "key_conflict".into(), Some(*kept_line)))
            }
            None => {
                seen.insert((order_id, product_id), (values.clone(), line));
                out.clients.insert(client_id, name);
                out.kept.push(RefRow { line, values });
            }
        }
    }
    out
}

#[test]
fn the_reference_itself_knows_the_rules() {
    assert_eq!(check_quoting(b"a,\"b,c\",d"), Ok(()));
    assert_eq!(check_quoting(b"a,15\" keg"), Err("bad_quoting"));
    assert_eq!(check_quoting(b"\"abc"), Err("unterminated_quote"));
    assert_eq!(decimal("12.5"), Some(125_000));
    assert_eq!(decimal("12.34567"), None);
    assert_eq!(decimal(".5"), None);
    assert_eq!(positive_int("0"), None);
}
