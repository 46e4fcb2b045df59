//! [`CommittedOnly`]: an object store that lists, under each table of the lake, exactly the
//! data files of the table's current Delta snapshot.
//!
//! A directory reader (DataFusion's listing tables, with their `pa_date` partition pruning)
//! placed over it reads what a Delta reader reads: never a file of an uncommitted or losing
//! attempt, a replaced (`--force`) file, or the `_delta_log`. Reads of a named object pass
//! through unchanged. [`CommittedOnly::refresh`] follows the tables' logs (incrementally: one
//! listing of each `_delta_log/` when nothing changed).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use deltalake_core::kernel::Version;
use deltalake_core::{DeltaTable, DeltaTableBuilder};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path as StorePath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result as StoreResult,
};
use url::Url;

use crate::error::Error;
use crate::tables::{ALL_TABLES, DeltaTableDef};

/// Which files of each table are visible.
#[derive(Debug, Default)]
struct Visible {
    /// Table directory (store path) → its committed files (store paths).
    tables: Vec<(StorePath, HashSet<StorePath>)>,
}

impl Visible {
    fn allows(&self, path: &StorePath) -> bool {
        for (dir, files) in &self.tables {
            if path.prefix_matches(dir) {
                return files.contains(path);
            }
        }
        true
    }
}

/// A table whose log moved: its name, its version, its directory and its committed files.
type FollowedTable = (&'static str, Option<Version>, StorePath, HashSet<StorePath>);

/// See the module documentation.
pub struct CommittedOnly {
    inner: Arc<dyn ObjectStore>,
    /// The lake root as a URL (`file:///…/`) and as a path in `inner`.
    root: Url,
    root_path: StorePath,
    visible: Arc<RwLock<Visible>>,
    tables: tokio::sync::Mutex<HashMap<&'static str, (DeltaTable, Option<Version>)>>,
    /// Every mart records the `order_lines` version the tables are at.
    marts_current: std::sync::atomic::AtomicBool,
    /// When the last refresh that succeeded started (guarded by `tables`' lock).
    refreshed: std::sync::Mutex<Option<std::time::Instant>>,
}

impl fmt::Debug for CommittedOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommittedOnly({})", self.root)
    }
}

impl fmt::Display for CommittedOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommittedOnly({})", self.root)
    }
}

impl CommittedOnly {
    /// Over `inner`, the store that holds the lake at `root` (a directory URL), where the lake
    /// root is `root_path`. Nothing is visible under a table until the first [`refresh`].
    ///
    /// [`refresh`]: CommittedOnly::refresh
    pub fn new(inner: Arc<dyn ObjectStore>, root: Url, root_path: StorePath) -> Self {
        let tables = ALL_TABLES
            .iter()
            .map(|def| (table_dir(&root_path, def), HashSet::new()))
            .collect();
        CommittedOnly {
            inner,
            root,
            root_path,
            visible: Arc::new(RwLock::new(Visible { tables })),
            tables: tokio::sync::Mutex::new(HashMap::new()),
            marts_current: std::sync::atomic::AtomicBool::new(false),
            refreshed: std::sync::Mutex::new(None),
        }
    }

    /// Over `store`, an object store of the lake's scheme rooted at its bucket (S3), for the
    /// lake at `root` (`s3://bucket/prefix/`).
    pub fn in_store(store: Arc<dyn ObjectStore>, root: Url) -> Result<Self, Error> {
        crate::lake::register_log_store(root.scheme())?;
        let root_path = StorePath::from_url_path(root.path())
            .map_err(|e| Error::Invalid(format!("{root}: not an object store path: {e}")))?;
        Ok(CommittedOnly::new(store, root, root_path))
    }

    /// Over the local file system, for the lake in directory `root` (absolute).
    pub fn local(root: &std::path::Path) -> Result<Self, Error> {
        let url = Url::from_directory_path(root)
            .map_err(|()| Error::Invalid(format!("{}: not an absolute path", root.display())))?;
        let root_path = StorePath::from_filesystem_path(root)
            .map_err(|e| Error::Invalid(format!("{}: {e}", root.display())))?;
        Ok(CommittedOnly::new(
            Arc::new(object_store::local::LocalFileSystem::new()),
            url,
            root_path,
        ))
    }

