//! The one HTTP router: served locally by `duff serve` and in AWS through `lambda_http`.
//!
//! Handlers validate every parameter into typed values (400 otherwise), bind them to a report
//! and render the result. The router is generic over the [`Backend`], so the same handlers run
//! over Athena, the embedded engine, or a test fake.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::backend::Backend;
use crate::error::ApiError;
use crate::gateway::{API_KEY_HEADER, strip_stage};
use crate::params::{self, DateRange, Format, Page, QueryParams};
use crate::reports::{self, ClientSort, Param, Report};
use crate::value::ResultSet;
use crate::{dashboard, openapi, render};

/// What every handler shares.
pub struct AppState<B> {
    /// What every report runs on.
    pub backend: B,
    /// When set, data routes require this value in the `x-api-key` header.
    pub api_key: Option<String>,
}

/// A route and the query parameters it accepts (the OpenAPI document is checked against this).
pub struct RouteSpec {
    /// The path as axum writes it (`/runs/{run_id}`).
    pub path: &'static str,
    /// The query parameters accepted; any other is a 400.
    pub query: &'static [&'static str],
    /// Served without the API key.
    pub public: bool,
}

const LIST: &[&str] = &["from", "to", "limit", "offset", "format"];

/// Every documented route (the dashboard's assets aside) and the query parameters it accepts:
/// handlers check query strings against it, and a test holds the OpenAPI document to it.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        path: "/",
        query: &["client"],
        public: true,
    },
    RouteSpec {
        path: "/healthz",
        query: &[],
        public: true,
    },
    RouteSpec {
        path: "/openapi.json",
        query: &[],
        public: true,
    },
    RouteSpec {
        path: "/clients",
        query: &["from", "to", "sort", "order", "limit", "offset", "format"],
        public: false,
    },
    RouteSpec {
        path: "/clients/{client_id}/orders",
        query: &["from", "to", "status", "limit", "offset", "format"],
        public: false,
    },
    RouteSpec {
        path: "/sales/by-product",
        query: LIST,
        public: false,
    },
    RouteSpec {
        path: "/sales/by-status",
        query: LIST,
        public: false,
    },
    RouteSpec {
        path: "/sales/by-channel",
        query: LIST,
        public: false,
    },
    RouteSpec {
        path: "/sales/by-day",
        query: LIST,
        public: false,
    },
    RouteSpec {
        path: "/runs",
        query: &["from", "to", "status", "limit", "offset", "format"],
        public: false,
    },
    RouteSpec {
        path: "/runs/{run_id}",
        query: &["format"],
        public: false,
    },
    RouteSpec {
        path: "/runs/{run_id}/quarantine",
        query: &["reason", "limit", "offset", "format"],
        public: false,
    },
    RouteSpec {
        path: "/runs/{run_id}/quarantine/{source_line}",
        query: &["format"],
        public: false,
    },
    RouteSpec {
        path: "/client-orders",
        query: &["resource", "client_id", "limit", "offset", "format"],
        public: false,
    },
];

fn allowed(path: &str) -> &'static [&'static str] {
    ROUTES
        .iter()
        .find(|r| r.path == path)
        .map_or(&[], |r| r.query)
}

type St<B> = State<Arc<AppState<B>>>;

/// Builds the router over `backend`.
pub fn router<B: Backend>(backend: B, api_key: Option<String>) -> Router {
    let state = Arc::new(AppState { backend, api_key });
    let data = Router::new()
        .route("/clients", get(client_totals::<B>))
        .route("/clients/{client_id}/orders", get(client_orders::<B>))
        .route("/sales/by-product", get(sales::<B, 0>))
        .route("/sales/by-status", get(sales::<B, 1>))
        .route("/sales/by-channel", get(sales::<B, 2>))
        .route("/sales/by-day", get(sales::<B, 3>))
        .route("/runs", get(runs::<B>))
        .route("/runs/{run_id}", get(run::<B>))
        .route("/runs/{run_id}/quarantine", get(run_quarantine::<B>))
        .route(
            "/runs/{run_id}/quarantine/{source_line}",
            get(run_quarantine_line::<B>),
        )
        .route("/client-orders", get(legacy::<B>))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_key::<B>,
        ));
    let routes = Router::new()
        .route("/", get(dashboard::page))
        .route("/assets/{file}", get(dashboard::asset))
        .route("/healthz", get(healthz::<B>))
        .route("/openapi.json", get(openapi_json))
        .merge(data)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    // A layer on a router runs after routing; wrapping it as a fallback service makes the
    // stage rewrite happen before.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::map_request(strip_stage))
}

/// `app` answering only requests addressed to a loopback name (`localhost`, `127.0.0.1`,
/// `[::1]`, any port), as a server on a loopback address should: otherwise a web page could
/// read it through a DNS name that points at 127.0.0.1 (DNS rebinding). Others get 421.
pub fn loopback_only(app: Router) -> Router {
    app.layer(middleware::from_fn(check_loopback_host))
}

async fn check_loopback_host(request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    if is_loopback_host(host) {
        return next.run(request).await;
    }
    let shown: String = host.chars().take(100).collect();
    ApiError::MisdirectedHost(shown).into_response()
}

