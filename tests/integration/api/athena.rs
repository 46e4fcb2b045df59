//! The Athena backend against a wire-level Athena stand-in on loopback: the real
//! `aws-sdk-athena` client speaks the Athena JSON protocol to a small axum server that runs the
//! received SQL and `ExecutionParameters` on the embedded engine and answers with Athena-shaped,
//! paged, all-text results. Parameter binding, polling, paging, type conversion and the
//! FAILED / CANCELLED / timeout paths run for real.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, MapArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use duff_api::reports::Param;
use duff_api::{AthenaBackend, AthenaConfig, EmbeddedBackend};
use serde_json::{Value, json};

use super::{get, lake, server, spawn};

#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Succeed,
    Fail { retryable: bool },
    Cancel,
    Hang,
}

/// Athena column infos and rows (header row first).
type ResultSet = (Vec<Value>, Vec<Vec<Option<String>>>);

struct Execution {
    request: Value,
    polls: usize,
    result_pages: usize,
    stopped: bool,
    /// Column infos and rows (header row first), or the engine's error.
    result: Result<ResultSet, String>,
}

struct StandIn {
    engine: EmbeddedBackend,
    running_polls: usize,
    outcome: Outcome,
    executions: Mutex<Vec<Execution>>,
}

/// `?` markers back to `$1..$n` in order (outside quotes), the way Athena binds them.
fn numbered(sql: &str) -> String {
    let (mut out, mut n, mut quoted) = (String::new(), 0, false);
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            _ => out.push(c),
        }
    }
    out
}

/// Athena takes `?` markers in the `WHERE` clause only (its user guide, "Use parameterized
/// queries"): a marker right after `OFFSET`, `LIMIT` or `SELECT` is refused here as there.
fn marker_outside_where(sql: &str) -> Option<String> {
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    words.windows(2).find_map(|w| {
        (w[1] == "?" && ["OFFSET", "LIMIT", "SELECT"].contains(&w[0].as_str())).then(|| {
            format!(
                "INVALID_PARAMETER_USAGE: a ? marker after {} (markers go in WHERE)",
                w[0]
            )
        })
    })
}

/// An `ExecutionParameters` entry is a SQL literal: `'text'` or an integer.
fn literal(p: &str) -> Param {
    match p.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(text) => Param::Text(text.replace("''", "'")),
        None => Param::Int(p.parse().unwrap_or_else(|_| panic!("not a literal: {p}"))),
    }
}

fn athena_type(ty: &DataType) -> (&'static str, i32, i32) {
    match ty {
        DataType::Int64 | DataType::UInt64 => ("bigint", 19, 0),
        DataType::Int32 => ("integer", 10, 0),
        DataType::Decimal128(p, s) => ("decimal", *p as i32, *s as i32),
        DataType::Boolean => ("boolean", 0, 0),
        DataType::Timestamp(..) => ("timestamp", 3, 0),
        DataType::Map(..) => ("map", 0, 0),
        DataType::List(_) => ("array", 0, 0),
        DataType::Null => ("unknown", 0, 0),
        _ => ("varchar", 2147483647, 0),
    }
}

/// One value as Athena prints it (None = NULL).
fn athena_text(array: &ArrayRef, i: usize) -> Option<String> {
    if array.is_null(i) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let ms = arrow::compute::cast(array, &DataType::Int64).unwrap();
            let ms = ms.as_primitive::<Int64Type>().value(i);
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S%.3f")
                .to_string()
        }
        DataType::Map(..) => {
            let map = array.as_any().downcast_ref::<MapArray>().unwrap();
            let entries = map.value(i);
            let (k, v) = (entries.column(0).clone(), entries.column(1).clone());
            let items: Vec<String> = (0..entries.len())
                .map(|j| {
                    format!(
                        "{}={}",
                        athena_text(&k, j).unwrap(),
                        athena_text(&v, j).unwrap_or("null".into())
                    )
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(i);
            let parts: Vec<String> = (0..items.len())
                .map(|j| athena_text(&items, j).unwrap())
                .collect();
            format!("[{}]", parts.join(", "))
        }
        _ => {
            let f = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).unwrap();
            f.value(i).to_string()
        }
    })
}

