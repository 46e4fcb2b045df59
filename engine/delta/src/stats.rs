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
            // The lake's decimals are the engine's DECIMAL(18,4), written exactly as text.
            (Bound::Int(v), Some(LogicalType::Decimal(d)))
                if d.scale == duff_engine::number::SCALE as i32 =>
            {
                Some(duff_engine::number::format_decimal(*v))
            }
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

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::basic::{DecimalType, TimestampType};

    #[test]
    fn bounds_are_written_exactly_or_not_at_all() {
        let decimal = LogicalType::Decimal(DecimalType {
            scale: 4,
            precision: 18,
        });
        assert_eq!(Bound::Int(123_456).json(Some(&decimal)).unwrap(), "12.3456");
        assert_eq!(Bound::Int(-5).json(Some(&decimal)).unwrap(), "-0.0005");
        let other_scale = LogicalType::Decimal(DecimalType {
            scale: 2,
            precision: 18,
        });
        assert_eq!(Bound::Int(1).json(Some(&other_scale)), None);
        let millis = LogicalType::Timestamp(TimestampType {
            is_adjusted_to_u_t_c: true,
            unit: TimeUnit::MILLIS,
        });
        assert_eq!(
            Bound::Int(1_795_341_600_123).json(Some(&millis)).unwrap(),
            "\"2026-11-22T10:00:00.123Z\""
        );
        assert_eq!(Bound::Int(7).json(None).unwrap(), "7");
        let string = LogicalType::String;
        assert_eq!(
            Bound::Bytes(b"Duff \"Lager\"".to_vec())
                .json(Some(&string))
                .unwrap(),
            "\"Duff \\\"Lager\\\"\""
        );
        assert_eq!(
            Bound::Bytes(vec![b'x'; 33]).json(Some(&string)),
            None,
            "too long"
        );
        assert_eq!(
            Bound::Bytes(vec![0xff]).json(Some(&string)),
            None,
            "not UTF-8"
        );
    }
}
