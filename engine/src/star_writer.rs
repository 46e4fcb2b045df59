//! The writer of the two big tables, `orders` and `fact_orders`, which hold the same rows.
//!
//! Eleven of fact_orders' thirteen columns carry the values of an orders column (ids, units,
//! prices, totals, lineage). Each such column is encoded once and its encoded pages are spliced
//! into both files; before, a third of the engine's CPU went to encoding them a second time. The
//! columns are encoded on [`ENCODERS`] threads, each owning a fixed set of them, and one more
//! thread splices every row group into the part files.
//!
//! Row groups close at a number of rows or of bytes of data counted from the values alone, and
//! batches reach the encoders cut at fixed multiples of `batch_rows`, so every encoder closes
//! its row groups after the same rows and the files depend only on the data, never on thread
//! counts or window sizes.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::types::ColumnDescPtr;

use crate::dict_chunk::{ColumnEncoder, EncodedChunk};
use crate::error::Error;
use crate::schema::{FACT_ORDERS, ORDERS, Table};
use crate::splice::{TeePages, relocate, retarget, splice_error};
use crate::storage::{ObjectWriter, Stage};
use crate::writer::{Destination, Naming, ParquetOptions, PartFile, Parts, WrittenFile};

/// Encoder threads. Two keep both cores of the reference machine busy while the parse threads
/// wait on the next window; more would only add contention there.
pub(crate) const ENCODERS: usize = 2;

/// Ranges queued for each encoder before `send` blocks: enough to ride out a slow row group,
/// few enough that rows in flight stay a small part of peak memory.
const QUEUED_RANGES: usize = 4;

/// `fact_orders` columns whose values are an `orders` column's (fact name, orders name).
/// `assemble` builds both batches from the same arrays; the writer checks that it still does.
const FACT_FROM_ORDERS: [(&str, &str); 11] = [
    ("order_id", "order_id"),
    ("product_id", "product_id"),
    ("client_id", "client_id"),
    ("units", "product_ccf"),
    ("unit_price", "product_price"),
    ("total_price", "total_price"),
    ("total_volume", "total_volume"),
    ("source_file", "source_file"),
    ("source_line", "source_line"),
    ("ingested_at", "ingested_at"),
    ("run_id", "run_id"),
];

/// Where each fact column comes from, and which encoder encodes what.
#[derive(Debug, Clone)]
struct Plan {
    /// Per fact column: `Some(orders column)` when shared.
    fact_source: Vec<Option<usize>>,
    /// Per encoder: the columns it encodes.
    jobs: Vec<Vec<Job>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Orders(usize),
    /// A fact column of its own (not shared).
    Fact(usize),
}

impl Plan {
    fn new() -> Plan {
        let orders_index = |name: &str| ORDERS.columns.iter().position(|c| c.name == name);
        let fact_source: Vec<Option<usize>> = FACT_ORDERS
            .columns
            .iter()
            .map(|c| {
                let (_, from) = FACT_FROM_ORDERS.iter().find(|(f, _)| *f == c.name)?;
                let i = orders_index(from).expect("shared column exists in orders");
                assert_eq!(
                    ORDERS.columns[i].ty, c.ty,
                    "shared column {} changes type",
                    c.name
                );
                Some(i)
            })
            .collect();
        let all: Vec<(Job, u32)> = (0..ORDERS.columns.len())
            .map(|i| (Job::Orders(i), encode_cost(&ORDERS, i)))
            .chain(
                fact_source
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.is_none())
                    .map(|(f, _)| (Job::Fact(f), encode_cost(&FACT_ORDERS, f))),
            )
            .collect();
        let mut jobs = vec![Vec::new(); ENCODERS];
        let mut load = [0u32; ENCODERS];
        let mut sorted = all.clone();
        sorted.sort_by_key(|&(_, c)| std::cmp::Reverse(c));
        for (job, c) in sorted {
            let least = (0..ENCODERS).min_by_key(|&e| load[e]).expect("encoders");
            load[least] += c;
            jobs[least].push(job);
        }
        Plan { fact_source, jobs }
    }

    fn orders_to_fact(&self) -> Vec<Vec<usize>> {
        let mut map = vec![Vec::new(); ORDERS.columns.len()];
        for (f, s) in self.fact_source.iter().enumerate() {
            if let Some(o) = s {
                map[*o].push(f);
            }
        }
        map
    }
}

