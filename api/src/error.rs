//! The one error type of the API and how each error looks on the wire.
//!
//! Every error is a JSON body `{"error": {"status", "code", "message", "parameter"?, "retryable"}}`.
//! 4xx: the request is wrong (never retry as is). 5xx: the backend failed; `retryable` says whether
//! the same request may succeed later (and a `Retry-After` header is set when it may).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything a request can fail with. Each variant has one HTTP status ([`ApiError::status`])
/// and one stable code ([`ApiError::code`]); the response is [`ApiError::to_json`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a query parameter the route does not accept.
    #[error("unknown parameter {name:?}; this route accepts: {allowed}")]
    UnknownParameter {
        /// The parameter's name as given, cut to 40 characters.
        name: String,
        /// The route's parameters, comma-separated, or `(none)`.
        allowed: String,
    },
    /// 400: a parameter given twice (`?limit=1&limit=2`).
    #[error("parameter `{name}` is given more than once")]
    DuplicateParameter {
        /// The parameter's name.
        name: String,
    },
    /// 400: a required parameter is absent.
    #[error("missing required parameter `{name}`")]
    MissingParameter {
        /// The parameter's name.
        name: String,
    },
    /// 400: a parameter (or path segment) whose value is out of range or of the wrong form.
    #[error("parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: String,
        /// What is wrong with the value and what is accepted.
        reason: String,
    },
    /// 400: a date range whose `from` is after its `to`.
    #[error("`from` ({from}) is after `to` ({to})")]
    ReversedRange {
        /// The `from` date, `YYYY-MM-DD`.
        from: String,
        /// The `to` date, `YYYY-MM-DD`.
        to: String,
    },
    /// 400: the query string does not decode, or is longer than
    /// [`MAX_QUERY_BYTES`](crate::params::MAX_QUERY_BYTES).
    #[error("the query string is not valid percent-encoded UTF-8")]
    MalformedQuery,
    /// 401: an API key is configured and the request's `x-api-key` header does not match it.
    #[error("missing or wrong API key (send it in the `x-api-key` header)")]
    Unauthorized,
    /// 404: no such route, client, run, quarantined line or dashboard asset; the text says
    /// which.
    #[error("{0}")]
    NotFound(String),
    /// 405: a method other than GET (or HEAD) on a known route.
    #[error("{method} is not allowed here; use GET")]
    MethodNotAllowed {
        /// The method the request used.
        method: String,
    },
    /// A local server answers requests addressed to a loopback name only (DNS rebinding).
    #[error("this server answers requests for localhost only, not for host {0:?}")]
    MisdirectedHost(String),
    /// The query ran and failed (Athena state FAILED, or an engine error).
    /// 503 when `retryable`, else 500.
    #[error("query failed: {message}")]
    QueryFailed {
        /// The backend's error message.
        message: String,
        /// Whether the same request may succeed later (Athena says so, or the lake could
        /// not be read for a transient reason).
        retryable: bool,
    },
    /// Athena state CANCELLED (by someone, or by the workgroup's scan limit).
    #[error("query was cancelled: {0}")]
    QueryCancelled(String),
    /// The query did not finish in time; it was asked to stop.
    #[error("query did not finish within {0:?}; try again or narrow the date range")]
    Timeout(Duration),
    /// The backend could not be reached or throttled us.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// A result the API cannot read (a bug, or a table that does not match the contract).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// [`ApiError::InvalidParameter`] for parameter `name`.
    pub fn invalid(name: &str, reason: impl Into<String>) -> Self {
        ApiError::InvalidParameter {
            name: name.to_string(),
            reason: reason.into(),
        }
    }

    /// The HTTP status: 4xx for a wrong request, 5xx when the backend failed.
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            UnknownParameter { .. }
            | DuplicateParameter { .. }
            | MissingParameter { .. }
            | InvalidParameter { .. }
            | ReversedRange { .. }
            | MalformedQuery => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            MisdirectedHost(_) => StatusCode::MISDIRECTED_REQUEST,
            QueryFailed {
                retryable: true, ..
            }
            | Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            QueryFailed { .. } | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            QueryCancelled(_) => StatusCode::BAD_GATEWAY,
            Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// A stable, machine-readable code (documented in the OpenAPI `Error` schema).
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            UnknownParameter { .. } => "unknown_parameter",
            DuplicateParameter { .. } => "duplicate_parameter",
            MissingParameter { .. } => "missing_parameter",
            InvalidParameter { .. } => "invalid_parameter",
            ReversedRange { .. } => "reversed_range",
            MalformedQuery => "malformed_query",
            Unauthorized => "unauthorized",
            NotFound(_) => "not_found",
            MethodNotAllowed { .. } => "method_not_allowed",
            MisdirectedHost(_) => "misdirected_host",
            QueryFailed { .. } => "query_failed",
            QueryCancelled(_) => "query_cancelled",
            Timeout(_) => "timeout",
            Unavailable(_) => "backend_unavailable",
            Internal(_) => "internal",
        }
    }

    /// Whether the same request may succeed later (timeouts, an unavailable backend, a query
    /// failure Athena calls retryable). Never true for a 4xx. Responses carry `Retry-After: 1`
    /// when it is.
    pub fn retryable(&self) -> bool {
        match self {
            ApiError::QueryFailed { retryable, .. } => *retryable,
            ApiError::Timeout(_) | ApiError::Unavailable(_) => true,
            _ => false,
        }
    }

    fn parameter(&self) -> Option<&str> {
        use ApiError::*;
        match self {
            UnknownParameter { name, .. }
            | DuplicateParameter { name }
            | MissingParameter { name }
            | InvalidParameter { name, .. } => Some(name),
            ReversedRange { .. } => Some("from"),
            _ => None,
        }
    }

    /// The response body: `{"error": {"status", "code", "message", "parameter"?, "retryable"}}`,
    /// `parameter` naming the offending parameter of a 400.
    pub fn to_json(&self) -> serde_json::Value {
        let mut error = json!({
            "status": self.status().as_u16(),
            "code": self.code(),
            "message": self.to_string(),
            "retryable": self.retryable(),
        });
        if let Some(p) = self.parameter() {
            error["parameter"] = p.into();
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(code = self.code(), retryable = self.retryable(), error = %self, "request failed");
        }
        let mut response = (status, axum::Json(self.to_json())).into_response();
        if self.retryable() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// Values echoed in error messages are cut short and quoted, so a hostile value cannot make
/// a huge or confusing message.
pub fn echo(value: &str) -> String {
    const MAX: usize = 40;
    let mut cut: String = value.chars().take(MAX).collect();
    if value.chars().count() > MAX {
        cut.push('…');
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_never_retryable_and_server_errors_say_so() {
        let bad = ApiError::invalid("client_id", "not an integer");
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert_eq!(bad.to_json()["error"]["parameter"], "client_id");
        assert_eq!(bad.to_json()["error"]["retryable"], false);
        let slow = ApiError::Timeout(Duration::from_secs(25));
        assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(slow.to_json()["error"]["retryable"], true);
        let failed = ApiError::QueryFailed {
            message: "syntax".into(),
            retryable: false,
        };
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            ApiError::QueryCancelled("x".into()).status(),
            StatusCode::BAD_GATEWAY
        );
    }

    #[test]
    fn echoed_values_are_short_and_quoted() {
        assert_eq!(echo("abc"), "\"abc\"");
        let long = "x".repeat(100);
        assert_eq!(echo(&long).chars().count(), 40 + 3);
        assert_eq!(echo("a\"b"), "\"a\\\"b\"");
    }
}
