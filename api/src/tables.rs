//! The tables reports can name: the engine's lake tables ([`duff_engine::schema::TABLES`]) plus
//! `runs`, the run manifests read as newline-delimited JSON. `runs` is defined here once, with
//! Glue type strings; the embedded engine's Arrow schema is derived from them and the Athena
//! table in `infra/` is checked against them.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

/// Name of the manifests table in SQL.
pub const RUNS_TABLE: &str = "runs";
/// Where the manifests live under the lake root (`_runs/<run_id>.json`, one JSON object a line).
pub const RUNS_PREFIX: &str = duff_engine::lake::RUNS_DIR;

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

/// Glue type of the `pa_date` partition key of every Parquet table: a `YYYY-MM-DD` string, so
/// reports compare it with bound string parameters on both backends.
pub const PA_DATE_GLUE_TYPE: &str = "string";

/// Every table name reports may use, in one list (engine tables, then `runs`).
pub fn table_names() -> Vec<&'static str> {
    duff_engine::schema::TABLES
        .iter()
        .map(|t| t.name)
        .chain([RUNS_TABLE])
        .collect()
}

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

    #[test]
    fn table_names_cover_the_lake() {
        let names = table_names();
        for t in [
            "orders",
            "fact_orders",
            "dim_clients",
            "dim_products",
            "dim_status",
            "dim_channels",
            "quarantine",
            "runs",
        ] {
            assert!(names.contains(&t), "{t}");
        }
    }
}
