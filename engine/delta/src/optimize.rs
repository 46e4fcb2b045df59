//! `duff lake optimize`: compaction of the current state's small files, and clustering of its
//! files by client.
//!
//! - `order_lines`, per partition: the files smaller than the target (a small input's, or one a
//!   re-delivery's fold rewrote) are packed in the order of their key ranges into bins of at
//!   most the target size, so key ranges stay narrow for the fold's pruning. Each bin, and each
//!   larger file, not clustered yet becomes one *clustered* file: its row groups hold
//!   consecutive ranges of `client_id`, each row group sorted by `(order_id, product_id)`.
//!   A client's lookup then reads one row group per file (the others are pruned on their
//!   `client_id` statistics) where it read every row; the fold reads each row group as a
//!   sequence in order-id order (`marts::stream_orders`) and keeps a rewritten file's
//!   row groups apart. A clustered file is named after no run (`cluster-…`); a `--force`
//!   re-run's fold reads such files for its earlier lines.
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

use std::path::{Path, PathBuf};

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::{Int64Type, SchemaRef};
use deltalake_core::DeltaTable;
use deltalake_core::kernel::transaction::CommitBuilder;
use deltalake_core::kernel::{Action, Add};
use deltalake_core::protocol::DeltaOperation;
use duff_engine::schema::ORDERS;
use duff_engine::storage::Lake;

use crate::error::Error;
use crate::files::{DataFile, attempt_nonce, data_files};
use crate::fold::table_version;
use crate::lake::DeltaLake;
use crate::marts::store::{day_of, write_file};
use crate::parquet_io::{LakeFileWriter, ParquetFile, cast_to, open_columns, read_as};
use crate::tables::CURRENT_DIMS;
use crate::tables::MARTS;
use crate::tables::{DeltaTableDef, FOLDS, FOLDS_TABLE, ORDER_LINES};
use crate::workspace::Workspace;

/// The default size of a compacted file.
pub const DEFAULT_TARGET_BYTES: u64 = 64 << 20;

/// The default number of rows of a row group of a clustered file: a client's lookup reads
/// one per file, so fewer rows are faster to scan (a quarter of the engine's row groups: about
/// 20 ms less per lookup on a lake of ten 1 GiB runs, files 6% larger).
pub const DEFAULT_ROW_GROUP_ROWS: usize = 1 << 18;

/// Rows a clustering pass holds decoded (with every column: a few hundred MiB); a file with
/// more is read once per pass, decoding the rows of that pass only.
const PASS_ROWS: usize = 1 << 20;

/// Rows written per batch of a clustered file.
const WRITE_BATCH_ROWS: usize = 64 * 1024;

/// The name a clustered file starts with.
const CLUSTERED: &str = "cluster-";

/// What `duff lake optimize` aims for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptimizeOptions {
    /// Files smaller than this are compacted together, into files of at most this size.
    pub target_bytes: u64,
    /// Rows per row group of a clustered file: a client's lookup reads one such group per
    /// file (fewer rows read, more row groups in the footer).
    pub row_group_rows: usize,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        OptimizeOptions {
            target_bytes: DEFAULT_TARGET_BYTES,
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
        }
    }
}

/// What [`DeltaLake::optimize`] did to one partition of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    /// The table's name.
    pub table: &'static str,
    /// The `pa_date` of the partition; empty for an unpartitioned table.
    pub partition: String,
    /// Data files in the partition before compaction.
    pub files_before: usize,
    /// Data files after: the compacted files.
    pub files_after: usize,
    /// Their size before, in bytes.
    pub bytes_before: u64,
    /// Their size after, in bytes.
    pub bytes_after: u64,
    /// Rows moved (the same before and after: compaction changes no row).
    pub rows: u64,
}

impl<L: Lake> DeltaLake<L> {
    /// Compacts the small files of `order_lines` (per partition, into files of at most
    /// `target_bytes`) and clusters its files by client, compacts `folds`, and returns what it
    /// did. Waits for a fold running in another process.
    pub fn optimize(&self, options: OptimizeOptions) -> Result<Vec<Compaction>, Error> {
        let target_bytes = options.target_bytes;
        if target_bytes < 1 << 20 {
            return Err(Error::Invalid(format!(
                "a target of {target_bytes} bytes: compacted files of less than 1 MiB are small \
                 files themselves"
            )));
        }
        if options.row_group_rows == 0 {
            return Err(Error::Invalid("row groups of 0 rows".into()));
        }
        let wait = self.fold_lease() + Duration::from_secs(5);
        let done = self.exclusive(wait, async |work| {
            let mut done = self.compact_order_lines(work, options).await?;
            done.extend(self.compact_folds(work).await?);
            work.forget()?;
            Ok(done)
        })?;
        Ok(done.unwrap_or_default())
    }

