//! [`DeltaLake`]: a lake of Delta tables, opened over an inner lake that writes the data files
//! (local files or S3), with the tables' handles and the scratch workspace the fold uses.
//! Committing a run (`commit.rs`), folding (`fold.rs`), the marts (`marts/store.rs`), the
//! current dimensions, `check`, `optimize` and `vacuum` each add their methods in their own
//! module.

use std::path::Path;
use std::sync::{Arc, Once};

use deltalake_core::protocol::SaveMode;
use deltalake_core::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use duff_engine::LocalLake;
use duff_engine::storage::Lake;
use object_store::ObjectStore;
use object_store::path::Path as StorePath;
use url::Url;

use crate::error::Error;
use crate::files::{is_missing_table, table_exists};
use crate::marts::observe::RunMartsSlot;
use crate::tables::{ALL_TABLES, DeltaTableDef};

/// A lake whose every table is a Delta table. `L` writes the data files.
pub struct DeltaLake<L> {
    files: L,
    root: Url,
    /// The object store of a remote lake (S3), rooted at its bucket; `None` for a local lake.
    remote: Option<Arc<dyn ObjectStore>>,
    /// How long the fold's lease outlives a dead holder (a remote lake).
    fold_lease: std::time::Duration,
    /// The marts of the last attempt whose rows were all seen, for its fold.
    pub(crate) run_marts: RunMartsSlot,
    /// Each table as last loaded, by prefix: loaded again, it reads only the commits after
    /// that version (in S3, 1–3 requests in a row instead of ~6).
    loaded: std::sync::Mutex<std::collections::HashMap<&'static str, DeltaTable>>,
    /// Drives `deltalake`'s async API for the engine's blocking calls. Always `Some` but
    /// during drop, which shuts it down without blocking (a lake may be dropped in an async
    /// context, such as the dispatcher's).
    runtime: Option<tokio::runtime::Runtime>,
}

impl<L> Drop for DeltaLake<L> {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl DeltaLake<LocalLake> {
    /// Opens (creating if needed) the lake in a local directory.
    pub fn open_local(root: impl AsRef<Path>) -> Result<Self, Error> {
        let files = LocalLake::open(root.as_ref()).map_err(|e| Error::Invalid(e.to_string()))?;
        refuse_legacy_layout(files.root())?;
        Self::open_local_lake(files)
    }

    fn open_local_lake(files: LocalLake) -> Result<Self, Error> {
        for def in &ALL_TABLES {
            let dir = files.root().join(def.prefix);
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Invalid(format!("creating {}: {e}", dir.display())))?;
        }
        let root = Url::from_directory_path(files.root()).map_err(|()| {
            Error::Invalid(format!("{}: not an absolute path", files.root().display()))
        })?;
        DeltaLake::open(files, root)
    }

    /// Converts, in place, a lake written before its tables were Delta tables: every run its
    /// `_runs/` manifests record is committed to the Delta tables from the files it left (no
    /// input is read again, no file rewritten), then folded. Idempotent: a conversion that
    /// stopped halfway is completed by running it again. Returns the lake and how many runs it
    /// holds.
    pub fn convert_legacy(root: impl AsRef<Path>) -> Result<(Self, usize), Error> {
        let files = LocalLake::open(root.as_ref()).map_err(|e| Error::Invalid(e.to_string()))?;
        let manifests = files
            .manifests()
            .map_err(|e| Error::Invalid(format!("reading the run manifests: {e}")))?;
        let marker = files
            .root()
            .join(duff_engine::lake::RUNS_DIR)
            .join(CONVERTED_MARKER);
        let lake = Self::open_local_lake(files)?;
        for manifest in &manifests {
            lake.runtime().block_on(lake.commit_run(manifest, false))?;
        }
        lake.fold_pending()?;
        if !manifests.is_empty() {
            std::fs::write(&marker, format!("{} runs converted\n", manifests.len()))
                .map_err(|e| Error::Invalid(format!("{}: {e}", marker.display())))?;
        }
        Ok((lake, manifests.len()))
    }
}

/// Written into `_runs/` once a lake in the earlier layout has been converted.
const CONVERTED_MARKER: &str = "CONVERTED";

/// A lake written before its tables were Delta tables has `_runs/*.json` manifests: until
/// converted, its Delta readers would miss every run, so it is refused, not misread.
fn refuse_legacy_layout(root: &Path) -> Result<(), Error> {
    let legacy = root.join(duff_engine::lake::RUNS_DIR);
    let has_manifests = std::fs::read_dir(&legacy).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json")))
    });
    if has_manifests && !legacy.join(CONVERTED_MARKER).exists() {
        return Err(Error::Layout(format!(
            "{} holds a lake in the layout before Delta tables (run manifests in {}/): \
             this version reads only Delta tables. Convert it in place with \
             `duff lake convert --lake {}` (its files are committed as they are)",
            root.display(),
            legacy.display(),
            root.display()
        )));
    }
    Ok(())
}

