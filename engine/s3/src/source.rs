//! An S3 object as the engine's input: HeadObject once, then ranged GETs in flight at once,
//! delivered in order to the parser as a byte stream. Every GET is pinned to the object's ETag
//! (`If-Match`), so an object replaced mid-read fails with `object_changed` instead of mixing
//! versions; memory is bounded by the ranges in flight, not by the object's size.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::Client;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use duff_engine::Error;
use duff_engine::manifest::SourceInfo;
use duff_engine::storage::{InputBytes, Source, StorageError, StorageErrorKind};
use futures::StreamExt;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::classify::classify;
use crate::config::{S3Url, TransferSettings};

/// One version of an S3 object, identified by its ETag and read by its version id when the
/// bucket is versioned.
#[derive(Debug, Clone)]
pub struct S3Source {
    client: Client,
    runtime: Handle,
    settings: TransferSettings,
    /// The object's bucket and key.
    pub url: S3Url,
    /// The object's size in bytes (compressed size for a `.gz` key).
    pub size: u64,
    /// The ETag as S3 returned it (quoted). It is the source version in the run id, and every
    /// GET of an unversioned object is pinned to it.
    pub etag: String,
    /// The version id in a versioned bucket; GETs then read exactly this version.
    pub version_id: Option<String>,
    /// The object's LastModified: a run's default `ingested_at`, and its UTC date the default
    /// `pa_date`. The time of the HeadObject when S3 did not return one.
    pub last_modified: DateTime<Utc>,
    requests: Arc<AtomicU64>,
}

impl S3Source {
    /// Looks the object up (HeadObject). With `expected_etag`, a different current version is
    /// an `object_changed` error: the event that named this version is stale.
    pub async fn head(
        client: Client,
        settings: TransferSettings,
        url: S3Url,
        expected_etag: Option<&str>,
    ) -> Result<S3Source, Error> {
        settings.validate()?;
        let uri = url.to_string();
        let mut request = client.head_object().bucket(&url.bucket).key(&url.key);
        if let Some(etag) = expected_etag.filter(|e| !e.is_empty()) {
            request = request.if_match(quote_etag(etag));
        }
        let head = request
            .send()
            .await
            .map_err(|e| classify(e, &uri, "HeadObject"))?;
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        let etag = head.e_tag().unwrap_or_default().to_string();
        let last_modified = head
            .last_modified()
            .and_then(|t| DateTime::<Utc>::from_timestamp_millis(t.to_millis().ok()?))
            .unwrap_or_else(Utc::now);
        Ok(S3Source {
            client,
            runtime: Handle::current(),
            settings,
            size,
            etag,
            version_id: head.version_id().map(str::to_string),
            last_modified,
            url,
            requests: Arc::new(AtomicU64::new(1)),
        })
    }

    /// HTTP requests made for this object so far (HeadObject and ranged GETs, retries included
    /// only when they happened at this layer).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn gzip(&self) -> bool {
        self.url.key.to_ascii_lowercase().ends_with(".gz")
    }
}

/// S3 returns ETags quoted; callers (events, Batch parameters) often pass them bare.
pub(crate) fn quote_etag(etag: &str) -> String {
    if etag.starts_with('"') || etag.starts_with("W/") {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

impl Source for S3Source {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            uri: self.url.to_string(),
            size_bytes: self.size,
            // The ETag, not the version id: a run id must not change when the bucket turns
            // versioning on (its objects' version id becomes "null"), and an upload of the same
            // bytes again is the same run. Reads stay pinned to the version id.
            version: format!("etag:{}", self.etag.trim_matches('"')),
            gzip: self.gzip(),
        }
    }

    fn modified(&self) -> DateTime<Utc> {
        self.last_modified
    }

    fn open(&self) -> Result<InputBytes, Error> {
        if self.size == 0 {
            return Ok(InputBytes::Empty);
        }
        let (tx, rx) = mpsc::channel(1);
        let task = self.runtime.spawn(prefetch(self.clone(), tx));
        let reader = RangeReader {
            rx,
            current: Bytes::new(),
            delivered: 0,
            expected: self.size,
            uri: self.url.to_string(),
            task,
        };
        Ok(InputBytes::Stream(if self.gzip() {
            Box::new(flate2::read::MultiGzDecoder::new(
                std::io::BufReader::with_capacity(1 << 20, reader),
            ))
        } else {
            Box::new(reader)
        }))
    }
}

