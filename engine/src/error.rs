//! The engine's one error type, and the storage failures it carries.

use std::fmt;
use std::path::PathBuf;

/// Everything that can stop a run. Variants marked *file-level* are problems of the input
/// itself: the run is recorded as `failed` in its manifest and retrying cannot help. The others
/// are problems of the environment (I/O, configuration) and may be retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// File-level: nothing but (at most) a byte-order mark and blank lines.
    #[error("the file is empty: a header row is required")]
    EmptyFile,
    /// File-level: a header column name is not valid UTF-8.
    #[error("the header is not valid UTF-8")]
    HeaderNotUtf8,
    /// File-level: the header breaks the quoting rules; the text says how.
    #[error("the header (line 1) is not valid CSV: {0}")]
    HeaderQuoting(&'static str),
    /// File-level: the header lacks some of the required columns.
    #[error("missing required column(s) {}; the header has: {}", .missing.join(", "), .found.join(", "))]
    MissingColumns {
        /// The required columns not found, by their canonical names.
        missing: Vec<String>,
        /// Every column name of the header, trimmed, in order.
        found: Vec<String>,
    },
    /// File-level: a required column (named canonically) matches two header columns.
    #[error("column {0:?} appears more than once in the header")]
    DuplicateColumn(String),
    /// File-level: a single physical line longer than the record limit.
    #[error("line {line} is longer than the limit of {max_bytes} bytes (--max-record-bytes)")]
    LineTooLong {
        /// The line's number in the input, from 1.
        line: u64,
        /// The record limit (`RunOptions::max_record_bytes`), in bytes.
        max_bytes: usize,
    },
    /// File-level: the share of quarantined rows is above the limit, a sign of a systematically
    /// broken file (see `RunOptions::max_bad_fraction`). Its manifest keeps the counts.
    #[error(
        "too many bad rows: {quarantined} of {read} rows quarantined, above the limit of {:.1}% \
         (--max-bad-fraction, applied from {min_rows} bad rows: --min-bad-rows)",
        .max_fraction * 100.0
    )]
    TooManyBadRows {
        /// Rows quarantined.
        quarantined: u64,
        /// Rows read.
        read: u64,
        /// The largest share of quarantined rows allowed, between 0 and 1.
        max_fraction: f64,
        /// Quarantined rows below which no share fails a run.
        min_rows: u64,
    },
    /// File-level: a gzip input decompresses to more than its allowance (a gzip bomb).
    #[error(
        "{path}: the gzip stream expands past {limit} bytes, more than {ratio}× its {compressed} \
         compressed bytes (--max-gzip-ratio)"
    )]
    GzipExpansion {
        /// The input's URI.
        path: String,
        /// Decompressed bytes the input was allowed: `ratio × compressed`, or the fixed
        /// allowance if that is more.
        limit: u64,
        /// The input's size as stored, in bytes.
        compressed: u64,
        /// The largest expansion allowed (`RunOptions::max_gzip_ratio`).
        ratio: u64,
    },
    /// File-level: earlier attempts of the run all ended without a result (a poison input).
    #[error(
        "gave up after {attempts} attempts that each ended without a result (out of memory, a \
         timeout or a crash): a poison input, not retried again"
    )]
    GaveUp {
        /// Earlier attempts that ended without a result.
        attempts: u32,
    },
    /// File-level: the gzip stream is corrupt or truncated.
    #[error("{path}: not a valid gzip stream: {source}")]
    Gzip {
        /// The input's URI.
        path: String,
        /// What the decoder reported.
        source: std::io::Error,
    },

    /// A local file or directory could not be read or written. Retryable unless the path is
    /// missing or access is denied.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What the operating system reported.
        source: std::io::Error,
    },
    /// Encoding a Parquet file failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Building an Arrow batch failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A committed run manifest could not be read back as one; not retryable.
    #[error("{path}: invalid run manifest: {source}")]
    Manifest {
        /// Where the manifest is: a local path or an `s3://` URI.
        path: PathBuf,
        /// Why it does not parse.
        source: serde_json::Error,
    },
    /// A storage backend failed; [`StorageError::kind`] says whether a retry may help.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The run's options or the lake's settings are invalid; the text says which. Not
    /// retryable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The run reached its `stop_at` before its last window: nothing was committed.
    #[error("stopped at its deadline before the end of the input; nothing was committed")]
    OutOfTime,
    /// A thread encoding or writing a table panicked.
    #[error("a writer thread panicked")]
    WriterPanicked,
    /// A writer thread stopped early; the error that stopped it is reported instead when known.
    #[error("a writer thread stopped early")]
    WriterStopped,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// True when the input itself is at fault: retrying the same input gives the same error.
    pub fn is_file_level(&self) -> bool {
        matches!(
            self,
            Error::EmptyFile
                | Error::HeaderNotUtf8
                | Error::HeaderQuoting(_)
                | Error::MissingColumns { .. }
                | Error::DuplicateColumn(_)
                | Error::LineTooLong { .. }
                | Error::TooManyBadRows { .. }
                | Error::GzipExpansion { .. }
                | Error::GaveUp { .. }
                | Error::Gzip { .. }
        )
    }

    /// True when retrying the same run later may succeed (throttling, network, disk, a crashed
    /// writer); false for file-level errors and permanent environment errors (missing object,
    /// access denied, an object replaced while it was read, bad configuration).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Storage(e) => e.kind == StorageErrorKind::Transient,
            Error::Config(_) | Error::Manifest { .. } => false,
            Error::Io { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ),
            e => !e.is_file_level(),
        }
    }

    /// A stable code for manifests, logs and exit statuses.
    pub fn code(&self) -> &'static str {
        match self {
            Error::EmptyFile => "empty_file",
            Error::HeaderNotUtf8 => "header_not_utf8",
            Error::HeaderQuoting(_) => "header_quoting",
            Error::MissingColumns { .. } => "missing_columns",
            Error::DuplicateColumn(_) => "duplicate_column",
            Error::LineTooLong { .. } => "line_too_long",
            Error::TooManyBadRows { .. } => "too_many_bad_rows",
            Error::GzipExpansion { .. } => "gzip_expansion",
            Error::GaveUp { .. } => "gave_up",
            Error::Gzip { .. } => "gzip_corrupt",
            Error::Io { .. } => "io",
            Error::Parquet(_) => "parquet",
            Error::Arrow(_) => "arrow",
            Error::Manifest { .. } => "manifest",
            Error::Storage(e) => e.kind.code(),
            Error::Config(_) => "config",
            Error::OutOfTime => "out_of_time",
            Error::WriterPanicked => "writer_panicked",
            Error::WriterStopped => "writer_stopped",
        }
    }
}

