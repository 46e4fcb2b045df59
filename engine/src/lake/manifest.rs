//! The run manifest (`_runs/<run_id>.json`): written last, it is what commits a run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a run ended: `"succeeded"` or `"failed"` in the manifest and the `runs` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// The input was read to the end and its files published; its bad rows, if any, are in
    /// `quarantine/` and counted in [`Counts`].
    Succeeded,
    /// A file-level error rejected the input as a whole ([`Manifest::error_code`] says which):
    /// none of its rows were published, and retrying the same input gives the same result.
    Failed,
}

/// Where the input came from; the run id is derived from `identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `file:///abs/path` or `s3://bucket/key`.
    pub uri: String,
    /// Size of the input as stored, in bytes (compressed, for a gzip input). Part of the run's
    /// identity.
    pub size_bytes: u64,
    /// The version stamp of the object: modification time (local) or ETag / version id (S3).
    pub version: String,
    /// Whether the input was read as a gzip stream (its name ends in `.gz`, in any case).
    pub gzip: bool,
}

/// Row counts of a run. Invariant: `rows_read = rows_written + exact_duplicates + quarantined`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Data records read after the header, good and bad; blank lines are not records.
    pub rows_read: u64,
    /// Rows written to `orders` (and, the same rows, to `fact_orders`): the first occurrence of
    /// each `(order_id, product_id)` key among the rows that passed every rule.
    pub rows_written: u64,
    /// Valid rows dropped because an earlier row of the file has the same key and the same
    /// content; they are not quarantined.
    pub exact_duplicates: u64,
    /// Rows written to `quarantine/` with a reason, key conflicts included.
    pub quarantined: u64,
    /// Quarantined rows by reason code (including `key_conflict`).
    pub quarantined_by_reason: BTreeMap<String, u64>,
    /// Empty lines, skipped and not counted as rows.
    pub blank_lines: u64,
    /// Distinct `client_id`s among the rows written: the run's rows of `dim_clients`.
    pub distinct_clients: u64,
    /// Distinct `product_id`s among the rows written: the run's rows of `dim_products`.
    pub distinct_products: u64,
}

impl Counts {
    /// Whether every row read is accounted for: written, dropped as an exact duplicate or
    /// quarantined, and the quarantined ones add up over their reasons.
    pub fn nothing_lost(&self) -> bool {
        self.rows_read == self.rows_written + self.exact_duplicates + self.quarantined
            && self.quarantined == self.quarantined_by_reason.values().sum::<u64>()
    }
}

/// Wall-clock milliseconds per stage. Windows go through a pipeline: while one is parsed, the
/// one before is deduplicated and assembled and the one before that encoded, so stages overlap
/// and do not add up to `total`. Per window, `parse_ms` runs from the step's start until its
/// last range is parsed; `dedup_ms` and `assemble_ms` are the window's dedup and assembly;
/// `encode_wait_ms` is how long the step went on after both were done, encoding the earlier
/// window's rows. `*_busy_ms` is time spent working, summed over threads: `encode_busy_ms`
/// encoding orders and fact_orders, `splice_busy_ms` the thread writing their encoded row
/// groups into files, `encode_busy_quarantine_ms` the quarantine's writer.
///
/// A failed run records only `total_ms`; the others stay 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Reading and checking the header, and starting the run's writers.
    pub header_ms: f64,
    /// Parsing the windows' ranges, summed over windows.
    pub parse_ms: f64,
    /// Judging the rows' keys in the dedup tables, summed over windows.
    pub dedup_ms: f64,
    /// Building the Arrow batches and the quarantine rows, summed over windows.
    pub assemble_ms: f64,
    /// How long each step went on, once its parsing and assembly were done, encoding an
    /// earlier window's rows, summed over windows: high when encoding is the bottleneck.
    pub encode_wait_ms: f64,
    /// Time spent encoding orders and fact_orders, summed over the threads that did it.
    pub encode_busy_ms: f64,
    /// Time the splicing thread spent writing the encoded row groups into their files.
    pub splice_busy_ms: f64,
    /// Time the quarantine's writer thread spent encoding and writing.
    pub encode_busy_quarantine_ms: f64,
    /// Sorting the dimensions' members and writing their tables, beside the encoding of the
    /// last window.
    pub dimensions_ms: f64,
    /// Making the staged files visible under their final names (renames, or S3 multipart
    /// completions), before the commit.
    pub publish_ms: f64,
    /// The whole run, from its start until its manifest was complete (before the commit).
    pub total_ms: f64,
}

/// How fast a succeeded run went, over its wall time up to publication (about `total_ms`); 0
/// for a failed run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Input megabytes (10^6 bytes) per second, counting the decompressed bytes of a gzip input.
    pub input_mb_per_s: f64,
    /// Rows read per second.
    pub rows_per_s: f64,
}