/// Issues the ranged GETs, `read_concurrency` at a time, and sends the bodies in order. Stops at
/// the first error (after sending it) or when the reader goes away.
async fn prefetch(source: S3Source, tx: mpsc::Sender<Result<Bytes, StorageError>>) {
    let chunk = source.settings.read_chunk_bytes as u64;
    let ranges = (0..source.size.div_ceil(chunk))
        .map(move |i| (i * chunk, ((i + 1) * chunk).min(source.size) - 1));
    let mut bodies = futures::stream::iter(ranges)
        .map(|(first, last)| fetch_range(&source, first, last))
        .buffered(source.settings.read_concurrency);
    while let Some(body) = bodies.next().await {
        let failed = body.is_err();
        if tx.send(body).await.is_err() || failed {
            return;
        }
    }
}

/// One ranged GET, retried on failures the SDK cannot retry itself: a body cut off mid-stream
/// (connection reset) or shorter than asked for.
async fn fetch_range(source: &S3Source, first: u64, last: u64) -> Result<Bytes, StorageError> {
    let uri = source.url.to_string();
    let operation = format!("GET bytes={first}-{last}");
    let want = (last - first + 1) as usize;
    let mut attempt = 0;
    loop {
        attempt += 1;
        source.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = source
            .client
            .get_object()
            .bucket(&source.url.bucket)
            .key(&source.url.key)
            .range(format!("bytes={first}-{last}"));
        request = match &source.version_id {
            Some(v) => request.version_id(v),
            None => request.if_match(quote_etag(&source.etag)),
        };
        let error = match request.send().await {
            Err(e) => classify(e, &uri, &operation),
            Ok(response) => match response.body.collect().await {
                Ok(body) => {
                    let bytes = body.into_bytes();
                    if bytes.len() == want {
                        return Ok(bytes);
                    }
                    StorageError {
                        kind: StorageErrorKind::Transient,
                        uri: uri.clone(),
                        operation: operation.clone(),
                        message: format!("got {} bytes, expected {want}", bytes.len()),
                    }
                }
                Err(e) => StorageError {
                    kind: StorageErrorKind::Transient,
                    uri: uri.clone(),
                    operation: operation.clone(),
                    message: format!("body interrupted: {e}"),
                },
            },
        };
        if error.kind != StorageErrorKind::Transient || attempt >= source.settings.max_attempts {
            return Err(error);
        }
        tracing::warn!(uri, operation, attempt, error = %error.message, "retrying a ranged read");
        tokio::time::sleep(source.settings.backoff(attempt)).await;
    }
}

/// The blocking side: hands the prefetched ranges to the engine as one `Read`.
struct RangeReader {
    rx: mpsc::Receiver<Result<Bytes, StorageError>>,
    current: Bytes,
    delivered: u64,
    expected: u64,
    uri: String,
    task: tokio::task::JoinHandle<()>,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.delivered == self.expected {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(e.into_io()),
                // The prefetch task ended without an error or all the bytes (it panicked or was
                // cancelled): never let a short read pass for the end of the object.
                None => {
                    return Err(StorageError {
                        kind: StorageErrorKind::Transient,
                        uri: self.uri.clone(),
                        operation: "GET".into(),
                        message: format!(
                            "the read stopped after {} of {} bytes",
                            self.delivered, self.expected
                        ),
                    }
                    .into_io());
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        self.delivered += n as u64;
        Ok(n)
    }
}

impl Drop for RangeReader {
    fn drop(&mut self) {
        // Stop fetching when the engine stops reading (an error elsewhere).
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duff_engine::input::run_id_for;

    #[test]
    fn the_run_id_does_not_change_when_the_bucket_turns_versioning_on() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build();
        let client = Client::from_conf(config);
        let source = |etag: &str, version_id: Option<&str>| S3Source {
            client: client.clone(),
            runtime: runtime.handle().clone(),
            settings: TransferSettings::default(),
            url: S3Url {
                bucket: "inbox".into(),
                key: "inbox/orders.csv".into(),
            },
            size: 10,
            etag: etag.into(),
            version_id: version_id.map(str::to_string),
            last_modified: Utc::now(),
            requests: Arc::default(),
        };
        let unversioned = run_id_for(&source("\"abc\"", None).info());
        // Versioning turned on: older objects answer "null", new uploads a real id.
        for version in ["null", "3sL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY"] {
            assert_eq!(
                run_id_for(&source("\"abc\"", Some(version)).info()),
                unversioned
            );
        }
        assert_ne!(run_id_for(&source("\"abd\"", None).info()), unversioned);
    }
}
