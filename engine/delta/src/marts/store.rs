//! The marts as Delta tables: read, rebuilt from `order_lines`, and committed whole with the
//! `order_lines` version they reflect.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{Decimal128Type, Int64Type};
use deltalake_core::DeltaTable;
use deltalake_core::kernel::transaction::CommitBuilder;
use deltalake_core::kernel::{Action, Add, Transaction};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use duff_engine::schema::{SUM_PRECISION, Table};
use duff_engine::storage::Lake;

use super::groups::{GroupKey, Groups};
use super::lines::unsorted_sequences;
use super::lines::{LineSource, Side, stream_orders};
use super::measures::{Measures, Names, prefetched};
use super::sums::{Batch, Marts, top_products};
use crate::error::Error;
use crate::files::{attempt_nonce, data_files};
use crate::lake::DeltaLake;
use crate::parquet_io::LakeFileWriter;
use crate::tables::{
    CHANNELS, CLIENT_PRODUCTS, CLIENT_STATUSES, CLIENTS, DAILY_CHANNELS, DeltaTableDef, MARTS,
    ORDER_LINES, PRODUCTS, STATUSES,
};
use crate::workspace::Workspace;

/// The `txn` application id under which each mart records the `order_lines` version it
/// reflects.
pub const REFLECTS: &str = "order_lines";

/// Rows per file of a mart: the client × product mart's millions of rows are written as
/// several files side by side.
const MART_FILE_ROWS: usize = 1 << 19;

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
        let tables = self.load_reflecting(&MARTS).await?;
        for (def, (table, reflects)) in MARTS.iter().zip(tables) {
            versions.push(reflects);
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
        marts_of(&sources, names)
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
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let adds = write_marts(work.root(), marts, names, MART_FILE_ROWS, threads)?;
        futures::future::try_join_all(
            MARTS
                .iter()
                .zip(adds)
                .map(|(def, adds)| self.commit_whole(work, def, adds, reflects)),
        )
        .await?;
        tracing::debug!(reflects, "marts committed");
        Ok(())
    }

    /// The `order_lines` version the tables `defs` all reflect, from their logs alone (`None`
    /// when they disagree or were never built).
    pub(crate) async fn reflected(&self, defs: &[DeltaTableDef]) -> Result<Option<i64>, Error> {
        let versions: Vec<Option<i64>> = self
            .load_reflecting(defs)
            .await?
            .into_iter()
            .map(|(_, reflects)| reflects)
            .collect();
        let agreed = versions.iter().all(|v| *v == versions[0]);
        Ok(if agreed { versions[0] } else { None })
    }

    /// The tables `defs` (created if missing), each with the `order_lines` version it
    /// reflects; loaded side by side (each load is mostly waits for other threads).
    pub(crate) async fn load_reflecting(
        &self,
        defs: &[DeltaTableDef],
    ) -> Result<Vec<(DeltaTable, Option<i64>)>, Error> {
        futures::future::try_join_all(defs.iter().map(|def| async move {
            let table = self.load_or_create(def).await?;
            let reflects = self.run_version(&table, def, REFLECTS).await?;
            Ok::<_, Error>((table, reflects))
        }))
        .await
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
        let add = write_file(work.root(), def, &nonce(), batch)?;
        self.commit_whole(work, def, vec![add], reflects).await
    }

    /// Commits the files `adds` (written by [`write_file`]) as the whole content of a small
    /// unpartitioned table, recording `reflects` as its `txn`.
    async fn commit_whole(
        &self,
        work: &Workspace,
        def: &DeltaTableDef,
        adds: Vec<Add>,
        reflects: i64,
    ) -> Result<(), Error> {
        let table = self.load_or_create(def).await?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut actions: Vec<Action> = data_files(&table, def)?
            .iter()
            .map(|f| f.remove(now, true))
            .collect();
        let paths: Vec<String> = adds
            .iter()
            .map(|add| format!("{}/{}", def.prefix, add.path))
            .collect();
        work.publish(&paths).await?;
        actions.extend(adds.into_iter().map(Action::Add));
        commit_reflecting(&table, def, actions, SaveMode::Overwrite, reflects).await
    }
}

