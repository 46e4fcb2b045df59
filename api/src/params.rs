//! Request parameters, validated into typed values before anything reaches a backend.
//!
//! Every route names the parameters it accepts; an unknown or repeated parameter is a 400, and
//! so is every value that does not parse into its type. Nothing here builds SQL: the typed values
//! become bound [`crate::reports::Param`]s.

use chrono::NaiveDate;
use percent_encoding::percent_decode_str;

use crate::error::{ApiError, echo};

/// Longest query string accepted (a hostile client gets a 400, not a parse of megabytes).
pub const MAX_QUERY_BYTES: usize = 4096;
/// Rows per page when a request gives no `limit`.
pub const DEFAULT_LIMIT: i64 = 100;
/// The largest `limit` a paged route accepts.
pub const MAX_LIMIT: i64 = 1000;
/// Deep offsets cost a full scan each: past this, narrow the date range instead.
pub const MAX_OFFSET: i64 = 1_000_000;
/// Rows of one response of the earlier API (`/client-orders`), by default and at most: each
/// row is a few numbers, so a response stays far under a Lambda's 6 MB.
pub const LEGACY_MAX_ROWS: i64 = 10_000;
/// The `from` of a range without one: before every partition.
pub const MIN_DATE: &str = "0001-01-01";
/// The `to` of a range without one: after every partition.
pub const MAX_DATE: &str = "9999-12-31";

/// The decoded `name=value` pairs of a query string, checked against what a route accepts.
#[derive(Debug, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Decodes `raw` (form-style: `+` is a space, then percent-decoding). Fails on a query
    /// string longer than [`MAX_QUERY_BYTES`] or not UTF-8 once decoded, on a name not in
    /// `allowed`, and on a name given twice.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let raw = raw.unwrap_or("");
        if raw.len() > MAX_QUERY_BYTES {
            return Err(ApiError::MalformedQuery);
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let (name, value) = (decode(name)?, decode(value)?);
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::UnknownParameter {
                    name: name.chars().take(40).collect(),
                    allowed: if allowed.is_empty() {
                        "(none)".into()
                    } else {
                        allowed.join(", ")
                    },
                });
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(ApiError::DuplicateParameter { name });
            }
            pairs.push((name, value));
        }
        Ok(QueryParams { pairs })
    }

    /// The decoded value of `name`, if it was given (possibly empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or [`ApiError::MissingParameter`].
    pub fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| ApiError::MissingParameter {
            name: name.to_string(),
        })
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then percent-decoding.
fn decode(s: &str) -> Result<String, ApiError> {
    let plus = s.replace('+', " ");
    percent_decode_str(&plus)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ApiError::MalformedQuery)
}

/// An id (`client_id`, `product_id`): ASCII digits only, 1 ..= 2^63-1, like the data contract.
pub fn id(name: &str, value: &str) -> Result<i64, ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid(
            name,
            "empty; expected a positive integer",
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            name,
            format!("{} is not a positive integer (digits only)", echo(value)),
        ));
    }
    match value.parse::<i64>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(ApiError::invalid(
            name,
            format!("{} is out of range 1..=9223372036854775807", echo(value)),
        )),
    }
}

/// A calendar date `YYYY-MM-DD`, returned in that canonical form.
pub fn date(name: &str, value: &str) -> Result<String, ApiError> {
    let ok = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    match ok.then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d")) {
        Some(Ok(d)) => Ok(d.format("%Y-%m-%d").to_string()),
        _ => Err(ApiError::invalid(
            name,
            format!("{} is not a date YYYY-MM-DD", echo(value)),
        )),
    }
}

/// `from`/`to`: inclusive partition dates (`pa_date`); both optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRange {
    /// First date, `YYYY-MM-DD` ([`MIN_DATE`] when not given).
    pub from: String,
    /// Last date, `YYYY-MM-DD` ([`MAX_DATE`] when not given); never before `from`.
    pub to: String,
}

impl DateRange {
    /// Every date.
    pub fn everything() -> Self {
        DateRange {
            from: MIN_DATE.into(),
            to: MAX_DATE.into(),
        }
    }

