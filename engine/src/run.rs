//! One run: an input file processed into the lake, exactly once.

mod observe;
mod pipeline;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;
use simd_csv::TotalReaderBuilder;

use crate::assemble::RunConstants;
use crate::error::Error;
use crate::header::{HeaderMap, parse_header};
use crate::input::{LocalInput, run_id_for};
use crate::lake::LocalLake;
use crate::manifest::{CostEstimate, Counts, Manifest, RunStatus, Throughput, Timings};
use crate::rules::Channels;
use crate::schema::Table;
use crate::storage::{Commit, InputBytes, Lake, RowObserver, Source, Stage, StorageError};
use crate::writer::{Destination, Naming, ParquetOptions, WrittenFile};
use pipeline::{Done, Pipeline, WindowBytes};

/// How a run behaves. `Default` is what `duff run` uses.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Bytes per parallel parse range.
    pub chunk_bytes: usize,
    /// Longest accepted record. A longer multi-line record is treated as a broken quote; a single
    /// longer line fails the file.
    pub max_record_bytes: usize,
    pub channels: Channels,
    /// Partition date; default: the input's modification (upload) date, UTC.
    pub pa_date: Option<NaiveDate>,
    /// Ingestion timestamp stamped on every row; default: when the input was uploaded (S3
    /// LastModified, or the local file's modification time), so every attempt of a run writes
    /// the same bytes and a later upload of an order line supersedes an earlier one.
    pub ingested_at: Option<DateTime<Utc>>,
    pub parquet: ParquetOptions,
    /// The run fails when more than this fraction of its rows is quarantined, once at least
    /// [`RunOptions::min_bad_rows`] are: the rule catches systematically broken files (a
    /// shifted column, a wrong delimiter), not a small file with a few bad rows.
    pub max_bad_fraction: f64,
    /// Quarantined rows below which no share of bad rows fails a run.
    pub min_bad_rows: u64,
    /// A gzip input fails (`gzip_expansion`) once it decompresses to more than this many times
    /// its compressed size, or [`RunOptions::gzip_allowance_bytes`] if that is more: a gzip
    /// bomb is a clear error, not hours of work. Exports compress 5–15×.
    pub max_gzip_ratio: u64,
    /// Decompressed bytes every gzip input may reach whatever its ratio (small files of
    /// repeated rows compress far better than exports).
    pub gzip_allowance_bytes: u64,
    /// Reprocess even when the run's manifest exists.
    pub force: bool,
    /// Resources the run was given; when set, the manifest carries a cost estimate.
    pub cost_basis: Option<crate::manifest::CostBasis>,
    /// A window that would start after this instant stops the run instead (`out_of_time`,
    /// nothing committed): a caller with a deadline (the dispatcher's Lambda) hands the input
    /// over rather than being killed mid-run.
    pub stop_at: Option<Instant>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: 0,
            chunk_bytes: 4 << 20,
            max_record_bytes: 1 << 20,
            channels: Channels::default(),
            pa_date: None,
            ingested_at: None,
            parquet: ParquetOptions::default(),
            max_bad_fraction: 0.1,
            min_bad_rows: 100,
            max_gzip_ratio: 100,
            gzip_allowance_bytes: 64 << 20,
            force: false,
            cost_basis: None,
            stop_at: None,
        }
    }
}

