//! Where the fold reads and writes files.
//!
//! The fold, the marts and `check` read Parquet files with the synchronous `parquet` reader
//! and write new ones with `ArrowWriter`, by path. A local lake is worked on in place. A lake
//! in an object store (S3) is worked on through a scratch directory that mirrors its layout:
//! the files a step needs are downloaded first ([`Workspace::fetch`], only what key pruning
//! selected), the files it writes are uploaded before the commit that references them
//! ([`Workspace::publish`]), and a file that joins another table unchanged is copied on the
//! server ([`Workspace::link`]). The scratch directory is deleted with the workspace.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

use crate::error::Error;
use crate::lease::Lease;

/// Downloads or uploads in flight at once.
const TRANSFERS: usize = 4;
/// Multipart part size for uploads (S3's minimum is 5 MiB).
const PART_BYTES: usize = 8 << 20;

/// The directory the fold works in, and how it reaches the lake.
pub(crate) struct Workspace {
    root: PathBuf,
    remote: Option<Remote>,
    /// The fold's lease, while it holds one (a remote lake).
    lease: tokio::sync::Mutex<Option<Lease>>,
}

struct Remote {
    /// The lake, rooted at its prefix.
    store: Arc<dyn ObjectStore>,
    _scratch: tempfile::TempDir,
}

impl Workspace {
    /// A local lake, worked on in place.
    pub(crate) fn local(root: PathBuf) -> Workspace {
        Workspace {
            root,
            remote: None,
            lease: tokio::sync::Mutex::new(None),
        }
    }

    /// A lake in an object store, worked on through a new scratch directory.
    pub(crate) fn remote(store: Arc<dyn ObjectStore>) -> Result<Workspace, Error> {
        let scratch = tempfile::Builder::new()
            .prefix("duff-fold-")
            .tempdir()
            .map_err(|e| Error::Invalid(format!("creating a scratch directory: {e}")))?;
        Ok(Workspace {
            root: scratch.path().to_path_buf(),
            remote: Some(Remote {
                store,
                _scratch: scratch,
            }),
            lease: tokio::sync::Mutex::new(None),
        })
    }

    /// The local directory that mirrors the lake root.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The lake's store, rooted at the lake, for a remote lake.
    pub(crate) fn store(&self) -> Option<Arc<dyn ObjectStore>> {
        self.remote.as_ref().map(|r| r.store.clone())
    }

    /// Keeps `lease` for the work done here; [`Self::renew_lease`] extends it.
    pub(crate) async fn hold(&self, lease: Lease) {
        *self.lease.lock().await = Some(lease);
    }

    /// Extends the held lease, if any: called before every step and every commit, so a fold
    /// whose lease was taken over stops before it commits.
    pub(crate) async fn renew_lease(&self) -> Result<(), Error> {
        match self.lease.lock().await.as_mut() {
            Some(lease) => lease.renew().await,
            None => Ok(()),
        }
    }

    /// Gives the held lease back.
    pub(crate) async fn release_lease(&self) -> Result<(), Error> {
        match self.lease.lock().await.take() {
            Some(lease) => lease.release().await,
            None => Ok(()),
        }
    }

