//! The current state: `order_lines` holds the latest version of every order line
//! `(order_id, product_id)` — largest `ingested_at`, then largest `run_id` — kept current by
//! folding each committed run into it.
//!
//! `order_lines` has the schema and the partitioning of `orders`: a line's `pa_date` is that of
//! its current version. Folding run R:
//! - its key range `[min, max]` of `order_id` comes from its `orders` files' statistics, and
//!   only `order_lines` files whose range overlaps it are read (file pruning on key statistics:
//!   the cost follows the part of the table the run overlaps, not the lake);
//! - in those files, a line whose key R also holds is dropped when R's version is newer (the
//!   file is rewritten without it), and R's own line is dropped when the existing one is newer
//!   (an upload folded out of order);
//! - R's `orders` files join `order_lines` as they are (hard links: no copy, no re-encoding)
//!   unless some of their lines lost, in which case they are rewritten without those.
//!
//! One Delta commit per run carries R's id as its `txn`, with the generation of R's `orders`
//! commit (a `--force` re-run is folded again). Folds are serialized by a lock file, so the
//! current state is exact under concurrent runs (in S3, by a lease object: see [`crate::lease`]);
//! the fold is idempotent, and one that crashed is completed by the next `duff run` or `duff
//! lake fold`. A lake in S3 is folded through a scratch directory (`workspace.rs`).

use std::path::Path;
use std::time::Duration;

use hashbrown::HashSet;

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use deltalake_core::DeltaTable;
use deltalake_core::kernel::transaction::CommitBuilder;
use deltalake_core::kernel::{Action, Add, Transaction};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use duff_engine::manifest::RunStatus;
use duff_engine::schema::{ORDERS, PARTITION_COLUMN};
use duff_engine::storage::Lake;

use crate::error::Error;
use crate::files::{DataFile, attempt_nonce, belongs_to_run, data_files, run_id_of_file};
use crate::lake::DeltaLake;
use crate::lease::{LEASE_OBJECT, Lease};
use crate::marts::store::day_of;
use crate::marts::{LineSource, Marts, Names, Side};
use crate::parquet_io::{LakeFileWriter, ParquetFile, open_columns};
use crate::tables::{FOLDS, ORDER_LINES};
use crate::workspace::Workspace;

/// How long the end of a run waits for another process's fold of a lake in an object store
/// before leaving its run to that fold.
pub const SETTLE_WAIT: Duration = Duration::from_secs(60);

/// The key of an order line.
pub(crate) type Key = (i64, i64);

/// A version of an order line: `(ingested_at ms, run_id)`, the larger the newer.
type Version = (i64, String);

impl<L: Lake> DeltaLake<L> {
    /// Folds every committed run that `order_lines` does not hold yet (or holds from an earlier
    /// generation); returns their ids. Waits for a fold running in another process (in an
    /// object store, until its lease expires if its holder died).
    pub fn fold_pending(&self) -> Result<Vec<String>, Error> {
        let expiry = self.fold_lease() + Duration::from_secs(5);
        Ok(self.fold_when_free(expiry)?.unwrap_or_default())
    }

    /// Folds like [`Self::fold_pending`], but in an object store waits at most `wait` for
    /// another process's fold; `None` when it was still running (it, the next run's fold or
    /// `duff lake fold` folds what is pending). A local fold always waits: folds there are
    /// short, and `duff run` returns with its run folded.
    pub fn settle_within(&self, wait: Duration) -> Result<Option<Vec<String>>, Error> {
        self.fold_when_free(wait)
    }

    fn fold_when_free(&self, wait: Duration) -> Result<Option<Vec<String>>, Error> {
        self.exclusive(wait, async |work| self.fold_all(work).await)
    }

    /// Runs `op` on the lake's workspace while holding the fold's lock (locally, waiting as
    /// long as it takes) or its lease (in an object store, waiting at most `wait`; `None` when
    /// another process still held it). Everything that rewrites the current state runs so.
    pub(crate) fn exclusive<T>(
        &self,
        wait: Duration,
        op: impl AsyncFnOnce(&Workspace) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        let work = self.workspace()?;
        let Some(store) = work.store() else {
            let lock_path = work.root().join(LEASE_OBJECT);
            let lock = std::fs::File::create(&lock_path)
                .map_err(|e| Error::Invalid(format!("{}: {e}", lock_path.display())))?;
            lock.lock()
                .map_err(|e| Error::Invalid(format!("locking {}: {e}", lock_path.display())))?;
            let done = self.runtime().block_on(op(&work));
            drop(lock);
            return done.map(Some);
        };
        self.runtime().block_on(async {
            let Some(lease) = Lease::acquire(store, wait, self.fold_lease()).await? else {
                tracing::warn!(
                    waited_s = wait.as_secs(),
                    "another process holds the fold's lease; leaving the work to it"
                );
                return Ok(None);
            };
            work.hold(lease).await;
            let done = op(&work).await;
            let released = work.release_lease().await;
            let done = done?;
            released?;
            Ok(Some(done))
        })
    }

