//! Validation without a lake: split, parse and validate (and optionally deduplicate) an
//! in-memory CSV and count what a run would find, writing nothing. It calls the same stages as
//! [`crate::run()`] (`parse`, `dedup`) on one window; benchmarks and callers that only need
//! validation use it.

use crate::dedup::Deduper;
use crate::error::Error;
use crate::parse::header::read_header;
use crate::parse::range::ParseCtx;
use crate::parse::rules::Channels;
use crate::parse::window::parse_window;

/// Options of [`decode_bytes`].
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// The accepted point-of-sale channels, as in [`crate::RunOptions::channels`].
    pub channels: Channels,
    /// Bytes per parallel parse range.
    pub chunk_bytes: usize,
    /// Longest accepted record, in bytes; a single longer line fails with
    /// [`Error::LineTooLong`].
    pub max_record_bytes: usize,
    /// Also judge duplicates (sharded hash tables), as a run does.
    pub dedup: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            channels: Channels::default(),
            chunk_bytes: 4 << 20,
            max_record_bytes: 1 << 20,
            dedup: true,
        }
    }
}

/// What [`decode_bytes`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeSummary {
    /// Data records (blank lines excluded).
    pub rows: u64,
    /// Rows that passed every row rule.
    pub valid: u64,
    /// Rows quarantined by a row rule (before dedup).
    pub invalid: u64,
    /// With `dedup`: valid rows that repeat an earlier row exactly (a run drops them); 0
    /// without.
    pub exact_duplicates: u64,
    /// With `dedup`: valid rows with the key of an earlier row but other content (a run
    /// quarantines them as `key_conflict`); 0 without.
    pub key_conflicts: u64,
}

/// Decodes a whole CSV held in memory (header included) on the current rayon pool.
///
/// ```
/// use duff_engine::decode::{DecodeOptions, decode_bytes};
///
/// let csv = b"client_id,client_name,order_id,product_id,product_description,product_price,\
/// product_ccf,product_volume,point_of_sale_channel,status\n\
/// 1,Moe,10,100,Duff,1.50,2,0.5,Retail,created\n\
/// 1,Moe,10,100,Duff,1.5,2,0.50,retail,created\n\
/// 2,Barney,11,100,Duff,abc,1,0.5,Online,delivered\n";
/// let s = decode_bytes(csv, &DecodeOptions::default())?;
/// assert_eq!((s.rows, s.valid, s.invalid, s.exact_duplicates), (3, 2, 1, 1));
/// # Ok::<(), duff_engine::Error>(())
/// ```
pub fn decode_bytes(data: &[u8], options: &DecodeOptions) -> Result<DecodeSummary, Error> {
    let header = read_header(data, true, options.max_record_bytes)?;
    let ctx = ParseCtx {
        header: &header.map,
        channels: &options.channels,
        max_record: options.max_record_bytes,
    };
    let parsed = parse_window(
        &ctx,
        data,
        header.data_start.min(data.len()),
        true,
        options.chunk_bytes,
    );
    let mut summary = DecodeSummary::default();
    let (first_lines, _) = parsed.first_lines(header.first_data_line, options.max_record_bytes)?;
    for r in &parsed.ranges {
        summary.rows += r.records;
        summary.valid += r.valid.len() as u64;
        summary.invalid += r.bad.len() as u64;
    }
    if options.dedup {
        let mut deduper = Deduper::new();
        let keys: Vec<_> = parsed.ranges.iter().map(|r| &r.valid.keys).collect();
        for (_, verdict) in deduper.judge(&keys, &first_lines).into_iter().flatten() {
            match verdict {
                crate::dedup::Verdict::Duplicate => summary.exact_duplicates += 1,
                crate::dedup::Verdict::Conflict { .. } => summary.key_conflicts += 1,
            }
        }
    }
    Ok(summary)
}
