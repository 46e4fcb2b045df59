//! Locations (`s3://bucket/key`), transfer settings and the SDK client.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_s3::Client;
use duff_engine::Error;

/// A bucket and a key (or key prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    /// The bucket name, never empty.
    pub bucket: String,
    /// The key, or the key prefix of a directory-like location; empty for the bucket's root.
    /// Kept as written: a trailing `/` is neither added nor removed.
    pub key: String,
}

impl S3Url {
    /// Parses `s3://bucket/key`; `None` when `s` is not an `s3://` URL.
    pub fn parse(s: &str) -> Option<Result<S3Url, Error>> {
        let rest = s.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(Error::Config(format!(
                "{s:?}: no bucket in the S3 URL"
            ))));
        }
        Some(Ok(S3Url {
            bucket: bucket.to_string(),
            key: key.to_string(),
        }))
    }
}

impl S3Url {
    /// `s3://bucket/prefix/`: the URL of this location as a directory (a lake root).
    pub fn directory_url(&self) -> Result<url::Url, Error> {
        let mut key = self.key.clone();
        if !key.is_empty() && !key.ends_with('/') {
            key.push('/');
        }
        let text = format!("s3://{}/{key}", self.bucket);
        url::Url::parse(&text).map_err(|e| Error::Config(format!("{text}: {e}")))
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// How objects are moved. `Default` is what `duff run` and `duff job` use.
#[derive(Debug, Clone)]
pub struct TransferSettings {
    /// Bytes per ranged GET.
    pub read_chunk_bytes: usize,
    /// Ranged GETs in flight; memory for reads is about `(read_concurrency + 2) × read_chunk_bytes`.
    pub read_concurrency: usize,
    /// Bytes per multipart-upload part (S3 requires ≥ 5 MiB except for the last part).
    pub part_bytes: usize,
    /// Part uploads in flight per file being written.
    pub upload_concurrency: usize,
    /// Attempts per request, including the first (throttling, 5xx, resets, truncated bodies).
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, with full jitter, capped at `max_backoff`.
    pub initial_backoff: Duration,
    /// The longest delay before any retry.
    pub max_backoff: Duration,
}

impl Default for TransferSettings {
    fn default() -> Self {
        TransferSettings {
            read_chunk_bytes: 8 << 20,
            read_concurrency: 8,
            part_bytes: 8 << 20,
            upload_concurrency: 4,
            max_attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl TransferSettings {
    /// Rejects settings the adapters cannot work with: a zero chunk size or concurrency, parts
    /// below S3's 5 MiB minimum, or no attempt at all. Both adapters check on creation.
    pub fn validate(&self) -> Result<(), Error> {
        if self.read_chunk_bytes == 0 || self.read_concurrency == 0 || self.upload_concurrency == 0
        {
            return Err(Error::Config(
                "S3 chunk size and concurrency must be > 0".into(),
            ));
        }
        if self.part_bytes < 5 << 20 {
            return Err(Error::Config(
                "S3 multipart parts must be at least 5 MiB".into(),
            ));
        }
        if self.max_attempts == 0 {
            return Err(Error::Config("S3 max attempts must be ≥ 1".into()));
        }
        Ok(())
    }

    /// Delay before retry number `attempt` (1-based): exponential with full jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .initial_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.max_backoff);
        cap.mul_f64(rand::random::<f64>())
    }
}

/// Explicit client settings that take precedence over the environment (tests and tools that
/// talk to a local S3-protocol server).
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// The service's base URL (`http://127.0.0.1:9000`); requests then go path-style, and a
    /// plain `http://` URL is allowed.
    pub url: Option<String>,
    /// The region to sign requests for.
    pub region: Option<String>,
    /// Access key id and secret.
    pub credentials: Option<(String, String)>,
}

/// Builds the S3 client from the standard AWS configuration chain (environment, profile,
/// container or instance role), with `endpoint` overriding it. A custom endpoint (here or
/// `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`) switches to path-style addressing, since such
/// servers rarely resolve `bucket.host` names.
pub async fn client(settings: &TransferSettings, endpoint: &Endpoint) -> Client {
    let retry = RetryConfig::standard()
        .with_max_attempts(settings.max_attempts)
        .with_initial_backoff(settings.initial_backoff)
        .with_max_backoff(settings.max_backoff);
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry);
    if let Some(url) = &endpoint.url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &endpoint.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some((id, secret)) = &endpoint.credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id, secret, None, None, "duff",
        ));
    }
    let shared = loader.load().await;
    let custom_endpoint = endpoint.url.is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(custom_endpoint)
        .build();
    Client::from_conf(config)
}

