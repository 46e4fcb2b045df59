//! Parquet table writers: one thread per table, fed batches in file order.
//!
//! Batches are cut into fixed-size slices before they reach the Parquet encoder, so page, row
//! group and file boundaries depend only on the data, never on chunk or window sizes: the same
//! input gives byte-identical files with any number of threads.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use parquet::arrow::ArrowWriter;

use super::options::ParquetOptions;
use super::parts::{Destination, Parts, write_batch};
use crate::error::Error;
use crate::lake::manifest::WrittenFile;
use crate::schema::Table;

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
