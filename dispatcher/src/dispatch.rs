//! One object: screened, checked against the lake and the ledger, then processed here,
//! submitted to Batch, or given up on. The [`Dispatcher`] holds what that takes; the handler
//! (one invocation) and the backfill (a listing) call it for each object.

use std::time::SystemTime;

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::Config;
use crate::error::DispatchError;
use crate::event::ObjectEvent;
use crate::key::{is_csv, job_name};
use crate::ledger::{self, AfterExpiry, Held, Marker};
use crate::report::{ObjectReport, Outcome, Place, Planned};
use crate::route::{self, BatchReason, Route};
use crate::traits::{Engine, JobRequest, JobState, Jobs, ObjectInfo, Objects, RunSummary};

/// The dispatcher and what it works with. `jobs` is `None` only locally (no Batch queue).
pub struct Dispatcher<O, J, E> {
    /// The inbox and the lake: HeadObject, listings, manifests, the ledger.
    pub objects: O,
    /// AWS Batch; with `None` (or no [`Config::batch`]) big inputs run in-process.
    pub jobs: Option<J>,
    /// The engine that processes objects here.
    pub engine: E,
    /// What is an input, the size threshold, the Batch target, dry run.
    pub config: Config,
}

impl<O: Objects, J: Jobs, E: Engine> Dispatcher<O, J, E> {
    /// Checks, then processes or submits, one object named by an event.
    pub(crate) async fn object(
        &self,
        event: &ObjectEvent,
        deadline: Option<SystemTime>,
    ) -> ObjectReport {
        let (run_id, outcome) = match self.check(event).await {
            Err(outcome) => (None, outcome),
            Ok(info) => {
                // The partition is the object's upload date, S3 LastModified (UTC): the one
                // value every path sees alike (event, redelivery, backfill, the job, a local
                // run), so a run's rows always land in one partition. An event's own time may
                // fall on the other side of midnight.
                let pa_date = info.last_modified.date_naive();
                (
                    Some(info.run_id.clone()),
                    self.act(&info, pa_date, deadline, self.config.dry_run)
                        .await,
                )
            }
        };
        ObjectReport {
            object: format!("s3://{}/{}", event.bucket, event.key),
            run_id,
            message_id: None,
            outcome,
        }
    }

    /// Why the key is not an input, if it is not.
    fn screen(&self, bucket: &str, key: &str) -> Option<String> {
        let prefix = &self.config.inbox_prefix;
        if self.config.in_lake(bucket, key) {
            Some("inside the lake (the dispatcher's own output)".into())
        } else if !key.starts_with(prefix.as_str()) {
            Some(format!("outside the inbox prefix {prefix:?}"))
        } else if !is_csv(key) {
            Some("not a .csv or .csv.gz file".into())
        } else {
            None
        }
    }

    /// Filters, HeadObject and the manifest lookup: `Ok` when there is work to do.
    pub(crate) async fn check(&self, event: &ObjectEvent) -> Result<ObjectInfo, Outcome> {
        if let Some(reason) = self.screen(&event.bucket, &event.key) {
            return Err(Outcome::Ignored { reason });
        }
        let info = self
            .objects
            .head(&event.bucket, &event.key, event.etag.as_deref())
            .await
            .map_err(|e| failed(&e))?;
        match self.objects.manifest_status(&info.run_id).await {
            Ok(Some(status)) => Err(Outcome::Skipped {
                reason: format!(
                    "already processed: run manifest exists ({})",
                    match status {
                        duff_engine::RunStatus::Succeeded => "succeeded",
                        duff_engine::RunStatus::Failed => "failed",
                    }
                ),
            }),
            Ok(None) => Ok(info),
            Err(e) => Err(failed(&e)),
        }
    }