/// The runtime every `object_store` request runs on. Its callers drive requests from several
/// runtimes (the lake's own, and short-lived ones inside `deltalake`'s kernel); a pooled
/// connection lives on the runtime that opened it and dies with it, so the next request on it
/// would fail ("runtime dropped the dispatch task"). One process-wide runtime owns them all.
fn io_runtime() -> &'static tokio::runtime::Runtime {
    static IO: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    IO.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("duff-s3-io")
            .enable_all()
            .build()
            .expect("an I/O runtime")
    })
}

/// An `object_store` client for `bucket`, from the same configuration chain as [`client`]
/// (environment, container or instance role) with `endpoint` overriding it: the Delta log
/// and the fold reach a lake in S3 through it. Conditional puts (`If-None-Match: *`, which
/// S3 supports) make its Delta commits atomic without a locking service.
pub fn object_store(
    settings: &TransferSettings,
    endpoint: &Endpoint,
    bucket: &str,
) -> Result<std::sync::Arc<dyn object_store::ObjectStore>, Error> {
    use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
    use object_store::{BackoffConfig, RetryConfig};
    // The same retry policy as the SDK client's: `max_attempts` in all, exponential backoff.
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: settings.initial_backoff,
            max_backoff: settings.max_backoff,
            base: 2.0,
        },
        max_retries: settings.max_attempts.saturating_sub(1) as usize,
        retry_timeout: Duration::from_secs(120),
    };
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_retry(retry)
        .with_http_connector(object_store::client::SpawnedReqwestConnector::new(
            io_runtime().handle().clone(),
        ));
    let url = endpoint.url.clone().or_else(|| {
        std::env::var("AWS_ENDPOINT_URL_S3")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok()
    });
    if let Some(url) = url {
        // A custom endpoint (a local S3-protocol server) is addressed path-style, like the
        // SDK client does, and may be plain HTTP.
        builder = builder
            .with_allow_http(url.starts_with("http://"))
            .with_endpoint(url)
            .with_virtual_hosted_style_request(false);
    }
    if let Some(region) = &endpoint.region {
        builder = builder.with_region(region);
    }
    if let Some((id, secret)) = &endpoint.credentials {
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret);
    }
    let store = builder
        .build()
        .map_err(|e| Error::Config(format!("S3 client for bucket {bucket}: {e}")))?;
    Ok(std::sync::Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls() {
        let u = S3Url::parse("s3://bucket/a/b c.csv").unwrap().unwrap();
        assert_eq!(u.bucket, "bucket");
        assert_eq!(u.key, "a/b c.csv");
        assert_eq!(u.to_string(), "s3://bucket/a/b c.csv");
        assert_eq!(S3Url::parse("s3://bucket").unwrap().unwrap().key, "");
        assert!(S3Url::parse("s3:///key").unwrap().is_err());
        assert!(S3Url::parse("/local/path").is_none());
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        let s = TransferSettings::default();
        for attempt in 1..40 {
            assert!(s.backoff(attempt) <= s.max_backoff);
        }
        // Full jitter: the mean of many draws tracks the exponential cap.
        let mean = |a| (0..2000).map(|_| s.backoff(a).as_secs_f64()).sum::<f64>() / 2000.0;
        assert!(mean(4) > mean(1) * 3.0);
    }

    #[test]
    fn rejects_parts_below_the_s3_minimum() {
        let s = TransferSettings {
            part_bytes: 1 << 20,
            ..TransferSettings::default()
        };
        assert!(s.validate().is_err());
        assert!(TransferSettings::default().validate().is_ok());
    }
}