/// Whether a `Host` header value names this machine's loopback interface.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        },
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn require_key<B: Backend>(
    State(state): St<B>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = &state.api_key {
        let given = headers
            .get(API_KEY_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !constant_time_eq(given, expected.as_bytes()) {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::NotFound(format!("no route {method} {}", uri.path())).into_response()
}

async fn method_not_allowed(method: Method) -> Response {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
    }
    .into_response()
}

async fn healthz<B: Backend>(
    State(state): St<B>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    QueryParams::parse(raw.as_deref(), &[])?;
    Ok(axum::Json(json!({ "status": "ok", "backend": state.backend.name() })).into_response())
}

async fn openapi_json(RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    QueryParams::parse(raw.as_deref(), &[])?;
    Ok(axum::Json(openapi::document()).into_response())
}

/// Runs a report and logs how long it took.
async fn query<B: Backend>(
    state: &AppState<B>,
    report: &'static Report,
    params: Vec<Param>,
) -> Result<ResultSet, ApiError> {
    let started = Instant::now();
    let result = state.backend.query(report, params).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match &result {
        Ok(rs) => tracing::info!(report = report.name, rows = rs.rows.len(), ms, "report"),
        Err(e) => tracing::warn!(report = report.name, ms, error = %e, "report failed"),
    }
    result
}

/// The page's bound parameters: `offset` and `limit + 1` (one extra row says "there is more").
fn page_params(page: Page) -> [Param; 2] {
    [Param::Int(page.offset), Param::Int(page.limit + 1)]
}

fn path_id(
    raw: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, ApiError> {
    raw.map(|Path(v)| v)
        .map_err(|_| ApiError::invalid("path", "not valid percent-encoded UTF-8"))
}

async fn client_orders<B: Backend>(
    State(state): St<B>,
    raw_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(raw.as_deref(), allowed("/clients/{client_id}/orders"))?;
    let client_id = params::id("client_id", &path_id(raw_id)?)?;
    let dates = DateRange::parse(&q)?;
    let status = q
        .get("status")
        .map(params::status)
        .transpose()?
        .unwrap_or("");
    let (page, format) = (Page::parse(&q)?, Format::parse(&q)?);
    let mut rest = vec![Param::Int(client_id), Param::from(status)];
    rest.extend(page_params(page));
    let current = state.backend.reads_current_state().await;
    let (report, bound) = reports::CLIENT_ORDERS.bind(&dates, rest, current);
    let rs = query(&state, report, bound).await?;
    if rs.rows.is_empty() && page.offset == 0 {
        let exists = query(&state, &reports::CLIENT_EXISTS, vec![Param::Int(client_id)]).await?;
        if exists.rows.first().and_then(|r| r[0].as_int()) == Some(0) {
            return Err(ApiError::NotFound(format!(
                "client {client_id} has no order lines in any committed run"
            )));
        }
    }
    Ok(render::page(report, rs, page, format))
}

async fn client_totals<B: Backend>(
    State(state): St<B>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(raw.as_deref(), allowed("/clients"))?;
    let dates = DateRange::parse(&q)?;
    let sort = match q.get("sort") {
        Some(v) => ClientSort::from_name(params::choice("sort", v, &ClientSort::NAMES)?)
            .expect("a listed name"),
        None => ClientSort::Sales,
    };
    let descending = match q.get("order") {
        Some(v) => params::choice("order", v, &["desc", "asc"])? == "desc",
        // Measures default to largest first; ids to smallest first.
        None => sort != ClientSort::ClientId,
    };
    let (page, format) = (Page::parse(&q)?, Format::parse(&q)?);
    let current = state.backend.reads_current_state().await;
    let (report, bound) = sort
        .report(descending)
        .bind(&dates, page_params(page).to_vec(), current);
    let rs = query(&state, report, bound).await?;
    Ok(render::page(report, rs, page, format))
}

/// `/sales/by-*`: the same parameters, one report each.
async fn sales<B: Backend, const WHICH: usize>(
    State(state): St<B>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let report = [
        &reports::SALES_BY_PRODUCT,
        &reports::SALES_BY_STATUS,
        &reports::SALES_BY_CHANNEL,
        &reports::SALES_BY_DAY,
    ][WHICH];
    let q = QueryParams::parse(raw.as_deref(), LIST)?;
    let dates = DateRange::parse(&q)?;
    let (page, format) = (Page::parse(&q)?, Format::parse(&q)?);
    let current = state.backend.reads_current_state().await;
    let (report, bound) = report.bind(&dates, page_params(page).to_vec(), current);
    let rs = query(&state, report, bound).await?;
    Ok(render::page(report, rs, page, format))
}

async fn runs<B: Backend>(
    State(state): St<B>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(raw.as_deref(), allowed("/runs"))?;
    let dates = DateRange::parse(&q)?;
    let status = q
        .get("status")
        .map(|v| params::choice("status", v, &["succeeded", "failed"]))
        .transpose()?
        .unwrap_or("");
    let (page, format) = (Page::parse(&q)?, Format::parse(&q)?);
    let mut bound = vec![
        Param::from(dates.from),
        Param::from(dates.to),
        Param::from(status),
    ];
    bound.extend(page_params(page));
    let rs = query(&state, &reports::RUNS, bound).await?;
    Ok(render::page(&reports::RUNS, rs, page, format))
}

async fn run<B: Backend>(
    State(state): St<B>,
    raw_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(raw.as_deref(), allowed("/runs/{run_id}"))?;
    let run_id = params::run_id(&path_id(raw_id)?)?;
    let format = Format::parse(&q)?;
    let rs = query(&state, &reports::RUN, vec![Param::from(run_id.as_str())]).await?;
    if rs.rows.is_empty() {
        return Err(ApiError::NotFound(format!("no run {run_id}")));
    }
    Ok(render::one_row(reports::RUN.name, &rs, format))
}

async fn run_quarantine<B: Backend>(
    State(state): St<B>,
    raw_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(raw.as_deref(), allowed("/runs/{run_id}/quarantine"))?;
    let run_id = params::run_id(&path_id(raw_id)?)?;
    let reason = q
        .get("reason")
        .map(params::reason)
        .transpose()?
        .unwrap_or("");
    let (page, format) = (Page::parse(&q)?, Format::parse(&q)?);
    let mut bound = vec![Param::from(run_id.as_str()), Param::from(reason)];
    bound.extend(page_params(page));
    let rs = query(&state, &reports::RUN_QUARANTINE, bound).await?;
    if rs.rows.is_empty() && page.offset == 0 {
        let run = query(&state, &reports::RUN, vec![Param::from(run_id.as_str())]).await?;
        if run.rows.is_empty() {
            return Err(ApiError::NotFound(format!("no run {run_id}")));
        }
    }
    Ok(render::page(&reports::RUN_QUARANTINE, rs, page, format))
}

/// The quarantined rows of one source line (one per reason) with their whole raw text, as a
/// JSON array; 404 when the run has no quarantined row on that line.
async fn run_quarantine_line<B: Backend>(
    State(state): St<B>,
    raw: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    RawQuery(query_text): RawQuery,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(
        query_text.as_deref(),
        allowed("/runs/{run_id}/quarantine/{source_line}"),
    )?;
    let (raw_id, raw_line) = raw
        .map(|Path(v)| v)
        .map_err(|_| ApiError::invalid("path", "not valid percent-encoded UTF-8"))?;
    let run_id = params::run_id(&raw_id)?;
    let line = params::id("source_line", &raw_line)?;
    let format = Format::parse(&q)?;
    let bound = vec![Param::from(run_id.as_str()), Param::Int(line)];
    let rs = query(&state, &reports::RUN_QUARANTINE_LINE, bound).await?;
    if rs.rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no quarantined row on line {line} of run {run_id}"
        )));
    }
    Ok(render::bare_rows(
        reports::RUN_QUARANTINE_LINE.name,
        rs,
        None,
        format,
    ))
}

