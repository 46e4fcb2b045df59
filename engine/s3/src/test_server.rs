//! A real S3-protocol server on loopback, for tests and benchmarks (feature `test-server`):
//! `s3s-fs` (objects in a temporary directory) behind hyper, wrapped to add what S3 does and
//! s3s-fs does not (`If-Match` on reads, atomic `If-None-Match: *` creates), request counts,
//! server-side fault injection (503 SlowDown, bodies cut mid-stream, an object replaced between
//! two reads) and a request latency like S3's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

/// The only access key id the server accepts (see [`S3Server::endpoint`] and [`S3Server::env`]).
pub const ACCESS_KEY: &str = "duff-test-key";
/// The secret that goes with [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "duff-test-secret";
/// The region clients sign for.
pub const REGION: &str = "us-east-1";

/// Faults to inject, by request count. Zero disables a fault.
///
/// Requests are counted per object (per bucket and prefix for a listing): what fails does not
/// depend on how a client's concurrent requests interleave, and a fault is transient, as S3's
/// are: an object's retried request is its next one. (Counted over all requests, a request's
/// every retry could fall on a faulty count while other requests run beside it.)
#[derive(Default)]
pub struct Faults {
    /// Every n-th request (of any kind) to an object is answered 503 SlowDown.
    pub slow_down_every: AtomicU64,
    /// Every n-th GET of an object has its body cut off after half of its bytes (the
    /// connection drops).
    pub cut_body_every: AtomicU64,
    /// `(key, bytes)`: after the first GET of `key`, the object is replaced by `bytes`.
    pub replace_after_first_get: Mutex<Option<(String, Vec<u8>)>>,
    /// The next n `CompleteMultipartUpload`s complete, then answer 500 InternalError: the
    /// client retries, and finds the upload gone (`NoSuchUpload`).
    pub lose_complete_answers: AtomicU64,
    /// The next n `DeleteObjects` delete nothing and answer 200 with an AccessDenied error
    /// for every key.
    pub refuse_deletes: AtomicU64,
    /// Milliseconds every request waits before it is served, as S3's requests take tens of
    /// milliseconds where loopback takes a fraction of one: what a client's sequence of
    /// dependent requests costs in AWS (`benches/src/bin/s3_delta_latency.rs`).
    pub latency_ms: AtomicU64,
}

/// The running server.
pub struct S3Server {
    /// Base URL, `http://127.0.0.1:<port>` (a free port picked at start).
    pub endpoint: String,
    /// The temporary directory behind the server: one subdirectory per bucket, plus s3s-fs's
    /// bookkeeping of open multipart uploads. Removed when the server is dropped.
    pub root: PathBuf,
    /// Faults to inject; change them at any time, they apply to the next requests.
    pub faults: Arc<Faults>,
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    lists: Arc<Mutex<BTreeMap<String, u64>>>,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl S3Server {
    /// Starts a server with the given buckets.
    pub fn start(buckets: &[&str]) -> S3Server {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for b in buckets {
            std::fs::create_dir_all(root.join(b)).unwrap();
        }
        let faults = Arc::new(Faults::default());
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let lists = Arc::new(Mutex::new(BTreeMap::new()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let service = {
            let store = TestStore {
                inner: s3s_fs::FileSystem::new(&root).unwrap(),
                faults: faults.clone(),
                counts: counts.clone(),
                lists: lists.clone(),
                requests: Mutex::default(),
                gets: AtomicU64::new(0),
                create_lock: tokio::sync::Mutex::new(()),
                completed: Mutex::default(),
            };
            let mut b = s3s::service::S3ServiceBuilder::new(store);
            b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build()
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let faults_of_service = faults.clone();
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                // As S3 does: without it a response's second write waits for the client's
                // delayed ACK (40 ms on Linux), and a Delta commit's requests take seconds.
                let _ = socket.set_nodelay(true);
                let service = service.clone();
                let faults = faults_of_service.clone();
                let delayed = hyper::service::service_fn(move |req| {
                    let service = service.clone();
                    let delay = faults.latency_ms.load(Ordering::Relaxed);
                    tracing::debug!(method = %req.method(), uri = %req.uri(), "test server request");
                    async move {
                        if delay > 0 {
                            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                        }
                        hyper::service::Service::call(&service, req).await
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), delayed)
                        .await;
                });
            }
        });
        S3Server {
            endpoint,
            root,
            faults,
            counts,
            lists,
            _dir: dir,
            _runtime: runtime,
        }
    }

