//! Where a run's bytes come from and go: the [`storage`] traits every lake and input
//! implements, the run [`manifest`] that commits a run, and their implementations over local
//! files ([`LocalLake`], [`input::LocalInput`]).

pub mod input;
mod local;
pub mod manifest;
pub mod storage;

pub use local::{LocalLake, RUNS_DIR, STAGING_DIR, is_file_of_run};