/// The record of one run.
///
/// A plain lake stores it as one line of JSON in `_runs/<run_id>.json`; a Delta lake as the
/// `manifest` column of the run's row in its `runs` table, whose other columns repeat the
/// fields reports read (identity, status, times, counts, bytes). A failed run's manifest has no outputs, and its
/// counts are zero unless it failed on them (`too_many_bad_rows`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The run's id: a hash of the input's identity ([`SourceInfo`]), the same for every
    /// attempt of the same object version; it names the run's files.
    pub run_id: String,
    /// Whether the run succeeded or was rejected.
    pub status: RunStatus,
    /// For a failed run: the stable code of the file-level error ([`crate::Error::code`]), e.g.
    /// `missing_columns`; absent when the run succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// For a failed run: the error's message, for people; absent when the run succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The input the run read, whose identity fixes `run_id`.
    pub source: SourceInfo,
    /// The partition date (`YYYY-MM-DD`) the run's files were written under (`pa_date=…`):
    /// by default the input's upload (modification) date, UTC; an earlier attempt's date wins
    /// once it has committed a table.
    pub pa_date: String,
    /// The ingestion time stamped on every row the run wrote (their `ingested_at` column): by
    /// default the input's upload (modification) time, so every attempt writes the same bytes.
    /// RFC 3339, milliseconds, UTC.
    pub ingested_at: String,
    /// When this attempt started (RFC 3339, milliseconds, UTC).
    pub started_at: String,
    /// When this attempt's manifest was completed, just before the commit (RFC 3339,
    /// milliseconds, UTC).
    pub finished_at: String,
    /// Version of the `duff-engine` crate that ran it.
    pub engine_version: String,
    /// Worker threads of the run's pool (as asked, or one per core).
    pub threads: usize,
    /// The run's row counts.
    pub counts: Counts,
    /// [`Counts::nothing_lost`] at the end of the run: every row read is accounted for.
    pub nothing_lost: bool,
    /// Header columns that are not part of the contract (ignored).
    pub extra_columns: Vec<String>,
    /// Size of the input as stored, in bytes (compressed, for a gzip input).
    pub input_bytes: u64,
    /// Bytes of every file the run published, the sum of `outputs`; 0 for a failed run.
    pub output_bytes: u64,
    /// The files the run published, all tables; empty for a failed run.
    pub outputs: Vec<WrittenFile>,
    /// Where the run's time went.
    pub timings: Timings,
    /// How fast the run went.
    pub throughput: Throughput,
    /// Peak resident memory of the process when the run ended, in bytes; absent for a failed
    /// run and where it cannot be read (it comes from Linux's `/proc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Distinct `(order_id, product_id)` keys held by the dedup tables at the end of the run;
    /// 0 for a failed run.
    pub dedup_keys: u64,
    /// Memory held by the dedup tables at the end of the run (the keys of the ordered lists, the
    /// buckets of the hash tables), in bytes; 0 for a failed run.
    pub dedup_heap_bytes: u64,
    /// The run options that shape its output (range and record sizes, channels, bad-row
    /// limits, gzip ratio, Parquet settings), as JSON.
    pub options: serde_json::Value,
    /// Compute used, when the caller said what it was given (the Batch job and the Lambda do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostEstimate>,
}

/// The resources a run was given, to turn its wall time into billable units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostBasis {
    /// Virtual CPUs available to the run.
    pub vcpus: f64,
    /// Memory available to the run, in GiB.
    pub memory_gib: f64,
    /// Where the figures came from, e.g. `cgroup` or `lambda`.
    pub source: String,
}

/// Billable units of a run: what Fargate (vCPU-seconds, GB-seconds) and Lambda (GB-seconds)
/// charge for. Multiply by the region's prices to get money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    /// The resources the units were computed from.
    pub basis: CostBasis,
    /// The run's wall time, in seconds: the span of `total_ms`.
    pub wall_seconds: f64,
    /// `vcpus × wall_seconds`.
    pub vcpu_seconds: f64,
    /// `memory_gib × wall_seconds`.
    pub gb_seconds: f64,
}

impl CostEstimate {
    /// The units of a run that held `basis` for `wall_seconds`.
    pub fn new(basis: CostBasis, wall_seconds: f64) -> Self {
        CostEstimate {
            vcpu_seconds: basis.vcpus * wall_seconds,
            gb_seconds: basis.memory_gib * wall_seconds,
            wall_seconds,
            basis,
        }
    }
}

/// A file written for a run, relative to the lake root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WrittenFile {
    /// The table the file belongs to, e.g. `orders` or `dim_clients`.
    pub table: String,
    /// Where the file is, relative to the lake root, e.g.
    /// `orders/pa_date=2024-01-31/<run_id>-0.parquet` (a Delta lake adds an attempt suffix to
    /// the run id).
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size of the file, in bytes.
    pub bytes: u64,
}
