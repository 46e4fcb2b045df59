//! Parsing and validation: the input cut into windows and ranges parsed in parallel, each
//! range's records split into fields, typed and checked against the contract's rules; a row
//! that breaks one is quarantined with its [`reason::Reason`].
//!
//! Inside, from the bottom up: [`fields`] (the strict RFC 4180 splitter), [`number`] (exact
//! decimals), [`reason`] and [`rules`] (the contract), [`header`] (the header row), `range` (one
//! range's records into typed columns), `window` (a window's ranges in parallel, repaired where
//! a guessed record start was wrong).

mod digits;
pub mod fields;
pub mod header;
pub mod number;
pub(crate) mod range;
pub mod reason;
pub mod rules;
pub(crate) mod window;
