//! The one definition of every lake table. The Parquet files, the embedded SQL engine's tables
//! and the Glue/Athena templates in `infra/` are all derived from (or checked against) this.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::parse::number::{PRECISION, SCALE};

/// Digits of a [`ColumnType::DecimalSum`]: the most a DECIMAL has in Arrow, Parquet and Athena.
pub const SUM_PRECISION: u8 = 38;

/// Logical column types, each with one Arrow and one Glue/Athena spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// 64-bit signed integer: ids, units, line numbers.
    BigInt,
    /// 32-bit signed integer: the ids of statuses and channels.
    Int,
    /// UTF-8 text.
    String,
    /// A string with few distinct values (channel, status, run id): dictionary-encoded in Arrow.
    LowCardinalityString,
    /// DECIMAL(18,4): money and volumes, never floating point.
    Decimal,
    /// DECIMAL(38,4): sums of `Decimal` values over many lines (marts), which outgrow 18 digits.
    DecimalSum,
    /// UTC instant with millisecond precision.
    TimestampMillis,
    /// Raw bytes, which need not be UTF-8: a quarantined record as it was read.
    Binary,
}

impl ColumnType {
    /// The Arrow type of the column in the engine's batches and Parquet files.
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::BigInt => DataType::Int64,
            ColumnType::Int => DataType::Int32,
            ColumnType::String => DataType::Utf8,
            ColumnType::LowCardinalityString => {
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
            }
            ColumnType::Decimal => DataType::Decimal128(PRECISION, SCALE as i8),
            ColumnType::DecimalSum => DataType::Decimal128(SUM_PRECISION, SCALE as i8),
            ColumnType::TimestampMillis => {
                DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()))
            }
            ColumnType::Binary => DataType::Binary,
        }
    }

    /// The Hive/Glue type name used in the Athena table definitions.
    pub fn glue(self) -> std::string::String {
        match self {
            ColumnType::BigInt => "bigint".into(),
            ColumnType::Int => "int".into(),
            ColumnType::String | ColumnType::LowCardinalityString => "string".into(),
            ColumnType::Decimal => format!("decimal({PRECISION},{SCALE})"),
            ColumnType::DecimalSum => format!("decimal({SUM_PRECISION},{SCALE})"),
            ColumnType::TimestampMillis => "timestamp".into(),
            ColumnType::Binary => "binary".into(),
        }
    }
}

/// How a column's values are encoded in Parquet: declared here, once, for both the engine's
/// own column encoder and `ArrowWriter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// A dictionary page and RLE-encoded indices: for repeated values (names, ids, prices,
    /// units, channels, the constant lineage columns). Falls back to plain when a row group's
    /// dictionary grows past its page limit.
    Dictionary,
    /// `DELTA_BINARY_PACKED`: for sequences (order ids, line numbers) and for integers that
    /// rarely repeat (the totals' unscaled decimals): bit-packed, they take about the room
    /// that Snappy leaves of plain values, for a fraction of its time to write and to read.
    Delta,
    /// Plain values: for values that rarely repeat and are not integers (raw text).
    Plain,
}

/// A column of a lake table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Its name in every engine (Parquet, Arrow, Delta, Athena).
    pub name: &'static str,
    /// Its logical type.
    pub ty: ColumnType,
    /// Whether it may hold nulls.
    pub nullable: bool,
    /// How its values are encoded in Parquet.
    pub encoding: Encoding,
}

/// A non-null, dictionary-encoded column.
pub const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        nullable: false,
        encoding: Encoding::Dictionary,
    }
}

impl Column {
    /// The same column, delta-encoded.
    pub const fn delta(self) -> Column {
        Column {
            encoding: Encoding::Delta,
            ..self
        }
    }

    /// The same column, plain-encoded.
    pub const fn plain(self) -> Column {
        Column {
            encoding: Encoding::Plain,
            ..self
        }
    }

    /// The same column, nullable.
    pub const fn nullable(self) -> Column {
        Column {
            nullable: true,
            ..self
        }
    }
}

/// A lake table: where it lives and what its files hold. Every table is partitioned by
/// `pa_date` (a path segment `pa_date=YYYY-MM-DD`, not a column in the files).
#[derive(Debug)]
pub struct Table {
    /// Its name in SQL and in manifests ([`crate::manifest::WrittenFile::table`]).
    pub name: &'static str,
    /// Prefix under the lake root, e.g. `model/fact_orders`.
    pub prefix: &'static str,
    /// Its columns, in file order (the partition column is not among them).
    pub columns: &'static [Column],
}

/// Name of the partition column of every table.
pub const PARTITION_COLUMN: &str = "pa_date";

