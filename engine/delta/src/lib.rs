//! # duff-delta
//!
//! The lake's tables as Delta Lake tables, so that Athena, Spark, Trino, DuckDB, Polars and the
//! API read exactly the files of committed runs with no project-specific protocol.
//!
//! The engine keeps writing its own Parquet files (speed; the same bytes for any thread count);
//! [`DeltaLake`] commits them as `add` actions with statistics read back from their footers.
//! Each commit of a run to a table carries the run id as a Delta application transaction, so a
//! retried, concurrent or crashed-and-retried attempt commits at most once per table
//! ([`lake`]). The `runs` table ([`runs`]) gets the run's record last.
//!
//! This crate is the adapter between the engine core and `deltalake`: the engine knows nothing
//! of Delta, and `deltalake` stays out of its dependency graph.

mod commit;
mod current_check;
pub mod current_dims;
pub mod error;
mod files;
pub mod fold;
pub mod lake;
pub mod lease;
pub mod maintenance;
pub mod marts;
pub mod optimize;
mod parquet_io;
pub mod runs;
mod stats;
pub mod tables;
pub mod visible;
mod workspace;

pub use error::Error;
pub use lake::DeltaLake;
pub use stats::stats_json;
pub use tables::{ALL_TABLES, COMMIT_ORDER, DeltaTableDef, FOLDS, ORDER_LINES};
pub use visible::CommittedOnly;
