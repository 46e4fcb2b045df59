//! The writer of the two big tables, `orders` and `fact_orders`, which hold the same rows.
//!
//! Eleven of fact_orders' thirteen columns carry the values of an orders column (ids, units,
//! prices, totals, lineage). Each such column is encoded once and its encoded pages are spliced
//! into both files; before, a third of the engine's CPU went to encoding them a second time.
//!
//! Columns are encoded in the run's thread pool, one task per column and window
//! ([`StarWriter::column_queue`]; [`StarWriter::encode`] runs them all at once), while the pool
//! parses and assembles the next window: a thread that runs out of work takes the next task, so no core waits on a fixed split of the columns between
//! encoder threads (that split left ~7% of two cores idle). One thread outside the pool writes
//! the encoded row groups into the part files, so no pool thread waits on storage.
//!
//! Every column is cut into slices at fixed multiples of `batch_rows`, and row groups close at a
//! number of rows or of bytes of data counted from the values alone, one decision for all
//! columns ([`Cutter`]): the files depend only on the data, never on thread counts or windows.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::types::ColumnDescPtr;
use rayon::prelude::*;

use super::dict_chunk::{ColumnEncoder, EncodedChunk};
use super::options::ParquetOptions;
use super::parts::{Destination, Naming, PartFile, Parts};
use super::splice::{Pages, TeePages, relocate, retarget, splice_error};
use crate::error::Error;
use crate::lake::manifest::WrittenFile;
use crate::lake::storage::{ObjectWriter, Stage};
use crate::schema::{FACT_ORDERS, ORDERS, Table};

mod cut;
use cut::{Cutter, Step};

/// Encoded row groups queued for the file thread before the encoding tasks wait on it: one
/// being written while the next is encoded.
const QUEUED_GROUPS: usize = 2;

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

/// Where each fact column comes from, and what is encoded.
#[derive(Debug, Clone)]
struct Plan {
    /// Per fact column: `Some(orders column)` when shared.
    fact_source: Vec<Option<usize>>,
    /// Every column that is encoded, the most expensive first, so that the last tasks of a
    /// window, which a lone thread may be left running, are short ones.
    jobs: Vec<Job>,
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
        let mut jobs: Vec<Job> = (0..ORDERS.columns.len())
            .map(Job::Orders)
            .chain(
                fact_source
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.is_none())
                    .map(|(f, _)| Job::Fact(f)),
            )
            .collect();
        jobs.sort_by_key(|&job| std::cmp::Reverse(job_cost(job)));
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

fn job_cost(job: Job) -> u32 {
    match job {
        Job::Orders(i) => encode_cost(&ORDERS, i),
        Job::Fact(f) => encode_cost(&FACT_ORDERS, f),
    }
}

/// Each column's encoding time in ms per 2 M rows: time spent in its encoder's `write` calls on
/// the 1 GiB datagen file (pages, RLE and compression included), measured 2026-11-22 with every
/// dictionary column written directly. Only the order matters: expensive columns start first.
/// Columns of any table not listed (none today) count as a typical one.
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

/// One column's encoding across windows.
struct ColumnState {
    job: Job,
    /// Pieces of the slice being gathered; a slice can span windows.
    pending: Vec<ArrayRef>,
    encoder: Option<ColumnEncoder>,
    /// The pages of the open orders chunk, kept to splice it into fact_orders.
    pages: Option<Pages>,
    /// Writers of the row groups opened for the next steps, in order.
    ready: VecDeque<(ArrowColumnWriter, Option<Pages>)>,
}

/// An encoded column chunk and its place.
enum Placed {
    Orders(usize, EncodedChunk),
    Fact(usize, EncodedChunk),
}

/// What every column's task reads.
#[derive(Clone, Copy)]
struct ColumnContext<'a> {
    shared_with: &'a [Vec<usize>],
    orders_descr: &'a [ColumnDescPtr],
    fact_descr: &'a [ColumnDescPtr],
    orders_props: &'a WriterProperties,
    fact_props: &'a WriterProperties,
}

/// Rows to encode: the steps every column takes, and the batches they refer to.
pub(crate) struct EncodeWork {
    steps: Vec<Step>,
    batches: Vec<(RecordBatch, RecordBatch)>,
}

impl EncodeWork {
    /// No rows.
    pub(crate) fn none() -> Self {
        EncodeWork {
            steps: Vec::new(),
            batches: Vec::new(),
        }
    }
}

