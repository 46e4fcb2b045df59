//! Turns SDK errors into the engine's storage errors: retry or fail fast.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use duff_engine::storage::{StorageError, StorageErrorKind};

/// Classifies an SDK error. The SDK has already retried throttling, 5xx and connection failures
/// up to the configured attempts, so a transient error here means the retries ran out. Public
/// so the dispatcher's own S3 calls (listing, ledger markers) classify failures the same way.
pub fn classify<E>(
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    uri: &str,
    operation: &str,
) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, message) = match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or("");
            let kind = kind_of(status, code);
            let detail = se.err().message().unwrap_or("");
            (
                kind,
                format!("HTTP {status} {code} {detail}").trim().to_string(),
            )
        }
        SdkError::ConstructionFailure(_) => (
            StorageErrorKind::Permanent,
            DisplayErrorContext(&err).to_string(),
        ),
        // Timeouts, dispatch failures (connection refused or reset) and unreadable responses.
        _ => (
            StorageErrorKind::Transient,
            DisplayErrorContext(&err).to_string(),
        ),
    };
    StorageError {
        kind,
        uri: uri.to_string(),
        operation: operation.to_string(),
        message,
    }
}

/// The kind of failure an HTTP status (and S3 error code) means.
pub(crate) fn kind_of(status: u16, code: &str) -> StorageErrorKind {
    match (status, code) {
        (_, "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable") => {
            StorageErrorKind::Transient
        }
        (404, _) | (_, "NoSuchKey" | "NoSuchBucket" | "NoSuchUpload") => StorageErrorKind::NotFound,
        (401 | 403, _) => StorageErrorKind::Denied,
        (412, _) => StorageErrorKind::Changed,
        (408 | 409 | 429, _) | (500..=599, _) => StorageErrorKind::Transient,
        _ => StorageErrorKind::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        use StorageErrorKind::*;
        assert_eq!(kind_of(503, "SlowDown"), Transient);
        assert_eq!(kind_of(500, ""), Transient);
        assert_eq!(kind_of(429, ""), Transient);
        assert_eq!(kind_of(404, ""), NotFound);
        assert_eq!(kind_of(400, "NoSuchBucket"), NotFound);
        assert_eq!(kind_of(403, "AccessDenied"), Denied);
        assert_eq!(kind_of(412, "PreconditionFailed"), Changed);
        assert_eq!(kind_of(400, "InvalidArgument"), Permanent);
    }
}
