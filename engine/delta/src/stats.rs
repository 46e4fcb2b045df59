//! Per-file statistics of an `add` action, from the Parquet footer the engine wrote.
//!
//! Readers skip files with them (Athena, Spark, delta-rs prune on `minValues`/`maxValues`), so
//! a bound must never be tighter than the data: a column whose statistics are missing in any
//! row group, or cannot be written exactly, is left out (unknown), never guessed.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::DateTime;
use parquet::basic::{LogicalType, TimeUnit};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;

/// Strings longer than this get no bounds (Delta's default truncation length; a truncated
/// maximum would need rounding up, which is not worth it for skipping on names).
const MAX_STRING_BOUND: usize = 32;

/// `{"numRecords":…,"minValues":{…},"maxValues":{…},"nullCount":{…}}` for the file.
pub fn stats_json(metadata: &ParquetMetaData) -> String {
    let schema = metadata.file_metadata().schema_descr();
    let rows: i64 = metadata.row_groups().iter().map(|g| g.num_rows()).sum();
    let mut min = BTreeMap::new();
    let mut max = BTreeMap::new();
    let mut nulls = BTreeMap::new();
    for (i, column) in schema.columns().iter().enumerate() {
        let name = column.path().string();
        let mut bounds: Option<(Bound, Bound)> = None;
        let mut known = true;
        let mut null_count = Some(0u64);
        for group in metadata.row_groups() {
            let stats = group.column(i).statistics();
            null_count = match (null_count, stats.and_then(Statistics::null_count_opt)) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
            let group_rows = group.num_rows() as u64;
            let all_null = stats.and_then(Statistics::null_count_opt) == Some(group_rows);
            if all_null {
                continue;
            }
            match stats.and_then(|s| Bound::pair(s, column.logical_type_ref())) {
                Some((lo, hi)) => {
                    bounds = Some(match bounds {
                        None => (lo, hi),
                        Some((a, b)) => (a.min(lo), b.max(hi)),
                    })
                }
                None => known = false,
            }
        }
        if let Some(n) = null_count {
            nulls.insert(name.clone(), n.to_string());
        }
        let logical = column.logical_type_ref();
        if let (true, Some((lo, hi))) = (known, bounds)
            && let (Some(lo), Some(hi)) = (lo.json(logical), hi.json(logical))
        {
            min.insert(name.clone(), lo);
            max.insert(name, hi);
        }
    }
    let mut out = format!("{{\"numRecords\":{rows}");
    for (key, map) in [
        ("minValues", &min),
        ("maxValues", &max),
        ("nullCount", &nulls),
    ] {
        write!(out, ",\"{key}\":{{").expect("writing to a String");
        for (i, (name, value)) in map.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(out, "{sep}{}:{value}", json_string(name)).expect("writing to a String");
        }
        out.push('}');
    }
    out.push('}');
    out
}

/// One bound of a column, comparable in the column's own order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Bound {
    Int(i64),
    Bytes(Vec<u8>),
}

impl Bound {
    fn pair(stats: &Statistics, logical: Option<&LogicalType>) -> Option<(Bound, Bound)> {
        let ints = |lo: i64, hi: i64| Some((Bound::Int(lo), Bound::Int(hi)));
        match stats {
            Statistics::Int32(s) => ints(i64::from(*s.min_opt()?), i64::from(*s.max_opt()?)),
            Statistics::Int64(s) => ints(*s.min_opt()?, *s.max_opt()?),
            Statistics::ByteArray(s) if matches!(logical, Some(LogicalType::String)) => Some((
                Bound::Bytes(s.min_opt()?.data().to_vec()),
                Bound::Bytes(s.max_opt()?.data().to_vec()),
            )),
            _ => None,
        }
    }

    /// The bound as Delta writes it, or `None` when it cannot be written exactly.
    fn json(&self, logical: Option<&LogicalType>) -> Option<String> {
        match (self, logical) {
            (Bound::Int(v), Some(LogicalType::Decimal(d))) => Some(decimal(*v, d.scale)),
            (Bound::Int(v), Some(LogicalType::Timestamp(t)))
                if matches!(t.unit, TimeUnit::MILLIS) =>
            {
                DateTime::from_timestamp_millis(*v)
                    .map(|t| json_string(&t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
            }
            (Bound::Int(v), None | Some(LogicalType::Integer(_))) => Some(v.to_string()),
            (Bound::Bytes(b), Some(LogicalType::String)) if b.len() <= MAX_STRING_BOUND => {
                std::str::from_utf8(b).ok().map(json_string)
            }
            _ => None,
        }
    }
}

/// An unscaled decimal as an exact JSON number: `123456`, scale 4 → `12.3456`.
fn decimal(unscaled: i64, scale: i32) -> String {
    if scale <= 0 {
        return unscaled.to_string();
    }
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let sign = if unscaled < 0 { "-" } else { "" };
    format!("{sign}{int}.{frac}")
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_exactly() {
        assert_eq!(decimal(123_456, 4), "12.3456");
        assert_eq!(decimal(-5, 4), "-0.0005");
        assert_eq!(decimal(0, 4), "0.0000");
        assert_eq!(decimal(i64::MAX, 4), "922337203685477.5807");
        assert_eq!(decimal(7, 0), "7");
    }
}
