//! Reading the lake's own Parquet files into the canonical Arrow schema of their table.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;

use crate::error::Error;

/// Every row of the file at `path`, its columns taken by name and cast to `schema`: files
/// written by the engine, by the fold and by earlier versions differ in how they encode
/// strings (plain or dictionary), not in their values.
pub(crate) fn read_as(path: &Path, schema: &SchemaRef) -> Result<Vec<RecordBatch>, Error> {
    let reader = crate::fold::open(path)?
        .build()
        .map_err(|source| Error::Parquet {
            path: path.display().to_string(),
            source,
        })?;
    let invalid = |e: String| Error::Invalid(format!("{}: {e}", path.display()));
    reader
        .map(|batch| {
            let batch = batch.map_err(|e| invalid(e.to_string()))?;
            let columns = schema
                .fields()
                .iter()
                .map(|field| {
                    let column = batch
                        .column_by_name(field.name())
                        .ok_or_else(|| invalid(format!("no column {}", field.name())))?;
                    cast(column, field.data_type()).map_err(|e| invalid(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            RecordBatch::try_new(schema.clone(), columns).map_err(|e| invalid(e.to_string()))
        })
        .collect()
}
