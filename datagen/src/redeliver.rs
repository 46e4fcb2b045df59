//! Re-deliveries: an earlier file's orders sent again with new statuses, as a source system
//! does when orders move on (created → delivered → broken). Benchmarks and tests use them to
//! measure and check the real cost of keeping the current state.

use std::io::{Read, Write};

use crate::error::Error;

/// What [`redeliver`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redelivered {
    /// Distinct orders re-delivered.
    pub orders: u64,
    /// Lines written (every valid line of those orders).
    pub lines: u64,
}

/// The statuses an order moves through, in order; a re-delivered line gets the next one.
const LIFECYCLE: [&str; 3] = ["created", "delivered", "broken"];

/// Writes a re-delivery of `earlier` (a CSV file with a header, any column order, Latin-1 or
/// UTF-8): the orders whose id hashes, with `seed`, below `fraction` — every valid line of
/// each, so whole orders move — with each line's status replaced by the next in its
/// lifecycle. Lines without a valid order id, product id and status, or with a wrong field
/// count, are not re-delivered. The header is written as it was.
pub fn redeliver(
    earlier: impl Read,
    out: impl Write,
    fraction: f64,
    seed: u64,
) -> Result<Redelivered, Error> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(Error::InvalidConfig(format!(
            "a re-delivered fraction is between 0 and 1, not {fraction}"
        )));
    }
    let invalid = |e: csv::Error| Error::InvalidConfig(format!("reading the earlier file: {e}"));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(earlier);
    let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(out);
    let mut header = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut header).map_err(invalid)? {
        return Err(Error::InvalidConfig("the earlier file is empty".into()));
    }
    let column = |name: &str| {
        header
            .iter()
            .position(|h| normalised(h) == name)
            .ok_or_else(|| Error::InvalidConfig(format!("the earlier file has no {name} column")))
    };
    let (order_at, product_at, status_at) = (
        column("order_id")?,
        column("product_id")?,
        column("status")?,
    );
    let id = |field: &[u8]| {
        std::str::from_utf8(field)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    writer.write_byte_record(&header).map_err(write_error)?;
    let threshold = (fraction * u64::MAX as f64) as u64;
    let mut orders = std::collections::HashSet::new();
    let mut lines = 0;
    let mut record = csv::ByteRecord::new();
    let mut changed = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record).map_err(invalid)? {
        if record.len() != header.len() {
            continue;
        }
        let (Some(order), Some(_)) = (id(&record[order_at]), id(&record[product_at])) else {
            continue;
        };
        let Some(now) = LIFECYCLE
            .iter()
            .position(|s| normalised(&record[status_at]) == *s)
        else {
            continue;
        };
        if mix(order ^ mix(seed)) > threshold {
            continue;
        }
        changed.clear();
        for (i, field) in record.iter().enumerate() {
            if i == status_at {
                changed.push_field(LIFECYCLE[(now + 1) % LIFECYCLE.len()].as_bytes());
            } else {
                changed.push_field(field);
            }
        }
        writer.write_byte_record(&changed).map_err(write_error)?;
        orders.insert(order);
        lines += 1;
    }
    writer.flush()?;
    Ok(Redelivered {
        orders: orders.len() as u64,
        lines,
    })
}

/// A header or status as the engine compares it: trimmed, lower case, without a BOM.
fn normalised(field: &[u8]) -> String {
    let field = field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field);
    String::from_utf8_lossy(field).trim().to_ascii_lowercase()
}

/// splitmix64's finaliser: a well-spread hash of an id.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn write_error(e: csv::Error) -> Error {
    Error::Io(std::io::Error::other(e))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::{Dirt, GenConfig, Size};

    /// `(order_id, product_id) → status` of every valid line of a file.
    fn lines(csv_bytes: &[u8]) -> (Vec<(u64, u64, String)>, HashSet<u64>) {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(csv_bytes);
        let header: Vec<String> = reader
            .byte_headers()
            .unwrap()
            .iter()
            .map(normalised)
            .collect();
        let at = |n: &str| header.iter().position(|h| h == n).unwrap();
        let (o, p, s) = (at("order_id"), at("product_id"), at("status"));
        let mut out = Vec::new();
        let mut orders = HashSet::new();
        for r in reader.byte_records() {
            let r = r.unwrap();
            if r.len() != header.len() {
                continue;
            }
            let parse = |i: usize| std::str::from_utf8(&r[i]).ok()?.trim().parse::<u64>().ok();
            let status = normalised(&r[s]);
            if let (Some(order), Some(product)) = (parse(o), parse(p))
                && LIFECYCLE.contains(&status.as_str())
            {
                orders.insert(order);
                out.push((order, product, status));
            }
        }
        (out, orders)
    }

    #[test]
    fn whole_orders_come_again_with_the_next_status() {
        let cfg = GenConfig {
            seed: 7,
            size: Size::Rows(20_000),
            dirt: Dirt::typical(),
            shuffle_columns: true,
            ..GenConfig::default()
        };
        let mut earlier = Vec::new();
        crate::generate(&cfg, &mut earlier).unwrap();
        let mut again = Vec::new();
        let done = redeliver(earlier.as_slice(), &mut again, 0.2, 1).unwrap();
        let (before, all_orders) = lines(&earlier);
        let (after, orders) = lines(&again);
        assert_eq!(done.lines as usize, after.len());
        assert_eq!(done.orders as usize, orders.len());
        // About a fifth of the orders, all of their lines, each with the next status.
        let share = orders.len() as f64 / all_orders.len() as f64;
        assert!((0.17..0.23).contains(&share), "{share}");
        let expected: Vec<(u64, u64, String)> = before
            .iter()
            .filter(|(o, _, _)| orders.contains(o))
            .map(|(o, p, s)| {
                let now = LIFECYCLE.iter().position(|x| x == s).unwrap();
                (*o, *p, LIFECYCLE[(now + 1) % 3].to_string())
            })
            .collect();
        assert_eq!(after, expected);
        // The header is the earlier file's (shuffled columns and all).
        assert_eq!(
            earlier.split(|b| *b == b'\n').next(),
            again.split(|b| *b == b'\n').next()
        );
        // Another seed picks other orders; the same seed the same ones.
        let pick = |seed| {
            let mut out = Vec::new();
            redeliver(earlier.as_slice(), &mut out, 0.2, seed).unwrap();
            lines(&out).1
        };
        assert_ne!(pick(2), orders);
        assert_eq!(pick(1), orders);
    }

    #[test]
    fn fractions_outside_zero_to_one_are_refused() {
        let file = &b"order_id,product_id,status\n1,2,created\n"[..];
        assert!(redeliver(file, Vec::new(), 1.5, 0).is_err());
        let mut all = Vec::new();
        redeliver(file, &mut all, 1.0, 0).unwrap();
        assert_eq!(all, b"order_id,product_id,status\n1,2,delivered\n");
    }
}
