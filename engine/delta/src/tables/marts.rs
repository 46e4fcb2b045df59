//! The marts as tables: one row per group, each with the same measures (see [`crate::marts`]).

use duff_engine::schema::{Column, ColumnType::*, Table, col};

use super::def::DeltaTableDef;

/// The measures every mart has, after its group's key columns. Counts repeat (a dictionary);
/// sums hardly do (plain: a dictionary would only be tried, filled and abandoned).
const MEASURES: [Column; 5] = [
    col("orders", BigInt),
    col("order_lines", BigInt),
    col("units", BigInt),
    col("sales", DecimalSum).plain(),
    col("volume", DecimalSum).plain(),
];

macro_rules! with_measures {
    ($($c:expr),* $(,)?) => {
        &[$($c,)* MEASURES[0], MEASURES[1], MEASURES[2], MEASURES[3], MEASURES[4]]
    };
}

/// Per client, with the product of the client's largest sales (ties: smallest product id).
pub static CLIENTS: Table = Table {
    name: "mart_clients",
    prefix: "marts/clients",
    columns: &[
        col("client_id", BigInt),
        MEASURES[0],
        MEASURES[1],
        MEASURES[2],
        MEASURES[3],
        MEASURES[4],
        col("top_product_id", BigInt),
        col("top_product_sales", DecimalSum).plain(),
    ],
};

/// Per client and product. Its ids are written sorted by client, then product: delta-encoded,
/// they take a few bits each, without a dictionary of 10⁵ clients to fill.
pub static CLIENT_PRODUCTS: Table = Table {
    name: "mart_client_products",
    prefix: "marts/client_products",
    columns: with_measures![
        col("client_id", BigInt).delta(),
        col("product_id", BigInt).delta()
    ],
};

/// Per product.
pub static PRODUCTS: Table = Table {
    name: "mart_products",
    prefix: "marts/products",
    columns: with_measures![col("product_id", BigInt)],
};

/// Per status.
pub static STATUSES: Table = Table {
    name: "mart_status",
    prefix: "marts/status",
    columns: with_measures![col("status", String)],
};

/// Per point-of-sale channel.
pub static CHANNELS: Table = Table {
    name: "mart_channels",
    prefix: "marts/channels",
    columns: with_measures![col("channel", String)],
};

/// Per day (the `pa_date` of the lines' current version) and channel.
pub static DAILY_CHANNELS: Table = Table {
    name: "mart_daily_channels",
    prefix: "marts/daily_channels",
    columns: with_measures![col("pa_date", String), col("channel", String)],
};

/// Per client and status.
pub static CLIENT_STATUSES: Table = Table {
    name: "mart_client_status",
    prefix: "marts/client_status",
    columns: with_measures![col("client_id", BigInt), col("status", String)],
};

const fn mart(table: &'static Table) -> DeltaTableDef {
    DeltaTableDef {
        name: table.name,
        prefix: table.prefix,
        engine_table: Some(table),
        partitioned: false,
    }
}

/// Every mart, as Delta tables (not partitioned: each is small).
pub static MARTS: [DeltaTableDef; 7] = [
    mart(&CLIENTS),
    mart(&CLIENT_PRODUCTS),
    mart(&PRODUCTS),
    mart(&STATUSES),
    mart(&CHANNELS),
    mart(&DAILY_CHANNELS),
    mart(&CLIENT_STATUSES),
];
