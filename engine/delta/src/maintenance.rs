//! Keeping a lake healthy: [`DeltaLake::check`] verifies its invariants, [`DeltaLake::vacuum`]
//! removes files no commit references (a crashed or losing attempt's, a replaced run's) and
//! the log's expired entries. Both are safe while runs commit.

use std::collections::{BTreeMap, HashMap};

use deltalake_core::checkpoints::{cleanup_metadata, create_checkpoint};
use deltalake_core::operations::vacuum::VacuumMode;
use duff_engine::manifest::RunStatus;
use duff_engine::storage::Lake;
use object_store::ObjectStoreExt;

pub use crate::current_check::CHECK_WINDOW_ROWS;
use crate::error::Error;
use crate::files::run_id_of_file;
use crate::lake::DeltaLake;
use crate::tables::{ALL_TABLES, COMMIT_ORDER, DeltaTableDef, RUNS};

/// The shortest retention [`DeltaLake::vacuum`] accepts: an attempt still writing its files
/// must never lose them, and no attempt runs for this long.
pub const MIN_RETENTION: std::time::Duration = std::time::Duration::from_secs(3600);

/// Rows per run in one table, from the `numRecords` statistics of its committed files.
type RowsPerRun = BTreeMap<String, u64>;

impl DeltaLake<duff_engine::LocalLake> {
    /// Removes staging directories (`_staging/<stem>/`, a crashed attempt's unpublished files)
    /// not modified for `retention` (at least [`MIN_RETENTION`]); with `dry_run`, only lists
    /// them.
    pub fn vacuum_staging(
        &self,
        retention: std::time::Duration,
        dry_run: bool,
    ) -> Result<Vec<String>, Error> {
        check_retention(retention)?;
        let dir = self.files().root().join(duff_engine::lake::STAGING_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::Invalid(format!("{}: {e}", dir.display()))),
        };
        let now = std::time::SystemTime::now();
        let mut removed = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::Invalid(format!("{}: {e}", dir.display())))?;
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok());
            if age.is_some_and(|age| age >= retention) {
                let path = entry.path();
                if !dry_run {
                    std::fs::remove_dir_all(&path)
                        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
                }
                removed.push(format!(
                    "{}/{}",
                    duff_engine::lake::STAGING_DIR,
                    entry.file_name().to_string_lossy()
                ));
            }
        }
        removed.sort();
        Ok(removed)
    }
}

fn check_retention(retention: std::time::Duration) -> Result<(), Error> {
    if retention < MIN_RETENTION {
        return Err(Error::Invalid(format!(
            "a retention of {retention:?} could remove the files of a run still being written; \
             the minimum is {MIN_RETENTION:?}"
        )));
    }
    Ok(())
}

impl<L: Lake> DeltaLake<L> {
    /// Verifies every invariant of the lake and returns what is wrong (nothing: healthy):
    /// every committed file exists with its recorded size; every recorded run is in every
    /// table, once; per run, `orders` and `fact_orders` hold `rows_written` rows and
    /// `quarantine` holds `quarantined` (nothing lost); a failed run has no rows; rows of a
    /// run without a record (a crash before its `runs` row) are reported as incomplete;
    /// `order_lines` is exactly the latest version of every line of the folded runs
    /// (recomputed from `orders`' keys and versions); every mart is the aggregate of
    /// `order_lines`; and the current dimensions are the latest versions of the folded runs'
    /// dimension slices. A lake in S3 is checked through a scratch copy of those two tables.
    pub fn check(&self) -> Result<Vec<String>, Error> {
        self.check_within(CHECK_WINDOW_ROWS)
    }

    /// [`DeltaLake::check`], comparing the current state with history `window_rows` versions
    /// of order lines at a time (its memory).
    pub fn check_within(&self, window_rows: u64) -> Result<Vec<String>, Error> {
        self.runtime().block_on(async {
            let mut problems = Vec::new();
            let records = self.runs_async().await?;
            let mut rows: HashMap<&'static str, RowsPerRun> = HashMap::new();
            for def in COMMIT_ORDER.iter() {
                rows.insert(
                    def.name,
                    self.check_table(def, &records, &mut problems).await?,
                );
            }
            for m in &records {
                let id = m.run_id.as_str();
                let count = |table: &str| rows[table].get(id).copied().unwrap_or(0);
                match m.status {
                    RunStatus::Succeeded => {
                        for (table, want) in [
                            ("orders", m.counts.rows_written),
                            ("fact_orders", m.counts.rows_written),
                            ("quarantine", m.counts.quarantined),
                        ] {
                            if count(table) != want {
                                problems.push(format!(
                                    "run {id}: {table} holds {} rows, its record says {want}",
                                    count(table)
                                ));
                            }
                        }
                        if !m.counts.nothing_lost() {
                            problems.push(format!(
                                "run {id}: its counts do not balance (read {} ≠ written {} + \
                                 duplicates {} + quarantined {})",
                                m.counts.rows_read,
                                m.counts.rows_written,
                                m.counts.exact_duplicates,
                                m.counts.quarantined
                            ));
                        }
                    }
                    RunStatus::Failed => {
                        for def in COMMIT_ORDER.iter().filter(|d| d.engine_table.is_some()) {
                            if count(def.name) > 0 {
                                problems.push(format!(
                                    "run {id} failed but {} holds {} of its rows",
                                    def.name,
                                    count(def.name)
                                ));
                            }
                        }
                    }
                }
            }
            for def in COMMIT_ORDER.iter().filter(|d| d.engine_table.is_some()) {
                for id in rows[def.name].keys() {
                    if !records.iter().any(|m| &m.run_id == id) {
                        problems.push(format!(
                            "run {id}: {} holds its rows but the run has no record yet (a crash \
                             before its last commit: run its input again to complete it)",
                            def.name
                        ));
                    }
                }
            }
            let work = self.workspace()?;
            problems.extend(self.check_current_state(&work, window_rows).await?);
            problems.extend(self.check_marts(&work).await?);
            problems.extend(self.check_current_dims(&work).await?);
            Ok(problems)
        })
    }