    /// Client settings for this server.
    pub fn endpoint(&self) -> crate::Endpoint {
        crate::Endpoint {
            url: Some(self.endpoint.clone()),
            region: Some(REGION.into()),
            credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
        }
    }

    /// Environment for a `duff` child process talking to this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_S3", self.endpoint.clone()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Uploads an object over HTTP (so the server records its ETag, as S3 would).
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        self.put_stream(
            bucket,
            key,
            aws_sdk_s3::primitives::ByteStream::from(bytes.to_vec()),
        );
    }

    /// Uploads a local file over HTTP, streaming it.
    pub fn put_file(&self, bucket: &str, key: &str, path: &std::path::Path) {
        let body = self
            ._runtime
            .block_on(aws_sdk_s3::primitives::ByteStream::from_path(path))
            .unwrap();
        self.put_stream(bucket, key, body);
    }

    fn put_stream(&self, bucket: &str, key: &str, body: aws_sdk_s3::primitives::ByteStream) {
        self._runtime.block_on(async {
            let client = crate::client(&Default::default(), &self.endpoint()).await;
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body)
                .send()
                .await
                .unwrap();
        });
    }

    /// The directory holding a bucket's objects (and nothing else).
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join(bucket)
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn open_upload_parts(&self) -> usize {
        std::fs::read_dir(&self.root)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".upload_id-")
            })
            .count()
    }

    /// `ListObjectsV2` requests served for one bucket.
    pub fn lists_of(&self, bucket: &str) -> u64 {
        self.lists.lock().unwrap().get(bucket).copied().unwrap_or(0)
    }

    /// Requests served, by operation.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts.lock().unwrap().clone()
    }
}