/// Each column's encoding time in ms per 2 M rows: time spent in its encoder's `write` calls on
/// the 1 GiB datagen file with two encoders (pages, RLE and compression included), measured
/// 2026-11-22 with every dictionary column written directly. The encoders are balanced by it:
/// one that gets more than its half idles the other core whenever the parse threads wait on
/// the queues. Columns of any table not listed (none today) count as a typical one.
fn encode_cost(table: &Table, i: usize) -> u32 {
    match table.columns[i].name {
        "client_name" => 73,
        "total_price" => 61,
        "client_id" => 43,
        "total_volume" => 37,
        "product_description" => 35,
        "source_line" => 24,
        "status_id" => 21,
        "channel_id" | "order_id" => 20,
        "point_of_sale_channel" => 17,
        "status" | "product_price" => 16,
        "product_ccf" => 14,
        "product_volume" => 13,
        "product_id" => 11,
        "run_id" => 7,
        "source_file" => 5,
        "ingested_at" => 2,
        _ => 20,
    }
}

/// The rows of one range for both tables.
type Lines = Arc<(RecordBatch, RecordBatch)>;

/// One row group's columns from one encoder.
struct EncodedGroup {
    orders: Vec<(usize, EncodedChunk)>,
    fact: Vec<(usize, EncodedChunk)>,
}

/// The sending half of the orders + fact writer.
pub(crate) struct StarWriter {
    senders: Vec<SyncSender<Lines>>,
    encoders: Vec<JoinHandle<Result<Duration, Error>>>,
    files: Option<JoinHandle<Result<SplicedFiles, Error>>>,
}

/// What both tables' writing took.
pub(crate) struct StarReport {
    pub orders: Vec<WrittenFile>,
    pub fact: Vec<WrittenFile>,
    /// Busy time of the encoder threads, summed.
    pub encode_busy: Duration,
    /// Busy time of the thread splicing row groups into files.
    pub splice_busy: Duration,
}

impl StarWriter {
    pub fn spawn(orders: Destination, fact: Destination, options: ParquetOptions) -> StarWriter {
        let plan = Plan::new();
        let mut senders = Vec::new();
        let mut encoders = Vec::new();
        let mut groups = Vec::new();
        for (e, jobs) in plan.jobs.iter().enumerate() {
            let (tx, rx) = sync_channel::<Lines>(QUEUED_RANGES);
            let (group_tx, group_rx) = sync_channel::<EncodedGroup>(1);
            let (jobs, plan, options) = (jobs.clone(), plan.clone(), options.clone());
            let handle = std::thread::Builder::new()
                .name(format!("encode-orders-{e}"))
                .spawn(move || encode(jobs, &plan, &options, rx, group_tx))
                .expect("spawn encoder thread");
            senders.push(tx);
            encoders.push(handle);
            groups.push(group_rx);
        }
        let files = std::thread::Builder::new()
            .name("write-orders".into())
            .spawn(move || splice(orders, fact, &options, groups))
            .expect("spawn writer thread");
        StarWriter {
            senders,
            encoders,
            files: Some(files),
        }
    }

    /// Queues the rows of one range (the same rows in both batches); blocks while the encoders
    /// are behind (bounded memory). `Err(WriterStopped)` when a thread stopped on an error, which
    /// [`StarWriter::finish`] reports.
    pub fn send(&self, orders: RecordBatch, fact: RecordBatch) -> Result<(), Error> {
        if orders.num_rows() == 0 {
            return Ok(());
        }
        let lines = Arc::new((orders, fact));
        for tx in &self.senders {
            tx.send(lines.clone()).map_err(|_| Error::WriterStopped)?;
        }
        Ok(())
    }

    /// No more rows: the threads write what they have and end, while the caller goes on.
    pub fn close(&mut self) {
        self.senders.clear();
    }

