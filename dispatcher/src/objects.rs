//! [`Objects`] over S3 (the inbox) and the lake (S3, or a local directory for `duff dispatch`).

use std::path::PathBuf;
use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use duff_engine::input::run_id_for;
use duff_engine::{Lake, RunStatus, Source, StorageError, StorageErrorKind};
use duff_s3::{S3Source, S3Url, TransferSettings, classify};

use crate::error::DispatchError;
use crate::ledger::Marker;
use crate::traits::{ListPage, Listed, ObjectInfo, Objects};

/// Where ledger markers live: next to the lake's manifests.
#[derive(Debug, Clone)]
pub enum LedgerStore {
    /// A lake in S3: markers are objects, created with `If-None-Match: *`.
    S3 {
        /// The client markers are read and written with.
        client: Client,
        /// The lake root. Its key must be empty or end with `/`: marker paths are appended.
        root: S3Url,
    },
    /// A lake in a local directory (`duff dispatch`): markers are files, created exclusively.
    Local(PathBuf),
}

/// [`Objects`] over S3 (HeadObject and listings of the inbox), the lake's manifests and the
/// ledger in `ledger`.
pub struct AwsObjects {
    s3: Client,
    settings: TransferSettings,
    lake: Arc<dyn Lake>,
    ledger: LedgerStore,
}

impl AwsObjects {
    /// Heads and lists with `s3` and `settings`; reads manifests through `lake`.
    pub fn new(
        s3: Client,
        settings: TransferSettings,
        lake: Arc<dyn Lake>,
        ledger: LedgerStore,
    ) -> AwsObjects {
        AwsObjects {
            s3,
            settings,
            lake,
            ledger,
        }
    }
}

/// The object's identity exactly as the engine will see it: the run id comes from the same
/// `S3Source::info()` the engine (here or in the Batch job) derives it from.
pub fn object_info(source: &S3Source) -> ObjectInfo {
    ObjectInfo {
        bucket: source.url.bucket.clone(),
        key: source.url.key.clone(),
        size: source.size,
        etag: source.etag.trim_matches('"').to_string(),
        last_modified: source.last_modified,
        run_id: run_id_for(&source.info()),
    }
}

