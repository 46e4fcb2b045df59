//! The OpenAPI 3.0 document served at `/openapi.json`. The tests check it against the router's
//! [`ROUTES`](crate::router::ROUTES) (same paths, same query parameters) and that every
//! `$ref` resolves.

use serde_json::{Value, json};

use crate::gateway::API_KEY_HEADER;
use crate::params::{DEFAULT_LIMIT, LEGACY_MAX_ROWS, MAX_DATE, MAX_LIMIT, MAX_OFFSET, MIN_DATE};
use crate::reports::ClientSort;

fn int() -> Value {
    json!({"type": "integer", "format": "int64"})
}
fn text() -> Value {
    json!({"type": "string"})
}
fn nullable(mut schema: Value) -> Value {
    schema["nullable"] = true.into();
    schema
}
fn decimal() -> Value {
    json!({"$ref": "#/components/schemas/Decimal"})
}
fn object(props: &[(&str, Value)]) -> Value {
    let properties: serde_json::Map<String, Value> = props
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    json!({"type": "object", "properties": properties, "required": required})
}
fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}
fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}
fn date_param(name: &str, default: &str) -> Value {
    query(
        name,
        "Inclusive partition date (pa_date) bound, YYYY-MM-DD. Partitions outside the range are not read; \
         within it the latest version of each order line wins.",
        json!({"type": "string", "format": "date", "default": default}),
    )
}
fn page_params() -> Vec<Value> {
    vec![
        query(
            "limit",
            "Rows per page.",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
        ),
        query(
            "offset",
            "Rows to skip (use page.next_offset).",
            json!({"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}),
        ),
    ]
}
fn format_param() -> Value {
    query(
        "format",
        "Response format. CSV has a header line; the next page's offset is in the x-next-offset header.",
        json!({"type": "string", "enum": ["json", "csv"], "default": "json"}),
    )
}
fn list_params() -> Vec<Value> {
    let mut p = vec![date_param("from", MIN_DATE), date_param("to", MAX_DATE)];
    p.extend(page_params());
    p.push(format_param());
    p
}

fn errors(mut responses: Value, codes: &[&str]) -> Value {
    let describe = |code: &str| match code {
        "400" => "Bad request: unknown, repeated or invalid parameter, reversed date range.",
        "401" => "Missing or wrong API key.",
        "404" => "Unknown client or run.",
        "500" => "The query failed and retrying will not help.",
        "502" => "The query was cancelled.",
        "503" => "The backend is unavailable or throttling; retry (see Retry-After).",
        _ => "The query did not finish in time; retry or narrow the date range.",
    };
    for code in codes.iter().chain(&["500", "502", "503", "504"]) {
        responses[*code] = json!({
            "description": describe(code),
            "content": {"application/json": {"schema": schema_ref("Error")}},
        });
    }
    responses
}

/// A paged report: JSON envelope or CSV.
fn paged(
    summary: &str,
    description: &str,
    row: &str,
    params: Vec<Value>,
    op: &str,
    with_404: bool,
) -> Value {
    let envelope = json!({
        "allOf": [schema_ref("ReportPage"), {
            "type": "object",
            "properties": {"rows": {"type": "array", "items": schema_ref(row)}},
        }],
    });
    let codes: &[&str] = if with_404 {
        &["400", "401", "404"]
    } else {
        &["400", "401"]
    };
    json!({"get": {
        "operationId": op,
        "summary": summary,
        "description": description,
        "security": security(),
        "parameters": params,
        "responses": errors(json!({"200": {
            "description": "One page of rows, in a stable order.",
            "content": {
                "application/json": {"schema": envelope},
                "text/csv": {"schema": {"type": "string"}},
            },
        }}), codes),
    }})
}

fn measures() -> Vec<(&'static str, Value)> {
    vec![
        ("orders", int()),
        ("order_lines", int()),
        ("units", int()),
        ("sales", decimal()),
        ("volume", decimal()),
    ]
}

fn with(
    mut base: Vec<(&'static str, Value)>,
    more: Vec<(&'static str, Value)>,
) -> Vec<(&'static str, Value)> {
    base.extend(more);
    base
}

fn run_list_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("run_id", text()),
        (
            "status",
            json!({"type": "string", "enum": ["succeeded", "failed"]}),
        ),
        ("error_code", nullable(text())),
        ("error", nullable(text())),
        ("source_uri", text()),
        ("pa_date", text()),
        ("ingested_at", text()),
        ("started_at", text()),
        ("finished_at", text()),
        ("rows_read", int()),
        ("rows_written", int()),
        ("exact_duplicates", int()),
        ("quarantined", int()),
        (
            "quarantined_by_reason",
            json!({"type": "object", "additionalProperties": {"type": "integer", "format": "int64"}}),
        ),
        ("blank_lines", int()),
        ("nothing_lost", json!({"type": "boolean"})),
        ("input_bytes", int()),
        ("output_bytes", int()),
        // When order_lines and the marts took the run in; null until then, and for failed runs.
        ("folded_at", nullable(text())),
    ]
}

fn schemas() -> Value {
    let client_order = object(&[
        ("order_id", int()),
        ("product_id", int()),
        ("product_description", text()),
        ("product_price", decimal()),
        ("product_ccf", int()),
        ("product_volume", decimal()),
        ("total_price", decimal()),
        ("total_volume", decimal()),
        ("point_of_sale_channel", text()),
        (
            "status",
            json!({"type": "string", "enum": ["created", "delivered", "broken"]}),
        ),
        ("client_id", int()),
        ("client_name", text()),
        ("pa_date", text()),
        (
            "ingested_at",
            json!({"type": "string", "format": "date-time"}),
        ),
        ("run_id", text()),
    ]);
    json!({
        "Decimal": {
            "type": "string",
            "pattern": "^-?[0-9]+\\.[0-9]{4}$",
            "description": "An exact decimal with 4 fraction digits, as a string (never a binary float).",
            "example": "1234.5000",
        },
        "Error": object(&[("error", object(&[
            ("status", json!({"type": "integer"})),
            ("code", json!({"type": "string", "enum": [
                "unknown_parameter", "duplicate_parameter", "missing_parameter", "invalid_parameter",
                "reversed_range", "malformed_query", "unauthorized", "not_found", "method_not_allowed", "misdirected_host",
                "query_failed", "query_cancelled", "timeout", "backend_unavailable", "internal"]})),
            ("message", text()),
            ("retryable", json!({"type": "boolean", "description": "Whether the same request may succeed later."})),
        ]))]),
        "Column": object(&[
            ("name", text()),
            ("type", json!({"type": "string", "enum": ["integer", "decimal", "text", "boolean", "timestamp", "map", "array"]})),
        ]),
        "ReportPage": object(&[
            ("report", text()),
            ("columns", json!({"type": "array", "items": schema_ref("Column")})),
            ("rows", json!({"type": "array", "items": {"type": "object"}})),
            ("page", object(&[
                ("offset", int()),
                ("limit", int()),
                ("returned", int()),
                ("next_offset", nullable(int())),
            ])),
        ]),
        "ClientOrder": client_order,
        "ClientTotals": object(&with(
            with(vec![("client_id", int()), ("client_name", nullable(text()))], measures()),
            vec![
                ("top_product_id", int()),
                ("top_product_description", nullable(text())),
                ("top_product_sales", decimal()),
            ],
        )),
        "ProductSales": object(&[
            ("product_id", int()),
            ("product_description", nullable(text())),
            ("orders", int()),
            ("units", int()),
            ("sales", decimal()),
            ("volume", decimal()),
        ]),
        "StatusSales": object(&with(vec![("status_id", int()), ("status", text())], measures())),
        "ChannelSales": object(&with(vec![("channel_id", int()), ("channel", text())], measures())),
        "DaySales": object(&with(vec![("pa_date", text()), ("channel", text())], measures())),
        "Run": object(&run_list_fields()),
        "RunDetail": object(&with(run_list_fields(), vec![
            ("source_size_bytes", int()),
            ("source_version", text()),
            ("source_gzip", json!({"type": "boolean"})),
            ("distinct_clients", int()),
            ("distinct_products", int()),
            ("engine_version", text()),
            ("threads", int()),
            ("extra_columns", json!({"type": "array", "items": {"type": "string"}})),
        ])),
        "QuarantinedRow": object(&[
            ("source_line", int()),
            ("reason", text()),
            ("detail", text()),
            ("raw_text", text()),
            ("raw_text_truncated", json!({"type": "boolean", "description": "raw_text was cut at 1024 characters: the line's route has it whole."})),
            ("kept_line", nullable(int())),
            ("source_file", text()),
            ("pa_date", text()),
            ("run_id", text()),
        ]),
        "LegacyClientTotals": object(&[
            ("client_id", int()),
            ("total_orders", int()),
            ("total_spent", decimal()),
        ]),
        "LegacyStatusSummary": object(&[("status", text()), ("count", int())]),
        "LegacyOrderTotals": object(&[
            ("order_id", int()),
            ("order_lines", int()),
            ("units", int()),
            ("sales", decimal()),
            ("volume", decimal()),
        ]),
    })
}

fn paths() -> Value {
    let client_id = path_param(
        "client_id",
        "Client id: digits only, 1..=9223372036854775807.",
        json!({"type": "integer", "format": "int64", "minimum": 1}),
    );
    let run_id = path_param(
        "run_id",
        "Run id (as in _runs/<run_id>.json).",
        json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}),
    );
    let mut client_orders = vec![
        client_id.clone(),
        date_param("from", MIN_DATE),
        date_param("to", MAX_DATE),
    ];
    client_orders.push(query(
        "status",
        "Only lines whose latest status is this.",
        json!({"type": "string", "enum": ["created", "delivered", "broken"]}),
    ));
    client_orders.extend(page_params());
    client_orders.push(format_param());

    let mut totals = vec![date_param("from", MIN_DATE), date_param("to", MAX_DATE)];
    totals.push(query(
        "sort",
        "Order by this measure (ties by client_id).",
        json!({"type": "string", "enum": ClientSort::NAMES, "default": "sales"}),
    ));
    totals.push(query(
        "order",
        "Direction; default desc for measures, asc for client_id.",
        json!({"type": "string", "enum": ["desc", "asc"]}),
    ));
    totals.extend(page_params());
    totals.push(format_param());

    let mut runs = vec![date_param("from", MIN_DATE), date_param("to", MAX_DATE)];
    runs.push(query(
        "status",
        "Only runs with this status.",
        json!({"type": "string", "enum": ["succeeded", "failed"]}),
    ));
    runs.extend(page_params());
    runs.push(format_param());

    let reasons: Vec<&str> = duff_engine::Reason::ALL.iter().map(|r| r.code()).collect();
    let mut quarantine = vec![
        run_id.clone(),
        query(
            "reason",
            "Only rows quarantined for this reason.",
            json!({"type": "string", "enum": reasons}),
        ),
    ];
    quarantine.extend(page_params());
    quarantine.push(format_param());

    json!({
        "/": {"get": {
            "operationId": "dashboard",
            "summary": "The dashboard (HTML).",
            "parameters": [query("client", "Client id to look up on load.", json!({"type": "string"}))],
            "responses": {"200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}},
        }},
        "/healthz": {"get": {
            "operationId": "health",
            "summary": "Liveness; does not query the lake.",
            "responses": {"200": {"description": "Up.", "content": {"application/json": {"schema": object(&[("status", text()), ("backend", text())])}}}},
        }},
        "/openapi.json": {"get": {
            "operationId": "openapi",
            "summary": "This document.",
            "responses": {"200": {"description": "OpenAPI 3.0 document.", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }},
        "/clients": paged("Totals per client", "Orders, lines, units, sales and volume per client, with the client's top product by sales.", "ClientTotals", totals, "clientTotals", false),
        "/clients/{client_id}/orders": paged("Orders of a client", "The latest version of each of the client's order lines, by order_id then product_id. 404 when the client has no order line in any committed run; an empty page when filters match nothing.", "ClientOrder", client_orders, "clientOrders", true),
        "/sales/by-product": paged("Sales per product", "Largest sales first. orders = order lines of the product.", "ProductSales", list_params(), "salesByProduct", false),
        "/sales/by-status": paged("Orders and sales per status", "Every status, zero when unused.", "StatusSales", list_params(), "salesByStatus", false),
        "/sales/by-channel": paged("Orders and sales per channel", "Every channel, zero when unused.", "ChannelSales", list_params(), "salesByChannel", false),
        "/sales/by-day": paged("Sales per day and channel", "A day is a pa_date partition.", "DaySales", list_params(), "salesByDay", false),
        "/runs": paged("Ingestion runs", "Run manifests with their data-quality counts, newest first.", "Run", runs, "runs", false),
        "/runs/{run_id}": {"get": {
            "operationId": "run",
            "summary": "One run's details",
            "security": security(),
            "parameters": [run_id, format_param()],
            "responses": errors(json!({"200": {"description": "The run.", "content": {
                "application/json": {"schema": schema_ref("RunDetail")},
                "text/csv": {"schema": {"type": "string"}},
            }}}), &["400", "401", "404"]),
        }},
        "/runs/{run_id}/quarantine": paged("Quarantined rows of a run", "By source line; raw_text is cut at 1024 characters (raw_text_truncated). 404 for an unknown run.", "QuarantinedRow", quarantine, "runQuarantine", true),
        "/runs/{run_id}/quarantine/{source_line}": {"get": {
            "operationId": "runQuarantineLine",
            "summary": "The quarantined rows of one source line, with their whole raw text",
            "description": "One row per reason, its raw_text whole (at most --max-record-bytes; raw_text_truncated is false). 404 when the run has no quarantined row on that line.",
            "security": security(),
            "parameters": [
                run_id.clone(),
                path_param("source_line", "Line number in the source file (1 is the header).", json!({"type": "integer", "format": "int64", "minimum": 1})),
                format_param(),
            ],
            "responses": errors(json!({"200": {"description": "The line's rows.", "content": {
                "application/json": {"schema": {"type": "array", "items": schema_ref("QuarantinedRow")}},
                "text/csv": {"schema": {"type": "string"}},
            }}}), &["400", "401", "404"]),
        }},
        "/client-orders": {"get": {
            "operationId": "legacyClientOrders",
            "summary": "The earlier public API (its shape: a bare JSON array)",
            "description": "resource=client_orders: one row per client, its orders and the money it spent (LegacyClientTotals); status_summary: one row per status, its count of order lines (LegacyStatusSummary); orders_by_client: one row per order of client_id (LegacyOrderTotals). client_id narrows client_orders and status_summary to one client and is required by orders_by_client; an unknown client gives []. client_orders and orders_by_client return at most 10000 rows a response: when there are more, the x-next-offset header is the offset of the next page.",
            "security": security(),
            "parameters": [
                {"name": "resource", "in": "query", "required": true, "schema": {"type": "string", "enum": ["client_orders", "status_summary", "orders_by_client"]}},
                {"name": "client_id", "in": "query", "required": false, "description": "Required by orders_by_client.", "schema": {"type": "integer", "format": "int64", "minimum": 1}},
                query("limit", "Rows per response (client_orders, orders_by_client).", json!({"type": "integer", "minimum": 1, "maximum": LEGACY_MAX_ROWS, "default": LEGACY_MAX_ROWS})),
                query("offset", "Rows to skip (the x-next-offset header of the previous page).", json!({"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0})),
                format_param(),
            ],
            "responses": errors(json!({"200": {
                "description": "The rows, or one page of them.",
                "headers": {"x-next-offset": {"description": "Offset of the next page, when there are more rows.", "schema": {"type": "integer"}}},
                "content": {
                    "application/json": {"schema": {"type": "array", "items": {"oneOf": [
                        schema_ref("LegacyClientTotals"), schema_ref("LegacyStatusSummary"), schema_ref("LegacyOrderTotals"),
                    ]}}},
                    "text/csv": {"schema": {"type": "string"}},
                }}}), &["400", "401"]),
        }},
    })
}

/// Who may call a data route: the key, or a SigV4 signature (either, by how the API was
/// deployed; `duff serve` takes the key only).
fn security() -> Value {
    json!([{"ApiKey": []}, {"SigV4": []}])
}

/// The OpenAPI 3.0.3 document: every route of [`ROUTES`](crate::router::ROUTES) with its query
/// parameters, response schemas and error responses.
pub fn document() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Duff reporting API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Reports over the Duff orders lake (in AWS Athena, or the lake in S3 read \
                directly; locally an embedded engine). Data routes take the API key or a SigV4 \
                signature, as the API was deployed. \
                Every report reads only committed runs and the latest version of each order line. \
                Integers are JSON numbers; money and volumes are exact decimal strings.",
        },
        "paths": paths(),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "ApiKey": {
                    "type": "apiKey", "in": "header", "name": API_KEY_HEADER,
                    "description": "The API key: API Gateway's (the api stack with ApiAuth=API_KEY; \
                        infra/deploy.sh --api-auth key), or the one `duff serve` was given \
                        (--api-key-file, DUFF_API_KEY).",
                },
                "SigV4": {
                    "type": "apiKey", "in": "header", "name": "Authorization",
                    "description": "AWS Signature Version 4 (service execute-api) by an IAM principal \
                        holding the api stack's readers policy (ApiReadersPolicyArn): API Gateway \
                        with ApiAuth=IAM, the default.",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::ROUTES;

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap().to_string());
                    }
                    refs(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn document_matches_the_router() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), ROUTES.len());
        for route in ROUTES {
            let op = &doc["paths"][route.path]["get"];
            assert!(op.is_object(), "{} is not documented", route.path);
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut documented: Vec<&str> = params
                .iter()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            let mut accepted = route.query.to_vec();
            documented.sort();
            accepted.sort();
            assert_eq!(documented, accepted, "{}", route.path);
            for segment in route.path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    params
                        .iter()
                        .any(|p| p["in"] == "path" && p["name"] == name),
                    "{}: path parameter {name}",
                    route.path
                );
            }
            assert_eq!(op["security"].is_array(), !route.public, "{}", route.path);
            if !route.public {
                assert_eq!(op["security"], security(), "{}", route.path);
            }
            assert!(op["responses"]["200"].is_object());
        }
    }

    #[test]
    fn both_ways_in_are_described() {
        let doc = document();
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["ApiKey"]["name"], API_KEY_HEADER);
        assert_eq!(schemes["SigV4"]["name"], "Authorization");
        assert_eq!(schemes["SigV4"]["x-amazon-apigateway-authtype"], "awsSigv4");
        for alternative in security().as_array().unwrap() {
            let name = alternative.as_object().unwrap().keys().next().unwrap();
            assert!(schemes[name].is_object(), "{name}");
        }
    }

    #[test]
    fn every_reference_resolves_and_operation_ids_are_unique() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let pointer = r.strip_prefix('#').unwrap();
            assert!(doc.pointer(pointer).is_some(), "dangling {r}");
        }
        let mut ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p["get"]["operationId"].as_str().unwrap())
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert_eq!(doc["openapi"], "3.0.3");
    }
}
