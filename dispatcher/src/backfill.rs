//! The backfill: list a prefix (every page), dispatch every input that has no run manifest and
//! no live Batch submission. The safety net for lost events, failed retries and expired
//! ledger markers; scheduled nightly, or run by hand (`duff backfill`).

use std::time::{Duration, SystemTime};

use chrono::NaiveDate;
use futures::StreamExt;

use crate::dispatch::Dispatcher;
use crate::error::DispatchError;
use crate::event::{BackfillRequest, ObjectEvent};
use crate::report::{ObjectReport, Outcome, Report};
use crate::route::RESERVE;
use crate::traits::{Engine, Jobs, Listed, Objects};

/// HeadObject + manifest lookups in flight: a listing of thousands of processed objects is
/// mostly these two requests each. Processing and submitting stay one at a time.
const CHECKS_IN_FLIGHT: usize = 16;

/// Below this much time left, the backfill stops acting: the rest is reported as a retryable
/// failure (`out_of_time`), so the invocation is retried and picks up where it stopped.
const STOP_WHEN_LEFT: Duration = Duration::from_secs(RESERVE.as_secs() * 3);

pub(crate) async fn run<O: Objects, J: Jobs, E: Engine>(
    d: &Dispatcher<O, J, E>,
    request: &BackfillRequest,
    deadline: Option<SystemTime>,
) -> Result<Report, DispatchError> {
    let dry_run = request.dry_run || d.config.dry_run;
    let prefix = request
        .prefix
        .clone()
        .unwrap_or_else(|| d.config.inbox_prefix.clone());
    let mut report = Report::new("backfill", dry_run);
    let today = chrono::Utc::now().date_naive();
    let first = request.first_date(today);
    let start_after = request.start_after(&prefix, today);
    let mut token = None;
    loop {
        // A listing failure fails the invocation: it is retried as a whole, and everything
        // already done is skipped by its manifest or ledger marker.
        let page = d
            .objects
            .list(
                &request.bucket,
                &prefix,
                start_after.as_deref(),
                request.page_size,
                token.take(),
            )
            .await?;
        let events: Vec<ObjectEvent> = page
            .objects
            .iter()
            .filter(|o| in_range(o, first, request.to))
            .map(|o| ObjectEvent {
                bucket: request.bucket.clone(),
                key: o.key.clone(),
                etag: None,
                size: Some(o.size),
                time: None,
            })
            .collect();
        let out_of_range = (page.objects.len() - events.len()) as u64;
        if out_of_range > 0 {
            *report.summary.entry("out_of_range".into()).or_default() += out_of_range;
        }
        let checked: Vec<_> = futures::stream::iter(events.iter().map(|e| d.check(e)))
            .buffered(CHECKS_IN_FLIGHT)
            .collect()
            .await;
        for (event, checked) in events.iter().zip(checked) {
            let object = format!("s3://{}/{}", event.bucket, event.key);
            let (run_id, outcome) = match checked {
                Err(outcome) => (None, outcome),
                Ok(info) if out_of_time(deadline) => (
                    Some(info.run_id),
                    Outcome::Failed {
                        code: "out_of_time".into(),
                        reason: "the invocation ran out of time before this object".into(),
                        retryable: true,
                    },
                ),
                Ok(info) => {
                    let pa_date = info.last_modified.date_naive();
                    let outcome = d.act(&info, pa_date, deadline, dry_run).await;
                    (Some(info.run_id), outcome)
                }
            };
            // Processed and foreign objects are only counted: the inbox keeps every upload.
            let count_only = matches!(outcome, Outcome::Skipped { .. } | Outcome::Ignored { .. });
            report.add(
                ObjectReport {
                    object,
                    run_id,
                    message_id: None,
                    outcome,
                },
                count_only,
            );
        }
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    Ok(report)
}

/// `from`/`to` bound the LastModified date (UTC), both inclusive.
fn in_range(o: &Listed, from: Option<NaiveDate>, to: Option<NaiveDate>) -> bool {
    let day = o.last_modified.date_naive();
    from.is_none_or(|from| day >= from) && to.is_none_or(|to| day <= to)
}

fn out_of_time(deadline: Option<SystemTime>) -> bool {
    deadline
        .is_some_and(|d| d.duration_since(SystemTime::now()).unwrap_or_default() < STOP_WHEN_LEFT)
}
