//! The `runs` table: one row per run, the run's record ([`Manifest`]), committed last.
//!
//! Its columns are defined once, with Glue type strings ([`RUNS_COLUMNS`]): the Arrow schema the
//! row is written with, the API's embedded tables and the Athena table in `infra/` all derive
//! from them. The whole manifest is kept beside them as JSON (`manifest`), so a later attempt
//! of the run gets the record back exactly.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use bytes::Bytes;
use duff_engine::Manifest;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::Error;

/// Name of the runs table in SQL.
pub const RUNS_TABLE: &str = "runs";
/// Where the runs table lives under the lake root.
pub const RUNS_PREFIX: &str = "runs";
/// The column holding the whole manifest as JSON.
pub const MANIFEST_COLUMN: &str = "manifest";

/// The `runs` table, `(column, Glue type)`: the fields of [`duff_engine::Manifest`] that reports
/// read. Other manifest fields (outputs, timings, options…) are ignored by both readers. Not
/// partitioned.
pub const RUNS_COLUMNS: [(&str, &str); 16] = [
    ("run_id", "string"),
    ("status", "string"),
    ("error_code", "string"),
    ("error", "string"),
    (
        "source",
        "struct<uri:string,size_bytes:bigint,version:string,gzip:boolean>",
    ),
    ("pa_date", "string"),
    ("ingested_at", "string"),
    ("started_at", "string"),
    ("finished_at", "string"),
    ("engine_version", "string"),
    ("threads", "int"),
    (
        "counts",
        "struct<rows_read:bigint,rows_written:bigint,exact_duplicates:bigint,quarantined:bigint,\
quarantined_by_reason:map<string,bigint>,blank_lines:bigint,distinct_clients:bigint,\
distinct_products:bigint>",
    ),
    ("nothing_lost", "boolean"),
    ("extra_columns", "array<string>"),
    ("input_bytes", "bigint"),
    ("output_bytes", "bigint"),
];

