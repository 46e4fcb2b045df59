//! A lake under an S3 prefix.
//!
//! Output files are written straight to their final keys as multipart uploads whose parts go up
//! while the next ones are encoded; the uploads are *completed* only when the whole run is
//! encoded ([`Stage::publish`]), so until then nothing of the run exists as an object. Small
//! files (under one part) are held in memory and PUT at publication. The manifest is then
//! created with `If-None-Match: *`: of two concurrent attempts exactly one commits, and since
//! every attempt writes the same keys with the same bytes, the lake ends as one run left it.
//! On failure the open multipart uploads are aborted (the bucket's lifecycle rule catches any
//! left by a crash).

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use duff_engine::Error;
use duff_engine::lake::is_file_of_run;
use duff_engine::manifest::Manifest;
use duff_engine::storage::{Commit, Lake, ObjectWriter, Stage, StorageError, StorageErrorKind};
use duff_engine::writer::WrittenFile;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::classify::classify;
use crate::config::{S3Url, TransferSettings};

/// The lake rooted at `s3://bucket/prefix`.
#[derive(Debug, Clone)]
pub struct S3Lake {
    client: Client,
    runtime: Handle,
    settings: TransferSettings,
    root: S3Url,
}

impl S3Lake {
    /// A lake at `root` (the key part is a prefix; a trailing `/` is implied). Must be created
    /// inside a Tokio runtime; its methods must be called outside of one (they block).
    pub fn new(client: Client, settings: TransferSettings, root: S3Url) -> Result<Self, Error> {
        settings.validate()?;
        let mut root = root;
        if !root.key.is_empty() && !root.key.ends_with('/') {
            root.key.push('/');
        }
        Ok(S3Lake {
            client,
            runtime: Handle::current(),
            settings,
            root,
        })
    }

    fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.root.key)
    }

    fn manifest_key(&self, run_id: &str) -> String {
        self.key(&format!("{}/{run_id}.json", duff_engine::lake::RUNS_DIR))
    }

    fn uri_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.root.bucket)
    }

    async fn get_manifest(&self, run_id: &str) -> Result<Option<Manifest>, Error> {
        let key = self.manifest_key(run_id);
        let uri = self.uri_of(&key);
        let response = self
            .client
            .get_object()
            .bucket(&self.root.bucket)
            .key(&key)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                let e = classify(e, &uri, "GetObject");
                return match e.kind {
                    StorageErrorKind::NotFound => Ok(None),
                    _ => Err(e.into()),
                };
            }
        };
        let bytes = response.body.collect().await.map_err(|e| StorageError {
            kind: StorageErrorKind::Transient,
            uri: uri.clone(),
            operation: "GetObject".into(),
            message: e.to_string(),
        })?;
        serde_json::from_slice(&bytes.into_bytes())
            .map(Some)
            .map_err(|source| Error::Manifest {
                path: uri.into(),
                source,
            })
    }
}

impl Lake for S3Lake {
    fn uri(&self) -> String {
        self.root.to_string()
    }

    fn read_manifest(&self, run_id: &str) -> Result<Option<Manifest>, Error> {
        self.runtime.block_on(self.get_manifest(run_id))
    }

    fn stage(&self, run_id: &str) -> Result<Box<dyn Stage>, Error> {
        Ok(Box::new(S3Stage {
            lake: self.clone(),
            run_id: run_id.to_string(),
            state: Arc::new(Mutex::new(StageState::default())),
        }))
    }

    fn commit(&self, manifest: &Manifest, overwrite: bool) -> Result<Commit, Error> {
        let key = self.manifest_key(&manifest.run_id);
        let uri = self.uri_of(&key);
        let mut json = serde_json::to_vec(manifest).expect("manifest serialises");
        json.push(b'\n');
        self.runtime.block_on(async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut put = self
                    .client
                    .put_object()
                    .bucket(&self.root.bucket)
                    .key(&key)
                    .content_type("application/json")
                    .body(ByteStream::from(json.clone()));
                if !overwrite {
                    put = put.if_none_match("*");
                }
                let error = match put.send().await {
                    Ok(_) => return Ok(Commit::Written),
                    Err(e) => classify(e, &uri, "PutObject If-None-Match"),
                };
                match error.kind {
                    // 412: the manifest exists; another attempt committed first.
                    StorageErrorKind::Changed => {
                        let existing = self.get_manifest(&manifest.run_id).await?;
                        return existing
                            .map(|m| Commit::AlreadyCommitted(Box::new(m)))
                            .ok_or_else(|| error.into());
                    }
                    // 409: a concurrent conditional write is in flight; ask again.
                    StorageErrorKind::Transient if attempt < self.settings.max_attempts => {
                        tokio::time::sleep(self.settings.backoff(attempt)).await;
                    }
                    _ => return Err(error.into()),
                }
            }
        })
    }
}

/// A file finished but not yet visible.
enum Pending {
    /// Smaller than one part: PUT at publication.
    Small { key: String, bytes: Vec<u8> },
    /// All parts uploaded: completed at publication.
    Multipart {
        key: String,
        upload_id: String,
        parts: Vec<CompletedPart>,
        /// The object's size once complete.
        bytes: u64,
    },
}

