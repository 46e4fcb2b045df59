//! A deployment of the whole product to MiniStack by `infra/emulator/up`, and what the
//! end-to-end test does with it: the aws CLI against it, the API through API Gateway's stage,
//! the dispatcher's CloudWatch log lines, Batch's jobs, and a job run as its container would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::recorder::Recorder;
use crate::api::{Resp, request};
use crate::venv;

pub const PREFIX: &str = "e2e";
/// Inputs at or above this go to Batch: the small file stays under it, the large one not.
pub const SIZE_THRESHOLD: u64 = 1_000_000;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// What `infra/emulator/up` deployed; dropping it runs `infra/emulator/down`.
pub struct Deployment {
    pub port: u16,
    pub endpoint: String,
    /// `s3://bucket/prefix/`
    pub inbox: String,
    /// The stage URL, `http://<api id>.execute-api.localhost:<port>/v1/`.
    pub api_url: String,
    pub key: String,
    pub recorder: Recorder,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        // The emulator's log (the Lambdas' JSON lines among it) outlives a failure.
        let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("emulator-e2e.log");
        let _ = std::fs::write(&kept, self.log());
        let out = Command::new(repo().join("infra/emulator/down"))
            .args(["--port", &self.port.to_string()])
            .env("CARGO_TARGET_DIR", target_dir())
            .output()
            .unwrap();
        if !std::thread::panicking() {
            assert!(out.status.success(), "down: {}", venv::text(&out));
        }
    }
}

impl Deployment {
    pub fn up() -> Deployment {
        venv::tool_python("emulator", "import ministack, awscli");
        let binaries = Path::new(env!("CARGO_BIN_EXE_duff")).parent().unwrap();
        for lambda in ["duff-dispatcher-lambda", "duff-api-lambda"] {
            assert!(
                binaries.join(lambda).exists(),
                "{lambda} is not in {}: `cargo test --workspace` builds it (its crate's tests use it)",
                binaries.display()
            );
        }
        let port = free_port();
        let recorder = Recorder::start(port);
        let mut deployment = Deployment {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            inbox: String::new(),
            api_url: String::new(),
            key: String::new(),
            recorder,
        };
        let started = Instant::now();
        let out = Command::new(repo().join("infra/emulator/up"))
            .args(["--port", &port.to_string(), "--prefix", PREFIX])
            .args(["--size-threshold", &SIZE_THRESHOLD.to_string()])
            .arg("--lambda-binaries")
            .arg(binaries)
            .env("CARGO_TARGET_DIR", target_dir())
            .env(
                "DUFF_EMULATOR_LAMBDA_ENDPOINT",
                format!("http://127.0.0.1:{}", deployment.recorder.port),
            )
            .output()
            .unwrap();
        let log = venv::text(&out);
        assert!(out.status.success(), "up failed:\n{log}");
        eprintln!("emulator up and deployed in {:?}", started.elapsed());
        let line = |label: &str| -> String {
            log.lines()
                .find_map(|l| l.strip_prefix(label))
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_else(|| panic!("up printed no {label:?} line:\n{log}"))
                .to_string()
        };
        deployment.inbox = line("Inbox:");
        deployment.key = line("API key:");
        deployment.api_url = line("API URL:");
        let host = deployment.api_url["http://".len()..]
            .split('/')
            .next()
            .unwrap();
        assert!(
            host.ends_with(&format!(".execute-api.localhost:{port}")),
            "{}",
            deployment.api_url
        );
        // Every substitution deploy.sh made is printed.
        for made in [
            "built for",
            "no job image",
            "Batch API",
            "MaximumConcurrency",
            "is served at",
        ] {
            assert!(
                log.lines()
                    .any(|l| l.starts_with("emulator substitution:") && l.contains(made)),
                "no substitution line about {made:?}:\n{log}"
            );
        }
        deployment
    }

