//! The star schema over the current state. Its fact is `order_lines` itself (the grain and key
//! of `fact_orders`; see ARCHITECTURE "The lake"); its dimensions are `dim_clients_current` and
//! `dim_products_current`, the latest version of every client and product of the folded runs
//! (largest `ingested_at`, then `run_id`: the rule of `order_lines`, applied to the runs'
//! `dim_clients` and `dim_products` slices), beside the fixed `dim_status` and `dim_channels`.
//!
//! They are kept like the marts: merged with each folded run's slices, rewritten whole, and
//! committed with the `order_lines` version they reflect as their `txn`; a fold that finds them
//! behind rebuilds them from the slices of every folded run.

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, concat_batches, take_record_batch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef, TimestampMillisecondType};
use deltalake_core::DeltaTable;
use duff_engine::manifest::RunStatus;
use duff_engine::schema::{DIM_CLIENTS, DIM_PRODUCTS};
use duff_engine::storage::Lake;
use hashbrown::HashMap;
use hashbrown::hash_map::Entry;

use crate::error::Error;
use crate::files::{belongs_to_run, data_files};
use crate::lake::DeltaLake;
use crate::parquet_io::read_as;
use crate::tables::{CLIENTS_CURRENT, COMMIT_ORDER, CURRENT_DIMS, DeltaTableDef, ORDER_LINES};
use crate::workspace::Workspace;

/// The history table whose slices make each current dimension.
fn history_of(def: &DeltaTableDef) -> DeltaTableDef {
    let name = if def.name == CLIENTS_CURRENT.name {
        DIM_CLIENTS.name
    } else {
        DIM_PRODUCTS.name
    };
    *COMMIT_ORDER
        .iter()
        .find(|d| d.name == name)
        .expect("the dimensions are committed by every run")
}

/// The rows of each current dimension, in [`CURRENT_DIMS`] order, sorted by key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CurrentDims(Vec<RecordBatch>);

impl Default for CurrentDims {
    fn default() -> Self {
        CurrentDims(
            CURRENT_DIMS
                .iter()
                .map(|d| RecordBatch::new_empty(schema_of(d)))
                .collect(),
        )
    }
}

impl CurrentDims {
    /// Whether every dimension is without rows.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(|b| b.num_rows() == 0)
    }

    /// Merges slices (the same dimension's rows, from history) into dimension `i`.
    fn merge(&mut self, i: usize, slices: Vec<RecordBatch>) -> Result<(), Error> {
        let mut all = vec![self.0[i].clone()];
        all.extend(slices);
        self.0[i] = latest(&schema_of(&CURRENT_DIMS[i]), &all)?;
        Ok(())
    }
}

fn schema_of(def: &DeltaTableDef) -> SchemaRef {
    def.engine_table
        .expect("a current dimension has columns")
        .arrow_schema()
}

