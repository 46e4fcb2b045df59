//! The tables reports can name: every table of the lake ([`duff_delta::ALL_TABLES`]: history,
//! `runs`, the current state, the marts and `folds`). `runs` is defined once, with Glue type strings, in
//! [`duff_delta::runs`]; the embedded engine's Arrow schema is derived from them and the Athena
//! table in `infra/` is checked against them.

pub use duff_delta::runs::{
    RUNS_COLUMNS, RUNS_PREFIX, RUNS_TABLE, glue_to_arrow, runs_arrow_schema,
};

/// Glue type of the `pa_date` partition key of every Parquet table: a `YYYY-MM-DD` string, so
/// reports compare it with bound string parameters on both backends.
pub const PA_DATE_GLUE_TYPE: &str = "string";

/// Every table name reports may use: the lake's tables, in one list.
pub fn table_names() -> Vec<&'static str> {
    duff_delta::ALL_TABLES.iter().map(|d| d.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "order_lines",
            "mart_clients",
            "folds",
        ] {
            assert!(names.contains(&t), "{t}");
        }
    }
}
