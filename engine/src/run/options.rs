//! What a run may be asked to do differently, and which of it the manifest records.

use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::error::Error;
use crate::lake::manifest::CostBasis;
use crate::parse::rules::Channels;
use crate::writer::ParquetOptions;

/// How a run behaves. `Default` is what `duff run` uses.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Bytes per parallel parse range.
    pub chunk_bytes: usize,
    /// Longest accepted record. A longer multi-line record is treated as a broken quote; a single
    /// longer line fails the file.
    pub max_record_bytes: usize,
    /// The accepted point-of-sale channels; a row with any other is quarantined
    /// (`unknown_channel`). Default: Retail, Online, B2B.
    pub channels: Channels,
    /// Partition date; default: the input's modification (upload) date, UTC.
    pub pa_date: Option<NaiveDate>,
    /// Ingestion timestamp stamped on every row; default: when the input was uploaded (S3
    /// LastModified, or the local file's modification time), so every attempt of a run writes
    /// the same bytes and a later upload of an order line supersedes an earlier one.
    pub ingested_at: Option<DateTime<Utc>>,
    /// How the tables are laid out in Parquet (codec, row groups, part file size, encoder).
    pub parquet: ParquetOptions,
    /// The run fails when more than this fraction of its rows is quarantined, once at least
    /// [`RunOptions::min_bad_rows`] are: the rule catches systematically broken files (a
    /// shifted column, a wrong delimiter), not a small file with a few bad rows.
    pub max_bad_fraction: f64,
    /// Quarantined rows below which no share of bad rows fails a run.
    pub min_bad_rows: u64,
    /// A gzip input fails (`gzip_expansion`) once it decompresses to more than this many times
    /// its compressed size, or [`RunOptions::gzip_allowance_bytes`] if that is more: a gzip
    /// bomb is a clear error, not hours of work. Exports compress 5–15×.
    pub max_gzip_ratio: u64,
    /// Decompressed bytes every gzip input may reach whatever its ratio (small files of
    /// repeated rows compress far better than exports).
    pub gzip_allowance_bytes: u64,
    /// Reprocess even when the run's manifest exists.
    pub force: bool,
    /// Resources the run was given; when set, the manifest carries a cost estimate.
    pub cost_basis: Option<CostBasis>,
    /// A window that would start after this instant stops the run instead (`out_of_time`,
    /// nothing committed): a caller with a deadline (the dispatcher's Lambda) hands the input
    /// over rather than being killed mid-run.
    pub stop_at: Option<Instant>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: 0,
            chunk_bytes: 4 << 20,
            max_record_bytes: 1 << 20,
            channels: Channels::default(),
            pa_date: None,
            ingested_at: None,
            parquet: ParquetOptions::default(),
            max_bad_fraction: 0.1,
            min_bad_rows: 100,
            max_gzip_ratio: 100,
            gzip_allowance_bytes: 64 << 20,
            force: false,
            cost_basis: None,
            stop_at: None,
        }
    }
}

impl RunOptions {
    pub(super) fn validate(&self) -> Result<(), Error> {
        if self.chunk_bytes == 0 {
            return Err(Error::Config("chunk_bytes must be > 0".into()));
        }
        // Field offsets within a record are 32-bit.
        if !(64..=1 << 30).contains(&self.max_record_bytes) {
            return Err(Error::Config(
                "max_record_bytes must be between 64 and 1 GiB".into(),
            ));
        }
        if self.max_gzip_ratio == 0 {
            return Err(Error::Config("max_gzip_ratio must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&self.max_bad_fraction) {
            return Err(Error::Config(
                "max_bad_fraction must be between 0 and 1".into(),
            ));
        }
        let p = &self.parquet;
        if p.batch_rows == 0 || p.row_group_rows == 0 || p.row_group_bytes == 0 {
            return Err(Error::Config(
                "batch_rows, row_group_rows and row_group_bytes must be > 0".into(),
            ));
        }
        Ok(())
    }

    /// Whether `quarantined` bad rows of `read` fail the run.
    pub fn too_many_bad_rows(&self, quarantined: u64, read: u64) -> bool {
        quarantined >= self.min_bad_rows && quarantined as f64 > self.max_bad_fraction * read as f64
    }

    /// Whether a file with these final counts fails whole for its bad rows.
    pub(super) fn rejects(&self, counts: &crate::lake::manifest::Counts) -> bool {
        counts.rows_read > 0 && self.too_many_bad_rows(counts.quarantined, counts.rows_read)
    }

    pub(super) fn effective_threads(&self) -> usize {
        if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.threads
        }
    }

    /// Window size: two ranges per thread (at least four ranges). Three windows are in flight
    /// at once (one parsed, one assembled, one encoded), so memory grows with the window; the
    /// three stages keep the threads busy, so more ranges per window do not make a run faster.
    pub(super) fn window_bytes(&self, threads: usize) -> usize {
        self.chunk_bytes
            .saturating_mul((threads * 2).max(4))
            .max(self.max_record_bytes * 2)
    }
}

/// The options a manifest records: those that shape the run's output.
pub(super) fn recorded_options(o: &RunOptions) -> serde_json::Value {
    #[derive(Serialize)]
    struct Recorded<'a> {
        chunk_bytes: usize,
        max_record_bytes: usize,
        channels: Vec<String>,
        max_bad_fraction: f64,
        min_bad_rows: u64,
        max_gzip_ratio: u64,
        parquet: &'a ParquetOptions,
    }
    serde_json::to_value(Recorded {
        chunk_bytes: o.chunk_bytes,
        max_record_bytes: o.max_record_bytes,
        channels: o.channels.names(),
        max_bad_fraction: o.max_bad_fraction,
        min_bad_rows: o.min_bad_rows,
        max_gzip_ratio: o.max_gzip_ratio,
        parquet: &o.parquet,
    })
    .expect("options serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_of_bad_rows_fails_a_run_only_past_the_minimum_count() {
        let options = RunOptions::default();
        // A small file's few bad rows: its good rows land.
        assert!(!options.too_many_bad_rows(1, 7));
        assert!(!options.too_many_bad_rows(2, 10));
        assert!(!options.too_many_bad_rows(99, 99));
        // A systematically broken file.
        assert!(options.too_many_bad_rows(100, 100));
        assert!(options.too_many_bad_rows(101, 1000));
        assert!(!options.too_many_bad_rows(100, 1000));
        assert!(!options.too_many_bad_rows(1000, 1_000_000));
        // Without a minimum, the fraction alone decides.
        let strict = RunOptions {
            min_bad_rows: 0,
            ..RunOptions::default()
        };
        assert!(strict.too_many_bad_rows(1, 7));
        assert!(!strict.too_many_bad_rows(1, 10));
        assert!(!strict.too_many_bad_rows(0, 0));
    }

    #[test]
    fn options_that_cannot_run_are_refused() {
        assert!(RunOptions::default().validate().is_ok());
        let with = |parquet: ParquetOptions| RunOptions {
            parquet,
            ..RunOptions::default()
        };
        for bad in [
            RunOptions {
                chunk_bytes: 0,
                ..RunOptions::default()
            },
            RunOptions {
                max_bad_fraction: 1.5,
                ..RunOptions::default()
            },
            with(ParquetOptions {
                batch_rows: 0,
                ..ParquetOptions::default()
            }),
            with(ParquetOptions {
                row_group_rows: 0,
                ..ParquetOptions::default()
            }),
            with(ParquetOptions {
                row_group_bytes: 0,
                ..ParquetOptions::default()
            }),
        ] {
            assert!(matches!(bad.validate(), Err(Error::Config(_))), "{bad:?}");
        }
    }
}