    async fn fold_all(&self, work: &Workspace) -> Result<Vec<String>, Error> {
        let orders_def = crate::tables::COMMIT_ORDER[1];
        debug_assert_eq!(orders_def.name, ORDERS.name);
        let mut names = Names::default();
        // Side by side: each load is mostly waits for other threads.
        let (orders, mut current, (mut marts, reflects), (mut dims, dims_reflect), mut folds, runs) =
            futures::try_join!(
                self.load_table(&orders_def),
                self.load_or_create(&ORDER_LINES),
                self.load_marts(work, &mut names),
                self.load_current_dims(work),
                self.load_or_create(&FOLDS),
                self.succeeded_runs(),
            )?;
        let version = table_version(&current)?;
        // Empty marts and dimensions are those of an empty order_lines (a new lake's): they
        // need neither a rebuild nor a commit before the first fold commits them.
        let no_lines = data_files(&current, &ORDER_LINES)?.is_empty();
        if reflects != Some(version) && !(no_lines && marts == Marts::default()) {
            // A fold that stopped between its two commits, or a lake from before marts.
            tracing::info!(
                ?reflects,
                order_lines = version,
                "the marts do not reflect order_lines: rebuilding them"
            );
            marts = self.rebuild_marts(work, &current, &mut names).await?;
            self.commit_marts(work, &marts, &names, version).await?;
        }
        if dims_reflect != Some(version) && !(no_lines && dims.is_empty()) {
            tracing::info!(
                ?dims_reflect,
                order_lines = version,
                "the current dimensions do not reflect order_lines: rebuilding them"
            );
            dims = self.rebuild_current_dims(work, &current).await?;
            self.commit_current_dims(work, &dims, version).await?;
        }
        let mut done = Vec::new();
        for id in runs {
            let id = id.as_str();
            work.renew_lease().await?;
            let Some(generation) = self.run_version(&orders, &orders_def, id).await? else {
                continue;
            };
            let folded = self.run_version(&current, &ORDER_LINES, id).await?;
            if folded.is_some_and(|f| f >= generation) {
                // Folded, but a crash may have come before its record.
                if !self.fold_recorded(&folds, id, generation).await? {
                    self.record_fold(work, &mut folds, id, generation, table_version(&current)?)
                        .await?;
                }
                continue;
            }
            let run_files: Vec<DataFile> = data_files(&orders, &orders_def)?
                .into_iter()
                .filter(|f| belongs_to_run(&f.path, id))
                .collect();
            let refold = folded.is_some();
            self.fold_run(
                work,
                &current,
                id,
                (generation, refold),
                run_files,
                (&mut marts, &mut names),
            )
            .await?;
            self.merge_run_dims(work, &mut dims, id).await?;
            // Only the versions fold_run committed are read (not the whole log again).
            current
                .load()
                .await
                .map_err(|e| Error::delta(ORDER_LINES.name, "load", e))?;
            duff_engine::failpoint::hit("before_marts_commit");
            let started = std::time::Instant::now();
            self.commit_marts(work, &marts, &names, table_version(&current)?)
                .await?;
            duff_engine::failpoint::hit("before_dims_commit");
            self.commit_current_dims(work, &dims, table_version(&current)?)
                .await?;
            // The next run's files are fetched afresh: a scratch copy holds one run's at most.
            work.forget()?;
            tracing::info!(
                run_id = id,
                ms = started.elapsed().as_millis() as u64,
                "marts committed"
            );
            self.record_fold(work, &mut folds, id, generation, table_version(&current)?)
                .await?;
            done.push(id.to_string());
        }
        // Marts observed for a run this fold did not fold (its attempt lost) are not needed.
        self.run_marts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        Ok(done)
    }

