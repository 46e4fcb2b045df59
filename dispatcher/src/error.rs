//! The crate's one error type, and the split every caller acts on: retry later or give up.

use duff_engine::StorageErrorKind;

/// Why the dispatcher could not do something. [`DispatchError::is_retryable`] decides whether
/// the event is retried; [`DispatchError::code`] is what reports and logs show.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The invocation's payload is none of the accepted event shapes.
    #[error("unrecognised event: {0}")]
    UnrecognisedEvent(String),
    /// A recognised event with a malformed part (a record without a key, a key that is not
    /// UTF-8 once decoded, a backfill with an invalid date).
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// S3 (HeadObject, listing, manifests, the ledger) or the engine itself.
    #[error(transparent)]
    Engine(#[from] duff_engine::Error),
    /// SubmitJob failed after the SDK's own retries (or DescribeJobs did, when a claim is
    /// checked).
    #[error("AWS Batch SubmitJob: {message}")]
    Batch {
        /// The SDK's error with its context (code, message, request id).
        message: String,
        /// Throttling, 5xx, timeouts and connection failures; not a rejected request.
        retryable: bool,
    },
    /// The engine task panicked or was cancelled: nothing was committed, so a retry is safe.
    #[error("the engine task stopped: {0}")]
    Crashed(String),
    /// The dispatcher's own configuration is unusable (a variable missing or malformed, no
    /// Batch queue or job definition): never retried.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Some objects of a (non-SQS) invocation failed and may succeed later: the invocation
    /// fails so that Lambda retries it; what was done is skipped the second time.
    #[error("{0} object(s) failed with retryable errors; see the log for each")]
    RetryableFailures(usize),
}

impl DispatchError {
    /// True when the same work may succeed later (throttling, 5xx, network, a crashed task).
    pub fn is_retryable(&self) -> bool {
        match self {
            DispatchError::Engine(e) => e.is_retryable(),
            DispatchError::Batch { retryable, .. } => *retryable,
            DispatchError::Crashed(_) | DispatchError::RetryableFailures(_) => true,
            DispatchError::UnrecognisedEvent(_)
            | DispatchError::InvalidEvent(_)
            | DispatchError::Config(_) => false,
        }
    }

    /// A stable code for reports and logs (`storage_not_found`, `object_changed`, …).
    pub fn code(&self) -> &'static str {
        match self {
            DispatchError::UnrecognisedEvent(_) => "unrecognised_event",
            DispatchError::InvalidEvent(_) => "invalid_event",
            DispatchError::Engine(e) => e.code(),
            DispatchError::Batch { .. } => "batch_submit",
            DispatchError::Crashed(_) => "crashed",
            DispatchError::Config(_) => "config",
            DispatchError::RetryableFailures(_) => "retryable_failures",
        }
    }

    /// The storage failure kind, when this is one.
    pub fn storage_kind(&self) -> Option<StorageErrorKind> {
        match self {
            DispatchError::Engine(duff_engine::Error::Storage(e)) => Some(e.kind),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duff_engine::StorageError;

    fn storage(kind: StorageErrorKind) -> DispatchError {
        DispatchError::Engine(
            StorageError {
                kind,
                uri: "s3://b/k".into(),
                operation: "HeadObject".into(),
                message: "x".into(),
            }
            .into(),
        )
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(storage(StorageErrorKind::Transient).is_retryable());
        for kind in [
            StorageErrorKind::NotFound,
            StorageErrorKind::Denied,
            StorageErrorKind::Changed,
            StorageErrorKind::Permanent,
        ] {
            assert!(!storage(kind).is_retryable(), "{kind:?}");
        }
        assert_eq!(storage(StorageErrorKind::Changed).code(), "object_changed");
        assert!(DispatchError::Crashed("panic".into()).is_retryable());
        assert!(!DispatchError::InvalidEvent("x".into()).is_retryable());
        let throttled = DispatchError::Batch {
            message: "429".into(),
            retryable: true,
        };
        assert!(throttled.is_retryable());
        assert_eq!(throttled.code(), "batch_submit");
    }
}
