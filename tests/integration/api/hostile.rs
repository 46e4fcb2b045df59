//! Bad and hostile requests get a 400 with a JSON error naming the problem. (That they never
//! reach a backend is checked in the api crate's router tests with a recording backend.)

use super::{get, lake, server};

/// (request target, error code, parameter named in the error)
const BAD: &[(&str, &str, Option<&str>)] = &[
    // non-numeric, signed, fractional, huge, unicode ids
    (
        "/clients/abc/orders",
        "invalid_parameter",
        Some("client_id"),
    ),
    ("/clients/-1/orders", "invalid_parameter", Some("client_id")),
    ("/clients/0/orders", "invalid_parameter", Some("client_id")),
    (
        "/clients/1.5/orders",
        "invalid_parameter",
        Some("client_id"),
    ),
    (
        "/clients/99999999999999999999999999/orders",
        "invalid_parameter",
        Some("client_id"),
    ),
    (
        "/clients/9223372036854775808/orders",
        "invalid_parameter",
        Some("client_id"),
    ),
    (
        "/clients/%EF%BC%91%EF%BC%92/orders",
        "invalid_parameter",
        Some("client_id"),
    ), // "１２" fullwidth
    (
        "/clients/%D9%A1%D9%A2/orders",
        "invalid_parameter",
        Some("client_id"),
    ), // Arabic-Indic digits
    // SQL injection attempts, in the path and in every kind of parameter
    (
        "/clients/1%27%20OR%20%271%27=%271/orders",
        "invalid_parameter",
        Some("client_id"),
    ),
    (
        "/clients/1;DROP%20TABLE%20orders/orders",
        "invalid_parameter",
        Some("client_id"),
    ),
    (
        "/clients/1/orders?status=delivered%27%20OR%201=1--",
        "invalid_parameter",
        Some("status"),
    ),
    (
        "/clients/1/orders?from=2026-01-01%27)%20UNION%20SELECT%20*%20FROM%20runs--",
        "invalid_parameter",
        Some("from"),
    ),
    (
        "/sales/by-product?limit=10;DROP%20TABLE%20orders",
        "invalid_parameter",
        Some("limit"),
    ),
    (
        "/clients?sort=sales%20DESC;%20DELETE%20FROM%20orders",
        "invalid_parameter",
        Some("sort"),
    ),
    (
        "/clients?order=desc,client_name",
        "invalid_parameter",
        Some("order"),
    ),
    (
        "/client-orders?resource=client_orders&client_id=1%20OR%201=1",
        "invalid_parameter",
        Some("client_id"),
    ),
    (
        "/client-orders?resource=client_orders;--&client_id=1",
        "invalid_parameter",
        Some("resource"),
    ),
    (
        "/runs/x%27%20OR%20%271/quarantine",
        "invalid_parameter",
        Some("run_id"),
    ),
    (
        "/runs/..%2F..%2Fetc%2Fpasswd",
        "invalid_parameter",
        Some("run_id"),
    ),
    (
        "/runs/abc/quarantine?reason=key_conflict%27--",
        "invalid_parameter",
        Some("reason"),
    ),
    (
        "/runs?status=%27%20OR%20%27%27=%27",
        "invalid_parameter",
        Some("status"),
    ),
    // dates: invalid, not a calendar day, unicode digits, reversed range
    (
        "/sales/by-day?from=2026-02-30",
        "invalid_parameter",
        Some("from"),
    ),
    (
        "/sales/by-day?to=yesterday",
        "invalid_parameter",
        Some("to"),
    ),
    (
        "/sales/by-day?from=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-01-01",
        "invalid_parameter",
        Some("from"),
    ),
    (
        "/sales/by-day?from=2026-11-21&to=2026-11-20",
        "reversed_range",
        Some("from"),
    ),
    // pages
    (
        "/sales/by-product?limit=0",
        "invalid_parameter",
        Some("limit"),
    ),
    (
        "/sales/by-product?limit=1001",
        "invalid_parameter",
        Some("limit"),
    ),
    (
        "/sales/by-product?limit=99999999999999999999999",
        "invalid_parameter",
        Some("limit"),
    ),
    (
        "/sales/by-product?offset=-1",
        "invalid_parameter",
        Some("offset"),
    ),
    (
        "/sales/by-product?offset=1000001",
        "invalid_parameter",
        Some("offset"),
    ),
    // unknown, repeated, missing, malformed parameters
    (
        "/sales/by-status?client_id=1",
        "unknown_parameter",
        Some("client_id"),
    ),
    (
        "/sales/by-status?%C3%A9t%C3%A9=1",
        "unknown_parameter",
        Some("été"),
    ),
    ("/healthz?verbose=1", "unknown_parameter", Some("verbose")),
    (
        "/sales/by-status?limit=1&limit=2",
        "duplicate_parameter",
        Some("limit"),
    ),
    (
        "/sales/by-status?format=xml",
        "invalid_parameter",
        Some("format"),
    ),
    ("/sales/by-status?limit=%FF", "malformed_query", None),
    (
        "/client-orders?client_id=1",
        "missing_parameter",
        Some("resource"),
    ),
    (
        "/client-orders?resource=orders_by_client",
        "missing_parameter",
        Some("client_id"),
    ),
    (
        "/client-orders?resource=client_orders&limit=10001",
        "invalid_parameter",
        Some("limit"),
    ),
    (
        "/client-orders?resource=everything&client_id=1",
        "invalid_parameter",
        Some("resource"),
    ),
    (
        "/client-orders?resource=client_orders&client_id=abc",
        "invalid_parameter",
        Some("client_id"),
    ),
];

#[test]
fn bad_and_hostile_parameters_get_400_with_a_json_error() {
    lake();
    for (target, code, parameter) in BAD {
        let r = get(server(), target);
        assert_eq!(r.status, 400, "{target}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{target}"
        );
        let err = r.json();
        assert_eq!(err["error"]["code"], *code, "{target}: {err}");
        assert_eq!(err["error"]["status"], 400);
        assert_eq!(err["error"]["retryable"], false);
        assert!(!err["error"]["message"].as_str().unwrap().is_empty());
        if let Some(p) = parameter {
            assert_eq!(err["error"]["parameter"], *p, "{target}: {err}");
        }
    }
}

#[test]
fn huge_values_are_not_echoed_in_full() {
    let value = "9".repeat(3000);
    let r = get(server(), &format!("/sales/by-product?limit={value}"));
    assert_eq!(r.status, 400);
    assert!(r.body.len() < 500, "{}", r.text());
    let r = get(
        server(),
        &format!("/sales/by-product?limit={}", "9".repeat(5000)),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "malformed_query");
}
