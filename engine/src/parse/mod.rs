//! Parsing and validation: the input cut into windows and ranges parsed in parallel, each
//! range's records split into fields, typed and checked against the contract's rules; a row
//! that breaks one is quarantined with its [`reason::Reason`].
//!
//! Inside, from the bottom up: `bytes` (short strings compared inline), [`fields`] (the strict
//! RFC 4180 splitter), [`number`] (exact decimals; `digits` reads the plain ones a word at a
//! time), [`reason`] and [`rules`] (the contract), [`header`] (the header row), `range` (one
//! range's records into typed columns), `window` (a window's ranges in parallel, repaired where
//! a guessed record start was wrong).

pub(crate) mod bytes;
mod digits;
pub mod fields;
pub mod header;
pub mod number;
pub(crate) mod range;
pub mod reason;
pub mod rules;
pub(crate) mod window;
