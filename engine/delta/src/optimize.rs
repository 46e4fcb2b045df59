//! `duff lake optimize`: compaction of the current state's small files.
//!
//! - `order_lines`, per partition: the files smaller than the target (a small input's, or one a
//!   re-delivery's fold rewrote) are packed in the order of their key ranges into bins of at
//!   most the target size, and each bin of two files or more becomes one file sorted by key,
//!   so key ranges stay narrow for the fold's pruning. A compacted file is named after no run
//!   (`compact-…`); a `--force` re-run's fold reads such files for its earlier lines.
//! - `folds`: all its files (one per fold) become one.
//!
//! The history tables are left as they are: there a run's files are the unit a `--force`
//! re-run replaces and `duff lake check` counts, by name. The marts and the current dimensions
//! are one file each already.
//!
//! Safe while runs commit: it holds the fold's lock or lease, so no fold changes the current
//! state meanwhile, and runs commit only to the history tables. Its commits move rows without
//! changing them (operation OPTIMIZE, `dataChange: false`). The marts and the current
//! dimensions name the `order_lines` version they reflect, so they are committed again as they
//! are with the compacted version; a crash in between leaves them behind, and the next fold
//! rebuilds them.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::Int64Type;
use deltalake_core::DeltaTable;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake_core::kernel::{Action, Add};
use deltalake_core::protocol::DeltaOperation;
use duff_engine::schema::ORDERS;
use duff_engine::storage::Lake;

use crate::error::Error;
use crate::fold::table_version;
use crate::lake::{DataFile, DeltaLake, attempt_nonce, data_files};
use crate::marts::Names;
use crate::marts::store::{day_of, write_file};
use crate::parquet_io::{LakeFileWriter, read_as};
use crate::tables::{DeltaTableDef, FOLDS, FOLDS_TABLE, ORDER_LINES};
use crate::workspace::Workspace;

/// The default size of a compacted file. Compaction holds one bin's rows in memory, decoded:
/// several times its size on disk.
pub const DEFAULT_TARGET_BYTES: u64 = 64 << 20;

/// Rows written per batch of a compacted file.
const WRITE_BATCH_ROWS: usize = 64 * 1024;

/// What [`DeltaLake::optimize`] did to one partition of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    pub table: &'static str,
    /// The `pa_date` of the partition; empty for an unpartitioned table.
    pub partition: String,
    pub files_before: usize,
    pub files_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub rows: u64,
}

impl<L: Lake> DeltaLake<L> {
    /// Compacts the small files of `order_lines` (per partition, into files of at most
    /// `target_bytes`) and of `folds`, and returns what it did. Waits for a fold running in
    /// another process.
    pub fn optimize(&self, target_bytes: u64) -> Result<Vec<Compaction>, Error> {
        if target_bytes < 1 << 20 {
            return Err(Error::Invalid(format!(
                "a target of {target_bytes} bytes: compacted files of less than 1 MiB are small \
                 files themselves"
            )));
        }
        let wait = self.fold_lease() + Duration::from_secs(5);
        let done = self.exclusive(wait, async |work| {
            let mut done = self.compact_order_lines(work, target_bytes).await?;
            done.extend(self.compact_folds(work).await?);
            work.forget()?;
            Ok(done)
        })?;
        Ok(done.unwrap_or_default())
    }