/// What kind of storage failure happened: decides between retrying and failing fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// Throttling, 5xx, connection resets, timeouts: retrying later may succeed.
    Transient,
    /// The object or bucket does not exist.
    NotFound,
    /// Access denied or bad credentials.
    Denied,
    /// The object changed while it was being read (its ETag no longer matches).
    Changed,
    /// Anything else that retrying will not fix (invalid request, bad configuration).
    Permanent,
}

impl StorageErrorKind {
    /// A stable code for manifests and logs, the kind's part of [`Error::code`].
    pub fn code(self) -> &'static str {
        match self {
            StorageErrorKind::Transient => "storage_transient",
            StorageErrorKind::NotFound => "storage_not_found",
            StorageErrorKind::Denied => "storage_denied",
            StorageErrorKind::Changed => "object_changed",
            StorageErrorKind::Permanent => "storage_permanent",
        }
    }
}

/// A failure of a storage backend, with where it happened.
#[derive(Debug)]
pub struct StorageError {
    /// What kind of failure it is, which decides whether to retry.
    pub kind: StorageErrorKind,
    /// The object or prefix concerned, e.g. `s3://bucket/key`.
    pub uri: String,
    /// What was being done, e.g. `GET bytes=0-8388607`.
    pub operation: String,
    /// What the backend reported (its error code or message).
    pub message: String,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}: {}",
            self.uri,
            self.operation,
            match self.kind {
                StorageErrorKind::Transient => "transient failure (retryable)",
                StorageErrorKind::NotFound => "not found",
                StorageErrorKind::Denied => "access denied",
                StorageErrorKind::Changed => "the object changed while it was read",
                StorageErrorKind::Permanent => "failed",
            },
            self.message
        )
    }
}

impl std::error::Error for StorageError {}

impl StorageError {
    /// Wraps the error for transport through `std::io` (Read/Write implementations).
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    /// Recovers a storage error carried by an `io::Error`, if it is one.
    pub fn from_io(e: std::io::Error) -> Result<StorageError, std::io::Error> {
        if e.get_ref().is_some_and(|i| i.is::<StorageError>()) {
            let inner = e.into_inner().expect("checked above");
            Ok(*inner.downcast::<StorageError>().expect("checked above"))
        } else {
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_survive_a_trip_through_io() {
        let e = StorageError {
            kind: StorageErrorKind::Changed,
            uri: "s3://b/k".into(),
            operation: "GET".into(),
            message: "412".into(),
        };
        let back = StorageError::from_io(e.into_io()).unwrap();
        assert_eq!(back.kind, StorageErrorKind::Changed);
        assert_eq!(back.uri, "s3://b/k");
        let plain = std::io::Error::other("boom");
        assert!(StorageError::from_io(plain).is_err());
    }
}
