//! The marts as Delta tables: read, rebuilt from `order_lines`, and committed whole with the
//! `order_lines` version they reflect.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{Decimal128Type, Int64Type};
use deltalake_core::DeltaTable;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake_core::kernel::{Action, Add, Transaction};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use duff_engine::schema::{SUM_PRECISION, Table};
use duff_engine::storage::Lake;
use hashbrown::HashMap;

use super::lines::{Presorted, UNSORTED, unsorted_sequences};
use super::{
    Batch, CHANNELS, CLIENT_PRODUCTS, CLIENT_STATUSES, CLIENTS, DAILY_CHANNELS, LineSource, MARTS,
    Marts, Measures, Names, PRODUCTS, STATUSES, Side, stream_orders,
};
use crate::error::Error;
use crate::lake::{DeltaLake, attempt_nonce, data_files};
use crate::parquet_io::LakeFileWriter;
use crate::tables::{DeltaTableDef, ORDER_LINES};
use crate::workspace::Workspace;

/// The `txn` application id under which each mart records the `order_lines` version it
/// reflects.
pub const REFLECTS: &str = "order_lines";

impl<L: Lake> DeltaLake<L> {
    /// The marts as committed, and the `order_lines` version they all reflect (`None` when
    /// they disagree or were never built).
    pub(crate) async fn load_marts(
        &self,
        work: &Workspace,
        names: &mut Names,
    ) -> Result<(Marts, Option<i64>), Error> {
        let mut marts = Marts::default();
        let mut versions = Vec::new();
        for def in &MARTS {
            let table = self.load_or_create(def).await?;
            versions.push(self.run_version(&table, def, REFLECTS).await?);
            let files = data_files(&table, def)?;
            work.fetch(files.iter().map(|f| format!("{}/{}", def.prefix, f.path)))
                .await?;
            for f in files {
                let path = work.root().join(def.prefix).join(&f.path);
                read_mart(&path, def, &mut marts, names)?;
            }
        }
        let first = versions[0];
        let agreed = versions.iter().all(|v| *v == first);
        Ok((marts, if agreed { first } else { None }))
    }

    /// The marts recomputed from every line of `order_lines`.
    pub(crate) async fn rebuild_marts(
        &self,
        work: &Workspace,
        current: &DeltaTable,
        names: &mut Names,
    ) -> Result<Marts, Error> {
        let files = data_files(current, &ORDER_LINES)?;
        work.fetch(
            files
                .iter()
                .map(|f| format!("{}/{}", ORDER_LINES.prefix, f.path)),
        )
        .await?;
        let sources: Vec<LineSource<'_>> = files
            .into_iter()
            .map(|f| LineSource {
                path: work.root().join(ORDER_LINES.prefix).join(&f.path),
                day: day_of(&f.partition_values),
                sides: Box::new(|_, _| Some(Side::After)),
            })
            .collect();
        marts_delta(&sources, names)
    }

