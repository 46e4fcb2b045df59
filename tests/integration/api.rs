//! The Reporting API over HTTP, against a lake built from datagen files, with every expected
//! number computed here from the csv-crate reference ([`crate::reference`]), not by SQL.
//!
//! The lake: run 1 (datagen, 2026-11-20), run 2 (2026-11-21) re-ingesting some of run 1's order
//! lines with a new status and units (one of them moved to another client) plus a new client, a
//! failed run, and the data files of a run that never committed (copied in without its
//! manifest): it must stay invisible.

mod athena;
mod current;
pub mod dashboard;
mod follows;
mod hostile;
mod lake_in_s3;
mod lambda;
mod routes;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use duff_datagen::{Dirt, GenConfig, Size};
use duff_engine::{RunOptions, RunOutcome};
use serde_json::Value;

use crate::common;
use crate::reference::{RefOutput, reference};

pub const DAY1: &str = "2026-11-20";
pub const DAY2: &str = "2026-11-21";
pub const DAY3: &str = "2026-11-22";
/// A client that first appears in run 2 (five new lines, and one line moved from [`TestLake::client`]).
pub const NEW_CLIENT: i64 = 424_242;
pub const NEW_CLIENT_NAME: &str = "Café Ünïcödé, Springfield";
/// Only the uncommitted run has this client.
pub const GHOST_CLIENT: i64 = 777_777;

/// One order line as a report must see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub client_id: i64,
    pub client_name: String,
    pub order_id: i64,
    pub product_id: i64,
    pub description: String,
    pub price: i128,
    pub units: i64,
    pub volume: i128,
    pub channel: String,
    pub status: String,
    pub total_price: i128,
    pub total_volume: i128,
    pub pa_date: String,
    pub run_id: String,
}

pub struct RunInfo {
    pub run_id: String,
    pub pa_date: String,
    pub reference: RefOutput,
}

/// The length of the client name on run 2's long malformed line.
pub const LONG_FIELD: usize = 3000;

pub struct TestLake {
    pub root: PathBuf,
    pub runs: Vec<RunInfo>,
    pub failed_run_id: String,
    pub ghost_run_id: String,
    /// The client run 2 updates.
    pub client: i64,
}

/// Units of 10^-4 from the reference's rendering (`12.3400`).
pub fn units(text: &str) -> i128 {
    text.replace('.', "").parse().unwrap()
}

/// `12.3400` from units of 10^-4.
pub fn money(units: i128) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let u = units.unsigned_abs();
    format!("{sign}{}.{:04}", u / 10_000, u % 10_000)
}

fn write_csv(path: &Path, rows: &[Vec<String>]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(duff_engine::rules::REQUIRED_COLUMNS)
        .unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
}

fn options(day: &str, hour: u32) -> RunOptions {
    RunOptions {
        pa_date: Some(day.parse().unwrap()),
        ingested_at: Some(format!("{day}T{hour:02}:00:00Z").parse().unwrap()),
        ..RunOptions::default()
    }
}

fn committed(outcome: RunOutcome) -> String {
    match outcome {
        RunOutcome::Succeeded(m) => m.run_id,
        other => panic!("expected a committed run, got {other:?}"),
    }
}

/// The reference's input columns of a kept row: the first 10 values.
fn input_columns(values: &[String]) -> Vec<String> {
    values[..10].to_vec()
}

