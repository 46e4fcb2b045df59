//! The API Lambda: the reporting router over Athena, behind API Gateway (REST or HTTP API).
//! Configuration comes from the environment the infra stack sets (see [`AthenaConfig::from_env`]);
//! the API key is checked by API Gateway's usage plan, not here.

use duff_api::{AthenaBackend, AthenaConfig, router};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_current_span(false)
        .without_time() // CloudWatch stamps every line
        .init();
    // Built once per container, reused by every invocation.
    let config = AthenaConfig::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let backend = AthenaBackend::new(aws_sdk_athena::Client::new(&aws), config);
    lambda_http::run(router(backend, None)).await
}
