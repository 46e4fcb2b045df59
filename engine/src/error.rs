//! The engine's one error type.

use std::path::PathBuf;

/// Everything that can stop a run. Variants marked *file-level* are problems of the input
/// itself: the run is recorded as `failed` in its manifest and retrying cannot help. The others
/// are problems of the environment (I/O, configuration) and may be retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// File-level: nothing but (at most) a byte-order mark and blank lines.
    #[error("the file is empty: a header row is required")]
    EmptyFile,
    /// File-level.
    #[error("the header is not valid UTF-8")]
    HeaderNotUtf8,
    /// File-level.
    #[error("the header (line 1) is not valid CSV: {0}")]
    HeaderQuoting(&'static str),
    /// File-level.
    #[error("missing required column(s) {}; the header has: {}", .missing.join(", "), .found.join(", "))]
    MissingColumns {
        missing: Vec<String>,
        found: Vec<String>,
    },
    /// File-level.
    #[error("column {0:?} appears more than once in the header")]
    DuplicateColumn(String),
    /// File-level: a single physical line longer than the record limit.
    #[error("line {line} is longer than the limit of {max_bytes} bytes (--max-record-bytes)")]
    LineTooLong { line: u64, max_bytes: usize },
    /// File-level.
    #[error(
        "too many bad rows: {quarantined} of {read} rows quarantined, above the limit of {:.1}% \
         (--max-bad-fraction, applied from {min_rows} bad rows: --min-bad-rows)",
        .max_fraction * 100.0
    )]
    TooManyBadRows {
        quarantined: u64,
        read: u64,
        max_fraction: f64,
        min_rows: u64,
    },
    /// File-level: a gzip input decompresses to more than its allowance (a gzip bomb).
    #[error(
        "{path}: the gzip stream expands past {limit} bytes, more than {ratio}× its {compressed} \
         compressed bytes (--max-gzip-ratio)"
    )]
    GzipExpansion {
        path: String,
        limit: u64,
        compressed: u64,
        ratio: u64,
    },
    /// File-level: earlier attempts of the run all ended without a result (a poison input).
    #[error(
        "gave up after {attempts} attempts that each ended without a result (out of memory, a \
         timeout or a crash): a poison input, not retried again"
    )]
    GaveUp { attempts: u32 },
    /// File-level: the gzip stream is corrupt or truncated.
    #[error("{path}: not a valid gzip stream: {source}")]
    Gzip {
        path: String,
        source: std::io::Error,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{path}: invalid run manifest: {source}")]
    Manifest {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The run reached its `stop_at` before its last window: nothing was committed.
    #[error("stopped at its deadline before the end of the input; nothing was committed")]
    OutOfTime,
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
        use crate::storage::StorageErrorKind;
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
