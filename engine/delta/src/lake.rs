//! [`DeltaLake`]: a lake of Delta tables, implementing the engine's [`Lake`].
//!
//! Data files are written by an inner lake (local files or S3), each attempt under its own
//! stem, so attempts never share, overwrite or delete each other's files. Committing a run
//! commits its files to each table in [`COMMIT_ORDER`], one Delta commit per table carrying the
//! run id as an application transaction (`txn`): a table that already holds the run's `txn` is
//! skipped, and of two attempts racing for one table the loser's commit fails on the `txn`
//! conflict, so every table commits each run at most once. The `runs` row comes last.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::{Arc, Once};

use bytes::Bytes;
use chrono::NaiveDate;
use deltalake_core::kernel::transaction::TransactionError;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitConflictError};
use deltalake_core::kernel::{Action, Add, Remove, Transaction};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use duff_engine::LocalLake;
use duff_engine::manifest::Manifest;
use duff_engine::schema::PARTITION_COLUMN;
use duff_engine::storage::{Commit, Lake, RowObserver, Stage};

use crate::marts::MartsObserver;
use duff_engine::writer::WrittenFile;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::file::metadata::ParquetMetaDataReader;
use url::Url;

use crate::error::Error;
use crate::runs;
use crate::stats::stats_json;
use crate::tables::{ALL_TABLES, COMMIT_ORDER, DeltaTableDef, RUNS};

/// A committed data file, as its `add` action describes it.
#[derive(Debug, Clone)]
pub(crate) struct DataFile {
    pub(crate) path: String,
    pub(crate) size: i64,
    pub(crate) partition_values: HashMap<String, Option<String>>,
    pub(crate) stats: Option<String>,
    /// `order_id` bounds, when the statistics have them.
    pub(crate) range: Option<(i64, i64)>,
}

impl DataFile {
    /// The row count in its statistics.
    pub(crate) fn num_records(&self) -> Option<usize> {
        let stats: serde_json::Value = serde_json::from_str(self.stats.as_deref()?).ok()?;
        stats["numRecords"].as_u64().map(|n| n as usize)
    }

    pub(crate) fn overlaps(&self, (lo, hi): (i64, i64)) -> bool {
        self.range.is_none_or(|(a, b)| a <= hi && b >= lo)
    }

    /// The `remove` of this file at `now`: a data change, or (compaction) rows moving to
    /// another file.
    pub(crate) fn remove(&self, now: i64, data_change: bool) -> Action {
        Action::Remove(Remove {
            path: self.path.clone(),
            data_change,
            deletion_timestamp: Some(now),
            extended_file_metadata: Some(true),
            partition_values: Some(self.partition_values.clone()),
            size: Some(self.size),
            ..Default::default()
        })
    }
}

