//! The real `duff-dispatcher-lambda` binary against a stand-in of the Lambda Runtime API on
//! loopback: it starts from the environment the infra sets, answers invocations, reports
//! errors with the dispatcher's codes, and logs JSON lines.

use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Default)]
struct Api {
    events: Mutex<VecDeque<Value>>,
    /// (request id, "response" or "error", body)
    results: Mutex<Vec<(String, &'static str, Value)>>,
}

async fn next(State(api): State<Arc<Api>>) -> axum::response::Response {
    let event = api.events.lock().unwrap().pop_front();
    let Some(event) = event else {
        // No more work: hold the poll, as Lambda does between invocations.
        return std::future::pending().await;
    };
    let n = api.results.lock().unwrap().len();
    let deadline = SystemTime::now() + Duration::from_secs(300);
    let ms = deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    (
        [
            ("lambda-runtime-aws-request-id", format!("req-{n}")),
            ("lambda-runtime-deadline-ms", ms.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:duff-dispatcher".into(),
            ),
        ],
        event.to_string(),
    )
        .into_response()
}

fn record(api: &Api, id: String, kind: &'static str, body: &Bytes) {
    let body = serde_json::from_slice(body).unwrap_or(Value::Null);
    api.results.lock().unwrap().push((id, kind, body));
}

async fn response(State(api): State<Arc<Api>>, Path(id): Path<String>, body: Bytes) {
    record(&api, id, "response", &body);
}

async fn error(State(api): State<Arc<Api>>, Path(id): Path<String>, body: Bytes) {
    record(&api, id, "error", &body);
}

fn lambda_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_LAMBDA_FUNCTION_NAME", "duff-dispatcher"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("DUFF_LAKE", "s3://duff-lake/"),
        ("DUFF_BATCH_JOB_QUEUE", "duff-jobs"),
        ("DUFF_BATCH_JOB_DEFINITION", "duff-job"),
        ("DUFF_LOG_FORMAT", "json"),
    ]
}

#[test]
fn the_lambda_binary_answers_invocations_and_logs_json() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let api = Arc::new(Api::default());
    let test_event: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/events/s3-test-event.json"
        ))
        .unwrap(),
    )
    .unwrap();
    api.events
        .lock()
        .unwrap()
        .extend([test_event, json!({"hello": "world"})]);
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .with_state(api.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap().to_string();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut child = Command::new(env!("CARGO_BIN_EXE_duff-dispatcher-lambda"))
        .env_clear()
        .envs(lambda_env())
        .env("AWS_LAMBDA_RUNTIME_API", &address)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while api.results.lock().unwrap().len() < 2 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let results = api.results.lock().unwrap().clone();
    assert_eq!(
        results.len(),
        2,
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (id, kind, body) = &results[0];
    assert_eq!((id.as_str(), *kind), ("req-0", "response"));
    assert_eq!(body["event"], "s3_test_event");
    assert_eq!(body["objects"][0]["outcome"], "ignored");

    let (id, kind, body) = &results[1];
    assert_eq!((id.as_str(), *kind), ("req-1", "error"));
    assert_eq!(body["errorType"], "unrecognised_event");

    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(!logs.contains('\u{1b}'), "no ANSI colours: {logs}");
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "object dispatched"),
        "{logs}"
    );
}

#[test]
fn the_lambda_binary_refuses_to_start_without_its_configuration() {
    let output = Command::new(env!("CARGO_BIN_EXE_duff-dispatcher-lambda"))
        .env_clear()
        .envs(
            lambda_env()
                .into_iter()
                .filter(|(k, _)| *k != "DUFF_BATCH_JOB_QUEUE"),
        )
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DUFF_BATCH_JOB_QUEUE is not set"),
        "{stderr}"
    );
}
