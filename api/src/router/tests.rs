//! Handlers over a recording fake backend: what reaches a backend, and what never does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
// tower's `oneshot`, through the copy lambda_http re-exports (no extra dependency).
use lambda_http::tower::ServiceExt;
use serde_json::Value;

use super::*;
use crate::value::{Column, ColumnType, Value as Cell};

type Calls = Arc<Mutex<Vec<(&'static str, Vec<Param>)>>>;
type Failure = fn() -> ApiError;

/// Answers every report with `rows` rows of one integer column, or with `fail`.
#[derive(Clone, Default)]
struct Recording {
    calls: Calls,
    rows: usize,
    fail: Option<Failure>,
}

impl Backend for Recording {
    async fn query(
        &self,
        report: &'static Report,
        params: Vec<Param>,
    ) -> Result<ResultSet, ApiError> {
        self.calls.lock().unwrap().push((report.name, params));
        if let Some(fail) = self.fail {
            return Err(fail());
        }
        let rows = if report.name == "client_exists" {
            1
        } else {
            self.rows
        };
        Ok(ResultSet {
            columns: vec![Column::new("n", ColumnType::Integer)],
            rows: (0..rows)
                .map(|i| {
                    vec![Cell::Int(
                        i as i64 * (report.name != "client_exists") as i64,
                    )]
                })
                .collect(),
        })
    }

    fn name(&self) -> &'static str {
        "recording"
    }
}

async fn call(app: Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, json)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn hostile_parameters_are_rejected_before_any_query() {
    let backend = Recording::default();
    let calls = backend.calls.clone();
    let app = router(backend, None);
    let hostile = [
        "/clients/1%20OR%201=1/orders",
        "/clients/1';DROP%20TABLE%20orders;--/orders",
        "/clients/99999999999999999999/orders",
        "/clients/%F0%9F%8D%BA/orders",
        "/clients/1/orders?status=created'%20OR%20'1'='1",
        "/clients/1/orders?from=2026-01-01'--",
        "/clients/1/orders?to=2026-13-01",
        "/clients/1/orders?limit=1001",
        "/clients/1/orders?offset=1e3",
        "/clients/1/orders?evil=1",
        "/clients?sort=client_name",
        "/clients?order=sideways",
        "/sales/by-day?from=2026-02-01&to=2026-01-01",
        "/runs/a%20b",
        "/runs/x/quarantine?reason=all",
        "/runs?status=running",
        "/client-orders?resource=client_orders&client_id=%E2%91%A0",
        "/client-orders?resource=orders_by_client",
        "/client-orders?resource=client_orders&limit=10001",
        "/client-orders?resource=all&client_id=1",
        "/sales/by-product?format=xlsx",
        "/sales/by-product?limit=%C0%AF",
    ];
    let rt = rt();
    for uri in hostile {
        let (status, _, body) = rt.block_on(call(app.clone(), uri));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"]["status"], 400, "{uri}");
    }
    assert!(
        calls.lock().unwrap().is_empty(),
        "{:?}",
        calls.lock().unwrap()
    );
}

#[test]
fn typed_values_are_bound_in_placeholder_order() {
    let backend = Recording::default();
    let calls = backend.calls.clone();
    let app = router(backend, None);
    let rt = rt();
    rt.block_on(call(
        app.clone(),
        "/clients/42/orders?from=2026-01-01&status=Delivered&limit=10&offset=20",
    ));
    rt.block_on(call(app.clone(), "/clients?sort=units&order=asc"));
    rt.block_on(call(
        app,
        "/client-orders?resource=orders_by_client&client_id=7",
    ));
    let calls = calls.lock().unwrap();
    assert_eq!(
        calls[0],
        (
            "client_orders",
            vec![
                Param::from("2026-01-01"),
                Param::from(params::MAX_DATE),
                Param::Int(42),
                Param::from("delivered"),
                Param::Int(20),
                Param::Int(11),
            ]
        )
    );
    assert_eq!(
        calls[1],
        (
            "client_totals",
            vec![
                Param::from(params::MIN_DATE),
                Param::from(params::MAX_DATE),
                Param::Int(0),
                Param::Int(101),
            ]
        )
    );
    assert_eq!(
        calls[2],
        (
            "orders_by_client",
            vec![
                Param::from(params::MIN_DATE),
                Param::from(params::MAX_DATE),
                Param::Int(7),
                Param::Int(0),
                Param::Int(params::LEGACY_MAX_ROWS + 1),
            ]
        )
    );
}

