//! The whole AWS flow on MiniStack, a local AWS emulator listening on loopback, deployed the
//! way a user deploys it (`infra/emulator/up`, which is `infra/deploy.sh --endpoint-url`):
//! upload → EventBridge → SQS → dispatcher Lambda → engine (inside the Lambda for a small
//! file; for a large one exactly one SubmitJob, then `duff job` run with what it carried, as
//! the job's container would) → the lake in S3 → the API Lambda behind API Gateway (lake
//! backend, API key) → the dashboard at the stage URL. Every report is compared with the local
//! engine's answer on the same objects. Nothing talks to anything but 127.0.0.1.

mod deployment;
mod recorder;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::api::{dashboard, request, serving};
use crate::venv::text;
use deployment::{Deployment, PREFIX, SIZE_THRESHOLD, repo};

/// The reports compared between the emulator and the local engine: every route with data
/// (a run's own page aside: its times are the attempt's), for one client and one run.
fn reports(client: i64, run_id: &str) -> Vec<String> {
    vec![
        "/clients?limit=25&offset=3".into(),
        "/clients?sort=volume&order=asc&limit=5".into(),
        "/sales/by-product?limit=12".into(),
        "/sales/by-status".into(),
        "/sales/by-channel?format=csv".into(),
        "/sales/by-day".into(),
        format!("/clients/{client}/orders?limit=30"),
        format!("/clients/{client}/orders?status=delivered"),
        format!("/runs/{run_id}/quarantine?limit=15&offset=3"),
        format!("/client-orders?resource=client_orders&client_id={client}"),
        format!("/client-orders?resource=status_summary&client_id={client}"),
        format!("/client-orders?resource=orders_by_client&client_id={client}"),
    ]
}

/// The fields of a run that do not depend on where it ran.
fn run_facts(run: &Value) -> Value {
    let keep = [
        "run_id",
        "source_uri",
        "ingested_at",
        "status",
        "rows_read",
        "rows_written",
        "exact_duplicates",
        "quarantined",
        "quarantined_by_reason",
        "nothing_lost",
        "pa_date",
        "error_code",
    ];
    keep.iter()
        .map(|k| (k.to_string(), run[k].clone()))
        .collect()
}

