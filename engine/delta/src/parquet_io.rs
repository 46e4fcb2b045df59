//! The Parquet files this crate reads and writes itself (not the engine's): read by column and
//! row group, or into the canonical Arrow schema of their table; written with `ArrowWriter` as
//! `add` actions.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use arrow::datatypes::{DataType, Int64Type};
use arrow::error::ArrowError;
use deltalake_core::kernel::Add;
use duff_engine::schema::Table;
use duff_engine::writer::declared_encodings;
use parquet::arrow::arrow_reader::{
    ArrowPredicateFn, ArrowReaderMetadata, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowFilter,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::file::properties::EnabledStatistics;
use parquet::file::statistics::Statistics;

use crate::error::Error;

/// A Parquet file whose footer is read once; readers of any of its columns and row groups
/// are built from it.
pub(crate) struct ParquetFile {
    path: PathBuf,
    file: File,
    metadata: ArrowReaderMetadata,
}

impl ParquetFile {
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let file =
            File::open(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        let metadata = ArrowReaderMetadata::load(&file, Default::default())
            .map_err(|source| parquet_error(path, source))?;
        Ok(ParquetFile {
            path: path.to_path_buf(),
            file,
            metadata,
        })
    }

    /// The leaf index of the column `name`.
    fn column_index(&self, name: &str) -> Result<usize, Error> {
        self.metadata
            .metadata()
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.name() == name)
            .ok_or_else(|| Error::Invalid(format!("{}: no column {name}", self.path.display())))
    }

    /// The mask that reads the named columns.
    fn projection(&self, names: &[&str]) -> Result<ProjectionMask, Error> {
        let indices = names
            .iter()
            .map(|n| self.column_index(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProjectionMask::leaves(
            self.metadata.metadata().file_metadata().schema_descr(),
            indices,
        ))
    }

    /// Rows per row group.
    pub(crate) fn row_group_rows(&self) -> Vec<usize> {
        let metadata = self.metadata.metadata();
        metadata
            .row_groups()
            .iter()
            .map(|g| g.num_rows() as usize)
            .collect()
    }

    /// Each row group's `[min, max]` of the 64-bit integer column `name`, from its statistics
    /// (`None` where they are missing).
    pub(crate) fn int64_ranges(&self, name: &str) -> Vec<Option<(i64, i64)>> {
        let metadata = self.metadata.metadata();
        let column = metadata
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.name() == name);
        metadata
            .row_groups()
            .iter()
            .map(|g| match g.column(column?).statistics()? {
                Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
                _ => None,
            })
            .collect()
    }

    /// A reader of the named columns (all when `None`) of the given row groups (all when
    /// `None`), in file order.
    pub(crate) fn reader(
        &self,
        columns: Option<&[&str]>,
        row_groups: Option<Vec<usize>>,
    ) -> Result<ParquetRecordBatchReader, Error> {
        let file = self
            .file
            .try_clone()
            .map_err(|e| Error::Invalid(format!("{}: {e}", self.path.display())))?;
        let mut builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone());
        if let Some(names) = columns {
            builder = builder.with_projection(self.projection(names)?);
        }
        if let Some(groups) = row_groups {
            builder = builder.with_row_groups(groups);
        }
        builder
            .build()
            .map_err(|source| parquet_error(&self.path, source))
    }
}

impl ParquetFile {
    /// A reader of the named columns (all when `None`) of the rows whose 64-bit integer
    /// column `name` is within `range`, in file order: row groups outside it are skipped on
    /// their statistics, and the other columns are decoded for the rows within only.
    pub(crate) fn reader_within(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
        columns: Option<&[&str]>,
    ) -> Result<ParquetRecordBatchReader, Error> {
        let file = self
            .file
            .try_clone()
            .map_err(|e| Error::Invalid(format!("{}: {e}", self.path.display())))?;
        let groups: Vec<usize> = self
            .int64_ranges(name)
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_none_or(|(lo, hi)| lo <= *range.end() && *range.start() <= hi))
            .map(|(g, _)| g)
            .collect();
        let builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone());
        let column = self.column_index(name)?;
        let mask = ProjectionMask::leaves(builder.parquet_schema(), [column]);
        let projection = match columns {
            Some(names) => self.projection(names)?,
            None => ProjectionMask::all(),
        };
        let within = ArrowPredicateFn::new(mask, move |batch: RecordBatch| {
            let values = batch
                .column(0)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| ArrowError::CastError("not a 64-bit integer column".into()))?;
            Ok(values
                .iter()
                .map(|v| v.map(|v| range.contains(&v)))
                .collect())
        });
        builder
            .with_projection(projection)
            .with_row_groups(groups)
            .with_row_filter(RowFilter::new(vec![Box::new(within)]))
            .with_batch_size(8192)
            .build()
            .map_err(|source| parquet_error(&self.path, source))
    }
}

/// A reader of the named columns of the file at `path`, in file order.
pub(crate) fn open_columns(path: &Path, names: &[&str]) -> Result<ParquetRecordBatchReader, Error> {
    ParquetFile::open(path)?.reader(Some(names), None)
}

/// A reader of every column of the file at `path`, in file order.
pub(crate) fn open_all(path: &Path) -> Result<ParquetRecordBatchReader, Error> {
    ParquetFile::open(path)?.reader(None, None)
}

/// Every row of the file at `path`, its columns taken by name and cast to `schema`.
pub(crate) fn read_as(path: &Path, schema: &SchemaRef) -> Result<Vec<RecordBatch>, Error> {
    open_all(path)?
        .map(|batch| {
            let batch = batch.map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
            cast_to(&batch, schema, path)
        })
        .collect()
}

/// `batch` with its columns taken by name and cast to `schema`: files written by the engine,
/// by the fold and by earlier versions differ in how they encode strings (plain or
/// dictionary), not in their values.
pub(crate) fn cast_to(
    batch: &RecordBatch,
    schema: &SchemaRef,
    path: &Path,
) -> Result<RecordBatch, Error> {
    let invalid = |e: String| Error::Invalid(format!("{}: {e}", path.display()));
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
}

/// A file written by the fold, `optimize`, the marts or the current dimensions (Snappy, the
/// statistics Delta readers prune on).
pub(crate) struct LakeFileWriter {
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: usize,
}

impl LakeFileWriter {
    /// Creates the file at `path` (and its directory), its columns encoded as `table` declares
    /// them.
    pub(crate) fn create(path: &Path, schema: SchemaRef, table: &Table) -> Result<Self, Error> {
        crate::workspace::create_parent(path)?;
        let file =
            File::create(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        let mut properties = declared_encodings(
            parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY),
            table,
        );
        for field in schema.fields() {
            // Sums (the marts' DECIMAL(38,4), declared plain: they hardly repeat): nothing
            // prunes on them, and their bounds cost a 16-byte comparison per value.
            if matches!(field.data_type(), DataType::Decimal128(p, _) if *p > 18) {
                let column = parquet::schema::types::ColumnPath::from(field.name().as_str());
                properties =
                    properties.set_column_statistics_enabled(column, EnabledStatistics::None);
            }
        }
        let properties = properties.build();
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

    /// Ends the row group being written: the rows written next start another.
    pub(crate) fn end_row_group(&mut self) -> Result<(), Error> {
        self.writer
            .flush()
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