    /// Drops the scratch copies fetched so far (a remote lake), bounding the scratch space
    /// to what one step needs.
    pub(crate) fn forget(&self) -> Result<(), Error> {
        if self.remote.is_none() {
            return Ok(());
        }
        let entries = std::fs::read_dir(&self.root)
            .map_err(|e| Error::Invalid(format!("{}: {e}", self.root.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// Makes the files at `rels` (paths under the lake root) readable under [`Self::root`].
    pub(crate) async fn fetch(&self, rels: impl IntoIterator<Item = String>) -> Result<(), Error> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let missing: Vec<String> = rels
            .into_iter()
            .filter(|rel| !self.root.join(rel).exists())
            .collect();
        futures::stream::iter(missing)
            .map(|rel| download(remote.store.as_ref(), &self.root, rel))
            .buffer_unordered(TRANSFERS)
            .try_collect::<()>()
            .await
    }

    /// Uploads the files at `rels`, written under [`Self::root`], to the lake.
    pub(crate) async fn publish(&self, rels: &[String]) -> Result<(), Error> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        futures::stream::iter(rels)
            .map(|rel| upload(remote.store.as_ref(), &self.root, rel))
            .buffer_unordered(TRANSFERS)
            .try_collect::<()>()
            .await
    }

    /// Makes the lake file `from` also available as `to`, without rewriting it: a hard link
    /// (or a copy) locally, a server-side copy in an object store.
    pub(crate) async fn link(&self, from: &str, to: &str) -> Result<(), Error> {
        match &self.remote {
            Some(remote) => remote
                .store
                .copy(&StorePath::from(from), &StorePath::from(to))
                .await
                .map_err(|e| store_error(from, "copy", e)),
            None => {
                let (from, to) = (self.root.join(from), self.root.join(to));
                create_parent(&to)?;
                if std::fs::hard_link(&from, &to).is_err() {
                    std::fs::copy(&from, &to)
                        .map_err(|e| Error::Invalid(format!("{}: {e}", to.display())))?;
                }
                Ok(())
            }
        }
    }
}

pub(crate) fn create_parent(path: &Path) -> Result<(), Error> {
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).map_err(|e| Error::Invalid(format!("{}: {e}", dir.display())))
}

fn store_error(rel: &str, operation: &'static str, source: object_store::Error) -> Error {
    Error::ObjectStore {
        path: rel.to_string(),
        operation,
        source: Box::new(source),
    }
}

async fn download(store: &dyn ObjectStore, root: &Path, rel: String) -> Result<(), Error> {
    let to = root.join(&rel);
    create_parent(&to)?;
    // Written beside, then renamed: a failed download never leaves a short file behind.
    let partial = to.with_extension("partial");
    let mut out = std::fs::File::create(&partial)
        .map_err(|e| Error::Invalid(format!("{}: {e}", partial.display())))?;
    let mut body = store
        .get(&StorePath::from(rel.as_str()))
        .await
        .map_err(|e| store_error(&rel, "get", e))?
        .into_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| store_error(&rel, "get", e))?;
        out.write_all(&chunk)
            .map_err(|e| Error::Invalid(format!("{}: {e}", partial.display())))?;
    }
    drop(out);
    std::fs::rename(&partial, &to).map_err(|e| Error::Invalid(format!("{}: {e}", to.display())))
}

async fn upload(store: &dyn ObjectStore, root: &Path, rel: &String) -> Result<(), Error> {
    let from = root.join(rel);
    let path = StorePath::from(rel.as_str());
    let io_error = |e: std::io::Error| Error::Invalid(format!("{}: {e}", from.display()));
    let size = std::fs::metadata(&from).map_err(io_error)?.len();
    if size <= PART_BYTES as u64 {
        let bytes = std::fs::read(&from).map_err(io_error)?;
        store
            .put(&path, bytes.into())
            .await
            .map_err(|e| store_error(rel, "put", e))?;
        return Ok(());
    }
    let upload = store
        .put_multipart(&path)
        .await
        .map_err(|e| store_error(rel, "create multipart upload", e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut file = std::fs::File::open(&from).map_err(io_error)?;
    let mut buf = vec![0u8; PART_BYTES];
    loop {
        let n = file.read(&mut buf).map_err(io_error)?;
        if n == 0 {
            break;
        }
        writer
            .wait_for_capacity(2)
            .await
            .map_err(|e| store_error(rel, "upload part", e))?;
        writer.write(&buf[..n]);
    }
    writer
        .finish()
        .await
        .map_err(|e| store_error(rel, "complete multipart upload", e))?;
    Ok(())
}