    /// Routes an object that needs processing, claims its run in the ledger, and processes or
    /// submits it (see [`crate::ledger`] for the claim, the attempts and poison inputs).
    pub(crate) async fn act(
        &self,
        info: &ObjectInfo,
        pa_date: NaiveDate,
        deadline: Option<SystemTime>,
        dry_run: bool,
    ) -> Outcome {
        let batch = self.jobs.as_ref().filter(|_| self.config.batch.is_some());
        let mut route = route::route(
            info.size,
            info.gzip(),
            self.config.threshold_bytes,
            deadline,
            batch.is_some(),
        );
        if dry_run {
            return self.plan(info, route, batch.is_some()).await;
        }
        let mut marker = Marker {
            run_id: info.run_id.clone(),
            bucket: info.bucket.clone(),
            key: info.key.clone(),
            etag: info.etag.clone(),
            size: info.size,
            at: Utc::now(),
            job_id: None,
            job_name: None,
            attempts: 1,
            here: !matches!(route, Route::Batch(_)),
            until: deadline.map(DateTime::<Utc>::from),
        };
        let earlier = match self.objects.ledger_create(&marker).await {
            Err(e) => return failed(&e),
            Ok(None) => None,
            Ok(Some(existing)) => {
                if let Some(held) = ledger::holds(&existing, marker.at)
                    && let Some(reason) = self.still_held(&existing, &held, batch).await
                {
                    return Outcome::Skipped { reason };
                }
                Some(existing)
            }
        };
        if let Some(earlier) = &earlier {
            // An expired claim without a manifest: that attempt ended without a result.
            match ledger::after_expiry(earlier, marker.here, batch.is_some()) {
                AfterExpiry::GiveUp { attempts } => {
                    return self.give_up(info, pa_date, attempts).await;
                }
                AfterExpiry::Retry { attempts, to_batch } => {
                    marker.attempts = attempts;
                    if to_batch {
                        route = Route::Batch(BatchReason::EarlierAttemptDied);
                        marker.here = false;
                        marker.until = None;
                    }
                }
            }
            tracing::warn!(
                run_id = %info.run_id,
                attempt = marker.attempts,
                earlier = ?earlier,
                "an earlier attempt ended without a result; taking over its expired claim"
            );
            if let Err(e) = self.objects.ledger_put(&marker).await {
                return failed(&e);
            }
        }
        match (route, batch) {
            (Route::Batch(reason), Some(jobs)) => {
                self.submit(jobs, info, pa_date, reason, (marker, earlier))
                    .await
            }
            (Route::Batch(reason) | Route::HereWithoutBatch(reason), _) => {
                let note = format!(
                    "{}: would go to AWS Batch, ran in-process because no Batch queue is configured",
                    reason.describe()
                );
                let here = Here {
                    place: Place::HereWithoutBatch,
                    note: Some(note),
                    deadline,
                };
                self.run_here(None, info, pa_date, here, (marker, earlier))
                    .await
            }
            (Route::Here, _) => {
                let here = Here {
                    place: Place::Here,
                    note: None,
                    deadline,
                };
                self.run_here(batch, info, pa_date, here, (marker, earlier))
                    .await
            }
        }
    }

    /// Gives the input up: its run is committed `failed` (`gave_up`) without reading it, and
    /// an error line with `poison_input` raises the deployment's alarm.
    async fn give_up(&self, info: &ObjectInfo, pa_date: NaiveDate, attempts: u32) -> Outcome {
        tracing::error!(
            run_id = %info.run_id,
            object = format!("s3://{}/{}", info.bucket, info.key),
            attempts,
            poison_input = true,
            "giving up on a poison input: every attempt ended without a result"
        );
        match self.engine.give_up(info, pa_date, attempts).await {
            Ok(summary) if summary.skipped => Outcome::Skipped {
                reason: "already processed: another attempt committed the run first".into(),
            },
            Ok(summary) => Outcome::Failed {
                code: summary.error_code.unwrap_or_else(|| "gave_up".into()),
                reason: format!(
                    "{}; a failed run manifest was committed",
                    summary.error.unwrap_or_default()
                ),
                retryable: false,
            },
            Err(e) => failed(&e),
        }
    }

