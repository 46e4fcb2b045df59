//! Any invocation payload → typed inputs: S3 notifications, EventBridge "Object Created" events,
//! EventBridge "Batch Job State Change" events of failed jobs, SQS messages wrapping any of
//! these, S3 test events, and the scheduled backfill request.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3EventRecord;
use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::error::DispatchError;
use crate::key::decode_event_key;

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A direct S3 notification (any number of records) or one EventBridge event.
    Records(Vec<Record>),
    /// An SQS batch: each message wraps an S3 notification or an EventBridge event.
    Sqs(Vec<Message>),
    /// The scheduled (or hand-made) backfill: list a prefix and dispatch what is missing.
    Backfill(BackfillRequest),
    /// S3's `s3:TestEvent`, sent when a notification is configured: nothing to do.
    TestEvent,
}

/// One SQS message and what it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// SQS's id of the message: what `batchItemFailures` names to have it redelivered.
    pub message_id: String,
    /// The records of the event in its body (a single [`Record::Invalid`] when the body is no
    /// known event).
    pub records: Vec<Record>,
}

/// One record of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An upload (or a failed Batch job's object) to check and dispatch.
    Object(ObjectEvent),
    /// Not an upload (a deletion, another EventBridge event, a test event): nothing to do.
    Ignored {
        /// What the record named (`s3://bucket/key`, an event's source and type, a job).
        what: String,
        /// Why it is not an upload.
        reason: String,
    },
    /// Malformed: retrying cannot fix it.
    Invalid {
        /// What is wrong with it.
        reason: String,
    },
}

/// An uploaded object as an event names it (key already decoded).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectEvent {
    /// The bucket the object is in.
    pub bucket: String,
    /// The key, decoded (events URL-encode it: [`crate::key::decode_event_key`]).
    pub key: String,
    /// The ETag the event saw (no quotes); the object is read only if it still has it.
    pub etag: Option<String>,
    /// The size the event (or listing) gave, in bytes. Informational: routing uses HeadObject's.
    pub size: Option<u64>,
    /// When the event says the upload happened. Informational: the partition date is the
    /// object's LastModified date (HeadObject), which an event's time may put on the other side
    /// of midnight.
    pub time: Option<DateTime<Utc>>,
}

/// `{"bucket":"…","prefix":"inbox/","from":"YYYY-MM-DD","to":"YYYY-MM-DD","dry_run":false}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// The inbox bucket to list.
    pub bucket: String,
    /// Default: the configured inbox prefix.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Only objects last modified on or after this UTC date.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Only objects last modified on or before this UTC date.
    #[serde(default)]
    pub to: Option<NaiveDate>,
    /// Plan only: report what would be done, and do nothing (also the case when the
    /// dispatcher's own config is a dry run).
    #[serde(default)]
    pub dry_run: bool,
    /// Objects per ListObjectsV2 page (default: S3's 1000).
    #[serde(default)]
    pub page_size: Option<i32>,
    /// Only objects last modified in the last N days (from today − N, UTC, inclusive): the
    /// nightly schedule's window. With `from`, the later bound holds.
    #[serde(default)]
    pub lookback_days: Option<u32>,
    /// Keys under the prefix start with their upload date (`YYYY-MM-DD`): the listing then
    /// starts at the window's first date (a day early, for time zones) instead of the start
    /// of the inbox.
    #[serde(default)]
    pub dated_keys: bool,
}

