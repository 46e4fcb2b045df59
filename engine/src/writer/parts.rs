//! A table's part files under a run's stage: their names, their rollover, and the one kind of
//! open file every writer of the run goes through.

use std::sync::Arc;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;

use super::options::ParquetOptions;
use crate::error::Error;
use crate::lake::manifest::WrittenFile;
use crate::lake::storage::{ObjectWriter, Stage};
use crate::schema::Table;

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
pub(super) fn write_batch(
    parts: &mut Parts<ArrowWriter<Box<dyn ObjectWriter>>>,
    batch: &RecordBatch,
) -> Result<(), Error> {
    parts.write(|w| {
        w.write(batch)?;
        Ok(batch.num_rows() as u64)
    })
}
