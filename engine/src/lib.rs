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
//! The pipeline: `window` splits the input into ranges parsed in parallel (`chunk`, with
//! simd-csv and the strict [`fields`] splitter), `dedup` judges keys in sharded hash tables,
//! `assemble` builds Arrow batches, [`writer`] threads encode Parquet (`star_writer` encodes
//! the columns orders and fact_orders share once), and [`lake`] publishes
//! the staged files and commits the [`manifest`]. Parsing, dedup with assembly, and encoding
//! overlap: each works on its own window at once (`run/pipeline.rs`).

mod assemble;
mod chunk;
pub mod decode;
mod dedup;
mod dict_chunk;
pub mod error;
pub mod fields;
pub mod header;
pub mod input;
pub mod lake;
pub mod manifest;
mod members;
pub mod number;
pub mod prefetch;
pub mod reason;
mod rle;
pub mod rules;
pub mod run;
pub mod schema;
mod splice;
mod star_writer;
pub mod storage;
mod window;
pub mod writer;

pub use error::Error;
pub use lake::LocalLake;
pub use manifest::{Counts, Manifest, RunStatus};
pub use reason::Reason;
pub use rules::Channels;
pub use run::{Progress, RunOptions, RunOutcome, give_up, peak_rss_bytes, run, run_local};
pub use storage::{Lake, Source, StorageError, StorageErrorKind};
pub use writer::{Codec, ParquetOptions};
