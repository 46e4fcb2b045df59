//! The handler on real-shaped events (tests/fixtures/events/) over in-memory fakes: what is
//! ignored, skipped, processed here or submitted, and what is retried.

mod fakes;

use std::time::{Duration, SystemTime};

use chrono::{NaiveDate, Utc};
use duff_dispatcher::lambda::lambda_response;
use duff_dispatcher::ledger::Marker;
use duff_dispatcher::{DispatchError, JobState, Outcome};
use duff_engine::{RunStatus, StorageErrorKind};
use fakes::{Fake, MIB, fixture, handle, outcomes, run_id};
use serde_json::json;

const T: u64 = 100 * MIB;

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn eventbridge(key_encoded: &str, size: u64, etag: &str) -> serde_json::Value {
    json!({
        "version": "0", "id": "x", "detail-type": "Object Created", "source": "aws.s3",
        "account": "111122223333", "time": "2026-11-21T08:30:00Z", "region": "eu-west-1",
        "resources": ["arn:aws:s3:::duff-inbox"],
        "detail": {"version": "0", "bucket": {"name": "duff-inbox"},
                   "object": {"key": key_encoded, "size": size, "etag": etag},
                   "reason": "PutObject"}
    })
}

fn s3_notification_world() -> Fake {
    let w = Fake::default();
    // LastModified just after midnight, the event's time just before: the partition is the
    // LastModified date (the 21st), the one a backfill or the job would derive too.
    w.put(
        "inbox/orders north 2026-11-20.csv",
        MIB,
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "2026-11-21T00:00:01Z",
    );
    w.put(
        "inbox/café 客户 a+b.csv.gz",
        5 * MIB,
        "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "2026-11-20T23:59:58Z",
    );
    w.put(
        "inbox/100% complete.CSV",
        200 * MIB,
        "11111111111111111111111111111111-25",
        "2026-11-20T23:59:58Z",
    );
    w
}

