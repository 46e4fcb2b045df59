//! The windows of one run, processed as a three-stage pipeline: while window k+1 is parsed,
//! window k is deduplicated and assembled and window k−1's rows are encoded. The three are
//! tasks of one scope in the run's pool, so a thread that finishes one stage's work takes
//! another's instead of waiting at a barrier: two threads do twice the work of one.

use std::ops::Deref;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use arrow::array::RecordBatch;
use rayon::prelude::*;

use super::context::{Processed, RunContext};
use super::observe::Observing;
use super::record::ms;
use crate::assemble::members::Members;
use crate::assemble::{self, Assembled, Dimensions, QuarantineRow};
use crate::dedup::Deduper;
use crate::error::Error;
use crate::lake::manifest::{Counts, Timings, WrittenFile};
use crate::parse::header::Header;
use crate::parse::header::HeaderMap;
use crate::parse::range::{ChunkRows, ParseCtx};
use crate::parse::window::{ParsedWindow, Ranges};
use crate::schema::{
    DIM_CHANNELS, DIM_CLIENTS, DIM_PRODUCTS, DIM_STATUS, FACT_ORDERS, ORDERS, QUARANTINE,
};
use crate::writer::lines::LinesWriter;
use crate::writer::parts::Naming;
use crate::writer::table::{TableWriter, write_small_table};

/// A window's rows: orders and fact_orders batches of the same rows, one pair per range.
type Rows = Vec<(RecordBatch, RecordBatch)>;

/// A window's bytes: borrowed from a mapped input, or a buffer read from a stream.
pub(super) enum WindowBytes<'m> {
    Mapped(&'m [u8]),
    Owned(Vec<u8>),
}

impl Deref for WindowBytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            WindowBytes::Mapped(b) => b,
            WindowBytes::Owned(b) => b,
        }
    }
}

/// A window parsed and waiting for its dedup and assembly, which read its bytes.
struct Parsed<'m> {
    window: ParsedWindow,
    bytes: WindowBytes<'m>,
    start: usize,
}

/// A window no longer needed: its bytes from `start` to `next` are processed, and the caller
/// may release or reuse them.
pub(super) struct Done<'m> {
    pub bytes: WindowBytes<'m>,
    pub start: usize,
    pub next: usize,
}

/// Per-run state across windows.
pub(super) struct Pipeline<'a, 'm> {
    header: HeaderMap,
    /// orders and fact_orders, which hold the same rows.
    lines: LinesWriter,
    /// The rows of the window last assembled: encoded during the next step.
    unwritten: Rows,
    /// The window last parsed: deduplicated and assembled during the next step.
    parsed: Option<Parsed<'m>>,
    assembler: Assembler<'a>,
}

/// Turns each parsed window into rows: dedup, the dimensions' members, the quarantine, the
/// counters (everything but parsing and the writer of orders and fact_orders).
struct Assembler<'a> {
    cx: &'a RunContext<'a>,
    deduper: Deduper,
    /// The dedup tables' distinct keys and heap bytes, taken when they are freed.
    dedup_stats: (u64, u64),
    quarantine: TableWriter,
    dimensions: Dimensions,
    counts: Counts,
    timings: Timings,
    /// Line number of the next window's first byte.
    next_line: u64,
    /// Input size when known up front (not for streams), to size the dedup tables.
    total_bytes: Option<u64>,
    dedup_sized: bool,
    repaired_ranges: usize,
    /// The lake's observer of the rows written to `orders`, if it has one.
    observing: Option<Observing>,
}

