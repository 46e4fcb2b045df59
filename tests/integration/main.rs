//! The one integration-test entry point: cross-crate tests of the `duff` workspace.

// The tests read whole lakes back, value by value: allocation-heavy work, given the allocator the
// binaries use rather than the system's.
#[global_allocator]
static GLOBAL: duff_alloc::Allocator = duff_alloc::Allocator;

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
mod rows;
mod s3;
mod venv;
