//! Deterministic generator of realistic Duff order CSV files, with dirt on
//! demand and an expected-counts sidecar ([`Expected`]) that says exactly
//! what a correct engine must report for the bytes written.
//!
//! ```
//! use duff_datagen::{Dirt, GenConfig, Size, generate};
//!
//! let cfg = GenConfig { size: Size::Rows(1_000), dirt: Dirt::typical(), ..GenConfig::default() };
//! let mut csv = Vec::new();
//! let expected = generate(&cfg, &mut csv).unwrap();
//! assert_eq!(expected.rows, 1_000);
//! assert_eq!(expected.rows, expected.kept + expected.exact_duplicates + expected.quarantined);
//! assert_eq!(expected.bytes, csv.len() as u64);
//! ```
//!
//! # Output
//! A header with the [`CANONICAL_COLUMNS`] (optionally shuffled, noisy, or
//! with [`EXTRA_COLUMNS`]), then RFC 4180 records. Orders have 1..=6 lines
//! with distinct products; clients and products are Zipf-skewed and each id
//! always renders the same name/description/price/volume bytes. Client names
//! include commas (~10%), embedded newlines (~1%) and `""` escapes (~1%).
//!
//! # Dirty rows
//! Each bad row fails exactly one rule, is a single physical line, and has a
//! fresh order id. With a comma-separated canonical layout they look like:
//!
//! | reason | what differs from a valid row |
//! |---|---|
//! | `field_count` | one column dropped (never order_id) or one extra field `x`/`1`/`extra` appended; no `"` in the row |
//! | `invalid_utf8` | unquoted plain client_name with one of `FF`, `FE`, `80`, `C3`, `E2 82` inserted mid-name |
//! | `bad_quoting` | unquoted description like `Duff 15" Lager 355ml can`; no other `"` in the row |
//! | `unterminated_quote` | last row only: client_name is `"Moe's Tavern` with no closing quote and no line end |
//! | `invalid_client_id`, `invalid_product_id` | `abc`, `0`, `-5`, `12x`, `1.5`, `99999999999999999999`, empty |
//! | `invalid_order_id` | the fresh id spelled `1000123x`, `-1000123`, `1000123.5`, `abc1000123` or `90000000000001000123` |
//! | `empty_client_name`, `empty_product_description` | empty, ` `, `   `, `""`, `" "` |
//! | `invalid_product_price` | `-1.00`, `12.34567`, `abc`, `1e3`, empty, `123456789012345678.5` |
//! | `invalid_product_ccf` | `0`, `-3`, `2.5`, empty |
//! | `invalid_product_volume` | `0`, `0.0`, `-0.5`, `1.23456` |
//! | `unknown_channel` | `Wholesale`, `Mail`, empty |
//! | `unknown_status` | `shipped`, `lost`, empty |
//! | `total_overflow` | price `9999999999.99` with ccf `1000000` |
//! | `key_conflict` | key of an earlier valid row, other status or ccf, otherwise valid |
//!
//! Exact duplicates copy the raw bytes (line end included) of an earlier
//! first-occurrence valid row of the same 64K-row block.
//!
//! # Speed
//! Blocks of 64K rows are generated in parallel on the current rayon pool
//! and written in order; the output is byte-identical for any thread count.
//! On the 2-core dev machine a release build writes ~1.7 GB/s into
//! `io::sink()` with 2 threads (~1 GB/s with 1); measure with
//! `cargo run --release -p duff-datagen --example speed [MB] [threads]`.
//! Deliberately not a test: timings on shared machines are too noisy.

mod block;
mod catalog;
mod config;
mod dirt;
mod error;
mod expected;
mod names;
mod pipeline;
mod redeliver;
mod rng;
mod row;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub use config::{Dirt, GenConfig, Reason, Size};
pub use error::Error;
pub use expected::Expected;
pub use redeliver::{Redelivered, redeliver};
pub use row::{CANONICAL_COLUMNS, EXTRA_COLUMNS};

/// Writes one CSV file described by `cfg` to `out` and returns its exact
/// expected counts. Runs on the current rayon pool (use
/// `ThreadPool::install` to choose the thread count).
pub fn generate<W: Write>(cfg: &GenConfig, mut out: W) -> Result<Expected, Error> {
    pipeline::run(cfg, &mut out)
}

/// Where [`generate_to_path`] puts the sidecar: `<csv path>.expected.json`.
pub fn sidecar_path(csv: &Path) -> PathBuf {
    let mut name = csv.as_os_str().to_owned();
    name.push(".expected.json");
    PathBuf::from(name)
}

/// Generates into the file `csv` and writes the [`Expected`] JSON sidecar
/// next to it ([`sidecar_path`]).
pub fn generate_to_path(cfg: &GenConfig, csv: &Path) -> Result<Expected, Error> {
    let out = BufWriter::with_capacity(1 << 20, File::create(csv)?);
    let expected = generate(cfg, out)?;
    std::fs::write(sidecar_path(csv), expected.to_json())?;
    Ok(expected)
}
