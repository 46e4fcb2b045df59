//! Marts: small aggregates of the current state (`order_lines`), kept exact at every fold, so
//! a report reads a few thousand rows instead of ranking the history.
//!
//! Every mart has one row per group with the same measures: `orders` (distinct `order_id`),
//! `order_lines`, `units` (sum of `product_ccf`), `sales` and `volume` (sums of `total_price`
//! and `total_volume`, DECIMAL(38,4)). A group with no current line has no row.
//!
//! A fold changes the current state of a few orders only: those with a line the run adds or
//! supersedes. Every measure of a mart is a sum over orders of what each order contributes
//! (its lines' sums, and 1 to `orders` per group it has a line in), so the fold adds, for
//! each changed order, its contribution after the fold minus its contribution before
//! (`Marts::apply_order`). That needs every current line of a changed order, which the fold
//! finds in the `order_lines` files it reads anyway: their key ranges hold the order.
//!
//! The marts are rewritten whole at each fold and carry the `order_lines` version they
//! reflect as a Delta `txn`; a fold that finds them behind (a crash between the two commits,
//! or a lake from before marts) rebuilds them from `order_lines` first (`store.rs`).

mod groups;
pub(crate) mod lines;
pub(crate) mod measures;
pub(crate) mod observe;
mod pair_sums;
pub(crate) mod run_sums;
pub(crate) mod store;
mod sums;

pub(crate) use lines::{LineSource, Side};
pub use measures::Measures;
pub(crate) use measures::Names;
pub use sums::Marts;