    /// Whether the range is every date (no `from`, no `to`, or both at their limits).
    pub fn is_everything(&self) -> bool {
        self.from == MIN_DATE && self.to == MAX_DATE
    }

    /// The query parameters [`DateRange::parse`] reads.
    pub const PARAMS: [&'static str; 2] = ["from", "to"];

    /// Reads `from` and `to` (each a `YYYY-MM-DD` date, both optional); a `from` after `to` is
    /// [`ApiError::ReversedRange`].
    pub fn parse(q: &QueryParams) -> Result<Self, ApiError> {
        let from = q.get("from").map(|v| date("from", v)).transpose()?;
        let to = q.get("to").map(|v| date("to", v)).transpose()?;
        let range = DateRange {
            from: from.unwrap_or_else(|| MIN_DATE.into()),
            to: to.unwrap_or_else(|| MAX_DATE.into()),
        };
        if range.from > range.to {
            return Err(ApiError::ReversedRange {
                from: range.from,
                to: range.to,
            });
        }
        Ok(range)
    }
}

/// `limit` (1..=1000, default 100) and `offset` (0..=1 000 000, default 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to return, at least 1.
    pub limit: i64,
    /// Rows to skip first.
    pub offset: i64,
}

impl Page {
    /// The query parameters [`Page::parse`] reads.
    pub const PARAMS: [&'static str; 2] = ["limit", "offset"];

    /// Reads `limit` (1..=[`MAX_LIMIT`], default [`DEFAULT_LIMIT`]) and `offset`
    /// (0..=[`MAX_OFFSET`], default 0), in plain digits; any other value is a 400.
    pub fn parse(q: &QueryParams) -> Result<Self, ApiError> {
        Self::parse_within(q, DEFAULT_LIMIT, MAX_LIMIT)
    }

    /// `limit` up to `max` (and by default), `offset` as [`Page::parse`].
    pub fn parse_up_to(q: &QueryParams, max: i64) -> Result<Self, ApiError> {
        Self::parse_within(q, max, max)
    }

    fn parse_within(q: &QueryParams, default_limit: i64, max_limit: i64) -> Result<Self, ApiError> {
        let number = |name: &str, value: &str, min: i64, max: i64| {
            let bad =
                || ApiError::invalid(name, format!("{} is not in {min}..={max}", echo(value)));
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            match value.parse::<i64>() {
                Ok(v) if (min..=max).contains(&v) => Ok(v),
                _ => Err(bad()),
            }
        };
        Ok(Page {
            limit: q
                .get("limit")
                .map(|v| number("limit", v, 1, max_limit))
                .transpose()?
                .unwrap_or(default_limit),
            offset: q
                .get("offset")
                .map(|v| number("offset", v, 0, MAX_OFFSET))
                .transpose()?
                .unwrap_or(0),
        })
    }
}

/// Response format: `format=json` (default) or `format=csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON envelope with typed rows and page links.
    Json,
    /// RFC 4180 CSV with a header line.
    Csv,
}

impl Format {
    /// The query parameter [`Format::parse`] reads.
    pub const PARAM: &'static str = "format";

    /// Reads `format`: `json` (also when absent) or `csv`, in any case.
    pub fn parse(q: &QueryParams) -> Result<Self, ApiError> {
        match q.get("format") {
            None => Ok(Format::Json),
            Some(v) => match choice("format", v, &["json", "csv"])? {
                "csv" => Ok(Format::Csv),
                _ => Ok(Format::Json),
            },
        }
    }
}

/// One of a fixed set of lower-case words (matched case-insensitively).
pub fn choice(name: &str, value: &str, allowed: &[&'static str]) -> Result<&'static str, ApiError> {
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(value))
        .copied()
        .ok_or_else(|| {
            ApiError::invalid(
                name,
                format!("{} is not one of: {}", echo(value), allowed.join(", ")),
            )
        })
}

/// An order-line status (`created`, `delivered`, `broken`).
pub fn status(value: &str) -> Result<&'static str, ApiError> {
    let known: Vec<&'static str> = duff_engine::rules::STATUSES.iter().map(|s| s.1).collect();
    choice("status", value, &known)
}

