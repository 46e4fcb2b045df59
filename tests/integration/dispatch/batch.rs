//! An AWS Batch stand-in on loopback: answers SubmitJob (REST-JSON, `POST /v1/submitjob`) and
//! DescribeJobs (`POST /v1/describejobs`) like Batch does, records every request, and can
//! throttle (429 `TooManyRequestsException`) or reject (400 `ClientException`) on demand.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use duff_s3::test_server::{ACCESS_KEY, REGION, SECRET_KEY};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub signed: bool,
    pub body: serde_json::Value,
    /// What the stand-in answered.
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    /// Requests still to answer with 429.
    throttle: AtomicUsize,
    /// Requests still to answer with 400.
    reject: AtomicUsize,
    /// Job id → (status, reason) for DescribeJobs: every job submitted here (`SUBMITTED` until
    /// a test says otherwise) and those a test set; other ids are unknown.
    states: Mutex<std::collections::BTreeMap<String, (String, String)>>,
}

pub struct BatchStandIn {
    pub url: String,
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

impl BatchStandIn {
    pub fn start() -> BatchStandIn {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        BatchStandIn {
            url,
            shared,
            _runtime: runtime,
        }
    }

    /// Answers the next `n` requests with 429 TooManyRequestsException.
    pub fn throttle_next(&self, n: usize) {
        self.shared.throttle.store(n, Ordering::SeqCst);
    }

    /// Answers the next `n` requests with 400 ClientException.
    pub fn reject_next(&self, n: usize) {
        self.shared.reject.store(n, Ordering::SeqCst);
    }

    /// What DescribeJobs answers for `job_id` from now on.
    pub fn set_state(&self, job_id: &str, status: &str, reason: &str) {
        let mut states = self.shared.states.lock().unwrap();
        states.insert(job_id.into(), (status.into(), reason.into()));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The bodies of the SubmitJob requests that created a job.
    pub fn submitted(&self) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == "/v1/submitjob" && r.status == 200)
            .map(|r| r.body)
            .collect()
    }

    /// Client settings for this stand-in (the S3 test server's credentials and region).
    pub fn endpoint(&self) -> duff_s3::Endpoint {
        duff_s3::Endpoint {
            url: Some(self.url.clone()),
            region: Some(REGION.into()),
            credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
        }
    }
}

fn take(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let known = ["/v1/submitjob", "/v1/describejobs"].contains(&uri.path());
    let (status, response) = if !known {
        (
            StatusCode::NOT_FOUND,
            error("ClientException", "unknown operation"),
        )
    } else if take(&shared.throttle) {
        (
            StatusCode::TOO_MANY_REQUESTS,
            error("TooManyRequestsException", "Too Many Requests"),
        )
    } else if take(&shared.reject) {
        (
            StatusCode::BAD_REQUEST,
            error("ClientException", "Job queue does not exist"),
        )
    } else if uri.path() == "/v1/describejobs" {
        (StatusCode::OK, describe(&shared, &body))
    } else {
        let n = shared.requests.lock().unwrap().len();
        let id = format!("4c7c6a8e-0000-4000-8000-{n:012}");
        // Batch knows a job from its submission on.
        let mut states = shared.states.lock().unwrap();
        states.insert(id.clone(), ("SUBMITTED".into(), String::new()));
        drop(states);
        let ok = serde_json::json!({
            "jobArn": format!("arn:aws:batch:us-east-1:123456789012:job/{id}"),
            "jobName": body["jobName"],
            "jobId": id,
        });
        (
            StatusCode::OK,
            ([("content-type", "application/json")], ok.to_string()).into_response(),
        )
    };
    shared.requests.lock().unwrap().push(Recorded {
        path: uri.path().to_string(),
        signed: headers
            .get("authorization")
            .is_some_and(|a| a.to_str().unwrap_or("").starts_with("AWS4-HMAC-SHA256")),
        body,
        status: status.as_u16(),
    });
    let mut response = response;
    *response.status_mut() = status;
    response
}

/// DescribeJobs: the jobs asked for that the stand-in knows, as Batch's `JobDetail`.
fn describe(shared: &Shared, body: &serde_json::Value) -> Response {
    let states = shared.states.lock().unwrap();
    let ids = body["jobs"].as_array().cloned().unwrap_or_default();
    let jobs: Vec<serde_json::Value> = ids
        .iter()
        .filter_map(|id| {
            let id = id.as_str()?;
            let (status, reason) = states.get(id)?;
            Some(serde_json::json!({
                "jobArn": format!("arn:aws:batch:us-east-1:123456789012:job/{id}"),
                "jobName": "duff-job",
                "jobId": id,
                "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/duff-jobs",
                "status": status,
                "statusReason": reason,
                "createdAt": 1_763_715_301_000_u64,
                "startedAt": 1_763_715_421_000_u64,
                "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/duff-job:1",
                "dependsOn": [],
            }))
        })
        .collect();
    let ok = serde_json::json!({ "jobs": jobs });
    ([("content-type", "application/json")], ok.to_string()).into_response()
}

/// A Batch error: the type in `x-amzn-ErrorType`, the message in the body (REST-JSON).
fn error(kind: &'static str, message: &str) -> Response {
    (
        [
            ("x-amzn-errortype", kind),
            ("content-type", "application/json"),
        ],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response()
}