    /// Whether `folds` records the fold of this generation of the run.
    async fn fold_recorded(
        &self,
        folds: &DeltaTable,
        run_id: &str,
        generation: i64,
    ) -> Result<bool, Error> {
        let recorded = self.run_version(folds, &FOLDS, run_id).await?;
        Ok(recorded.is_some_and(|r| r >= generation))
    }

    /// Appends the run's row to `folds` (its `txn` is the run's id at `generation`, so a
    /// retried record commits once), after the run is in `order_lines` and the marts; `folds`
    /// is then the table as of that commit.
    async fn record_fold(
        &self,
        work: &Workspace,
        folds: &mut DeltaTable,
        run_id: &str,
        generation: i64,
        order_lines_version: i64,
    ) -> Result<(), Error> {
        use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray};
        let table = crate::tables::FOLDS_TABLE.arrow_schema();
        let now = chrono::Utc::now().timestamp_millis();
        let columns: Vec<ArrayRef> = vec![
            std::sync::Arc::new(StringArray::from(vec![run_id])),
            std::sync::Arc::new(Int64Array::from(vec![generation])),
            std::sync::Arc::new(Int64Array::from(vec![order_lines_version])),
            std::sync::Arc::new(TimestampMillisecondArray::from(vec![now]).with_timezone("+00:00")),
        ];
        let batch = RecordBatch::try_new(table, columns)
            .map_err(|e| Error::Invalid(format!("folds row: {e}")))?;
        let nonce = format!("{run_id}-{:08x}", attempt_nonce());
        let add = crate::marts::store::write_file(work.root(), &FOLDS, &nonce, &batch)?;
        work.publish(&[format!("{}/{}", FOLDS.prefix, add.path)])
            .await?;
        // A commit by another process since `folds` was read is one the commit finds and
        // builds on (an append conflicts with nothing).
        let snapshot = folds
            .snapshot()
            .map_err(|e| Error::delta(FOLDS.name, "snapshot", e))?;
        let properties = crate::tables::commit_properties()
            .with_application_transaction(Transaction::new(run_id, generation));
        let committed = CommitBuilder::from(properties)
            .with_actions(vec![Action::Add(add)])
            .build(
                Some(snapshot),
                folds.log_store(),
                DeltaOperation::Write {
                    mode: SaveMode::Append,
                    partition_by: None,
                    predicate: None,
                },
            )
            .await;
        match committed {
            Ok(done) => {
                folds.state = Some(done.snapshot());
                Ok(())
            }
            Err(e) => Err(Error::delta(FOLDS.name, "commit", e)),
        }
    }

    /// The ids of the succeeded runs, from the `runs` table's log alone: a run's row is a
    /// file named after it whose statistics hold its `status` (one row: min = max), so no
    /// file is opened unless its statistics lack it. Every `duff run` folds, so this must not
    /// read one file per run ever committed.
    async fn succeeded_runs(&self) -> Result<Vec<String>, Error> {
        let runs = self.load_or_create(&crate::tables::RUNS).await?;
        let mut ids = Vec::new();
        let mut unknown = false;
        for f in data_files(&runs, &crate::tables::RUNS)? {
            let status = f.stats.as_deref().and_then(|s| {
                let stats: serde_json::Value = serde_json::from_str(s).ok()?;
                let (lo, hi) = (&stats["minValues"]["status"], &stats["maxValues"]["status"]);
                (lo == hi)
                    .then(|| lo.as_str().map(str::to_string))
                    .flatten()
            });
            match (run_id_of_file(&f.path), status.as_deref()) {
                (Some(id), Some("succeeded")) => ids.push(id.to_string()),
                (Some(_), Some(_)) => {}
                _ => unknown = true,
            }
        }
        if unknown {
            // Files this version did not write: read the records themselves.
            return Ok(self
                .runs_async()
                .await?
                .into_iter()
                .filter(|m| m.status == RunStatus::Succeeded)
                .map(|m| m.run_id)
                .collect());
        }
        Ok(ids)
    }

    async fn fold_run(
        &self,
        work: &Workspace,
        current: &DeltaTable,
        run_id: &str,
        (generation, refold): (i64, bool),
        run_files: Vec<DataFile>,
        (marts, names): (&mut Marts, &mut Names),
    ) -> Result<(), Error> {
        let started = std::time::Instant::now();
        let orders_dir = work.root().join(ORDERS.prefix);
        let lines_dir = work.root().join(ORDER_LINES.prefix);
        let in_orders = |path: &str| format!("{}/{path}", ORDERS.prefix);
        let in_lines = |path: &str| format!("{}/{path}", ORDER_LINES.prefix);
        // Files written here, uploaded before the commit that adds them.
        let mut written: Vec<String> = Vec::new();
        let nonce = format!("{:08x}", attempt_nonce());
        let mut actions = Vec::new();
        let now = chrono::Utc::now().timestamp_millis();
        let existing = data_files(current, &ORDER_LINES)?;
        let range = run_files
            .iter()
            .map(|f| f.range)
            .try_fold(None::<(i64, i64)>, |acc, r| {
                let (lo, hi) = r?;
                Some(Some(acc.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi)))))
            })
            .flatten();
        // A line of R's previous generation is always replaced: it is in R's files, or, after
        // `duff lake optimize`, in a compacted file (named after no run). Any other file is
        // read only when its key range overlaps R's.
        let overlapping: Vec<&DataFile> = existing
            .iter()
            .filter(|f| {
                belongs_to_run(&f.path, run_id)
                    || (refold && run_id_of_file(&f.path).is_none())
                    || range.is_none_or(|r| f.overlaps(r))
            })
            .collect();
        // The run's marts as the engine saw its rows, if every one of its orders is new: no
        // file of the current state may hold a line of them (ranges known, none overlapping).
        // Taken now either way: what is not used is freed before the merge's work.
        let all_new = range.is_some()
            && overlapping.is_empty()
            && existing
                .iter()
                .all(|f| f.range.is_some_and(|(a, b)| a <= b));
        let days: Vec<String> = run_files
            .iter()
            .map(|f| day_of(&f.partition_values))
            .collect();
        let observed = self
            .run_marts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_if(|m| belongs_to_run(&m.stem, run_id))
            .filter(|observed| {
                all_new
                    && observed.usable_for(
                        run_files
                            .iter()
                            .zip(&days)
                            .map(|(f, d)| (f.path.as_str(), d.as_str(), f.num_records())),
                    )
            });
        work.fetch(run_files.iter().map(|f| in_orders(&f.path)))
            .await?;
        work.fetch(overlapping.iter().map(|f| in_lines(&f.path)))
            .await?;
        let mut losers: HashSet<Key> = HashSet::new();
        // Every file read, with which of its lines stay current (for the marts).
        let mut read: Vec<(&DataFile, Vec<bool>)> = Vec::new();
        if !overlapping.is_empty() {
            let rows: usize = run_files.iter().filter_map(DataFile::num_records).sum();
            let mut run_keys: HashSet<Key> = HashSet::with_capacity(rows);
            let mut run_version: Option<Version> = None;
            for f in &run_files {
                for_each_key(&orders_dir.join(&f.path), |key, ingested, run| {
                    if run_version.is_none() {
                        run_version = Some((ingested, run.to_string()));
                    }
                    run_keys.insert(key);
                })?;
            }
            let (run_ingested, version_run_id) =
                run_version.unwrap_or((i64::MIN, run_id.to_string()));
            for old in &overlapping {
                let mut keep: Vec<bool> = Vec::new();
                let path = lines_dir.join(&old.path);
                for_each_key(&path, |key, ingested, run| {
                    // A line of R's previous generation never stays.
                    let stays = if run == run_id {
                        false
                    } else if run_keys.contains(&key) {
                        let newer = (ingested, run) > (run_ingested, version_run_id.as_str());
                        if newer {
                            losers.insert(key);
                        }
                        newer
                    } else {
                        true
                    };
                    keep.push(stays);
                })?;
                if keep.iter().all(|k| *k) {
                    read.push((old, keep));
                    continue;
                }
                actions.push(old.remove(now, true));
                // A file whose every line the run supersedes leaves without being read again.
                if keep.iter().any(|k| *k) {
                    let kept = rewrite(&path, &old.path, &nonce, &lines_dir, |i, _| keep[i])?;
                    written.extend(kept.iter().map(|a| in_lines(&a.path)));
                    actions.extend(
                        kept.into_iter()
                            .map(|a| Action::Add(with_partition(a, old))),
                    );
                }
                read.push((old, keep));
            }
        }
        for f in &run_files {
            let from = orders_dir.join(&f.path);
            if losers.is_empty() {
                let rel = renamed(&f.path, &nonce);
                work.link(&in_orders(&f.path), &in_lines(&rel)).await?;
                actions.push(Action::Add(Add {
                    path: rel,
                    partition_values: f.partition_values.clone(),
                    size: f.size,
                    modification_time: now,
                    data_change: true,
                    stats: f.stats.clone(),
                    ..Default::default()
                }));
            } else {
                let kept = rewrite(&from, &f.path, &nonce, &lines_dir, |_, key| {
                    !losers.contains(&key)
                })?;
                written.extend(kept.iter().map(|a| in_lines(&a.path)));
                actions.extend(kept.into_iter().map(|a| Action::Add(with_partition(a, f))));
            }
        }
        let merged_ms = started.elapsed().as_millis() as u64;
        let read_count = read.len();
        let marts_from = match observed {
            Some(observed) => {
                marts.add_new_orders(names, observed.marts, &observed.names);
                "rows seen"
            }
            _ => {
                self.change_marts(work, &existing, read, &run_files, &losers, (marts, names))
                    .await?;
                "files read"
            }
        };
        work.publish(&written).await?;
        work.renew_lease().await?;
        duff_engine::failpoint::hit("before_fold_commit");
        let snapshot = current
            .snapshot()
            .map_err(|e| Error::delta(ORDER_LINES.name, "snapshot", e))?;
        let properties = crate::tables::commit_properties()
            .with_application_transaction(Transaction::new(run_id, generation))
            .with_metadata([("duff.foldedRun".to_string(), serde_json::json!(run_id))]);
        CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                Some(snapshot),
                current.log_store(),
                DeltaOperation::Write {
                    mode: SaveMode::Overwrite,
                    partition_by: Some(vec![PARTITION_COLUMN.to_string()]),
                    predicate: None,
                },
            )
            .await
            .map_err(|e| Error::delta(ORDER_LINES.name, "commit", e))?;
        tracing::info!(
            run_id,
            generation,
            files_read = read_count,
            marts_from,
            order_lines_ms = merged_ms,
            total_ms = started.elapsed().as_millis() as u64,
            "folded into order_lines, and the marts changed in memory"
        );
        Ok(())
    }

    /// Changes the marts (in memory) as the fold changes the current state: from every
    /// current line of the orders it touches, before and after. Those lines are in the files
    /// it read, plus (when a `--force` re-run drops lines outside its new key range) any file
    /// whose range holds a dropped line's order.
    async fn change_marts(
        &self,
        work: &Workspace,
        existing: &[DataFile],
        read: Vec<(&DataFile, Vec<bool>)>,
        run_files: &[DataFile],
        losers: &HashSet<Key>,
        (marts, names): (&mut Marts, &mut Names),
    ) -> Result<(), Error> {
        let touched = read
            .iter()
            .filter(|(_, keep)| keep.iter().any(|k| !*k))
            .filter_map(|(f, _)| f.range)
            .chain(run_files.iter().filter_map(|f| f.range))
            .reduce(|(a, b), (lo, hi)| (a.min(lo), b.max(hi)));
        let others: Vec<&DataFile> = existing
            .iter()
            .filter(|f| {
                !read.iter().any(|(r, _)| r.path == f.path)
                    && touched.is_some_and(|t| f.range.is_none_or(|r| f.overlaps(t) || r.0 > r.1))
            })
            .collect();
        let lines_dir = work.root().join(ORDER_LINES.prefix);
        let orders_dir = work.root().join(ORDERS.prefix);
        work.fetch(
            others
                .iter()
                .map(|f| format!("{}/{}", ORDER_LINES.prefix, f.path)),
        )
        .await?;
        let mut sources: Vec<LineSource<'_>> = Vec::new();
        for f in others {
            sources.push(LineSource {
                path: lines_dir.join(&f.path),
                day: day_of(&f.partition_values),
                sides: Box::new(|_, _| Some(Side::Both)),
            });
        }
        for (f, keep) in read {
            sources.push(LineSource {
                path: lines_dir.join(&f.path),
                day: day_of(&f.partition_values),
                sides: Box::new(move |i, _| Some(if keep[i] { Side::Both } else { Side::Before })),
            });
        }
        for f in run_files {
            sources.push(LineSource {
                path: orders_dir.join(&f.path),
                day: day_of(&f.partition_values),
                sides: Box::new(|_, key| (!losers.contains(&key)).then_some(Side::After)),
            });
        }
        marts.apply_sources(&sources, names)
    }
}

