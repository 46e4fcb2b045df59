//! What a Delta table of the lake is: its location, its columns (an engine table's, a mart's,
//! or the `runs` record's), its partitioning and its Delta schema; and the properties every
//! commit but `vacuum`'s carries.

use deltalake_core::kernel::engine::arrow_conversion::TryFromArrow;
use deltalake_core::kernel::transaction::CommitProperties;
use deltalake_core::kernel::{DataType, StructField, StructType};
use duff_engine::schema::{self as engine_schema, ColumnType, PARTITION_COLUMN, Table};

use crate::error::Error;

/// The properties of every commit but `vacuum`'s: the log's expired entries stay. `deltalake`
/// would otherwise list the table's whole log after each commit and delete the entries older
/// than the log retention below a checkpoint, and the roles that ingest, fold and optimize may
/// not delete in the lake (infra/templates); `duff lake vacuum` removes them.
pub(crate) fn commit_properties() -> CommitProperties {
    CommitProperties::default().with_cleanup_expired_logs(Some(false))
}

/// A Delta table of the lake.
#[derive(Debug, Clone, Copy)]
pub struct DeltaTableDef {
    /// The table's name (Athena's, the API's, the log's).
    pub name: &'static str,
    /// Where the table lives under the lake root (its `_delta_log/` is inside).
    pub prefix: &'static str,
    /// The columns of its files (an engine table or a mart); `None` for `runs`.
    pub engine_table: Option<&'static Table>,
    /// Partitioned by `pa_date` (the tables of order lines and their star schema).
    pub partitioned: bool,
}

impl DeltaTableDef {
    /// Partition columns: `pa_date` or none.
    pub fn partition_columns(&self) -> Vec<String> {
        if self.partitioned {
            vec![PARTITION_COLUMN.to_string()]
        } else {
            Vec::new()
        }
    }

    /// The Delta schema: the engine's columns plus `pa_date`, or the `runs` columns.
    pub fn schema(&self) -> Result<StructType, Error> {
        let fields: Vec<StructField> = match self.engine_table {
            Some(table) => table
                .columns
                .iter()
                .map(|c| StructField::new(c.name, delta_type(c.ty), c.nullable))
                .chain(
                    self.partitioned
                        .then(|| StructField::new(PARTITION_COLUMN, DataType::STRING, false)),
                )
                .collect(),
            None => {
                let arrow = crate::runs::runs_file_schema();
                StructType::try_from_arrow(arrow.as_ref())
                    .map_err(|e| Error::Invalid(format!("runs schema: {e}")))?
                    .fields()
                    .cloned()
                    .collect()
            }
        };
        StructType::try_new(fields)
            .map_err(|e| Error::Invalid(format!("{} schema: {e}", self.name)))
    }
}

/// Delta's type for an engine column. Timestamps are Delta `timestamp` (UTC); the engine's
/// files store them as Parquet TIMESTAMP(MILLIS, UTC), which every Delta reader widens.
fn delta_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::BigInt => DataType::LONG,
        ColumnType::Int => DataType::INTEGER,
        ColumnType::String | ColumnType::LowCardinalityString => DataType::STRING,
        ColumnType::Decimal => DataType::decimal(
            duff_engine::number::PRECISION,
            duff_engine::number::SCALE as u8,
        )
        .expect("DECIMAL(18,4) is a valid Delta decimal"),
        ColumnType::DecimalSum => DataType::decimal(
            engine_schema::SUM_PRECISION,
            duff_engine::number::SCALE as u8,
        )
        .expect("DECIMAL(38,4) is a valid Delta decimal"),
        ColumnType::TimestampMillis => DataType::TIMESTAMP,
        ColumnType::Binary => DataType::BINARY,
    }
}