    async fn compact_order_lines(
        &self,
        work: &Workspace,
        options: OptimizeOptions,
    ) -> Result<Vec<Compaction>, Error> {
        let target_bytes = options.target_bytes;
        let current = self.load_or_create(&ORDER_LINES).await?;
        let bins = plan(data_files(&current, &ORDER_LINES)?, target_bytes);
        if bins.is_empty() {
            return Ok(Vec::new());
        }
        let before = table_version(&current)?;

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
            let paths: Vec<PathBuf> = bin.iter().map(|f| lines_dir.join(&f.path)).collect();
            let dir = bin[0].path.rsplit_once('/').map_or("", |(dir, _)| dir);
            let rel = if dir.is_empty() {
                format!("{CLUSTERED}{nonce}-{n}.parquet")
            } else {
                format!("{dir}/{CLUSTERED}{nonce}-{n}.parquet")
            };
            let (mut add, rows) = write_clustered(
                &paths,
                &lines_dir.join(&rel),
                rel.clone(),
                &schema,
                options.row_group_rows,
            )?;
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
            entry.rows += rows;
            actions.extend(bin.iter().map(|f| f.remove(now, false)));
            actions.push(Action::Add(add));
        }
        work.renew_lease().await?;
        // Read before the commit: the marts and current dimensions that reflect it reflect
        // the compacted version too (no fold runs meanwhile).
        let marts_reflect = self.reflected(&MARTS).await?;
        let dims_reflect = self.reflected(&CURRENT_DIMS).await?;
        commit_optimize(&current, &ORDER_LINES, actions, target_bytes).await?;
        let after = table_version(&self.load_table(&ORDER_LINES).await?)?;
        duff_engine::failpoint::hit("before_optimize_marts_commit");
        if marts_reflect == Some(before) {
            self.reaffirm(&MARTS, after).await?;
        }
        if dims_reflect == Some(before) {
            self.reaffirm(&CURRENT_DIMS, after).await?;
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

/// The bins to rewrite: per partition, the files smaller than the target, in the order of
/// their key ranges, packed greedily into bins of at most the target, and each larger file
/// alone; a bin of one file already clustered is left alone.
fn plan(files: Vec<DataFile>, target_bytes: u64) -> Vec<Vec<DataFile>> {
    let mut by_day: BTreeMap<String, Vec<DataFile>> = BTreeMap::new();
    for f in files {
        by_day
            .entry(day_of(&f.partition_values))
            .or_default()
            .push(f);
    }
    let mut bins = Vec::new();
    for (_, mut files) in by_day {
        files.sort_by(|a, b| a.range.cmp(&b.range).then_with(|| a.path.cmp(&b.path)));
        let (small, large): (Vec<DataFile>, Vec<DataFile>) = files
            .into_iter()
            .partition(|f| (f.size as u64) < target_bytes);
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
        bins.extend(large.into_iter().map(|f| vec![f]));
    }
    bins.retain(|b| b.len() >= 2 || b.first().is_some_and(|f| !is_clustered(f)));
    bins
}

fn is_clustered(file: &DataFile) -> bool {
    let name = file.path.rsplit('/').next().unwrap_or(&file.path);
    name.starts_with(CLUSTERED)
}

/// A row group of a clustered file: the rows of the clients `lo..=hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClientRange {
    lo: i64,
    hi: i64,
    rows: usize,
}

/// Cuts the sorted client ids of every row into consecutive ranges of at least `rows` rows
/// (the last may have fewer; a client's rows are never split).
fn client_ranges(sorted_clients: &[i64], rows: usize) -> Vec<ClientRange> {
    let mut ranges: Vec<ClientRange> = Vec::new();
    for same in sorted_clients.chunk_by(|a, b| a == b) {
        match ranges.last_mut() {
            Some(r) if r.rows < rows => {
                r.hi = same[0];
                r.rows += same.len();
            }
            _ => ranges.push(ClientRange {
                lo: same[0],
                hi: same[0],
                rows: same.len(),
            }),
        }
    }
    ranges
}

/// Consecutive ranges holding at most `rows` rows together (or one range, if it alone has more).
fn passes(ranges: &[ClientRange], rows: usize) -> Vec<&[ClientRange]> {
    let mut passes = Vec::new();
    let (mut start, mut held) = (0, 0);
    for (i, r) in ranges.iter().enumerate() {
        if i > start && held + r.rows > rows {
            passes.push(&ranges[start..i]);
            (start, held) = (i, 0);
        }
        held += r.rows;
    }
    if start < ranges.len() {
        passes.push(&ranges[start..]);
    }
    passes
}

/// Writes the rows of the files at `paths` to `path`, clustered: one row group per range of
/// clients of about `group_rows` rows, each sorted by `(order_id, product_id)`. Returns its
/// `add` action at `rel` (no data change; its partition set by the caller) and its row count.
/// Holds at most [`PASS_ROWS`] rows (or one range's): a pass reads its ranges' rows of every
/// file.
fn write_clustered(
    paths: &[PathBuf],
    path: &Path,
    rel: String,
    schema: &SchemaRef,
    group_rows: usize,
) -> Result<(Add, u64), Error> {
    let invalid = |p: &Path, e: String| Error::Invalid(format!("{}: {e}", p.display()));
    // Sized once from the footers: a lake's bins then reuse the same allocations.
    let mut rows = 0;
    for p in paths {
        rows += ParquetFile::open(p)?.row_group_rows().iter().sum::<usize>();
    }
    let mut clients: Vec<i64> = Vec::with_capacity(rows);
    for p in paths {
        for batch in open_columns(p, &["client_id"])? {
            let batch = batch.map_err(|e| invalid(p, e.to_string()))?;
            clients.extend(batch.column(0).as_primitive::<Int64Type>().values());
        }
    }
    clients.sort_unstable();
    let ranges = client_ranges(&clients, group_rows);
    drop(clients);
    let mut file = LakeFileWriter::create(path, schema.clone(), &ORDERS)?;
    let mut written = 0u64;
    for pass in passes(&ranges, PASS_ROWS) {
        let (lo, hi) = (pass[0].lo, pass[pass.len() - 1].hi);
        let mut batches = Vec::new();
        for p in paths {
            for batch in ParquetFile::open(p)?.reader_within("client_id", lo..=hi, None)? {
                let batch = cast_to(&batch.map_err(|e| invalid(p, e.to_string()))?, schema, p)?;
                if batch.num_rows() > 0 {
                    batches.push(batch);
                }
            }
        }
        // (range, order, product, batch, row): each range's rows together, sorted by key.
        let rows = pass.iter().map(|r| r.rows).sum();
        let mut order: Vec<(usize, i64, i64, usize, usize)> = Vec::with_capacity(rows);
        for (b, batch) in batches.iter().enumerate() {
            let column = |name: &str| {
                batch
                    .column_by_name(name)
                    .expect("orders schema")
                    .as_primitive::<Int64Type>()
                    .clone()
            };
            let (clients, orders, products) = (
                column("client_id"),
                column("order_id"),
                column("product_id"),
            );
            order.extend((0..batch.num_rows()).map(|i| {
                let client = clients.value(i);
                let range = pass.partition_point(|r| r.hi < client);
                (range, orders.value(i), products.value(i), b, i)
            }));
        }
        order.sort_unstable();
        let sources: Vec<&RecordBatch> = batches.iter().collect();
        for group in order.chunk_by(|a, b| a.0 == b.0) {
            for chunk in group.chunks(WRITE_BATCH_ROWS) {
                let indices: Vec<(usize, usize)> = chunk.iter().map(|r| (r.3, r.4)).collect();
                let rows = interleave_record_batch(&sources, &indices)
                    .map_err(|e| invalid(path, e.to_string()))?;
                file.write(&rows)?;
            }
            file.end_row_group()?;
            written += group.len() as u64;
        }
    }
    let mut add = file.finish(rel)?;
    add.data_change = false;
    Ok((add, written))
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
    CommitBuilder::from(crate::tables::commit_properties())
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
        // a and b fill a bin (c would pass the target); `big` is not small: clustered alone,
        // as c and `lonely`, which are not clustered yet.
        assert_eq!(
            names(&bins),
            vec![
                vec!["a", "b"],
                vec!["c"],
                vec!["big"],
                vec!["lonely"],
                vec!["y", "x"]
            ]
        );
    }

