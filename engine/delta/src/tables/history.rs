//! The history: every engine table as a Delta table, partitioned by `pa_date`, and the `runs`
//! record, in the order a run commits them.

use duff_engine::schema::{self as engine_schema, Table};

use super::def::DeltaTableDef;

/// The `runs` table: one row per run, its last commit.
pub const RUNS: DeltaTableDef = DeltaTableDef {
    name: crate::runs::RUNS_TABLE,
    prefix: crate::runs::RUNS_PREFIX,
    engine_table: None,
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

/// Every table a run commits: quarantine first (so a run's rejected rows are never missing
/// while its clean ones show), then the order lines and the star schema side by side, and
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

#[cfg(test)]
mod tests {
    use duff_engine::schema::PARTITION_COLUMN;

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
