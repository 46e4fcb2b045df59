//! The API Lambda: the reporting router behind API Gateway (REST or HTTP API), over Athena or
//! over the lake's tables in S3 directly, as its environment says ([`BackendChoice`]; Athena's
//! settings: [`AthenaConfig::from_env`]). Who may call is API Gateway's business, not this one's.

use duff_api::{AthenaBackend, AthenaConfig, BackendChoice, EmbeddedBackend, router};
use duff_s3::{Endpoint, TransferSettings};
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
    match BackendChoice::from_env()? {
        BackendChoice::Athena => {
            let config = AthenaConfig::from_env()?;
            let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let backend = AthenaBackend::new(aws_sdk_athena::Client::new(&aws), config);
            lambda_http::run(router(backend, None)).await
        }
        BackendChoice::Lake { bucket, root } => {
            let store =
                duff_s3::object_store(&TransferSettings::default(), &Endpoint::default(), &bucket)?;
            let backend = EmbeddedBackend::open_in_store(store, root, 0)?;
            lambda_http::run(router(backend, None)).await
        }
    }
}
