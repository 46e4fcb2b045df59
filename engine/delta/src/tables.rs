//! The lake's Delta tables: their schemas (from the engine's one definition,
//! [`duff_engine::schema`], and [`crate::runs`]) and the order a run commits them in.

use deltalake_core::kernel::engine::arrow_conversion::TryFromArrow;
use deltalake_core::kernel::transaction::CommitProperties;
use deltalake_core::kernel::{DataType, StructField, StructType};
use duff_engine::schema::{self as engine_schema, ColumnType, PARTITION_COLUMN, Table, col};

use crate::current_dims::CURRENT_DIMS;
use crate::error::Error;
use crate::marts::MARTS;

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
    pub name: &'static str,
    /// Where the table lives under the lake root (its `_delta_log/` is inside).
    pub prefix: &'static str,
    /// The columns of its files (an engine table or a mart); `None` for `runs`.
    pub engine_table: Option<&'static Table>,
    /// Partitioned by `pa_date` (the tables of order lines and their star schema).
    pub partitioned: bool,
}

/// The `runs` table: one row per run, its last commit.
pub const RUNS: DeltaTableDef = DeltaTableDef {
    name: crate::runs::RUNS_TABLE,
    prefix: crate::runs::RUNS_PREFIX,
    engine_table: None,
    partitioned: false,
};

/// The current state: the latest version of every order line, `orders`' schema and
/// partitioning, kept by folding committed runs in ([`crate::fold`]).
pub const ORDER_LINES: DeltaTableDef = DeltaTableDef {
    name: "order_lines",
    prefix: "order_lines",
    engine_table: Some(&engine_schema::ORDERS),
    partitioned: true,
};

/// Which runs the current state holds: one row per fold of a run into `order_lines` and the
/// marts, written after both ([`crate::fold`]). `generation` is the run's `orders` commit that
/// was folded (a `--force` re-run is folded again); `order_lines_version` the commit that
/// holds it.
pub static FOLDS_TABLE: Table = Table {
    name: "folds",
    prefix: "folds",
    columns: &[
        col("run_id", ColumnType::String),
        col("generation", ColumnType::BigInt),
        col("order_lines_version", ColumnType::BigInt),
        col("folded_at", ColumnType::TimestampMillis),
    ],
};

pub const FOLDS: DeltaTableDef = DeltaTableDef {
    name: "folds",
    prefix: "folds",
    engine_table: Some(&FOLDS_TABLE),
    partitioned: false,
};

const fn history(table: &'static Table) -> DeltaTableDef {
    DeltaTableDef {
        name: table.name,
        prefix: table.prefix,
        engine_table: Some(table),
        partitioned: true,
    }
}

/// Every table, in the order a run commits them: quarantine first (so a run's rejected rows
/// are never missing while its clean ones show), the order lines, the star schema, and
/// `runs` last, which is what makes the run committed.
pub static COMMIT_ORDER: [DeltaTableDef; 8] = [
    history(&engine_schema::QUARANTINE),
    history(&engine_schema::ORDERS),
    history(&engine_schema::FACT_ORDERS),
    history(&engine_schema::DIM_CLIENTS),
    history(&engine_schema::DIM_PRODUCTS),
    history(&engine_schema::DIM_STATUS),
    history(&engine_schema::DIM_CHANNELS),
    RUNS,
];

/// Every table of the lake: the history in commit order, the current state (`order_lines` and
/// its star schema's dimensions), its marts, and the record of folds.
pub static ALL_TABLES: [DeltaTableDef; 19] = [
    COMMIT_ORDER[0],
    COMMIT_ORDER[1],
    COMMIT_ORDER[2],
    COMMIT_ORDER[3],
    COMMIT_ORDER[4],
    COMMIT_ORDER[5],
    COMMIT_ORDER[6],
    COMMIT_ORDER[7],
    ORDER_LINES,
    CURRENT_DIMS[0],
    CURRENT_DIMS[1],
    MARTS[0],
    MARTS[1],
    MARTS[2],
    MARTS[3],
    MARTS[4],
    MARTS[5],
    MARTS[6],
    FOLDS,
];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_table_is_committed_once_and_runs_last() {
        let names: Vec<_> = COMMIT_ORDER.iter().map(|t| t.name).collect();
        for t in engine_schema::TABLES {
            assert_eq!(
                names.iter().filter(|n| **n == t.name).count(),
                1,
                "{}",
                t.name
            );
        }
        assert_eq!(names.last(), Some(&"runs"));
        assert_eq!(names.len(), engine_schema::TABLES.len() + 1);
    }

    #[test]
    fn schemas_carry_every_column_and_the_partition() {
        for def in &COMMIT_ORDER {
            let schema = def.schema().unwrap();
            match def.engine_table {
                Some(t) => {
                    assert_eq!(schema.fields().count(), t.columns.len() + 1, "{}", def.name);
                    assert!(schema.field(PARTITION_COLUMN).is_some());
                }
                None => {
                    assert!(schema.field("run_id").is_some() && schema.field("manifest").is_some())
                }
            }
        }
    }
}