    /// Waits for every thread; the first error that is not merely another thread stopping wins
    /// (a storage error in the file thread explains the encoders' closed channels).
    pub fn finish(&mut self) -> Result<StarReport, Error> {
        self.senders.clear();
        let mut encode_busy = Duration::ZERO;
        let mut errors = Vec::new();
        for handle in self.encoders.drain(..) {
            match handle.join().map_err(|_| Error::WriterPanicked)? {
                Ok(busy) => encode_busy += busy,
                Err(e) => errors.push(e),
            }
        }
        let files = self.files.take().expect("finished once");
        let files = match files.join().map_err(|_| Error::WriterPanicked)? {
            Ok(files) if errors.is_empty() => files,
            Ok(_) => return Err(first_cause(errors)),
            Err(e) => {
                errors.insert(0, e);
                return Err(first_cause(errors));
            }
        };
        Ok(StarReport {
            orders: files.orders,
            fact: files.fact,
            encode_busy,
            splice_busy: files.busy,
        })
    }
}

/// Writes `orders` and `fact_orders` batches of the same rows as a run does — each shared
/// column encoded once and spliced into both tables, dictionary columns written directly — into
/// part files of `stage` under `orders/` and `fact_orders/`, and returns the files. The
/// Parquet-encoding benchmark measures this beside [`encode_batches`](crate::writer::encode_batches).
/// A fact batch's shared columns are taken from its orders batch (in a run they are the same
/// arrays), so batches read back from a lake may be given.
pub fn write_orders_and_fact(
    stage: Arc<dyn Stage>,
    batches: &[(RecordBatch, RecordBatch)],
    options: &ParquetOptions,
) -> Result<Vec<WrittenFile>, Error> {
    let destination = |table: &Table| Destination {
        stage: stage.clone(),
        dir: table.prefix.to_string(),
        stem: "encode".to_string(),
        naming: Naming::Parts,
    };
    let plan = Plan::new();
    let mut writer = StarWriter::spawn(
        destination(&ORDERS),
        destination(&FACT_ORDERS),
        options.clone(),
    );
    for (orders, fact) in batches {
        let columns = plan
            .fact_source
            .iter()
            .enumerate()
            .map(|(f, source)| match source {
                Some(o) => orders.column(*o).clone(),
                None => fact.column(f).clone(),
            })
            .collect();
        let fact = RecordBatch::try_new(fact.schema(), columns)?;
        if writer.send(orders.clone(), fact).is_err() {
            break; // `finish` reports why.
        }
    }
    let report = writer.finish()?;
    Ok(report.orders.into_iter().chain(report.fact).collect())
}

/// The first error that is not merely a thread stopping because another one did.
fn first_cause(mut errors: Vec<Error>) -> Error {
    let first = errors
        .iter()
        .position(|e| !matches!(e, Error::WriterStopped))
        .unwrap_or(0);
    errors.swap_remove(first)
}

/// No thread outlives the run: when a run stops early, the threads finish what they were given
/// (at most a few ranges) before the stage is aborted.
impl Drop for StarWriter {
    fn drop(&mut self) {
        if self.files.is_some() {
            let _ = self.finish();
        }
    }
}

