//! Arrow record batches → typed [`ResultSet`] rows (the embedded backend's results).

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Int8Array, Int16Array, Int32Array,
    Int64Array, MapArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::error::ApiError;
use crate::value::{Column, ColumnType, ResultSet, Value, format_decimal, format_timestamp_millis};

/// The API type of an Arrow column.
pub fn column(name: &str, ty: &DataType) -> Result<Column, ApiError> {
    use DataType::*;
    Ok(match ty {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => {
            Column::new(name, ColumnType::Integer)
        }
        Decimal128(_, scale) => Column::decimal(name, u8::try_from(*scale).unwrap_or(0)),
        Utf8 | LargeUtf8 | Utf8View | Date32 | Null => Column::new(name, ColumnType::Text),
        Dictionary(_, v) if matches!(**v, Utf8 | LargeUtf8 | Utf8View) => {
            Column::new(name, ColumnType::Text)
        }
        Boolean => Column::new(name, ColumnType::Boolean),
        Timestamp(..) => Column::new(name, ColumnType::Timestamp),
        Map(..) => Column::new(name, ColumnType::Map),
        List(_) | LargeList(_) => Column::new(name, ColumnType::Array),
        other => {
            return Err(ApiError::Internal(format!(
                "column {name} has unsupported type {other}"
            )));
        }
    })
}

