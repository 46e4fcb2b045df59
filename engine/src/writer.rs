//! Parquet table writers: one thread per table, fed batches in file order.
//!
//! Batches are cut into fixed-size slices before they reach the Parquet encoder, so page, row
//! group and file boundaries depend only on the data, never on chunk or window sizes: the same
//! input gives byte-identical files with any number of threads.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::schema::Table;
use crate::storage::{ObjectWriter, Stage};

pub use crate::star_writer::write_orders_and_fact;

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    #[default]
    Snappy,
    Zstd,
}

impl std::str::FromStr for Codec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "snappy" => Ok(Codec::Snappy),
            "zstd" => Ok(Codec::Zstd),
            _ => Err(format!("unknown codec {s:?} (expected snappy or zstd)")),
        }
    }
}

/// How tables are laid out in Parquet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ParquetOptions {
    pub codec: Codec,
    /// Rows handed to the encoder at a time (fixed, for deterministic output).
    pub batch_rows: usize,
    /// A row group is closed once it holds this many rows (for orders and fact_orders, rounded
    /// up to a multiple of `batch_rows`)...
    pub row_group_rows: usize,
    /// ...or this many bytes: of data before encoding for orders and fact_orders (the same for
    /// any thread count; a row group is buffered encoded, so this bounds memory), encoded for
    /// the others.
    pub row_group_bytes: usize,
    /// A part file is closed once it reaches this many bytes; the next part starts.
    pub file_bytes: u64,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            codec: Codec::Snappy,
            batch_rows: 8 * 1024,
            row_group_rows: 1 << 20,
            row_group_bytes: 256 << 20,
            file_bytes: 512 << 20,
        }
    }
}

impl ParquetOptions {
    pub(crate) fn properties(&self, table: &Table) -> WriterProperties {
        let compression = match self.codec {
            Codec::Snappy => Compression::SNAPPY,
            Codec::Zstd => Compression::ZSTD(ZstdLevel::try_new(1).expect("valid level")),
        };
        let mut b = WriterProperties::builder()
            .set_compression(compression)
            .set_created_by(format!("duff-engine {}", env!("CARGO_PKG_VERSION")))
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_max_row_group_bytes(Some(self.row_group_bytes))
            .set_write_batch_size(self.batch_rows);
        // Dictionaries pay off for repeated values (names, ids, prices, units, the constant
        // lineage columns); sequences (line numbers, order ids) are delta-encoded; the rest
        // (totals) is plain. Smaller pages also mean less work for the compressor.
        for c in table.columns {
            let path = ColumnPath::from(c.name);
            b = match c.name {
                "source_line" | "order_id" => b
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED),
                "total_price" | "total_volume" | "raw" | "raw_text" | "detail" => {
                    b.set_column_dictionary_enabled(path, false)
                }
                _ => b.set_column_dictionary_enabled(path, true),
            };
        }
        b.build()
    }
}

/// A file written for a run, relative to the lake root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WrittenFile {
    pub table: String,
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// What a writer thread returns.
pub(crate) struct WriterReport {
    pub files: Vec<WrittenFile>,
    pub busy: Duration,
}

/// The sending half of a table writer thread.
pub(crate) struct TableWriter {
    tx: Option<SyncSender<RecordBatch>>,
    handle: Option<JoinHandle<Result<WriterReport, Error>>>,
}

/// File naming within a table's partition directory.
#[derive(Clone)]
pub(crate) enum Naming {
    /// `<stem>-<n>.parquet`, a new part every `file_bytes`.
    Parts,
    /// `<stem>.parquet`, one file.
    Single,
}

pub(crate) struct Destination {
    /// The run's stage the files are created in.
    pub stage: Arc<dyn Stage>,
    /// Directory relative to the lake root, e.g. `orders/pa_date=2026-11-22`.
    pub dir: String,
    pub stem: String,
    pub naming: Naming,
}

impl TableWriter {
    pub fn spawn(table: &'static Table, dest: Destination, options: ParquetOptions) -> Self {
        let (tx, rx) = sync_channel::<RecordBatch>(4);
        let handle = std::thread::Builder::new()
            .name(format!("write-{}", table.name))
            .spawn(move || write_table(table, dest, options, rx))
            .expect("spawn writer thread");
        TableWriter {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Queues a batch; blocks while the writer is behind (bounded memory). `Err(WriterStopped)`
    /// when the writer stopped on an error, which [`TableWriter::finish`] reports.
    pub fn send(&self, batch: RecordBatch) -> Result<(), Error> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let tx = self.tx.as_ref().expect("not finished");
        tx.send(batch).map_err(|_| Error::WriterStopped)
    }

    /// No more batches: the thread writes what it has and ends, while the caller goes on.
    pub fn close(&mut self) {
        drop(self.tx.take());
    }

    pub fn finish(&mut self) -> Result<WriterReport, Error> {
        drop(self.tx.take());
        self.handle
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| Error::WriterPanicked)?
    }
}

/// No thread outlives the run: when a run stops early, the writer finishes what it was given.
impl Drop for TableWriter {
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = self.finish();
        }
    }
}