/// One row per key (the first column), its latest version: largest `ingested_at`, then largest
/// `run_id`; sorted by key, so the same state gives the same file.
pub(crate) fn latest(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch, Error> {
    let invalid = |e: arrow::error::ArrowError| Error::Invalid(format!("a dimension: {e}"));
    let all = concat_batches(schema, batches).map_err(invalid)?;
    let keys = all.column(0).as_primitive::<Int64Type>();
    let column = |name: &str| {
        all.column_by_name(name)
            .ok_or_else(|| Error::Invalid(format!("a dimension has no column {name}")))
    };
    let at = column("ingested_at")?.as_primitive::<TimestampMillisecondType>();
    // `run_id` is dictionary-encoded, as in the history files.
    let run = cast(column("run_id")?, &DataType::Utf8).map_err(invalid)?;
    let run = run.as_string::<i32>();
    let version = |i: usize| (at.value(i), run.value(i));
    let mut best: HashMap<i64, usize> = HashMap::new();
    for i in 0..all.num_rows() {
        match best.entry(keys.value(i)) {
            Entry::Vacant(e) => {
                e.insert(i);
            }
            Entry::Occupied(mut e) => {
                if version(i) > version(*e.get()) {
                    e.insert(i);
                }
            }
        }
    }
    let mut rows: Vec<(i64, usize)> = best.into_iter().collect();
    rows.sort_unstable();
    let indices = UInt32Array::from_iter_values(rows.iter().map(|(_, i)| *i as u32));
    take_record_batch(&all, &indices).map_err(invalid)
}

impl<L: Lake> DeltaLake<L> {
    /// The rows of `files` of a table, fetched into the workspace and cast to `schema`.
    async fn read_files(
        &self,
        work: &Workspace,
        def: &DeltaTableDef,
        files: &[String],
        schema: &SchemaRef,
    ) -> Result<Vec<RecordBatch>, Error> {
        work.fetch(files.iter().map(|f| format!("{}/{f}", def.prefix)))
            .await?;
        let mut batches = Vec::new();
        for f in files {
            batches.extend(read_as(&work.root().join(def.prefix).join(f), schema)?);
        }
        Ok(batches)
    }

    /// The current dimensions as committed, and the `order_lines` version they both reflect
    /// (`None` when they disagree or were never built).
    pub(crate) async fn load_current_dims(
        &self,
        work: &Workspace,
    ) -> Result<(CurrentDims, Option<i64>), Error> {
        let mut dims = CurrentDims::default();
        let mut versions = Vec::new();
        let tables = self.load_reflecting(&CURRENT_DIMS).await?;
        // Side by side: in S3 each dimension's files are requests of their own.
        let read = CURRENT_DIMS
            .iter()
            .zip(&tables)
            .map(|(def, (table, _))| async move {
                let files: Vec<String> = data_files(table, def)?
                    .into_iter()
                    .map(|f| f.path)
                    .collect();
                self.read_files(work, def, &files, &schema_of(def)).await
            });
        let rows = futures::future::try_join_all(read).await?;
        for (i, ((_, reflects), rows)) in tables.into_iter().zip(rows).enumerate() {
            versions.push(reflects);
            dims.merge(i, rows)?;
        }
        let agreed = versions.iter().all(|v| *v == versions[0]);
        Ok((dims, if agreed { versions[0] } else { None }))
    }

    /// Merges the slices of one run into the current dimensions.
    pub(crate) async fn merge_run_dims(
        &self,
        work: &Workspace,
        dims: &mut CurrentDims,
        run_id: &str,
    ) -> Result<(), Error> {
        self.merge_runs_dims(work, dims, &[run_id]).await
    }

    async fn merge_runs_dims(
        &self,
        work: &Workspace,
        dims: &mut CurrentDims,
        run_ids: &[&str],
    ) -> Result<(), Error> {
        // Side by side: each dimension's log and files are requests of their own.
        let read = CURRENT_DIMS.iter().map(|def| async move {
            let history = history_of(def);
            let table = self.load_table(&history).await?;
            let files: Vec<String> = data_files(&table, &history)?
                .into_iter()
                .filter(|f| run_ids.iter().any(|id| belongs_to_run(&f.path, id)))
                .map(|f| f.path)
                .collect();
            self.read_files(work, &history, &files, &schema_of(def))
                .await
        });
        for (i, slices) in futures::future::try_join_all(read)
            .await?
            .into_iter()
            .enumerate()
        {
            dims.merge(i, slices)?;
        }
        Ok(())
    }

    /// The current dimensions recomputed from the slices of every run `order_lines` holds.
    pub(crate) async fn rebuild_current_dims(
        &self,
        work: &Workspace,
        current: &DeltaTable,
    ) -> Result<CurrentDims, Error> {
        let mut folded = Vec::new();
        for record in self.runs_async().await? {
            if record.status == RunStatus::Succeeded
                && self
                    .run_version(current, &ORDER_LINES, &record.run_id)
                    .await?
                    .is_some()
            {
                folded.push(record.run_id);
            }
        }
        let ids: Vec<&str> = folded.iter().map(String::as_str).collect();
        let mut dims = CurrentDims::default();
        self.merge_runs_dims(work, &mut dims, &ids).await?;
        Ok(dims)
    }

    /// Commits each current dimension whole, recording `reflects` (the `order_lines` version).
    pub(crate) async fn commit_current_dims(
        &self,
        work: &Workspace,
        dims: &CurrentDims,
        reflects: i64,
    ) -> Result<(), Error> {
        work.renew_lease().await?;
        futures::future::try_join_all(
            CURRENT_DIMS
                .iter()
                .zip(&dims.0)
                .map(|(def, batch)| self.replace_whole(work, def, batch, reflects)),
        )
        .await?;
        Ok(())
    }

    /// Compares the current dimensions with a recomputation from the folded runs' slices and
    /// returns what differs.
    pub(crate) async fn check_current_dims(&self, work: &Workspace) -> Result<Vec<String>, Error> {
        let current = self.load_or_create(&ORDER_LINES).await?;
        let version = current.version().and_then(|v| i64::try_from(v).ok());
        let (dims, reflects) = match self.load_current_dims(work).await {
            Ok(loaded) => loaded,
            Err(e) => return Ok(vec![format!("the current dimensions are unreadable: {e}")]),
        };
        if reflects != version {
            return Ok(vec![format!(
                "the current dimensions reflect order_lines version {reflects:?}, it is at \
                 {version:?} (run `duff lake fold` to rebuild them)"
            )]);
        }
        let fresh = self.rebuild_current_dims(work, &current).await?;
        Ok(CURRENT_DIMS
            .iter()
            .zip(dims.0.iter().zip(&fresh.0))
            .filter(|(_, (ours, theirs))| ours != theirs)
            .map(|(def, (ours, theirs))| {
                format!(
                    "{}: its {} row(s) differ from the {} recomputed from the folded runs' {}",
                    def.name,
                    ours.num_rows(),
                    theirs.num_rows(),
                    history_of(def).name
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{DictionaryArray, Int64Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::Int32Type;

    use super::*;

    fn clients(rows: &[(i64, &str, i64, &str)]) -> RecordBatch {
        let schema = schema_of(&CURRENT_DIMS[0]);
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(
                    TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.2))
                        .with_timezone("+00:00"),
                ),
                Arc::new(
                    rows.iter()
                        .map(|r| r.3)
                        .collect::<DictionaryArray<Int32Type>>(),
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn the_latest_version_of_each_key_wins_by_time_then_run_id() {
        let schema = schema_of(&CURRENT_DIMS[0]);
        let first = clients(&[(7, "Moe", 10, "a"), (3, "Barney", 10, "a")]);
        let later = clients(&[(7, "Moe's Tavern", 20, "b"), (5, "Homer", 5, "b")]);
        let tie = clients(&[(3, "Barney G.", 10, "c")]);
        let merged = latest(&schema, &[first.clone(), later.clone(), tie.clone()]).unwrap();
        let expected = clients(&[
            (3, "Barney G.", 10, "c"),
            (5, "Homer", 5, "b"),
            (7, "Moe's Tavern", 20, "b"),
        ]);
        assert_eq!(merged, expected);
        // Any order of arrival gives the same dimension.
        assert_eq!(latest(&schema, &[tie, later, first]).unwrap(), expected);
    }

    #[test]
    fn merging_keeps_what_no_slice_mentions() {
        let mut dims = CurrentDims::default();
        dims.merge(0, vec![clients(&[(1, "Lenny", 1, "a")])])
            .unwrap();
        dims.merge(0, vec![clients(&[(2, "Carl", 2, "b")])])
            .unwrap();
        assert_eq!(
            dims.0[0],
            clients(&[(1, "Lenny", 1, "a"), (2, "Carl", 2, "b")])
        );
        assert_eq!(dims.0[1].num_rows(), 0);
    }
}