/// A lake whose every table is a Delta table. `L` writes the data files.
pub struct DeltaLake<L> {
    files: L,
    root: Url,
    /// The object store of a remote lake (S3), rooted at its bucket; `None` for a local lake.
    remote: Option<Arc<dyn ObjectStore>>,
    /// How long the fold's lease outlives a dead holder (a remote lake).
    fold_lease: std::time::Duration,
    /// The marts of the last attempt whose rows were all seen, for its fold.
    pub(crate) run_marts: crate::marts::RunMartsSlot,
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
            runtime: Some(runtime),
        };
        if let Some(store) = &lake.remote {
            lake.runtime()
                .block_on(refuse_legacy_objects(store.as_ref(), &lake.root))?;
        }
        lake.runtime().block_on(async {
            for def in &ALL_TABLES {
                lake.load_or_create(def).await?;
            }
            Ok::<_, Error>(())
        })?;
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
        let mut table = self.table_handle(def)?;
        table
            .load()
            .await
            .map_err(|e| Error::delta(def.name, "load", e))?;
        Ok(table)
    }

    /// The table as of its latest version, created first if it does not exist yet.
    pub(crate) async fn load_or_create(&self, def: &DeltaTableDef) -> Result<DeltaTable, Error> {
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
            Ok(table) => Ok(table),
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

    /// The table's files that belong to a run (any attempt).
    fn files_of_run(
        table: &DeltaTable,
        def: &DeltaTableDef,
        run_id: &str,
    ) -> Result<Vec<DataFile>, Error> {
        let mut files = data_files(table, def)?;
        files.retain(|f| belongs_to_run(&f.path, run_id));
        Ok(files)
    }

    /// Commits one table's files of a run. `Ok(false)` when the table already held the run
    /// (committed by an earlier or a concurrent attempt) and `replace` was not asked.
    async fn commit_table(
        &self,
        table: DeltaTable,
        def: &DeltaTableDef,
        run_id: &str,
        adds: Vec<Add>,
        replace: bool,
    ) -> Result<bool, Error> {
        let committed = self.run_version(&table, def, run_id).await?;
        if committed.is_some() && !replace {
            tracing::debug!(
                table = def.name,
                run_id,
                "table already holds the run; skipped"
            );
            return Ok(false);
        }
        let mut actions: Vec<Action> = Vec::new();
        if committed.is_some() {
            let now = chrono::Utc::now().timestamp_millis();
            for old in Self::files_of_run(&table, def, run_id)? {
                actions.push(old.remove(now, true));
            }
        }
        let blind_append = actions.is_empty();
        actions.extend(adds.into_iter().map(Action::Add));
        let properties = crate::tables::commit_properties()
            .with_application_transaction(Transaction::new(run_id, committed.map_or(1, |v| v + 1)))
            .with_metadata([
                ("isBlindAppend".to_string(), serde_json::json!(blind_append)),
                ("duff.runId".to_string(), serde_json::json!(run_id)),
            ]);
        let snapshot = table
            .snapshot()
            .map_err(|e| Error::delta(def.name, "snapshot", e))?;
        let partition_by = def.partition_columns();
        let result = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                Some(snapshot),
                table.log_store(),
                DeltaOperation::Write {
                    mode: if blind_append {
                        SaveMode::Append
                    } else {
                        SaveMode::Overwrite
                    },
                    partition_by: (!partition_by.is_empty()).then_some(partition_by),
                    predicate: None,
                },
            )
            .await;
        match result {
            Ok(done) => {
                tracing::info!(
                    table = def.name,
                    run_id,
                    version = done.version(),
                    "committed"
                );
                Ok(true)
            }
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction),
            }) => {
                tracing::info!(
                    table = def.name,
                    run_id,
                    "a concurrent attempt committed the run to this table first"
                );
                Ok(false)
            }
            Err(e) => Err(Error::delta(def.name, "commit", e)),
        }
    }

    /// The `add` action of a file the inner lake published, with statistics from its footer.
    async fn add_for(
        table: &DeltaTable,
        def: &DeltaTableDef,
        file: &WrittenFile,
        pa_date: &str,
    ) -> Result<Add, Error> {
        let rel = file
            .path
            .strip_prefix(def.prefix)
            .and_then(|p| p.strip_prefix('/'))
            .ok_or_else(|| {
                Error::Invalid(format!("{} is not under table {}", file.path, def.prefix))
            })?
            .to_string();
        let store = table.log_store().object_store(None);
        let metadata = read_footer(store.as_ref(), &rel, file.bytes).await?;
        Ok(Add {
            path: rel,
            partition_values: HashMap::from([(
                PARTITION_COLUMN.to_string(),
                Some(pa_date.to_string()),
            )]),
            size: file.bytes as i64,
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(stats_json(&metadata)),
            ..Default::default()
        })
    }

    async fn commit_run(&self, manifest: &Manifest, replace: bool) -> Result<Commit, Error> {
        let run_id = manifest.run_id.as_str();
        let runs_table = self.load_or_create(&RUNS).await?;
        if !replace
            && self
                .run_version(&runs_table, &RUNS, run_id)
                .await?
                .is_some()
        {
            return Ok(match self.read_run(run_id).await? {
                Some(existing) => Commit::AlreadyCommitted(Box::new(existing)),
                None => Commit::Written,
            });
        }
        for def in COMMIT_ORDER.iter().filter(|d| d.engine_table.is_some()) {
            let table = self.load_or_create(def).await?;
            let mut adds = Vec::new();
            for file in manifest.outputs.iter().filter(|f| f.table == def.name) {
                adds.push(Self::add_for(&table, def, file, &manifest.pa_date).await?);
            }
            self.commit_table(table, def, run_id, adds, replace).await?;
            // The crash tests stop a run between two of its tables' commits here.
            duff_engine::run::failpoint(&format!("after_commit_{}", def.name));
        }
        let stem = format!("{run_id}-{:08x}", attempt_nonce());
        let rel = format!("{stem}.parquet");
        let bytes = runs::runs_file(manifest)?;
        let size = bytes.len();
        let store = runs_table.log_store().object_store(None);
        store
            .put(&StorePath::from(rel.as_str()), bytes.into())
            .await
            .map_err(|source| Error::ObjectStore {
                path: format!("{}/{rel}", RUNS.prefix),
                operation: "put",
                source: Box::new(source),
            })?;
        let metadata = read_footer(store.as_ref(), &rel, size as u64).await?;
        let add = Add {
            path: rel,
            partition_values: HashMap::new(),
            size: size as i64,
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(stats_json(&metadata)),
            ..Default::default()
        };
        if self
            .commit_table(runs_table, &RUNS, run_id, vec![add], replace)
            .await?
        {
            Ok(Commit::Written)
        } else {
            Ok(match self.read_run(run_id).await? {
                Some(existing) => Commit::AlreadyCommitted(Box::new(existing)),
                None => Commit::Written,
            })
        }
    }

    /// The committed record of a run, from the `runs` table.
    async fn read_run(&self, run_id: &str) -> Result<Option<Manifest>, Error> {
        let table = self.load_or_create(&RUNS).await?;
        if self.run_version(&table, &RUNS, run_id).await?.is_none() {
            return Ok(None);
        }
        let store = table.log_store().object_store(None);
        let mut found = None;
        for add in Self::files_of_run(&table, &RUNS, run_id)? {
            let path = StorePath::from(add.path.as_str());
            let bytes = get(store.as_ref(), &path).await?;
            let manifests = runs::manifests_in(&add.path, bytes)?;
            found = manifests.into_iter().find(|m| m.run_id == run_id).or(found);
        }
        Ok(found)
    }

    /// Every committed run record, oldest first.
    pub fn runs(&self) -> Result<Vec<Manifest>, Error> {
        self.runtime().block_on(self.runs_async())
    }

    pub(crate) async fn runs_async(&self) -> Result<Vec<Manifest>, Error> {
        let table = self.load_or_create(&RUNS).await?;
        let store = table.log_store().object_store(None);
        let state = table
            .snapshot()
            .map_err(|e| Error::delta(RUNS.name, "snapshot", e))?;
        let mut out = Vec::new();
        let paths: Vec<String> = state
            .log_data()
            .iter()
            .map(|f| f.path().to_string())
            .collect();
        for path in paths {
            let bytes = get(store.as_ref(), &StorePath::from(path.as_str())).await?;
            out.extend(runs::manifests_in(&path, bytes)?);
        }
        out.sort_by(|a, b| (&a.started_at, &a.run_id).cmp(&(&b.started_at, &b.run_id)));
        Ok(out)
    }

    async fn pa_date_of(&self, run_id: &str) -> Result<Option<NaiveDate>, Error> {
        for def in COMMIT_ORDER.iter().filter(|d| d.engine_table.is_some()) {
            let table = self.load_or_create(def).await?;
            if self.run_version(&table, def, run_id).await?.is_none() {
                continue;
            }
            for add in Self::files_of_run(&table, def, run_id)? {
                if let Some(Some(date)) = add.partition_values.get(PARTITION_COLUMN) {
                    let date = date.parse().map_err(|e| {
                        Error::Invalid(format!("{}: pa_date {date:?}: {e}", def.name))
                    })?;
                    return Ok(Some(date));
                }
            }
        }
        Ok(None)
    }
}