impl BackfillRequest {
    /// The first date of the window on `today` (UTC), if it has one.
    pub fn first_date(&self, today: NaiveDate) -> Option<NaiveDate> {
        let lookback = self
            .lookback_days
            .map(|days| today - chrono::Days::new(u64::from(days)));
        match (self.from, lookback) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Where the listing of `prefix` starts: after the key of the day before the window's
    /// first date, when keys are dated.
    pub fn start_after(&self, prefix: &str, today: NaiveDate) -> Option<String> {
        let first = self.first_date(today).filter(|_| self.dated_keys)?;
        let day_before = first - chrono::Days::new(1);
        Some(format!("{prefix}{}", day_before.format("%Y-%m-%d")))
    }
}

/// Recognises the payload's shape. Only a payload of no known shape is an error; malformed
/// parts of a known shape become [`Record::Invalid`] so the rest is still handled.
pub fn parse(payload: &Value) -> Result<Incoming, DispatchError> {
    if is_test_event(payload) {
        return Ok(Incoming::TestEvent);
    }
    if let Some(records) = payload.get("Records").and_then(Value::as_array) {
        let from_sqs = records
            .first()
            .and_then(|r| r.get("eventSource"))
            .is_some_and(|s| s == "aws:sqs");
        if from_sqs {
            return parse_sqs(payload);
        }
        return Ok(Incoming::Records(records.iter().map(s3_record).collect()));
    }
    if payload.get("detail-type").is_some() && payload.get("source").is_some() {
        return Ok(Incoming::Records(vec![eventbridge(payload)]));
    }
    if payload.get("bucket").is_some_and(Value::is_string) {
        let request: BackfillRequest = serde_json::from_value(payload.clone())
            .map_err(|e| DispatchError::InvalidEvent(format!("backfill request: {e}")))?;
        if let (Some(from), Some(to)) = (request.from, request.to)
            && from > to
        {
            return Err(DispatchError::InvalidEvent(format!(
                "backfill request: from {from} is after to {to}"
            )));
        }
        return Ok(Incoming::Backfill(request));
    }
    let shape = match payload {
        Value::Object(m) => format!("an object with keys {:?}", m.keys().collect::<Vec<_>>()),
        other => format!("a JSON {}", kind(other)),
    };
    Err(DispatchError::UnrecognisedEvent(format!(
        "expected an S3, EventBridge, SQS or backfill event, got {shape}"
    )))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_test_event(v: &Value) -> bool {
    v.get("Event").is_some_and(|e| e == "s3:TestEvent")
}

fn parse_sqs(payload: &Value) -> Result<Incoming, DispatchError> {
    let event: SqsEvent = serde_json::from_value(payload.clone())
        .map_err(|e| DispatchError::InvalidEvent(format!("SQS event: {e}")))?;
    let messages = event
        .records
        .into_iter()
        .map(|m| Message {
            message_id: m.message_id.unwrap_or_default(),
            records: sqs_body(m.body.as_deref().unwrap_or("")),
        })
        .collect();
    Ok(Incoming::Sqs(messages))
}

/// A message body: an EventBridge event (EventBridge rule → SQS) or an S3 notification
/// (bucket notification → SQS), possibly S3's test event.
fn sqs_body(body: &str) -> Vec<Record> {
    let invalid = |reason: String| vec![Record::Invalid { reason }];
    let value: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return invalid(format!("SQS message body is not JSON: {e}")),
    };
    if is_test_event(&value) {
        return vec![test_event_record()];
    }
    if let Some(records) = value.get("Records").and_then(Value::as_array) {
        return records.iter().map(s3_record).collect();
    }
    if value.get("detail-type").is_some() {
        return vec![eventbridge(&value)];
    }
    invalid("SQS message body is neither an S3 nor an EventBridge event".into())
}

pub(crate) fn test_event_record() -> Record {
    Record::Ignored {
        what: "s3:TestEvent".into(),
        reason: "S3 test event".into(),
    }
}

fn s3_record(raw: &Value) -> Record {
    let record: S3EventRecord = match serde_json::from_value(raw.clone()) {
        Ok(r) => r,
        Err(e) => {
            return Record::Invalid {
                reason: format!("S3 event record: {e}"),
            };
        }
    };
    let name = record.event_name.clone().unwrap_or_default();
    let bucket = record.s3.bucket.name.clone().unwrap_or_default();
    let Some(encoded) = record.s3.object.key.as_deref() else {
        return Record::Invalid {
            reason: "S3 event record without an object key".into(),
        };
    };
    if !name.starts_with("ObjectCreated:") {
        return Record::Ignored {
            what: format!("s3://{bucket}/{encoded}"),
            reason: format!("not an upload ({name})"),
        };
    }
    object(
        bucket,
        encoded,
        record.s3.object.e_tag.clone(),
        record.s3.object.size,
        Some(record.event_time),
    )
}

#[derive(Deserialize)]
struct CreatedDetail {
    bucket: NamedBucket,
    object: CreatedObject,
}

#[derive(Deserialize)]
struct NamedBucket {
    name: String,
}

#[derive(Deserialize)]
struct CreatedObject {
    key: String,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    etag: Option<String>,
}

fn eventbridge(raw: &Value) -> Record {
    let event: EventBridgeEvent<Value> = match serde_json::from_value(raw.clone()) {
        Ok(e) => e,
        Err(e) => {
            return Record::Invalid {
                reason: format!("EventBridge event: {e}"),
            };
        }
    };
    if event.source == "aws.batch" && event.detail_type == "Batch Job State Change" {
        return batch_job(event.detail);
    }
    if event.source != "aws.s3" || event.detail_type != "Object Created" {
        return Record::Ignored {
            what: format!("{} / {}", event.source, event.detail_type),
            reason: "not an S3 Object Created event".into(),
        };
    }
    let detail: CreatedDetail = match serde_json::from_value(event.detail) {
        Ok(d) => d,
        Err(e) => {
            return Record::Invalid {
                reason: format!("Object Created detail: {e}"),
            };
        }
    };
    object(
        detail.bucket.name,
        &detail.object.key,
        detail.object.etag,
        detail.object.size,
        event.time,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobDetail {
    job_id: String,
    status: String,
    #[serde(default)]
    parameters: JobParameters,
}

/// The parameters the dispatcher submitted the job with ([`crate::batch`]).
#[derive(Deserialize, Default)]
struct JobParameters {
    bucket: Option<String>,
    key: Option<String>,
    etag: Option<String>,
}

/// A Batch job that ended `FAILED` names the object it was for: dispatching that object again
/// finds the job's claim, sees the job ended without a manifest, and takes the claim over
/// (counting an attempt) at once instead of after the claim's 24 hours.
fn batch_job(detail: Value) -> Record {
    let job: JobDetail = match serde_json::from_value(detail) {
        Ok(j) => j,
        Err(e) => {
            return Record::Invalid {
                reason: format!("Batch Job State Change detail: {e}"),
            };
        }
    };
    if job.status != "FAILED" {
        return Record::Ignored {
            what: format!("Batch job {}", job.job_id),
            reason: format!("a Batch job state change to {}, not FAILED", job.status),
        };
    }
    let JobParameters {
        bucket: Some(bucket),
        key: Some(key),
        etag,
    } = job.parameters
    else {
        return Record::Ignored {
            what: format!("Batch job {}", job.job_id),
            reason: "a failed Batch job without bucket and key parameters: not a dispatched job"
                .into(),
        };
    };
    // Job parameters hold the key as it is, not URL-encoded as in S3 events.
    Record::Object(ObjectEvent {
        bucket,
        key,
        etag: etag.filter(|e| !e.is_empty()),
        size: None,
        time: None,
    })
}

fn object(
    bucket: String,
    encoded_key: &str,
    etag: Option<String>,
    size: Option<i64>,
    time: Option<DateTime<Utc>>,
) -> Record {
    match decode_event_key(encoded_key) {
        Ok(key) => Record::Object(ObjectEvent {
            bucket,
            key,
            etag: etag
                .map(|e| e.trim_matches('"').to_string())
                .filter(|e| !e.is_empty()),
            size: size.and_then(|s| u64::try_from(s).ok()),
            time,
        }),
        Err(e) => Record::Invalid {
            reason: e.to_string(),
        },
    }
}
