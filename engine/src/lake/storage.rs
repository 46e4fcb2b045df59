//! The storage interface of the engine: where input bytes come from ([`Source`]) and where the
//! lake is written ([`Lake`], [`Stage`], [`ObjectWriter`]).
//!
//! The engine core only sees these traits. [`crate::lake::input::LocalInput`] and
//! [`crate::lake::LocalLake`] implement them over local files; the `duff-s3` crate implements
//! them over S3 (ranged GETs, multipart uploads, conditional manifest writes).
//!
//! The commit protocol every lake follows:
//! 1. [`Lake::stage`] a run; [`Stage::create`] each output file (invisible to readers, or at
//!    least not yet committed);
//! 2. [`Stage::publish`] the finished files under their final names (deterministic: same run id,
//!    same names, same bytes) and remove stale parts an earlier attempt of the run left behind;
//! 3. [`Lake::commit`] the manifest, create-only: of two concurrent attempts exactly one commits.
//!    Readers only consider rows of runs with a committed `succeeded` manifest.

use std::io::{Read, Write};

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use memmap2::Mmap;

use crate::error::Error;
pub use crate::error::{StorageError, StorageErrorKind};
use crate::lake::manifest::{Manifest, SourceInfo, WrittenFile};

/// The bytes of an input: mapped whole, or streamed (decompressed if needed).
pub enum InputBytes {
    /// The whole input, memory-mapped: read in place, its pages released as windows are done.
    Mapped(Mmap),
    /// Read errors that carry a [`StorageError`] (as the `io::Error`'s inner error) keep their
    /// classification; other errors of a gzip stream are reported as a corrupt file.
    Stream(Box<dyn Read + Send>),
    /// A zero-length input (which cannot be mapped).
    Empty,
}

/// An input object: its identity and its bytes.
pub trait Source: Send + Sync {
    /// Identity of the object (URI, size, version stamp); the run id is derived from it.
    fn info(&self) -> SourceInfo;
    /// When the object was uploaded (S3 LastModified) or last modified (local file). It is the
    /// default partition date and the default `ingested_at`, so a retry days later writes the
    /// same partition and the same bytes.
    fn modified(&self) -> DateTime<Utc>;
    /// Opens the bytes for one pass.
    fn open(&self) -> Result<InputBytes, Error>;
}

/// A lake root: a local directory or an S3 prefix.
pub trait Lake: Send + Sync {
    /// `file:///…` or `s3://bucket/prefix`, for logs and errors.
    fn uri(&self) -> String;
    /// The committed manifest of a run, if any.
    fn read_manifest(&self, run_id: &str) -> Result<Option<Manifest>, Error>;
    /// The stem of this attempt's file names (`<stem>-<n>.parquet`) and of its stage. Lakes
    /// whose readers only see committed files (Delta tables) give every attempt its own stem,
    /// so attempts never write, publish or delete each other's files; by default the stem is
    /// the run id, and a retry writes the same names.
    fn attempt_stem(&self, run_id: &str) -> String {
        run_id.to_string()
    }
    /// The partition date an earlier attempt of the run already committed some of its tables
    /// with, if any: a retry must write the same partition, whatever its own options say.
    fn committed_pa_date(&self, run_id: &str) -> Result<Option<chrono::NaiveDate>, Error> {
        let _ = run_id;
        Ok(None)
    }
    /// Starts writing an attempt's files under `stem` (see [`Lake::attempt_stem`]), discarding
    /// what an interrupted attempt with the same stem left in staging.
    fn stage(&self, stem: &str) -> Result<Box<dyn Stage>, Error>;
    /// Brings what the lake derives from committed runs up to date (a Delta lake folds them
    /// into its current state). Called at the end of every run, committed or skipped, so a
    /// run returns with its effects in place; by default there is nothing to do.
    fn settle(&self) -> Result<(), Error> {
        Ok(())
    }
    /// Writes the manifest: the commit point. Unless `overwrite`, the write is create-only and
    /// returns the manifest that is already there when another attempt committed first.
    fn commit(&self, manifest: &Manifest, overwrite: bool) -> Result<Commit, Error>;
    /// What sees the `orders` rows of the attempt `stem` (partition `pa_date`) as they are
    /// written, if the lake keeps something derived from them: a Delta lake aggregates them
    /// for its marts here rather than reading the files back after the commit. None by
    /// default.
    fn observer(&self, stem: &str, pa_date: chrono::NaiveDate) -> Option<Box<dyn RowObserver>> {
        let _ = (stem, pa_date);
        None
    }
}

/// Sees every row an attempt writes to `orders`, in input order, on a thread of its own
/// beside the run's (see [`Lake::observer`]). It cannot fail a run: what it derives is an
/// optimisation its lake checks before use.
pub trait RowObserver: Send {
    /// The next rows, in input order.
    fn rows(&mut self, orders: &RecordBatch);
    /// Every row was seen (the run's last files may still be being written). Not called
    /// when the attempt's rows are rejected; an attempt may still fail after it (writing
    /// its files), so what it leaves must be checked against the committed files.
    fn finish(self: Box<Self>);
}

/// The result of [`Lake::commit`].
#[derive(Debug)]
pub enum Commit {
    /// This attempt's manifest was written: the run is committed with it.
    Written,
    /// Another attempt of the same run committed first; nothing was written.
    AlreadyCommitted(Box<Manifest>),
}

/// The files of one run being written.
pub trait Stage: Send + Sync {
    /// Creates the file at `rel` (a path relative to the lake root, `/`-separated).
    fn create(&self, rel: &str) -> Result<Box<dyn ObjectWriter>, Error>;
    /// Makes finished files visible under their final names, then deletes other files of the
    /// same run id in their directories (parts left by an attempt with different options).
    fn publish(&self, files: &[WrittenFile]) -> Result<(), Error>;
    /// Drops everything staged (best effort; used on failure).
    fn abort(&self);
    /// The first storage error an object writer hit, if any. Writers report failures through
    /// `std::io::Write`, which loses their classification; this keeps it.
    fn take_failure(&self) -> Option<Error> {
        None
    }
}

/// A file being written. Dropped without [`ObjectWriter::finish`], it leaves nothing behind.
pub trait ObjectWriter: Write + Send {
    /// Flushes and seals the file; returns its size in bytes.
    fn finish(self: Box<Self>) -> Result<u64, Error>;
}
