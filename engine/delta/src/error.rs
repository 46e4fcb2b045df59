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
        use deltalake_core::DeltaTableError as Delta;
        match self {
            Error::Delta { source, .. } => match source.as_ref() {
                Delta::ObjectStore { .. } | Delta::Io { .. } | Delta::Transaction { .. } => true,
                // The kernel reads the log: its store failures are the store's (throttling,
                // connections, 5xx after the client's own retries).
                Delta::KernelError(delta_kernel::Error::ObjectStore(e)) => store_may_heal(e),
                Delta::KernelError(delta_kernel::Error::IOError(_)) => true,
                _ => false,
            },
            Error::ObjectStore { source, .. } => store_may_heal(source),
            Error::Parquet { .. } | Error::Layout(_) | Error::Invalid(_) => false,
        }
    }
}

/// Whether a store failure may pass: not a missing object or a refused access.
fn store_may_heal(e: &object_store::Error) -> bool {
    !matches!(
        e,
        object_store::Error::NotFound { .. } | object_store::Error::PermissionDenied { .. }
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn through_the_kernel(e: delta_kernel::Error) -> Error {
        Error::delta("t", "load", deltalake_core::DeltaTableError::KernelError(e))
    }

    #[test]
    fn a_store_failure_inside_the_kernel_is_retryable_unless_missing_or_refused() {
        let throttled = object_store::Error::Generic {
            store: "S3",
            source: "503 SlowDown".into(),
        };
        assert!(through_the_kernel(delta_kernel::Error::ObjectStore(throttled)).is_retryable());
        let missing = object_store::Error::NotFound {
            path: "t/_delta_log/0.json".into(),
            source: "404".into(),
        };
        assert!(!through_the_kernel(delta_kernel::Error::ObjectStore(missing)).is_retryable());
        let io = std::io::Error::other("connection reset");
        assert!(through_the_kernel(delta_kernel::Error::IOError(io)).is_retryable());
        let bug = delta_kernel::Error::InternalError("a broken log".into());
        assert!(!through_the_kernel(bug).is_retryable());
        // The engine retries what is retryable.
        let engine: duff_engine::Error = through_the_kernel(delta_kernel::Error::ObjectStore(
            object_store::Error::Generic {
                store: "S3",
                source: "503".into(),
            },
        ))
        .into();
        assert!(engine.is_retryable());
    }
}