    async fn check_table(
        &self,
        def: &DeltaTableDef,
        records: &[duff_engine::Manifest],
        problems: &mut Vec<String>,
    ) -> Result<RowsPerRun, Error> {
        let table = self.load_table(def).await?;
        let store = table.log_store().object_store(None);
        let state = table
            .snapshot()
            .map_err(|e| Error::delta(def.name, "snapshot", e))?;
        let mut rows = RowsPerRun::new();
        let files: Vec<(String, i64, Option<usize>)> = state
            .log_data()
            .iter()
            .map(|f| (f.path().to_string(), f.size(), f.num_records()))
            .collect();
        for (path, size, records_in_file) in files {
            match store
                .head(&object_store::path::Path::from(path.as_str()))
                .await
            {
                Ok(meta) if meta.size as i64 == size => {}
                Ok(meta) => problems.push(format!(
                    "{}/{path}: {} bytes, its commit says {size}",
                    def.prefix, meta.size
                )),
                Err(e) => problems.push(format!(
                    "{}/{path}: committed but unreadable: {e}",
                    def.prefix
                )),
            }
            let Some(run_id) = run_id_of_file(&path) else {
                problems.push(format!("{}/{path}: not named after a run", def.prefix));
                continue;
            };
            let Some(n) = records_in_file else {
                problems.push(format!(
                    "{}/{path}: no row count in its statistics",
                    def.prefix
                ));
                continue;
            };
            *rows.entry(run_id.to_string()).or_default() += n as u64;
        }
        for m in records {
            let version = self.run_version(&table, def, &m.run_id).await?;
            if version.is_none() && (def.name == RUNS.name || m.status == RunStatus::Succeeded) {
                problems.push(format!("run {}: not committed to {}", m.run_id, def.name));
            }
        }
        Ok(rows)
    }

    /// Removes, from every table's directory, the data files no commit references any more
    /// that are older than `retention` (at least [`MIN_RETENTION`]), then checkpoints the
    /// table's log and removes the log's entries older than its log retention
    /// (`delta.logRetentionDuration`, 30 days by default) below a checkpoint: no other command
    /// deletes in a table's log (`tables::commit_properties`). With `dry_run`, only
    /// lists the data files. Returns, per table, the data files (relative to the table) and the
    /// count of log entries removed.
    pub fn vacuum(
        &self,
        retention: std::time::Duration,
        dry_run: bool,
    ) -> Result<Vec<Vacuumed>, Error> {
        check_retention(retention)?;
        let retention = chrono::Duration::from_std(retention)
            .map_err(|e| Error::Invalid(format!("retention: {e}")))?;
        self.runtime().block_on(async {
            let mut out = Vec::new();
            for def in &ALL_TABLES {
                let table = self.load_table(def).await?;
                let (table, metrics) = table
                    .vacuum()
                    .with_mode(VacuumMode::Full)
                    .with_retention_period(retention)
                    .with_enforce_retention_duration(false)
                    .with_dry_run(dry_run)
                    .await
                    .map_err(|e| Error::delta(def.name, "vacuum", e))?;
                let mut files = metrics.files_deleted;
                files.sort();
                let mut log_entries = 0;
                if !dry_run {
                    create_checkpoint(&table, None)
                        .await
                        .map_err(|e| Error::delta(def.name, "checkpoint", e))?;
                    log_entries = cleanup_metadata(&table, None)
                        .await
                        .map_err(|e| Error::delta(def.name, "log cleanup", e))?;
                }
                out.push(Vacuumed {
                    table: def.name,
                    files,
                    log_entries,
                });
            }
            Ok(out)
        })
    }
}

/// What [`DeltaLake::vacuum`] removed from one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vacuumed {
    /// The table's name.
    pub table: &'static str,
    /// Data files no commit references, relative to the table.
    pub files: Vec<String>,
    /// Log entries (commits and checkpoints) older than the log retention.
    pub log_entries: usize,
}