    /// Runs the engine here, then releases the run's claim: the attempt ended with a result
    /// (a marker left behind is one that did not). A run that stopped at the invocation's
    /// deadline (nothing committed) is handed over to Batch, when there is a queue, under the
    /// same claim.
    async fn run_here(
        &self,
        jobs: Option<&J>,
        info: &ObjectInfo,
        pa_date: NaiveDate,
        here: Here,
        (mut marker, earlier): (Marker, Option<Marker>),
    ) -> Outcome {
        let ran = self.engine.run(info, pa_date, here.deadline).await;
        if let (Err(DispatchError::Engine(duff_engine::Error::OutOfTime)), Some(jobs)) =
            (&ran, jobs)
        {
            tracing::warn!(run_id = %info.run_id, "stopped before the invocation's deadline; handing the object over to Batch");
            marker.here = false;
            marker.until = None;
            marker.at = Utc::now();
            return self
                .submit(
                    jobs,
                    info,
                    pa_date,
                    BatchReason::NotEnoughTime,
                    (marker, earlier),
                )
                .await;
        }
        if let Err(e) = self.objects.ledger_delete(&info.run_id).await {
            tracing::warn!(run_id = %info.run_id, error = %e, "could not release the ledger marker");
        }
        outcome_of(ran, here.place, here.note)
    }

    /// Why a claim that has not expired still holds the run, or `None` when it was lost: a
    /// claim on a Batch job holds only while Batch says the job is queued or running. A job
    /// that ended without a manifest (killed by memory or its timeout, failed on a lost host
    /// after Batch's own retries) or that Batch has forgotten is taken over now, as an expired
    /// claim, rather than waited for until [`ledger::SUBMITTED_TTL`]. When Batch cannot be
    /// asked, the claim holds: a later event or the nightly backfill asks again. So does a
    /// claim younger than [`ledger::SUBMITTING_TTL`] on a job Batch does not know yet (its
    /// answers may lag a submission).
    async fn still_held(&self, claim: &Marker, held: &Held, jobs: Option<&J>) -> Option<String> {
        let (Held::Submitted { job_id }, Some(jobs)) = (held, jobs) else {
            return Some(held.describe());
        };
        let lost = match jobs.state(job_id).await {
            Ok(JobState::Active) => return Some(held.describe()),
            Err(e) => {
                return Some(format!(
                    "{}; its state could not be read: {e}",
                    held.describe()
                ));
            }
            Ok(JobState::Ended { status, reason }) => format!("it ended {status}: {reason}"),
            Ok(JobState::Unknown) => {
                let age = (Utc::now() - claim.at).to_std().unwrap_or_default();
                if age < ledger::SUBMITTING_TTL {
                    return Some(format!("{}; Batch does not list it yet", held.describe()));
                }
                "Batch no longer knows it".to_string()
            }
        };
        tracing::warn!(
            run_id = %claim.run_id,
            job_id = %job_id,
            "the run's Batch job ended without committing the run ({lost}); its claim is taken over"
        );
        None
    }

    /// A dry run: what [`Self::act`] would do, from the route and the run's ledger marker,
    /// changing nothing.
    async fn plan(&self, info: &ObjectInfo, route: Route, batch: bool) -> Outcome {
        let earlier = match self.objects.ledger_get(&info.run_id).await {
            Ok(marker) => marker,
            Err(e) => return failed(&e),
        };
        if let Some(earlier) = &earlier
            && let Some(held) = ledger::holds(earlier, Utc::now())
            && let Some(reason) = self
                .still_held(earlier, &held, self.jobs.as_ref().filter(|_| batch))
                .await
        {
            return Outcome::Skipped { reason };
        }
        let here = !matches!(route, Route::Batch(_));
        let next = earlier
            .as_ref()
            .map(|e| ledger::after_expiry(e, here, batch));
        if let Some(AfterExpiry::GiveUp { attempts }) = next {
            return Outcome::Planned {
                action: Planned::GiveUp,
                reason: format!(
                    "{attempts} attempts ended without a result: the run would be recorded \
                     failed (gave_up)"
                ),
            };
        }
        let to_batch = matches!(next, Some(AfterExpiry::Retry { to_batch: true, .. }));
        let expired = if earlier.is_some() {
            "; its earlier attempt ended without a result"
        } else {
            ""
        };
        let (action, reason) = match route {
            Route::Here if to_batch => (
                Planned::SubmitToBatch,
                BatchReason::EarlierAttemptDied.describe().to_string(),
            ),
            Route::Batch(reason) => (Planned::SubmitToBatch, reason.describe().to_string()),
            Route::Here => (
                Planned::ProcessHere,
                "below the size threshold, time enough".to_string(),
            ),
            Route::HereWithoutBatch(reason) => (
                Planned::ProcessHere,
                format!("{}, but no Batch queue is configured", reason.describe()),
            ),
        };
        Outcome::Planned {
            action,
            reason: format!("{reason}{expired}"),
        }
    }