/// Takes one from a fault's remaining count: whether it applies now.
fn take_one(remaining: &AtomicU64) -> bool {
    remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

struct TestStore {
    inner: s3s_fs::FileSystem,
    faults: Arc<Faults>,
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    lists: Arc<Mutex<BTreeMap<String, u64>>>,
    /// Requests per object, and (key `(bucket, key, true)`) GETs that passed `arrive`.
    requests: Mutex<std::collections::HashMap<(String, String, bool), u64>>,
    /// GETs of any object.
    gets: AtomicU64,
    /// Serialises conditional creates: S3 makes `If-None-Match: *` atomic, s3s-fs does not.
    create_lock: tokio::sync::Mutex<()>,
    /// Upload ids completed.
    completed: Mutex<std::collections::BTreeSet<String>>,
}

impl TestStore {
    /// Counts the request to `key` in `bucket` (a listing's prefix) and injects a 503 when
    /// it is its turn.
    fn arrive(&self, op: &'static str, bucket: &str, key: &str) -> S3Result<()> {
        *self.counts.lock().unwrap().entry(op).or_default() += 1;
        let n = self.count((bucket, key, false));
        let every = self.faults.slow_down_every.load(Ordering::Relaxed);
        if every > 0 && n.is_multiple_of(every) {
            *self
                .counts
                .lock()
                .unwrap()
                .entry("injected_503")
                .or_default() += 1;
            return Err(s3_error!(SlowDown, "injected by the test server"));
        }
        Ok(())
    }

    /// One more request of a kind to an object: its count so far.
    fn count(&self, (bucket, key, gets): (&str, &str, bool)) -> u64 {
        let mut requests = self.requests.lock().unwrap();
        let n = requests
            .entry((bucket.to_string(), key.to_string(), gets))
            .or_default();
        *n += 1;
        *n
    }
}

fn etag_matches(condition: &Option<IfMatch>, current: &Option<ETag>) -> bool {
    match (condition, current) {
        (None, _) => true,
        (Some(c), _) if c.is_any() => current.is_some(),
        (Some(c), Some(cur)) => c.as_etag().is_some_and(|e| e.strong_cmp(cur)),
        (Some(_), None) => false,
    }
}

fn request<T>(input: T) -> S3Request<T> {
    S3Request {
        input,
        method: hyper::Method::PUT,
        uri: hyper::Uri::from_static("/"),
        headers: Default::default(),
        extensions: Default::default(),
        credentials: None,
        region: None,
        service: None,
        trailing_headers: None,
    }
}

#[async_trait::async_trait]
impl S3 for TestStore {
    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.arrive("HeadObject", &req.input.bucket, &req.input.key)?;
        let condition = req.input.if_match.clone();
        let out = self.inner.head_object(req).await?;
        if !etag_matches(&condition, &out.output.e_tag) {
            return Err(s3_error!(PreconditionFailed));
        }
        Ok(out)
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.arrive("GetObject", &req.input.bucket, &req.input.key)?;
        let get = self.gets.fetch_add(1, Ordering::Relaxed) + 1;
        let object_get = self.count((&req.input.bucket, &req.input.key, true));
        let condition = req.input.if_match.clone();
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let replace = {
            let mut r = self.faults.replace_after_first_get.lock().unwrap();
            match r.as_ref() {
                Some((k, _)) if *k == key && get > 1 => r.take(),
                _ => None,
            }
        };
        if let Some((_, bytes)) = replace {
            let input = PutObjectInput::builder()
                .bucket(bucket)
                .key(key)
                .body(Some(StreamingBlob::from(s3s::Body::from(Bytes::from(
                    bytes,
                )))))
                .build()
                .unwrap();
            self.inner.put_object(request(input)).await?;
        }
        let mut out = self.inner.get_object(req).await?;
        if !etag_matches(&condition, &out.output.e_tag) {
            return Err(s3_error!(PreconditionFailed));
        }
        let every = self.faults.cut_body_every.load(Ordering::Relaxed);
        if every > 0 && object_get.is_multiple_of(every) {
            *self
                .counts
                .lock()
                .unwrap()
                .entry("injected_cut")
                .or_default() += 1;
            let len = out.output.content_length.unwrap_or(0) as usize;
            let body = out.output.body.take().unwrap();
            out.output.body = Some(StreamingBlob::wrap(cut_after(body, len / 2)));
        }
        Ok(out)
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.arrive("PutObject", &req.input.bucket, &req.input.key)?;
        if req.input.if_none_match.is_some() {
            *self
                .counts
                .lock()
                .unwrap()
                .entry("ConditionalCreate")
                .or_default() += 1;
        }
        let _atomic = self.create_lock.lock().await;
        self.inner.put_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.arrive("CreateMultipartUpload", &req.input.bucket, &req.input.key)?;
        self.inner.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.arrive("UploadPart", &req.input.bucket, &req.input.key)?;
        self.inner.upload_part(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.arrive("CompleteMultipartUpload", &req.input.bucket, &req.input.key)?;
        let upload_id = req.input.upload_id.clone();
        if self.completed.lock().unwrap().contains(&upload_id) {
            // As S3 answers a completed upload (s3s-fs says AccessDenied).
            return Err(s3_error!(NoSuchUpload));
        }
        let done = self.inner.complete_multipart_upload(req).await?;
        self.completed.lock().unwrap().insert(upload_id);
        if take_one(&self.faults.lose_complete_answers) {
            return Err(s3_error!(InternalError, "the answer was lost"));
        }
        Ok(done)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.arrive("AbortMultipartUpload", &req.input.bucket, &req.input.key)?;
        self.inner.abort_multipart_upload(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let prefix = req.input.prefix.clone().unwrap_or_default();
        self.arrive("ListObjectsV2", &req.input.bucket, &prefix)?;
        *self
            .lists
            .lock()
            .unwrap()
            .entry(req.input.bucket.clone())
            .or_default() += 1;
        self.inner.list_objects_v2(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.arrive("DeleteObjects", &req.input.bucket, "")?;
        if take_one(&self.faults.refuse_deletes) {
            let errors = req
                .input
                .delete
                .objects
                .iter()
                .map(|o| Error {
                    key: Some(o.key.clone()),
                    code: Some("AccessDenied".into()),
                    message: Some("Access Denied".into()),
                    ..Default::default()
                })
                .collect();
            return Ok(S3Response::new(DeleteObjectsOutput {
                errors: Some(errors),
                ..Default::default()
            }));
        }
        self.inner.delete_objects(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.arrive("DeleteObject", &req.input.bucket, &req.input.key)?;
        self.inner.delete_object(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.arrive("CopyObject", &req.input.bucket, &req.input.key)?;
        self.inner.copy_object(req).await
    }
}

/// A body that delivers `keep` bytes and then fails, so hyper drops the connection mid-body.
fn cut_after(
    body: StreamingBlob,
    keep: usize,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
    let mut left = keep;
    body.map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        if left == 0 {
            return Err(std::io::Error::other("injected connection reset"));
        }
        let take = left.min(chunk.len());
        left -= take;
        Ok(chunk.slice(..take))
    })
}
