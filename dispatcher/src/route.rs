//! Where an object is processed: here (inside the Lambda) or by an AWS Batch job.
//!
//! Here only when it is small (below the size threshold) *and* the invocation has comfortably
//! more time left than the work is estimated to take. The estimate is deliberately pessimistic:
//! [`PLAIN_BYTES_PER_SEC`] = 25 MB/s is a fraction of what the engine does on one core for the
//! whole job (`docs/aws.md`, "Cost", has the current figure), to cover a slower Lambda core, S3
//! reads and writes and a busy region. A gzip input expands: we assume
//! [`GZIP_EXPANSION`] = 8× more bytes to parse than to read. Fixed costs (HeadObject, the
//! manifest check, staging, the commit) are [`OVERHEAD`]. The work must fit twice into the
//! time left, after keeping [`RESERVE`] to report back: a wrong guess costs a Batch job, a
//! timeout would cost a whole retry of the SQS batch.

use std::time::{Duration, SystemTime};

/// Conservative throughput of the engine inside the Lambda, plain CSV (bytes per second).
pub const PLAIN_BYTES_PER_SEC: f64 = 25e6;
/// Assumed decompressed-to-compressed size ratio of a `.csv.gz` input.
pub const GZIP_EXPANSION: f64 = 8.0;
/// Fixed cost of one run (requests, staging, commit).
pub const OVERHEAD: Duration = Duration::from_secs(3);
/// Time always kept to finish the invocation and report.
pub const RESERVE: Duration = Duration::from_secs(5);

/// The decision for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Run the engine in this process.
    Here,
    /// Submit a Batch job, for this reason.
    Batch(BatchReason),
    /// Big, but no Batch queue is configured (local use): run it here anyway.
    HereWithoutBatch(BatchReason),
}

/// Why an object goes to Batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchReason {
    /// Its size is at or above the configured threshold.
    AtOrAboveThreshold,
    /// The invocation has too little time left for it ([`time_suffices`]), or a run here
    /// stopped before the deadline.
    NotEnoughTime,
    /// An earlier attempt inside the Lambda ended without a result (memory, timeout).
    EarlierAttemptDied,
}

impl BatchReason {
    /// A phrase for reports and logs (`size at or above the threshold`, …).
    pub fn describe(self) -> &'static str {
        match self {
            BatchReason::AtOrAboveThreshold => "size at or above the threshold",
            BatchReason::NotEnoughTime => "not enough time left in this invocation",
            BatchReason::EarlierAttemptDied => {
                "an earlier attempt in the Lambda ended without a result (memory or time)"
            }
        }
    }
}

/// Estimated time for the engine to process `size` bytes here.
pub fn estimate(size: u64, gzip: bool) -> Duration {
    let work = size as f64 * if gzip { GZIP_EXPANSION } else { 1.0 };
    OVERHEAD + Duration::from_secs_f64(work / PLAIN_BYTES_PER_SEC)
}

/// Whether `remaining` leaves room for the work: twice the estimate plus the reserve.
pub fn time_suffices(size: u64, gzip: bool, remaining: Duration) -> bool {
    remaining >= estimate(size, gzip) * 2 + RESERVE
}

/// Routes an object of `size` bytes. `deadline` is the invocation's (none locally).
pub fn route(
    size: u64,
    gzip: bool,
    threshold: u64,
    deadline: Option<SystemTime>,
    batch_configured: bool,
) -> Route {
    let reason = if size >= threshold {
        Some(BatchReason::AtOrAboveThreshold)
    } else {
        deadline
            .map(|d| d.duration_since(SystemTime::now()).unwrap_or_default())
            .filter(|left| !time_suffices(size, gzip, *left))
            .map(|_| BatchReason::NotEnoughTime)
    };
    match (reason, batch_configured) {
        (None, _) => Route::Here,
        (Some(r), true) => Route::Batch(r),
        (Some(r), false) => Route::HereWithoutBatch(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const T: u64 = 100 * MIB;

    fn in_secs(s: u64) -> Option<SystemTime> {
        Some(SystemTime::now() + Duration::from_secs(s))
    }

    #[test]
    fn small_objects_with_time_left_run_here() {
        assert_eq!(route(10 * MIB, false, T, in_secs(300), true), Route::Here);
        assert_eq!(route(T - 1, false, T, in_secs(300), true), Route::Here);
        // No deadline (local use): only the size counts.
        assert_eq!(route(T - 1, true, T, None, true), Route::Here);
    }

    #[test]
    fn the_threshold_is_inclusive_for_batch() {
        assert_eq!(
            route(T, false, T, in_secs(900), true),
            Route::Batch(BatchReason::AtOrAboveThreshold)
        );
        assert_eq!(
            route(5 * T, false, T, None, false),
            Route::HereWithoutBatch(BatchReason::AtOrAboveThreshold)
        );
    }

    #[test]
    fn short_remaining_time_sends_small_objects_to_batch() {
        // 99 MiB plain: 3 s + 4.2 s estimated, needs 2 × 7.2 + 5 ≈ 19.4 s.
        let size = 99 * MIB;
        assert_eq!(route(size, false, T, in_secs(25), true), Route::Here);
        assert_eq!(
            route(size, false, T, in_secs(15), true),
            Route::Batch(BatchReason::NotEnoughTime)
        );
        // The same bytes gzipped are ~8× the work: 25 s is not enough.
        assert_eq!(
            route(size, true, T, in_secs(25), true),
            Route::Batch(BatchReason::NotEnoughTime)
        );
        // A deadline already passed.
        let past = Some(SystemTime::now() - Duration::from_secs(1));
        assert_eq!(
            route(1, false, T, past, true),
            Route::Batch(BatchReason::NotEnoughTime)
        );
    }

    #[test]
    fn estimates_grow_with_size_and_compression() {
        assert_eq!(estimate(0, false), OVERHEAD);
        let plain = estimate(100 * MIB, false);
        let gz = estimate(100 * MIB, true);
        assert!(
            plain > Duration::from_secs(7) && plain < Duration::from_secs(8),
            "{plain:?}"
        );
        assert!(gz > plain * 4);
    }
}
