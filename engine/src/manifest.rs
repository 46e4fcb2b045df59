//! The run manifest (`_runs/<run_id>.json`): written last, it is what commits a run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::writer::WrittenFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Succeeded,
    Failed,
}

/// Where the input came from; the run id is derived from `identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `file:///abs/path` or `s3://bucket/key`.
    pub uri: String,
    pub size_bytes: u64,
    /// The version stamp of the object: modification time (local) or ETag / version id (S3).
    pub version: String,
    pub gzip: bool,
}

/// Row counts of a run. Invariant: `rows_read = rows_written + exact_duplicates + quarantined`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub rows_read: u64,
    pub rows_written: u64,
    pub exact_duplicates: u64,
    pub quarantined: u64,
    /// Quarantined rows by reason code (including `key_conflict`).
    pub quarantined_by_reason: BTreeMap<String, u64>,
    /// Empty lines, skipped and not counted as rows.
    pub blank_lines: u64,
    pub distinct_clients: u64,
    pub distinct_products: u64,
}

impl Counts {
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub header_ms: f64,
    pub parse_ms: f64,
    pub dedup_ms: f64,
    pub assemble_ms: f64,
    pub encode_wait_ms: f64,
    pub encode_busy_ms: f64,
    pub splice_busy_ms: f64,
    pub encode_busy_quarantine_ms: f64,
    pub dimensions_ms: f64,
    pub publish_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub input_mb_per_s: f64,
    pub rows_per_s: f64,
}

/// The record of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub status: RunStatus,
    /// For a failed run: the error code and message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub source: SourceInfo,
    pub pa_date: String,
    /// RFC 3339, milliseconds, UTC.
    pub ingested_at: String,
    pub started_at: String,
    pub finished_at: String,
    pub engine_version: String,
    pub threads: usize,
    pub counts: Counts,
    pub nothing_lost: bool,
    /// Header columns that are not part of the contract (ignored).
    pub extra_columns: Vec<String>,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub outputs: Vec<WrittenFile>,
    pub timings: Timings,
    pub throughput: Throughput,
    /// Peak resident memory of the process when the run ended, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    pub dedup_keys: u64,
    /// Memory held by the dedup tables at the end of the run.
    pub dedup_heap_bytes: u64,
    pub options: serde_json::Value,
    /// Compute used, when the caller said what it was given (the Batch job and the Lambda do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostEstimate>,
}

/// The resources a run was given, to turn its wall time into billable units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostBasis {
    pub vcpus: f64,
    pub memory_gib: f64,
    /// Where the figures came from, e.g. `cgroup` or `lambda`.
    pub source: String,
}

/// Billable units of a run: what Fargate (vCPU-seconds, GB-seconds) and Lambda (GB-seconds)
/// charge for. Multiply by the region's prices to get money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    pub basis: CostBasis,
    pub wall_seconds: f64,
    pub vcpu_seconds: f64,
    pub gb_seconds: f64,
}

impl CostEstimate {
    pub fn new(basis: CostBasis, wall_seconds: f64) -> Self {
        CostEstimate {
            vcpu_seconds: basis.vcpus * wall_seconds,
            gb_seconds: basis.memory_gib * wall_seconds,
            wall_seconds,
            basis,
        }
    }
}