    /// Compares the marts with a recomputation from `order_lines` and returns what differs.
    pub(crate) async fn check_marts(&self, work: &Workspace) -> Result<Vec<String>, Error> {
        let mut names = Names::default();
        let current = self.load_or_create(&ORDER_LINES).await?;
        let (marts, reflects) = match self.load_marts(work, &mut names).await {
            Ok(loaded) => loaded,
            Err(e) => return Ok(vec![format!("the marts are unreadable: {e}")]),
        };
        let version = current.version().and_then(|v| i64::try_from(v).ok());
        if reflects != version {
            return Ok(vec![format!(
                "the marts reflect order_lines version {reflects:?}, it is at {version:?} \
                 (run `duff lake fold` to rebuild them)"
            )]);
        }
        let fresh = match self.rebuild_marts(work, &current, &mut names).await {
            Ok(fresh) => fresh,
            Err(e) => return Ok(vec![format!("the marts not checked: {e}")]),
        };
        let mut problems = Vec::new();
        for (mart, theirs, ours) in [
            (
                &CLIENTS,
                marts.clients.len(),
                differing(&marts.clients, &fresh.clients),
            ),
            (
                &CLIENT_PRODUCTS,
                marts.client_products.len(),
                differing(&marts.client_products, &fresh.client_products),
            ),
            (
                &PRODUCTS,
                marts.products.len(),
                differing(&marts.products, &fresh.products),
            ),
            (
                &STATUSES,
                marts.statuses.len(),
                differing(&marts.statuses, &fresh.statuses),
            ),
            (
                &CHANNELS,
                marts.channels.len(),
                differing(&marts.channels, &fresh.channels),
            ),
            (
                &DAILY_CHANNELS,
                marts.daily_channels.len(),
                differing(&marts.daily_channels, &fresh.daily_channels),
            ),
            (
                &CLIENT_STATUSES,
                marts.client_statuses.len(),
                differing(&marts.client_statuses, &fresh.client_statuses),
            ),
        ] {
            if ours > 0 {
                problems.push(format!(
                    "{}: {ours} of its {theirs} row(s) differ from a recomputation from order_lines",
                    mart.name
                ));
            }
        }
        Ok(problems)
    }

    /// Writes each mart as one file and commits it in place of the mart's files, recording
    /// `reflects` (the `order_lines` version) as the mart's `txn`.
    pub(crate) async fn commit_marts(
        &self,
        work: &Workspace,
        marts: &Marts,
        names: &Names,
        reflects: i64,
    ) -> Result<(), Error> {
        work.renew_lease().await?;
        for def in &MARTS {
            let batch = mart_batch(def, marts, names)?;
            self.replace_whole(work, def, &batch, reflects).await?;
        }
        tracing::debug!(reflects, "marts committed");
        Ok(())
    }

    /// The `order_lines` version the tables `defs` all reflect, from their logs alone (`None`
    /// when they disagree or were never built).
    pub(crate) async fn reflected(&self, defs: &[DeltaTableDef]) -> Result<Option<i64>, Error> {
        let mut versions = Vec::new();
        for def in defs {
            let table = self.load_or_create(def).await?;
            versions.push(self.run_version(&table, def, REFLECTS).await?);
        }
        let agreed = versions.iter().all(|v| *v == versions[0]);
        Ok(if agreed { versions[0] } else { None })
    }

    /// Records that the tables `defs`, unchanged, reflect `order_lines` version `reflects`: a
    /// commit of their `txn` alone, no file read or written (after a compaction, which moves
    /// rows without changing them).
    pub(crate) async fn reaffirm(
        &self,
        defs: &[DeltaTableDef],
        reflects: i64,
    ) -> Result<(), Error> {
        for def in defs {
            let table = self.load_or_create(def).await?;
            commit_reflecting(&table, def, Vec::new(), SaveMode::Append, reflects).await?;
        }
        Ok(())
    }

    /// Commits `batch` as the whole content of a small unpartitioned table (one file in place
    /// of its files), recording `reflects` (the `order_lines` version) as its `txn`.
    pub(crate) async fn replace_whole(
        &self,
        work: &Workspace,
        def: &DeltaTableDef,
        batch: &RecordBatch,
        reflects: i64,
    ) -> Result<(), Error> {
        let nonce = format!("{:08x}", attempt_nonce());
        let table = self.load_or_create(def).await?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut actions: Vec<Action> = data_files(&table, def)?
            .iter()
            .map(|f| f.remove(now, true))
            .collect();
        let add = write_file(work.root(), def, &nonce, batch)?;
        work.publish(&[format!("{}/{}", def.prefix, add.path)])
            .await?;
        actions.push(Action::Add(add));
        commit_reflecting(&table, def, actions, SaveMode::Overwrite, reflects).await
    }
}

