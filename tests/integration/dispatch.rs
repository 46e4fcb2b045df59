//! The dispatcher end to end on loopback: the real handler with the real S3 client against the
//! S3 test server, the real Batch client against a Batch stand-in, and the engine in-process.

mod batch;

use std::process::Command;
use std::time::Duration;

use batch::BatchStandIn;
use duff_datagen::{Dirt, Expected, GenConfig, Size};
use duff_dispatcher::batch::{BatchJobs, batch_client};
use duff_dispatcher::{
    AwsDispatcher, BatchTarget, Config, JobRequest, JobState, Jobs, Outcome, Report, Setup,
};
use duff_engine::{Manifest, RunStatus};
use duff_s3::{Location, TransferSettings};
use serde_json::{Value, json};

use duff_s3::test_server::S3Server;

const INBOX: &str = "duff-inbox";
const LAKE: &str = "duff-lake";
const MIB: u64 = 1 << 20;

fn sample(rows: u64, seed: u64) -> (Vec<u8>, Expected) {
    let cfg = GenConfig {
        seed,
        size: Size::Rows(rows),
        dirt: Dirt::typical(),
        ..GenConfig::default()
    };
    let mut out = Vec::new();
    let expected = duff_datagen::generate(&cfg, &mut out).unwrap();
    (out, expected)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn target() -> BatchTarget {
    BatchTarget {
        queue: "arn:aws:batch:us-east-1:123456789012:job-queue/duff-jobs".into(),
        definition: "duff-job".into(),
        job_size: Default::default(),
    }
}

/// The dispatcher as the Lambda builds it, pointed at the loopback services. The runtime must
/// outlive it (the S3 lake blocks on it).
fn dispatcher(
    server: &S3Server,
    batch: &BatchStandIn,
    threshold: u64,
) -> (tokio::runtime::Runtime, AwsDispatcher) {
    let config = Config {
        lake: Location::parse(&format!("s3://{LAKE}/lake")).unwrap(),
        inbox_prefix: "inbox/".into(),
        threshold_bytes: threshold,
        batch: Some(target()),
        dry_run: false,
    };
    let setup = Setup {
        s3: server.endpoint(),
        batch: batch.endpoint(),
        settings: TransferSettings {
            read_chunk_bytes: 256 << 10,
            read_concurrency: 4,
            part_bytes: 5 << 20,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            ..TransferSettings::default()
        },
        ..Setup::default()
    };
    let rt = runtime();
    let d = rt
        .block_on(duff_dispatcher::connect(config, &setup))
        .unwrap();
    (rt, d)
}

fn handle(rt: &tokio::runtime::Runtime, d: &AwsDispatcher, payload: &Value) -> Report {
    rt.block_on(d.handle(payload, None)).unwrap()
}

/// HeadObject of an inbox object.
fn head(server: &S3Server, key: &str) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    runtime().block_on(async {
        let client = duff_s3::client(&TransferSettings::default(), &server.endpoint()).await;
        client
            .head_object()
            .bucket(INBOX)
            .key(key)
            .send()
            .await
            .unwrap()
    })
}

/// The object's ETag as S3 reports it, without quotes.
fn etag(server: &S3Server, key: &str) -> String {
    head(server, key)
        .e_tag()
        .unwrap()
        .trim_matches('"')
        .to_string()
}

/// An S3 notification for one upload, the key URL-encoded as S3 does it.
fn s3_event(key_encoded: &str, size: usize, etag: &str) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T09:15:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "1", "x-amz-id-2": "2"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "uploads",
               "bucket": {"name": INBOX, "ownerIdentity": {"principalId": "X"}, "arn": "arn:aws:s3:::duff-inbox"},
               "object": {"key": key_encoded, "size": size, "eTag": etag, "sequencer": "01"}}
    }]})
}

/// The EventBridge "Object Created" event for one upload.
fn eventbridge_event(key_encoded: &str, size: usize, etag: &str) -> Value {
    json!({
        "version": "0", "id": "e", "detail-type": "Object Created", "source": "aws.s3",
        "account": "123456789012", "time": "2026-11-21T09:15:00Z", "region": "us-east-1",
        "resources": ["arn:aws:s3:::duff-inbox"],
        "detail": {"version": "0", "bucket": {"name": INBOX},
                   "object": {"key": key_encoded, "size": size, "etag": etag, "sequencer": "01"},
                   "reason": "PutObject"}
    })
}