    /// Follows every table's log to its latest version, all tables at once (in S3 each is a
    /// listing of its `_delta_log/`). A table that does not exist yet has no visible files.
    pub async fn refresh(&self) -> Result<(), Error> {
        self.refresh_within(std::time::Duration::ZERO).await
    }

    /// [`CommittedOnly::refresh`], unless a refresh that started less than `max_age` ago
    /// succeeded: one request's steps (the current-state check, then the query) follow the
    /// logs once, and concurrent requests share a refresh.
    pub async fn refresh_within(&self, max_age: std::time::Duration) -> Result<(), Error> {
        let mut tables = self.tables.lock().await;
        let started = std::time::Instant::now();
        let last = *self.refreshed.lock().expect("not poisoned");
        if last.is_some_and(|at| started.duration_since(at) < max_age) {
            return Ok(());
        }
        for def in &ALL_TABLES {
            if !tables.contains_key(def.name) {
                tables.insert(def.name, (self.open(def)?, None));
            }
        }
        let updates = tables.iter_mut().map(|(name, entry)| {
            let def = ALL_TABLES
                .iter()
                .find(|d| d.name == *name)
                .expect("every entry is a table of the lake");
            self.follow(def, entry)
        });
        let changed: Vec<_> = futures::future::try_join_all(updates)
            .await?
            .into_iter()
            .flatten()
            .collect();
        // A version is recorded as seen only once every table was followed: after a failure,
        // the next refresh applies what this one could not.
        for (name, version, _, _) in &changed {
            if let Some(entry) = tables.get_mut(name) {
                entry.1 = *version;
            }
        }
        let changed: Vec<_> = changed
            .into_iter()
            .map(|(_, _, dir, files)| (dir, files))
            .collect();
        if !changed.is_empty() {
            let current = marts_reflect(&tables).await?;
            self.marts_current
                .store(current, std::sync::atomic::Ordering::Relaxed);
            let mut visible = self.visible.write().expect("not poisoned");
            for (dir, files) in changed {
                if let Some(slot) = visible.tables.iter_mut().find(|(d, _)| *d == dir) {
                    slot.1 = files;
                }
            }
        }
        *self.refreshed.lock().expect("not poisoned") = Some(started);
        Ok(())
    }

    /// A handle on `def`'s table (not loaded). A remote lake's log is read through the store
    /// its files are read through.
    fn open(&self, def: &DeltaTableDef) -> Result<DeltaTable, Error> {
        let url = self
            .root
            .join(&format!("{}/", def.prefix))
            .expect("table prefixes are valid URL paths");
        let remote = self.root.scheme() != "file";
        DeltaTableBuilder::from_url(url.clone())
            .map(|b| match remote {
                true => b.with_storage_backend(self.inner.clone(), url),
                false => b,
            })
            .and_then(|b| b.build())
            .map_err(|e| Error::delta(def.name, "open", e))
    }

    /// Brings `entry` (the table and the version last seen) to the table's latest version;
    /// when that is not the version last seen: the table, its version, its directory and its
    /// committed files.
    async fn follow(
        &self,
        def: &'static DeltaTableDef,
        entry: &mut (DeltaTable, Option<Version>),
    ) -> Result<Option<FollowedTable>, Error> {
        if entry.1.is_none() && !crate::files::table_exists(&entry.0).await {
            return Ok(None);
        }
        match entry.0.update_incremental(None).await {
            Ok(()) => {}
            Err(e) if crate::files::is_missing_table(&e) => return Ok(None),
            Err(e) => return Err(Error::delta(def.name, "load", e)),
        }
        let version = entry.0.version();
        if version == entry.1 {
            return Ok(None);
        }
        let state = entry
            .0
            .snapshot()
            .map_err(|e| Error::delta(def.name, "snapshot", e))?;
        let dir = table_dir(&self.root_path, def);
        let files: HashSet<StorePath> = state
            .log_data()
            .iter()
            .map(|f| {
                let rel = f.path();
                StorePath::from_iter(dir.parts().chain(StorePath::from(rel.as_ref()).parts()))
            })
            .collect();
        Ok(Some((def.name, version, dir, files)))
    }