/// One column's share of an [`EncodeWork`].
struct ColumnTask<'a> {
    column: &'a mut ColumnState,
    work: &'a EncodeWork,
    cx: ColumnContext<'a>,
}

/// Column tasks handed out one at a time to whichever thread asks first.
pub(crate) struct ColumnQueue<'a> {
    tasks: Vec<Mutex<Option<ColumnTask<'a>>>>,
    done: Vec<Mutex<Option<Result<ColumnDone, Error>>>>,
    next: AtomicUsize,
}

impl ColumnQueue<'_> {
    /// No tasks.
    pub(crate) fn none() -> Self {
        ColumnQueue {
            tasks: Vec::new(),
            done: Vec::new(),
            next: AtomicUsize::new(0),
        }
    }

    /// Runs the next task; `false` when none was left.
    pub fn run_next(&self) -> bool {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = self.tasks.get(i) else {
            return false;
        };
        let task = slot
            .lock()
            .expect("task lock")
            .take()
            .expect("each task taken once");
        let done = task.run();
        *self.done[i].lock().expect("result lock") = Some(done);
        true
    }

    /// Tasks not yet taken.
    pub fn left(&self) -> usize {
        self.tasks
            .len()
            .saturating_sub(self.next.load(Ordering::Relaxed))
    }

    /// Every task's result, in order, once all have run.
    pub fn results(self) -> Vec<Result<ColumnDone, Error>> {
        self.done
            .into_iter()
            .map(|d| {
                let done = d.into_inner().expect("result lock");
                done.unwrap_or_else(|| Err(splice_error("a column was not encoded")))
            })
            .collect()
    }
}

/// What a column's task did: its chunks of the row groups it closed, in order, and the time.
pub(crate) struct ColumnDone {
    groups: Vec<Vec<Placed>>,
    busy: Duration,
}

impl ColumnTask<'_> {
    fn run(self) -> Result<ColumnDone, Error> {
        let t = Instant::now();
        let groups = self
            .column
            .run(&self.work.steps, &self.work.batches, &self.cx)?;
        Ok(ColumnDone {
            groups,
            busy: t.elapsed(),
        })
    }
}

impl ColumnState {
    /// Applies `steps` to this column of `batches`; returns the chunks of the row groups closed,
    /// in order.
    fn run(
        &mut self,
        steps: &[Step],
        batches: &[(RecordBatch, RecordBatch)],
        cx: &ColumnContext<'_>,
    ) -> Result<Vec<Vec<Placed>>, Error> {
        let mut closed = Vec::new();
        for step in steps {
            match *step {
                Step::Piece { batch, offset, len } => {
                    let (orders, fact) = &batches[batch];
                    let column = match self.job {
                        Job::Orders(i) => orders.column(i),
                        Job::Fact(f) => fact.column(f),
                    };
                    self.pending.push(column.slice(offset, len));
                }
                Step::Open => {
                    let (general, pages) = self.ready.pop_front().expect("a writer per group");
                    let (table, i, descr, props) = match self.job {
                        Job::Orders(i) => (&ORDERS, i, cx.orders_descr, cx.orders_props),
                        Job::Fact(f) => (&FACT_ORDERS, f, cx.fact_descr, cx.fact_props),
                    };
                    // The group's first values decide whether the chunk is written directly.
                    self.encoder = Some(ColumnEncoder::new(
                        table.arrow_schema().fields()[i].clone(),
                        descr[i].clone(),
                        props,
                        general,
                        self.pending.first().map(|a| a.as_ref()),
                    ));
                    self.pages = pages;
                }
                Step::Write => {
                    let slice = if self.pending.len() == 1 {
                        self.pending.pop().expect("one piece")
                    } else {
                        let parts: Vec<&dyn arrow::array::Array> =
                            self.pending.iter().map(|a| a.as_ref()).collect();
                        let joined = arrow::compute::concat(&parts)?;
                        self.pending.clear();
                        joined
                    };
                    self.encoder.as_mut().expect("open").write(&slice)?;
                }
                Step::Close => closed.push(self.close(cx)?),
            }
        }
        Ok(closed)
    }

