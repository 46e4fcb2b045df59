//! The dashboard in headless Chromium (Debian's `chromium`, installed by
//! `tests/tools/install`): the page loads without console errors, the charts render the reports' numbers, a
//! client lookup from the URL shows that client's orders. A screenshot is kept under
//! `target/tmp/api-dashboard.png`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Measures, lake, money, server};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium; a clear failure (never a skip) when it is missing.
pub fn chromium() -> &'static Path {
    assert!(
        Path::new(CHROMIUM).exists(),
        "the dashboard test needs Debian's chromium at {CHROMIUM}: run `tests/tools/install` \
         (it installs the tests' tools with apt-get and from PyPI)"
    );
    Path::new(CHROMIUM)
}

fn headless(profile: &Path) -> Command {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=60000",
        "--window-size=1280,2200",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// Attribute values of every element of `dom` that has `marker` in its tag.
pub fn attr_values(dom: &str, marker: &str, attr: &str) -> Vec<String> {
    dom.split('<')
        .filter(|tag| tag.contains(marker))
        .filter_map(|tag| {
            let start = tag.find(&format!("{attr}=\""))? + attr.len() + 2;
            let end = tag[start..].find('"')? + start;
            Some(tag[start..end].replace("&amp;", "&"))
        })
        .collect()
}

/// The opening tag of the SVG chart `name` up to its closing tag.
pub fn chart<'a>(dom: &'a str, name: &str) -> &'a str {
    let start = dom
        .find(&format!("data-chart=\"{name}\""))
        .unwrap_or_else(|| panic!("chart {name} not rendered:\n{dom}"));
    let end = dom[start..].find("</svg>").unwrap() + start;
    &dom[start..end]
}

/// `url` as headless Chromium renders it, once its script ran to the end without a script
/// error (the page mirrors them into `#console-errors`): (DOM, Chromium's log).
fn rendered(url: &str) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = headless(profile.path())
        .args(["--dump-dom", url])
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "chromium failed: {log}");
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page finished loading:\n{dom}\n{log}"
    );
    assert!(
        dom.contains("id=\"console-errors\" hidden"),
        "console errors:\n{dom}"
    );
    (dom, log)
}