impl<L: Lake> DeltaLake<L> {
    /// The local lake at `root` (a `file:///…/` directory URL), whose data files `files`
    /// writes. Every table is created if it does not exist yet.
    pub fn open(files: L, root: Url) -> Result<Self, Error> {
        Self::open_inner(files, root, None)
    }

    /// The lake at `root` in an object store (`s3://bucket/prefix/`), reached through `store`
    /// (rooted at the bucket), whose data files `files` writes. Its Delta commits are
    /// conditional puts (`If-None-Match: *`), which S3 supports: no locking service is needed.
    /// Every table is created if it does not exist yet.
    pub fn open_in_store(files: L, root: Url, store: Arc<dyn ObjectStore>) -> Result<Self, Error> {
        register_log_store(root.scheme())?;
        Self::open_inner(files, root, Some(store))
    }

    fn open_inner(
        files: L,
        root: Url,
        remote: Option<Arc<dyn ObjectStore>>,
    ) -> Result<Self, Error> {
        if !root.path().ends_with('/') {
            return Err(Error::Invalid(format!("{root}: a lake root ends with '/'")));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Invalid(format!("tokio runtime: {e}")))?;
        let lake = DeltaLake {
            files,
            root,
            remote,
            fold_lease: crate::lease::LEASE_TTL,
            run_marts: Default::default(),
            loaded: Default::default(),
            runtime: Some(runtime),
        };
        if let Some(store) = &lake.remote {
            lake.runtime()
                .block_on(refuse_legacy_objects(store.as_ref(), &lake.root))?;
        }
        // Side by side: each is a few file reads and writes, mostly waits for other threads.
        lake.runtime().block_on(futures::future::try_join_all(
            ALL_TABLES.iter().map(|def| lake.load_or_create(def)),
        ))?;
        Ok(lake)
    }

    /// Sets how long the fold's lease in an object store holds unless renewed (default
    /// [`crate::lease::LEASE_TTL`]): the longest any fold waits for a holder that died.
    pub fn with_fold_lease(mut self, ttl: std::time::Duration) -> Self {
        self.fold_lease = ttl;
        self
    }

    pub(crate) fn fold_lease(&self) -> std::time::Duration {
        self.fold_lease
    }

    /// The lake root, a directory URL.
    pub fn root_url(&self) -> &Url {
        &self.root
    }

    /// The lake that writes the data files.
    pub fn files(&self) -> &L {
        &self.files
    }

    /// The URL of a table's root directory.
    pub fn table_url(&self, def: &DeltaTableDef) -> Url {
        self.root
            .join(&format!("{}/", def.prefix))
            .expect("table prefixes are valid URL paths")
    }

    /// The table as of its latest version.
    pub fn load(&self, def: &DeltaTableDef) -> Result<DeltaTable, Error> {
        self.runtime().block_on(self.load_table(def))
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    /// A table handle (not loaded), reaching a remote lake through its store.
    fn table_handle(&self, def: &DeltaTableDef) -> Result<DeltaTable, Error> {
        let url = self.table_url(def);
        let builder = DeltaTableBuilder::from_url(url.clone())
            .map_err(|e| Error::delta(def.name, "open", e))?;
        let builder = match &self.remote {
            Some(store) => builder.with_storage_backend(store.clone(), url),
            None => builder,
        };
        builder
            .build()
            .map_err(|e| Error::delta(def.name, "open", e))
    }

    /// The lake rooted at its prefix, for the files the fold reads and writes.
    pub(crate) fn workspace(&self) -> Result<crate::workspace::Workspace, Error> {
        match &self.remote {
            Some(store) => {
                let prefix = StorePath::from_url_path(self.root.path()).map_err(|e| {
                    Error::Invalid(format!("{}: not an object store path: {e}", self.root))
                })?;
                let store: Arc<dyn ObjectStore> = Arc::new(object_store::prefix::PrefixStore::new(
                    store.clone(),
                    prefix,
                ));
                crate::workspace::Workspace::remote(store)
            }
            None => {
                let root = self.root.to_file_path().map_err(|()| {
                    Error::Invalid(format!(
                        "{}: neither local nor in an object store",
                        self.root
                    ))
                })?;
                Ok(crate::workspace::Workspace::local(root))
            }
        }
    }

    pub(crate) async fn load_table(&self, def: &DeltaTableDef) -> Result<DeltaTable, Error> {
        let mut table = match self.last_loaded(def) {
            Some(table) => table,
            None => self.table_handle(def)?,
        };
        // Forward only: the commits after the version held, or the whole log the first time.
        table
            .load()
            .await
            .map_err(|e| Error::delta(def.name, "load", e))?;
        self.remember(def, &table);
        Ok(table)
    }

    fn last_loaded(&self, def: &DeltaTableDef) -> Option<DeltaTable> {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded.get(def.prefix).cloned()
    }

    fn remember(&self, def: &DeltaTableDef, table: &DeltaTable) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let newer = loaded
            .get(def.prefix)
            .is_none_or(|held| held.version() < table.version());
        if newer {
            loaded.insert(def.prefix, table.clone());
        }
    }