fn build(root: &Path, work: &Path) -> TestLake {
    let channels = ["Retail", "Online", "B2B"];
    // Run 1: datagen with dirt and two extra columns (the manifest lists them).
    let cfg = GenConfig {
        seed: 7,
        size: Size::Rows(20_000),
        clients: 300,
        products: 40,
        dirt: Dirt::typical(),
        extra_columns: true,
        ..GenConfig::default()
    };
    let (csv1, _) = common::datagen(work, "day1.csv", &cfg);
    let ref1 = reference(&std::fs::read(&csv1).unwrap(), &channels);
    let run1 = committed(common::run_delta(&csv1, root, &options(DAY1, 10)));

    // Run 2: every line of one client and every 40th line re-ingested with a new status and
    // units, plus a new client with a unicode name.
    let mut per_client: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &ref1.kept {
        *per_client.entry(&row.values[0]).or_default() += 1;
    }
    let client: i64 = per_client
        .iter()
        .filter(|(_, n)| (20..=60).contains(*n))
        .map(|(c, _)| c.parse::<i64>().unwrap())
        .min()
        .expect("a client with 20..=60 lines");
    let next_status = |s: &str| match s {
        "created" => "delivered",
        "delivered" => "broken",
        _ => "created",
    };
    let mut rows2: Vec<Vec<String>> = Vec::new();
    let mut moved = false;
    for (i, row) in ref1.kept.iter().enumerate() {
        if row.values[0] == client.to_string() || i % 40 == 0 {
            let mut v = input_columns(&row.values);
            v[9] = next_status(&v[9]).to_string();
            v[6] = (v[6].parse::<i64>().unwrap() + 1).to_string();
            if !moved && row.values[0] == client.to_string() {
                // One of the client's lines now belongs to the new client: it must leave the
                // client's reports and join the new client's.
                v[0] = NEW_CLIENT.to_string();
                v[1] = NEW_CLIENT_NAME.to_string();
                moved = true;
            }
            rows2.push(v);
        }
    }
    let product = &ref1.kept[0].values;
    for n in 0..5 {
        rows2.push(vec![
            NEW_CLIENT.to_string(),
            NEW_CLIENT_NAME.to_string(),
            (9_000_000 + n).to_string(),
            product[3].clone(),
            product[4].clone(),
            product[5].clone(),
            (n + 1).to_string(),
            product[7].clone(),
            channels[n as usize % 3].to_string(),
            "created".to_string(),
        ]);
    }
    // A long malformed line: quarantined whole, its raw text cut in the list of its run's
    // quarantined rows and whole on the line's own route.
    let mut long = input_columns(&ref1.kept[0].values);
    long[1] = "x".repeat(LONG_FIELD);
    long[6] = "many".to_string();
    rows2.push(long);
    let csv2 = work.join("day2.csv");
    write_csv(&csv2, &rows2);
    let ref2 = reference(&std::fs::read(&csv2).unwrap(), &channels);
    let run2 = committed(common::run_delta(&csv2, root, &options(DAY2, 11)));

    // A failed run: its manifest is visible in /runs, its rows nowhere.
    let bad = work.join("bad.csv");
    std::fs::write(&bad, "order_id,status\n1,created\n").unwrap();
    let failed_run_id = match common::run_delta(&bad, root, &options(DAY2, 12)) {
        RunOutcome::Failed(m) => m.run_id,
        other => panic!("expected a failed run, got {other:?}"),
    };

    // A run that never committed: processed elsewhere, data files copied in, no manifest. It
    // has the newest ingested_at, so it would win every key it touches if it were visible.
    let mut rows3: Vec<Vec<String>> = ref1.kept[..200]
        .iter()
        .map(|r| {
            let mut v = input_columns(&r.values);
            v[6] = "999999".into();
            v
        })
        .collect();
    rows3.push(vec![
        GHOST_CLIENT.to_string(),
        "Ghost".into(),
        "8000000".into(),
        product[3].clone(),
        product[4].clone(),
        product[5].clone(),
        "1".into(),
        product[7].clone(),
        "Retail".into(),
        "created".into(),
    ]);
    let csv3 = work.join("day3.csv");
    write_csv(&csv3, &rows3);
    let scratch = work.join("scratch-lake");
    let ghost_run_id = committed(common::run_delta(&csv3, &scratch, &options(DAY3, 13)));
    copy_data_files(&scratch, root);

    TestLake {
        root: root.to_path_buf(),
        runs: vec![
            RunInfo {
                run_id: run1,
                pa_date: DAY1.into(),
                reference: ref1,
            },
            RunInfo {
                run_id: run2,
                pa_date: DAY2.into(),
                reference: ref2,
            },
        ],
        failed_run_id,
        ghost_run_id,
        client,
    }
}

/// Copies every data file of one lake into another, not its tables' logs or run records: the
/// files are there, no commit names them.
fn copy_data_files(from: &Path, to: &Path) {
    for (rel, bytes) in common::snapshot(from, false) {
        if rel.starts_with("_staging") || rel.starts_with("runs/") || rel.contains("_delta_log/") {
            continue;
        }
        let dest = to.join(&rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
}

/// The shared lake, built once per test process.
pub fn lake() -> &'static TestLake {
    static LAKE: OnceLock<TestLake> = OnceLock::new();
    LAKE.get_or_init(|| {
        let base =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("api-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        build(&base.join("lake"), &base)
    })
}

impl TestLake {
    /// Every visible order line: the latest version per key over runs 1 and 2 (run 2 was
    /// ingested later), only partitions within `from..=to`.
    pub fn latest(&self, from: &str, to: &str) -> BTreeMap<(i64, i64), Line> {
        let mut out = BTreeMap::new();
        for run in &self.runs {
            if run.pa_date.as_str() < from || run.pa_date.as_str() > to {
                continue;
            }
            for row in &run.reference.kept {
                let v = &row.values;
                let line = Line {
                    client_id: v[0].parse().unwrap(),
                    client_name: v[1].clone(),
                    order_id: v[2].parse().unwrap(),
                    product_id: v[3].parse().unwrap(),
                    description: v[4].clone(),
                    price: units(&v[5]),
                    units: v[6].parse().unwrap(),
                    volume: units(&v[7]),
                    channel: v[8].clone(),
                    status: v[9].clone(),
                    total_price: units(&v[10]),
                    total_volume: units(&v[11]),
                    pa_date: run.pa_date.clone(),
                    run_id: run.run_id.clone(),
                };
                out.insert((line.order_id, line.product_id), line);
            }
        }
        out
    }

    pub fn all_latest(&self) -> BTreeMap<(i64, i64), Line> {
        self.latest("0001-01-01", "9999-12-31")
    }
}

/// Sums of a group of lines, as the API reports them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Measures {
    pub orders: std::collections::BTreeSet<i64>,
    pub order_lines: i64,
    pub units: i64,
    pub sales: i128,
    pub volume: i128,
}

impl Measures {
    pub fn add(&mut self, l: &Line) {
        self.orders.insert(l.order_id);
        self.order_lines += 1;
        self.units += l.units;
        self.sales += l.total_price;
        self.volume += l.total_volume;
    }

    /// Checks a JSON row's measure columns.
    pub fn check(&self, row: &Value, what: &str) {
        assert_eq!(row["orders"], self.orders.len() as i64, "{what}: orders");
        if row.get("order_lines").is_some() {
            assert_eq!(row["order_lines"], self.order_lines, "{what}: order_lines");
        }
        assert_eq!(row["units"], self.units, "{what}: units");
        assert_eq!(row["sales"], money(self.sales), "{what}: sales");
        assert_eq!(row["volume"], money(self.volume), "{what}: volume");
    }
}

// ---- a tiny blocking HTTP/1.1 client (Connection: close) ------------------------------------

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request; `target` is sent as is (tests percent-encode what they need).
pub fn request(addr: &str, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(300)))
        .unwrap();
    // A `Host` among `headers` replaces the address (a virtual host on a loopback server).
    let host = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map_or(addr, |(_, v)| v);
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
    {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 4 + size..];
    }
}

