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
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    pub last_modified: DateTime<Utc>,
    /// The engine's run id for exactly this version (`duff_engine::input::run_id_for` of the
    /// `SourceInfo` the S3 source reports), so "processed?" is one manifest lookup.
    pub run_id: String,
}

impl ObjectInfo {
    pub fn gzip(&self) -> bool {
        self.key.to_ascii_lowercase().ends_with(".gz")
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// One page of a listing and the token for the next, if any.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListPage {
    pub objects: Vec<Listed>,
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

    fn ledger_get(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<Marker>, DispatchError>> + Send;

    /// Writes the marker whatever is there.
    fn ledger_put(&self, marker: &Marker)
    -> impl Future<Output = Result<(), DispatchError>> + Send;

    fn ledger_delete(&self, run_id: &str)
    -> impl Future<Output = Result<(), DispatchError>> + Send;
}

/// A Batch job for one object; the job definition's command reads these parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRequest {
    pub name: String,
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub pa_date: NaiveDate,
    /// The object's size, and whether it is gzip: they size the job.
    pub size: u64,
    pub gzip: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubmittedJob {
    pub job_id: String,
    pub job_name: String,
}

/// Where a submitted job is, as far as its run's claim is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Queued, starting or running (Batch retries it within its own attempts).
    Active,
    /// `SUCCEEDED` or `FAILED`, with Batch's status and reason.
    Ended { status: String, reason: String },
    /// Batch does not know the job (it forgets ended jobs after a few days).
    Unknown,
}

/// AWS Batch.
pub trait Jobs: Send + Sync {
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
    pub run_id: String,
    pub status: RunStatus,
    /// The manifest was already there (another invocation committed first).
    pub skipped: bool,
    pub rows_read: u64,
    pub rows_written: u64,
    pub quarantined: u64,
    pub error_code: Option<String>,
    pub error: Option<String>,
}

impl RunSummary {
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