/// The earlier public API, same shape: a bare JSON array. `client_orders` lists every client
/// (`client_id` narrows it to one), `status_summary` every status (of one client with
/// `client_id`), `orders_by_client` the orders of `client_id`; an unknown client gives `[]`.
/// A response holds at most [`params::LEGACY_MAX_ROWS`] rows: `offset` and `limit` page
/// through more, and the `x-next-offset` header says where the next page starts.
async fn legacy<B: Backend>(
    State(state): St<B>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(raw.as_deref(), allowed("/client-orders"))?;
    let resource = params::choice(
        "resource",
        q.require("resource")?,
        &["client_orders", "status_summary", "orders_by_client"],
    )?;
    let client_id = q
        .get("client_id")
        .map(|v| params::id("client_id", v))
        .transpose()?;
    let page = Page::parse_up_to(&q, params::LEGACY_MAX_ROWS)?;
    let format = Format::parse(&q)?;
    let (report, rest, paged) = match (resource, client_id) {
        ("client_orders", client) => {
            let mut rest = vec![Param::Int(client.unwrap_or(0))];
            rest.extend(page_params(page));
            (&reports::LEGACY_CLIENT_TOTALS, rest, true)
        }
        ("status_summary", None) => (&reports::LEGACY_STATUS_COUNTS, Vec::new(), false),
        ("status_summary", Some(client)) => (
            &reports::CLIENT_STATUS_COUNTS,
            vec![Param::Int(client)],
            false,
        ),
        (_, Some(client)) => {
            let mut rest = vec![Param::Int(client)];
            rest.extend(page_params(page));
            (&reports::CLIENT_ORDER_TOTALS, rest, true)
        }
        (_, None) => return Err(q.require("client_id").unwrap_err()),
    };
    let every_date = DateRange::everything();
    let current = state.backend.reads_current_state().await;
    let (report, bound) = report.bind(&every_date, rest, current);
    let rs = query(&state, report, bound).await?;
    // A summary has a few rows (one per status); the other resources are paged.
    let page = paged.then_some(page);
    Ok(render::bare_rows(resource, rs, page, format))
}

/// Serves `app` on `listener` until `shutdown` completes (the local server; in AWS
/// `lambda_http::run` takes the router instead).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests;
