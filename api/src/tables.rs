//! The tables reports can name: the engine's lake tables ([`duff_engine::schema::TABLES`]) plus
//! `runs`, one row per run. `runs` is defined once, with Glue type strings, in
//! [`duff_delta::runs`]; the embedded engine's Arrow schema is derived from them and the Athena
//! table in `infra/` is checked against them.

pub use duff_delta::runs::{
    RUNS_COLUMNS, RUNS_PREFIX, RUNS_TABLE, glue_to_arrow, runs_arrow_schema,
};

/// Glue type of the `pa_date` partition key of every Parquet table: a `YYYY-MM-DD` string, so
/// reports compare it with bound string parameters on both backends.
pub const PA_DATE_GLUE_TYPE: &str = "string";

/// Every table name reports may use, in one list (engine tables, then `runs`).
pub fn table_names() -> Vec<&'static str> {
    duff_engine::schema::TABLES
        .iter()
        .map(|t| t.name)
        .chain([RUNS_TABLE, duff_delta::ORDER_LINES.name])
        .chain(duff_delta::marts::MARTS.iter().map(|m| m.name))
        .collect()
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
        ] {
            assert!(names.contains(&t), "{t}");
        }
    }
}