impl StandIn {
    async fn start(&self, body: &Value) -> Value {
        let text = body["QueryString"].as_str().unwrap();
        let sql = numbered(text);
        let params: Vec<Param> = body["ExecutionParameters"]
            .as_array()
            .map(|a| a.iter().map(|p| literal(p.as_str().unwrap())).collect())
            .unwrap_or_default();
        let answer = match marker_outside_where(text) {
            Some(e) => Err(duff_api::ApiError::Internal(e)),
            None => self.engine.sql_batches(&sql, &params).await,
        };
        let result = match answer {
            Ok((schema, batches)) => {
                let columns: Vec<Value> = schema
                    .fields()
                    .iter()
                    .map(|f| {
                        let (ty, precision, scale) = athena_type(f.data_type());
                        json!({"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": f.name(),
                               "Label": f.name(), "Type": ty, "Precision": precision, "Scale": scale,
                               "Nullable": "UNKNOWN", "CaseSensitive": ty == "varchar"})
                    })
                    .collect();
                let mut rows = vec![
                    schema
                        .fields()
                        .iter()
                        .map(|f| Some(f.name().clone()))
                        .collect(),
                ];
                for b in &batches {
                    for i in 0..b.num_rows() {
                        rows.push(b.columns().iter().map(|c| athena_text(c, i)).collect());
                    }
                }
                Ok((columns, rows))
            }
            Err(e) => Err(e.to_string()),
        };
        let mut executions = self.executions.lock().unwrap();
        executions.push(Execution {
            request: body.clone(),
            polls: 0,
            result_pages: 0,
            stopped: false,
            result,
        });
        json!({"QueryExecutionId": format!("q-{}", executions.len() - 1)})
    }

    fn with<T>(&self, body: &Value, f: impl FnOnce(&mut Execution) -> T) -> T {
        let id = body["QueryExecutionId"].as_str().unwrap();
        let n: usize = id.strip_prefix("q-").unwrap().parse().unwrap();
        f(&mut self.executions.lock().unwrap()[n])
    }

    fn status(&self, body: &Value) -> Value {
        let (running, outcome) = (self.running_polls, self.outcome);
        self.with(body, |e| {
            e.polls += 1;
            let status = if e.stopped {
                json!({"State": "CANCELLED", "StateChangeReason": "Query was cancelled by user"})
            } else if e.polls <= running || outcome == Outcome::Hang {
                json!({"State": "RUNNING"})
            } else {
                match (outcome, &e.result) {
                    (Outcome::Fail { retryable }, _) => json!({"State": "FAILED",
                        "StateChangeReason": "TABLE_NOT_FOUND: line 1:8: Table 'orders' does not exist",
                        "AthenaError": {"ErrorCategory": 2, "ErrorType": 1006, "Retryable": retryable,
                                        "ErrorMessage": "TABLE_NOT_FOUND: line 1:8: Table 'orders' does not exist"}}),
                    (Outcome::Cancel, _) => json!({"State": "CANCELLED",
                        "StateChangeReason": "Query cancelled: bytes scanned limit was exceeded"}),
                    (_, Err(message)) => json!({"State": "FAILED", "StateChangeReason": message}),
                    _ => json!({"State": "SUCCEEDED"}),
                }
            };
            json!({"QueryExecution": {"QueryExecutionId": body["QueryExecutionId"], "Status": status}})
        })
    }

    fn results(&self, body: &Value) -> Value {
        let max = body["MaxResults"].as_u64().unwrap_or(1000) as usize;
        let offset: usize = body["NextToken"].as_str().map_or(0, |t| t.parse().unwrap());
        self.with(body, |e| {
            e.result_pages += 1;
            let (columns, rows) = e.result.as_ref().expect("results of a failed query");
            let page: Vec<Value> = rows
                .iter()
                .skip(offset)
                .take(max)
                .map(|r| json!({"Data": r.iter().map(|v| match v {
                    Some(s) => json!({"VarCharValue": s}),
                    None => json!({}),
                }).collect::<Vec<_>>()}))
                .collect();
            let mut out = json!({"ResultSet": {"Rows": page, "ResultSetMetadata": {"ColumnInfo": columns}},
                                 "UpdateCount": 0});
            if offset + max < rows.len() {
                out["NextToken"] = (offset + max).to_string().into();
            }
            out
        })
    }
}

