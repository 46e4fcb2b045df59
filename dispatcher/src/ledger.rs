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
//! - `submitted`: while Batch says the job is queued or running. A later dispatch of the run
//!   asks (DescribeJobs); a job that ended without committing the run (failed, killed by
//!   memory or its timeout, cancelled) or that Batch has forgotten is taken over at once. The
//!   stack sends each failed job's state change to the dispatch queue, so that later dispatch
//!   comes within seconds, not at the nightly backfill. Without an answer from Batch the claim
//!   holds up to [`SUBMITTED_TTL`] (24 h). The job is idempotent, so a re-dispatch of a job
//!   that is merely slow costs compute, never correctness.
//!
//! A run processed inside the Lambda holds a marker too (`here`), until its invocation's
//! deadline, and deletes it once the run returned: a marker left behind is an attempt that
//! ended without a result (the Lambda killed by memory or its timeout).
//!
//! Poison inputs: each dispatch that takes over an expired marker counts an attempt. An
//! attempt after one that died inside the Lambda goes to Batch (more memory, more time); after
//! [`MAX_ATTEMPTS`] attempts without a result the dispatcher gives the input up: its run is
//! committed `failed` (`gave_up`) without reading it, and an error log line with
//! `poison_input` raises the deployment's alarm.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The ledger's directory under the lake root.
pub const LEDGER_DIR: &str = "_dispatch";
/// How long a marker without a job id holds its run (`submitting`, or a run here with no
/// deadline recorded): longer than any Lambda invocation, so it expires only once the
/// invocation that wrote it is gone.
pub const SUBMITTING_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a marker with a job id holds its run when Batch cannot say that the job ended.
pub const SUBMITTED_TTL: Duration = Duration::from_secs(24 * 3600);
/// Attempts of a run that may end without a result before its input is given up.
pub const MAX_ATTEMPTS: u32 = 3;

/// One run's claim, stored as JSON at [`Marker::rel_path`]: which object, since when, and
/// where its current attempt runs (a Batch job, or this Lambda until `until`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// The run the marker claims; also its file name.
    pub run_id: String,
    /// The input's bucket.
    pub bucket: String,
    /// The input's key, decoded.
    pub key: String,
    /// The input version the run is for (no quotes).
    pub etag: String,
    /// The input's size in bytes.
    pub size: u64,
    /// When the dispatcher wrote this state.
    pub at: DateTime<Utc>,
    /// The Batch job's id, once SubmitJob answered; `None` while submitting and for a run
    /// here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The Batch job's name, with `job_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Dispatches of this run so far, this one included; each earlier one ended without a
    /// result.
    #[serde(default = "first_attempt")]
    pub attempts: u32,
    /// This attempt runs inside the dispatcher's Lambda (no job).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub here: bool,
    /// When an attempt inside the Lambda is over for sure: its invocation's deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

fn first_attempt() -> u32 {
    1
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
    Submitted {
        /// The job the marker records.
        job_id: String,
    },
    /// Another invocation is submitting right now.
    Submitting,
    /// Another invocation is processing it inside its Lambda.
    Running,
}

impl Held {
    /// A sentence for the report's `skipped` reason (`already submitted to Batch as job …`).
    pub fn describe(&self) -> String {
        match self {
            Held::Submitted { job_id } => format!("already submitted to Batch as job {job_id}"),
            Held::Submitting => "another invocation is submitting it to Batch".into(),
            Held::Running => "another invocation is processing it in its Lambda".into(),
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
        None if marker.here => {
            let running = match marker.until {
                Some(until) => now < until,
                None => age < SUBMITTING_TTL,
            };
            running.then_some(Held::Running)
        }
        None if age < SUBMITTING_TTL => Some(Held::Submitting),
        _ => None,
    }
}

/// What follows an expired claim (an attempt that ended without a result) for the next
/// attempt of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExpiry {
    /// The earlier attempts were the last: the input is given up.
    GiveUp {
        /// Attempts made, all without a result.
        attempts: u32,
    },
    /// Attempt `attempts` goes ahead, to Batch when the earlier one died inside the Lambda
    /// and this one would run there too (Batch has more memory and time).
    Retry {
        /// The number of this attempt (1-based), to record in its marker.
        attempts: u32,
        /// Send it to Batch even though it would otherwise run here.
        to_batch: bool,
    },
}

/// [`AfterExpiry`] for a next attempt routed into the Lambda (`here`) or not, with or without
/// a Batch queue.
pub fn after_expiry(earlier: &Marker, here: bool, batch: bool) -> AfterExpiry {
    if earlier.attempts >= MAX_ATTEMPTS {
        return AfterExpiry::GiveUp {
            attempts: earlier.attempts,
        };
    }
    AfterExpiry::Retry {
        attempts: earlier.attempts + 1,
        to_batch: earlier.here && here && batch,
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
            attempts: 1,
            here: false,
            until: None,
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
    fn an_attempt_in_the_lambda_holds_until_its_deadline() {
        let now = Utc::now();
        let here = |until: Option<i64>| Marker {
            here: true,
            until: until.map(|s| now + chrono::Duration::seconds(s)),
            ..marker(None, 60, now)
        };
        assert_eq!(holds(&here(Some(30)), now), Some(Held::Running));
        assert_eq!(holds(&here(Some(-1)), now), None, "its invocation is over");
        // No deadline known (a local dispatcher): as long as a submission.
        assert_eq!(holds(&here(None), now), Some(Held::Running));
        let old = Marker {
            at: now - chrono::Duration::seconds(16 * 60),
            ..here(None)
        };
        assert_eq!(holds(&old, now), None);
    }

    #[test]
    fn markers_from_before_attempts_were_counted_read_as_a_first_attempt() {
        let old = r#"{"run_id":"r","bucket":"b","key":"k","etag":"e","size":1,
                      "at":"2026-11-30T00:00:00Z","job_id":"j"}"#;
        let m: Marker = serde_json::from_str(old).unwrap();
        assert_eq!((m.attempts, m.here, m.until), (1, false, None));
    }

    #[test]
    fn after_an_expired_claim_the_next_attempt_counts_escalates_or_gives_up() {
        let now = Utc::now();
        let died = |attempts, here| Marker {
            attempts,
            here,
            ..marker(None, 3600, now)
        };
        let retry = |attempts, to_batch| AfterExpiry::Retry { attempts, to_batch };
        assert_eq!(after_expiry(&died(1, true), true, true), retry(2, true));
        assert_eq!(after_expiry(&died(1, true), true, false), retry(2, false));
        assert_eq!(after_expiry(&died(2, false), true, true), retry(3, false));
        assert_eq!(after_expiry(&died(1, true), false, true), retry(2, false));
        assert_eq!(
            after_expiry(&died(MAX_ATTEMPTS, true), true, true),
            AfterExpiry::GiveUp {
                attempts: MAX_ATTEMPTS
            }
        );
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