/// Converts query results to typed rows: decimals keep their scale, timestamps become RFC 3339
/// UTC with milliseconds. A column type the API has no form for is [`ApiError::Internal`].
pub fn to_result_set(
    schema: &arrow::datatypes::Schema,
    batches: &[RecordBatch],
) -> Result<ResultSet, ApiError> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| column(f.name(), f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for batch in batches {
        let arrays = batch
            .columns()
            .iter()
            .map(normalise)
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..batch.num_rows() {
            rows.push(
                arrays
                    .iter()
                    .map(|a| cell(a, i))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
    }
    Ok(ResultSet { columns, rows })
}

/// Dictionaries and string views become plain strings, so [`cell`] has fewer cases.
fn normalise(array: &ArrayRef) -> Result<ArrayRef, ApiError> {
    let wanted = match array.data_type() {
        DataType::Dictionary(..) | DataType::Utf8View | DataType::LargeUtf8 | DataType::Date32 => {
            DataType::Utf8
        }
        _ => return Ok(array.clone()),
    };
    cast(array, &wanted).map_err(|e| ApiError::Internal(format!("cast: {e}")))
}

fn int(v: i64) -> Result<Value, ApiError> {
    Ok(Value::Int(v))
}

/// One value of a (normalised) array.
fn cell(array: &ArrayRef, i: usize) -> Result<Value, ApiError> {
    if array.is_null(i) {
        return Ok(Value::Null);
    }
    let any = array.as_any();
    macro_rules! as_int {
        ($t:ty) => {
            if let Some(a) = any.downcast_ref::<$t>() {
                return int(a.value(i) as i64);
            }
        };
    }
    as_int!(Int64Array);
    as_int!(Int32Array);
    as_int!(Int16Array);
    as_int!(Int8Array);
    as_int!(UInt32Array);
    as_int!(UInt16Array);
    as_int!(UInt8Array);
    if let Some(a) = any.downcast_ref::<UInt64Array>() {
        return i64::try_from(a.value(i))
            .map(Value::Int)
            .map_err(|_| ApiError::Internal("unsigned value above 2^63".into()));
    }
    if let Some(a) = any.downcast_ref::<Decimal128Array>() {
        return Ok(Value::Decimal(format_decimal(
            a.value(i),
            u8::try_from(a.scale()).unwrap_or(0),
        )));
    }
    if let Some(a) = any.downcast_ref::<BooleanArray>() {
        return Ok(Value::Bool(a.value(i)));
    }
    if let Some(a) = any.downcast_ref::<MapArray>() {
        let entries = a.value(i);
        let keys = normalise(entries.column(0))?;
        let values = normalise(entries.column(1))?;
        let mut out = Vec::with_capacity(entries.len());
        for j in 0..entries.len() {
            let Value::Text(k) = cell(&keys, j)? else {
                return Err(ApiError::Internal("map keys must be strings".into()));
            };
            out.push((k, cell(&values, j)?));
        }
        // Athena's map order is arbitrary: both backends sort by key.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        return Ok(Value::Map(out));
    }
    match array.data_type() {
        DataType::Utf8 => Ok(Value::Text(array.as_string::<i32>().value(i).to_string())),
        DataType::Null => Ok(Value::Null),
        DataType::Timestamp(unit, _) => {
            let raw = cast(&array.slice(i, 1), &DataType::Int64)
                .map_err(|e| ApiError::Internal(format!("timestamp: {e}")))?;
            let v = raw.as_primitive::<arrow::datatypes::Int64Type>().value(0);
            let ms = match unit {
                TimeUnit::Second => v.saturating_mul(1000),
                TimeUnit::Millisecond => v,
                TimeUnit::Microsecond => v.div_euclid(1000),
                TimeUnit::Nanosecond => v.div_euclid(1_000_000),
            };
            format_timestamp_millis(ms)
                .map(Value::Timestamp)
                .ok_or_else(|| ApiError::Internal(format!("timestamp {v} out of range")))
        }
        DataType::List(_) => {
            let items = normalise(&array.as_list::<i32>().value(i))?;
            (0..items.len())
                .map(|j| cell(&items, j))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        DataType::LargeList(_) => {
            let items = normalise(&array.as_list::<i64>().value(i))?;
            (0..items.len())
                .map(|j| cell(&items, j))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        other => Err(ApiError::Internal(format!("unsupported type {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{DictionaryArray, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{Field, Int32Type, Schema};

    use super::*;

    #[test]
    fn engine_types_become_api_values() {
        let dict: DictionaryArray<Int32Type> = vec!["Retail", "Online"].into_iter().collect();
        let dec = Decimal128Array::from(vec![Some(1_234_500), None])
            .with_precision_and_scale(28, 4)
            .unwrap();
        let ts =
            TimestampMillisecondArray::from(vec![1_795_341_600_000, 0]).with_timezone("+00:00");
        let ids = Int64Array::from(vec![i64::MAX, 1]);
        let names = StringArray::from(vec![Some("Moe's"), None]);
        let schema = Schema::new(vec![
            Field::new("channel", dict.data_type().clone(), false),
            Field::new("sales", dec.data_type().clone(), true),
            Field::new("at", ts.data_type().clone(), false),
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(dict),
                Arc::new(dec),
                Arc::new(ts),
                Arc::new(ids),
                Arc::new(names),
            ],
        )
        .unwrap();
        let rs = to_result_set(&schema, &[batch]).unwrap();
        assert_eq!(rs.columns[1], Column::decimal("sales", 4));
        assert_eq!(rs.columns[2].ty, ColumnType::Timestamp);
        assert_eq!(
            rs.rows[0],
            vec![
                Value::Text("Retail".into()),
                Value::Decimal("123.4500".into()),
                Value::Timestamp("2026-11-22T10:00:00.000Z".into()),
                Value::Int(i64::MAX),
                Value::Text("Moe's".into()),
            ]
        );
        assert_eq!(rs.rows[1][1], Value::Null);
        assert_eq!(rs.rows[1][4], Value::Null);
    }

    #[test]
    fn map_entries_come_out_sorted_by_key_whatever_their_stored_order() {
        use arrow::array::{MapBuilder, StringBuilder};
        let mut b = MapBuilder::new(None, StringBuilder::new(), Int64Array::builder(4));
        for (k, v) in [
            ("unknown_status", 2),
            ("bad_quoting", 5),
            ("key_conflict", 1),
        ] {
            b.keys().append_value(k);
            b.values().append_value(v);
        }
        b.append(true).unwrap();
        b.append(true).unwrap(); // an empty map
        let map = b.finish();
        let schema = Schema::new(vec![Field::new(
            "quarantined_by_reason",
            map.data_type().clone(),
            false,
        )]);
        let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(map)]).unwrap();
        let rs = to_result_set(&schema, &[batch]).unwrap();
        assert_eq!(rs.columns[0].ty, ColumnType::Map);
        assert_eq!(
            rs.rows[0][0],
            Value::Map(vec![
                ("bad_quoting".into(), Value::Int(5)),
                ("key_conflict".into(), Value::Int(1)),
                ("unknown_status".into(), Value::Int(2)),
            ])
        );
        assert_eq!(rs.rows[1][0], Value::Map(vec![]));
        assert_eq!(
            String::from_utf8(rs.to_csv()).unwrap(),
            "quarantined_by_reason\n\"{\"\"bad_quoting\"\":5,\"\"key_conflict\"\":1,\"\"unknown_status\"\":2}\"\n{}\n"
        );
    }
}