impl RunOptions {
    fn validate(&self) -> Result<(), Error> {
        if self.chunk_bytes == 0 {
            return Err(Error::Config("chunk_bytes must be > 0".into()));
        }
        // Field offsets within a record are 32-bit.
        if !(64..=1 << 30).contains(&self.max_record_bytes) {
            return Err(Error::Config(
                "max_record_bytes must be between 64 and 1 GiB".into(),
            ));
        }
        if self.max_gzip_ratio == 0 {
            return Err(Error::Config("max_gzip_ratio must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&self.max_bad_fraction) {
            return Err(Error::Config(
                "max_bad_fraction must be between 0 and 1".into(),
            ));
        }
        let p = &self.parquet;
        if p.batch_rows == 0 || p.row_group_rows == 0 || p.row_group_bytes == 0 {
            return Err(Error::Config(
                "batch_rows, row_group_rows and row_group_bytes must be > 0".into(),
            ));
        }
        Ok(())
    }

    /// Whether `quarantined` bad rows of `read` fail the run.
    pub fn too_many_bad_rows(&self, quarantined: u64, read: u64) -> bool {
        quarantined >= self.min_bad_rows && quarantined as f64 > self.max_bad_fraction * read as f64
    }

    fn effective_threads(&self) -> usize {
        if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.threads
        }
    }

    /// Window size: two ranges per thread (at least four ranges). Three windows are in flight
    /// at once (one parsed, one assembled, one encoded), so memory grows with the window; the
    /// three stages keep the threads busy, so more ranges per window do not make a run faster.
    fn window_bytes(&self, threads: usize) -> usize {
        self.chunk_bytes
            .saturating_mul((threads * 2).max(4))
            .max(self.max_record_bytes * 2)
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// Processed and published.
    Succeeded(Manifest),
    /// A file-level problem; a `failed` manifest was committed and nothing else was published.
    Failed(Manifest),
    /// The run's manifest already existed: nothing was done.
    Skipped(Manifest),
}

impl RunOutcome {
    pub fn manifest(&self) -> &Manifest {
        match self {
            RunOutcome::Succeeded(m) | RunOutcome::Failed(m) | RunOutcome::Skipped(m) => m,
        }
    }
}

/// Progress of a run, reported after each window.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Input bytes processed (decompressed bytes for gzip).
    pub bytes_done: u64,
    /// Total input bytes, when known up front.
    pub bytes_total: Option<u64>,
    pub rows_read: u64,
}

/// Processes a local file into a local lake: [`run`] over [`LocalInput`] and [`LocalLake`].
pub fn run_local(
    input: &Path,
    lake: &LocalLake,
    options: &RunOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunOutcome, Error> {
    run(&LocalInput::open(input)?, lake, options, progress)
}

/// Processes one input into a lake, exactly once. File-level problems give
/// `Ok(RunOutcome::Failed)` (a `failed` manifest is committed); `Err` means the environment
/// failed (storage, I/O, configuration): see [`Error::is_retryable`].
pub fn run(
    input: &dyn Source,
    lake: &dyn Lake,
    options: &RunOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunOutcome, Error> {
    run_or_give_up(input, lake, options, progress, None)
}

/// Commits the input's run as `failed` (`gave_up`) without reading it: `attempts` earlier
/// attempts ended without a result (each killed by memory, a timeout or a crash), so another
/// would too, and the input would be retried forever. A run already committed is skipped.
pub fn give_up(
    input: &dyn Source,
    lake: &dyn Lake,
    options: &RunOptions,
    attempts: u32,
) -> Result<RunOutcome, Error> {
    run_or_give_up(input, lake, options, &|_| {}, Some(attempts))
}

fn run_or_give_up(
    input: &dyn Source,
    lake: &dyn Lake,
    options: &RunOptions,
    progress: &(dyn Fn(Progress) + Sync),
    give_up_after: Option<u32>,
) -> Result<RunOutcome, Error> {
    options.validate()?;
    let started = Utc::now();
    let clock = Instant::now();
    let source = input.info();
    let run_id = run_id_for(&source);
    if !options.force
        && let Some(existing) = lake.read_manifest(&run_id)?
    {
        tracing::info!(run_id, status = ?existing.status, "run already committed; skipping");
        lake.settle()?;
        return Ok(RunOutcome::Skipped(existing));
    }
    let uploaded = input.modified();
    let pa_date = pa_date_of_run(lake, &run_id, options.pa_date, uploaded)?;
    let ingested_at = options.ingested_at.unwrap_or(uploaded);
    let threads = options.effective_threads();
    let stem = lake.attempt_stem(&run_id);
    let stage: Arc<dyn Stage> = Arc::from(lake.stage(&stem)?);
    let constants = RunConstants {
        source_file: source.uri.clone(),
        run_id: run_id.clone(),
        ingested_at_ms: ingested_at.timestamp_millis(),
        channel_names: options.channels.names(),
        channel_ids: options.channels.entries().iter().map(|e| e.0).collect(),
    };
    let observer = lake.observer(&stem, pa_date);
    let context = RunContext {
        options,
        constants,
        observer: std::sync::Mutex::new(observer),
        stem,
        stage: stage.clone(),
        partition: format!("pa_date={pa_date}"),
        threads,
    };
    let processed = match give_up_after {
        // Nothing to read: no threads either.
        Some(attempts) => Err(Error::GaveUp { attempts }),
        None => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("duff-parse-{i}"))
                .build()
                .map_err(|e| Error::Config(format!("thread pool: {e}")))?;
            pool.install(|| process(&context, input, &source, progress))
            // The pool ends here: its threads hold in their allocator heaps what the run
            // freed (the dedup tables among it), and ending them lets the commit and the
            // lake's fold reuse that memory.
        }
    };

    let mut manifest = Manifest {
        run_id: run_id.clone(),
        status: RunStatus::Succeeded,
        error_code: None,
        error: None,
        source: source.clone(),
        pa_date: pa_date.to_string(),
        ingested_at: ingested_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        started_at: started.to_rfc3339_opts(SecondsFormat::Millis, true),
        finished_at: String::new(),
        engine_version: env!("CARGO_PKG_VERSION").to_string(),
        threads,
        counts: Counts::default(),
        nothing_lost: false,
        extra_columns: Vec::new(),
        input_bytes: source.size_bytes,
        output_bytes: 0,
        outputs: Vec::new(),
        timings: Timings::default(),
        throughput: Throughput::default(),
        peak_rss_bytes: None,
        dedup_keys: 0,
        dedup_heap_bytes: 0,
        options: options_json(options),
        cost: None,
    };
    let outcome = processed.and_then(|p| {
        let read = p.counts.rows_read;
        if read > 0 && options.too_many_bad_rows(p.counts.quarantined, read) {
            manifest.counts = p.counts.clone();
            return Err(Error::TooManyBadRows {
                quarantined: p.counts.quarantined,
                read,
                max_fraction: options.max_bad_fraction,
                min_rows: options.min_bad_rows,
            });
        }
        Ok(p)
    });
    match outcome {
        Ok(mut p) => {
            if let Some(observing) = p.observing.take() {
                observing.finish();
            }
            let publish = Instant::now();
            failpoint("before_publish");
            if let Err(e) = stage.publish(&p.outputs) {
                stage.abort();
                return Err(stage.take_failure().unwrap_or(e));
            }
            let mut timings = p.timings;
            timings.publish_ms = ms(publish.elapsed());
            timings.total_ms = ms(clock.elapsed());
            let secs = clock.elapsed().as_secs_f64().max(1e-9);
            manifest.throughput = Throughput {
                input_mb_per_s: p.bytes_processed as f64 / 1e6 / secs,
                rows_per_s: p.counts.rows_read as f64 / secs,
            };
            manifest.nothing_lost = p.counts.nothing_lost();
            manifest.counts = p.counts;
            manifest.extra_columns = p.extra_columns;
            manifest.output_bytes = p.outputs.iter().map(|f| f.bytes).sum();
            manifest.outputs = p.outputs;
            manifest.timings = timings;
            manifest.dedup_keys = p.dedup_keys;
            manifest.dedup_heap_bytes = p.dedup_heap_bytes;
            manifest.peak_rss_bytes = peak_rss_bytes();
            manifest.cost = options
                .cost_basis
                .clone()
                .map(|b| CostEstimate::new(b, clock.elapsed().as_secs_f64()));
            manifest.finished_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
            commit(lake, manifest, options.force, RunOutcome::Succeeded)
        }
        Err(e) if e.is_file_level() => {
            stage.abort();
            manifest.status = RunStatus::Failed;
            manifest.error_code = Some(e.code().to_string());
            manifest.error = Some(e.to_string());
            manifest.nothing_lost = manifest.counts.nothing_lost();
            manifest.timings.total_ms = ms(clock.elapsed());
            manifest.cost = options
                .cost_basis
                .clone()
                .map(|b| CostEstimate::new(b, clock.elapsed().as_secs_f64()));
            manifest.finished_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
            tracing::warn!(run_id, error = %e, "run failed on a file-level error");
            commit(lake, manifest, options.force, RunOutcome::Failed)
        }
        Err(e) => {
            // A writer's storage failure explains a generic encoder error better.
            let e = stage.take_failure().unwrap_or(e);
            stage.abort();
            Err(e)
        }
    }
}

/// The run's partition date, derived once per input: the date an earlier attempt already
/// committed with, else the caller's, else the input's upload (modification) date, UTC.
fn pa_date_of_run(
    lake: &dyn Lake,
    run_id: &str,
    requested: Option<NaiveDate>,
    uploaded: DateTime<Utc>,
) -> Result<NaiveDate, Error> {
    let derived = requested.unwrap_or_else(|| uploaded.date_naive());
    match lake.committed_pa_date(run_id)? {
        Some(committed) if committed != derived => {
            tracing::warn!(
                run_id,
                %committed,
                requested = %derived,
                "an earlier attempt committed this run with another pa_date; keeping it"
            );
            Ok(committed)
        }
        Some(committed) => Ok(committed),
        None => Ok(derived),
    }
}

/// Commits the manifest; when a concurrent attempt of the same run committed first, this
/// attempt reports the other's manifest as skipped (its files are byte-identical).
fn commit(
    lake: &dyn Lake,
    manifest: Manifest,
    overwrite: bool,
    outcome: fn(Manifest) -> RunOutcome,
) -> Result<RunOutcome, Error> {
    let commit = lake.commit(&manifest, overwrite)?;
    lake.settle()?;
    match commit {
        Commit::Written => {
            tracing::info!(
                run_id = manifest.run_id,
                status = ?manifest.status,
                rows = manifest.counts.rows_read,
                "run committed"
            );
            Ok(outcome(manifest))
        }
        Commit::AlreadyCommitted(existing) => {
            tracing::info!(
                run_id = manifest.run_id,
                "a concurrent attempt of this run committed first"
            );
            Ok(RunOutcome::Skipped(*existing))
        }
    }
}

fn options_json(o: &RunOptions) -> serde_json::Value {
    #[derive(Serialize)]
    struct Recorded<'a> {
        chunk_bytes: usize,
        max_record_bytes: usize,
        channels: Vec<String>,
        max_bad_fraction: f64,
        min_bad_rows: u64,
        max_gzip_ratio: u64,
        parquet: &'a ParquetOptions,
    }
    serde_json::to_value(Recorded {
        chunk_bytes: o.chunk_bytes,
        max_record_bytes: o.max_record_bytes,
        channels: o.channels.names(),
        max_bad_fraction: o.max_bad_fraction,
        min_bad_rows: o.min_bad_rows,
        max_gzip_ratio: o.max_gzip_ratio,
        parquet: &o.parquet,
    })
    .expect("options serialise")
}

