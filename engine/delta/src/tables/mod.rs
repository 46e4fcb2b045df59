//! The lake's Delta tables: what each is (`def`: location, columns from the engine's one
//! definition, [`duff_engine::schema`], partitioning, Delta schema), the history a run commits
//! (`history`, in commit order), the current state (`current`), the marts (`marts`), and
//! every table in one list (`catalog`).

mod catalog;
mod current;
mod def;
mod history;
mod marts;

pub use catalog::ALL_TABLES;
pub use current::{
    CLIENTS_CURRENT, CURRENT_DIMS, FOLDS, FOLDS_TABLE, ORDER_LINES, PRODUCTS_CURRENT,
};
pub use def::DeltaTableDef;
pub(crate) use def::commit_properties;
pub use history::{COMMIT_ORDER, RUNS};
pub use marts::{
    CHANNELS, CLIENT_PRODUCTS, CLIENT_STATUSES, CLIENTS, DAILY_CHANNELS, MARTS, PRODUCTS, STATUSES,
};
