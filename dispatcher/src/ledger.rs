//! The dispatch ledger: `<lake>/_dispatch/<run_id>.json`, one marker per Batch submission.
//!
//! A Batch job can take a while to start and finish; until its manifest is committed, another
//! event for the same object (S3 and EventBridge deliver at least once, SQS redelivers, the
//! backfill runs nightly) must not submit a second job. Before SubmitJob the dispatcher
//! *creates* the marker (`If-None-Match: *`, so of two concurrent dispatchers exactly one
//! proceeds) in state `submitting`, then rewrites it with the job id. A failed SubmitJob
//! deletes the marker, so the retry of the event submits again.
//!
//! Markers expire so that a lost job is not waited for forever:
//! - `submitting` for more than [`SUBMITTING_TTL`] (15 min, beyond any Lambda timeout): the
//!   invocation died between create and SubmitJob; the next event or backfill re-dispatches.
//! - `submitted` for more than [`SUBMITTED_TTL`] (24 h) without a manifest: the job was lost
//!   (cancelled, or failed before it could commit a manifest); the nightly backfill
//!   re-dispatches it. The job is idempotent, so a re-dispatch of a job that is merely slow
//!   costs compute, never correctness.
//!
//! Objects processed inside the Lambda need no marker: the run's own manifest commit is
//! create-only, so two concurrent runs converge, and a finished run is found by its manifest.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const LEDGER_DIR: &str = "_dispatch";
pub const SUBMITTING_TTL: Duration = Duration::from_secs(15 * 60);
pub const SUBMITTED_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub run_id: String,
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub size: u64,
    /// When the dispatcher wrote this state.
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
}

impl Marker {
    /// The marker's path relative to the lake root.
    pub fn rel_path(run_id: &str) -> String {
        format!("{LEDGER_DIR}/{run_id}.json")
    }
}

/// What an existing marker means for a new dispatch of the same run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// A job was submitted and is presumably queued or running.
    Submitted { job_id: String },
    /// Another invocation is submitting right now.
    Submitting,
}

impl Held {
    pub fn describe(&self) -> String {
        match self {
            Held::Submitted { job_id } => format!("already submitted to Batch as job {job_id}"),
            Held::Submitting => "another invocation is submitting it to Batch".into(),
        }
    }
}

/// `Some` while the marker holds the run; `None` when it has expired.
pub fn holds(marker: &Marker, now: DateTime<Utc>) -> Option<Held> {
    let age = (now - marker.at).to_std().unwrap_or_default();
    match &marker.job_id {
        Some(job_id) if age < SUBMITTED_TTL => Some(Held::Submitted {
            job_id: job_id.clone(),
        }),
        None if age < SUBMITTING_TTL => Some(Held::Submitting),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(job: Option<&str>, age_secs: i64, now: DateTime<Utc>) -> Marker {
        Marker {
            run_id: "r".into(),
            bucket: "b".into(),
            key: "k".into(),
            etag: "e".into(),
            size: 1,
            at: now - chrono::Duration::seconds(age_secs),
            job_id: job.map(str::to_string),
            job_name: None,
        }
    }

    #[test]
    fn markers_hold_until_they_expire() {
        let now = Utc::now();
        assert_eq!(
            holds(&marker(Some("j1"), 3600, now), now),
            Some(Held::Submitted {
                job_id: "j1".into()
            })
        );
        assert_eq!(holds(&marker(Some("j1"), 25 * 3600, now), now), None);
        assert_eq!(holds(&marker(None, 60, now), now), Some(Held::Submitting));
        assert_eq!(holds(&marker(None, 16 * 60, now), now), None);
        // A clock skewed into the future still holds (age 0).
        assert!(holds(&marker(None, -30, now), now).is_some());
    }

    #[test]
    fn markers_round_trip_as_json() {
        let now = Utc::now();
        let m = marker(Some("j"), 0, now);
        let back: Marker = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        assert_eq!(Marker::rel_path("abc"), "_dispatch/abc.json");
    }
}