/// A loaded table's version.
pub(crate) fn table_version(table: &DeltaTable) -> Result<i64, Error> {
    table
        .version()
        .and_then(|v| i64::try_from(v).ok())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{}: a loaded table has a version",
                ORDER_LINES.name
            ))
        })
}

/// `<stem>.parquet` → `<stem>-f<nonce>.parquet`, in the same partition directory: a fold's
/// files never collide with an earlier, crashed fold's.
fn renamed(path: &str, nonce: &str) -> String {
    let stem = path.strip_suffix(".parquet").unwrap_or(path);
    format!("{stem}-f{nonce}.parquet")
}

fn with_partition(mut add: Add, like: &DataFile) -> Add {
    add.partition_values = like.partition_values.clone();
    add
}

/// The columns [`for_each_key`] reads.
pub(crate) const KEY_COLUMNS: [&str; 4] = ["order_id", "product_id", "ingested_at", "run_id"];

/// Calls `each(key, ingested_at ms, run_id)` for every row, in file order, reading only those
/// four columns.
fn for_each_key(path: &Path, each: impl FnMut(Key, i64, &str)) -> Result<(), Error> {
    for_each_key_of(open_columns(path, &KEY_COLUMNS)?, path, each)
}

/// [`for_each_key`] over the batches of `reader` (of at least [`KEY_COLUMNS`]).
pub(crate) fn for_each_key_of(
    reader: impl Iterator<Item = Result<RecordBatch, arrow::error::ArrowError>>,
    path: &Path,
    mut each: impl FnMut(Key, i64, &str),
) -> Result<(), Error> {
    for batch in reader {
        let batch = batch.map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| Error::Invalid(format!("{}: no column {name}", path.display())))
        };
        let orders = column("order_id")?;
        let products = column("product_id")?;
        let ingested = column("ingested_at")?;
        // Dictionary-encoded, a few values per file: cast once per batch.
        let runs = arrow::compute::cast(&column("run_id")?, &arrow::datatypes::DataType::Utf8)
            .map_err(|e| Error::Invalid(format!("{}: run_id: {e}", path.display())))?;
        let orders = orders.as_primitive::<Int64Type>();
        let products = products.as_primitive::<Int64Type>();
        let ingested = ingested.as_primitive::<TimestampMillisecondType>();
        let runs = runs.as_string::<i32>();
        for i in 0..batch.num_rows() {
            each(
                (orders.value(i), products.value(i)),
                ingested.value(i),
                runs.value(i),
            );
        }
    }
    Ok(())
}