use ColumnType::*;

const LINEAGE: [Column; 4] = [
    col("source_file", LowCardinalityString),
    col("source_line", BigInt).delta(),
    col("ingested_at", TimestampMillis),
    col("run_id", LowCardinalityString),
];

macro_rules! with_lineage {
    ($($c:expr),* $(,)?) => {
        &[$($c,)* LINEAGE[0], LINEAGE[1], LINEAGE[2], LINEAGE[3]]
    };
}

/// Clean, enriched order lines: the input's columns, typed, plus totals and lineage.
pub static ORDERS: Table = Table {
    name: "orders",
    prefix: "orders",
    columns: with_lineage![
        col("client_id", BigInt),
        col("client_name", String),
        col("order_id", BigInt).delta(),
        col("product_id", BigInt),
        col("product_description", String),
        col("product_price", Decimal),
        col("product_ccf", BigInt),
        col("product_volume", Decimal),
        col("point_of_sale_channel", LowCardinalityString),
        col("status", LowCardinalityString),
        col("total_price", Decimal).delta(),
        col("total_volume", Decimal).delta(),
    ],
};

/// The fact table of the star schema: keys to the dimensions and the measures.
pub static FACT_ORDERS: Table = Table {
    name: "fact_orders",
    prefix: "model/fact_orders",
    columns: with_lineage![
        col("order_id", BigInt).delta(),
        col("product_id", BigInt),
        col("client_id", BigInt),
        col("status_id", Int),
        col("channel_id", Int),
        col("units", BigInt),
        col("unit_price", Decimal),
        col("total_price", Decimal).delta(),
        col("total_volume", Decimal).delta(),
    ],
};

/// One slice per run; readers take the row with the latest `ingested_at` per client.
pub static DIM_CLIENTS: Table = Table {
    name: "dim_clients",
    prefix: "model/dim_clients",
    columns: &[
        col("client_id", BigInt),
        col("client_name", String),
        col("ingested_at", TimestampMillis),
        col("run_id", LowCardinalityString),
    ],
};

/// One slice per run; readers take the row with the latest `ingested_at` per product.
pub static DIM_PRODUCTS: Table = Table {
    name: "dim_products",
    prefix: "model/dim_products",
    columns: &[
        col("product_id", BigInt),
        col("product_description", String),
        col("product_price", Decimal),
        col("product_volume", Decimal),
        col("ingested_at", TimestampMillis),
        col("run_id", LowCardinalityString),
    ],
};

/// Fixed ids that never change (see [`crate::parse::rules::STATUSES`]).
pub static DIM_STATUS: Table = Table {
    name: "dim_status",
    prefix: "model/dim_status",
    columns: &[col("status_id", Int), col("status", String)],
};

/// Stable ids (see [`crate::parse::rules::Channels`]).
pub static DIM_CHANNELS: Table = Table {
    name: "dim_channels",
    prefix: "model/dim_channels",
    columns: &[col("channel_id", Int), col("channel", String)],
};

/// Rejected rows: the raw text, where it was, and why.
pub static QUARANTINE: Table = Table {
    name: "quarantine",
    prefix: "quarantine",
    columns: &[
        col("source_file", LowCardinalityString),
        col("source_line", BigInt).delta(),
        col("reason", LowCardinalityString),
        col("detail", String).plain(),
        col("raw_text", String).plain(),
        col("raw", Binary).plain(),
        col("kept_line", BigInt).nullable(),
        col("ingested_at", TimestampMillis),
        col("run_id", LowCardinalityString),
    ],
};

/// Every table the engine writes.
pub static TABLES: [&Table; 7] = [
    &ORDERS,
    &FACT_ORDERS,
    &DIM_CLIENTS,
    &DIM_PRODUCTS,
    &DIM_STATUS,
    &DIM_CHANNELS,
    &QUARANTINE,
];

impl Table {
    /// The Arrow schema of the table's batches and files: its columns, in order.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.ty.arrow(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// The column called `name`, if the table has one.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_unique_names_prefixes_and_columns() {
        let mut names: Vec<_> = TABLES.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TABLES.len());
        for t in TABLES {
            let mut cols: Vec<_> = t.columns.iter().map(|c| c.name).collect();
            cols.sort();
            cols.dedup();
            assert_eq!(cols.len(), t.columns.len(), "{}", t.name);
            assert!(
                t.column(PARTITION_COLUMN).is_none(),
                "{} stores pa_date",
                t.name
            );
            assert_eq!(t.arrow_schema().fields().len(), t.columns.len());
        }
        assert_eq!(Decimal.glue(), "decimal(18,4)");
    }
}