/// One encoder thread: its columns of every row group.
fn encode(
    jobs: Vec<Job>,
    plan: &Plan,
    options: &ParquetOptions,
    rx: Receiver<Lines>,
    out: SyncSender<EncodedGroup>,
) -> Result<Duration, Error> {
    let batch_rows = options.batch_rows;
    let group_rows = options.row_group_rows.div_ceil(batch_rows).max(1) * batch_rows;
    let tee = Arc::new(TeePages::default());
    let (orders_factory, orders_descr) = column_factory(&ORDERS, options)?;
    let orders_factory = orders_factory.with_page_store_factory(tee.clone());
    let (fact_factory, fact_descr) = column_factory(&FACT_ORDERS, options)?;
    let factories = Factories {
        orders: &orders_factory,
        fact: &fact_factory,
        orders_descr: &orders_descr,
        fact_descr: &fact_descr,
        orders_props: options.properties(&ORDERS),
        fact_props: options.properties(&FACT_ORDERS),
    };
    let shared_with = plan.orders_to_fact();

    let mut busy = Duration::ZERO;
    let mut group = 0;
    let mut writers: Option<Vec<ColumnEncoder>> = None;
    let mut rows_in_group = 0;
    let mut bytes_in_group = 0;
    // Pieces of the next `batch_rows` slice, per job, when a range ends mid-slice.
    let mut pending: Vec<Vec<ArrayRef>> = vec![Vec::new(); jobs.len()];
    let mut pending_rows = 0;

    let close_group = |writers: Vec<ColumnEncoder>, group: &mut usize| {
        let mut encoded = EncodedGroup {
            orders: Vec::new(),
            fact: Vec::new(),
        };
        let pages = tee.take();
        for (job, writer) in jobs.iter().zip(writers) {
            let chunk = writer.close()?;
            match *job {
                Job::Orders(i) => {
                    for &f in &shared_with[i] {
                        let (bytes, close) = match &chunk {
                            EncodedChunk::Arrow(chunk) => {
                                let blobs = pages.iter().find(|(c, _)| *c == i).map(|(_, b)| b);
                                let blobs = blobs
                                    .ok_or_else(|| splice_error("no tee for a shared column"))?;
                                let blobs = blobs.lock().expect("tee lock").clone();
                                relocate(blobs, chunk.close())?
                            }
                            // Already in file order.
                            EncodedChunk::Bytes { bytes, close } => (bytes.clone(), close.clone()),
                        };
                        let close = retarget(&close, fact_descr[f].clone())?;
                        encoded.fact.push((f, EncodedChunk::Bytes { bytes, close }));
                    }
                    encoded.orders.push((i, chunk));
                }
                Job::Fact(f) => encoded.fact.push((f, chunk)),
            }
        }
        *group += 1;
        // The file thread stopped on an error, which `finish` reports: stop too.
        out.send(encoded).map_err(|_| Error::WriterStopped)
    };

    for lines in rx {
        let t = Instant::now();
        let (orders, fact) = (&lines.0, &lines.1);
        check_shared(plan, orders, fact)?;
        let n = orders.num_rows();
        let mut offset = 0;
        while offset < n {
            let take = (batch_rows - pending_rows).min(n - offset);
            for (j, job) in jobs.iter().enumerate() {
                let column = match *job {
                    Job::Orders(i) => orders.column(i),
                    Job::Fact(f) => fact.column(f),
                };
                pending[j].push(column.slice(offset, take));
            }
            bytes_in_group += data_bytes(orders, offset, take);
            offset += take;
            pending_rows += take;
            if pending_rows < batch_rows {
                continue;
            }
            let ws = match &mut writers {
                Some(ws) => ws,
                None => writers.insert(open_group(&jobs, &factories, group, &pending)?),
            };
            write_slice(ws, &mut pending)?;
            rows_in_group += pending_rows;
            pending_rows = 0;
            if rows_in_group == group_rows || bytes_in_group >= options.row_group_bytes {
                close_group(writers.take().expect("open"), &mut group)?;
                rows_in_group = 0;
                bytes_in_group = 0;
            }
        }
        busy += t.elapsed();
    }
    let t = Instant::now();
    if pending_rows > 0 {
        let ws = match &mut writers {
            Some(ws) => ws,
            None => writers.insert(open_group(&jobs, &factories, group, &pending)?),
        };
        write_slice(ws, &mut pending)?;
    }
    if let Some(ws) = writers.take() {
        close_group(ws, &mut group)?;
    }
    Ok(busy + t.elapsed())
}

/// Bytes of data in rows `offset..offset + len` of an orders batch, before encoding: computed
/// from the values alone, so every encoder closes its row groups after the same rows.
fn data_bytes(batch: &RecordBatch, offset: usize, len: usize) -> usize {
    use arrow::array::AsArray;
    use arrow::datatypes::DataType;
    batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8 => {
                let offsets = c.as_string::<i32>().value_offsets();
                (offsets[offset + len] - offsets[offset]) as usize + 4 * len
            }
            DataType::Dictionary(key, _) => key.primitive_width().unwrap_or(4) * len,
            other => other.primitive_width().unwrap_or(8) * len,
        })
        .sum()
}