/// The UTC date of an inbox object's upload (S3 LastModified): its partition.
fn upload_date(server: &S3Server, key: &str) -> String {
    let secs = head(server, key).last_modified().unwrap().secs();
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .date_naive()
        .to_string()
}

/// The lake in S3 is a Delta lake; the server keeps its objects as files, read back here as
/// a local Delta lake.
fn lake_runs(server: &S3Server) -> Vec<Manifest> {
    let dir = server.bucket_dir(LAKE).join("lake");
    if !dir.exists() {
        return Vec::new();
    }
    duff_delta::DeltaLake::open_local(dir)
        .unwrap()
        .runs()
        .unwrap()
}

fn manifest(server: &S3Server, run_id: &str) -> Option<Manifest> {
    lake_runs(server).into_iter().find(|m| m.run_id == run_id)
}

fn names(report: &Report) -> Vec<(String, &'static str)> {
    report
        .objects
        .iter()
        .map(|o| (o.object.clone(), o.outcome.name()))
        .collect()
}

#[test]
fn submit_job_on_the_wire_is_retried_when_throttled() {
    let stand_in = BatchStandIn::start();
    stand_in.throttle_next(1);
    let rt = runtime();
    let jobs = BatchJobs::new(rt.block_on(batch_client(&stand_in.endpoint())), target());
    let request = JobRequest {
        name: "duff-orders_2026-0123456789abcdef0123".into(),
        bucket: INBOX.into(),
        key: "inbox/orders 2026 ü+.csv".into(),
        etag: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
        pa_date: "2026-11-21".parse().unwrap(),
        size: 200 << 20,
        gzip: false,
    };
    let job = rt.block_on(jobs.submit(&request)).unwrap();
    assert_eq!(job.job_id, "4c7c6a8e-0000-4000-8000-000000000001");
    assert_eq!(job.job_name, request.name);

    let requests = stand_in.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [429, 200],
        "the throttled SubmitJob is retried once"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.path == "/v1/submitjob" && r.signed)
    );
    assert_eq!(
        requests[0].body, requests[1].body,
        "the retry sends the same job"
    );
    let body = &requests[1].body;
    assert_eq!(body["jobName"], "duff-orders_2026-0123456789abcdef0123");
    assert_eq!(body["jobQueue"], target().queue);
    assert_eq!(body["jobDefinition"], "duff-job");
    assert_eq!(
        body["parameters"],
        json!({
            "bucket": INBOX,
            "key": "inbox/orders 2026 ü+.csv",
            "etag": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
            "pa_date": "2026-11-21",
        })
    );
    assert_eq!(
        body["retryStrategy"],
        json!({
            "attempts": 3,
            "evaluateOnExit": [
                {"action": "RETRY", "onExitCode": "75"},
                {"action": "RETRY", "onStatusReason": "Host EC2*"},
                {"action": "RETRY", "onStatusReason": "Your Spot Task was interrupted*"},
                {"action": "EXIT", "onReason": "*"},
            ]
        })
    );

    // A rejected request (unknown queue) is permanent: not retried, not retryable.
    stand_in.reject_next(1);
    let e = rt.block_on(jobs.submit(&request)).unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    assert!(e.to_string().contains("ClientException"), "{e}");
    assert_eq!(stand_in.requests().len(), 3);
    assert!(
        body.get("containerOverrides").is_none(),
        "a 200 MiB input runs at the definition's size: {body}"
    );

    // An input beyond the definition's memory gets a bigger job: 20 GB plans for 2^23 buckets
    // a shard (12.5 GiB of dedup tables) plus 1 GiB: 14 GiB, still on 2 vCPU.
    let big = JobRequest {
        size: 20_000_000_000,
        ..request
    };
    rt.block_on(jobs.submit(&big)).unwrap();
    let body = &stand_in.requests()[3].body;
    assert_eq!(
        body["containerOverrides"],
        json!({"resourceRequirements": [
            {"type": "VCPU", "value": "2"},
            {"type": "MEMORY", "value": "14336"},
        ]})
    );
}