async fn handle(
    State(s): State<Arc<StandIn>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let out = match target.strip_prefix("AmazonAthena.") {
        Some("StartQueryExecution") => s.start(&body).await,
        Some("GetQueryExecution") => s.status(&body),
        Some("GetQueryResults") => s.results(&body),
        Some("StopQueryExecution") => s.with(&body, |e| {
            e.stopped = true;
            json!({})
        }),
        _ => {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                [("content-type", "application/x-amz-json-1.1")],
                json!({"__type": "InvalidRequestException", "Message": format!("unknown target {target}")}).to_string(),
            )
                .into_response();
        }
    };
    (
        [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amzn-requestid", "00000000-0000-0000-0000-000000000000"),
        ],
        out.to_string(),
    )
        .into_response()
}

/// A stand-in over the shared lake; returns it and its `host:port`.
fn stand_in(running_polls: usize, outcome: Outcome) -> (Arc<StandIn>, String) {
    let s = Arc::new(StandIn {
        engine: super::embedded(),
        running_polls,
        outcome,
        executions: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/", axum::routing::post(handle))
        .with_state(s.clone());
    (s, spawn(app))
}

fn backend(endpoint: &str, configure: impl FnOnce(&mut AthenaConfig)) -> AthenaBackend {
    use aws_sdk_athena::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_athena::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(format!("http://{endpoint}"))
        .credentials_provider(Credentials::new(
            "AKIDSTANDIN",
            "secret",
            None,
            None,
            "stand-in",
        ))
        .build();
    let mut config = AthenaConfig::new("duff-wg", "duff_lake");
    config.output_location = Some("s3://results/duff/".into());
    config.first_poll = Duration::from_millis(5);
    config.max_poll = Duration::from_millis(40);
    configure(&mut config);
    AthenaBackend::new(aws_sdk_athena::Client::from_conf(conf), config)
}

#[test]
fn athena_backend_answers_exactly_like_the_embedded_engine() {
    let lake = lake();
    let (standin, endpoint) = stand_in(2, Outcome::Succeed);
    let api = spawn(duff_api::router(
        backend(&endpoint, |c| c.page_size = 7),
        None,
    ));
    let client = lake.client;
    let targets = super::every_report(lake);
    for target in &targets {
        let (want, got) = (get(server(), target), get(&api, target));
        assert_eq!(got.status, want.status, "{target}: {}", got.text());
        assert_eq!(
            got.body,
            want.body,
            "{target}:\n athena {}\n embedded {}",
            got.text(),
            want.text()
        );
    }

    let executions = standin.executions.lock().unwrap();
    assert!(executions.len() >= targets.len());
    for e in executions.iter() {
        let r = &e.request;
        assert_eq!(r["WorkGroup"], "duff-wg");
        assert_eq!(r["QueryExecutionContext"]["Database"], "duff_lake");
        assert_eq!(
            r["ResultConfiguration"]["OutputLocation"],
            "s3://results/duff/"
        );
        // A result is reused only for a query with no execution parameters: Athena matches
        // the query string alone, so another client's answer could be served.
        let bound = r["ExecutionParameters"]
            .as_array()
            .is_some_and(|p| !p.is_empty());
        let reuse = &r["ResultReuseConfiguration"]["ResultReuseByAgeConfiguration"];
        assert_eq!(reuse["Enabled"], !bound, "{r}");
        assert_eq!(reuse["MaxAgeInMinutes"], 5);
        let sql = r["QueryString"].as_str().unwrap();
        assert!(
            !sql.contains('$'),
            "every placeholder became a marker: {sql}"
        );
        let markers = sql.matches('?').count();
        assert_eq!(
            markers,
            r["ExecutionParameters"].as_array().map_or(0, |a| a.len())
        );
        // Polling: RUNNING twice, then SUCCEEDED.
        assert_eq!(e.polls, 3);
        // Paging: 7 rows a page, the header row included in the first.
        let rows = e.result.as_ref().unwrap().1.len();
        assert_eq!(e.result_pages, rows.div_ceil(7), "{sql}");
    }
    // The client id is bound, never in the SQL text.
    let lookup = executions
        .iter()
        .find(|e| {
            e.request["ExecutionParameters"]
                .as_array()
                .is_some_and(|p| p.contains(&json!(client.to_string())))
        })
        .expect("a query bound the client id");
    assert!(
        !lookup.request["QueryString"]
            .as_str()
            .unwrap()
            .contains(&client.to_string())
    );
    let dated = executions.iter().any(|e| {
        e.request["ExecutionParameters"]
            .as_array()
            .is_some_and(|p| p.contains(&json!(format!("'{}'", super::DAY1))))
    });
    assert!(dated, "dates are bound as quoted literals");
    // Pages really were many: the longest result took several GetQueryResults calls.
    assert!(executions.iter().map(|e| e.result_pages).max().unwrap() >= 5);
    // Every committed run is folded in the test lake: reports over every date read the marts
    // and order_lines, after one check of `folds` (cached for the rest of the requests).
    let sql = |e: &Execution| e.request["QueryString"].as_str().unwrap().to_string();
    let checks = executions
        .iter()
        .filter(|e| sql(e).contains("every_run_folded"))
        .count();
    assert_eq!(checks, 1, "one check, then its answer reused");
    assert!(
        executions.iter().any(|e| sql(e).contains("mart_status")),
        "/sales/by-status read mart_status"
    );
}

fn error_of(
    outcome: Outcome,
    configure: impl FnOnce(&mut AthenaConfig),
) -> (super::Resp, Arc<StandIn>, Duration) {
    lake();
    let (standin, endpoint) = stand_in(1, outcome);
    let api = spawn(duff_api::router(backend(&endpoint, configure), None));
    let started = Instant::now();
    let r = get(&api, "/sales/by-status");
    (r, standin, started.elapsed())
}

#[test]
fn a_failed_query_is_a_500_that_says_not_to_retry() {
    let (r, _, _) = error_of(Outcome::Fail { retryable: false }, |_| {});
    assert_eq!(r.status, 500);
    let err = r.json();
    assert_eq!(err["error"]["code"], "query_failed");
    assert_eq!(err["error"]["retryable"], false);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("TABLE_NOT_FOUND")
    );
    assert!(r.header("retry-after").is_none());
}

#[test]
fn a_retryable_failure_is_a_503_with_retry_after() {
    let (r, _, _) = error_of(Outcome::Fail { retryable: true }, |_| {});
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["retryable"], true);
    assert_eq!(r.header("retry-after"), Some("1"));
}