    /// The open chunk, encoded, and for a shared orders column its copies for fact_orders.
    fn close(&mut self, cx: &ColumnContext<'_>) -> Result<Vec<Placed>, Error> {
        let chunk = self.encoder.take().expect("open").close()?;
        let pages = self.pages.take();
        let mut placed = Vec::new();
        match self.job {
            Job::Orders(i) => {
                for &f in &cx.shared_with[i] {
                    let (bytes, close) = match &chunk {
                        EncodedChunk::Arrow(chunk) => {
                            let pages = pages
                                .as_ref()
                                .ok_or_else(|| splice_error("no tee for a shared column"))?;
                            let blobs = pages.lock().expect("tee lock").clone();
                            relocate(blobs, chunk.close())?
                        }
                        // Already in file order.
                        EncodedChunk::Bytes { bytes, close } => (bytes.clone(), close.clone()),
                    };
                    let close = retarget(&close, cx.fact_descr[f].clone())?;
                    placed.push(Placed::Fact(f, EncodedChunk::Bytes { bytes, close }));
                }
                placed.push(Placed::Orders(i, chunk));
            }
            Job::Fact(f) => placed.push(Placed::Fact(f, chunk)),
        }
        Ok(placed)
    }
}

/// Opens row groups: both tables' column writers, the orders ones keeping their pages.
struct GroupWriters {
    orders: ArrowRowGroupWriterFactory,
    fact: ArrowRowGroupWriterFactory,
    tee: Arc<TeePages>,
    orders_descr: Vec<ColumnDescPtr>,
    fact_descr: Vec<ColumnDescPtr>,
    orders_props: WriterProperties,
    fact_props: WriterProperties,
    next_group: usize,
}

impl GroupWriters {
    fn new(options: &ParquetOptions) -> Result<GroupWriters, Error> {
        let tee = Arc::new(TeePages::default());
        let (orders, orders_descr) = column_factory(&ORDERS, options)?;
        let (fact, fact_descr) = column_factory(&FACT_ORDERS, options)?;
        Ok(GroupWriters {
            orders: orders.with_page_store_factory(tee.clone()),
            fact,
            tee,
            orders_descr,
            fact_descr,
            orders_props: options.properties(&ORDERS),
            fact_props: options.properties(&FACT_ORDERS),
            next_group: 0,
        })
    }

    /// Opens the next row group and gives each column its writer.
    fn open(&mut self, columns: &mut [ColumnState]) -> Result<(), Error> {
        let group = self.next_group;
        self.next_group += 1;
        let mut orders: Vec<Option<ArrowColumnWriter>> = self
            .orders
            .create_column_writers(group)?
            .into_iter()
            .map(Some)
            .collect();
        // The writers just created their page stores: these are the group's.
        let mut pages = self.tee.take();
        let mut fact: Vec<Option<ArrowColumnWriter>> = self
            .fact
            .create_column_writers(group)?
            .into_iter()
            .map(Some)
            .collect();
        for column in columns {
            let writer = match column.job {
                Job::Orders(i) => {
                    let store = pages.iter().position(|(c, _)| *c == i);
                    let store = store.map(|at| pages.swap_remove(at).1);
                    (orders[i].take(), store)
                }
                Job::Fact(f) => (fact[f].take(), None),
            };
            let (Some(general), pages) = writer else {
                return Err(splice_error("a column writer was given twice"));
            };
            column.ready.push_back((general, pages));
        }
        Ok(())
    }

    fn context<'a>(&'a self, shared_with: &'a [Vec<usize>]) -> ColumnContext<'a> {
        ColumnContext {
            shared_with,
            orders_descr: &self.orders_descr,
            fact_descr: &self.fact_descr,
            orders_props: &self.orders_props,
            fact_props: &self.fact_props,
        }
    }
}

/// A row group's encoded columns, by column index.
struct EncodedGroup {
    orders: Vec<Option<EncodedChunk>>,
    fact: Vec<Option<EncodedChunk>>,
}

/// The writer of orders and fact_orders.
pub(crate) struct StarWriter {
    plan: Plan,
    shared_with: Vec<Vec<usize>>,
    cutter: Cutter,
    writers: GroupWriters,
    columns: Vec<ColumnState>,
    encode_busy: Duration,
    groups: Option<SyncSender<EncodedGroup>>,
    files: Option<JoinHandle<Result<SplicedFiles, Error>>>,
}

/// What both tables' writing took.
pub(crate) struct StarReport {
    pub orders: Vec<WrittenFile>,
    pub fact: Vec<WrittenFile>,
    /// Time spent encoding, summed over the columns' tasks.
    pub encode_busy: Duration,
    /// Busy time of the thread splicing row groups into files.
    pub splice_busy: Duration,
}

