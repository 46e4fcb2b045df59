//! The Lambda path: API Gateway proxy events (REST v1 with a `prod` stage, HTTP API v2) through
//! `lambda_http`'s adapter and the same router give the same responses as HTTP.

use std::path::Path;

use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use serde_json::{Value, json};

use super::{get, lake, server};

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/api")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// Decoded `name=value` pairs of a simple query string (test targets use no escapes).
fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The fixture event, pointed at `target`.
fn event(version: &str, target: &str) -> Value {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let single: serde_json::Map<String, Value> = pairs(query)
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    if version == "v1" {
        let multi: serde_json::Map<String, Value> = pairs(query)
            .into_iter()
            .map(|(k, v)| (k, json!([v])))
            .collect();
        let mut e = fixture("apigw_rest_v1.json");
        e["path"] = json!(path);
        e["requestContext"]["path"] = json!(format!("/prod{path}"));
        e["pathParameters"]["proxy"] = json!(path.trim_start_matches('/'));
        e["queryStringParameters"] = if single.is_empty() {
            Value::Null
        } else {
            Value::Object(single)
        };
        e["multiValueQueryStringParameters"] = if multi.is_empty() {
            Value::Null
        } else {
            Value::Object(multi)
        };
        e
    } else {
        let mut e = fixture("apigw_http_v2.json");
        e["rawPath"] = json!(path);
        e["rawQueryString"] = json!(query);
        e["requestContext"]["http"]["path"] = json!(path);
        e["queryStringParameters"] = if single.is_empty() {
            Value::Null
        } else {
            Value::Object(single)
        };
        e
    }
}

/// Runs one event through the adapter and returns API Gateway's response JSON.
async fn invoke(app: axum::Router, event: Value) -> Value {
    let request: LambdaRequest = serde_json::from_value(event).expect("an API Gateway event");
    let mut service = Adapter::from(app);
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .unwrap();
    let response = service
        .call(LambdaEvent::new(request, Context::default()))
        .await
        .unwrap();
    serde_json::to_value(&response).unwrap()
}

#[test]
fn api_gateway_events_get_the_same_responses_as_http() {
    let lake = lake();
    let client = lake.client;
    let targets = [
        format!("/client-orders?resource=status_summary&client_id={client}"),
        format!("/clients/{client}/orders?limit=3&status=delivered"),
        "/sales/by-channel?format=csv".to_string(),
        "/runs?limit=1".to_string(),
        "/clients/abc/orders".to_string(),
        "/clients/123456789/orders".to_string(),
        "/healthz".to_string(),
        "/".to_string(),
        "/nope".to_string(),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = duff_api::router(super::embedded(), None);
    for version in ["v1", "v2"] {
        for target in &targets {
            let http = get(server(), target);
            let out = rt.block_on(invoke(app.clone(), event(version, target)));
            assert_eq!(out["statusCode"], http.status, "{version} {target}: {out}");
            assert_eq!(out["isBase64Encoded"], false, "{version} {target}");
            // The dashboard's page resolves its links under the REST event's stage (`prod`).
            let want = match (version, target.as_str()) {
                ("v1", "/") => http
                    .text()
                    .replace("<base href=\"/\">", "<base href=\"/prod/\">"),
                _ => http.text().to_string(),
            };
            assert_eq!(
                out["body"].as_str().unwrap_or(""),
                want,
                "{version} {target}"
            );
            // REST responses carry headers in multiValueHeaders, HTTP API ones in headers.
            let content_type = out["headers"]["content-type"]
                .as_str()
                .or_else(|| out["multiValueHeaders"]["content-type"][0].as_str());
            assert_eq!(
                content_type,
                http.header("content-type"),
                "{version} {target}"
            );
        }
    }
    // The REST fixture as recorded (stage `prod`, status summary of client 1) is answered too.
    let out = rt.block_on(invoke(app, fixture("apigw_rest_v1.json")));
    assert_eq!(out["statusCode"], 200, "{out}");
    assert!(out["body"].as_str().unwrap().starts_with('['));
}