    async fn compact_order_lines(
        &self,
        work: &Workspace,
        target_bytes: u64,
    ) -> Result<Vec<Compaction>, Error> {
        let current = self.load_or_create(&ORDER_LINES).await?;
        let bins = plan(data_files(&current, &ORDER_LINES)?, target_bytes);
        if bins.is_empty() {
            return Ok(Vec::new());
        }
        let before = table_version(&current)?;
        // Loaded before the commit: they are committed again, unchanged, if they reflect it.
        let mut names = Names::default();
        let (marts, marts_reflect) = self.load_marts(work, &mut names).await?;
        let (dims, dims_reflect) = self.load_current_dims(work).await?;

        let nonce = format!("{:08x}", attempt_nonce());
        let now = chrono::Utc::now().timestamp_millis();
        let lines_dir = work.root().join(ORDER_LINES.prefix);
        let schema = ORDERS.arrow_schema();
        let mut actions = Vec::new();
        let mut report: BTreeMap<String, Compaction> = BTreeMap::new();
        for (n, bin) in bins.iter().enumerate() {
            work.renew_lease().await?;
            work.fetch(
                bin.iter()
                    .map(|f| format!("{}/{}", ORDER_LINES.prefix, f.path)),
            )
            .await?;
            let mut batches = Vec::new();
            for f in bin {
                batches.extend(read_as(&lines_dir.join(&f.path), &schema)?);
            }
            let dir = bin[0].path.rsplit_once('/').map_or("", |(dir, _)| dir);
            let rel = if dir.is_empty() {
                format!("compact-{nonce}-{n}.parquet")
            } else {
                format!("{dir}/compact-{nonce}-{n}.parquet")
            };
            let mut add = write_sorted(&lines_dir.join(&rel), rel.clone(), &batches)?;
            add.partition_values = bin[0].partition_values.clone();
            // Uploaded now and the scratch copy cleared: in S3 it holds one bin at a time.
            work.publish(&[format!("{}/{}", ORDER_LINES.prefix, add.path)])
                .await?;
            work.forget()?;
            let day = day_of(&bin[0].partition_values);
            let entry = report.entry(day.clone()).or_insert(Compaction {
                table: ORDER_LINES.name,
                partition: day,
                files_before: 0,
                files_after: 0,
                bytes_before: 0,
                bytes_after: 0,
                rows: 0,
            });
            entry.files_before += bin.len();
            entry.files_after += 1;
            entry.bytes_before += bin.iter().map(|f| f.size as u64).sum::<u64>();
            entry.bytes_after += add.size as u64;
            entry.rows += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            actions.extend(bin.iter().map(|f| f.remove(now, false)));
            actions.push(Action::Add(add));
        }
        work.renew_lease().await?;
        commit_optimize(&current, &ORDER_LINES, actions, target_bytes).await?;
        let after = table_version(&self.load_table(&ORDER_LINES).await?)?;
        duff_engine::run::failpoint("before_optimize_marts_commit");
        if marts_reflect == Some(before) {
            self.commit_marts(work, &marts, &names, after).await?;
        }
        if dims_reflect == Some(before) {
            self.commit_current_dims(work, &dims, after).await?;
        }
        Ok(report.into_values().collect())
    }

    /// All of `folds`' files become one.
    async fn compact_folds(&self, work: &Workspace) -> Result<Vec<Compaction>, Error> {
        let table = self.load_or_create(&FOLDS).await?;
        let files = data_files(&table, &FOLDS)?;
        if files.len() < 2 {
            return Ok(Vec::new());
        }
        work.renew_lease().await?;
        work.fetch(files.iter().map(|f| format!("{}/{}", FOLDS.prefix, f.path)))
            .await?;
        let schema = FOLDS_TABLE.arrow_schema();
        let mut batches = Vec::new();
        for f in &files {
            batches.extend(read_as(
                &work.root().join(FOLDS.prefix).join(&f.path),
                &schema,
            )?);
        }
        let all = arrow::compute::concat_batches(&schema, &batches)
            .map_err(|e| Error::Invalid(format!("{}: {e}", FOLDS.name)))?;
        let nonce = format!("compact-{:08x}", attempt_nonce());
        let mut add = write_file(work.root(), &FOLDS, &nonce, &all)?;
        add.data_change = false;
        work.publish(&[format!("{}/{}", FOLDS.prefix, add.path)])
            .await?;
        let now = chrono::Utc::now().timestamp_millis();
        let done = Compaction {
            table: FOLDS.name,
            partition: String::new(),
            files_before: files.len(),
            files_after: 1,
            bytes_before: files.iter().map(|f| f.size as u64).sum(),
            bytes_after: add.size as u64,
            rows: all.num_rows() as u64,
        };
        let mut actions: Vec<Action> = files.iter().map(|f| f.remove(now, false)).collect();
        actions.push(Action::Add(add));
        commit_optimize(&table, &FOLDS, actions, 0).await?;
        Ok(vec![done])
    }
}