/// A new file's nonce: a rewrite never collides with a crashed one's files.
fn nonce() -> String {
    format!("{:08x}", attempt_nonce())
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
    let properties = crate::tables::commit_properties()
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

/// The marts of the lines `sources` hold (every line on the `After` side).
pub(crate) fn marts_of(sources: &[LineSource<'_>], names: &mut Names) -> Result<Marts, Error> {
    let mut marts = Marts::default();
    marts.apply_sources(sources, names)?;
    Ok(marts)
}

impl Marts {
    /// Changes the marts as `sources` describe (their lines' sides), exact whatever the files'
    /// line order: the sequences out of order-id order are found first (reading `order_id`
    /// alone) and sorted in memory, so no order is ever applied twice. Lines are read and
    /// grouped by order on this thread while the batches before are added on others.
    pub(crate) fn apply_sources(
        &mut self,
        sources: &[LineSource<'_>],
        names: &mut Names,
    ) -> Result<(), Error> {
        let presorted = unsorted_sequences(sources)?;
        if !presorted.is_empty() {
            tracing::info!(
                sequences = presorted.len(),
                "lines not in order-id order: sorting those in memory"
            );
        }
        let streamed = std::thread::scope(|scope| {
            // Full batches to the adder, emptied ones back: three batches at most.
            let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Batch>(1);
            let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Batch>();
            let marts = &mut *self;
            let adder = scope.spawn(move || {
                for mut batch in full_rx {
                    marts.apply(&batch);
                    batch.clear();
                    // The reader may be done already: then the batch is not needed.
                    let _ = empty_tx.send(batch);
                }
            });
            let mut batch = Batch::default();
            let streamed = stream_orders(sources, names, &presorted, |before, after| {
                if before == after {
                    return;
                }
                batch.push(-1, before);
                batch.push(1, after);
                if batch.len() >= Batch::LINES {
                    let next = empty_rx.try_recv().unwrap_or_default();
                    // A send fails only when the adder panicked: its join says so.
                    let _ = full_tx.send(std::mem::replace(&mut batch, next));
                }
            });
            let _ = full_tx.send(batch);
            drop(full_tx);
            if let Err(panic) = adder.join() {
                std::panic::resume_unwind(panic);
            }
            streamed
        });
        self.prune();
        streamed
    }
}

/// How many groups differ between two versions of a mart (either side missing counts).
fn differing<K: GroupKey>(a: &Groups<K>, b: &Groups<K>) -> usize {
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
fn sorted<K: GroupKey + Ord>(map: &Groups<K>) -> Vec<(K, Measures)> {
    // Keys and references sort faster than whole rows.
    let mut rows: Vec<(K, &Measures)> = map.iter().map(|(k, m)| (*k, m)).collect();
    rows.sort_unstable_by_key(|(k, _)| *k);
    rows.into_iter().map(|(k, m)| (k, *m)).collect()
}

fn sorted_by_name<K: GroupKey>(
    map: &Groups<K>,
    name: impl Fn(K) -> (String, String),
) -> Vec<((String, String), Measures)> {
    let mut rows: Vec<((String, String), Measures)> =
        map.iter().map(|(k, m)| (name(*k), *m)).collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// Writes every mart under `root` as files of at most `rows_per_file` rows, side by side on
/// `threads` threads;
/// returns each mart's `add` actions, in the order of [`MARTS`]. The client × product mart is
/// most of the work: it is sorted while the others are built, and its files are built and
/// written side by side from slices of its sorted rows.
fn write_marts(
    root: &Path,
    marts: &Marts,
    names: &Names,
    rows_per_file: usize,
    threads: usize,
) -> Result<Vec<Vec<Add>>, Error> {
    let position = |name: &str| {
        MARTS
            .iter()
            .position(|def| def.name == name)
            .expect("a mart")
    };
    let (big, clients) = (position(CLIENT_PRODUCTS.name), position(CLIENTS.name));
    // The per-client mart names each client's top product: it is built from the sorted pairs.
    let (pairs, batches) = std::thread::scope(|scope| {
        let pairs = scope.spawn(|| sorted_pairs(&marts.client_products, threads));
        let batches: Vec<Result<(usize, RecordBatch), Error>> = MARTS
            .iter()
            .enumerate()
            .filter(|(m, _)| *m != big && *m != clients)
            .map(|(m, def)| mart_batch(def, marts, names).map(|b| (m, b)))
            .collect();
        (pairs.join().expect("sorting does not panic"), batches)
    });
    // The per-client mart first (a pass over every pair), then the client × product files,
    // of equal size, as many as the cores share evenly (each at most `rows_per_file` rows):
    // the small marts' files fill the gaps.
    let mut parts: Vec<Part<'_>> = vec![Part::Clients];
    if pairs.is_empty() {
        parts.push(Part::Pairs(&[]));
    }
    let files = pairs
        .len()
        .div_ceil(rows_per_file)
        .next_multiple_of(threads);
    parts.extend(
        pairs
            .chunks(pairs.len().div_ceil(files.max(1)).max(1))
            .map(Part::Pairs),
    );
    for batch in batches {
        let (m, batch) = batch?;
        parts.push(Part::Batch(m, batch));
    }
    let written = side_by_side(&parts, threads, |part| {
        // Files of at most `rows_per_file` rows (the client × product parts are already).
        let (m, batch) = match part {
            Part::Batch(m, batch) => (*m, batch.clone()),
            Part::Pairs(rows) => (big, pairs_batch(rows)?),
            Part::Clients => (clients, clients_batch(marts, &pairs)?),
        };
        let rows = batch.num_rows();
        (0..rows.div_ceil(rows_per_file).max(1))
            .map(|i| {
                let start = i * rows_per_file;
                let slice = batch.slice(start, rows_per_file.min(rows - start));
                write_file(root, &MARTS[m], &nonce(), &slice).map(|add| (m, add))
            })
            .collect::<Result<Vec<_>, Error>>()
    })
    .into_iter()
    .collect::<Result<Vec<_>, Error>>()?;
    let mut adds: Vec<Vec<Add>> = vec![Vec::new(); MARTS.len()];
    for (m, add) in written.into_iter().flatten() {
        adds[m].push(add);
    }
    Ok(adds)
}

/// File(s) of a mart to write: rows of a built batch, of the sorted client × product rows,
/// or the per-client mart (built from all of those).
enum Part<'a> {
    Batch(usize, RecordBatch),
    Pairs(&'a [((i64, i64), &'a Measures)]),
    Clients,
}

/// The client × product groups and references to their measures, sorted by group: by a
/// radix sort of the two ids packed in one word, the client's bits above as few as the
/// largest product id needs (110 000 clients and 10 500 products: 31 bits, three
/// passes), when no id is negative and both fit; else by comparison. The groups are sorted
/// in `threads` shares side by side, then merged.
pub(crate) fn sorted_pairs(
    map: &Groups<(i64, i64)>,
    threads: usize,
) -> Vec<((i64, i64), &Measures)> {
    let (mut lowest, mut clients, mut products) = (0, 0, 0);
    for &(client, product) in map.keys() {
        lowest = lowest.min(client).min(product);
        clients = clients.max(client);
        products = products.max(product);
    }
    let width = |id: i64| u64::BITS - (id as u64).leading_zeros();
    // At most 63: a non-negative i64's width.
    let product_bits = width(products);
    let packed = lowest >= 0 && width(clients) + product_bits <= u64::BITS;
    let sort = |rows: &mut Vec<((i64, i64), &Measures)>| {
        if packed {
            radix_sort_by_key(rows, |((c, p), _)| (*c as u64) << product_bits | *p as u64);
        } else {
            rows.sort_unstable_by_key(|(k, _)| *k);
        }
    };
    let parts: Vec<Vec<((i64, i64), &Measures)>> = std::thread::scope(|scope| {
        let sorting: Vec<_> = map
            .parts(threads)
            .map(|part| {
                scope.spawn(move || {
                    let mut rows: Vec<_> = part.map(|(k, m)| (*k, m)).collect();
                    sort(&mut rows);
                    rows
                })
            })
            .collect();
        sorting
            .into_iter()
            .map(|s| s.join().expect("sorting does not panic"))
            .collect()
    });
    parts
        .into_iter()
        .reduce(|a, b| merged(a, b, |row| row.0))
        .unwrap_or_default()
}

/// The items of `a` and `b`, each sorted by `key`, in one sorted vector.
fn merged<T, K: Ord>(a: Vec<T>, b: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => key(x) <= key(y),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
}

/// Sorts `items` by `key`, least significant 11 bits first; a digit every item shares
/// costs one counting pass and no move.
fn radix_sort_by_key<T: Copy>(items: &mut Vec<T>, key: impl Fn(&T) -> u64) {
    const BITS: u32 = 11;
    let Some(first) = items.first() else {
        return;
    };
    let mut scratch = vec![*first; items.len()];
    let widest = items.iter().map(&key).max().unwrap_or(0);
    let mut shift = 0;
    while shift < u64::BITS - widest.leading_zeros() {
        let digit = |item: &T| (key(item) >> shift) as usize & ((1 << BITS) - 1);
        let mut starts = vec![0usize; 1 << BITS];
        for item in items.iter() {
            starts[digit(item)] += 1;
        }
        if !starts.contains(&items.len()) {
            let mut next = 0;
            for start in &mut starts {
                (*start, next) = (next, next + *start);
            }
            for item in items.iter() {
                let d = digit(item);
                scratch[starts[d]] = *item;
                starts[d] += 1;
            }
            std::mem::swap(items, &mut scratch);
        }
        shift += BITS;
    }
}

/// Rows of the client × product mart as a batch.
fn pairs_batch(rows: &[((i64, i64), &Measures)]) -> Result<RecordBatch, Error> {
    let ints = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    let keys = vec![
        ints(rows.iter().map(|r| r.0.0).collect()),
        ints(rows.iter().map(|r| r.0.1).collect()),
    ];
    with_measures(
        &CLIENT_PRODUCTS,
        keys,
        prefetched(rows).map(|r| r.1),
        vec![],
    )
}

/// `work` on each item, on as many scoped threads as there are cores (at most one per
/// item); the results in the items' order. Scoped threads, not a pool's: what they allocate
/// goes back to the process when they end, where a pool thread's heap would keep it.
fn side_by_side<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.min(items.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = work(item);
                    done.lock()
                        .expect("no worker panics holding it")
                        .push((i, result));
                }
            });
        }
    });
    let mut done = done.into_inner().expect("no worker panicked holding it");
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// The per-client mart as a batch: each client's measures and the product of its largest
/// sales, from `pairs`, the client × product groups sorted. A client without such a group
/// (marts that do not agree) is an error, not a guess.
fn clients_batch(marts: &Marts, pairs: &[((i64, i64), &Measures)]) -> Result<RecordBatch, Error> {
    let ints = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    let rows = sorted(&marts.clients);
    let top = top_products(pairs);
    let tops = rows
        .iter()
        .map(|(client, _)| {
            top.get(client).copied().ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: client {client} has no client × product group",
                    CLIENTS.name
                ))
            })
        })
        .collect::<Result<Vec<(i64, i128)>, Error>>()?;
    let keys = vec![ints(rows.iter().map(|r| r.0).collect())];
    let extra = vec![
        ints(tops.iter().map(|t| t.0).collect()),
        sums(tops.iter().map(|t| t.1).collect())?,
    ];
    let measures: Vec<Measures> = rows.into_iter().map(|r| r.1).collect();
    with_measures(&CLIENTS, keys, &measures, extra)
}