/// A quarantine reason code.
pub fn reason(value: &str) -> Result<&'static str, ApiError> {
    let known: Vec<&'static str> = duff_engine::Reason::ALL.iter().map(|r| r.code()).collect();
    choice("reason", value, &known)
}

/// A run id: 1 to 64 ASCII letters, digits, `-` or `_` (what the engine derives is hex).
pub fn run_id(value: &str) -> Result<String, ApiError> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(value.to_string())
    } else {
        Err(ApiError::invalid(
            "run_id",
            format!("{} is not a run id", echo(value)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str, allowed: &[&str]) -> Result<QueryParams, ApiError> {
        QueryParams::parse(Some(raw), allowed)
    }

    #[test]
    fn unknown_repeated_and_malformed_parameters_are_rejected() {
        assert!(matches!(
            q("client_id=1&sort=x", &["client_id"]),
            Err(ApiError::UnknownParameter { .. })
        ));
        assert!(matches!(
            q("limit=1&limit=2", &["limit"]),
            Err(ApiError::DuplicateParameter { .. })
        ));
        assert!(matches!(
            q("limit=%FF", &["limit"]),
            Err(ApiError::MalformedQuery)
        ));
        let long = format!("limit={}", "9".repeat(MAX_QUERY_BYTES));
        assert!(matches!(
            q(&long, &["limit"]),
            Err(ApiError::MalformedQuery)
        ));
        let ok = q("from=2026-01-01&to=2026-12-31&", &["from", "to"]).unwrap();
        assert_eq!(ok.get("from"), Some("2026-01-01"));
        assert_eq!(
            q("status=a+b%20c", &["status"]).unwrap().get("status"),
            Some("a b c")
        );
    }

    #[test]
    fn ids_are_positive_ascii_integers_that_fit_64_bits() {
        assert_eq!(id("client_id", "42").unwrap(), 42);
        assert_eq!(id("client_id", "9223372036854775807").unwrap(), i64::MAX);
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            " 1",
            "1.0",
            "1e3",
            "abc",
            "9223372036854775808",
            "99999999999999999999999999",
            "１２",
            "1; DROP TABLE orders",
            "1' OR '1'='1",
        ] {
            let err = id("client_id", bad).unwrap_err();
            assert_eq!(err.code(), "invalid_parameter", "{bad:?}");
        }
    }

    #[test]
    fn dates_are_strict_calendar_dates() {
        assert_eq!(date("from", "2026-02-28").unwrap(), "2026-02-28");
        for bad in [
            "2026-02-30",
            "2026-2-3",
            "20260203",
            "2026-02-03T00:00",
            "２０２６-02-03",
            "' OR 1=1 --",
        ] {
            assert!(date("from", bad).is_err(), "{bad}");
        }
        let range = DateRange::parse(&q("from=2026-03-01&to=2026-02-01", &["from", "to"]).unwrap());
        assert!(matches!(range, Err(ApiError::ReversedRange { .. })));
        let open = DateRange::parse(&q("", &["from", "to"]).unwrap()).unwrap();
        assert_eq!((open.from.as_str(), open.to.as_str()), (MIN_DATE, MAX_DATE));
    }

    #[test]
    fn pages_are_bounded() {
        let page = |raw| Page::parse(&q(raw, &Page::PARAMS).unwrap());
        assert_eq!(
            page("").unwrap(),
            Page {
                limit: DEFAULT_LIMIT,
                offset: 0
            }
        );
        assert_eq!(page("limit=1000&offset=5").unwrap().limit, 1000);
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=-1",
            "offset=1000001",
            "limit=ten",
        ] {
            assert!(page(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn words_come_from_fixed_lists() {
        assert_eq!(status("Delivered").unwrap(), "delivered");
        assert!(status("shipped").is_err());
        assert!(status("délivered").is_err());
        assert_eq!(reason("key_conflict").unwrap(), "key_conflict");
        assert!(run_id("0ac7bd21f1352511f5cb").is_ok());
        assert!(run_id("../etc").is_err());
        assert!(run_id("").is_err());
        assert_eq!(
            Format::parse(&q("format=CSV", &["format"]).unwrap()).unwrap(),
            Format::Csv
        );
        assert!(Format::parse(&q("format=xml", &["format"]).unwrap()).is_err());
    }
}
