//! Committing a run: [`DeltaLake`] as the engine's [`Lake`].
//!
//! Data files are written by the inner lake, each attempt under its own stem, so attempts
//! never share, overwrite or delete each other's files. Committing a run commits its files to
//! each table of [`COMMIT_ORDER`], one Delta commit per table carrying the run id as an
//! application transaction (`txn`): a table that already holds the run's `txn` is skipped, and
//! of two attempts racing for one table the loser's commit fails on the `txn` conflict, so
//! every table commits each run at most once. Quarantine commits first, the order lines and
//! the star schema then side by side, and the `runs` row last.

use std::collections::HashMap;

use chrono::NaiveDate;
use deltalake_core::kernel::transaction::TransactionError;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitConflictError};
use deltalake_core::kernel::{Action, Add, Transaction};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableError};
use duff_engine::manifest::Manifest;
use duff_engine::schema::PARTITION_COLUMN;
use duff_engine::storage::{Commit, Lake, RowObserver, Stage};
use duff_engine::writer::WrittenFile;
use object_store::ObjectStoreExt;
use object_store::path::Path as StorePath;

use crate::error::Error;
use crate::files::{DataFile, attempt_nonce, belongs_to_run, data_files, get, read_footer};
use crate::lake::DeltaLake;
use crate::marts::observe::MartsObserver;
use crate::runs;
use crate::stats::stats_json;
use crate::tables::{COMMIT_ORDER, DeltaTableDef, RUNS};

impl<L: Lake> DeltaLake<L> {
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

    pub(crate) async fn commit_run(
        &self,
        manifest: &Manifest,
        replace: bool,
    ) -> Result<Commit, Error> {
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
        let defs: Vec<&DeltaTableDef> = COMMIT_ORDER
            .iter()
            .filter(|d| d.engine_table.is_some())
            .collect();
        // The tables' logs and the files' footers are read side by side: each is a few
        // requests one after another, mostly waits (tens of milliseconds each in S3).
        let prepared = futures::future::try_join_all(defs.iter().map(|def| async move {
            let table = self.load_or_create(def).await?;
            let adds = futures::future::try_join_all(
                manifest
                    .outputs
                    .iter()
                    .filter(|f| f.table == def.name)
                    .map(|file| Self::add_for(&table, def, file, &manifest.pa_date)),
            )
            .await?;
            Ok::<_, Error>((table, adds))
        }))
        .await?;
        type Prepared = (&'static DeltaTableDef, (DeltaTable, Vec<Add>));
        let commit = |(def, (table, adds)): Prepared| async move {
            self.commit_table(table, def, run_id, adds, replace).await?;
            // The crash tests stop a run after each of its tables' commits here.
            duff_engine::failpoint::hit(&format!("after_commit_{}", def.name));
            Ok::<_, Error>(())
        };
        // `COMMIT_ORDER`'s first table, quarantine, first: a run's rejected rows are never
        // missing while its clean ones show. Then the others side by side, as their commits
        // do not depend on each other (a concurrent attempt of the run loses each table's
        // commit on its `txn`, whatever the order), and `runs` last, once all have committed.
        let mut tables = defs.into_iter().zip(prepared);
        if let Some(first) = tables.next() {
            commit(first).await?;
        }
        futures::future::try_join_all(tables.map(commit)).await?;
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
        let defs: Vec<&DeltaTableDef> = COMMIT_ORDER
            .iter()
            .filter(|d| d.engine_table.is_some())
            .collect();
        let tables = futures::future::try_join_all(defs.iter().map(|def| async move {
            let table = self.load_or_create(def).await?;
            let version = self.run_version(&table, def, run_id).await?;
            Ok::<_, Error>((table, version))
        }))
        .await?;
        for (def, (table, version)) in defs.into_iter().zip(tables) {
            if version.is_none() {
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
        self.files().uri()
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
        self.files().stage(stem)
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