#[test]
fn describe_jobs_on_the_wire_tells_active_ended_and_forgotten_jobs_apart() {
    let stand_in = BatchStandIn::start();
    let rt = runtime();
    let jobs = BatchJobs::new(rt.block_on(batch_client(&stand_in.endpoint())), target());
    stand_in.set_state("j-run", "RUNNABLE", "");
    stand_in.set_state("j-oom", "FAILED", "OutOfMemoryError: Container killed");
    stand_in.set_state("j-ok", "SUCCEEDED", "Essential container in task exited");
    let state = |id: &str| rt.block_on(jobs.state(id)).unwrap();
    assert_eq!(state("j-run"), JobState::Active);
    assert_eq!(
        state("j-oom"),
        JobState::Ended {
            status: "FAILED".into(),
            reason: "OutOfMemoryError: Container killed".into()
        }
    );
    assert!(matches!(state("j-ok"), JobState::Ended { status, .. } if status == "SUCCEEDED"));
    assert_eq!(state("j-gone"), JobState::Unknown);
    let requests = stand_in.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.path == "/v1/describejobs" && r.signed)
    );
    assert_eq!(requests[0].body, json!({"jobs": ["j-run"]}));

    // Throttling is retried by the SDK; a throttled answer is not read as a lost job.
    stand_in.throttle_next(1);
    assert_eq!(state("j-run"), JobState::Active);
    stand_in.reject_next(1);
    let e = rt.block_on(jobs.state("j-run")).unwrap_err();
    assert!(e.to_string().contains("ClientException"), "{e}");
}