#[test]
fn the_dashboard_renders_charts_and_a_client_lookup_in_headless_chromium() {
    let lake = lake();
    let client = lake.client;
    let addr = server();
    let url = format!("http://{addr}/?client={client}");

    // No console errors: the page mirrors them into #console-errors, Chromium logs them.
    let (dom, log) = rendered(&url);
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("rror")))
        .collect();
    assert!(console_errors.is_empty(), "{console_errors:#?}");
    assert!(!dom.contains("class=\"error\""), "a section failed:\n{dom}");

    // Sales per product: the top 15 products by sales, exact values.
    let latest = lake.all_latest();
    let mut products: std::collections::BTreeMap<i64, i128> = Default::default();
    for l in latest.values() {
        *products.entry(l.product_id).or_default() += l.total_price;
    }
    let mut top: Vec<(i128, i64)> = products.iter().map(|(p, s)| (-s, *p)).collect();
    top.sort();
    let want: Vec<String> = top.iter().take(15).map(|(s, _)| money(-s)).collect();
    let bars = attr_values(chart(&dom, "products"), "class=\"bar\"", "data-value");
    assert_eq!(bars, want);

    // Status breakdown: one slice per status with lines, values = order lines.
    let mut statuses: std::collections::BTreeMap<&str, Measures> = Default::default();
    for l in latest.values() {
        statuses.entry(&l.status).or_default().add(l);
    }
    let slices = attr_values(chart(&dom, "status"), "class=\"slice\"", "data-value");
    let mut got: Vec<i64> = slices.iter().map(|v| v.parse().unwrap()).collect();
    let mut want: Vec<i64> = statuses.values().map(|m| m.order_lines).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // Sales per day and channel, and per channel: one bar per group with its exact sales.
    let bars = |name: &str| -> std::collections::BTreeMap<String, String> {
        let part = chart(&dom, name);
        let labels = attr_values(part, "class=\"bar\"", "data-label");
        let values = attr_values(part, "class=\"bar\"", "data-value");
        assert_eq!(labels.len(), values.len(), "{name}: a label per bar");
        labels.into_iter().zip(values).collect()
    };
    let mut days: std::collections::BTreeMap<String, i128> = Default::default();
    let mut channels: std::collections::BTreeMap<String, i128> = Default::default();
    for l in latest.values() {
        *days
            .entry(format!("{} {}", l.pa_date, l.channel))
            .or_default() += l.total_price;
        *channels.entry(l.channel.clone()).or_default() += l.total_price;
    }
    let exact = |sums: std::collections::BTreeMap<String, i128>| {
        sums.into_iter()
            .map(|(k, v)| (k, money(v)))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert!(days.len() > 1 && channels.len() == 3);
    assert_eq!(bars("days"), exact(days));
    assert_eq!(bars("channels"), exact(channels));

    // Recent runs with a data-quality bar each (2 committed, 1 failed).
    assert_eq!(dom.matches("data-chart=\"run-quality\"").count(), 3);
    assert!(dom.contains(&lake.runs[0].run_id));

    // The client lookup from ?client=: that client's latest lines and exact sales.
    let lines: Vec<_> = latest.values().filter(|l| l.client_id == client).collect();
    let sales: i128 = lines.iter().map(|l| l.total_price).sum();
    let summary = attr_values(&dom, "id=\"client-summary\"", "data-lines");
    assert_eq!(summary, [lines.len().to_string()]);
    assert_eq!(
        attr_values(&dom, "id=\"client-summary\"", "data-sales"),
        [money(sales)]
    );
    let table = &dom[dom.find("id=\"client-orders\"").expect("orders table")..];
    let body = &table[..table.find("</table>").unwrap()];
    assert_eq!(
        body.matches("<tr>").count(),
        lines.len() + 1,
        "header + one row per line"
    );
    for l in &lines {
        assert!(
            body.contains(&format!("<td>{}</td>", l.order_id)),
            "order {}",
            l.order_id
        );
    }

    // The screenshot, kept as an artifact.
    let shot: PathBuf = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("api-dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    let out = headless(profile.path())
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
}

/// API Gateway's part in front of the API Lambda, at the HTTP level: every path under the stage
/// `/v1`, the stage in the Lambda context of each request (as `lambda_http` gives it), the
/// dashboard's page and static files open, and with `key` set every other path answered 403
/// without it (as API Gateway answers a missing key or signature, before the Lambda).
fn behind_gateway(key: Option<&'static str>) -> String {
    use axum::extract::Request;
    use axum::middleware::{Next, from_fn};
    use axum::response::IntoResponse;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyRequestContext;
    use lambda_http::request::RequestContext;

    let gate = move |mut request: Request, next: Next| async move {
        let path = request.uri().path().to_string();
        let forbidden = axum::http::StatusCode::FORBIDDEN;
        if !(path == "/v1" || path.starts_with("/v1/")) {
            return (forbidden, r#"{"message":"Missing Authentication Token"}"#).into_response();
        }
        let open = path == "/v1" || path == "/v1/" || path.starts_with("/v1/assets/");
        let keyed = request
            .headers()
            .get("x-api-key")
            .is_some_and(|v| Some(v.as_bytes()) == key.map(str::as_bytes));
        if !open && key.is_some() && !keyed {
            return (forbidden, r#"{"message":"Forbidden"}"#).into_response();
        }
        let mut context = ApiGatewayProxyRequestContext::default();
        context.stage = Some("v1".into());
        request
            .extensions_mut()
            .insert(RequestContext::ApiGatewayV1(context));
        next.run(request).await
    };
    super::spawn(duff_api::router(super::embedded(), None).layer(from_fn(gate)))
}

/// The page at the stage URL, as Chromium renders it: (DOM, Chromium's log). Failed loads
/// (the 403s) are logged; uncaught script errors must not be.
fn at_stage(addr: &str) -> (String, String) {
    // No trailing slash: the page's links must still resolve under the stage.
    let (dom, log) = rendered(&format!("http://{addr}/v1"));
    let uncaught: Vec<&str> = log.lines().filter(|l| l.contains("Uncaught")).collect();
    assert!(uncaught.is_empty(), "{uncaught:#?}");
    (dom, log)
}

#[test]
fn the_dashboard_works_at_an_api_gateway_stage_url_and_asks_for_the_key_on_403() {
    // Open data: every chart filled from the stage's paths.
    let (dom, _) = at_stage(&behind_gateway(None));
    assert!(!dom.contains("class=\"error\""), "a section failed:\n{dom}");
    assert_eq!(
        attr_values(chart(&dom, "products"), "class=\"bar\"", "data-value").len(),
        15
    );
    for name in ["status", "channels", "days"] {
        chart(&dom, name);
    }
    assert_eq!(dom.matches("data-chart=\"run-quality\"").count(), 3);
    assert!(dom.contains("id=\"key-form\" hidden"), "no key asked for");

    // The data behind a key: the page and its files load, the 403s ask for the key.
    let (dom, log) = at_stage(&behind_gateway(Some("k3y")));
    assert!(
        !dom.contains("id=\"key-form\" hidden"),
        "the key form is shown:\n{dom}"
    );
    assert_eq!(
        dom.matches("Enter the API key above (an API key is needed, or this API takes signed requests only).")
            .count(),
        5,
        "every data section asks for the key:\n{dom}\n{log}"
    );
    assert!(!dom.contains("data-chart=\"products\""));
}