fn write_table(
    table: &'static Table,
    dest: Destination,
    options: ParquetOptions,
    rx: Receiver<RecordBatch>,
) -> Result<WriterReport, Error> {
    let schema = table.arrow_schema();
    let mut out = Parts::new(table, dest, &options);
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut pending_rows = 0usize;
    let mut busy = Duration::ZERO;
    for batch in rx {
        let t = Instant::now();
        // Cut at global multiples of `batch_rows`: whole slices go to the encoder without a
        // copy; only the pieces that straddle a boundary are concatenated.
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (options.batch_rows - pending_rows).min(batch.num_rows() - offset);
            let piece = batch.slice(offset, take);
            offset += take;
            if pending_rows == 0 && take == options.batch_rows {
                write_batch(&mut out, &piece)?;
                continue;
            }
            pending.push(piece);
            pending_rows += take;
            if pending_rows == options.batch_rows {
                write_batch(&mut out, &concat_batches(&schema, &pending)?)?;
                pending.clear();
                pending_rows = 0;
            }
        }
        busy += t.elapsed();
    }
    let t = Instant::now();
    if pending_rows > 0 {
        write_batch(&mut out, &concat_batches(&schema, &pending)?)?;
    }
    let files = out.finish()?;
    busy += t.elapsed();
    Ok(WriterReport { files, busy })
}

/// An open Parquet part file, written by some kind of writer.
pub(crate) trait PartFile: Sized {
    fn open(
        file: Box<dyn ObjectWriter>,
        table: &'static Table,
        options: &ParquetOptions,
    ) -> Result<Self, Error>;
    /// Bytes so far, including what is buffered for the open row group.
    fn size(&self) -> u64;
    /// Writes the footer and seals the file; returns its size.
    fn close(self) -> Result<u64, Error>;
}

impl PartFile for ArrowWriter<Box<dyn ObjectWriter>> {
    fn open(
        file: Box<dyn ObjectWriter>,
        table: &'static Table,
        options: &ParquetOptions,
    ) -> Result<Self, Error> {
        Ok(ArrowWriter::try_new(
            file,
            table.arrow_schema(),
            Some(options.properties(table)),
        )?)
    }

    fn size(&self) -> u64 {
        (self.bytes_written() + self.in_progress_size()) as u64
    }

    fn close(self) -> Result<u64, Error> {
        self.into_inner()?.finish()
    }
}

/// A table's part files, rolled over at `file_bytes`.
pub(crate) struct Parts<F> {
    table: &'static Table,
    dest: Destination,
    file_bytes: u64,
    properties: ParquetOptions,
    /// The open part: its writer, path relative to the lake root, and rows so far.
    current: Option<(F, String, u64)>,
    files: Vec<WrittenFile>,
}

impl<F: PartFile> Parts<F> {
    pub fn new(table: &'static Table, dest: Destination, options: &ParquetOptions) -> Self {
        Parts {
            table,
            dest,
            file_bytes: options.file_bytes,
            properties: options.clone(),
            current: None,
            files: Vec::new(),
        }
    }

    /// Writes into the open part (opening one first if needed) with `write`, which returns the
    /// rows it wrote; closes the part once it reaches the size limit.
    pub fn write(&mut self, write: impl FnOnce(&mut F) -> Result<u64, Error>) -> Result<(), Error> {
        if self.current.is_none() {
            let name = match self.dest.naming {
                Naming::Parts => format!("{}-{}.parquet", self.dest.stem, self.files.len()),
                Naming::Single => format!("{}.parquet", self.dest.stem),
            };
            let rel = format!("{}/{}", self.dest.dir, name);
            let file = F::open(self.dest.stage.create(&rel)?, self.table, &self.properties)?;
            self.current = Some((file, rel, 0));
        }
        let (file, _, rows) = self.current.as_mut().expect("opened above");
        *rows += write(file)?;
        if matches!(self.dest.naming, Naming::Parts) && file.size() >= self.file_bytes {
            self.close_current()?;
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<(), Error> {
        if let Some((file, rel, rows)) = self.current.take() {
            let bytes = file.close()?;
            self.files.push(WrittenFile {
                table: self.table.name.to_string(),
                path: rel,
                rows,
                bytes,
            });
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Vec<WrittenFile>, Error> {
        self.close_current()?;
        Ok(self.files)
    }
}

/// Writes `batch` into a part of `parts`.
fn write_batch(
    parts: &mut Parts<ArrowWriter<Box<dyn ObjectWriter>>>,
    batch: &RecordBatch,
) -> Result<(), Error> {
    parts.write(|w| {
        w.write(batch)?;
        Ok(batch.num_rows() as u64)
    })
}

pub(crate) fn create_parent(path: &Path) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    Ok(())
}

/// Encodes batches of a table into one in-memory Parquet file with the engine's settings (the
/// Parquet-encoding benchmark uses this).
pub fn encode_batches(
    table: &'static Table,
    batches: &[RecordBatch],
    options: &ParquetOptions,
) -> Result<Vec<u8>, Error> {
    let mut writer = ArrowWriter::try_new(
        Vec::new(),
        table.arrow_schema(),
        Some(options.properties(table)),
    )?;
    for batch in batches {
        writer.write(batch)?;
    }
    Ok(writer.into_inner()?)
}

/// Writes one small table in a single call (dimensions).
pub(crate) fn write_small_table(
    table: &'static Table,
    dest: Destination,
    options: &ParquetOptions,
    batch: &RecordBatch,
) -> Result<Option<WrittenFile>, Error> {
    if batch.num_rows() == 0 {
        return Ok(None);
    }
    let mut out = Parts::new(table, dest, options);
    write_batch(&mut out, batch)?;
    Ok(out.finish()?.pop())
}