/// The bins to compact: per partition, the files smaller than the target, in the order of
/// their key ranges, packed greedily into bins of at most the target; bins of one file are
/// left alone.
fn plan(files: Vec<DataFile>, target_bytes: u64) -> Vec<Vec<DataFile>> {
    let mut by_day: BTreeMap<String, Vec<DataFile>> = BTreeMap::new();
    for f in files.into_iter().filter(|f| (f.size as u64) < target_bytes) {
        by_day
            .entry(day_of(&f.partition_values))
            .or_default()
            .push(f);
    }
    let mut bins = Vec::new();
    for (_, mut small) in by_day {
        small.sort_by(|a, b| a.range.cmp(&b.range).then_with(|| a.path.cmp(&b.path)));
        let mut bin: Vec<DataFile> = Vec::new();
        let mut bytes = 0u64;
        for f in small {
            if !bin.is_empty() && bytes + f.size as u64 > target_bytes {
                bins.push(std::mem::take(&mut bin));
                bytes = 0;
            }
            bytes += f.size as u64;
            bin.push(f);
        }
        bins.push(bin);
    }
    bins.retain(|b| b.len() >= 2);
    bins
}

/// Writes the rows of `batches` sorted by `(order_id, product_id)` to `path`; returns its
/// `add` action at `rel`, which moves rows (no data change; its partition set by the caller).
fn write_sorted(
    path: &std::path::Path,
    rel: String,
    batches: &[RecordBatch],
) -> Result<Add, Error> {
    let mut order: Vec<(i64, i64, usize, usize)> = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let orders = batch.column(batch.schema().index_of("order_id").expect("orders schema"));
        let products = batch.column(
            batch
                .schema()
                .index_of("product_id")
                .expect("orders schema"),
        );
        let (orders, products) = (
            orders.as_primitive::<Int64Type>(),
            products.as_primitive::<Int64Type>(),
        );
        order.extend((0..batch.num_rows()).map(|i| (orders.value(i), products.value(i), b, i)));
    }
    order.sort_unstable();
    let mut file = LakeFileWriter::create(path, batches[0].schema())?;
    let sources: Vec<&RecordBatch> = batches.iter().collect();
    for chunk in order.chunks(WRITE_BATCH_ROWS) {
        let indices: Vec<(usize, usize)> = chunk.iter().map(|r| (r.2, r.3)).collect();
        let rows = interleave_record_batch(&sources, &indices)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        file.write(&rows)?;
    }
    let mut add = file.finish(rel)?;
    add.data_change = false;
    Ok(add)
}

async fn commit_optimize(
    table: &DeltaTable,
    def: &DeltaTableDef,
    actions: Vec<Action>,
    target_bytes: u64,
) -> Result<(), Error> {
    let snapshot = table
        .snapshot()
        .map_err(|e| Error::delta(def.name, "snapshot", e))?;
    CommitBuilder::from(CommitProperties::default())
        .with_actions(actions)
        .build(
            Some(snapshot),
            table.log_store(),
            DeltaOperation::Optimize {
                predicate: None,
                target_size: target_bytes as i64,
            },
        )
        .await
        .map_err(|e| Error::delta(def.name, "commit", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(day: &str, name: &str, size: i64, range: (i64, i64)) -> DataFile {
        DataFile {
            path: format!("pa_date={day}/{name}"),
            size,
            partition_values: [("pa_date".to_string(), Some(day.to_string()))].into(),
            stats: None,
            range: Some(range),
        }
    }

    fn names(bins: &[Vec<DataFile>]) -> Vec<Vec<&str>> {
        bins.iter()
            .map(|b| {
                b.iter()
                    .map(|f| f.path.rsplit('/').next().unwrap())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn small_files_are_packed_per_partition_in_key_order_up_to_the_target() {
        let files = vec![
            file("2026-11-02", "c", 40, (300, 399)),
            file("2026-11-02", "a", 40, (100, 199)),
            file("2026-11-02", "b", 40, (200, 299)),
            file("2026-11-02", "big", 100, (0, 99)),
            file("2026-11-03", "lonely", 10, (0, 9)),
            file("2026-11-04", "x", 10, (50, 60)),
            file("2026-11-04", "y", 10, (0, 40)),
        ];
        let bins = plan(files, 100);
        // `big` is not small; a, b fill a bin (c would pass the target); c and `lonely`
        // are alone, so left as they are.
        assert_eq!(names(&bins), vec![vec!["a", "b"], vec!["y", "x"]]);
    }

    #[test]
    fn a_partition_of_large_files_is_left_alone() {
        let files = vec![
            file("2026-11-02", "a", 100, (0, 1)),
            file("2026-11-02", "b", 150, (2, 3)),
        ];
        assert!(plan(files, 100).is_empty());
    }
}