/// The Arrow schema the embedded engine reads `_runs/*.json` with (every column nullable: a
/// succeeded run has no `error`).
pub fn runs_arrow_schema() -> SchemaRef {
    let fields: Vec<Field> = RUNS_COLUMNS
        .iter()
        .map(|(name, glue)| {
            let ty = glue_to_arrow(glue).unwrap_or_else(|e| panic!("RUNS_COLUMNS.{name}: {e}"));
            Field::new(*name, ty, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Parses a Hive/Glue type (`bigint`, `struct<a:int>`, `map<string,bigint>`, `array<string>`…).
pub fn glue_to_arrow(ty: &str) -> Result<DataType, String> {
    let mut p = Parser { s: ty, pos: 0 };
    let out = p.ty()?;
    if p.pos != p.s.len() {
        return Err(format!("trailing text in {ty:?} at {}", p.pos));
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn ident(&mut self) -> &str {
        let rest = &self.s[self.pos..];
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }

    fn expect(&mut self, ch: char) -> Result<(), String> {
        if self.s[self.pos..].starts_with(ch) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {ch:?} at {} in {:?}", self.pos, self.s))
        }
    }

    fn ty(&mut self) -> Result<DataType, String> {
        let name = self.ident().to_ascii_lowercase();
        Ok(match name.as_str() {
            "string" => DataType::Utf8,
            "bigint" => DataType::Int64,
            "int" => DataType::Int32,
            "boolean" => DataType::Boolean,
            "array" => {
                self.expect('<')?;
                let item = self.ty()?;
                self.expect('>')?;
                DataType::List(Arc::new(Field::new("item", item, true)))
            }
            "map" => {
                self.expect('<')?;
                let key = self.ty()?;
                self.expect(',')?;
                let value = self.ty()?;
                self.expect('>')?;
                let entries = Fields::from(vec![
                    Field::new("keys", key, false),
                    Field::new("values", value, true),
                ]);
                DataType::Map(
                    Arc::new(Field::new("entries", DataType::Struct(entries), false)),
                    false,
                )
            }
            "struct" => {
                self.expect('<')?;
                let mut fields = Vec::new();
                loop {
                    let field = self.ident().to_string();
                    self.expect(':')?;
                    fields.push(Field::new(field, self.ty()?, true));
                    if self.expect(',').is_err() {
                        break;
                    }
                }
                self.expect('>')?;
                DataType::Struct(Fields::from(fields))
            }
            other => return Err(format!("unsupported Glue type {other:?} in {:?}", self.s)),
        })
    }
}

/// The schema of a runs file: [`RUNS_COLUMNS`] and the manifest's JSON.
pub fn runs_file_schema() -> SchemaRef {
    let mut fields: Vec<Field> = runs_arrow_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(MANIFEST_COLUMN, DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

/// The Parquet file holding one run's row.
pub fn runs_file(manifest: &Manifest) -> Result<Bytes, Error> {
    let schema = runs_file_schema();
    let json = serde_json::to_string(manifest).expect("manifest serialises");
    let mut row = serde_json::to_value(manifest).expect("manifest serialises");
    row.as_object_mut()
        .expect("a manifest is an object")
        .insert(MANIFEST_COLUMN.into(), serde_json::Value::String(json));
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
        .build_decoder()
        .map_err(|e| Error::Invalid(format!("runs row decoder: {e}")))?;
    decoder
        .serialize(&[row])
        .map_err(|e| Error::Invalid(format!("runs row of {}: {e}", manifest.run_id)))?;
    let batch = decoder
        .flush()
        .map_err(|e| Error::Invalid(format!("runs row of {}: {e}", manifest.run_id)))?
        .ok_or_else(|| Error::Invalid("runs row: no batch".into()))?;
    let mut out = Vec::new();
    let parquet_error = |source| Error::Parquet {
        path: format!("{RUNS_PREFIX}/{}", manifest.run_id),
        source,
    };
    let mut writer = ArrowWriter::try_new(&mut out, schema, None).map_err(parquet_error)?;
    writer.write(&batch).map_err(parquet_error)?;
    writer.close().map_err(parquet_error)?;
    Ok(Bytes::from(out))
}

/// The manifests held by a runs file.
pub fn manifests_in(path: &str, file: Bytes) -> Result<Vec<Manifest>, Error> {
    let parquet_error = |source| Error::Parquet {
        path: path.to_string(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet_error)?
        .build()
        .map_err(parquet_error)?;
    let mut out = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| parquet_error(e.into()))?;
        let column = batch
            .column_by_name(MANIFEST_COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| Error::Invalid(format!("{path}: no {MANIFEST_COLUMN} column")))?;
        for i in 0..column.len() {
            out.push(
                serde_json::from_str(column.value(i))
                    .map_err(|e| Error::Invalid(format!("{path}: manifest {i}: {e}")))?,
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runs_column_parses_and_names_are_unique() {
        let schema = runs_arrow_schema();
        assert_eq!(schema.fields().len(), RUNS_COLUMNS.len());
        let mut names: Vec<_> = RUNS_COLUMNS.iter().map(|c| c.0).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), RUNS_COLUMNS.len());
        let counts = schema.field_with_name("counts").unwrap();
        let DataType::Struct(fields) = counts.data_type() else {
            panic!("counts is a struct")
        };
        assert!(matches!(
            fields.find("quarantined_by_reason").unwrap().1.data_type(),
            DataType::Map(..)
        ));
    }

    #[test]
    fn glue_types_parse_exactly() {
        assert_eq!(glue_to_arrow("bigint").unwrap(), DataType::Int64);
        assert!(matches!(
            glue_to_arrow("array<string>").unwrap(),
            DataType::List(_)
        ));
        assert!(glue_to_arrow("struct<a:int").is_err());
        assert!(glue_to_arrow("float").is_err());
        assert!(glue_to_arrow("bigint>").is_err());
    }
}