/// Aborts the process at a named point when `DUFF_FAILPOINT` names it: the crash tests use it to
/// kill a run exactly between staging and publication (lakes call it mid-publication too).
pub fn failpoint(name: &str) {
    if std::env::var("DUFF_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Peak resident set size of this process (Linux), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

struct RunContext<'a> {
    options: &'a RunOptions,
    constants: RunConstants,
    /// The lake's observer of the rows written to `orders`: the pipeline takes it.
    observer: std::sync::Mutex<Option<Box<dyn RowObserver>>>,
    /// The stem of this attempt's file names.
    stem: String,
    stage: Arc<dyn Stage>,
    partition: String,
    threads: usize,
}

impl RunContext<'_> {
    fn destination(&self, table: &Table, naming: Naming) -> Destination {
        Destination {
            stage: self.stage.clone(),
            dir: format!("{}/{}", table.prefix, self.partition),
            stem: self.stem.clone(),
            naming,
        }
    }
}

struct Processed {
    counts: Counts,
    extra_columns: Vec<String>,
    outputs: Vec<WrittenFile>,
    timings: Timings,
    bytes_processed: u64,
    dedup_keys: u64,
    dedup_heap_bytes: u64,
    /// The lake's observer, finished only once the run's files are to be published.
    observing: Option<observe::Observing>,
}