#[test]
fn a_cancelled_query_is_a_502_with_athenas_reason() {
    let (r, _, _) = error_of(Outcome::Cancel, |_| {});
    assert_eq!(r.status, 502);
    let err = r.json();
    assert_eq!(err["error"]["code"], "query_cancelled");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bytes scanned limit")
    );
}

#[test]
fn a_query_past_the_deadline_is_stopped_and_answered_504() {
    let (r, standin, took) = error_of(Outcome::Hang, |c| c.deadline = Duration::from_millis(800));
    assert_eq!(r.status, 504, "{}", r.text());
    let err = r.json();
    assert_eq!(err["error"]["code"], "timeout");
    assert_eq!(err["error"]["retryable"], true);
    assert!(
        took < Duration::from_secs(4),
        "bounded by the deadline: {took:?}"
    );
    let executions = standin.executions.lock().unwrap();
    assert!(executions[0].stopped, "the query was asked to stop");
    assert!(
        executions[0].polls >= 3,
        "it was polled with backoff until the deadline"
    );
}

#[test]
fn an_unreachable_athena_is_a_retryable_503() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = dead.local_addr().unwrap().to_string();
    drop(dead);
    let api = spawn(duff_api::router(backend(&endpoint, |_| {}), None));
    let r = get(&api, "/sales/by-status");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "backend_unavailable");
    assert_eq!(r.json()["error"]["retryable"], true);
}