    pub fn aws(&self, args: &[&str]) -> String {
        let aws = target_dir().join("tmp/venv-emulator/bin/aws");
        // `--endpoint-url` as well: the CLI's SQS ignores AWS_ENDPOINT_URL.
        let out = Command::new(aws)
            .args(["--endpoint-url", &self.endpoint])
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap();
        assert!(out.status.success(), "aws {args:?}: {}", venv::text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn aws_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        serde_json::from_str(&self.aws(&all)).unwrap()
    }

    pub fn upload(&self, file: &Path, name: &str) {
        let to = format!("{}{name}", self.inbox);
        self.aws(&[
            "s3",
            "cp",
            "--only-show-errors",
            file.to_str().unwrap(),
            &to,
        ]);
    }

    /// GET `target` (a path such as `/runs`) through API Gateway's stage, with the key if
    /// `keyed`.
    pub fn api_as(&self, target: &str, keyed: bool) -> Resp {
        let rest = &self.api_url["http://".len()..];
        let (host, stage) = rest.split_once('/').unwrap();
        let path = format!("/{stage}{}", target.trim_start_matches('/'));
        let mut headers = vec![("host", host)];
        if keyed {
            headers.push(("x-api-key", &self.key));
        }
        request(&format!("127.0.0.1:{}", self.port), "GET", &path, &headers)
    }

    pub fn api(&self, target: &str) -> Resp {
        self.api_as(target, true)
    }

    fn log(&self) -> String {
        let log = target_dir().join(format!("emulator/{}/ministack.log", self.port));
        std::fs::read_to_string(log).unwrap_or_default()
    }

    /// The dispatcher's log lines about `object` (an `s3://` URL), from CloudWatch Logs, as
    /// an operator reads them.
    pub fn dispatched(&self, object: &str) -> Vec<Value> {
        let group = format!("/aws/lambda/{PREFIX}-dispatcher");
        let found = self.aws_json(&[
            "logs",
            "filter-log-events",
            "--log-group-name",
            &group,
            "--filter-pattern",
            "\"object dispatched\"",
        ]);
        let mut events = found["events"].as_array().cloned().unwrap_or_default();
        events.sort_by_key(|e| e["timestamp"].as_i64());
        events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
            .filter(|l| l["fields"]["object"] == object)
            .collect()
    }

    pub fn wait<T>(&self, what: &str, limit: Duration, mut ready: impl FnMut() -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(value) = ready() {
                return value;
            }
            if started.elapsed() > limit {
                let log = self.log();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                panic!("{what}: not within {limit:?}; the emulator's log ends with:\n{tail:#?}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The runs the API lists.
    pub fn runs(&self) -> Vec<Value> {
        let resp = self.api("/runs?limit=100");
        assert_eq!(resp.status, 200, "{}", resp.text());
        resp.json()["rows"].as_array().unwrap().clone()
    }

    pub fn run_of(&self, key: &str) -> Option<Value> {
        self.runs()
            .into_iter()
            .find(|r| r["source_uri"].as_str().is_some_and(|i| i.ends_with(key)))
    }

    pub fn jobs(&self) -> Vec<Value> {
        let listed = self.aws_json(&[
            "batch",
            "list-jobs",
            "--job-queue",
            &format!("{PREFIX}-jobs"),
        ]);
        listed["jobSummaryList"].as_array().unwrap().clone()
    }

    /// Runs the job SubmitJob asked for as its container would: the job definition's command
    /// with `Ref::` parameters replaced (SubmitJob's, else the definition's defaults) and its
    /// environment with SubmitJob's overrides on top, by the `duff` binary, in a clean
    /// environment (plus the emulator's endpoint and test credentials, which AWS gives a
    /// container through its role).
    pub fn run_job(&self, submitted: &Value) -> Output {
        let name = submitted["jobDefinition"].as_str().unwrap();
        let defs = self.aws_json(&[
            "batch",
            "describe-job-definitions",
            "--job-definition-name",
            name,
            "--status",
            "ACTIVE",
        ]);
        let def = defs["jobDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .max_by_key(|d| d["revision"].as_u64())
            .unwrap_or_else(|| panic!("no job definition {name}: {defs}"))
            .clone();
        let mut params = def["parameters"].as_object().cloned().unwrap_or_default();
        params.extend(submitted["parameters"].as_object().unwrap().clone());
        let command: Vec<String> = def["containerProperties"]["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let a = a.as_str().unwrap();
                match a.strip_prefix("Ref::") {
                    Some(p) => params[p].as_str().unwrap().to_string(),
                    None => a.to_string(),
                }
            })
            .collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_duff"));
        cmd.args(&command).env_clear();
        let overrides = submitted["containerOverrides"]["environment"].as_array();
        for var in def["containerProperties"]["environment"]
            .as_array()
            .unwrap()
            .iter()
            .chain(overrides.into_iter().flatten())
        {
            cmd.env(
                var["name"].as_str().unwrap(),
                var["value"].as_str().unwrap(),
            );
        }
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap()
    }

    pub fn inbox_bucket(&self) -> &str {
        self.inbox["s3://".len()..].split('/').next().unwrap()
    }

    pub fn etag(&self, key: &str) -> String {
        let head = self.aws_json(&[
            "s3api",
            "head-object",
            "--bucket",
            self.inbox_bucket(),
            "--key",
            key,
        ]);
        head["ETag"].as_str().unwrap().trim_matches('"').to_string()
    }

    pub fn jobs_queue_arn(&self) -> String {
        let queues = self.aws_json(&[
            "batch",
            "describe-job-queues",
            "--job-queues",
            &format!("{PREFIX}-jobs"),
        ]);
        queues["jobQueues"][0]["jobQueueArn"]
            .as_str()
            .unwrap()
            .to_string()
    }
}
