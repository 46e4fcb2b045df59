//! What an invocation did, object by object: the response (and the log) of the dispatcher.

use std::collections::BTreeMap;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use serde::Serialize;

/// Where an object was processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// Inside this invocation, below the threshold.
    Here,
    /// Inside this process although it is big: no Batch queue is configured (local use).
    HereWithoutBatch,
}

/// What a dry run would have done with an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Planned {
    /// Run the engine in this process.
    ProcessHere,
    /// Submit a Batch job.
    SubmitToBatch,
    /// Record the run failed (`gave_up`): its attempts all ended without a result.
    GiveUp,
}

/// The outcome for one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Processed here; the run's manifest is committed (`status` succeeded).
    Processed {
        /// Where it ran.
        place: Place,
        /// Data rows read.
        rows_read: u64,
        /// Rows written to the lake.
        rows_written: u64,
        /// Rows quarantined, key conflicts included.
        quarantined: u64,
        /// Why it ran where it did, when that is not the normal route.
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Nothing to do: already processed (manifest exists) or already submitted.
    Skipped {
        /// Why: the run is already committed, or another attempt holds its claim.
        reason: String,
    },
    /// A Batch job was submitted.
    Submitted {
        /// Batch's job id.
        job_id: String,
        /// The job's name.
        job_name: String,
        /// Why Batch rather than here ([`crate::route::BatchReason::describe`]).
        reason: String,
    },
    /// Not an input: outside the inbox, not CSV, inside the lake, not an upload.
    Ignored {
        /// Which of these.
        reason: String,
    },
    /// Dry run: what would have been done.
    Planned {
        /// The action.
        action: Planned,
        /// Why that action.
        reason: String,
    },
    /// Not done. `retryable`: the event is retried (SQS item failure, Lambda error); otherwise
    /// it is dropped after this report (a rejected input has its `failed` manifest).
    Failed {
        /// A stable code ([`DispatchError::code`](crate::DispatchError::code), or the failed
        /// manifest's error code).
        code: String,
        /// The error message.
        reason: String,
        /// Whether a retry of the event may succeed.
        retryable: bool,
    },
}

impl Outcome {
    /// The outcome's `snake_case` tag (`processed`, `skipped`, …): the key of
    /// [`Report::summary`].
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Processed { .. } => "processed",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Submitted { .. } => "submitted",
            Outcome::Ignored { .. } => "ignored",
            Outcome::Planned { .. } => "planned",
            Outcome::Failed { .. } => "failed",
        }
    }

    /// Whether this is a failure a retry of the event may fix.
    pub fn is_retryable_failure(&self) -> bool {
        matches!(
            self,
            Outcome::Failed {
                retryable: true,
                ..
            }
        )
    }
}

/// One object (or one unusable record) and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectReport {
    /// `s3://bucket/key` (decoded key), or what the record was when there is no object.
    pub object: String,
    /// The run id of the object's current version, once HeadObject found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The SQS message it came in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// What happened to it (flattened into the object: `"outcome": "processed", …`).
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The whole invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Report {
    /// `s3`, `eventbridge`, `sqs`, `backfill`, `s3_test_event`.
    pub event: String,
    /// Whether this was a dry run (nothing processed, submitted or written).
    pub dry_run: bool,
    /// Outcome name → count, over every object (listed or not).
    pub summary: BTreeMap<String, u64>,
    /// Every object of an event; for a backfill, the ones acted on or failed (skipped and
    /// ignored objects are only counted: a backfill walks the whole inbox).
    pub objects: Vec<ObjectReport>,
    /// SQS only: messages to retry (every message with a retryable failure).
    #[serde(rename = "batchItemFailures", skip_serializing_if = "Option::is_none")]
    pub batch_item_failures: Option<Vec<String>>,
}

impl Report {
    /// An empty report for an invocation of kind `event`.
    pub fn new(event: &str, dry_run: bool) -> Report {
        Report {
            event: event.into(),
            dry_run,
            ..Report::default()
        }
    }

    /// Counts the object and, unless `count_only`, lists it; logs it either way.
    pub fn add(&mut self, object: ObjectReport, count_only: bool) {
        *self
            .summary
            .entry(object.outcome.name().into())
            .or_default() += 1;
        log(&object);
        if !count_only {
            self.objects.push(object);
        }
    }

    /// Listed objects that failed with a retryable error.
    pub fn retryable_failures(&self) -> usize {
        self.objects
            .iter()
            .filter(|o| o.outcome.is_retryable_failure())
            .count()
    }

    /// How many objects had the outcome named `outcome` (see [`Outcome::name`]); 0 if none.
    pub fn count(&self, outcome: &str) -> u64 {
        self.summary.get(outcome).copied().unwrap_or(0)
    }

    /// The exact shape Lambda's SQS event source mapping reads: with `ReportBatchItemFailures`,
    /// only these messages become visible again; the others are deleted.
    pub fn sqs_response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for id in self.batch_item_failures.iter().flatten() {
            response.add_failure(id.clone());
        }
        response
    }
}

/// One log line per object, so the logs alone tell what happened to every upload.
fn log(o: &ObjectReport) {
    let outcome = serde_json::to_string(&o.outcome).unwrap_or_default();
    let run_id = o.run_id.as_deref().unwrap_or("");
    let message_id = o.message_id.as_deref().unwrap_or("");
    match &o.outcome {
        Outcome::Failed { retryable, .. } => tracing::error!(
            object = %o.object,
            run_id,
            message_id,
            retryable,
            detail = %outcome,
            "object failed"
        ),
        other => tracing::info!(
            object = %o.object,
            run_id,
            message_id,
            outcome = other.name(),
            detail = %outcome,
            "object dispatched"
        ),
    }
}
