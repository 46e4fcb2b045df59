//! The low-level decoder under [`crate::run_local`]: split, parse and validate (and optionally
//! deduplicate) an in-memory CSV without writing anything. The run uses the same pieces; this entry
//! point exists for benchmarks and for callers that only need validation.

use crate::chunk::ParseCtx;
use crate::dedup::Deduper;
use crate::error::Error;
use crate::rules::Channels;
use crate::run::read_header;
use crate::window::parse_window;

/// Options of [`decode_bytes`].
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    pub channels: Channels,
    /// Bytes per parallel parse range.
    pub chunk_bytes: usize,
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
    /// With `dedup`: exact duplicates among the valid rows, and key conflicts.
    pub exact_duplicates: u64,
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
        let valid: Vec<_> = parsed.ranges.iter().map(|r| &r.valid).collect();
        for (_, verdict) in deduper.judge(&valid, &first_lines).into_iter().flatten() {
            match verdict {
                crate::dedup::Verdict::Duplicate => summary.exact_duplicates += 1,
                crate::dedup::Verdict::Conflict { .. } => summary.key_conflicts += 1,
            }
        }
    }
    Ok(summary)
}