#[test]
fn the_aws_flow_runs_end_to_end_on_a_local_emulator() {
    let deployment = Deployment::up();
    let d = &deployment;
    let files = tempfile::tempdir().unwrap();
    let duff = env!("CARGO_BIN_EXE_duff");
    let datagen = |name: &str, rows: &str, seed: &str| -> PathBuf {
        let path = files.path().join(name);
        let out = Command::new(duff)
            .args(["datagen", "--rows", rows, "--seed", seed, "--out"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        path
    };
    let small = datagen("small.csv", "2000", "11");
    let large = datagen("large.csv", "15000", "12");
    assert!(std::fs::metadata(&small).unwrap().len() < SIZE_THRESHOLD);
    assert!(std::fs::metadata(&large).unwrap().len() >= SIZE_THRESHOLD);
    let bad = repo().join("tests/fixtures/files/missing_column.csv");
    let object = |name: &str| format!("{}{name}", d.inbox);

    // The small file: processed inside the dispatcher Lambda.
    d.upload(&small, "small.csv");
    let run = d.wait("the small file's run", Duration::from_secs(90), || {
        d.run_of("small.csv").filter(|r| r["status"] == "succeeded")
    });
    assert_eq!(run["nothing_lost"], true, "{run}");
    let logged = d.wait("the dispatcher's log line", Duration::from_secs(30), || {
        d.dispatched(&object("small.csv")).pop()
    });
    assert_eq!(logged["fields"]["outcome"], "processed", "{logged}");

    // The large file: exactly one SubmitJob, which the emulator's Batch accepts and runs not.
    d.upload(&large, "large.csv");
    let submitted = d.wait(
        "the large file's SubmitJob",
        Duration::from_secs(90),
        || {
            let jobs = d.recorder.json_bodies("/v1/submitjob");
            (!jobs.is_empty()).then_some(jobs)
        },
    );
    assert_eq!(submitted.len(), 1, "{submitted:#?}");
    let submitted = &submitted[0];
    assert_eq!(submitted["jobQueue"].as_str().unwrap(), d.jobs_queue_arn());
    assert_eq!(submitted["parameters"]["key"], "inbox/large.csv");
    assert_eq!(d.jobs().len(), 1);
    assert!(d.run_of("large.csv").is_none(), "nothing ran it yet");
    let out = d.run_job(submitted);
    assert!(out.status.success(), "duff job: {}", text(&out));
    // The API follows the lake's logs at most once a second.
    let run = d.wait("the job's run listed", Duration::from_secs(30), || {
        d.run_of("large.csv")
    });
    assert_eq!(run["status"], "succeeded", "{run}");

    // A file with a bad header: a failed run, visible in the API with its reason.
    d.upload(&bad, "bad.csv");
    let failed = d.wait("the bad file's run", Duration::from_secs(90), || {
        d.run_of("bad.csv")
    });
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error_code"], "missing_columns", "{failed}");

    // The local engine on the same objects (same LastModified, so the same partitions and
    // ingestion times), in the same order, into a local lake served by `duff serve`.
    let local = tempfile::tempdir().unwrap();
    for name in ["small.csv", "large.csv", "bad.csv"] {
        let out = Command::new(duff)
            .args(["run", "--no-progress", "--lake"])
            .arg(local.path())
            .arg(object(name))
            .env("AWS_ENDPOINT_URL", &d.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap();
        assert!(
            out.status.success() == (name != "bad.csv"),
            "local run of {name}: {}",
            text(&out)
        );
    }
    let mut serve = Command::new(duff);
    serve
        .args(["serve", "--addr", "127.0.0.1:0", "--lake"])
        .arg(local.path());
    let (server, addr, _) = serving(serve);
    let _server = KillOnDrop(server);
    let local_get = |target: &str| request(&addr, "GET", target, &[]);
    let clients = local_get("/clients?limit=1").json();
    let client = clients["rows"][0]["client_id"].as_i64().unwrap();
    let compare = |when: &str| {
        let small = d.run_of("small.csv").unwrap();
        for target in reports(client, small["run_id"].as_str().unwrap()) {
            let (want, got) = (local_get(&target), d.api(&target));
            assert_eq!(got.status, want.status, "{when} {target}: {}", got.text());
            assert_eq!(got.text(), want.text(), "{when} {target}");
        }
        let local_runs = local_get("/runs?limit=100").json()["rows"]
            .as_array()
            .unwrap()
            .clone();
        let mut want: Vec<Value> = local_runs.iter().map(run_facts).collect();
        let mut got: Vec<Value> = d.runs().iter().map(run_facts).collect();
        want.sort_by_key(|r| r.to_string());
        got.sort_by_key(|r| r.to_string());
        assert_eq!(got, want, "{when}: the runs");
    };
    compare("after the three uploads");

    // A re-delivered event and the same objects uploaded again: no second run, no second job.
    let body = serde_json::json!({
        "version": "0", "id": "redelivered-1", "detail-type": "Object Created",
        "source": "aws.s3", "account": "000000000000", "time": "2026-12-05T00:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {
            "version": "0",
            "bucket": { "name": d.inbox_bucket() },
            "object": {
                "key": "inbox/small.csv",
                "size": std::fs::metadata(&small).unwrap().len(),
                "etag": d.etag("inbox/small.csv"),
            },
            "reason": "PutObject"
        }
    });
    let queue = d.aws(&[
        "sqs",
        "get-queue-url",
        "--queue-name",
        &format!("{PREFIX}-dispatch"),
        "--query",
        "QueueUrl",
        "--output",
        "text",
    ]);
    d.aws(&[
        "sqs",
        "send-message",
        "--queue-url",
        queue.trim(),
        "--message-body",
        &body.to_string(),
    ]);
    d.upload(&small, "small.csv");
    d.upload(&large, "large.csv");
    d.wait("the repeated deliveries", Duration::from_secs(90), || {
        (d.dispatched(&object("small.csv")).len() == 3
            && d.dispatched(&object("large.csv")).len() == 2)
            .then_some(())
    });
    for (name, times) in [("small.csv", 3), ("large.csv", 2)] {
        let outcomes: Vec<String> = d
            .dispatched(&object(name))
            .iter()
            .map(|l| l["fields"]["outcome"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(outcomes.len(), times);
        assert!(
            outcomes[1..].iter().all(|o| o == "skipped"),
            "{name}: {outcomes:?}"
        );
    }
    assert_eq!(
        d.recorder.json_bodies("/v1/submitjob").len(),
        1,
        "no second SubmitJob"
    );
    assert_eq!(d.jobs().len(), 1);
    assert_eq!(d.runs().len(), 3, "no second run");
    compare("after the repeated deliveries");

    dashboard_at_the_stage_url(d);
}

/// A child process that does not outlive a failed test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The dashboard at the stage URL in headless Chromium: the page and its files load without
/// the key, the data sections ask for it (API Gateway answers them 403), and once it is entered
/// every chart is drawn from the reports, with no console error or uncaught exception.
fn dashboard_at_the_stage_url(d: &Deployment) {
    // The page and its files need no key; the data does (API Gateway's 403, not the API's).
    assert_eq!(d.api_as("/", false).status, 200);
    assert_eq!(d.api_as("/assets/dashboard.js", false).status, 200);
    let refused = d.api_as("/sales/by-status", false);
    assert_eq!(
        (refused.status, refused.json()["message"].as_str()),
        (403, Some("Forbidden"))
    );
    let url = &d.api_url;
    let script = repo().join("tests/integration/emulator/browser.py");
    let out = Command::new("python3")
        .arg(script)
        .args([dashboard::chromium().to_str().unwrap(), url, &d.key, "120"])
        .output()
        .unwrap();
    assert!(out.status.success(), "the browser: {}", text(&out));
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["key_form_shown"], true, "the key is asked for");
    let before: Vec<&str> = seen["problems_before_key"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        before
            .iter()
            .all(|p| p.starts_with("log: ") && p.contains("403")),
        "before the key only the refused requests are logged: {before:#?}"
    );
    assert_eq!(seen["problems_after_key"], serde_json::json!([]));
    let dom = seen["dom"].as_str().unwrap();
    assert!(!dom.contains("class=\"error\""), "a section failed:\n{dom}");

    // Each chart shows its report's numbers.
    let column = |target: &str, name: &str| -> Vec<String> {
        let rows = d.api(target).json()["rows"].as_array().unwrap().clone();
        let mut values: Vec<String> = rows
            .iter()
            .map(|r| r[name].to_string().replace('"', ""))
            .collect();
        values.sort();
        values
    };
    let drawn = |chart: &str, mark: &str| -> Vec<String> {
        let mut values = dashboard::attr_values(dashboard::chart(dom, chart), mark, "data-value");
        values.sort();
        values
    };
    let bar = "class=\"bar\"";
    assert_eq!(
        drawn("products", bar),
        column("/sales/by-product?limit=15", "sales")
    );
    assert_eq!(drawn("channels", bar), column("/sales/by-channel", "sales"));
    assert_eq!(
        drawn("status", "class=\"slice\""),
        column("/sales/by-status", "order_lines")
    );
    dashboard::chart(dom, "days");
    assert_eq!(
        dom.matches("data-chart=\"run-quality\"").count(),
        d.runs().len()
    );
}
