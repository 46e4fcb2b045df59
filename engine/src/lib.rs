//! # duff-engine
//!
//! Turns order CSV files into a validated, deduplicated, enriched Parquet lake with a star
//! schema. The core knows nothing of AWS: it reads bytes from a [`Source`] (a memory map or a
//! stream) and writes through a [`Lake`]; [`LocalLake`] and [`input::LocalInput`] implement
//! them over local files, the `duff-s3` crate over S3.
//!
//! ```no_run
//! use duff_engine::{LocalLake, RunOptions, RunOutcome, run_local};
//!
//! let lake = LocalLake::open("lake")?;
//! match run_local("orders.csv".as_ref(), &lake, &RunOptions::default(), &|_| {})? {
//!     RunOutcome::Succeeded(m) => println!("{} rows written", m.counts.rows_written),
//!     RunOutcome::Failed(m) => eprintln!("rejected: {}", m.error.unwrap_or_default()),
//!     RunOutcome::Skipped(m) => println!("run {} was already done", m.run_id),
//! }
//! # Ok::<(), duff_engine::Error>(())
//! ```
//!
//! The engine is grouped by stage, each depending only on those before it:
//! - `parse` splits the input into windows and ranges parsed in parallel (simd-csv and the
//!   strict [`fields`] splitter) and validates every row against the [`rules`];
//! - `dedup` judges each row's key in sharded hash tables;
//! - `assemble` builds the tables' Arrow batches ([`schema`]);
//! - [`writer`] threads encode them as Parquet;
//! - [`lake`] holds the [`storage`] traits, the [`manifest`] and the local lake;
//! - [`mod@run`] drives them: parsing, dedup with assembly, and encoding overlap, each working on
//!   its own window at once (`run/pipeline.rs`), then publishes and commits.

mod assemble;
pub mod decode;
mod dedup;
pub mod error;
pub mod failpoint;
pub mod lake;
mod parse;
pub mod prefetch;
pub mod run;
pub mod schema;
pub mod writer;

// The stable public paths of the modules grouped by stage above.
pub use lake::{input, manifest, storage};
pub use parse::{fields, header, number, reason, rules};

pub use error::{Error, StorageError, StorageErrorKind};
pub use lake::LocalLake;
pub use manifest::{Counts, Manifest, RunStatus};
pub use reason::Reason;
pub use rules::Channels;
pub use run::{Progress, RunOptions, RunOutcome, give_up, peak_rss_bytes, run, run_local};
pub use storage::{Lake, Source};
pub use writer::{Codec, Encoder, ParquetOptions};
