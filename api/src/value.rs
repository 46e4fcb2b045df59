//! Typed result values, the same whichever backend produced them.
//!
//! On the wire: integers are JSON numbers; decimals (money, volumes) are JSON **strings** with
//! exactly the column's scale (`"1234.5000"`), because a JSON number would be read as a binary
//! float by most clients (JavaScript loses cents beyond 2^53); timestamps are RFC 3339 UTC
//! strings with milliseconds; maps are objects; arrays are arrays.

use serde::Serialize;
use serde_json::{Map, Value as Json};

/// A column's type as the API reports it (`columns[].type` in a JSON page); each backend maps
/// its own types onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// A 64-bit integer: ids, counts, units.
    Integer,
    /// An exact decimal (money, volumes), with a [`Column::scale`].
    Decimal,
    /// Text; dates (`pa_date`) are text too, `YYYY-MM-DD`.
    Text,
    /// `true` or `false`.
    Boolean,
    /// An instant, RFC 3339 UTC with milliseconds.
    Timestamp,
    /// Name → value pairs (a JSON object), e.g. quarantined rows by reason.
    Map,
    /// A list of values.
    Array,
}

/// One column of a result: its name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// The column's name, as the SQL selects it.
    pub name: String,
    /// Its type (`type` in JSON).
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Fraction digits of a decimal column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<u8>,
}

impl Column {
    /// A column of type `ty` without a scale (use [`Column::decimal`] for decimals).
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        Column {
            name: name.into(),
            ty,
            scale: None,
        }
    }

    /// A decimal column with `scale` fraction digits.
    pub fn decimal(name: impl Into<String>, scale: u8) -> Self {
        Column {
            name: name.into(),
            ty: ColumnType::Decimal,
            scale: Some(scale),
        }
    }
}

/// One typed cell of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL, whatever the column's type.
    Null,
    /// An integer.
    Int(i64),
    /// Exact decimal text with the column's scale, e.g. `-12.5000`.
    Decimal(String),
    /// Text, as stored.
    Text(String),
    /// A boolean.
    Bool(bool),
    /// RFC 3339 UTC with milliseconds, e.g. `2026-11-22T10:00:00.000Z`.
    Timestamp(String),
    /// Entries in the order the backend returned them.
    Map(Vec<(String, Value)>),
    /// Items in order.
    Array(Vec<Value>),
}

impl Value {
    /// The value on the wire: integers as numbers, decimals and timestamps as strings, maps as
    /// objects, NULL as `null`.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Int(v) => Json::from(*v),
            Value::Decimal(s) | Value::Text(s) | Value::Timestamp(s) => Json::from(s.as_str()),
            Value::Bool(b) => Json::from(*b),
            Value::Map(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect::<Map<_, _>>(),
            ),
            Value::Array(items) => Json::Array(items.iter().map(Value::to_json).collect()),
        }
    }

    /// One CSV field: NULL is empty, nested values are compact JSON.
    pub fn to_csv(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Int(v) => v.to_string(),
            Value::Decimal(s) | Value::Text(s) | Value::Timestamp(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Map(_) | Value::Array(_) => self.to_json().to_string(),
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }
}

/// What a query returned: typed columns and rows in the query's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    /// The columns, in the query's order; present even when there are no rows.
    pub columns: Vec<Column>,
    /// The rows, each with one value per column, in column order.
    pub rows: Vec<Vec<Value>>,
}

impl ResultSet {
    /// Rows as JSON objects keyed by column name.
    pub fn json_rows(&self) -> Vec<Json> {
        self.rows
            .iter()
            .map(|row| {
                Json::Object(
                    self.columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| (c.name.clone(), v.to_json()))
                        .collect(),
                )
            })
            .collect()
    }

    /// RFC 4180 CSV with a header line.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(self.columns.iter().map(|c| c.name.as_str()))
            .expect("writing to memory");
        for row in &self.rows {
            w.write_record(row.iter().map(Value::to_csv))
                .expect("writing to memory");
        }
        w.into_inner().expect("writing to memory")
    }
}