/// Writes the rows of `from` that `keep(row index, key)` accepts into a new file beside
/// `rel` (under `lines_dir`), and returns its `add` action (none when no row is kept). Each
/// row group keeps its rows in a row group of its own: a clustered file stays clustered.
fn rewrite(
    from: &Path,
    rel: &str,
    nonce: &str,
    lines_dir: &Path,
    keep: impl Fn(usize, Key) -> bool,
) -> Result<Option<Add>, Error> {
    let source = ParquetFile::open(from)?;
    let new_rel = renamed(rel, nonce);
    let to = lines_dir.join(&new_rel);
    let mut writer: Option<LakeFileWriter> = None;
    let mut row = 0usize;
    for group in 0..source.row_group_rows().len() {
        for batch in source.reader(None, Some(vec![group]))? {
            let batch: RecordBatch =
                batch.map_err(|e| Error::Invalid(format!("{}: {e}", from.display())))?;
            let orders = batch
                .column_by_name("order_id")
                .expect("orders schema")
                .clone();
            let products = batch
                .column_by_name("product_id")
                .expect("orders schema")
                .clone();
            let (orders, products) = (
                orders.as_primitive::<Int64Type>(),
                products.as_primitive::<Int64Type>(),
            );
            let mask: BooleanArray = (0..batch.num_rows())
                .map(|i| Some(keep(row + i, (orders.value(i), products.value(i)))))
                .collect();
            row += batch.num_rows();
            let kept = filter_record_batch(&batch, &mask)
                .map_err(|e| Error::Invalid(format!("{}: {e}", from.display())))?;
            if kept.num_rows() == 0 {
                continue;
            }
            let file = match &mut writer {
                Some(file) => file,
                None => writer.insert(LakeFileWriter::create(&to, kept.schema(), &ORDERS)?),
            };
            file.write(&kept)?;
        }
        if let Some(file) = &mut writer {
            file.end_row_group()?;
        }
    }
    // No file when no row is kept.
    writer.map(|file| file.finish(new_rel)).transpose()
}
