//! The manifest a run commits: begun with what is known before the input is read, then
//! finished as succeeded (with what was written) or as failed (with the file-level error).

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use super::context::Processed;
use super::options::{RunOptions, recorded_options};
use crate::error::Error;
use crate::lake::manifest::{
    CostBasis, CostEstimate, Counts, Manifest, RunStatus, SourceInfo, Throughput, Timings,
};

/// A run's manifest under construction.
pub(super) struct Record {
    manifest: Manifest,
    clock: Instant,
    cost_basis: Option<CostBasis>,
}

/// What identifies an attempt in its manifest.
pub(super) struct Identity<'a> {
    pub(super) run_id: &'a str,
    pub(super) source: &'a SourceInfo,
    pub(super) pa_date: NaiveDate,
    pub(super) ingested_at: DateTime<Utc>,
    pub(super) started_at: DateTime<Utc>,
    pub(super) threads: usize,
}

impl Record {
    /// A manifest with the attempt's identity and options, and nothing done yet; `clock`
    /// started with the run.
    pub(super) fn begin(id: Identity<'_>, options: &RunOptions, clock: Instant) -> Self {
        let manifest = Manifest {
            run_id: id.run_id.to_string(),
            status: RunStatus::Succeeded,
            error_code: None,
            error: None,
            source: id.source.clone(),
            pa_date: id.pa_date.to_string(),
            ingested_at: rfc3339(id.ingested_at),
            started_at: rfc3339(id.started_at),
            finished_at: String::new(),
            engine_version: env!("CARGO_PKG_VERSION").to_string(),
            threads: id.threads,
            counts: Counts::default(),
            nothing_lost: false,
            extra_columns: Vec::new(),
            input_bytes: id.source.size_bytes,
            output_bytes: 0,
            outputs: Vec::new(),
            timings: Timings::default(),
            throughput: Throughput::default(),
            peak_rss_bytes: None,
            dedup_keys: 0,
            dedup_heap_bytes: 0,
            options: recorded_options(options),
            cost: None,
        };
        Record {
            manifest,
            clock,
            cost_basis: options.cost_basis.clone(),
        }
    }

    /// Keeps the counts of a run that is about to fail on them (too many bad rows).
    pub(super) fn count(&mut self, counts: &Counts) {
        self.manifest.counts = counts.clone();
    }

    /// The manifest of a run whose files were published after `publish`.
    pub(super) fn succeeded(mut self, p: Processed, publish: Duration) -> Manifest {
        let m = &mut self.manifest;
        let secs = self.clock.elapsed().as_secs_f64().max(1e-9);
        m.throughput = Throughput {
            input_mb_per_s: p.bytes_processed as f64 / 1e6 / secs,
            rows_per_s: p.counts.rows_read as f64 / secs,
        };
        m.nothing_lost = p.counts.nothing_lost();
        m.counts = p.counts;
        m.extra_columns = p.extra_columns;
        m.output_bytes = p.outputs.iter().map(|f| f.bytes).sum();
        m.outputs = p.outputs;
        m.timings = p.timings;
        m.timings.publish_ms = ms(publish);
        m.dedup_keys = p.dedup_keys;
        m.dedup_heap_bytes = p.dedup_heap_bytes;
        m.peak_rss_bytes = peak_rss_bytes();
        self.close()
    }

    /// The manifest of a run that failed on the file-level error `e`.
    pub(super) fn failed(mut self, e: &Error) -> Manifest {
        let m = &mut self.manifest;
        m.status = RunStatus::Failed;
        m.error_code = Some(e.code().to_string());
        m.error = Some(e.to_string());
        m.nothing_lost = m.counts.nothing_lost();
        self.close()
    }

    /// Stamps the end: total time, cost, finish time.
    fn close(mut self) -> Manifest {
        let elapsed = self.clock.elapsed();
        let m = &mut self.manifest;
        m.timings.total_ms = ms(elapsed);
        m.cost = self
            .cost_basis
            .map(|b| CostEstimate::new(b, elapsed.as_secs_f64()));
        m.finished_at = rfc3339(Utc::now());
        self.manifest
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Milliseconds, to the microsecond.
pub(super) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Peak resident set size of this process (Linux), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
