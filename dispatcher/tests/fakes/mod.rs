//! In-memory stand-ins for S3, the lake, Batch and the engine, with failure injection and a
//! record of every call: the handler's decisions are tested without any service.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use chrono::{DateTime, NaiveDate, Utc};
use duff_dispatcher::config::{BatchTarget, Config};
use duff_dispatcher::ledger::Marker;
use duff_dispatcher::traits::{ListPage, Listed};
use duff_dispatcher::{
    DispatchError, Dispatcher, Engine, JobRequest, JobState, Jobs, ObjectInfo, Objects, Report,
    RunSummary, SubmittedJob,
};
use duff_engine::{RunStatus, StorageError, StorageErrorKind};
use duff_s3::Location;

pub const INBOX: &str = "duff-inbox";
pub const MIB: u64 = 1 << 20;

#[derive(Clone)]
pub struct Obj {
    pub size: u64,
    pub etag: String,
    pub last_modified: DateTime<Utc>,
}

#[derive(Default)]
pub struct World {
    pub objects: Mutex<BTreeMap<(String, String), Obj>>,
    pub manifests: Mutex<BTreeMap<String, RunStatus>>,
    pub ledger: Mutex<BTreeMap<String, Marker>>,
    pub jobs: Mutex<Vec<JobRequest>>,
    /// (key, partition date) of every engine run.
    pub runs: Mutex<Vec<(String, NaiveDate)>>,
    /// Keys given up (poison inputs).
    pub given_up: Mutex<Vec<String>>,
    /// The ledger's marker of each run while the engine ran it.
    pub held_while_running: Mutex<Vec<Option<Marker>>>,
    /// key → failure kind of its HeadObject.
    pub head_errors: Mutex<BTreeMap<String, StorageErrorKind>>,
    /// Failures of the next SubmitJob calls: `true` retryable.
    pub submit_failures: Mutex<VecDeque<bool>>,
    /// What DescribeJobs says of a job; jobs not in it are active.
    pub job_states: Mutex<BTreeMap<String, JobState>>,
    /// DescribeJobs calls still to fail (retryably).
    pub describe_failures: AtomicUsize,
    pub lists: AtomicUsize,
    /// The `start_after` of every listing.
    pub list_starts: Mutex<Vec<Option<String>>>,
}

#[derive(Clone, Default)]
pub struct Fake(pub Arc<World>);

pub fn ts(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn run_id(etag: &str) -> String {
    format!("run-{etag}")
}

impl Fake {
    pub fn put(&self, key: &str, size: u64, etag: &str, last_modified: &str) {
        self.0.objects.lock().unwrap().insert(
            (INBOX.into(), key.into()),
            Obj {
                size,
                etag: etag.into(),
                last_modified: ts(last_modified),
            },
        );
    }

    pub fn processed(&self, etag: &str) {
        self.0
            .manifests
            .lock()
            .unwrap()
            .insert(run_id(etag), RunStatus::Succeeded);
    }

    pub fn jobs(&self) -> Vec<JobRequest> {
        self.0.jobs.lock().unwrap().clone()
    }

    pub fn runs(&self) -> Vec<(String, NaiveDate)> {
        self.0.runs.lock().unwrap().clone()
    }

    pub fn fail_head(&self, key: &str, kind: StorageErrorKind) {
        self.0.head_errors.lock().unwrap().insert(key.into(), kind);
    }

    pub fn dispatcher(&self, threshold: u64) -> Dispatcher<Fake, Fake, Fake> {
        Dispatcher {
            objects: self.clone(),
            jobs: Some(self.clone()),
            engine: self.clone(),
            config: config(threshold),
        }
    }
}

pub fn config(threshold: u64) -> Config {
    Config {
        lake: Location::parse("s3://duff-lake/lake/").unwrap(),
        inbox_prefix: "inbox/".into(),
        threshold_bytes: threshold,
        batch: Some(BatchTarget {
            queue: "duff-jobs".into(),
            definition: "duff-job".into(),
            job_size: Default::default(),
        }),
        dry_run: false,
    }
}

fn storage(kind: StorageErrorKind, key: &str) -> DispatchError {
    DispatchError::Engine(
        StorageError {
            kind,
            uri: format!("s3://{INBOX}/{key}"),
            operation: "HeadObject".into(),
            message: "injected".into(),
        }
        .into(),
    )
}

impl Objects for Fake {
    async fn head(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
    ) -> Result<ObjectInfo, DispatchError> {
        if let Some(kind) = self.0.head_errors.lock().unwrap().get(key) {
            return Err(storage(*kind, key));
        }
        let obj = self
            .0
            .objects
            .lock()
            .unwrap()
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
            .ok_or_else(|| storage(StorageErrorKind::NotFound, key))?;
        if etag.is_some_and(|e| e != obj.etag) {
            return Err(storage(StorageErrorKind::Changed, key));
        }
        Ok(ObjectInfo {
            bucket: bucket.into(),
            key: key.into(),
            size: obj.size,
            etag: obj.etag.clone(),
            last_modified: obj.last_modified,
            run_id: run_id(&obj.etag),
        })
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        page_size: Option<i32>,
        token: Option<String>,
    ) -> Result<ListPage, DispatchError> {
        self.0.lists.fetch_add(1, Ordering::Relaxed);
        self.0
            .list_starts
            .lock()
            .unwrap()
            .push(start_after.map(str::to_string));
        let page = page_size.unwrap_or(1000) as usize;
        let all: Vec<Listed> = self
            .0
            .objects
            .lock()
            .unwrap()
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .filter(|((_, k), _)| token.as_ref().is_none_or(|t| k > t))
            .filter(|((_, k), _)| start_after.is_none_or(|s| k.as_str() > s))
            .map(|((_, k), o)| Listed {
                key: k.clone(),
                size: o.size,
                last_modified: o.last_modified,
            })
            .collect();
        let objects: Vec<Listed> = all.iter().take(page).cloned().collect();
        let next = (all.len() > page).then(|| objects.last().unwrap().key.clone());
        Ok(ListPage { objects, next })
    }

    async fn manifest_status(&self, run_id: &str) -> Result<Option<RunStatus>, DispatchError> {
        Ok(self.0.manifests.lock().unwrap().get(run_id).copied())
    }

    async fn ledger_create(&self, marker: &Marker) -> Result<Option<Marker>, DispatchError> {
        let mut ledger = self.0.ledger.lock().unwrap();
        if let Some(existing) = ledger.get(&marker.run_id) {
            return Ok(Some(existing.clone()));
        }
        ledger.insert(marker.run_id.clone(), marker.clone());
        Ok(None)
    }

    async fn ledger_get(&self, run_id: &str) -> Result<Option<Marker>, DispatchError> {
        Ok(self.0.ledger.lock().unwrap().get(run_id).cloned())
    }

    async fn ledger_put(&self, marker: &Marker) -> Result<(), DispatchError> {
        self.0
            .ledger
            .lock()
            .unwrap()
            .insert(marker.run_id.clone(), marker.clone());
        Ok(())
    }

    async fn ledger_delete(&self, run_id: &str) -> Result<(), DispatchError> {
        self.0.ledger.lock().unwrap().remove(run_id);
        Ok(())
    }
}

impl Jobs for Fake {
    async fn submit(&self, job: &JobRequest) -> Result<SubmittedJob, DispatchError> {
        if let Some(retryable) = self.0.submit_failures.lock().unwrap().pop_front() {
            return Err(DispatchError::Batch {
                message: "injected".into(),
                retryable,
            });
        }
        let mut jobs = self.0.jobs.lock().unwrap();
        jobs.push(job.clone());
        Ok(SubmittedJob {
            job_id: format!("job-{}", jobs.len()),
            job_name: job.name.clone(),
        })
    }

    async fn state(&self, job_id: &str) -> Result<JobState, DispatchError> {
        let fail = self
            .0
            .describe_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(DispatchError::Batch {
                message: "injected DescribeJobs failure".into(),
                retryable: true,
            });
        }
        let states = self.0.job_states.lock().unwrap();
        Ok(states.get(job_id).cloned().unwrap_or(JobState::Active))
    }
}