impl<'a, 'm> Pipeline<'a, 'm> {
    pub fn new(
        cx: &'a RunContext<'a>,
        header: &Header,
        header_clock: Instant,
        total_bytes: Option<u64>,
    ) -> Result<Self, Error> {
        let opts = &cx.options.parquet;
        Ok(Pipeline {
            header: header.map.clone(),
            lines: LinesWriter::new(
                cx.destination(&ORDERS, Naming::Parts),
                cx.destination(&FACT_ORDERS, Naming::Parts),
                opts.clone(),
            )?,
            unwritten: Vec::new(),
            parsed: None,
            assembler: Assembler {
                cx,
                deduper: Deduper::new(),
                dedup_stats: (0, 0),
                quarantine: TableWriter::spawn(
                    &QUARANTINE,
                    cx.destination(&QUARANTINE, Naming::Single),
                    opts.clone(),
                ),
                dimensions: Dimensions {
                    clients: Members::new(),
                    products: Members::new(),
                },
                counts: Counts::default(),
                timings: Timings {
                    header_ms: ms(header_clock.elapsed()),
                    ..Timings::default()
                },
                next_line: header.first_data_line,
                total_bytes,
                dedup_sized: false,
                repaired_ranges: 0,
                observing: cx
                    .observer
                    .lock()
                    .expect("observer")
                    .take()
                    .map(Observing::spawn),
            },
        })
    }

    /// Rows read so far (of the windows assembled).
    pub fn rows_read(&self) -> u64 {
        self.assembler.counts.rows_read
    }

    /// The bytes of the window last parsed, whose records end at the `next` that
    /// [`Pipeline::window`] returned: the next window of a stream starts with their tail.
    pub fn parsed_bytes(&self) -> &[u8] {
        self.parsed.as_ref().map_or(&[], |p| &p.bytes)
    }

    /// Parses the records of `bytes` from `start` (see [`crate::parse::window::parse_window`]) while
    /// the window parsed before is deduplicated and assembled and the one before that encoded.
    /// Returns where the next window starts, and the window that no longer needs its bytes.
    pub fn window(
        &mut self,
        bytes: WindowBytes<'m>,
        start: usize,
        eof: bool,
    ) -> Result<(usize, Option<Done<'m>>), Error> {
        if self
            .assembler
            .cx
            .options
            .stop_at
            .is_some_and(|at| Instant::now() >= at)
        {
            return Err(Error::OutOfTime);
        }
        let (next, done) = self.step(Some((bytes, start, eof)))?;
        Ok((next.expect("a window was parsed"), done))
    }