    /// The table as of its latest version, created first if it does not exist yet.
    pub(crate) async fn load_or_create(&self, def: &DeltaTableDef) -> Result<DeltaTable, Error> {
        if self.last_loaded(def).is_some() {
            return self.load_table(def).await;
        }
        let table = self.table_handle(def)?;
        // Looked for first: loading a missing table logs errors from deep inside deltalake.
        if table_exists(&table).await {
            match self.load_table(def).await {
                Ok(table) => return Ok(table),
                Err(Error::Delta { source, .. }) if is_missing_table(source.as_ref()) => {}
                Err(e) => return Err(e),
            }
        }
        let created = table
            .create()
            .with_table_name(def.name)
            .with_columns(def.schema()?.fields().cloned())
            .with_partition_columns(def.partition_columns())
            .with_save_mode(SaveMode::Ignore)
            .with_commit_properties(crate::tables::commit_properties())
            .await;
        match created {
            Ok(table) => {
                self.remember(def, &table);
                Ok(table)
            }
            // Another process created it first.
            Err(DeltaTableError::VersionAlreadyExists(_)) => self.load_table(def).await,
            Err(e) => Err(Error::delta(def.name, "create", e)),
        }
    }

    /// Whether a table holds the run, and at which `txn` version.
    pub(crate) async fn run_version(
        &self,
        table: &DeltaTable,
        def: &DeltaTableDef,
        run_id: &str,
    ) -> Result<Option<i64>, Error> {
        let state = table
            .snapshot()
            .map_err(|e| Error::delta(def.name, "snapshot", e))?;
        state
            .transaction_version(table.log_store().as_ref(), run_id)
            .await
            .map_err(|e| Error::delta(def.name, "read txn", e))
    }
}

/// Lets `deltalake` commit to tables under `scheme://` through a store we pass in, with its
/// default log store: commits are conditional puts (`If-None-Match: *`).
pub(crate) fn register_log_store(scheme: &str) -> Result<(), Error> {
    #[derive(Debug)]
    struct ConditionalPut;
    impl deltalake_core::logstore::LogStoreFactory for ConditionalPut {
        fn with_options(
            &self,
            prefixed_store: deltalake_core::logstore::ObjectStoreRef,
            root_store: deltalake_core::logstore::ObjectStoreRef,
            location: &Url,
            options: &deltalake_core::logstore::StorageConfig,
        ) -> deltalake_core::DeltaResult<Arc<dyn deltalake_core::logstore::LogStore>> {
            Ok(deltalake_core::logstore::default_logstore(
                prefixed_store,
                root_store,
                location,
                options,
            ))
        }
    }
    static S3: Once = Once::new();
    match scheme {
        "s3" => S3.call_once(|| {
            deltalake_core::logstore::logstore_factories().insert(
                Url::parse("s3://").expect("a valid URL"),
                Arc::new(ConditionalPut),
            );
        }),
        other => {
            return Err(Error::Invalid(format!(
                "{other}:// lakes are not supported (s3:// or a local directory)"
            )));
        }
    }
    Ok(())
}

/// The object-store form of [`refuse_legacy_layout`]: a lake prefix holding run manifests
/// from before Delta tables is refused.
async fn refuse_legacy_objects(store: &dyn ObjectStore, root: &Url) -> Result<(), Error> {
    use futures::StreamExt;
    let prefix = StorePath::from_url_path(root.path())
        .map_err(|e| Error::Invalid(format!("{root}: {e}")))?;
    let runs = prefix.clone().join(duff_engine::lake::RUNS_DIR);
    let mut listing = store.list(Some(&runs));
    while let Some(entry) = listing.next().await {
        let entry = entry.map_err(|source| Error::ObjectStore {
            path: runs.to_string(),
            operation: "list",
            source: Box::new(source),
        })?;
        if entry.location.extension() == Some("json") {
            return Err(Error::Layout(format!(
                "{root} holds a lake in the layout before Delta tables (run manifests under \
                 {root}{}/): this version reads only Delta tables, and converts such a lake \
                 in place only on a local disk: copy it down, run `duff lake convert --lake \
                 DIR`, and copy it back, or write new runs to a new prefix",
                duff_engine::lake::RUNS_DIR
            )));
        }
    }
    Ok(())
}