impl StarWriter {
    /// A writer into `orders` and `fact`; starts the thread that writes the files.
    pub fn new(
        orders: Destination,
        fact: Destination,
        options: ParquetOptions,
    ) -> Result<StarWriter, Error> {
        let plan = Plan::new();
        let writers = GroupWriters::new(&options)?;
        let columns = plan
            .jobs
            .iter()
            .map(|&job| ColumnState {
                job,
                pending: Vec::new(),
                encoder: None,
                pages: None,
                ready: VecDeque::new(),
            })
            .collect();
        let (groups, rx) = sync_channel::<EncodedGroup>(QUEUED_GROUPS);
        let cutter = Cutter::new(&options);
        let files = std::thread::Builder::new()
            .name("write-orders".into())
            .spawn(move || splice(orders, fact, &options, rx))
            .expect("spawn writer thread");
        Ok(StarWriter {
            shared_with: plan.orders_to_fact(),
            plan,
            cutter,
            writers,
            columns,
            encode_busy: Duration::ZERO,
            groups: Some(groups),
            files: Some(files),
        })
    }

    /// Encodes the rows of `batches` (orders and fact_orders batches of the same rows), one
    /// task per column in the current rayon pool, and queues the row groups they complete for
    /// the file thread, waiting while it is behind (bounded memory).
    pub fn encode(&mut self, batches: Vec<(RecordBatch, RecordBatch)>) -> Result<(), Error> {
        let work = self.prepare(batches)?;
        self.run(&work)
    }

    /// Every column's task for `work`, in the current rayon pool, then [`StarWriter::complete`].
    fn run(&mut self, work: &EncodeWork) -> Result<(), Error> {
        let done = self
            .column_tasks(work)
            .into_par_iter()
            .with_max_len(1)
            .map(ColumnTask::run)
            .collect();
        self.complete(done)
    }

    /// [`StarWriter::encode`] in three steps, for callers that schedule the columns' tasks
    /// themselves: the work for `batches` (cut, and the row groups it starts opened).
    pub fn prepare(
        &mut self,
        batches: Vec<(RecordBatch, RecordBatch)>,
    ) -> Result<EncodeWork, Error> {
        if self.files.as_ref().is_none_or(JoinHandle::is_finished) {
            // Files are finished only by `finish`: the file thread stopped on an error.
            return Err(self.stopped());
        }
        let batches: Vec<_> = batches
            .into_iter()
            .filter(|(orders, _)| orders.num_rows() > 0)
            .collect();
        for (orders, fact) in &batches {
            check_shared(&self.plan, orders, fact)?;
        }
        let steps = self.cutter.cut(&batches);
        self.open_groups(&steps)?;
        Ok(EncodeWork { steps, batches })
    }

    fn open_groups(&mut self, steps: &[Step]) -> Result<(), Error> {
        for _ in steps.iter().filter(|s| **s == Step::Open) {
            self.writers.open(&mut self.columns)?;
        }
        Ok(())
    }