    /// Whether, as of the last [`refresh`](CommittedOnly::refresh), every mart and current
    /// dimension reflects the current state's latest version (false before they were first
    /// built, or between a fold's commit to `order_lines` and its commits to them).
    pub fn marts_reflect_current_state(&self) -> bool {
        self.marts_current
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The committed files of a table, as paths relative to the lake root, sorted.
    pub fn files_of(&self, def: &DeltaTableDef) -> Vec<String> {
        let dir = table_dir(&self.root_path, def);
        let visible = self.visible.read().expect("not poisoned");
        let mut out: Vec<String> = visible
            .tables
            .iter()
            .filter(|(d, _)| *d == dir)
            .flat_map(|(_, files)| files.iter())
            .map(|p| {
                p.prefix_match(&self.root_path)
                    .map(|parts| {
                        parts
                            .map(|p| p.as_ref().to_string())
                            .collect::<Vec<_>>()
                            .join("/")
                    })
                    .unwrap_or_else(|| p.to_string())
            })
            .collect();
        out.sort();
        out
    }
}

/// Whether every mart's and current dimension's `txn` names the loaded `order_lines` version.
async fn marts_reflect(
    tables: &HashMap<&'static str, (DeltaTable, Option<Version>)>,
) -> Result<bool, Error> {
    let Some(version) = tables
        .get(crate::tables::ORDER_LINES.name)
        .and_then(|t| t.1)
        .and_then(|v| i64::try_from(v).ok())
    else {
        return Ok(false);
    };
    for def in crate::tables::MARTS
        .iter()
        .chain(&crate::tables::CURRENT_DIMS)
    {
        let Some((table, Some(_))) = tables.get(def.name) else {
            return Ok(false);
        };
        let state = table
            .snapshot()
            .map_err(|e| Error::delta(def.name, "snapshot", e))?;
        let reflects = state
            .transaction_version(table.log_store().as_ref(), crate::marts::store::REFLECTS)
            .await
            .map_err(|e| Error::delta(def.name, "read txn", e))?;
        if reflects != Some(version) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn table_dir(root: &StorePath, def: &DeltaTableDef) -> StorePath {
    StorePath::from_iter(root.parts().chain(StorePath::from(def.prefix).parts()))
}

#[async_trait]
impl ObjectStore for CommittedOnly {
    async fn put_opts(
        &self,
        location: &StorePath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> StoreResult<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &StorePath,
        opts: PutMultipartOptions,
    ) -> StoreResult<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &StorePath, options: GetOptions) -> StoreResult<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &StorePath,
        ranges: &[Range<u64>],
    ) -> StoreResult<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, StoreResult<StorePath>>,
    ) -> BoxStream<'static, StoreResult<StorePath>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        let visible = self.visible.clone();
        self.inner
            .list(prefix)
            .filter(move |meta| {
                let keep = match meta {
                    Ok(m) => visible.read().expect("not poisoned").allows(&m.location),
                    Err(_) => true,
                };
                futures::future::ready(keep)
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&StorePath>) -> StoreResult<ListResult> {
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        let visible = self.visible.read().expect("not poisoned");
        result.objects.retain(|m| visible.allows(&m.location));
        // `_delta_log/` is the tables' own: no reader of data files should walk into it.
        result
            .common_prefixes
            .retain(|p| p.filename() != Some("_delta_log"));
        Ok(result)
    }

    async fn copy_opts(
        &self,
        from: &StorePath,
        to: &StorePath,
        options: CopyOptions,
    ) -> StoreResult<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