impl<L: Lake> Lake for DeltaLake<L> {
    fn uri(&self) -> String {
        self.files.uri()
    }

    fn read_manifest(&self, run_id: &str) -> Result<Option<Manifest>, duff_engine::Error> {
        Ok(self.runtime().block_on(self.read_run(run_id))?)
    }

    fn attempt_stem(&self, run_id: &str) -> String {
        format!("{run_id}-{:08x}", attempt_nonce())
    }

    fn committed_pa_date(&self, run_id: &str) -> Result<Option<NaiveDate>, duff_engine::Error> {
        Ok(self.runtime().block_on(self.pa_date_of(run_id))?)
    }

    fn stage(&self, stem: &str) -> Result<Box<dyn Stage>, duff_engine::Error> {
        self.files.stage(stem)
    }

    fn commit(&self, manifest: &Manifest, overwrite: bool) -> Result<Commit, duff_engine::Error> {
        Ok(self
            .runtime()
            .block_on(self.commit_run(manifest, overwrite))?)
    }

    /// Folds every committed run the current state does not hold yet. In an object store,
    /// gives up after [`crate::fold::SETTLE_WAIT`] if another process holds the fold: that
    /// fold, the next run's or `duff lake fold` folds this run.
    fn settle(&self) -> Result<(), duff_engine::Error> {
        self.settle_within(crate::fold::SETTLE_WAIT)?;
        Ok(())
    }