pub fn get(addr: &str, target: &str) -> Resp {
    request(addr, "GET", target, &[])
}

/// GET that must succeed with JSON.
pub fn get_json(addr: &str, target: &str) -> Value {
    let r = get(addr, target);
    assert_eq!(r.status, 200, "GET {target}: {}", r.text());
    r.json()
}

/// Every page of a paged JSON report, following `page.next_offset`.
pub fn all_pages(addr: &str, path: &str, limit: usize) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut rows = Vec::new();
    let mut offset = 0u64;
    loop {
        let body = get_json(addr, &format!("{path}{sep}limit={limit}&offset={offset}"));
        let page = body["rows"].as_array().unwrap();
        assert!(page.len() <= limit);
        rows.extend(page.iter().cloned());
        match body["page"]["next_offset"].as_u64() {
            Some(next) => {
                assert_eq!(page.len(), limit, "a page before the last is full");
                offset = next;
            }
            None => return rows,
        }
    }
}

/// One request of every report (with paging, filters, sorts, CSV, a run's quarantine, the
/// Lambda-era `client-orders` resources, and two that find nothing), for comparing backends.
pub fn every_report(lake: &TestLake) -> Vec<String> {
    let client = lake.client;
    let run1 = &lake.runs[0].run_id;
    vec![
        format!("/clients/{client}/orders?limit=30"),
        format!("/clients/{client}/orders?status=created&to={DAY1}"),
        "/clients?limit=25&offset=10".to_string(),
        "/clients?sort=volume&order=asc&limit=5".to_string(),
        "/sales/by-product?limit=12".to_string(),
        "/sales/by-status".to_string(),
        "/sales/by-channel?format=csv".to_string(),
        "/sales/by-day".to_string(),
        "/runs".to_string(),
        format!("/runs/{run1}"),
        format!("/runs/{run1}/quarantine?limit=15&offset=3"),
        format!("/client-orders?resource=client_orders&client_id={client}"),
        format!("/client-orders?resource=status_summary&client_id={client}"),
        format!("/client-orders?resource=orders_by_client&client_id={client}"),
        "/clients/123456789/orders".to_string(),
        "/runs/ffffffffffffffffffff".to_string(),
    ]
}

/// Starts `duff serve` as `cmd` says (its stdout is taken over); returns the process, the
/// `host:port` its first line names, and its second line (the lake it serves).
pub fn serving(mut cmd: std::process::Command) -> (std::process::Child, String, String) {
    use std::io::BufRead;
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    stdout.read_line(&mut first).unwrap();
    stdout.read_line(&mut second).unwrap();
    let addr = first
        .trim()
        .strip_prefix("Dashboard: http://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("the first line names the URL: {first:?}"))
        .to_string();
    (child, addr, second)
}

/// Serves `app` on a free loopback port from a background thread; returns `host:port`.
pub fn spawn(app: axum::Router) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            duff_api::serve(listener, app, std::future::pending())
                .await
                .unwrap();
        });
    });
    addr
}

pub fn embedded() -> duff_api::EmbeddedBackend {
    duff_api::EmbeddedBackend::open(&lake().root, 2).unwrap()
}

/// The API over the shared lake with the embedded backend, no key.
pub fn server() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| spawn(duff_api::router(embedded(), None)))
}
