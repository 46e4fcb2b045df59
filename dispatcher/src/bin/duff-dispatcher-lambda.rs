//! The dispatcher Lambda. Configuration from the environment the `dispatch` stack sets
//! (`DUFF_LAKE`, `DUFF_INBOX_PREFIX`, `DUFF_SIZE_THRESHOLD_BYTES`, `DUFF_BATCH_JOB_QUEUE`,
//! `DUFF_BATCH_JOB_DEFINITION`); the engine is tuned to `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.

use duff_dispatcher::engine::lambda_tuning;
use duff_dispatcher::{Config, Setup, connect, invoke};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: duff_alloc::Allocator = duff_alloc::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    duff_alloc::tune();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(false)
        .with_current_span(false)
        .without_time() // CloudWatch stamps every line
        .init();
    let memory_mb = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|m| m.parse().ok());
    let (settings, options) = lambda_tuning(memory_mb);
    let setup = Setup {
        settings,
        options,
        ..Setup::default()
    };
    // Built once per container, reused by every invocation.
    let dispatcher = connect(Config::from_env()?, &setup).await?;
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        invoke(dispatcher, event).await
    }))
    .await
}