impl Objects for AwsObjects {
    async fn head(
        &self,
        bucket: &str,
        key: &str,
        etag: Option<&str>,
    ) -> Result<ObjectInfo, DispatchError> {
        let url = S3Url {
            bucket: bucket.into(),
            key: key.into(),
        };
        let source = S3Source::head(self.s3.clone(), self.settings.clone(), url, etag).await?;
        Ok(object_info(&source))
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        page_size: Option<i32>,
        token: Option<String>,
    ) -> Result<ListPage, DispatchError> {
        let uri = format!("s3://{bucket}/{prefix}");
        let page = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_string))
            .set_max_keys(page_size)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| storage(classify(e, &uri, "ListObjectsV2")))?;
        let objects = page
            .contents()
            .iter()
            .filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    last_modified: DateTime::<Utc>::from_timestamp_millis(
                        o.last_modified()?.to_millis().ok()?,
                    )?,
                })
            })
            .collect();
        let next = page
            .is_truncated()
            .unwrap_or(false)
            .then(|| page.next_continuation_token().map(str::to_string))
            .flatten();
        Ok(ListPage { objects, next })
    }

    async fn manifest_status(&self, run_id: &str) -> Result<Option<RunStatus>, DispatchError> {
        // The lake's own reader (same key layout, same parsing); it blocks, so off the runtime.
        let lake = self.lake.clone();
        let run_id = run_id.to_string();
        let manifest = tokio::task::spawn_blocking(move || lake.read_manifest(&run_id))
            .await
            .map_err(|e| DispatchError::Crashed(e.to_string()))??;
        Ok(manifest.map(|m| m.status))
    }

    async fn ledger_create(&self, marker: &Marker) -> Result<Option<Marker>, DispatchError> {
        let body = serde_json::to_vec(marker).expect("marker serialises");
        match &self.ledger {
            LedgerStore::S3 { client, root } => {
                let key = format!("{}{}", root.key, Marker::rel_path(&marker.run_id));
                let uri = format!("s3://{}/{key}", root.bucket);
                let put = client
                    .put_object()
                    .bucket(&root.bucket)
                    .key(&key)
                    .content_type("application/json")
                    .if_none_match("*")
                    .body(ByteStream::from(body))
                    .send()
                    .await;
                match put.map_err(|e| classify(e, &uri, "PutObject If-None-Match")) {
                    Ok(_) => Ok(None),
                    // 412: a marker exists.
                    Err(e) if e.kind == StorageErrorKind::Changed => {
                        Ok(Some(self.ledger_get(&marker.run_id).await?.unwrap_or_else(
                            // Released in between: an expired claim of no attempt.
                            || Marker {
                                at: DateTime::<Utc>::UNIX_EPOCH,
                                attempts: 0,
                                here: false,
                                until: None,
                                ..marker.clone()
                            },
                        )))
                    }
                    Err(e) => Err(storage(e)),
                }
            }
            LedgerStore::Local(dir) => {
                let path = dir.join(Marker::rel_path(&marker.run_id));
                let created = std::fs::create_dir_all(path.parent().expect("has a parent"))
                    .and_then(|()| {
                        std::fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .open(&path)
                    });
                match created {
                    Ok(mut f) => {
                        std::io::Write::write_all(&mut f, &body).map_err(|e| local(&path, e))?;
                        Ok(None)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Ok(self.ledger_get(&marker.run_id).await?)
                    }
                    Err(e) => Err(local(&path, e)),
                }
            }
        }
    }

    async fn ledger_get(&self, run_id: &str) -> Result<Option<Marker>, DispatchError> {
        let bytes = match &self.ledger {
            LedgerStore::S3 { client, root } => {
                let key = format!("{}{}", root.key, Marker::rel_path(run_id));
                let uri = format!("s3://{}/{key}", root.bucket);
                let got = client
                    .get_object()
                    .bucket(&root.bucket)
                    .key(&key)
                    .send()
                    .await;
                match got.map_err(|e| classify(e, &uri, "GetObject")) {
                    Ok(o) => o
                        .body
                        .collect()
                        .await
                        .map_err(|e| {
                            storage(StorageError {
                                kind: StorageErrorKind::Transient,
                                uri,
                                operation: "GetObject".into(),
                                message: e.to_string(),
                            })
                        })?
                        .to_vec(),
                    Err(e) if e.kind == StorageErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(storage(e)),
                }
            }
            LedgerStore::Local(dir) => {
                let path = dir.join(Marker::rel_path(run_id));
                match std::fs::read(&path) {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(local(&path, e)),
                }
            }
        };
        // An unreadable marker holds nothing: it is treated as expired and replaced.
        Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(run_id, error = %e, "unreadable ledger marker; treating it as expired");
            Marker {
                run_id: run_id.into(),
                bucket: String::new(),
                key: String::new(),
                etag: String::new(),
                size: 0,
                at: DateTime::<Utc>::UNIX_EPOCH,
                job_id: None,
                job_name: None,
                attempts: 1,
                here: false,
                until: None,
            }
        })))
    }

    async fn ledger_put(&self, marker: &Marker) -> Result<(), DispatchError> {
        let body = serde_json::to_vec(marker).expect("marker serialises");
        match &self.ledger {
            LedgerStore::S3 { client, root } => {
                let key = format!("{}{}", root.key, Marker::rel_path(&marker.run_id));
                let uri = format!("s3://{}/{key}", root.bucket);
                client
                    .put_object()
                    .bucket(&root.bucket)
                    .key(&key)
                    .content_type("application/json")
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .map_err(|e| storage(classify(e, &uri, "PutObject")))?;
                Ok(())
            }
            LedgerStore::Local(dir) => {
                let path = dir.join(Marker::rel_path(&marker.run_id));
                std::fs::create_dir_all(path.parent().expect("has a parent"))
                    .and_then(|()| std::fs::write(&path, body))
                    .map_err(|e| local(&path, e))
            }
        }
    }

    async fn ledger_delete(&self, run_id: &str) -> Result<(), DispatchError> {
        match &self.ledger {
            LedgerStore::S3 { client, root } => {
                let key = format!("{}{}", root.key, Marker::rel_path(run_id));
                let uri = format!("s3://{}/{key}", root.bucket);
                client
                    .delete_object()
                    .bucket(&root.bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| storage(classify(e, &uri, "DeleteObject")))?;
                Ok(())
            }
            LedgerStore::Local(dir) => {
                let path = dir.join(Marker::rel_path(run_id));
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(local(&path, e)),
                    _ => Ok(()),
                }
            }
        }
    }
}

fn storage(e: StorageError) -> DispatchError {
    DispatchError::Engine(e.into())
}

fn local(path: &std::path::Path, e: std::io::Error) -> DispatchError {
    DispatchError::Engine(duff_engine::Error::Io {
        path: path.to_path_buf(),
        source: e,
    })
}
