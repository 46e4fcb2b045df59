//! The Parquet files this crate reads and writes itself (not the engine's): read into the
//! canonical Arrow schema of their table, written with `ArrowWriter` as `add` actions.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use deltalake_core::kernel::Add;
use parquet::arrow::ArrowWriter;

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

/// A file written by the fold, `optimize`, the marts or the current dimensions (Snappy, the
/// statistics Delta readers prune on).
pub(crate) struct LakeFileWriter {
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: usize,
}

impl LakeFileWriter {
    /// Creates the file at `path` (and its directory).
    pub(crate) fn create(path: &Path, schema: SchemaRef) -> Result<Self, Error> {
        crate::workspace::create_parent(path)?;
        let file =
            File::create(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        let properties = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(properties))
            .map_err(|source| parquet_error(path, source))?;
        Ok(LakeFileWriter {
            path: path.to_path_buf(),
            writer,
            rows: 0,
        })
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<(), Error> {
        self.rows += batch.num_rows();
        self.writer
            .write(batch)
            .map_err(|source| parquet_error(&self.path, source))
    }

    /// Closes the file and returns its `add` action at `rel` (its path in the table), with its
    /// size and the statistics of its footer; a data change, made now.
    pub(crate) fn finish(self, rel: String) -> Result<Add, Error> {
        let metadata = self
            .writer
            .close()
            .map_err(|source| parquet_error(&self.path, source))?;
        debug_assert_eq!(metadata.file_metadata().num_rows() as usize, self.rows);
        let size = std::fs::metadata(&self.path)
            .map_err(|e| Error::Invalid(format!("{}: {e}", self.path.display())))?
            .len();
        Ok(Add {
            path: rel,
            size: size as i64,
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(crate::stats::stats_json(&metadata)),
            ..Default::default()
        })
    }
}

fn parquet_error(path: &Path, source: parquet::errors::ParquetError) -> Error {
    Error::Parquet {
        path: path.display().to_string(),
        source,
    }
}