    /// Submits the job for the run `claim` holds (the marker, and the expired one it replaced),
    /// and records its id (see [`crate::ledger`]).
    async fn submit(
        &self,
        jobs: &J,
        info: &ObjectInfo,
        pa_date: NaiveDate,
        reason: BatchReason,
        (mut marker, earlier): (Marker, Option<Marker>),
    ) -> Outcome {
        let job = JobRequest {
            name: job_name(&info.key, &info.run_id),
            bucket: info.bucket.clone(),
            key: info.key.clone(),
            etag: info.etag.clone(),
            pa_date,
            size: info.size,
            gzip: info.gzip(),
        };
        match jobs.submit(&job).await {
            Ok(submitted) => {
                marker.job_id = Some(submitted.job_id.clone());
                marker.job_name = Some(submitted.job_name.clone());
                marker.at = Utc::now();
                if let Err(e) = self.objects.ledger_put(&marker).await {
                    // The job runs anyway; a duplicate event within SUBMITTING_TTL is still
                    // held, a later one may submit a second (idempotent) job.
                    tracing::warn!(run_id = %info.run_id, error = %e, "could not record the job id in the ledger");
                }
                Outcome::Submitted {
                    job_id: submitted.job_id,
                    job_name: submitted.job_name,
                    reason: reason.describe().into(),
                }
            }
            Err(e) => {
                // Release the claim so that the retried event submits again: no attempt ran,
                // so an expired claim it replaced comes back with its count.
                let released = match &earlier {
                    Some(earlier) => self.objects.ledger_put(earlier).await,
                    None => self.objects.ledger_delete(&info.run_id).await,
                };
                if let Err(release) = released {
                    tracing::warn!(run_id = %info.run_id, error = %release, "could not release the ledger marker");
                }
                failed(&e)
            }
        }
    }
}

/// How and until when a run inside the Lambda goes.
struct Here {
    place: Place,
    note: Option<String>,
    deadline: Option<SystemTime>,
}

/// The outcome of a run here.
fn outcome_of(
    ran: Result<RunSummary, DispatchError>,
    place: Place,
    note: Option<String>,
) -> Outcome {
    let summary = match ran {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    if summary.skipped {
        return Outcome::Skipped {
            reason: "already processed: another attempt committed the run first".into(),
        };
    }
    match summary.status {
        duff_engine::RunStatus::Succeeded => Outcome::Processed {
            place,
            rows_read: summary.rows_read,
            rows_written: summary.rows_written,
            quarantined: summary.quarantined,
            note,
        },
        // A file-level problem: the engine committed a `failed` manifest. Retrying the
        // same bytes gives the same answer, so the event is not retried.
        duff_engine::RunStatus::Failed => Outcome::Failed {
            code: summary.error_code.unwrap_or_else(|| "rejected".into()),
            reason: format!(
                "input rejected: {}; a failed run manifest was committed",
                summary.error.unwrap_or_default()
            ),
            retryable: false,
        },
    }
}

pub(crate) fn failed(e: &DispatchError) -> Outcome {
    Outcome::Failed {
        code: e.code().into(),
        reason: e.to_string(),
        retryable: e.is_retryable(),
    }
}
