//! The one error type of `duff-delta`.

use duff_engine::{StorageError, StorageErrorKind};

/// Everything that can fail in the lake's Delta layer. Converted into the engine's
/// [`duff_engine::Error`] at the [`duff_engine::Lake`] boundary, keeping whether a retry can
/// help.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Delta operation (log read, commit, checkpoint) failed.
    #[error("Delta table {table}: {operation}: {source}")]
    Delta {
        /// The table's name.
        table: String,
        /// What was being done: `load`, `commit`, `snapshot`, …
        operation: &'static str,
        /// deltalake's error.
        #[source]
        source: Box<deltalake_core::DeltaTableError>,
    },
    /// Reading or writing a data file through the object store failed.
    #[error("{path}: {operation}: {source}")]
    ObjectStore {
        /// The object, relative to the store's root.
        path: String,
        /// What was being done: `get`, `put`, `list`, …
        operation: &'static str,
        /// object_store's error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A Parquet footer could not be read or a file could not be written.
    #[error("{path}: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// The parquet crate's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// The lake holds data in a layout this version does not read.
    #[error("{0}")]
    Layout(String),
    /// Anything else that is a bug or a broken invariant.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn delta(
        table: &str,
        operation: &'static str,
        source: deltalake_core::DeltaTableError,
    ) -> Self {
        Error::Delta {
            table: table.to_string(),
            operation,
            source: Box::new(source),
        }
    }

    /// Whether retrying later may succeed (I/O and object-store failures, commit races that
    /// ran out of retries); a broken table or layout will not heal by itself.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Delta { source, .. } => matches!(
                source.as_ref(),
                deltalake_core::DeltaTableError::ObjectStore { .. }
                    | deltalake_core::DeltaTableError::Io { .. }
                    | deltalake_core::DeltaTableError::Transaction { .. }
            ),
            Error::ObjectStore { source, .. } => !matches!(
                source.as_ref(),
                object_store::Error::NotFound { .. } | object_store::Error::PermissionDenied { .. }
            ),
            Error::Parquet { .. } | Error::Layout(_) | Error::Invalid(_) => false,
        }
    }
}

/// The engine sees Delta failures as storage failures of the lake, classified for retries.
impl From<Error> for duff_engine::Error {
    fn from(e: Error) -> Self {
        let kind = if e.is_retryable() {
            StorageErrorKind::Transient
        } else {
            StorageErrorKind::Permanent
        };
        let (uri, operation) = match &e {
            Error::Delta {
                table, operation, ..
            } => (table.clone(), operation.to_string()),
            Error::ObjectStore {
                path, operation, ..
            } => (path.clone(), operation.to_string()),
            Error::Parquet { path, .. } => (path.clone(), "read footer".to_string()),
            Error::Layout(_) | Error::Invalid(_) => (String::new(), "open lake".to_string()),
        };
        duff_engine::Error::Storage(StorageError {
            kind,
            uri,
            operation,
            message: e.to_string(),
        })
    }
}