#[derive(Default)]
struct StageState {
    pending: Vec<Pending>,
    /// Every multipart upload created (key, upload id), to abort on failure.
    open_uploads: Vec<(String, String)>,
    failure: Option<Error>,
}

struct S3Stage {
    lake: S3Lake,
    run_id: String,
    state: Arc<Mutex<StageState>>,
}

impl Stage for S3Stage {
    fn create(&self, rel: &str) -> Result<Box<dyn ObjectWriter>, Error> {
        Ok(Box::new(Upload {
            lake: self.lake.clone(),
            key: self.lake.key(rel),
            buf: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            permits: Arc::new(Semaphore::new(self.lake.settings.upload_concurrency)),
            written: 0,
            state: self.state.clone(),
        }))
    }

    fn publish(&self, files: &[WrittenFile]) -> Result<(), Error> {
        let pending = std::mem::take(&mut self.state.lock().expect("stage lock").pending);
        let lake = &self.lake;
        lake.runtime.block_on(async {
            let mut first = true;
            let mut rest = Vec::new();
            for p in pending {
                if first {
                    // One file first, so the crash test can stop between two completions.
                    complete(lake, p).await?;
                    duff_engine::failpoint::hit("mid_publish");
                    first = false;
                } else {
                    rest.push(complete(lake, p));
                }
            }
            futures::future::try_join_all(rest).await?;
            self.state.lock().expect("stage lock").open_uploads.clear();
            remove_stale_parts(lake, &self.run_id, files).await
        })
    }