/// Header, windows, writers: everything between opening the input and publishing.
fn process(
    cx: &RunContext<'_>,
    input: &dyn Source,
    source: &crate::manifest::SourceInfo,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Processed, Error> {
    let max_record = cx.options.max_record_bytes;
    let window_bytes = cx.options.window_bytes(cx.threads);
    let total = (!source.gzip).then_some(source.size_bytes);
    match input.open()? {
        InputBytes::Empty => Err(Error::EmptyFile),
        InputBytes::Mapped(map) => {
            let header_clock = Instant::now();
            let header = read_header(&map, true, max_record)?;
            let mut p = Pipeline::new(cx, &header, header_clock, total)?;
            let mut start = header.data_start;
            let len = map.len();
            while start < len {
                let limit = len.min(start + window_bytes + max_record + 1);
                let eof = limit == len;
                let (next, done) = p.window(WindowBytes::Mapped(&map[..limit]), start, eof)?;
                if let Some(done) = done {
                    release_pages(&map, done.start, done.next);
                }
                start = next;
                progress(Progress {
                    bytes_done: start as u64,
                    bytes_total: total,
                    rows_read: p.rows_read(),
                });
                if eof {
                    break;
                }
            }
            p.finish(len as u64)
        }
        InputBytes::Stream(reader) => {
            let mut reader = if source.gzip {
                let options = cx.options;
                let limit = (source.size_bytes.saturating_mul(options.max_gzip_ratio))
                    .max(options.gzip_allowance_bytes);
                Box::new(Capped {
                    inner: reader,
                    read: 0,
                    allowance: Expanded {
                        limit,
                        compressed: source.size_bytes,
                        ratio: options.max_gzip_ratio,
                    },
                }) as Box<dyn Read + Send>
            } else {
                reader
            };
            let src = (source.uri.as_str(), source.gzip);
            let capacity = window_bytes + max_record + 2;
            let mut buf = Vec::with_capacity(capacity);
            let mut eof = fill(&mut reader, &mut buf, window_bytes + max_record + 1, src)?;
            let header_clock = Instant::now();
            let header = read_header(&buf, eof, max_record)?;
            let mut p = Pipeline::new(cx, &header, header_clock, total)?;
            let mut start = header.data_start;
            let mut consumed: u64 = 0;
            // Two buffers take turns: one is read into while the other's window is assembled.
            let mut spare = Vec::with_capacity(capacity);
            loop {
                if !eof {
                    eof = fill(
                        &mut reader,
                        &mut buf,
                        start + window_bytes + max_record + 1,
                        src,
                    )?;
                }
                if start >= buf.len() && eof {
                    break;
                }
                let len = buf.len();
                let bytes = WindowBytes::Owned(std::mem::take(&mut buf));
                let (next, done) = p.window(bytes, start, eof)?;
                if let Some(Done {
                    bytes: WindowBytes::Owned(done),
                    ..
                }) = done
                {
                    spare = done;
                }
                progress(Progress {
                    bytes_done: consumed + next as u64,
                    bytes_total: total,
                    rows_read: p.rows_read(),
                });
                if eof {
                    consumed += len as u64;
                    break;
                }
                // The next window starts with the line end before `next`: every range starts
                // just after one.
                consumed += (next - 1) as u64;
                buf = std::mem::take(&mut spare);
                buf.clear();
                buf.extend_from_slice(&p.parsed_bytes()[next - 1..]);
                start = 1;
            }
            p.finish(consumed)
        }
    }
}

/// A decompressed stream that fails with its [`Expanded`] once it has given more than its
/// limit.
struct Capped {
    inner: Box<dyn Read + Send>,
    read: u64,
    allowance: Expanded,
}

/// What a gzip input may expand to; the error [`Capped`] fails with.
#[derive(Debug, Clone, Copy)]
struct Expanded {
    limit: u64,
    compressed: u64,
    ratio: u64,
}

impl std::fmt::Display for Expanded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decompressed past {} bytes", self.limit)
    }
}