#[test]
fn one_extra_row_means_a_next_page() {
    let rt = rt();
    let full = router(
        Recording {
            rows: 11,
            ..Default::default()
        },
        None,
    );
    let (status, _, body) = rt.block_on(call(full, "/sales/by-product?limit=10&offset=30"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["page"]["returned"], 10);
    assert_eq!(body["page"]["next_offset"], 40);
    assert_eq!(body["rows"].as_array().unwrap().len(), 10);
    let last = router(
        Recording {
            rows: 10,
            ..Default::default()
        },
        None,
    );
    let (_, _, body) = rt.block_on(call(last, "/sales/by-product?limit=10&offset=30"));
    assert_eq!(body["page"]["next_offset"], Value::Null);
}

#[test]
fn an_unknown_client_is_404_after_checking_it_has_no_lines() {
    let backend = Recording {
        rows: 0,
        ..Default::default()
    };
    let calls = backend.calls.clone();
    let (status, _, body) = rt().block_on(call(router(backend, None), "/clients/5/orders"));
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let names: Vec<_> = calls.lock().unwrap().iter().map(|c| c.0).collect();
    assert_eq!(names, ["client_orders", "client_exists"]);
}

#[test]
fn backend_failures_say_whether_to_retry() {
    let rt = rt();
    let cases: [(Failure, StatusCode, bool); 4] = [
        (
            || ApiError::Timeout(Duration::from_secs(25)),
            StatusCode::GATEWAY_TIMEOUT,
            true,
        ),
        (
            || ApiError::Unavailable("throttled".into()),
            StatusCode::SERVICE_UNAVAILABLE,
            true,
        ),
        (
            || ApiError::QueryCancelled("limit".into()),
            StatusCode::BAD_GATEWAY,
            false,
        ),
        (
            || ApiError::QueryFailed {
                message: "bad".into(),
                retryable: false,
            },
            StatusCode::INTERNAL_SERVER_ERROR,
            false,
        ),
    ];
    for (fail, status, retryable) in cases {
        let app = router(
            Recording {
                fail: Some(fail),
                ..Default::default()
            },
            None,
        );
        let (got, headers, body) = rt.block_on(call(app, "/sales/by-status"));
        assert_eq!(got, status);
        assert_eq!(body["error"]["retryable"], retryable);
        assert_eq!(headers.contains_key("retry-after"), retryable);
    }
}

#[test]
fn the_api_gateway_stage_is_not_part_of_the_route() {
    use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyRequestContext;
    use lambda_http::request::RequestContext;
    let rt = rt();
    let app = router(Recording::default(), None);
    let mut context = ApiGatewayProxyRequestContext::default();
    context.stage = Some("prod".into());
    let mut request = Request::get("/prod/healthz?").body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(RequestContext::ApiGatewayV1(context));
    let response = rt.block_on(app.clone().oneshot(request)).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Without a Lambda context nothing is stripped.
    let (status, _, _) = rt.block_on(call(app, "/prod/healthz"));
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn the_dashboard_page_resolves_its_links_under_the_stage_it_was_reached_at() {
    use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyRequestContext;
    use lambda_http::request::RequestContext;
    let rt = rt();
    let page = |uri: &str, stage: Option<&str>| {
        let app = router(Recording::default(), Some("k".into()));
        let mut request = Request::get(uri).body(Body::empty()).unwrap();
        if let Some(stage) = stage {
            let mut context = ApiGatewayProxyRequestContext::default();
            context.stage = Some(stage.into());
            request
                .extensions_mut()
                .insert(RequestContext::ApiGatewayV1(context));
        }
        let response = rt.block_on(app.oneshot(request)).unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}: no key needed");
        let bytes = rt
            .block_on(to_bytes(response.into_body(), 1 << 20))
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    assert!(page("/", None).contains("<base href=\"/\">"));
    assert!(page("/prod", Some("prod")).contains("<base href=\"/prod/\">"));
    assert!(page("/prod/", Some("prod")).contains("<base href=\"/prod/\">"));
    // A stage name that is not one is never written into the page.
    assert!(page("/a%22b/", Some("a%22b")).contains("<base href=\"/\">"));
}

#[test]
fn the_api_key_is_compared_exactly() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
    assert!(!constant_time_eq(b"", b"abc"));
}