    fn abort(&self) {
        let open = std::mem::take(&mut self.state.lock().expect("stage lock").open_uploads);
        let lake = &self.lake;
        lake.runtime.block_on(async {
            for (key, upload_id) in open {
                let aborted = lake
                    .client
                    .abort_multipart_upload()
                    .bucket(&lake.root.bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                if let Err(e) = aborted {
                    let e = classify(e, &lake.uri_of(&key), "AbortMultipartUpload");
                    tracing::warn!(error = %e, "could not abort an upload (the lifecycle rule will)");
                }
            }
        });
    }

    fn take_failure(&self) -> Option<Error> {
        self.state.lock().expect("stage lock").failure.take()
    }
}

async fn complete(lake: &S3Lake, pending: Pending) -> Result<(), Error> {
    match pending {
        Pending::Small { key, bytes } => {
            lake.client
                .put_object()
                .bucket(&lake.root.bucket)
                .key(&key)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| classify(e, &lake.uri_of(&key), "PutObject"))?;
        }
        Pending::Multipart {
            key,
            upload_id,
            parts,
            bytes,
        } => {
            let completed = lake
                .client
                .complete_multipart_upload()
                .bucket(&lake.root.bucket)
                .key(&key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| classify(e, &lake.uri_of(&key), "CompleteMultipartUpload"));
            match completed {
                Ok(_) => {}
                // A retried complete whose first call succeeded (its answer lost) finds the
                // upload gone: the object tells whether it was completed.
                Err(e) if e.kind == StorageErrorKind::NotFound => {
                    let head = lake
                        .client
                        .head_object()
                        .bucket(&lake.root.bucket)
                        .key(&key)
                        .send()
                        .await;
                    match head {
                        Ok(h) if h.content_length() == Some(bytes as i64) => {
                            tracing::info!(
                                key,
                                "a retried CompleteMultipartUpload found the upload completed"
                            );
                        }
                        _ => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Deletes objects of this run id, in the directories just written, that this attempt did not
/// write (parts of an earlier attempt with other options).
async fn remove_stale_parts(
    lake: &S3Lake,
    run_id: &str,
    files: &[WrittenFile],
) -> Result<(), Error> {
    let keep: BTreeSet<String> = files.iter().map(|f| lake.key(&f.path)).collect();
    let dirs: BTreeSet<String> = keep
        .iter()
        .filter_map(|k| k.rsplit_once('/').map(|(d, _)| format!("{d}/{run_id}")))
        .collect();
    // Side by side: one listing per table, each a request of S3's latency.
    futures::future::try_join_all(
        dirs.iter()
            .map(|prefix| remove_stale_in(lake, run_id, &keep, prefix)),
    )
    .await?;
    Ok(())
}

/// [`remove_stale_parts`] under one prefix: `<table directory>/<run id>`.
async fn remove_stale_in(
    lake: &S3Lake,
    run_id: &str,
    keep: &BTreeSet<String>,
    prefix: &str,
) -> Result<(), Error> {
    let mut pages = lake
        .client
        .list_objects_v2()
        .bucket(&lake.root.bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut stale = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify(e, &lake.uri_of(prefix), "ListObjectsV2"))?;
        for object in page.contents() {
            let key = object.key().unwrap_or_default();
            let name = key.rsplit('/').next().unwrap_or(key);
            if is_file_of_run(name, run_id) && !keep.contains(key) {
                stale.push(
                    ObjectIdentifier::builder()
                        .key(key)
                        .build()
                        .expect("key set"),
                );
            }
        }
    }
    if !stale.is_empty() {
        tracing::info!(
            count = stale.len(),
            prefix,
            "removing stale parts of this run"
        );
        let delete = Delete::builder()
            .set_objects(Some(stale))
            .build()
            .expect("objects set");
        let out = lake
            .client
            .delete_objects()
            .bucket(&lake.root.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| classify(e, &lake.uri_of(prefix), "DeleteObjects"))?;
        // A 200 answer can still refuse some keys, each with its own error.
        if let Some(refused) = out.errors().first() {
            let key = refused.key().unwrap_or_default();
            return Err(StorageError {
                kind: StorageErrorKind::Transient,
                uri: lake.uri_of(key),
                operation: "DeleteObjects".into(),
                message: format!(
                    "{} of the keys were not deleted; this one: {} {}",
                    out.errors().len(),
                    refused.code().unwrap_or("?"),
                    refused.message().unwrap_or_default()
                ),
            }
            .into());
        }
    }
    Ok(())
}

/// One output file as a multipart upload; parts upload in the background while the encoder
/// goes on, at most `upload_concurrency` at a time (then `write` waits: bounded memory).
struct Upload {
    lake: S3Lake,
    key: String,
    buf: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<JoinHandle<Result<CompletedPart, StorageError>>>,
    permits: Arc<Semaphore>,
    written: u64,
    state: Arc<Mutex<StageState>>,
}

impl Upload {
    fn fail(&self, e: StorageError) -> std::io::Error {
        let message = e.to_string();
        let mut state = self.state.lock().expect("stage lock");
        if state.failure.is_none() {
            state.failure = Some(e.into());
        }
        std::io::Error::other(message)
    }

    /// Starts uploading the buffered bytes as the next part.
    fn send_part(&mut self) -> Result<(), StorageError> {
        let lake = self.lake.clone();
        let uri = lake.uri_of(&self.key);
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let created = lake.runtime.block_on(
                    lake.client
                        .create_multipart_upload()
                        .bucket(&lake.root.bucket)
                        .key(&self.key)
                        .send(),
                );
                let id = created
                    .map_err(|e| classify(e, &uri, "CreateMultipartUpload"))?
                    .upload_id()
                    .unwrap_or_default()
                    .to_string();
                self.state
                    .lock()
                    .expect("stage lock")
                    .open_uploads
                    .push((self.key.clone(), id.clone()));
                self.upload_id = Some(id.clone());
                id
            }
        };
        let permit = lake
            .runtime
            .block_on(self.permits.clone().acquire_owned())
            .expect("semaphore never closed");
        let body = bytes::Bytes::from(std::mem::take(&mut self.buf));
        let number = self.parts.len() as i32 + 1;
        let key = self.key.clone();
        let task = lake.runtime.spawn(async move {
            let _permit = permit;
            let response = lake
                .client
                .upload_part()
                .bucket(&lake.root.bucket)
                .key(&key)
                .upload_id(&upload_id)
                .part_number(number)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| classify(e, &uri, &format!("UploadPart {number}")))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(response.e_tag().map(str::to_string))
                .build())
        });
        self.parts.push(task);
        Ok(())
    }
}

impl Write for Upload {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.capacity() == 0 && self.upload_id.is_some() {
            self.buf
                .reserve_exact(self.lake.settings.part_bytes + (64 << 10));
        }
        self.buf.extend_from_slice(data);
        self.written += data.len() as u64;
        if self.buf.len() >= self.lake.settings.part_bytes {
            self.send_part().map_err(|e| self.fail(e))?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for Upload {
    fn finish(mut self: Box<Self>) -> Result<u64, Error> {
        if self.upload_id.is_none() {
            let pending = Pending::Small {
                key: std::mem::take(&mut self.key),
                bytes: std::mem::take(&mut self.buf),
            };
            self.state.lock().expect("stage lock").pending.push(pending);
            return Ok(self.written);
        }
        if !self.buf.is_empty() {
            self.send_part()?;
        }
        let handles = std::mem::take(&mut self.parts);
        let parts = self.lake.runtime.block_on(async {
            let mut parts = Vec::with_capacity(handles.len());
            for h in handles {
                parts.push(h.await.map_err(|e| StorageError {
                    kind: StorageErrorKind::Transient,
                    uri: self.lake.uri_of(&self.key),
                    operation: "UploadPart".into(),
                    message: format!("upload task failed: {e}"),
                })??);
            }
            Ok::<_, StorageError>(parts)
        })?;
        // The crash test stops here: parts are up, nothing is complete, nothing is visible.
        duff_engine::failpoint::hit("parts_uploaded");
        let pending = Pending::Multipart {
            key: self.key.clone(),
            upload_id: self.upload_id.clone().expect("created above"),
            parts,
            bytes: self.written,
        };
        self.state.lock().expect("stage lock").pending.push(pending);
        Ok(self.written)
    }
}