/// Keys containing `bad` are rejected inputs; `flaky` fail retryably; others succeed with one
/// row per 100 bytes. Every run commits its manifest, as the engine does.
impl Engine for Fake {
    /// Keys containing `slow` stop at any deadline (nothing committed), as a run too long
    /// for the invocation does.
    async fn run(
        &self,
        object: &ObjectInfo,
        pa_date: NaiveDate,
        deadline: Option<SystemTime>,
    ) -> Result<RunSummary, DispatchError> {
        if object.key.contains("slow") && deadline.is_some() {
            return Err(DispatchError::Engine(duff_engine::Error::OutOfTime));
        }
        let held = self.0.ledger.lock().unwrap().get(&object.run_id).cloned();
        self.0.held_while_running.lock().unwrap().push(held);
        if object.key.contains("flaky") {
            return Err(storage(StorageErrorKind::Transient, &object.key));
        }
        self.0
            .runs
            .lock()
            .unwrap()
            .push((object.key.clone(), pa_date));
        let mut manifests = self.0.manifests.lock().unwrap();
        let bad = object.key.contains("bad");
        let status = if bad {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        let skipped = manifests.insert(object.run_id.clone(), status).is_some();
        Ok(RunSummary {
            run_id: object.run_id.clone(),
            status,
            skipped,
            rows_read: object.size / 100,
            rows_written: if bad { 0 } else { object.size / 100 },
            quarantined: 0,
            error_code: bad.then(|| "missing_columns".into()),
            error: bad.then(|| "missing required column(s) status".into()),
        })
    }

    /// Commits a failed manifest, as `duff_engine::give_up` does, unless one is committed.
    async fn give_up(
        &self,
        object: &ObjectInfo,
        _pa_date: NaiveDate,
        attempts: u32,
    ) -> Result<RunSummary, DispatchError> {
        self.0.given_up.lock().unwrap().push(object.key.clone());
        let mut manifests = self.0.manifests.lock().unwrap();
        let skipped = manifests.contains_key(&object.run_id);
        let status = *manifests
            .entry(object.run_id.clone())
            .or_insert(RunStatus::Failed);
        Ok(RunSummary {
            run_id: object.run_id.clone(),
            status,
            skipped,
            rows_read: 0,
            rows_written: 0,
            quarantined: 0,
            error_code: Some("gave_up".into()),
            error: Some(format!("gave up after {attempts} attempts")),
        })
    }
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Handles `payload` with no deadline (or `deadline`), on a current-thread runtime.
pub fn handle(
    d: &Dispatcher<Fake, Fake, Fake>,
    payload: &serde_json::Value,
    deadline: Option<SystemTime>,
) -> Result<Report, DispatchError> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(d.handle(payload, deadline))
}

/// `(object, outcome name)` of every listed object.
pub fn outcomes(r: &Report) -> Vec<(String, &'static str)> {
    r.objects
        .iter()
        .map(|o| (o.object.clone(), o.outcome.name()))
        .collect()
}
