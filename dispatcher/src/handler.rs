//! The handler: one invocation in, a [`Report`] out. Plain async code over the [`Objects`],
//! [`Jobs`] and [`Engine`] traits: each event's objects go to the [`Dispatcher`], a backfill
//! request to the backfill.

use std::time::SystemTime;

use serde_json::Value;

use crate::dispatch::Dispatcher;
use crate::error::DispatchError;
use crate::event::{self, Incoming, Record};
use crate::report::{ObjectReport, Outcome, Report};
use crate::traits::{Engine, Jobs, Objects};

impl<O: Objects, J: Jobs, E: Engine> Dispatcher<O, J, E> {
    /// Handles one invocation. `deadline` is the Lambda's (none locally). Only an
    /// unrecognisable payload or a failed backfill listing is an error; everything about
    /// individual objects is in the report.
    pub async fn handle(
        &self,
        payload: &Value,
        deadline: Option<SystemTime>,
    ) -> Result<Report, DispatchError> {
        let dry_run = self.config.dry_run;
        match event::parse(payload)? {
            Incoming::TestEvent => {
                let mut report = Report::new("s3_test_event", dry_run);
                report.add(
                    self.record(event::test_event_record(), deadline).await,
                    false,
                );
                Ok(report)
            }
            Incoming::Records(records) => {
                let kind = if payload.get("Records").is_some() {
                    "s3"
                } else {
                    "eventbridge"
                };
                let mut report = Report::new(kind, dry_run);
                for record in records {
                    report.add(self.record(record, deadline).await, false);
                }
                Ok(report)
            }
            Incoming::Sqs(messages) => {
                let mut report = Report::new("sqs", dry_run);
                let mut retry = Vec::new();
                for message in messages {
                    let mut failed = false;
                    for record in message.records {
                        let mut object = self.record(record, deadline).await;
                        failed |= object.outcome.is_retryable_failure();
                        object.message_id = Some(message.message_id.clone());
                        report.add(object, false);
                    }
                    if failed {
                        retry.push(message.message_id);
                    }
                }
                report.batch_item_failures = Some(retry);
                Ok(report)
            }
            Incoming::Backfill(request) => crate::backfill::run(self, &request, deadline).await,
        }
    }

    async fn record(&self, record: Record, deadline: Option<SystemTime>) -> ObjectReport {
        match record {
            Record::Object(event) => self.object(&event, deadline).await,
            Record::Ignored { what, reason } => ObjectReport {
                object: what,
                run_id: None,
                message_id: None,
                outcome: Outcome::Ignored { reason },
            },
            Record::Invalid { reason } => ObjectReport {
                object: "(invalid record)".into(),
                run_id: None,
                message_id: None,
                outcome: Outcome::Failed {
                    code: "invalid_event".into(),
                    reason,
                    retryable: false,
                },
            },
        }
    }
}