impl std::error::Error for Expanded {}

impl Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.allowance.limit {
            return Err(std::io::Error::other(self.allowance));
        }
        Ok(n)
    }
}

/// Reads until `buf` holds `want` bytes or the stream ends; returns whether it ended.
/// `source` is the input's URI and whether it is gzip, to classify read errors.
fn fill(
    reader: &mut dyn Read,
    buf: &mut Vec<u8>,
    want: usize,
    source: (&str, bool),
) -> Result<bool, Error> {
    let mut len = buf.len();
    if buf.capacity() < want {
        buf.reserve(want - len);
    }
    // Read straight into the window buffer (no intermediate copy).
    buf.resize(want.max(len), 0);
    let result = loop {
        if len >= want {
            break Ok(false);
        }
        match reader.read(&mut buf[len..want]) {
            Ok(0) => break Ok(true),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if source.1 && e.get_ref().is_some_and(|i| i.is::<Expanded>()) => {
                let Expanded {
                    limit,
                    compressed,
                    ratio,
                } = *e
                    .into_inner()
                    .and_then(|i| i.downcast::<Expanded>().ok())
                    .expect("checked above");
                break Err(Error::GzipExpansion {
                    path: source.0.to_string(),
                    limit,
                    compressed,
                    ratio,
                });
            }
            Err(e) => {
                break Err(match StorageError::from_io(e) {
                    Ok(storage) => Error::Storage(storage),
                    Err(e) if source.1 => Error::Gzip {
                        path: source.0.to_string(),
                        source: e,
                    },
                    Err(e) => Error::io(source.0, e),
                });
            }
        }
    };
    buf.truncate(len);
    result
}