/// A mart's rows as a batch, for the marts built from their own groups (the per-client and
/// client × product marts are built from the sorted pairs: [`clients_batch`], [`pairs_batch`]).
fn mart_batch(def: &DeltaTableDef, marts: &Marts, names: &Names) -> Result<RecordBatch, Error> {
    let table = def.engine_table.expect("a mart has columns");
    let ints = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    let texts = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
    let text = |id: u32| names.name(id).to_string();
    let (keys, measures, extra): (Vec<ArrayRef>, Vec<Measures>, Vec<ArrayRef>) = match table.name {
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
        n if n == CLIENTS.name || n == CLIENT_PRODUCTS.name => {
            return Err(Error::Invalid(format!(
                "{n}: built from the sorted client × product groups"
            )));
        }
        other => return Err(Error::Invalid(format!("{other}: not a mart"))),
    };
    with_measures(table, keys, &measures, extra)
}

/// A mart's batch: its key columns, then the measures, then `extra` columns. The measures
/// are read once, in one pass: the client × product mart's are references into its groups,
/// each likely a cache miss.
fn with_measures<'m>(
    table: &Table,
    keys: Vec<ArrayRef>,
    measures: impl IntoIterator<Item = &'m Measures>,
    extra: Vec<ArrayRef>,
) -> Result<RecordBatch, Error> {
    let ints = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    let rows = keys.first().map_or(0, |k| k.len());
    let mut counts: [Vec<i64>; 3] = std::array::from_fn(|_| Vec::with_capacity(rows));
    let mut amounts: [Vec<i128>; 2] = std::array::from_fn(|_| Vec::with_capacity(rows));
    for m in measures {
        counts[0].push(m.orders);
        counts[1].push(m.order_lines);
        counts[2].push(m.units);
        amounts[0].push(m.sales);
        amounts[1].push(m.volume);
    }
    let mut columns = keys;
    let [orders, order_lines, units] = counts;
    let [sales, volume] = amounts;
    columns.extend([ints(orders), ints(order_lines), ints(units)]);
    columns.extend([sums(sales)?, sums(volume)?]);
    columns.extend(extra);
    RecordBatch::try_new(table.arrow_schema(), columns)
        .map_err(|e| Error::Invalid(format!("{}: {e}", table.name)))
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
    let table = def.engine_table.expect("a mart has columns");
    let mut file =
        LakeFileWriter::create(&root.join(def.prefix).join(&rel), batch.schema(), table)?;
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
                    .add(rows.enumerate().map(|(i, m)| (c.value(i), m)));
            }
            n if n == CLIENT_PRODUCTS.name => {
                let (c, p) = (int("client_id")?, int("product_id")?);
                let keyed = rows.enumerate().map(|(i, m)| ((c.value(i), p.value(i)), m));
                marts.client_products.add(keyed);
            }
            n if n == PRODUCTS.name => {
                let p = int("product_id")?;
                marts
                    .products
                    .add(rows.enumerate().map(|(i, m)| (p.value(i), m)));
            }
            n if n == STATUSES.name => {
                let s = text("status", names)?;
                marts.statuses.add(rows.enumerate().map(|(i, m)| (s[i], m)));
            }
            n if n == CHANNELS.name => {
                let c = text("channel", names)?;
                marts.channels.add(rows.enumerate().map(|(i, m)| (c[i], m)));
            }
            n if n == DAILY_CHANNELS.name => {
                let (d, c) = (text("pa_date", names)?, text("channel", names)?);
                let keyed = rows.enumerate().map(|(i, m)| ((d[i], c[i]), m));
                marts.daily_channels.add(keyed);
            }
            n if n == CLIENT_STATUSES.name => {
                let (c, s) = (int("client_id")?, text("status", names)?);
                let keyed = rows.enumerate().map(|(i, m)| ((c.value(i), s[i]), m));
                marts.client_statuses.add(keyed);
            }
            other => return Err(Error::Invalid(format!("{other}: not a mart"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::measures::Line;
    use super::*;

    /// Marts with `n` client × product groups (and a few of every other mart).
    fn marts_of_size(n: i64, names: &mut Names) -> Marts {
        let (open, retail, day) = (names.id("open"), names.id("Retail"), names.id("2026-12-01"));
        let mut batch = Batch::default();
        for order in 0..n {
            let line = Line {
                order,
                client: order / 7,
                product: order % 7,
                status: open,
                channel: retail,
                day,
                units: 2,
                sales: 10_000 + order,
                volume: 3,
            };
            batch.push(1, &[line]);
        }
        let mut marts = Marts::default();
        marts.apply(&batch);
        marts
    }

    #[test]
    fn pairs_sort_as_a_comparison_sort_does() {
        let mut x: u64 = 11;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 20
        };
        let m = Measures::default();
        // Ids within 32 bits (the radix sort: small ones, and some sharing digits), with a
        // wide client (still packed), then with ids too wide together or negative (the
        // comparison sort).
        for extra in [
            vec![],
            vec![(1 << 40, 2)],
            vec![(1 << 40, 1 << 30)],
            vec![(-3, 5)],
        ] {
            let mut groups: Groups<(i64, i64)> = Groups::default();
            for i in 0..20_000u64 {
                let client = (next() % 3_000) as i64 + if i % 7 == 0 { 1 << 31 } else { 0 };
                *groups.entry((client, (next() % 500) as i64)) = m;
            }
            for k in &extra {
                *groups.entry(*k) = m;
            }
            let mut expected: Vec<(i64, i64)> = groups.keys().copied().collect();
            expected.sort_unstable();
            // Sorted whole, or in shares merged (an uneven count of them too).
            for threads in [1, 2, 3] {
                let sorted: Vec<(i64, i64)> =
                    sorted_pairs(&groups, threads).iter().map(|r| r.0).collect();
                assert_eq!(sorted, expected, "{threads} threads");
            }
        }
        assert!(sorted_pairs(&Groups::default(), 2).is_empty());
        let (a, b) = (vec![1, 4, 4, 9], vec![0, 4, 5, 10, 11]);
        assert_eq!(merged(a, b, |v| *v), [0, 1, 4, 4, 4, 5, 9, 10, 11]);
        assert_eq!(merged(vec![], vec![2], |v| *v), [2]);
        let mut few = vec![5u64, 3, 3, 0, u64::MAX, 1 << 33];
        radix_sort_by_key(&mut few, |v| *v);
        assert_eq!(few, [0, 3, 3, 5, 1 << 33, u64::MAX]);
        radix_sort_by_key(&mut Vec::<u64>::new(), |v| *v);
    }

    #[test]
    fn a_client_without_a_client_product_group_is_an_error() {
        let mut names = Names::default();
        let mut marts = marts_of_size(70, &mut names);
        let pairs = sorted_pairs(&marts.client_products, 2);
        let batch = clients_batch(&marts, &pairs).unwrap();
        assert_eq!(batch.num_rows(), marts.clients.len());
        // A client the client × product mart does not know: marts that do not agree.
        *marts.clients.entry(1_000_000) = Measures::default();
        let e = clients_batch(&marts, &pairs).unwrap_err().to_string();
        assert!(
            e.contains("client 1000000 has no client × product group"),
            "{e}"
        );
        let clients = MARTS.iter().find(|d| d.name == CLIENTS.name).unwrap();
        assert!(mart_batch(clients, &marts, &names).is_err());
    }

    #[test]
    fn a_big_mart_is_written_as_several_files_that_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut names = Names::default();
        let marts = marts_of_size(2_500, &mut names);
        // One thread: files of at most 1,000 rows, of equal size.
        let one = tempfile::tempdir().unwrap();
        let adds = write_marts(one.path(), &marts, &names, 1_000, 1).unwrap();
        let sizes = |root: &Path, adds: &[Add]| -> Vec<i64> {
            adds.iter()
                .map(|a| {
                    let path = root.join(CLIENT_PRODUCTS.prefix).join(&a.path);
                    crate::parquet_io::ParquetFile::open(&path)
                        .unwrap()
                        .row_group_rows()
                        .iter()
                        .sum::<usize>() as i64
                })
                .collect()
        };
        let client_products = MARTS
            .iter()
            .position(|d| d.name == CLIENT_PRODUCTS.name)
            .unwrap();
        assert_eq!(
            sizes(one.path(), &adds[client_products]),
            vec![834, 834, 832]
        );
        // Two threads: as many files as share them evenly.
        let adds = write_marts(dir.path(), &marts, &names, 1_000, 2).unwrap();
        assert_eq!(sizes(dir.path(), &adds[client_products]), vec![625; 4]);
        let mut read = Marts::default();
        let mut read_names = Names::default();
        for (def, adds) in MARTS.iter().zip(&adds) {
            assert!(!adds.is_empty(), "{}: a file, even when small", def.name);
            for add in adds {
                let path = dir.path().join(def.prefix).join(&add.path);
                read_mart(&path, def, &mut read, &mut read_names).unwrap();
            }
        }
        // Names are interned in another order: compare through the written files' content.
        assert_eq!(read.client_products, marts.client_products);
        assert_eq!(read.clients, marts.clients);
        assert_eq!(read.products, marts.products);
        assert_eq!(read.statuses.len(), 1);
        assert_eq!(read.daily_channels.len(), 1);
    }
}