/// Refuses batches where a shared fact column is not the orders column it is spliced from.
fn check_shared(plan: &Plan, orders: &RecordBatch, fact: &RecordBatch) -> Result<(), Error> {
    for (f, source) in plan.fact_source.iter().enumerate() {
        if let Some(o) = source
            && !Arc::ptr_eq(fact.column(f), orders.column(*o))
        {
            return Err(splice_error(&format!(
                "fact_orders.{} is not orders.{}",
                FACT_ORDERS.columns[f].name, ORDERS.columns[*o].name
            )));
        }
    }
    Ok(())
}

/// What an encoder needs to open a row group's column writers.
struct Factories<'a> {
    orders: &'a ArrowRowGroupWriterFactory,
    fact: &'a ArrowRowGroupWriterFactory,
    orders_descr: &'a [ColumnDescPtr],
    fact_descr: &'a [ColumnDescPtr],
    orders_props: WriterProperties,
    fact_props: WriterProperties,
}

/// The column encoders of row group `group`, one per job; `first` holds each job's first rows,
/// which decide whether a column can be written directly.
fn open_group(
    jobs: &[Job],
    factories: &Factories<'_>,
    group: usize,
    first: &[Vec<ArrayRef>],
) -> Result<Vec<ColumnEncoder>, Error> {
    let mut orders: Vec<Option<ArrowColumnWriter>> = factories
        .orders
        .create_column_writers(group)?
        .into_iter()
        .map(Some)
        .collect();
    let mut fact: Vec<Option<ArrowColumnWriter>> = factories
        .fact
        .create_column_writers(group)?
        .into_iter()
        .map(Some)
        .collect();
    Ok(jobs
        .iter()
        .zip(first)
        .map(|(job, first)| {
            let (table, i, descr, props, general) = match *job {
                Job::Orders(i) => (
                    &ORDERS,
                    i,
                    factories.orders_descr,
                    &factories.orders_props,
                    &mut orders,
                ),
                Job::Fact(f) => (
                    &FACT_ORDERS,
                    f,
                    factories.fact_descr,
                    &factories.fact_props,
                    &mut fact,
                ),
            };
            ColumnEncoder::new(
                table.arrow_schema().fields()[i].clone(),
                descr[i].clone(),
                props,
                general[i].take().expect("one writer per column"),
                first.first().map(|a| a.as_ref()),
            )
        })
        .collect())
}

fn write_slice(writers: &mut [ColumnEncoder], pending: &mut [Vec<ArrayRef>]) -> Result<(), Error> {
    for (writer, pieces) in writers.iter_mut().zip(pending) {
        let array = if pieces.len() == 1 {
            pieces.pop().expect("one piece")
        } else {
            let parts: Vec<&dyn arrow::array::Array> = pieces.iter().map(|a| a.as_ref()).collect();
            let joined = arrow::compute::concat(&parts)?;
            pieces.clear();
            joined
        };
        writer.write(&array)?;
    }
    Ok(())
}

/// A column-writer factory with the engine's settings for `table`, and the table's Parquet
/// column descriptors (as its files have them).
fn column_factory(
    table: &'static Table,
    options: &ParquetOptions,
) -> Result<(ArrowRowGroupWriterFactory, Vec<ColumnDescPtr>), Error> {
    let writer = ArrowWriter::try_new(
        std::io::sink(),
        table.arrow_schema(),
        Some(options.properties(table)),
    )?;
    let (file, factory) = writer.into_serialized_writer()?;
    Ok((factory, file.schema_descr().columns().to_vec()))
}

/// The file thread: takes each row group from every encoder and splices it into both tables'
/// part files.
/// What the file thread wrote, and how long it was busy.
struct SplicedFiles {
    orders: Vec<WrittenFile>,
    fact: Vec<WrittenFile>,
    busy: Duration,
}