/// Commits `actions` to `table` with `reflects` (the `order_lines` version) as its `txn`.
async fn commit_reflecting(
    table: &DeltaTable,
    def: &DeltaTableDef,
    actions: Vec<Action>,
    mode: SaveMode,
    reflects: i64,
) -> Result<(), Error> {
    let snapshot = table
        .snapshot()
        .map_err(|e| Error::delta(def.name, "snapshot", e))?;
    let properties = CommitProperties::default()
        .with_application_transaction(Transaction::new(REFLECTS, reflects));
    CommitBuilder::from(properties)
        .with_actions(actions)
        .build(
            Some(snapshot),
            table.log_store(),
            DeltaOperation::Write {
                mode,
                partition_by: None,
                predicate: None,
            },
        )
        .await
        .map_err(|e| Error::delta(def.name, "commit", e))?;
    Ok(())
}

/// The change of the marts that `sources` describe (their lines' sides), exact whatever the
/// files' line order.
pub(crate) fn marts_delta(sources: &[LineSource<'_>], names: &mut Names) -> Result<Marts, Error> {
    let mut change = Change::default();
    match stream_orders(sources, names, &Presorted::new(), |b, a| change.order(b, a)) {
        Ok(()) => {}
        Err(Error::Invalid(m)) if m.ends_with(UNSORTED) => {
            let presorted = unsorted_sequences(sources)?;
            tracing::info!(
                sequences = presorted.len(),
                "{m}: sorting the lines of those in memory"
            );
            change = Change::default();
            stream_orders(sources, names, &presorted, |b, a| change.order(b, a))?;
        }
        Err(e) => return Err(e),
    }
    Ok(change.finish())
}

/// The marts' change, accumulated order by order in batches.
#[derive(Default)]
struct Change {
    delta: Marts,
    batch: Batch,
}

impl Change {
    fn order(&mut self, before: &[super::Line], after: &[super::Line]) {
        if before == after {
            return;
        }
        self.batch.push(-1, before);
        self.batch.push(1, after);
        if self.batch.len() >= Batch::LINES {
            self.delta.apply(&self.batch);
            self.batch.clear();
        }
    }

    fn finish(mut self) -> Marts {
        self.delta.apply(&self.batch);
        self.delta
    }
}

impl Marts {
    /// Adds another set of marts (a fold's change) to these, dropping emptied groups.
    pub(crate) fn add(&mut self, other: Marts) {
        fn merge<K: std::hash::Hash + Eq>(
            to: &mut HashMap<K, Measures>,
            from: HashMap<K, Measures>,
        ) {
            if to.is_empty() {
                *to = from;
                return;
            }
            for (k, m) in from {
                let t = to.entry(k).or_default();
                t.orders += m.orders;
                t.order_lines += m.order_lines;
                t.units += m.units;
                t.sales += m.sales;
                t.volume += m.volume;
            }
        }
        merge(&mut self.clients, other.clients);
        merge(&mut self.client_products, other.client_products);
        merge(&mut self.products, other.products);
        merge(&mut self.statuses, other.statuses);
        merge(&mut self.channels, other.channels);
        merge(&mut self.daily_channels, other.daily_channels);
        merge(&mut self.client_statuses, other.client_statuses);
        self.prune();
    }
}

/// How many groups differ between two versions of a mart (either side missing counts).
fn differing<K: std::hash::Hash + Eq>(a: &HashMap<K, Measures>, b: &HashMap<K, Measures>) -> usize {
    let changed = a.iter().filter(|(k, m)| b.get(*k) != Some(*m)).count();
    changed + b.keys().filter(|k| !a.contains_key(*k)).count()
}

pub(crate) fn day_of(
    partition_values: &std::collections::HashMap<String, Option<String>>,
) -> String {
    partition_values
        .get(duff_engine::schema::PARTITION_COLUMN)
        .cloned()
        .flatten()
        .unwrap_or_default()
}

/// Rows sorted by their group, so a mart's file is the same for the same state.
fn sorted<K: Ord + Copy>(map: &HashMap<K, Measures>) -> Vec<(K, Measures)> {
    let mut rows: Vec<(K, Measures)> = map.iter().map(|(k, m)| (*k, *m)).collect();
    rows.sort_unstable_by_key(|(k, _)| *k);
    rows
}

fn sorted_by_name<K: Copy>(
    map: &HashMap<K, Measures>,
    name: impl Fn(K) -> (String, String),
) -> Vec<((String, String), Measures)> {
    let mut rows: Vec<((String, String), Measures)> =
        map.iter().map(|(k, m)| (name(*k), *m)).collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows
}

fn mart_batch(def: &DeltaTableDef, marts: &Marts, names: &Names) -> Result<RecordBatch, Error> {
    let table = def.engine_table.expect("a mart has columns");
    let ints = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    let texts = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
    let text = |id: u32| names.name(id).to_string();
    let (keys, measures, extra): (Vec<ArrayRef>, Vec<Measures>, Vec<ArrayRef>) = match table.name {
        n if n == CLIENTS.name => {
            let rows = sorted(&marts.clients);
            let top = marts.top_products();
            let keys = vec![ints(rows.iter().map(|r| r.0).collect())];
            let extra = vec![
                ints(rows.iter().map(|r| top[&r.0].0).collect()),
                sums(rows.iter().map(|r| top[&r.0].1).collect())?,
            ];
            (keys, rows.into_iter().map(|r| r.1).collect(), extra)
        }
        n if n == CLIENT_PRODUCTS.name => {
            let rows = sorted(&marts.client_products);
            let keys = vec![
                ints(rows.iter().map(|r| r.0.0).collect()),
                ints(rows.iter().map(|r| r.0.1).collect()),
            ];
            (keys, rows.into_iter().map(|r| r.1).collect(), vec![])
        }
        n if n == PRODUCTS.name => {
            let rows = sorted(&marts.products);
            let keys = vec![ints(rows.iter().map(|r| r.0).collect())];
            (keys, rows.into_iter().map(|r| r.1).collect(), vec![])
        }
        n if n == STATUSES.name || n == CHANNELS.name => {
            let map = if n == STATUSES.name {
                &marts.statuses
            } else {
                &marts.channels
            };
            let rows = sorted_by_name(map, |k| (text(k), String::new()));
            let keys = vec![texts(rows.iter().map(|r| r.0.0.clone()).collect())];
            (keys, rows.into_iter().map(|r| r.1).collect(), vec![])
        }
        n if n == DAILY_CHANNELS.name => {
            let rows = sorted_by_name(&marts.daily_channels, |(d, c)| (text(d), text(c)));
            let keys = vec![
                texts(rows.iter().map(|r| r.0.0.clone()).collect()),
                texts(rows.iter().map(|r| r.0.1.clone()).collect()),
            ];
            (keys, rows.into_iter().map(|r| r.1).collect(), vec![])
        }
        n if n == CLIENT_STATUSES.name => {
            let mut rows: Vec<((i64, String), Measures)> = marts
                .client_statuses
                .iter()
                .map(|((c, s), m)| ((*c, text(*s)), *m))
                .collect();
            rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let keys = vec![
                ints(rows.iter().map(|r| r.0.0).collect()),
                texts(rows.iter().map(|r| r.0.1.clone()).collect()),
            ];
            (keys, rows.into_iter().map(|r| r.1).collect(), vec![])
        }
        other => return Err(Error::Invalid(format!("{other}: not a mart"))),
    };
    let mut columns = keys;
    columns.push(ints(measures.iter().map(|m| m.orders).collect()));
    columns.push(ints(measures.iter().map(|m| m.order_lines).collect()));
    columns.push(ints(measures.iter().map(|m| m.units).collect()));
    columns.push(sums(measures.iter().map(|m| m.sales).collect())?);
    columns.push(sums(measures.iter().map(|m| m.volume).collect())?);
    columns.extend(extra);
    RecordBatch::try_new(table.arrow_schema(), columns)
        .map_err(|e| Error::Invalid(format!("{}: {e}", def.name)))
}

fn sums(values: Vec<i128>) -> Result<ArrayRef, Error> {
    Ok(Arc::new(
        Decimal128Array::from(values)
            .with_precision_and_scale(SUM_PRECISION, duff_engine::number::SCALE as i8)
            .map_err(|e| Error::Invalid(format!("a sum: {e}")))?,
    ))
}

pub(crate) fn write_file(
    root: &Path,
    def: &DeltaTableDef,
    nonce: &str,
    batch: &RecordBatch,
) -> Result<Add, Error> {
    let rel = format!("part-{nonce}.parquet");
    let mut file = LakeFileWriter::create(&root.join(def.prefix).join(&rel), batch.schema())?;
    file.write(batch)?;
    file.finish(rel)
}

fn read_mart(
    path: &Path,
    def: &DeltaTableDef,
    marts: &mut Marts,
    names: &mut Names,
) -> Result<(), Error> {
    let reader = crate::parquet_io::open_all(path)?;
    let table: &Table = def.engine_table.expect("a mart has columns");
    for batch in reader {
        let batch = batch.map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| Error::Invalid(format!("{}: no column {name}", path.display())))
        };
        let int = |name: &str| col(name).map(|a| a.as_primitive::<Int64Type>().clone());
        let sum = |name: &str| col(name).map(|a| a.as_primitive::<Decimal128Type>().clone());
        let text = |name: &str, names: &mut Names| {
            col(name).map(|a| {
                let a = a.as_string::<i32>();
                (0..a.len())
                    .map(|i| names.id(a.value(i)))
                    .collect::<Vec<u32>>()
            })
        };
        let (orders, lines, units) = (int("orders")?, int("order_lines")?, int("units")?);
        let (sales, volume) = (sum("sales")?, sum("volume")?);
        let rows = (0..batch.num_rows()).map(|i| Measures {
            orders: orders.value(i),
            order_lines: lines.value(i),
            units: units.value(i),
            sales: sales.value(i),
            volume: volume.value(i),
        });
        match table.name {
            n if n == CLIENTS.name => {
                let c = int("client_id")?;
                marts
                    .clients
                    .extend(rows.enumerate().map(|(i, m)| (c.value(i), m)));
            }
            n if n == CLIENT_PRODUCTS.name => {
                let (c, p) = (int("client_id")?, int("product_id")?);
                let keyed = rows.enumerate().map(|(i, m)| ((c.value(i), p.value(i)), m));
                marts.client_products.extend(keyed);
            }
            n if n == PRODUCTS.name => {
                let p = int("product_id")?;
                marts
                    .products
                    .extend(rows.enumerate().map(|(i, m)| (p.value(i), m)));
            }
            n if n == STATUSES.name => {
                let s = text("status", names)?;
                marts
                    .statuses
                    .extend(rows.enumerate().map(|(i, m)| (s[i], m)));
            }
            n if n == CHANNELS.name => {
                let c = text("channel", names)?;
                marts
                    .channels
                    .extend(rows.enumerate().map(|(i, m)| (c[i], m)));
            }
            n if n == DAILY_CHANNELS.name => {
                let (d, c) = (text("pa_date", names)?, text("channel", names)?);
                let keyed = rows.enumerate().map(|(i, m)| ((d[i], c[i]), m));
                marts.daily_channels.extend(keyed);
            }
            n if n == CLIENT_STATUSES.name => {
                let (c, s) = (int("client_id")?, text("status", names)?);
                let keyed = rows.enumerate().map(|(i, m)| ((c.value(i), s[i]), m));
                marts.client_statuses.extend(keyed);
            }
            other => return Err(Error::Invalid(format!("{other}: not a mart"))),
        }
    }
    Ok(())
}
