//! What the handler needs from the outside world, as three small traits, so that it is tested
//! with fakes and run with the real S3, Batch and engine ([`crate::objects`],
//! [`crate::batch`], [`crate::engine`]).

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use duff_engine::RunStatus;

use crate::error::DispatchError;
use crate::ledger::Marker;

/// An object's current identity, from HeadObject.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    /// The inbox bucket.
    pub bucket: String,
    /// The object's key, decoded (as stored, not as events encode it).
    pub key: String,
    /// The object's size in bytes (compressed size for `.gz`); it routes the object and sizes
    /// its Batch job.
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    /// S3's LastModified: its UTC date is the `pa_date` the object is run or submitted with,
    /// whichever path dispatches it.
    pub last_modified: DateTime<Utc>,
    /// The engine's run id for exactly this version (`duff_engine::input::run_id_for` of the
    /// `SourceInfo` the S3 source reports), so "processed?" is one manifest lookup.
    pub run_id: String,
}

impl ObjectInfo {
    /// Whether the engine reads the object as gzip: its key ends in `.gz` (any case).
    pub fn gzip(&self) -> bool {
        self.key.to_ascii_lowercase().ends_with(".gz")
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// The key as stored (listings are never URL-encoded).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// S3's LastModified: the backfill's `from`/`to` window is on its UTC date.
    pub last_modified: DateTime<Utc>,
}

/// One page of a listing and the token for the next, if any.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListPage {
    /// The page's objects (S3 lists them in key order).
    pub objects: Vec<Listed>,
    /// The continuation token for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// The inbox (HeadObject, listing) and the lake (manifests, the dispatch ledger).
pub trait Objects: Send + Sync {
    /// The object's current version; with `etag`, a different current version is an
    /// `object_changed` error (the event is stale) and a missing object `storage_not_found`.
    fn head(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
    ) -> impl Future<Output = Result<ObjectInfo, DispatchError>> + Send;

    /// One page of the keys under `prefix` (and after `start_after`, when given), `page_size`
    /// at most (default: the store's).
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        page_size: Option<i32>,
        token: Option<String>,
    ) -> impl Future<Output = Result<ListPage, DispatchError>> + Send;

    /// The status of the run's committed manifest, if there is one.
    fn manifest_status(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<RunStatus>, DispatchError>> + Send;

    /// Creates the run's ledger marker unless one exists (atomic: of two concurrent creates
    /// one wins). Returns the existing marker when there was one.
    fn ledger_create(
        &self,
        marker: &Marker,
    ) -> impl Future<Output = Result<Option<Marker>, DispatchError>> + Send;

    /// The run's ledger marker, if there is one.
    fn ledger_get(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<Marker>, DispatchError>> + Send;

    /// Writes the marker whatever is there.
    fn ledger_put(&self, marker: &Marker)
    -> impl Future<Output = Result<(), DispatchError>> + Send;

    /// Removes the run's marker; removing a marker that is not there is not an error.
    fn ledger_delete(&self, run_id: &str)
    -> impl Future<Output = Result<(), DispatchError>> + Send;
}

/// A Batch job for one object; the job definition's command reads these parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRequest {
    /// The job's name, deterministic per run ([`crate::key::job_name`]).
    pub name: String,
    /// The input's bucket.
    pub bucket: String,
    /// The input's key, decoded.
    pub key: String,
    /// The version the dispatcher checked (no quotes): the job reads only that version and
    /// fails as `object_changed` if the object was replaced since.
    pub etag: String,
    /// The partition date to run with: the object's LastModified date (UTC).
    pub pa_date: NaiveDate,
    /// The object's size, and whether it is gzip: they size the job.
    pub size: u64,
    /// Whether the input is gzip (its key ends in `.gz`).
    pub gzip: bool,
}

/// What Batch answered to a SubmitJob.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmittedJob {
    /// Batch's id of the job: recorded in the run's ledger marker and asked about later.
    pub job_id: String,
    /// The job's name as Batch registered it.
    pub job_name: String,
}

/// Where a submitted job is, as far as its run's claim is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Queued, starting or running (Batch retries it within its own attempts).
    Active,
    /// `SUCCEEDED` or `FAILED`, with Batch's status and reason.
    Ended {
        /// `SUCCEEDED` or `FAILED`.
        status: String,
        /// Batch's status reason (empty when it gave none).
        reason: String,
    },
    /// Batch does not know the job (it forgets ended jobs after a few days).
    Unknown,
}

/// AWS Batch.
pub trait Jobs: Send + Sync {
    /// Submits one job and returns without waiting for it. The error says whether a later
    /// attempt may succeed (throttling, 5xx) or not (an unknown queue, access denied).
    fn submit(
        &self,
        job: &JobRequest,
    ) -> impl Future<Output = Result<SubmittedJob, DispatchError>> + Send;

    /// The state of a job submitted earlier (DescribeJobs).
    fn state(&self, job_id: &str) -> impl Future<Output = Result<JobState, DispatchError>> + Send;
}

/// What a run here did, in the terms the report needs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The run's id.
    pub run_id: String,
    /// The committed manifest's status: `Failed` is a rejected input, not an error.
    pub status: RunStatus,
    /// The manifest was already there (another invocation committed first).
    pub skipped: bool,
    /// Data rows read from the input (blank lines excluded).
    pub rows_read: u64,
    /// Rows written to the lake: `rows_read` less exact duplicates and quarantined rows.
    pub rows_written: u64,
    /// Rows quarantined, key conflicts included.
    pub quarantined: u64,
    /// For a failed run, the manifest's stable error code (`gave_up`, …).
    pub error_code: Option<String>,
    /// For a failed run, the manifest's error message.
    pub error: Option<String>,
}

impl RunSummary {
    /// The summary of a run the engine returned, from its manifest (the one committed now, or
    /// the one found already committed when it skipped).
    pub fn from_outcome(outcome: &duff_engine::RunOutcome) -> RunSummary {
        let m = outcome.manifest();
        RunSummary {
            run_id: m.run_id.clone(),
            status: m.status,
            skipped: matches!(outcome, duff_engine::RunOutcome::Skipped(_)),
            rows_read: m.counts.rows_read,
            rows_written: m.counts.rows_written,
            quarantined: m.counts.quarantined,
            error_code: m.error_code.clone(),
            error: m.error.clone(),
        }
    }
}

/// The engine, run here on one object. A file-level problem is not an error: the engine
/// commits a `failed` manifest and says so in the summary.
pub trait Engine: Send + Sync {
    /// Processes the object; with a `deadline`, stops early enough to hand it over
    /// (`duff_engine::Error::OutOfTime`, nothing committed) rather than be killed.
    fn run(
        &self,
        object: &ObjectInfo,
        pa_date: NaiveDate,
        deadline: Option<std::time::SystemTime>,
    ) -> impl Future<Output = Result<RunSummary, DispatchError>> + Send;

    /// Commits the object's run as `failed` (`gave_up`) without reading it: `attempts`
    /// attempts ended without a result (`duff_engine::give_up`).
    fn give_up(
        &self,
        object: &ObjectInfo,
        pa_date: NaiveDate,
        attempts: u32,
    ) -> impl Future<Output = Result<RunSummary, DispatchError>> + Send;
}
