//! The one integration-test entry point: cross-crate tests of the `duff` workspace.

mod cli;
mod common;
mod differential;
mod fixtures;
mod guarantees;
mod reference;