/// Renders an unscaled decimal (`1234500`, scale 4) as `123.4500`.
pub fn format_decimal(unscaled: i128, scale: u8) -> String {
    if scale == 0 {
        return unscaled.to_string();
    }
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let sign = if unscaled < 0 { "-" } else { "" };
    format!("{sign}{int}.{frac}")
}

/// Parses decimal text (`-12.5`, `3`, `0.1230`) into an unscaled integer at `scale`, exactly;
/// `None` when it has more fraction digits than `scale` (other than trailing zeros) or is not
/// a decimal.
pub fn parse_decimal(text: &str, scale: u8) -> Option<i128> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > scale as usize {
        return None;
    }
    let mut v: i128 = int.parse().ok()?;
    for _ in 0..scale {
        v = v.checked_mul(10)?;
    }
    let frac_val: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i128>().ok()? * 10i128.pow((scale as usize - frac.len()) as u32)
    };
    let v = v.checked_add(frac_val)?;
    Some(if neg { -v } else { v })
}

/// Milliseconds since the epoch → `2026-11-22T10:00:00.000Z`.
pub fn format_timestamp_millis(ms: i64) -> Option<String> {
    let t = chrono::DateTime::from_timestamp_millis(ms)?;
    Some(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_render_with_their_scale_and_sign() {
        assert_eq!(format_decimal(1_234_500, 4), "123.4500");
        assert_eq!(format_decimal(5, 4), "0.0005");
        assert_eq!(format_decimal(-5_000, 4), "-0.5000");
        assert_eq!(format_decimal(0, 4), "0.0000");
        assert_eq!(format_decimal(42, 0), "42");
        let big = 99_999_999_999_999_999_999_999_999_999_999_999_999i128;
        assert_eq!(
            format_decimal(big, 4),
            "9999999999999999999999999999999999.9999"
        );
    }

    #[test]
    fn decimals_parse_exactly_or_not_at_all() {
        assert_eq!(parse_decimal("123.45", 4), Some(1_234_500));
        assert_eq!(parse_decimal("123.450000", 4), Some(1_234_500));
        assert_eq!(parse_decimal("-0.5", 4), Some(-5_000));
        assert_eq!(parse_decimal("7", 4), Some(70_000));
        assert_eq!(parse_decimal("1.23456", 4), None);
        assert_eq!(parse_decimal("1e3", 4), None);
        assert_eq!(parse_decimal("", 4), None);
        assert_eq!(parse_decimal(".5", 4), None);
        for v in [0i128, 1, -1, 10_000, 123_456_789_012_345_678] {
            assert_eq!(parse_decimal(&format_decimal(v, 4), 4), Some(v));
        }
    }

    #[test]
    fn json_keeps_integers_as_numbers_and_money_as_exact_strings() {
        let rs = ResultSet {
            columns: vec![
                Column::new("id", ColumnType::Integer),
                Column::decimal("sales", 4),
                Column::new("by_reason", ColumnType::Map),
            ],
            rows: vec![vec![
                Value::Int(9_007_199_254_740_993),
                Value::Decimal("0.1000".into()),
                Value::Map(vec![("field_count".into(), Value::Int(2))]),
            ]],
        };
        let rows = rs.json_rows();
        assert_eq!(rows[0]["id"].as_i64(), Some(9_007_199_254_740_993));
        assert_eq!(rows[0]["sales"], "0.1000");
        assert_eq!(rows[0]["by_reason"]["field_count"], 2);
        let csv = String::from_utf8(rs.to_csv()).unwrap();
        assert_eq!(
            csv,
            "id,sales,by_reason\n9007199254740993,0.1000,\"{\"\"field_count\"\":2}\"\n"
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_millis() {
        assert_eq!(
            format_timestamp_millis(1_795_341_600_123).unwrap(),
            "2026-11-22T10:00:00.123Z"
        );
    }
}
