//! Report results as HTTP responses: a JSON envelope with typed rows and page links, or CSV.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::params::{Format, Page};
use crate::reports::Report;
use crate::value::ResultSet;

/// One page of a report. The query asked for `limit + 1` rows: the extra row only says that
/// there is a next page.
pub fn page(report: &Report, mut rs: ResultSet, page: Page, format: Format) -> Response {
    let more = rs.rows.len() as i64 > page.limit;
    rs.rows.truncate(page.limit as usize);
    let next = more.then_some(page.offset + page.limit);
    match format {
        Format::Csv => {
            let mut response = csv(report.name, &rs);
            if let Some(n) = next {
                response
                    .headers_mut()
                    .insert("x-next-offset", HeaderValue::from(n));
            }
            response
        }
        Format::Json => axum::Json(json!({
            "report": report.name,
            "columns": rs.columns,
            "rows": rs.json_rows(),
            "page": {
                "offset": page.offset,
                "limit": page.limit,
                "returned": rs.rows.len(),
                "next_offset": next,
            },
        }))
        .into_response(),
    }
}

/// A result as a bare JSON array (the earlier public API's shape) or CSV. With a page, the
/// query asked for `limit + 1` rows: the extra one only sets `x-next-offset`.
pub fn bare_rows(name: &str, mut rs: ResultSet, page: Option<Page>, format: Format) -> Response {
    let next = page.and_then(|p| {
        let more = rs.rows.len() as i64 > p.limit;
        rs.rows.truncate(p.limit as usize);
        more.then_some(p.offset + p.limit)
    });
    let mut response = match format {
        Format::Csv => csv(name, &rs),
        Format::Json => axum::Json(rs.json_rows()).into_response(),
    };
    if let Some(n) = next {
        response
            .headers_mut()
            .insert("x-next-offset", HeaderValue::from(n));
    }
    response
}

/// A single row as a JSON object (or a one-row CSV).
pub fn one_row(name: &str, rs: &ResultSet, format: Format) -> Response {
    match format {
        Format::Csv => csv(name, rs),
        Format::Json => axum::Json(rs.json_rows().swap_remove(0)).into_response(),
    }
}

fn csv(name: &str, rs: &ResultSet) -> Response {
    let disposition = format!("inline; filename=\"{name}.csv\"");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).expect("report names are ASCII"),
            ),
        ],
        rs.to_csv(),
    )
        .into_response()
}
