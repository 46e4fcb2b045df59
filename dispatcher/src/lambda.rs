//! Wiring: the dispatcher over the real services, and one Lambda invocation in and out.

use std::sync::Arc;

use duff_delta::DeltaLake;
use duff_engine::{Lake, RunOptions};
use duff_s3::{Endpoint, Location, S3Lake, S3Url, TransferSettings};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::batch::{BatchJobs, batch_client};
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::engine::InProcessEngine;
use crate::error::DispatchError;
use crate::lazy_lake::OpenOnUse;
use crate::objects::{AwsObjects, LedgerStore};
use crate::report::Report;
use crate::traits::{Engine, Jobs, Objects};

/// The dispatcher over S3, AWS Batch and the engine in this process.
pub type AwsDispatcher = Dispatcher<AwsObjects, BatchJobs, InProcessEngine>;

/// Where the services are and how the engine runs here.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// S3 endpoint override (default: the standard configuration chain).
    pub s3: Endpoint,
    /// Batch endpoint override.
    pub batch: Endpoint,
    /// How S3 objects are read and written (see [`crate::engine::lambda_tuning`]).
    pub settings: TransferSettings,
    /// The engine's options for runs here (threads, cost basis); each run sets its `pa_date`.
    pub options: RunOptions,
}

/// Builds the clients (once per process: a Lambda container reuses them across invocations).
/// Must be called inside a Tokio runtime.
pub async fn connect(config: Config, setup: &Setup) -> Result<AwsDispatcher, DispatchError> {
    config.validate()?;
    setup.settings.validate()?;
    let s3 = duff_s3::client(&setup.settings, &setup.s3).await;
    let (lake, ledger): (Arc<dyn Lake>, LedgerStore) = match &config.lake {
        Location::S3(root) => {
            let mut root: S3Url = root.clone();
            if !root.key.is_empty() && !root.key.ends_with('/') {
                root.key.push('/');
            }
            let store = duff_s3::object_store(&setup.settings, &setup.s3, &root.bucket)?;
            let url = root.directory_url()?;
            let (client, settings, at) = (s3.clone(), setup.settings.clone(), root.clone());
            let runtime = tokio::runtime::Handle::current();
            let lake = OpenOnUse::new(
                format!("s3://{}/{}", root.bucket, root.key),
                Box::new(move || {
                    let files = {
                        let _entered = runtime.enter();
                        S3Lake::new(client.clone(), settings.clone(), at.clone())?
                    };
                    let lake = DeltaLake::open_in_store(files, url.clone(), store.clone())?;
                    Ok(Arc::new(lake) as Arc<dyn Lake>)
                }),
            );
            (
                Arc::new(lake),
                LedgerStore::S3 {
                    client: s3.clone(),
                    root,
                },
            )
        }
        Location::Local(dir) => {
            // Opening reads the tables' logs with a runtime of its own: off this one.
            let dir = dir.clone();
            let lake = tokio::task::spawn_blocking(move || DeltaLake::open_local(dir))
                .await
                .map_err(|e| DispatchError::Config(format!("opening the lake: {e}")))?
                .map_err(duff_engine::Error::from)?;
            let root = lake.files().root().to_path_buf();
            (Arc::new(lake), LedgerStore::Local(root))
        }
    };
    let jobs = match &config.batch {
        Some(target) => Some(BatchJobs::new(
            batch_client(&setup.batch).await,
            target.clone(),
        )),
        None => None,
    };
    Ok(Dispatcher {
        objects: AwsObjects::new(s3.clone(), setup.settings.clone(), lake.clone(), ledger),
        jobs,
        engine: InProcessEngine::new(s3, setup.settings.clone(), lake, setup.options.clone()),
        config,
    })
}

/// One invocation: the report for direct invocations, exactly `{"batchItemFailures": […]}` for
/// SQS (what the event source mapping reads; the per-object report is in the log). A direct
/// invocation with retryable failures fails, so that Lambda retries it.
pub async fn invoke<O: Objects, J: Jobs, E: Engine>(
    dispatcher: &Dispatcher<O, J, E>,
    event: LambdaEvent<Value>,
) -> Result<Value, DispatchError> {
    // A zero deadline means none was given (a hand-made context).
    let deadline = (event.context.deadline > 0).then(|| event.context.deadline());
    // Boxed: the handler's future is deep, and the runtime's service nests it further.
    let report = Box::pin(dispatcher.handle(&event.payload, deadline)).await?;
    tracing::info!(event = report.event, summary = ?report.summary, "invocation done");
    lambda_response(&report)
}

/// The invocation's response for `report`: the SQS batch response for an SQS event, else the
/// report itself, or [`DispatchError::RetryableFailures`] when some object may succeed on a
/// retry (so that Lambda retries the invocation).
pub fn lambda_response(report: &Report) -> Result<Value, DispatchError> {
    if report.batch_item_failures.is_some() {
        return Ok(serde_json::to_value(report.sqs_response()).expect("serialisable"));
    }
    match report.retryable_failures() {
        0 => Ok(serde_json::to_value(report).expect("serialisable")),
        n => Err(DispatchError::RetryableFailures(n)),
    }
}

/// Lambda's error record: the stable code as the type, so failed invocations group by cause.
impl From<DispatchError> for Diagnostic {
    fn from(e: DispatchError) -> Diagnostic {
        Diagnostic {
            error_type: e.code().into(),
            error_message: e.to_string(),
        }
    }
}
