//! The one integration-test entry point: cross-crate tests of the `duff` workspace.

mod api;
mod cli;
mod common;
mod differential;
mod dispatch;
mod emulator;
mod fixtures;
mod guarantees;
mod infra;
mod lake;
mod layout;
mod marts;
mod optimize;
mod reference;
mod s3;
mod venv;