/// Drops already-processed pages of the map from this process's resident set, so memory stays
/// bounded by the window, not the file. (The pages stay in the OS page cache.)
fn release_pages(map: &memmap2::Mmap, from: usize, to: usize) {
    const PAGE: usize = 4096;
    let start = from / PAGE * PAGE;
    let end = to / PAGE * PAGE;
    if end > start {
        // SAFETY: the mapping is read-only and file-backed: after MADV_DONTNEED a later access
        // faults the same bytes back in from the file, so no reference observes a change.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }
}

pub(crate) struct Header {
    pub map: HeaderMap,
    /// First byte after the header's line end.
    pub data_start: usize,
    /// Line number of the first line after the header.
    pub first_data_line: u64,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

pub(crate) fn read_header(buf: &[u8], eof: bool, max_record: usize) -> Result<Header, Error> {
    let mut at = if buf.starts_with(BOM) { BOM.len() } else { 0 };
    let mut line = 1;
    while at < buf.len() && matches!(buf[at], b'\n' | b'\r') {
        line += (buf[at] == b'\n') as u64;
        at += 1;
    }
    if at >= buf.len() {
        return Err(Error::EmptyFile);
    }
    let mut reader = TotalReaderBuilder::new()
        .has_headers(false)
        .from_bytes(&buf[at..]);
    let record = reader.split_record().ok_or(Error::EmptyFile)?;
    let end = at + record.len();
    let terminated = record.ends_with(b"\n");
    if record.len() > max_record || (!terminated && !eof) {
        return Err(Error::LineTooLong {
            line,
            max_bytes: max_record,
        });
    }
    let content = record.strip_suffix(b"\n").unwrap_or(record);
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    let header_newlines = memchr::memchr_iter(b'\n', record).count() as u64;
    Ok(Header {
        map: parse_header(content)?,
        data_start: end,
        first_data_line: line + header_newlines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_of_bad_rows_fails_a_run_only_past_the_minimum_count() {
        let options = RunOptions::default();
        // A small file's few bad rows: its good rows land.
        assert!(!options.too_many_bad_rows(1, 7));
        assert!(!options.too_many_bad_rows(2, 10));
        assert!(!options.too_many_bad_rows(99, 99));
        // A systematically broken file.
        assert!(options.too_many_bad_rows(100, 100));
        assert!(options.too_many_bad_rows(101, 1000));
        assert!(!options.too_many_bad_rows(100, 1000));
        assert!(!options.too_many_bad_rows(1000, 1_000_000));
        // Without a minimum, the fraction alone decides.
        let strict = RunOptions {
            min_bad_rows: 0,
            ..RunOptions::default()
        };
        assert!(strict.too_many_bad_rows(1, 7));
        assert!(!strict.too_many_bad_rows(1, 10));
        assert!(!strict.too_many_bad_rows(0, 0));
    }

    #[test]
    fn options_that_cannot_run_are_refused() {
        assert!(RunOptions::default().validate().is_ok());
        let with = |parquet: ParquetOptions| RunOptions {
            parquet,
            ..RunOptions::default()
        };
        for bad in [
            RunOptions {
                chunk_bytes: 0,
                ..RunOptions::default()
            },
            RunOptions {
                max_bad_fraction: 1.5,
                ..RunOptions::default()
            },
            with(ParquetOptions {
                batch_rows: 0,
                ..ParquetOptions::default()
            }),
            with(ParquetOptions {
                row_group_rows: 0,
                ..ParquetOptions::default()
            }),
            with(ParquetOptions {
                row_group_bytes: 0,
                ..ParquetOptions::default()
            }),
        ] {
            assert!(matches!(bad.validate(), Err(Error::Config(_))), "{bad:?}");
        }
    }
}