    /// Sums the run's marts, unless the current state cannot be read or holds a file whose
    /// key range is unknown (the fold would read the files anyway).
    fn observer(&self, stem: &str, pa_date: NaiveDate) -> Option<Box<dyn RowObserver>> {
        let lines = &crate::tables::ORDER_LINES;
        let current = self.runtime().block_on(self.load_table(lines)).ok()?;
        let ranges: Option<Vec<(i64, i64)>> = data_files(&current, lines)
            .ok()?
            .iter()
            .map(|f| f.range)
            .collect();
        let newest = ranges?.into_iter().map(|(_, hi)| hi).max();
        let day = pa_date.to_string();
        let observer = MartsObserver::new(self.run_marts.clone(), stem, &day, newest);
        Some(Box::new(observer))
    }
}

/// Lets `deltalake` commit to tables under `scheme://` through a store we pass in, with its
/// default log store: commits are conditional puts (`If-None-Match: *`).
fn register_log_store(scheme: &str) -> Result<(), Error> {
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

/// Whether the table's log has a commit (or a checkpoint) yet.
pub(crate) async fn table_exists(table: &DeltaTable) -> bool {
    use futures::StreamExt;
    let store = table.log_store().object_store(None);
    let log = StorePath::from("_delta_log");
    let mut listing = store.list(Some(&log));
    while let Some(entry) = listing.next().await {
        if entry.is_ok_and(|meta| {
            meta.location
                .filename()
                .is_some_and(|n| n.ends_with(".json") || n.ends_with(".parquet"))
        }) {
            return true;
        }
    }
    false
}

/// Whether a load failed because there is no table at the location yet.
pub(crate) fn is_missing_table(e: &DeltaTableError) -> bool {
    match e {
        DeltaTableError::NotATable(_) | DeltaTableError::InvalidTableLocation(_) => true,
        // The kernel's error type is not re-exported; its variant shows in the message.
        DeltaTableError::KernelError(k) => k.to_string().starts_with("Invalid table location"),
        _ => false,
    }
}

/// The committed files of a table, with their key bounds.
pub(crate) fn data_files(table: &DeltaTable, def: &DeltaTableDef) -> Result<Vec<DataFile>, Error> {
    let state = table
        .snapshot()
        .map_err(|e| Error::delta(def.name, "snapshot", e))?;
    Ok(state
        .log_data()
        .iter()
        .map(|f| {
            let stats = f.stats();
            DataFile {
                path: f.path().to_string(),
                size: f.size(),
                partition_values: f.partition_values_map(),
                range: stats.as_deref().and_then(order_id_range),
                stats,
            }
        })
        .collect())
}

/// `order_id`'s bounds in an `add` action's statistics.
fn order_id_range(stats: &str) -> Option<(i64, i64)> {
    let stats: serde_json::Value = serde_json::from_str(stats).ok()?;
    Some((
        stats["minValues"]["order_id"].as_i64()?,
        stats["maxValues"]["order_id"].as_i64()?,
    ))
}

/// True for the files of any attempt of `run_id`: `<run_id>-…` or `<run_id>.…` in any
/// partition directory.
pub fn belongs_to_run(path: &str, run_id: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.strip_prefix(run_id)
        .is_some_and(|rest| rest.starts_with('-') || rest.starts_with('.'))
}

/// The run id a file is named after (`<run_id>-…` or `<run_id>.…`), if it is a run's file.
pub fn run_id_of_file(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let end = name.find(['-', '.'])?;
    let id = &name[..end];
    (id.len() == 20 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// 32 random bits that tell attempts of one run apart.
pub(crate) fn attempt_nonce() -> u32 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish() as u32
}

async fn get(store: &dyn ObjectStore, path: &StorePath) -> Result<Bytes, Error> {
    let result = store.get(path).await.map_err(|source| Error::ObjectStore {
        path: path.to_string(),
        operation: "get",
        source: Box::new(source),
    })?;
    result.bytes().await.map_err(|source| Error::ObjectStore {
        path: path.to_string(),
        operation: "get",
        source: Box::new(source),
    })
}

/// Reads a Parquet file's footer with two ranged reads (length, then metadata).
async fn read_footer(
    store: &dyn ObjectStore,
    rel: &str,
    size: u64,
) -> Result<parquet::file::metadata::ParquetMetaData, Error> {
    let path = StorePath::from(rel);
    let store_error = |source: object_store::Error| Error::ObjectStore {
        path: rel.to_string(),
        operation: "read footer",
        source: Box::new(source),
    };
    if size < 12 {
        return Err(Error::Invalid(format!(
            "{rel}: {size} bytes is no Parquet file"
        )));
    }
    let tail = store
        .get_range(&path, size - 8..size)
        .await
        .map_err(store_error)?;
    let len = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")) as u64;
    if &tail[4..] != b"PAR1" || len + 8 > size {
        return Err(Error::Invalid(format!("{rel}: not a Parquet file")));
    }
    let footer = store
        .get_range(&path, size - 8 - len..size - 8)
        .await
        .map_err(store_error)?;
    ParquetMetaDataReader::decode_metadata(&footer).map_err(|source| Error::Parquet {
        path: rel.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_a_run_are_recognised_whatever_the_attempt() {
        assert!(belongs_to_run(
            "pa_date=2026-11-22/abc-1f2e3d4c-0.parquet",
            "abc"
        ));
        assert!(belongs_to_run("abc-1f2e3d4c.parquet", "abc"));
        assert!(belongs_to_run("pa_date=2026-11-22/abc.parquet", "abc"));
        assert!(!belongs_to_run("pa_date=2026-11-22/abcd-0.parquet", "abc"));
        assert!(!belongs_to_run("abc/x-0.parquet", "abc"));
    }

    #[test]
    fn a_files_run_id_is_read_from_its_name() {
        let id = "0123456789abcdef0123";
        assert_eq!(
            run_id_of_file(&format!("pa_date=2026-11-22/{id}-1f2e3d4c-0.parquet")),
            Some(id)
        );
        assert_eq!(run_id_of_file(&format!("{id}-1f2e3d4c.parquet")), Some(id));
        assert_eq!(run_id_of_file("pa_date=2026-11-22/part-0001.parquet"), None);
        assert_eq!(run_id_of_file("0123.parquet"), None);
    }
}
