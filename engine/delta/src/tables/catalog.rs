//! Every table of the lake, in one list.

use super::current::{CURRENT_DIMS, FOLDS, ORDER_LINES};
use super::def::DeltaTableDef;
use super::history::COMMIT_ORDER;
use super::marts::MARTS;

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