#[test]
fn an_s3_notification_decodes_keys_and_routes_each_record() {
    let w = s3_notification_world();
    let d = w.dispatcher(T);
    let report = handle(&d, &fixture("s3-notification.json"), None).unwrap();
    assert_eq!(report.event, "s3");
    assert_eq!(
        outcomes(&report),
        [
            (
                "s3://duff-inbox/inbox/orders north 2026-11-20.csv".to_string(),
                "processed"
            ),
            (
                "s3://duff-inbox/inbox/café 客户 a+b.csv.gz".to_string(),
                "processed"
            ),
            (
                "s3://duff-inbox/inbox/100% complete.CSV".to_string(),
                "submitted"
            ),
            ("s3://duff-inbox/inbox/readme.txt".to_string(), "ignored"),
            (
                "s3://duff-inbox/inbox/old+orders.csv".to_string(),
                "ignored"
            ),
            (
                "s3://duff-inbox/elsewhere/orders.csv".to_string(),
                "ignored"
            ),
        ]
    );
    assert_eq!(
        w.runs(),
        [
            (
                "inbox/orders north 2026-11-20.csv".to_string(),
                date("2026-11-21")
            ),
            ("inbox/café 客户 a+b.csv.gz".to_string(), date("2026-11-20")),
        ]
    );
    let jobs = w.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].key, "inbox/100% complete.CSV");
    assert_eq!(jobs[0].etag, "11111111111111111111111111111111-25");
    assert_eq!(jobs[0].pa_date, date("2026-11-20"));
    assert!(
        jobs[0].name.starts_with("duff-100__complete-run"),
        "{}",
        jobs[0].name
    );
    // The submission is in the ledger with its job id.
    let marker = w.0.ledger.lock().unwrap()[&run_id("11111111111111111111111111111111-25")].clone();
    assert_eq!(marker.job_id.as_deref(), Some("job-1"));
    let reasons: Vec<String> = report.objects[3..]
        .iter()
        .map(|o| match &o.outcome {
            Outcome::Ignored { reason } => reason.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(reasons[0].contains("not a .csv"), "{reasons:?}");
    assert!(reasons[1].contains("ObjectRemoved:Delete"), "{reasons:?}");
    assert!(
        reasons[2].contains("outside the inbox prefix"),
        "{reasons:?}"
    );
    assert_eq!(report.retryable_failures(), 0);
    assert!(lambda_response(&report).unwrap()["objects"].is_array());
}

#[test]
fn the_same_event_twice_is_a_no_op_the_second_time() {
    let w = s3_notification_world();
    let d = w.dispatcher(T);
    handle(&d, &fixture("s3-notification.json"), None).unwrap();
    let again = handle(&d, &fixture("s3-notification.json"), None).unwrap();
    let names: Vec<&str> = outcomes(&again).iter().map(|o| o.1).collect();
    assert_eq!(
        names,
        [
            "skipped", "skipped", "skipped", "ignored", "ignored", "ignored"
        ]
    );
    match &again.objects[2].outcome {
        Outcome::Skipped { reason } => assert!(reason.contains("job-1"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.jobs().len(), 1, "no second SubmitJob");
    assert_eq!(w.runs().len(), 2, "no second engine run");
}

#[test]
fn an_eventbridge_event_uses_its_time_as_the_partition() {
    let w = Fake::default();
    w.put(
        "inbox/eu orders über 50%.csv",
        2 * MIB,
        "b1946ac92492d2347c6235b4d2611184",
        "2026-11-21T08:29:59Z",
    );
    let d = w.dispatcher(T);
    let report = handle(&d, &fixture("eventbridge-object-created.json"), None).unwrap();
    assert_eq!(report.event, "eventbridge");
    assert_eq!(
        outcomes(&report),
        [(
            "s3://duff-inbox/inbox/eu orders über 50%.csv".to_string(),
            "processed"
        )]
    );
    assert_eq!(w.runs()[0].1, date("2026-11-21"));
    match &report.objects[0].outcome {
        Outcome::Processed {
            rows_read,
            rows_written,
            ..
        } => {
            assert_eq!((*rows_read, *rows_written), (20971, 20971));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sqs_reports_only_retryable_failures_as_batch_item_failures() {
    let w = Fake::default();
    w.put(
        "inbox/day 1.csv",
        1024,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "2026-11-21T08:30:00Z",
    );
    w.put(
        "inbox/flaky 2.csv",
        2048,
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "2026-11-21T08:30:00Z",
    );
    // inbox/gone 3.csv was deleted before the message was handled.
    let d = w.dispatcher(T);
    let report = handle(&d, &fixture("sqs-eventbridge.json"), None).unwrap();
    assert_eq!(report.event, "sqs");
    let names: Vec<&str> = outcomes(&report).iter().map(|o| o.1).collect();
    // The fourth message repeats the first: a duplicate delivery inside one batch.
    assert_eq!(names, ["processed", "failed", "failed", "skipped"]);
    let retryable: Vec<bool> = report
        .objects
        .iter()
        .filter_map(|o| match &o.outcome {
            Outcome::Failed {
                retryable, code, ..
            } => Some((*retryable, code.clone())),
            _ => None,
        })
        .map(|(r, code)| {
            assert!(["storage_transient", "storage_not_found"].contains(&code.as_str()));
            r
        })
        .collect();
    assert_eq!(retryable, [true, false]);
    let flaky = "2e1424d4-f796-459a-8184-9c92662be6da";
    assert_eq!(report.batch_item_failures, Some(vec![flaky.to_string()]));
    assert_eq!(report.objects[1].message_id.as_deref(), Some(flaky));
    // Exactly the shape the event source mapping reads.
    assert_eq!(
        lambda_response(&report).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": flaky}]})
    );
}

#[test]
fn sqs_wrapping_s3_notifications_test_events_and_garbage() {
    let w = Fake::default();
    w.put(
        "inbox/north & south.csv",
        3000,
        "dddddddddddddddddddddddddddddddd",
        "2026-11-20T10:00:00Z",
    );
    w.put(
        "inbox/bad header.csv",
        40,
        "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
        "2026-11-20T10:00:00Z",
    );
    let d = w.dispatcher(T);
    let report = handle(&d, &fixture("sqs-s3.json"), None).unwrap();
    let names: Vec<&str> = outcomes(&report).iter().map(|o| o.1).collect();
    assert_eq!(names, ["processed", "failed", "ignored", "failed"]);
    match &report.objects[1].outcome {
        Outcome::Failed {
            code,
            retryable,
            reason,
        } => {
            assert_eq!(code, "missing_columns");
            assert!(
                !retryable && reason.contains("failed run manifest"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.0.manifests.lock().unwrap()[&run_id("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")],
        RunStatus::Failed
    );
    match &report.objects[3].outcome {
        Outcome::Failed {
            code, retryable, ..
        } => assert!(code == "invalid_event" && !retryable),
        other => panic!("{other:?}"),
    }
    // Nothing here can succeed on a retry: no message comes back.
    assert_eq!(report.batch_item_failures, Some(vec![]));
    // Redelivered, the rejected input is skipped: a failed manifest is final.
    let again = handle(&d, &fixture("sqs-s3.json"), None).unwrap();
    assert_eq!(outcomes(&again)[1].1, "skipped");
    assert_eq!(w.runs().len(), 2);
}

#[test]
fn the_s3_test_event_is_ignored_politely() {
    let d = Fake::default().dispatcher(T);
    let report = handle(&d, &fixture("s3-test-event.json"), None).unwrap();
    assert_eq!(report.event, "s3_test_event");
    assert_eq!(outcomes(&report), [("s3:TestEvent".to_string(), "ignored")]);
    assert!(lambda_response(&report).is_ok());
}

#[test]
fn unknown_payloads_are_errors() {
    let d = Fake::default().dispatcher(T);
    for payload in [json!({"hello": 1}), json!([1, 2]), json!("s3://b/k")] {
        let e = handle(&d, &payload, None).unwrap_err();
        assert!(matches!(e, DispatchError::UnrecognisedEvent(_)), "{e}");
    }
    let reversed = json!({"bucket": "duff-inbox", "from": "2026-11-02", "to": "2026-11-01"});
    assert!(matches!(
        handle(&d, &reversed, None),
        Err(DispatchError::InvalidEvent(_))
    ));
    let typo = json!({"bucket": "duff-inbox", "dryrun": true});
    assert!(matches!(
        handle(&d, &typo, None),
        Err(DispatchError::InvalidEvent(_))
    ));
}

#[test]
fn small_objects_go_to_batch_when_the_invocation_is_short_of_time() {
    let w = Fake::default();
    w.put("inbox/a.csv", 50 * MIB, "ea", "2026-11-21T08:30:00Z");
    w.put("inbox/b.csv", 50 * MIB, "eb", "2026-11-21T08:30:00Z");
    let d = w.dispatcher(T);
    // 50 MiB: ~5.1 s estimated, needs ~15 s.
    let soon = Some(SystemTime::now() + Duration::from_secs(10));
    let later = Some(SystemTime::now() + Duration::from_secs(300));
    let short = handle(&d, &eventbridge("inbox/a.csv", 50 * MIB, "ea"), soon).unwrap();
    match &short.objects[0].outcome {
        Outcome::Submitted { reason, .. } => {
            assert!(reason.contains("not enough time"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let long = handle(&d, &eventbridge("inbox/b.csv", 50 * MIB, "eb"), later).unwrap();
    assert_eq!(outcomes(&long)[0].1, "processed");
}

#[test]
fn the_size_threshold_decides_and_is_inclusive() {
    let w = Fake::default();
    w.put("inbox/under.csv", MIB - 1, "u", "2026-11-21T08:30:00Z");
    w.put("inbox/at.csv", MIB, "a", "2026-11-21T08:30:00Z");
    let d = w.dispatcher(MIB);
    let under = handle(&d, &eventbridge("inbox/under.csv", MIB - 1, "u"), None).unwrap();
    let at = handle(&d, &eventbridge("inbox/at.csv", MIB, "a"), None).unwrap();
    assert_eq!(outcomes(&under)[0].1, "processed");
    assert_eq!(outcomes(&at)[0].1, "submitted");
}

#[test]
fn without_a_batch_queue_big_objects_run_here_and_say_so() {
    let w = Fake::default();
    w.put("inbox/big.csv", 2 * MIB, "b", "2026-11-21T08:30:00Z");
    let mut d = w.dispatcher(MIB);
    d.jobs = None;
    let report = handle(&d, &eventbridge("inbox/big.csv", 2 * MIB, "b"), None).unwrap();
    match &report.objects[0].outcome {
        Outcome::Processed {
            note: Some(note), ..
        } => {
            assert!(note.contains("no Batch queue is configured"), "{note}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_submission_releases_its_claim_so_the_retry_submits() {
    let w = Fake::default();
    w.put("inbox/big.csv", 2 * MIB, "b", "2026-11-21T08:30:00Z");
    w.0.submit_failures.lock().unwrap().extend([true, false]);
    let d = w.dispatcher(MIB);
    let event = eventbridge("inbox/big.csv", 2 * MIB, "b");
    let first = handle(&d, &event, None).unwrap();
    assert!(first.objects[0].outcome.is_retryable_failure());
    assert!(matches!(
        lambda_response(&first),
        Err(DispatchError::RetryableFailures(1))
    ));
    assert!(w.0.ledger.lock().unwrap().is_empty(), "claim released");
    let second = handle(&d, &event, None).unwrap();
    assert!(matches!(
        second.objects[0].outcome,
        Outcome::Failed {
            retryable: false,
            ..
        }
    ));
    let third = handle(&d, &event, None).unwrap();
    assert_eq!(outcomes(&third)[0].1, "submitted");
    assert_eq!(w.jobs().len(), 1);
}

#[test]
fn ledger_markers_hold_until_they_expire() {
    let w = Fake::default();
    w.put("inbox/big.csv", 2 * MIB, "b", "2026-11-21T08:30:00Z");
    let d = w.dispatcher(MIB);
    let event = eventbridge("inbox/big.csv", 2 * MIB, "b");
    let marker = |hours: i64| Marker {
        run_id: run_id("b"),
        bucket: fakes::INBOX.into(),
        key: "inbox/big.csv".into(),
        etag: "b".into(),
        size: 2 * MIB,
        at: Utc::now() - chrono::Duration::hours(hours),
        job_id: Some("job-old".into()),
        job_name: None,
        attempts: 1,
        here: false,
        until: None,
    };
    w.0.ledger.lock().unwrap().insert(run_id("b"), marker(1));
    let held = handle(&d, &event, None).unwrap();
    assert_eq!(outcomes(&held)[0].1, "skipped");
    assert!(w.jobs().is_empty());
    // A day later without a manifest, the job is presumed lost: dispatched again.
    w.0.ledger.lock().unwrap().insert(run_id("b"), marker(25));
    let expired = handle(&d, &event, None).unwrap();
    assert_eq!(outcomes(&expired)[0].1, "submitted");
    assert_eq!(w.jobs().len(), 1);
    assert_eq!(
        w.0.ledger.lock().unwrap()[&run_id("b")].job_id.as_deref(),
        Some("job-1")
    );
}

#[test]
fn a_batch_job_that_ended_without_a_result_is_taken_over_at_once() {
    let w = Fake::default();
    let key = "inbox/big file+1.csv";
    w.put(key, 2 * MIB, "b", "2026-11-21T08:30:00Z");
    let d = w.dispatcher(MIB);
    let upload = eventbridge("inbox/big+file%2B1.csv", 2 * MIB, "b");
    assert_eq!(
        outcomes(&handle(&d, &upload, None).unwrap())[0].1,
        "submitted"
    );
    let claim = || w.0.ledger.lock().unwrap()[&run_id("b")].clone();
    assert_eq!(
        (claim().job_id.as_deref(), claim().attempts),
        (Some("job-1"), 1)
    );

    // While Batch says the job is queued or running, another event is held off; so it is when
    // Batch cannot be asked (a later event or the backfill asks again).
    let skipped = |report: &duff_dispatcher::Report| match &report.objects[0].outcome {
        Outcome::Skipped { reason } => reason.clone(),
        other => panic!("{other:?}"),
    };
    let held = skipped(&handle(&d, &upload, None).unwrap());
    assert_eq!(held, "already submitted to Batch as job job-1");
    w.0.describe_failures
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let unread = skipped(&handle(&d, &upload, None).unwrap());
    assert!(unread.contains("state could not be read"), "{unread}");
    assert_eq!(w.jobs().len(), 1);

    // The job fails (out of memory, after Batch's own retries): the rule sends its state change
    // through the dispatch queue, and the object is dispatched again at once, as a second
    // attempt of the same run, under its own key (not URL-encoded in job parameters).
    w.0.job_states.lock().unwrap().insert(
        "job-1".into(),
        JobState::Ended {
            status: "FAILED".into(),
            reason: "OutOfMemoryError: Container killed due to memory usage".into(),
        },
    );
    let failed = fixture("eventbridge-batch-job-failed.json");
    let queued = json!({"Records": [{
        "messageId": "m-failed", "receiptHandle": "h", "body": failed.to_string(),
        "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:111122223333:duff-dispatch", "awsRegion": "eu-west-1"
    }]});
    let mut dry = w.dispatcher(MIB);
    dry.config.dry_run = true;
    match &handle(&dry, &queued, None).unwrap().objects[0].outcome {
        Outcome::Planned { action, reason } => {
            assert_eq!(serde_json::to_value(action).unwrap(), "submit_to_batch");
            assert!(
                reason.contains("earlier attempt ended without a result"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.jobs().len(), 1, "a dry run submits nothing");
    let again = handle(&d, &queued, None).unwrap();
    assert_eq!(
        outcomes(&again),
        [(format!("s3://{}/{key}", fakes::INBOX), "submitted")]
    );
    assert_eq!(w.jobs()[1].key, key);
    assert_eq!(
        (claim().job_id.as_deref(), claim().attempts),
        (Some("job-2"), 2)
    );

    // A job Batch does not know: just after its submission, Batch's answer may lag and the
    // claim holds; later, the job is lost too. After the last attempt the input is given up
    // with a failed run instead of a fourth job.
    w.0.job_states
        .lock()
        .unwrap()
        .insert("job-2".into(), JobState::Unknown);
    let lagging = skipped(&handle(&d, &upload, None).unwrap());
    assert!(lagging.contains("does not list it yet"), "{lagging}");
    let mut older = claim();
    older.at -= chrono::Duration::minutes(16);
    w.0.ledger.lock().unwrap().insert(run_id("b"), older);
    assert_eq!(
        outcomes(&handle(&d, &upload, None).unwrap())[0].1,
        "submitted"
    );
    assert_eq!(
        (claim().job_id.as_deref(), claim().attempts),
        (Some("job-3"), 3)
    );
    w.0.job_states.lock().unwrap().insert(
        "job-3".into(),
        JobState::Ended {
            status: "FAILED".into(),
            reason: "Task timed out".into(),
        },
    );
    match &handle(&d, &upload, None).unwrap().objects[0].outcome {
        Outcome::Failed { code, .. } => assert_eq!(code, "gave_up"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.jobs().len(), 3);
    assert_eq!(*w.0.given_up.lock().unwrap(), vec![key.to_string()]);
}

#[test]
fn batch_state_changes_other_than_failures_of_dispatched_jobs_are_ignored() {
    let w = Fake::default();
    let d = w.dispatcher(MIB);
    let mut event = fixture("eventbridge-batch-job-failed.json");
    event["detail"]["status"] = json!("SUCCEEDED");
    let report = handle(&d, &event, None).unwrap();
    assert_eq!(
        outcomes(&report),
        [("Batch job job-1".to_string(), "ignored")]
    );
    let mut foreign = fixture("eventbridge-batch-job-failed.json");
    foreign["detail"]["parameters"] = json!({});
    let report = handle(&d, &foreign, None).unwrap();
    match &report.objects[0].outcome {
        Outcome::Ignored { reason } => assert!(reason.contains("not a dispatched job"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // A state change without a job id is malformed: reported, never retried.
    let mut broken = fixture("eventbridge-batch-job-failed.json");
    broken["detail"] = json!({"status": "FAILED"});
    match &handle(&d, &broken, None).unwrap().objects[0].outcome {
        Outcome::Failed {
            code,
            reason,
            retryable: false,
        } => assert!(
            code == "invalid_event" && reason.contains("jobId"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(w.jobs().is_empty() && w.runs().is_empty());
}

/// A marker an attempt left behind: it ended without a result (killed by memory or time).
fn dead_attempt(etag: &str, key: &str, size: u64, attempts: u32, here: bool) -> Marker {
    Marker {
        run_id: run_id(etag),
        bucket: fakes::INBOX.into(),
        key: key.into(),
        etag: etag.into(),
        size,
        at: Utc::now() - chrono::Duration::hours(25),
        job_id: (!here).then(|| "job-lost".into()),
        job_name: None,
        attempts,
        here,
        until: here.then(|| Utc::now() - chrono::Duration::minutes(1)),
    }
}

#[test]
fn a_run_in_the_lambda_holds_its_claim_while_it_runs_and_releases_it_after() {
    let w = Fake::default();
    w.put("inbox/small.csv", 10, "s", "2026-11-21T08:30:00Z");
    w.put("inbox/flaky.csv", 10, "f", "2026-11-21T08:30:00Z");
    let d = w.dispatcher(T);
    let deadline = SystemTime::now() + Duration::from_secs(600);
    let done = handle(&d, &eventbridge("inbox/small.csv", 10, "s"), Some(deadline)).unwrap();
    assert_eq!(outcomes(&done)[0].1, "processed");
    let held = w.0.held_while_running.lock().unwrap()[0].clone().unwrap();
    assert!(held.here && held.attempts == 1 && held.job_id.is_none());
    assert_eq!(held.until, Some(chrono::DateTime::<Utc>::from(deadline)));
    // A concurrent event for the same object meanwhile is held off.
    assert_eq!(
        duff_dispatcher::ledger::holds(&held, Utc::now()).map(|h| h.describe()),
        Some("another invocation is processing it in its Lambda".to_string())
    );
    // Released whatever the outcome: a retryable failure is an attempt that ended.
    let flaky = handle(&d, &eventbridge("inbox/flaky.csv", 10, "f"), None).unwrap();
    assert!(matches!(
        flaky.objects[0].outcome,
        Outcome::Failed {
            retryable: true,
            ..
        }
    ));
    assert!(w.0.ledger.lock().unwrap().is_empty(), "claims released");
}

#[test]
fn a_run_that_stops_at_the_deadline_is_handed_over_to_batch_under_its_claim() {
    let w = Fake::default();
    w.put("inbox/slow.csv", 10, "s", "2026-11-21T08:30:00Z");
    let d = w.dispatcher(T);
    let deadline = SystemTime::now() + Duration::from_secs(600);
    let report = handle(&d, &eventbridge("inbox/slow.csv", 10, "s"), Some(deadline)).unwrap();
    match &report.objects[0].outcome {
        Outcome::Submitted { reason, .. } => {
            assert!(reason.contains("not enough time"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let marker = w.0.ledger.lock().unwrap()[&run_id("s")].clone();
    assert_eq!((marker.here, marker.attempts), (false, 1));
    assert_eq!(marker.job_id.as_deref(), Some("job-1"));
    assert!(
        w.0.manifests.lock().unwrap().is_empty(),
        "nothing committed"
    );
    // Without a Batch queue there is nowhere to hand it: a retryable failure, claim released.
    let mut alone = w.dispatcher(T);
    alone.jobs = None;
    w.0.ledger.lock().unwrap().clear();
    let report = handle(
        &alone,
        &eventbridge("inbox/slow.csv", 10, "s"),
        Some(deadline),
    )
    .unwrap();
    assert!(matches!(
        &report.objects[0].outcome,
        Outcome::Failed { retryable: true, code, .. } if code == "out_of_time"
    ));
    assert!(w.0.ledger.lock().unwrap().is_empty());
}

#[test]
fn an_attempt_that_died_in_the_lambda_is_retried_on_batch() {
    let w = Fake::default();
    w.put("inbox/poison.csv", 10, "p", "2026-11-21T08:30:00Z");
    let d = w.dispatcher(T);
    let event = eventbridge("inbox/poison.csv", 10, "p");
    // Killed inside the Lambda: its marker outlived its deadline.
    w.0.ledger.lock().unwrap().insert(
        run_id("p"),
        dead_attempt("p", "inbox/poison.csv", 10, 1, true),
    );
    let mut dry = w.dispatcher(T);
    dry.config.dry_run = true;
    let plan = handle(&dry, &event, None).unwrap();
    match &plan.objects[0].outcome {
        Outcome::Planned { action, reason } => {
            assert_eq!(serde_json::to_value(action).unwrap(), "submit_to_batch");
            assert!(reason.contains("earlier attempt in the Lambda"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let report = handle(&d, &event, None).unwrap();
    match &report.objects[0].outcome {
        Outcome::Submitted { reason, .. } => {
            assert!(reason.contains("earlier attempt in the Lambda"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(w.runs().is_empty(), "not run here again");
    let marker = w.0.ledger.lock().unwrap()[&run_id("p")].clone();
    assert_eq!((marker.attempts, marker.here), (2, false));
    assert_eq!(marker.job_id.as_deref(), Some("job-1"));
}

#[test]
fn a_poison_input_is_given_up_after_its_attempts_with_a_failed_run() {
    let w = Fake::default();
    w.put("inbox/big.csv", 2 * MIB, "b", "2026-11-21T08:30:00Z");
    let d = w.dispatcher(MIB);
    let event = eventbridge("inbox/big.csv", 2 * MIB, "b");
    // Two lost jobs so far: a third is submitted.
    w.0.ledger.lock().unwrap().insert(
        run_id("b"),
        dead_attempt("b", "inbox/big.csv", 2 * MIB, 2, false),
    );
    let third = handle(&d, &event, None).unwrap();
    assert_eq!(outcomes(&third)[0].1, "submitted");
    assert_eq!(w.0.ledger.lock().unwrap()[&run_id("b")].attempts, 3);
    // It is lost too. A dry run says what comes next, changing nothing:
    w.0.ledger.lock().unwrap().insert(
        run_id("b"),
        dead_attempt("b", "inbox/big.csv", 2 * MIB, 3, false),
    );
    let mut dry = w.dispatcher(MIB);
    dry.config.dry_run = true;
    let plan = handle(&dry, &event, None).unwrap();
    match &plan.objects[0].outcome {
        Outcome::Planned { action, reason } => {
            assert_eq!(serde_json::to_value(action).unwrap(), "give_up");
            assert!(reason.contains("3 attempts"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(w.0.given_up.lock().unwrap().is_empty() && w.0.manifests.lock().unwrap().is_empty());
    // No fourth job: a failed run instead, never retried.
    w.0.ledger.lock().unwrap().insert(
        run_id("b"),
        dead_attempt("b", "inbox/big.csv", 2 * MIB, 3, false),
    );
    let (given_up, logs) = logged_as_in_lambda(|| handle(&d, &event, None).unwrap());
    // The deployment's alarm counts the log lines its metric filter matches: this one does.
    let (path, _) = poison_filter();
    assert!(
        logs.iter()
            .any(|l| l["level"] == "ERROR" && pointer(l, &path) == Some(&json!(true))),
        "no line matches the filter {path:?}: {logs:?}"
    );
    match &given_up.objects[0].outcome {
        Outcome::Failed {
            code, retryable, ..
        } => assert!(code == "gave_up" && !retryable, "{code}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.jobs().len(), 1);
    assert_eq!(
        *w.0.given_up.lock().unwrap(),
        vec!["inbox/big.csv".to_string()]
    );
    let later = handle(&d, &event, None).unwrap();
    assert_eq!(
        outcomes(&later)[0].1,
        "skipped",
        "its failed run is its answer"
    );
}

/// `run`'s log lines, as the Lambda binary writes them (JSON, fields under `fields`).
fn logged_as_in_lambda<T>(run: impl FnOnce() -> T) -> (T, Vec<serde_json::Value>) {
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, run);
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let logs = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out, logs)
}

/// The JSON path of the poison-input metric filter in `infra/templates/dispatch.yaml`
/// (`{ $.a.b IS TRUE }`), and the pattern itself.
fn poison_filter() -> (Vec<String>, String) {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/templates/dispatch.yaml"
    ))
    .unwrap();
    let metric = template
        .find("PoisonInputsMetric:")
        .expect("the metric filter");
    let line = template[metric..]
        .lines()
        .find(|l| l.trim_start().starts_with("FilterPattern:"))
        .unwrap();
    let pattern = line
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .trim_matches('"')
        .to_string();
    let inner = pattern.trim_matches(|c| c == '{' || c == '}').trim();
    let (path, test) = inner.split_once(' ').unwrap();
    assert_eq!(test.trim(), "IS TRUE", "{pattern}");
    let path = path
        .strip_prefix("$.")
        .unwrap()
        .split('.')
        .map(String::from)
        .collect();
    (path, pattern)
}

fn pointer<'a>(v: &'a serde_json::Value, path: &[String]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(v, |v, key| v.get(key))
}

#[test]
fn stale_events_and_the_lake_itself_are_not_processed() {
    let w = Fake::default();
    w.put("inbox/replaced.csv", 10, "new-etag", "2026-11-21T08:30:00Z");
    let d = w.dispatcher(T);
    let stale = handle(&d, &eventbridge("inbox/replaced.csv", 10, "old-etag"), None).unwrap();
    match &stale.objects[0].outcome {
        Outcome::Failed {
            code, retryable, ..
        } => assert!(code == "object_changed" && !retryable),
        other => panic!("{other:?}"),
    }
    let mut own = eventbridge("lake/inbox/x.csv", 10, "e");
    own["detail"]["bucket"]["name"] = json!("duff-lake");
    let report = handle(&d, &own, None).unwrap();
    match &report.objects[0].outcome {
        Outcome::Ignored { reason } => assert!(reason.contains("inside the lake"), "{reason}"),
        other => panic!("{other:?}"),
    }
    w.fail_head("inbox/denied.csv", StorageErrorKind::Denied);
    let denied = handle(&d, &eventbridge("inbox/denied.csv", 1, "e"), None).unwrap();
    assert!(matches!(
        &denied.objects[0].outcome,
        Outcome::Failed { retryable: false, code, .. } if code == "storage_denied"
    ));
    assert!(w.runs().is_empty());
}

fn backfill_world() -> Fake {
    let w = Fake::default();
    w.put("inbox/a.csv", MIB, "ea", "2026-11-02T10:00:00Z");
    w.put("inbox/b.csv", MIB, "eb", "2026-11-03T10:00:00Z");
    w.put("inbox/c.csv", 300 * MIB, "ec", "2026-11-04T10:00:00Z");
    w.put("inbox/d.csv", 300 * MIB, "ed", "2026-11-05T10:00:00Z");
    w.put("inbox/e.txt", 10, "ee", "2026-11-05T10:00:00Z");
    w.put("inbox/f.csv", MIB, "ef", "2026-10-15T10:00:00Z");
    w.put("inbox/g.csv.gz", 2 * MIB, "eg", "2026-11-30T23:59:59Z");
    w.put("other/h.csv", MIB, "eh", "2026-11-05T10:00:00Z");
    w.processed("ea");
    w.processed("ed");
    w
}

#[test]
fn a_backfill_dispatches_only_what_is_unprocessed_across_pages() {
    let w = backfill_world();
    let d = w.dispatcher(T);
    let mut request = fixture("backfill.json");
    request["page_size"] = json!(2);

    request["dry_run"] = json!(true);
    let plan = handle(&d, &request, None).unwrap();
    assert!(plan.dry_run);
    assert_eq!(
        outcomes(&plan),
        [
            ("s3://duff-inbox/inbox/b.csv".to_string(), "planned"),
            ("s3://duff-inbox/inbox/c.csv".to_string(), "planned"),
            ("s3://duff-inbox/inbox/g.csv.gz".to_string(), "planned"),
        ]
    );
    assert!(w.jobs().is_empty() && w.runs().is_empty() && w.0.ledger.lock().unwrap().is_empty());
    assert_eq!(plan.count("skipped"), 2);
    assert_eq!(plan.count("ignored"), 1);
    assert_eq!(plan.count("out_of_range"), 1);
    assert_eq!(
        w.0.lists.load(std::sync::atomic::Ordering::Relaxed),
        4,
        "7 keys, 2 per page"
    );

    request["dry_run"] = json!(false);
    let done = handle(&d, &request, None).unwrap();
    assert_eq!(
        outcomes(&done),
        [
            ("s3://duff-inbox/inbox/b.csv".to_string(), "processed"),
            ("s3://duff-inbox/inbox/c.csv".to_string(), "submitted"),
            ("s3://duff-inbox/inbox/g.csv.gz".to_string(), "processed"),
        ]
    );
    assert_eq!(w.jobs().len(), 1);
    assert_eq!(w.jobs()[0].pa_date, date("2026-11-04"), "LastModified date");
    assert_eq!(w.runs()[0], ("inbox/b.csv".to_string(), date("2026-11-03")));

    let nothing_left = handle(&d, &request, None).unwrap();
    assert!(
        nothing_left.objects.is_empty(),
        "{:?}",
        nothing_left.objects
    );
    assert_eq!(nothing_left.count("skipped"), 5);
    assert_eq!(w.jobs().len(), 1);
}

/// The nightly window: only the last N days of uploads are checked; with dated keys the
/// listing starts at the window (a day early) instead of the start of the inbox.
#[test]
fn a_nightly_backfill_looks_at_its_window_only_and_lists_from_it_when_keys_are_dated() {
    let w = Fake::default();
    let day = |back: i64| Utc::now() - chrono::Duration::days(back);
    let key = |back: i64| format!("inbox/{}/orders.csv", day(back).format("%Y-%m-%d"));
    for back in [30, 8, 3, 0] {
        w.put(&key(back), 10, &format!("e{back}"), &day(back).to_rfc3339());
    }
    let d = w.dispatcher(T);
    let request = |dated: bool| {
        json!({"bucket": fakes::INBOX, "prefix": "inbox/", "lookback_days": 7,
               "dated_keys": dated, "dry_run": true})
    };
    let plan = handle(&d, &request(false), None).unwrap();
    let planned: Vec<String> = plan.objects.iter().map(|o| o.object.clone()).collect();
    let in_window = vec![
        format!("s3://duff-inbox/{}", key(3)),
        format!("s3://duff-inbox/{}", key(0)),
    ];
    assert_eq!(planned, in_window);
    assert_eq!(plan.count("out_of_range"), 2, "listed, not checked");
    assert_eq!(*w.0.list_starts.lock().unwrap(), vec![None]);

    let dated = handle(&d, &request(true), None).unwrap();
    let planned: Vec<String> = dated.objects.iter().map(|o| o.object.clone()).collect();
    assert_eq!(planned, in_window);
    // Listed from the day before the window (time zones): that day's key is listed and left
    // out; the month-old one is not even listed.
    assert_eq!(dated.count("out_of_range"), 1);
    let start = format!("inbox/{}", day(8).format("%Y-%m-%d"));
    assert_eq!(
        w.0.list_starts.lock().unwrap()[1].as_deref(),
        Some(start.as_str())
    );
}

#[test]
fn a_backfill_out_of_time_is_retried() {
    let w = backfill_world();
    let d = w.dispatcher(T);
    let almost_over = Some(SystemTime::now() + Duration::from_secs(5));
    let report = handle(&d, &fixture("backfill.json"), almost_over).unwrap();
    assert_eq!(report.count("failed"), 3);
    assert!(
        report
            .objects
            .iter()
            .all(|o| o.outcome.is_retryable_failure())
    );
    assert!(matches!(
        lambda_response(&report),
        Err(DispatchError::RetryableFailures(3))
    ));
    assert!(w.jobs().is_empty() && w.runs().is_empty());
}

#[test]
fn a_lambda_invocation_takes_its_deadline_from_the_context() {
    use lambda_runtime::{Context, LambdaEvent};
    let w = Fake::default();
    w.put("inbox/a.csv", 50 * MIB, "ea", "2026-11-21T08:30:00Z");
    w.put("inbox/b.csv", 50 * MIB, "eb", "2026-11-21T08:30:00Z");
    let d = w.dispatcher(T);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // A hand-made context has no deadline: only the size counts.
    let event = LambdaEvent::new(
        eventbridge("inbox/a.csv", 50 * MIB, "ea"),
        Context::default(),
    );
    let response = rt.block_on(duff_dispatcher::invoke(&d, event)).unwrap();
    assert_eq!(response["objects"][0]["outcome"], "processed");
    // Ten seconds left: not enough for 50 MiB here.
    let mut context = Context::default();
    let in_10s = SystemTime::now() + Duration::from_secs(10);
    context.deadline = in_10s
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let event = LambdaEvent::new(eventbridge("inbox/b.csv", 50 * MIB, "eb"), context);
    let response = rt.block_on(duff_dispatcher::invoke(&d, event)).unwrap();
    assert_eq!(response["objects"][0]["outcome"], "submitted");
    assert_eq!(w.jobs().len(), 1);
}
