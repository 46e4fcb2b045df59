//! Athena returns every value as text (`VarCharValue`, absent for NULL) plus a type name per
//! column. This turns them into the same typed values the embedded backend produces.

use crate::error::ApiError;
use crate::value::{Column, ColumnType, Value, format_decimal, parse_decimal};

/// The API column for an Athena `ColumnInfo` (type name, scale).
pub fn column(name: &str, athena_type: &str, scale: i32) -> Result<Column, ApiError> {
    let ty = athena_type.to_ascii_lowercase();
    Ok(match ty.as_str() {
        "tinyint" | "smallint" | "integer" | "int" | "bigint" => {
            Column::new(name, ColumnType::Integer)
        }
        "decimal" => Column::decimal(name, u8::try_from(scale).unwrap_or(0)),
        "varchar" | "char" | "string" | "date" | "unknown" => Column::new(name, ColumnType::Text),
        "boolean" => Column::new(name, ColumnType::Boolean),
        "timestamp" | "timestamp with time zone" => Column::new(name, ColumnType::Timestamp),
        "map" => Column::new(name, ColumnType::Map),
        "array" => Column::new(name, ColumnType::Array),
        other => {
            return Err(ApiError::Internal(format!(
                "column {name}: unsupported Athena type {other:?}"
            )));
        }
    })
}

/// One value of a column; `None` is SQL NULL.
pub fn value(column: &Column, text: Option<&str>) -> Result<Value, ApiError> {
    let Some(text) = text else {
        return Ok(Value::Null);
    };
    let bad = || {
        ApiError::Internal(format!(
            "column {}: Athena value {text:?} is not a {:?}",
            column.name, column.ty
        ))
    };
    Ok(match column.ty {
        ColumnType::Integer => Value::Int(text.parse().map_err(|_| bad())?),
        ColumnType::Decimal => {
            let scale = column.scale.unwrap_or(0);
            Value::Decimal(format_decimal(
                parse_decimal(text, scale).ok_or_else(bad)?,
                scale,
            ))
        }
        ColumnType::Text => Value::Text(text.to_string()),
        ColumnType::Boolean => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad()),
        },
        ColumnType::Timestamp => Value::Timestamp(timestamp(text).ok_or_else(bad)?),
        ColumnType::Map => Value::Map(map(text).ok_or_else(bad)?),
        ColumnType::Array => Value::Array(array(text).ok_or_else(bad)?),
    })
}

/// `2026-11-22 10:00:00.000` (optionally ` UTC`) → `2026-11-22T10:00:00.000Z`.
fn timestamp(text: &str) -> Option<String> {
    let text = text.strip_suffix(" UTC").unwrap_or(text);
    let t = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    Some(t.and_utc().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// `{a=1, b=2}` → entries sorted by key; integer values become integers. Keys here are codes
/// (reason codes), so `=` and `, ` never occur inside them.
fn map(text: &str) -> Option<Vec<(String, Value)>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    if !inner.is_empty() {
        for entry in inner.split(", ") {
            let (k, v) = entry.split_once('=')?;
            let v = match v.parse::<i64>() {
                Ok(n) => Value::Int(n),
                Err(_) if v == "null" => Value::Null,
                Err(_) => Value::Text(v.to_string()),
            };
            out.push((k.to_string(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Some(out)
}

/// `[a, b]` → text items (arrays in reports hold column names).
fn array(text: &str) -> Option<Vec<Value>> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    Some(
        inner
            .split(", ")
            .map(|s| Value::Text(s.to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(ty: &str, scale: i32, text: Option<&str>) -> Value {
        value(&column("c", ty, scale).unwrap(), text).unwrap()
    }

    #[test]
    fn athena_text_becomes_typed_values() {
        assert_eq!(
            conv("bigint", 0, Some("9223372036854775807")),
            Value::Int(i64::MAX)
        );
        assert_eq!(conv("integer", 0, Some("-3")), Value::Int(-3));
        assert_eq!(
            conv("decimal", 4, Some("123.45")),
            Value::Decimal("123.4500".into())
        );
        assert_eq!(
            conv("decimal", 4, Some("-0.0001")),
            Value::Decimal("-0.0001".into())
        );
        assert_eq!(
            conv("varchar", 0, Some("Moe's")),
            Value::Text("Moe's".into())
        );
        assert_eq!(conv("varchar", 0, None), Value::Null);
        assert_eq!(conv("boolean", 0, Some("true")), Value::Bool(true));
        assert_eq!(
            conv("timestamp", 3, Some("2026-11-22 10:00:00.000")),
            Value::Timestamp("2026-11-22T10:00:00.000Z".into())
        );
        assert_eq!(
            conv(
                "timestamp with time zone",
                3,
                Some("2026-11-22 10:00:00.5 UTC")
            ),
            Value::Timestamp("2026-11-22T10:00:00.500Z".into())
        );
        assert_eq!(
            conv("map", 0, Some("{key_conflict=3, bad_quoting=1}")),
            Value::Map(vec![
                ("bad_quoting".into(), Value::Int(1)),
                ("key_conflict".into(), Value::Int(3)),
            ])
        );
        assert_eq!(conv("map", 0, Some("{}")), Value::Map(vec![]));
        assert_eq!(
            conv("array", 0, Some("[note, region]")),
            Value::Array(vec![
                Value::Text("note".into()),
                Value::Text("region".into())
            ])
        );
        assert_eq!(conv("array", 0, Some("[]")), Value::Array(vec![]));
    }

    #[test]
    fn values_that_do_not_match_their_type_are_errors_not_guesses() {
        let col = column("c", "bigint", 0).unwrap();
        assert!(value(&col, Some("1.5")).is_err());
        let col = column("c", "decimal", 2).unwrap();
        assert!(value(&col, Some("1.234")).is_err());
        assert!(column("c", "double", 0).is_err());
        let col = column("c", "timestamp", 3).unwrap();
        assert!(value(&col, Some("yesterday")).is_err());
    }
}