    /// One step of the pipeline: the three stages as tasks of one FIFO scope. The assembly
    /// goes first (it has serial parts), then the parse ranges, then the columns, the most
    /// expensive first, so the step ends on small tasks and neither thread waits long for it.
    fn step(
        &mut self,
        input: Option<(WindowBytes<'m>, usize, bool)>,
    ) -> Result<(Option<usize>, Option<Done<'m>>), Error> {
        let work = self.lines.prepare(std::mem::take(&mut self.unwritten))?;
        let columns = self.lines.column_queue(&work);
        let cx = self.assembler.cx;
        let ctx = ParseCtx {
            header: &self.header,
            channels: &cx.options.channels,
            max_record: cx.options.max_record_bytes,
        };
        let ranges = input.as_ref().map(|(bytes, start, eof)| {
            Ranges::new(&ctx, bytes, *start, *eof, cx.options.chunk_bytes)
        });
        let range_count = ranges.as_ref().map_or(0, Ranges::len);
        let mut slots: Vec<Option<ChunkRows>> = (0..range_count).map(|_| None).collect();
        let parsing = AtomicUsize::new(range_count);
        let (pending, pending_bytes) = match self.parsed.take() {
            Some(p) => (Some(p.window), Some((p.bytes, p.start))),
            None => (None, None),
        };
        let assembler = &mut self.assembler;
        let mut read = None;
        let clock = Instant::now();
        let parsed_at = Mutex::new(clock);
        let mut assembled_at = clock;
        rayon::in_place_scope_fifo(|scope| {
            if let (Some(window), Some((bytes, start))) = (pending, &pending_bytes) {
                let (read, assembled_at) = (&mut read, &mut assembled_at);
                scope.spawn_fifo(move |_| {
                    *read = Some(assembler.window(window, bytes, *start));
                    *assembled_at = Instant::now();
                });
            }
            if let (Some(ranges), Some((bytes, _, _))) = (&ranges, &input) {
                let (ctx, parsing, parsed_at) = (&ctx, &parsing, &parsed_at);
                let bytes: &[u8] = bytes;
                for (i, slot) in slots.iter_mut().enumerate() {
                    scope.spawn_fifo(move |_| {
                        *slot = Some(ranges.parse(ctx, bytes, i));
                        if parsing.fetch_sub(1, Ordering::AcqRel) == 1 {
                            *parsed_at.lock().expect("clock") = Instant::now();
                        }
                    });
                }
            }
            let columns = &columns;
            for _ in 0..columns.left() {
                scope.spawn_fifo(move |_| {
                    columns.run_next();
                });
            }
        });
        let ended = Instant::now();
        let parsed_at = parsed_at.into_inner().expect("clock");
        let t = &mut self.assembler.timings;
        t.parse_ms += ms(parsed_at - clock);
        t.encode_wait_ms += ms(ended.saturating_duration_since(parsed_at.max(assembled_at)));
        let encoded = columns.results();
        self.lines.complete(encoded)?;
        let next = match (ranges, input) {
            (Some(ranges), Some((bytes, start, _))) => {
                let slots = slots.into_iter().map(|s| s.expect("parsed")).collect();
                let window = ranges.finish(&ctx, &bytes, slots);
                let next = window.next;
                self.parsed = Some(Parsed {
                    window,
                    bytes,
                    start,
                });
                Some(next)
            }
            _ => None,
        };
        let done = match (pending_bytes, read) {
            (Some((bytes, start)), Some(read)) => {
                let (next, rows) = read?;
                self.unwritten = rows;
                Some(Done { bytes, start, next })
            }
            _ => None,
        };
        Ok((next, done))
    }

    /// No more input: the last window's dedup and assembly (beside the encoding of the one
    /// before), then its encoding beside the dimension tables.
    pub fn finish(mut self, bytes_processed: u64) -> Result<Processed, Error> {
        self.step(None)?;
        self.assembler.every_row_assembled();
        let Pipeline {
            header,
            mut lines,
            unwritten,
            mut assembler,
            ..
        } = self;
        let (lines, dimensions) = rayon::join(
            || lines.encode(unwritten).and_then(|()| lines.finish()),
            || assembler.write_dimensions(),
        );
        let (lines, dimensions) = (lines?, dimensions?);
        assembler.timings.encode_busy_ms = ms(lines.encode_busy);
        assembler.timings.splice_busy_ms = ms(lines.splice_busy);
        let mut outputs = Vec::new();
        outputs.extend(lines.orders);
        outputs.extend(lines.fact);
        outputs.extend(dimensions);
        assembler.finish(outputs, bytes_processed, header.extra_columns)
    }
}

impl Assembler<'_> {
    /// Takes a parsed window of `buf` (from `start`) through dedup and assembly; returns where
    /// the next window starts and the window's orders and fact_orders rows.
    fn window(
        &mut self,
        parsed: ParsedWindow,
        buf: &[u8],
        start: usize,
    ) -> Result<(usize, Rows), Error> {
        let cx = self.cx;
        self.repaired_ranges += parsed.repaired;

        let (first_lines, next_line) =
            parsed.first_lines(self.next_line, cx.options.max_record_bytes)?;
        self.next_line = next_line;

        let t = Instant::now();
        if !self.dedup_sized {
            // Size the dedup tables once, from the first window's row density.
            self.dedup_sized = true;
            let rows: usize = parsed.ranges.iter().map(|r| r.valid.len()).sum();
            if let (Some(total), true) = (self.total_bytes, parsed.next > start) {
                let estimate = rows as f64 * total as f64 / (parsed.next - start) as f64;
                self.deduper.reserve(estimate.min(1e10) as usize);
            }
        }
        let keys: Vec<_> = parsed.ranges.iter().map(|r| &r.valid.keys).collect();
        let verdicts = self.deduper.judge(&keys, &first_lines);
        self.timings.dedup_ms += ms(t.elapsed());

        let t = Instant::now();
        let constants = &cx.constants;
        let known = &self.dimensions;
        let assembled: Vec<Assembled> = parsed
            .ranges
            .into_par_iter()
            .zip(verdicts)
            .zip(first_lines)
            .map(|((range, drops), first_line)| {
                assemble::assemble(range, drops, first_line, buf, constants, known)
            })
            .collect::<Result<_, _>>()?;
        let mut quarantined: Vec<QuarantineRow> = Vec::new();
        let mut rows = Vec::with_capacity(assembled.len());
        let mut clients = Vec::with_capacity(assembled.len());
        let mut products = Vec::with_capacity(assembled.len());
        for a in assembled {
            self.counts.rows_read += a.records;
            self.counts.blank_lines += a.blank_lines;
            self.counts.exact_duplicates += a.exact_duplicates;
            self.counts.rows_written += a.orders.num_rows() as u64;
            clients.push(a.clients);
            products.push(a.products);
            quarantined.extend(a.quarantine);
            rows.push((a.orders, a.fact));
        }
        if let Some(observing) = &self.observing {
            observing.rows(rows.iter().map(|(orders, _)| orders.clone()).collect());
        }
        self.dimensions.clients.apply(clients);
        self.dimensions.products.apply(products);
        for q in &quarantined {
            self.counts.quarantined += 1;
            *self
                .counts
                .quarantined_by_reason
                .entry(q.reason.code().to_string())
                .or_default() += 1;
        }
        if !quarantined.is_empty() {
            let batch = assemble::quarantine_batch(&quarantined, constants)?;
            if self.quarantine.send(batch).is_err() {
                return Err(self
                    .quarantine
                    .finish()
                    .err()
                    .unwrap_or(Error::WriterStopped));
            }
        }
        self.timings.assemble_ms += ms(t.elapsed());
        Ok((parsed.next, rows))
    }