#[test]
fn small_uploads_run_here_and_large_ones_go_to_batch_exactly_once() {
    let server = S3Server::start(&[INBOX, LAKE]);
    let stand_in = BatchStandIn::start();
    stand_in.throttle_next(1);
    let (small, small_expected) = sample(2_000, 11);
    let (large, _) = sample(20_000, 12);
    assert!(small.len() < MIB as usize && large.len() > MIB as usize);
    server.put(INBOX, "inbox/small orders.csv", &small);
    server.put(INBOX, "inbox/large orders+.csv", &large);
    let (rt, d) = dispatcher(&server, &stand_in, MIB);

    let small_event = s3_event(
        "inbox/small+orders.csv",
        small.len(),
        &etag(&server, "inbox/small orders.csv"),
    );
    let large_etag = etag(&server, "inbox/large orders+.csv");
    let large_event = eventbridge_event("inbox/large+orders%2B.csv", large.len(), &large_etag);

    let report = handle(&rt, &d, &small_event);
    assert_eq!(
        names(&report),
        [(
            "s3://duff-inbox/inbox/small orders.csv".to_string(),
            "processed"
        )]
    );
    let run_id = report.objects[0].run_id.clone().unwrap();
    let m = manifest(&server, &run_id).expect("the small upload's manifest is in the lake");
    assert_eq!(m.status, RunStatus::Succeeded);
    assert_eq!(m.source.uri, "s3://duff-inbox/inbox/small orders.csv");
    // The event says 2026-11-21; the partition is the upload's date, which a backfill, a
    // redelivery and the job all derive alike.
    assert_eq!(m.pa_date, upload_date(&server, "inbox/small orders.csv"));
    assert_ne!(m.pa_date, "2026-11-21");
    assert_eq!(m.counts.rows_read, small_expected.rows);
    assert_eq!(m.counts.rows_written, small_expected.kept);
    assert_eq!(m.counts.quarantined, small_expected.quarantined);
    assert!(m.nothing_lost);
    match &report.objects[0].outcome {
        Outcome::Processed { rows_written, .. } => assert_eq!(*rows_written, small_expected.kept),
        other => panic!("{other:?}"),
    }

    let report = handle(&rt, &d, &large_event);
    assert_eq!(
        names(&report),
        [(
            "s3://duff-inbox/inbox/large orders+.csv".to_string(),
            "submitted"
        )]
    );
    let large_run = report.objects[0].run_id.clone().unwrap();
    assert!(
        manifest(&server, &large_run).is_none(),
        "the job, not the Lambda, processes it"
    );
    let submitted = stand_in.submitted();
    assert_eq!(submitted.len(), 1);
    assert_eq!(
        submitted[0]["jobName"],
        format!("duff-large_orders_-{large_run}")
    );
    assert_eq!(
        submitted[0]["parameters"],
        json!({"bucket": INBOX, "key": "inbox/large orders+.csv", "etag": large_etag,
               "pa_date": upload_date(&server, "inbox/large orders+.csv")})
    );
    let marker: Value = serde_json::from_slice(
        &std::fs::read(
            server
                .bucket_dir(LAKE)
                .join(format!("lake/_dispatch/{large_run}.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(marker["job_id"], "4c7c6a8e-0000-4000-8000-000000000001");

    // The same events again (at-least-once delivery): nothing more happens.
    let lake_before = crate::common::snapshot(&server.bucket_dir(LAKE), true);
    for event in [&small_event, &large_event] {
        let again = handle(&rt, &d, event);
        assert_eq!(again.objects[0].outcome.name(), "skipped", "{again:?}");
    }
    assert_eq!(stand_in.submitted().len(), 1, "exactly one SubmitJob");
    // The duplicate's ledger create was refused (412): the lake is as it was.
    assert_eq!(
        crate::common::snapshot(&server.bucket_dir(LAKE), true),
        lake_before
    );
}

#[test]
fn a_backfill_dispatches_only_the_unprocessed_across_pages() {
    let server = S3Server::start(&[INBOX, LAKE]);
    let stand_in = BatchStandIn::start();
    let (rt, d) = dispatcher(&server, &stand_in, MIB);
    let (done1, _) = sample(1_000, 21);
    let (done2, _) = sample(1_000, 22);
    let (small, _) = sample(1_500, 23);
    let (large, _) = sample(20_000, 24);
    let (zipped, _) = sample(1_200, 25);
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&zipped).unwrap();
        e.finish().unwrap()
    };
    for (key, bytes) in [
        ("inbox/a-done.csv", &done1),
        ("inbox/b-done.csv", &done2),
        ("inbox/c-small.csv", &small),
        ("inbox/d-large.csv", &large),
        ("inbox/e-small.csv.gz", &gz),
    ] {
        server.put(INBOX, key, bytes);
    }
    server.put(INBOX, "inbox/f-notes.txt", b"not an input");
    server.put(INBOX, "elsewhere/g.csv", &done1);
    for key in ["inbox/a-done.csv", "inbox/b-done.csv"] {
        let event = s3_event(key, 0, &etag(&server, key));
        assert_eq!(
            handle(&rt, &d, &event).objects[0].outcome.name(),
            "processed"
        );
    }
    let manifests = || lake_runs(&server).len();
    assert_eq!(manifests(), 2);
    let lists_before = server.lists_of(INBOX);

    let request = |dry_run: bool| json!({"bucket": INBOX, "prefix": "inbox/", "dry_run": dry_run, "page_size": 2});
    let plan = handle(&rt, &d, &request(true));
    assert!(plan.dry_run);
    let planned: Vec<(String, String)> = plan
        .objects
        .iter()
        .map(|o| match &o.outcome {
            Outcome::Planned { action, .. } => (
                o.object.clone(),
                serde_json::to_value(action)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        planned,
        [
            (
                "s3://duff-inbox/inbox/c-small.csv".to_string(),
                "process_here".to_string()
            ),
            (
                "s3://duff-inbox/inbox/d-large.csv".to_string(),
                "submit_to_batch".to_string()
            ),
            (
                "s3://duff-inbox/inbox/e-small.csv.gz".to_string(),
                "process_here".to_string()
            ),
        ]
    );
    assert_eq!((plan.count("skipped"), plan.count("ignored")), (2, 1));
    assert_eq!(manifests(), 2, "a dry run writes nothing");
    assert!(stand_in.requests().is_empty(), "a dry run submits nothing");
    // The two runs above released their markers; the dry run claimed nothing.
    let markers =
        std::fs::read_dir(server.bucket_dir(LAKE).join("lake/_dispatch")).map_or(0, |d| d.count());
    assert_eq!(markers, 0, "a dry run claims nothing");
    let lists = server.lists_of(INBOX) - lists_before;
    assert_eq!(lists, 3, "6 keys under inbox/, 2 per page");

    let done = handle(&rt, &d, &request(false));
    assert_eq!(
        names(&done),
        [
            ("s3://duff-inbox/inbox/c-small.csv".to_string(), "processed"),
            ("s3://duff-inbox/inbox/d-large.csv".to_string(), "submitted"),
            (
                "s3://duff-inbox/inbox/e-small.csv.gz".to_string(),
                "processed"
            ),
        ]
    );
    assert_eq!(manifests(), 4);
    let submitted = stand_in.submitted();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0]["parameters"]["key"], "inbox/d-large.csv");

    let again = handle(&rt, &d, &request(false));
    assert!(again.objects.is_empty(), "{:?}", again.objects);
    assert_eq!(again.count("skipped"), 5);
    assert_eq!(stand_in.submitted().len(), 1);
}

/// The nightly window over the S3 protocol: with dated keys, ListObjectsV2 starts after the
/// day before the window (`start-after`), so an upload filed under an old date is not even
/// listed, however recent its LastModified.
#[test]
fn a_backfill_of_dated_keys_lists_from_its_window() {
    let server = S3Server::start(&[INBOX, LAKE]);
    let stand_in = BatchStandIn::start();
    let (rt, d) = dispatcher(&server, &stand_in, MIB);
    let (bytes, _) = sample(300, 31);
    let today = chrono::Utc::now().date_naive();
    let recent = format!("inbox/{}/new.csv", today.format("%Y-%m-%d"));
    for key in ["inbox/2020-01-01/old.csv", recent.as_str()] {
        server.put(INBOX, key, &bytes);
    }
    let plan = |dated: bool| {
        let request = json!({"bucket": INBOX, "prefix": "inbox/", "dry_run": true,
                             "lookback_days": 7, "dated_keys": dated});
        let report = handle(&rt, &d, &request);
        report
            .objects
            .iter()
            .map(|o| o.object.clone())
            .collect::<Vec<_>>()
    };
    let new = format!("s3://{INBOX}/{recent}");
    // By LastModified both are in the window: the key's date is only a filing convention.
    assert_eq!(
        plan(false),
        [
            format!("s3://{INBOX}/inbox/2020-01-01/old.csv"),
            new.clone()
        ]
    );
    assert_eq!(plan(true), [new]);
}

#[test]
fn duff_dispatch_runs_an_event_file_and_big_objects_in_process_without_a_queue() {
    let server = S3Server::start(&[INBOX, LAKE]);
    let (large, expected) = sample(20_000, 31);
    server.put(INBOX, "inbox/big one.csv", &large);
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    let payload = eventbridge_event(
        "inbox/big+one.csv",
        large.len(),
        &etag(&server, "inbox/big one.csv"),
    );
    std::fs::write(&event, payload.to_string()).unwrap();
    let duff = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_duff"))
            .args(args)
            .envs(server.env())
            .env_remove("DUFF_BATCH_JOB_QUEUE")
            .env_remove("DUFF_BATCH_JOB_DEFINITION")
            .output()
            .unwrap()
    };
    let common = [
        "--lake",
        "s3://duff-lake/lake/",
        "--threshold-bytes",
        "1048576",
    ];

    let out = duff(
        &[
            &["dispatch", "--event", event.to_str().unwrap()][..],
            &common[..],
        ]
        .concat(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let object = &report["objects"][0];
    assert_eq!(object["object"], "s3://duff-inbox/inbox/big one.csv");
    assert_eq!(object["outcome"], "processed");
    assert_eq!(object["place"], "here_without_batch");
    assert!(
        object["note"]
            .as_str()
            .unwrap()
            .contains("no Batch queue is configured")
    );
    assert_eq!(object["rows_written"], expected.kept);
    let run_id = object["run_id"].as_str().unwrap();
    assert_eq!(
        manifest(&server, run_id).unwrap().status,
        RunStatus::Succeeded
    );

    let out = duff(
        &[
            &["backfill", "--bucket", INBOX, "--dry-run"][..],
            &common[..],
        ]
        .concat(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["event"], "backfill");
    assert_eq!(report["summary"]["skipped"], 1);
    assert_eq!(report["objects"], json!([]));

    // A lake in a local folder and a Batch queue (the SDK's usual endpoint override): the big
    // object is submitted once, and the ledger marker lands next to the local lake's runs.
    let stand_in = BatchStandIn::start();
    let local_lake = dir.path().join("lake");
    let backfill = || {
        Command::new(env!("CARGO_BIN_EXE_duff"))
            .args([
                "backfill",
                "--bucket",
                INBOX,
                "--lake",
                local_lake.to_str().unwrap(),
            ])
            .args([
                "--threshold-bytes",
                "1048576",
                "--batch-queue",
                "q",
                "--batch-job-definition",
                "d",
            ])
            .envs(server.env())
            .env("AWS_ENDPOINT_URL_BATCH", &stand_in.url)
            .output()
            .unwrap()
    };
    for expected in ["submitted", "skipped"] {
        let out = backfill();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["summary"][expected], 1, "{report}");
    }
    assert_eq!(stand_in.submitted().len(), 1);
    assert_eq!(
        stand_in.submitted()[0]["parameters"]["key"],
        "inbox/big one.csv"
    );
    assert!(local_lake.join(format!("_dispatch/{run_id}.json")).exists());
}
