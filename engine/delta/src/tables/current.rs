//! The current state: the latest version of every order line (`order_lines`), the current
//! dimensions of its star schema, and the record of which runs it holds (`folds`).

use duff_engine::schema::{
    self as engine_schema, ColumnType, DIM_CLIENTS, DIM_PRODUCTS, Table, col,
};

use super::def::DeltaTableDef;

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

/// [`FOLDS_TABLE`] as a Delta table (not partitioned: one row per fold).
pub const FOLDS: DeltaTableDef = DeltaTableDef {
    name: "folds",
    prefix: "folds",
    engine_table: Some(&FOLDS_TABLE),
    partitioned: false,
};

/// Every client of the folded runs, with the name of its latest version.
pub static CLIENTS_CURRENT: Table = Table {
    name: "dim_clients_current",
    prefix: "current/dim_clients",
    columns: DIM_CLIENTS.columns,
};

/// Every product of the folded runs, with the description, price and volume of its latest
/// version.
pub static PRODUCTS_CURRENT: Table = Table {
    name: "dim_products_current",
    prefix: "current/dim_products",
    columns: DIM_PRODUCTS.columns,
};

const fn current(table: &'static Table) -> DeltaTableDef {
    DeltaTableDef {
        name: table.name,
        prefix: table.prefix,
        engine_table: Some(table),
        partitioned: false,
    }
}

/// The current dimensions as Delta tables (not partitioned: each is small).
pub static CURRENT_DIMS: [DeltaTableDef; 2] =
    [current(&CLIENTS_CURRENT), current(&PRODUCTS_CURRENT)];