    /// Every row is assembled. The dedup tables, the run's largest allocation, are freed
    /// before the last rows are encoded; unless the file is to be rejected for its bad rows,
    /// the observer finishes now, beside that encoding, instead of after it.
    fn every_row_assembled(&mut self) {
        let deduper = std::mem::replace(&mut self.deduper, Deduper::new());
        self.dedup_stats = (deduper.keys() as u64, deduper.heap_bytes() as u64);
        drop(deduper);
        if let Some(observing) = &mut self.observing
            && !self.cx.options.rejects(&self.counts)
        {
            observing.close();
        }
    }

    /// The dimension tables, written while the last rows are encoded.
    fn write_dimensions(&mut self) -> Result<Vec<WrittenFile>, Error> {
        let cx = self.cx;
        // No more quarantined rows: its writer flushes while the dimensions are written.
        self.quarantine.close();
        let t = Instant::now();
        let k = &cx.constants;
        let opts = &cx.options.parquet;
        let Dimensions { clients, products } = std::mem::replace(
            &mut self.dimensions,
            Dimensions {
                clients: Members::new(),
                products: Members::new(),
            },
        );
        let (clients, products) = (clients.into_sorted(), products.into_sorted());
        self.counts.distinct_clients = clients.len() as u64;
        self.counts.distinct_products = products.len() as u64;
        let mut dimensions = Vec::new();
        if self.counts.rows_written > 0 {
            let dims = [
                (&DIM_CLIENTS, assemble::dim_clients_batch(&clients, k)?),
                (&DIM_PRODUCTS, assemble::dim_products_batch(&products, k)?),
                (&DIM_STATUS, assemble::dim_status_batch()?),
                (&DIM_CHANNELS, assemble::dim_channels_batch(k)?),
            ];
            for (table, batch) in dims {
                dimensions.extend(write_small_table(
                    table,
                    cx.destination(table, Naming::Single),
                    opts,
                    &batch,
                )?);
            }
        }
        self.timings.dimensions_ms = ms(t.elapsed());
        Ok(dimensions)
    }

    fn finish(
        mut self,
        mut outputs: Vec<WrittenFile>,
        bytes_processed: u64,
        extra_columns: Vec<String>,
    ) -> Result<Processed, Error> {
        let quarantine = self.quarantine.finish()?;
        self.timings.encode_busy_quarantine_ms = ms(quarantine.busy);
        outputs.extend(quarantine.files);
        if self.repaired_ranges > 0 {
            tracing::debug!(
                repaired = self.repaired_ranges,
                "ranges re-parsed after a wrong boundary guess"
            );
        }
        Ok(Processed {
            counts: self.counts,
            extra_columns,
            outputs,
            timings: self.timings,
            bytes_processed,
            dedup_keys: self.dedup_stats.0,
            dedup_heap_bytes: self.dedup_stats.1,
            observing: self.observing,
        })
    }
}