    #[test]
    fn clustered_files_are_left_alone_unless_small_ones_can_be_packed() {
        let files = vec![
            file("2026-11-02", "cluster-1-0.parquet", 100, (0, 1)),
            file("2026-11-02", "cluster-1-1.parquet", 150, (2, 3)),
            file("2026-11-02", "run", 150, (4, 5)),
            file("2026-11-03", "cluster-2-0.parquet", 10, (0, 1)),
            file("2026-11-04", "cluster-3-0.parquet", 10, (0, 1)),
            file("2026-11-04", "cluster-3-1.parquet", 10, (2, 3)),
        ];
        assert_eq!(
            names(&plan(files, 100)),
            vec![
                vec!["run"],
                vec!["cluster-3-0.parquet", "cluster-3-1.parquet"]
            ]
        );
    }

    #[test]
    fn client_ranges_hold_whole_clients_and_passes_bound_the_rows_held() {
        let clients = [1, 1, 1, 2, 3, 3, 4, 5, 5, 5, 5, 6];
        let ranges = client_ranges(&clients, 3);
        let bounds: Vec<(i64, i64, usize)> = ranges.iter().map(|r| (r.lo, r.hi, r.rows)).collect();
        assert_eq!(bounds, vec![(1, 1, 3), (2, 3, 3), (4, 5, 5), (6, 6, 1)]);
        let held = |pass_rows| -> Vec<usize> {
            passes(&ranges, pass_rows)
                .iter()
                .map(|p| p.iter().map(|r| r.rows).sum())
                .collect()
        };
        assert_eq!(held(6), vec![6, 6]);
        // A range larger than a pass is a pass alone.
        assert_eq!(held(4), vec![3, 3, 5, 1]);
        assert_eq!(passes(&ranges, 100).len(), 1);
        assert!(client_ranges(&[], 3).is_empty());
    }
}