    /// The columns' tasks for `work`, handed out one at a time, the most expensive first, to
    /// whichever thread asks; [`StarWriter::complete`] takes their results.
    pub fn column_queue<'a>(&'a mut self, work: &'a EncodeWork) -> ColumnQueue<'a> {
        let tasks = self.column_tasks(work);
        ColumnQueue {
            done: tasks.iter().map(|_| Mutex::new(None)).collect(),
            tasks: tasks.into_iter().map(|t| Mutex::new(Some(t))).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// One task per column, the most expensive first.
    fn column_tasks<'a>(&'a mut self, work: &'a EncodeWork) -> Vec<ColumnTask<'a>> {
        let cx = self.writers.context(&self.shared_with);
        self.columns
            .iter_mut()
            .map(|column| ColumnTask { column, work, cx })
            .collect()
    }

    /// Takes the columns' results, and queues the row groups they completed for the file
    /// thread, waiting while it is behind.
    pub fn complete(&mut self, done: Vec<Result<ColumnDone, Error>>) -> Result<(), Error> {
        let done: Vec<ColumnDone> = done.into_iter().collect::<Result<_, _>>()?;
        let closed = done.first().map_or(0, |d| d.groups.len());
        let mut groups: Vec<EncodedGroup> = (0..closed)
            .map(|_| EncodedGroup {
                orders: (0..ORDERS.columns.len()).map(|_| None).collect(),
                fact: (0..FACT_ORDERS.columns.len()).map(|_| None).collect(),
            })
            .collect();
        for column in done {
            self.encode_busy += column.busy;
            for (group, placed) in groups.iter_mut().zip(column.groups) {
                for p in placed {
                    match p {
                        Placed::Orders(i, chunk) => group.orders[i] = Some(chunk),
                        Placed::Fact(f, chunk) => group.fact[f] = Some(chunk),
                    }
                }
            }
        }
        for group in groups {
            let sent = self.groups.as_ref().map(|tx| tx.send(group));
            if !matches!(sent, Some(Ok(()))) {
                return Err(self.stopped());
            }
        }
        Ok(())
    }

    /// The file thread stopped early, on an error: that error.
    fn stopped(&mut self) -> Error {
        self.groups = None;
        match self.files.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => Error::WriterPanicked,
            _ => Error::WriterStopped,
        }
    }

    /// No more rows: encodes the last row group, waits for the file thread to finish the files
    /// and reports them. An error of the file thread (storage) explains any other.
    pub fn finish(&mut self) -> Result<StarReport, Error> {
        let steps = self.cutter.end();
        // The last row group's columns close in parallel too.
        let flushed = self.open_groups(&steps).and_then(|()| {
            self.run(&EncodeWork {
                steps,
                batches: Vec::new(),
            })
        });
        self.groups = None;
        let Some(files) = self.files.take() else {
            return Err(flushed.err().unwrap_or(Error::WriterStopped));
        };
        let files = files.join().map_err(|_| Error::WriterPanicked)??;
        flushed?;
        Ok(StarReport {
            orders: files.orders,
            fact: files.fact,
            encode_busy: self.encode_busy,
            splice_busy: files.busy,
        })
    }
}

/// No thread outlives the run: when a run stops early, the file thread finishes what it was
/// given before the stage is aborted.
impl Drop for StarWriter {
    fn drop(&mut self) {
        self.groups = None;
        if let Some(files) = self.files.take() {
            let _ = files.join();
        }
    }
}

/// Writes `orders` and `fact_orders` batches of the same rows as a run does — each shared
/// column encoded once and spliced into both tables, dictionary columns written directly — into
/// part files of `stage` under `orders/` and `fact_orders/`, and returns the files. The columns
/// are encoded in the current rayon pool. The Parquet-encoding benchmark measures this beside
/// [`encode_batches`](crate::writer::encode_batches). A fact batch's shared columns are taken
/// from its orders batch (in a run they are the same arrays), so batches read back from a lake
/// may be given.
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
    let batches = batches
        .iter()
        .map(|(orders, fact)| {
            let columns = plan
                .fact_source
                .iter()
                .enumerate()
                .map(|(f, source)| match source {
                    Some(o) => orders.column(*o).clone(),
                    None => fact.column(f).clone(),
                })
                .collect();
            Ok((
                orders.clone(),
                RecordBatch::try_new(fact.schema(), columns)?,
            ))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut writer = StarWriter::new(
        destination(&ORDERS),
        destination(&FACT_ORDERS),
        options.clone(),
    )?;
    writer.encode(batches)?;
    let report = writer.finish()?;
    Ok(report.orders.into_iter().chain(report.fact).collect())
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

/// What the file thread wrote, and how long it was busy.
struct SplicedFiles {
    orders: Vec<WrittenFile>,
    fact: Vec<WrittenFile>,
    busy: Duration,
}

/// The file thread: splices each encoded row group into both tables' part files.
fn splice(
    orders: Destination,
    fact: Destination,
    options: &ParquetOptions,
    groups: Receiver<EncodedGroup>,
) -> Result<SplicedFiles, Error> {
    let mut orders_files = Parts::<FileWriter>::new(&ORDERS, orders, options);
    let mut fact_files = Parts::<FileWriter>::new(&FACT_ORDERS, fact, options);
    let mut busy = Duration::ZERO;
    for group in groups {
        let t = Instant::now();
        write_group(&mut orders_files, |rg| {
            for chunk in group.orders {
                chunk.expect("every orders column encoded").append_to(rg)?;
            }
            Ok(())
        })?;
        write_group(&mut fact_files, |rg| {
            for chunk in group.fact {
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
    fn every_column_is_encoded_once_the_most_expensive_first() {
        let plan = Plan::new();
        let mut orders = vec![0; ORDERS.columns.len()];
        let mut fact = vec![0; FACT_ORDERS.columns.len()];
        for job in &plan.jobs {
            match *job {
                Job::Orders(i) => orders[i] += 1,
                Job::Fact(f) => fact[f] += 1,
            }
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
        let costs: Vec<u32> = plan.jobs.iter().map(|&j| job_cost(j)).collect();
        assert!(costs.is_sorted_by(|a, b| a >= b), "{costs:?}");
    }
}