fn splice(
    orders: Destination,
    fact: Destination,
    options: &ParquetOptions,
    groups: Vec<Receiver<EncodedGroup>>,
) -> Result<SplicedFiles, Error> {
    let mut orders_files = Parts::<FileWriter>::new(&ORDERS, orders, options);
    let mut fact_files = Parts::<FileWriter>::new(&FACT_ORDERS, fact, options);
    let mut busy = Duration::ZERO;
    'groups: loop {
        let mut orders_chunks: Vec<Option<EncodedChunk>> =
            (0..ORDERS.columns.len()).map(|_| None).collect();
        let mut fact_chunks: Vec<Option<EncodedChunk>> =
            (0..FACT_ORDERS.columns.len()).map(|_| None).collect();
        for (e, rx) in groups.iter().enumerate() {
            let Ok(group) = rx.recv() else {
                // Encoders end together (same rows); one ending early stopped on an error.
                if e == 0 {
                    break 'groups;
                }
                return Err(Error::WriterStopped);
            };
            for (i, chunk) in group.orders {
                orders_chunks[i] = Some(chunk);
            }
            for (f, chunk) in group.fact {
                fact_chunks[f] = Some(chunk);
            }
        }
        let t = Instant::now();
        write_group(&mut orders_files, |rg| {
            for chunk in orders_chunks {
                chunk.expect("every orders column encoded").append_to(rg)?;
            }
            Ok(())
        })?;
        write_group(&mut fact_files, |rg| {
            for chunk in fact_chunks {
                chunk.expect("every fact column encoded").append_to(rg)?;
            }
            Ok(())
        })?;
        busy += t.elapsed();
    }
    let t = Instant::now();
    let orders = orders_files.finish()?;
    let fact = fact_files.finish()?;
    busy += t.elapsed();
    Ok(SplicedFiles { orders, fact, busy })
}

type FileWriter = SerializedFileWriter<Box<dyn ObjectWriter>>;

/// Part files written a whole encoded row group at a time.
impl PartFile for FileWriter {
    fn open(
        file: Box<dyn ObjectWriter>,
        table: &'static Table,
        options: &ParquetOptions,
    ) -> Result<Self, Error> {
        // An `ArrowWriter`'s file writer: the Arrow schema goes into the footer as usual.
        let writer =
            ArrowWriter::try_new(file, table.arrow_schema(), Some(options.properties(table)))?;
        Ok(writer.into_serialized_writer()?.0)
    }

    fn size(&self) -> u64 {
        self.bytes_written() as u64
    }

    fn close(self) -> Result<u64, Error> {
        self.into_inner()?.finish()
    }
}

/// Appends one row group to the open part of `parts`.
fn write_group(
    parts: &mut Parts<FileWriter>,
    append: impl FnOnce(
        &mut SerializedRowGroupWriter<'_, Box<dyn ObjectWriter>>,
    ) -> Result<(), ParquetError>,
) -> Result<(), Error> {
    parts.write(|file| {
        let mut group = file.next_row_group()?;
        append(&mut group)?;
        Ok(group.close()?.num_rows() as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_encoded_once_and_the_encoders_are_balanced() {
        let plan = Plan::new();
        let mut orders = vec![0; ORDERS.columns.len()];
        let mut fact = vec![0; FACT_ORDERS.columns.len()];
        let mut loads = Vec::new();
        for jobs in &plan.jobs {
            let mut load = 0;
            for job in jobs {
                match *job {
                    Job::Orders(i) => {
                        orders[i] += 1;
                        load += encode_cost(&ORDERS, i);
                    }
                    Job::Fact(f) => {
                        fact[f] += 1;
                        load += encode_cost(&FACT_ORDERS, f);
                    }
                }
            }
            loads.push(load);
        }
        assert!(orders.iter().all(|&n| n == 1), "{orders:?}");
        for (f, source) in plan.fact_source.iter().enumerate() {
            // A shared fact column is spliced from its orders column, not encoded.
            assert_eq!(
                fact[f],
                source.is_none() as usize,
                "{}",
                FACT_ORDERS.columns[f].name
            );
        }
        let (max, total) = (*loads.iter().max().unwrap(), loads.iter().sum::<u32>());
        assert!(
            max * 100 <= total / ENCODERS as u32 * 105,
            "loads {loads:?}"
        );
    }
}
