//! Latency of every report on the embedded engine, and throughput under concurrent clients, over
//! real HTTP on loopback.
//!
//! ```sh
//! cargo bench -p duff-api --bench latency -- [--lake DIR | --size 1GiB] [--rounds N] \
//!     [--seconds S] [--clients 16] [--mix full,lookups] [--heavy] [--route-budget S] \
//!     [--max-rss-gib G]
//! ```
//!
//! Without `--lake`, a datagen file of `--size` (default 1GiB; seed 1, typical dirt, the same
//! bytes as `duff datagen --size 1GiB --seed 1`) is generated once under `target/bench-data/`
//! and processed once, as `duff run` would, into the Delta lake `target/bench-delta-lake-<size>/`;
//! both are reused while the lake's `runs` table records a succeeded run.
//!
//! The server is the router `duff serve` runs (`EmbeddedBackend::open(lake, 0)`, no API key),
//! served by `axum::serve` on 127.0.0.1:0 on its own multi-threaded runtime; the clients are
//! HTTP/1.1 keep-alive connections (one per client) on a single-threaded runtime.
//!
//! 1. Every data route, one at a time: a warm-up request, then `--rounds` sequential requests
//!    (default 30); each must be a 200 with a non-empty body. Prints p50, p99, max and the
//!    response size.
//! 2. For each `--mix` (default `full`: lookups plus the dashboard's whole-lake aggregates;
//!    `lookups`: one client or one run per request), `--clients` connections (default 16) each
//!    loop over the weighted routes for `--seconds` (default 20), then finish their request in
//!    flight. Prints requests, req/s, p50/p99 over all requests and per route, and errors (must
//!    be 0). The run stops (exit code 3, after printing what it measured) if the process grows
//!    past `--max-rss-gib` (default: 75% of MemAvailable at start): the embedded engine has no
//!    memory limit.
//!
//! `--route-budget S` stops a route's rounds after S seconds once it has 5 samples (the
//! whole-lake aggregates take seconds each on a large lake); the `n` column says how many ran.
//!
//! `--heavy` also times, once, the earlier API's `client_orders` resource (every line of a
//! client, unpaged) for the client with the most sales.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use duff_api::{EmbeddedBackend, router};
use duff_datagen::{Dirt, GenConfig, Size};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

struct Args {
    lake: Option<PathBuf>,
    size: String,
    rounds: usize,
    seconds: f64,
    clients: usize,
    heavy: bool,
    /// Stop a route's sequential rounds after this many seconds once it has 5 samples (0: off).
    route_budget: f64,
    /// Concurrent phases to run, in order (`full`, `lookups`).
    mixes: Vec<String>,
    /// The run stops when the process is larger than this (GiB).
    max_rss_gib: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench -p duff-api --bench latency -- [--lake DIR | --size 1GiB] \
         [--rounds 30] [--seconds 20] [--clients 16] [--mix full,lookups] [--heavy] \
         [--route-budget S] [--max-rss-gib G]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = Args {
        lake: None,
        size: "1GiB".into(),
        rounds: 30,
        seconds: 20.0,
        clients: 16,
        heavy: false,
        route_budget: 0.0,
        mixes: vec!["full".into()],
        max_rss_gib: 0.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            // `cargo bench` passes `--bench` to harness = false targets.
            "--bench" => {}
            "--lake" => args.lake = Some(PathBuf::from(value())),
            "--size" => args.size = value(),
            "--rounds" => args.rounds = value().parse().unwrap_or_else(|_| usage()),
            "--seconds" => args.seconds = non_negative(&value()),
            "--clients" => args.clients = value().parse().unwrap_or_else(|_| usage()),
            "--heavy" => args.heavy = true,
            "--mix" => args.mixes = value().split(',').map(String::from).collect(),
            "--max-rss-gib" => args.max_rss_gib = non_negative(&value()),
            "--route-budget" => args.route_budget = non_negative(&value()),
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown argument {other:?}");
                usage()
            }
        }
    }
    if args.rounds == 0 || args.clients == 0 || args.mixes.iter().any(|m| mix_named(m).is_none()) {
        usage();
    }
    if args.max_rss_gib == 0.0 {
        // Leave a quarter of what is available to everything else on the machine.
        args.max_rss_gib = mem_available_gib() * 0.75;
    }
    args
}

/// A finite number >= 0, or the usage.
fn non_negative(text: &str) -> f64 {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => v,
        _ => usage(),
    }
}

/// Sizes like `1GiB`, `64MB`, `500k` (the units `duff datagen --size` accepts).
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((n * mult) as u64)
}

/// `target/`, honouring `CARGO_TARGET_DIR`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The datagen input of `bytes`, generated once. 1 GiB is `orders-1GiB.csv` (what
/// `duff datagen --size 1GiB --seed 1 --out target/bench-data/orders-1GiB.csv` writes); other
/// sizes use the name `duff-benches` gives its inputs, so both share them.
fn input(bytes: u64) -> PathBuf {
    let dir = target_dir().join("bench-data");
    let name = if bytes == 1 << 30 {
        "orders-1GiB.csv".to_string()
    } else {
        format!("orders-{}MB-seed1.csv", bytes / 1_000_000)
    };
    let path = dir.join(name);
    if !path.exists() {
        std::fs::create_dir_all(&dir).expect("create target/bench-data");
        let cfg = GenConfig {
            seed: 1,
            size: Size::Bytes(bytes),
            dirt: Dirt::typical(),
            ..GenConfig::default()
        };
        eprintln!("generating {} ...", path.display());
        let started = Instant::now();
        let tmp = path.with_extension("tmp");
        duff_datagen::generate_to_path(&cfg, &tmp).expect("generate the input");
        std::fs::rename(&tmp, &path).expect("publish the input");
        let _ = std::fs::rename(
            duff_datagen::sidecar_path(&tmp),
            duff_datagen::sidecar_path(&path),
        );
        eprintln!("  done in {:.1} s", started.elapsed().as_secs_f64());
    }
    path
}

/// Whether the lake's `runs` table records a succeeded run.
fn has_succeeded_run(lake: &Path) -> bool {
    lake.is_dir()
        && duff_delta::DeltaLake::open_local(lake)
            .and_then(|l| l.runs())
            .is_ok_and(|runs| {
                runs.iter()
                    .any(|m| m.status == duff_engine::RunStatus::Succeeded)
            })
}

/// `target/bench-delta-lake-<size>/`, built once from the datagen input.
fn lake_for(size: &str) -> PathBuf {
    let bytes = parse_size(size).unwrap_or_else(|| {
        eprintln!("invalid size {size:?}");
        usage()
    });
    let lake = target_dir().join(format!("bench-delta-lake-{size}"));
    if has_succeeded_run(&lake) {
        // A lake built before marts existed gets them here, as `duff lake fold` would.
        let delta = duff_delta::DeltaLake::open_local(&lake).expect("open the lake");
        delta
            .fold_pending()
            .expect("bring the current state and marts up to date");
        return lake;
    }
    let csv = input(bytes);
    eprintln!(
        "building the lake {} from {} ...",
        lake.display(),
        csv.display()
    );
    let started = Instant::now();
    let delta = duff_delta::DeltaLake::open_local(&lake).expect("open the lake");
    let source = duff_engine::input::LocalInput::open(&csv).expect("open the input");
    let outcome = duff_engine::run(
        &source,
        &delta,
        &duff_engine::RunOptions::default(),
        &|_| {},
    )
    .expect("the run");
    let m = outcome.manifest();
    assert!(
        has_succeeded_run(&lake),
        "the run did not succeed: {:?} {:?}",
        m.status,
        m.error
    );
    eprintln!(
        "  run {} in {:.1} s: {} rows read, {} written",
        m.run_id,
        started.elapsed().as_secs_f64(),
        m.counts.rows_read,
        m.counts.rows_written
    );
    // The datagen sidecar has the exact counts the run must reach.
    let expected = std::fs::read(duff_datagen::sidecar_path(&csv))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    if let Some(e) = expected {
        let same = e["rows"] == m.counts.rows_read && e["kept"] == m.counts.rows_written;
        eprintln!(
            "  {} datagen's expected counts ({} rows, {} kept)",
            if same { "matches" } else { "DOES NOT MATCH" },
            e["rows"],
            e["kept"]
        );
    }
    lake
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Resident and peak resident memory of this process (server and clients), from /proc.
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or("?".into(), |kb| format!("{:.2} GiB", kb / 1024.0 / 1024.0))
    };
    format!("RSS {}, peak RSS {}", field("VmRSS:"), field("VmHWM:"))
}

fn mem_available_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(8.0, |kb| kb / 1024.0 / 1024.0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu}), {mem} RAM")
}

/// The size of a directory tree, in bytes.
fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// One keep-alive HTTP/1.1 connection.
struct Client {
    sender: SendRequest<Body>,
}

struct Answer {
    status: StatusCode,
    body: axum::body::Bytes,
    elapsed: Duration,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                eprintln!("connection error: {e}");
            }
        });
        Client { sender }
    }

    /// GET `path`; the time is from sending the request to the last byte of the body.
    async fn get(&mut self, path: &str) -> Result<Answer, String> {
        let started = Instant::now();
        let work = async {
            self.sender.ready().await.map_err(|e| e.to_string())?;
            let request = Request::get(path)
                .header(header::HOST, "127.0.0.1")
                .body(Body::empty())
                .map_err(|e| e.to_string())?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = axum::body::to_bytes(Body::new(response.into_body()), usize::MAX)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))??;
        Ok(Answer {
            status,
            body,
            elapsed: started.elapsed(),
        })
    }

    /// GET that must answer 200 with a non-empty body.
    async fn get_ok(&mut self, path: &str) -> Answer {
        let answer = self
            .get(path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "GET {path}: {}",
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(500)])
        );
        assert!(!answer.body.is_empty(), "GET {path}: empty body");
        answer
    }

    async fn json(&mut self, path: &str) -> Value {
        let answer = self.get_ok(path).await;
        serde_json::from_slice(&answer.body).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Real values to ask for, found through the API itself.
struct Fixture {
    run_id: String,
    /// The client with the largest sales (the most lines: Zipf-skewed).
    top_client: i64,
    /// The client ranked in the middle by sales: a typical client.
    typical_client: i64,
    /// Clients to draw from in the mix (up to 1000: the smallest ids).
    clients: Vec<i64>,
}

async fn fixture(client: &mut Client) -> Fixture {
    let runs = client.json("/runs?status=succeeded&limit=1").await;
    let run_id = runs["rows"][0]["run_id"]
        .as_str()
        .expect("a succeeded run")
        .to_string();
    let top = client.json("/clients?sort=sales&limit=1").await;
    let top_client = top["rows"][0]["client_id"].as_i64().expect("a client");
    // Client ids are shuffled against their sales rank by datagen, so the 1000 smallest ids
    // are a fair sample; its median by sales is a typical client.
    let page = client
        .json("/clients?sort=client_id&order=asc&limit=1000")
        .await;
    let mut sample: Vec<(f64, i64)> = page["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let sales = r["sales"].as_str().and_then(|s| s.parse().ok());
            (
                sales.unwrap_or(0.0),
                r["client_id"].as_i64().expect("client_id"),
            )
        })
        .collect();
    assert!(!sample.is_empty(), "the lake has no clients");
    let clients: Vec<i64> = sample.iter().map(|s| s.1).collect();
    sample.sort_by(|a, b| a.0.total_cmp(&b.0));
    let typical_client = sample[sample.len() / 2].1;
    Fixture {
        run_id,
        top_client,
        typical_client,
        clients,
    }
}

/// Every data route with realistic parameters: (label, path).
fn routes(f: &Fixture) -> Vec<(String, String)> {
    let (c, top, run) = (f.typical_client, f.top_client, &f.run_id);
    vec![
        ("GET /healthz".into(), "/healthz".into()),
        ("GET /clients".into(), "/clients".into()),
        (
            "GET /clients?sort=client_id".into(),
            "/clients?sort=client_id".into(),
        ),
        (
            "GET /clients/{typical}/orders".into(),
            format!("/clients/{c}/orders"),
        ),
        (
            "GET /clients/{typical}/orders?status=delivered&limit=50".into(),
            format!("/clients/{c}/orders?status=delivered&limit=50"),
        ),
        (
            "GET /clients/{top}/orders".into(),
            format!("/clients/{top}/orders"),
        ),
        ("GET /sales/by-product".into(), "/sales/by-product".into()),
        ("GET /sales/by-status".into(), "/sales/by-status".into()),
        ("GET /sales/by-channel".into(), "/sales/by-channel".into()),
        ("GET /sales/by-day".into(), "/sales/by-day".into()),
        ("GET /runs".into(), "/runs".into()),
        ("GET /runs/{run_id}".into(), format!("/runs/{run}")),
        (
            "GET /runs/{run_id}/quarantine".into(),
            format!("/runs/{run}/quarantine"),
        ),
        (
            "GET /runs/{run_id}/quarantine?reason=key_conflict".into(),
            format!("/runs/{run}/quarantine?reason=key_conflict"),
        ),
        (
            "GET /client-orders?resource=client_orders (typical)".into(),
            format!("/client-orders?resource=client_orders&client_id={c}"),
        ),
        (
            "GET /client-orders?resource=status_summary (typical)".into(),
            format!("/client-orders?resource=status_summary&client_id={c}"),
        ),
        (
            "GET /client-orders?resource=orders_by_client (typical)".into(),
            format!("/client-orders?resource=orders_by_client&client_id={c}"),
        ),
        (
            "GET /client-orders?resource=status_summary (top)".into(),
            format!("/client-orders?resource=status_summary&client_id={top}"),
        ),
        (
            "GET /client-orders?resource=orders_by_client (top)".into(),
            format!("/client-orders?resource=orders_by_client&client_id={top}"),
        ),
    ]
}

/// A route of a concurrent mix: (weight, label, path template). `{c}` is a client drawn
/// uniformly from the sampled clients, `{run}` the run id.
type Mix = &'static [(u32, &'static str, &'static str)];

/// The lookups users and the earlier API's consumers make: one client, one run.
const LOOKUPS: Mix = &[
    (30, "/clients/{c}/orders", "/clients/{c}/orders"),
    (
        5,
        "/client-orders client_orders",
        "/client-orders?resource=client_orders&client_id={c}",
    ),
    (
        5,
        "/client-orders status_summary",
        "/client-orders?resource=status_summary&client_id={c}",
    ),
    (
        5,
        "/client-orders orders_by_client",
        "/client-orders?resource=orders_by_client&client_id={c}",
    ),
    (10, "/runs", "/runs"),
    (10, "/runs/{run}", "/runs/{run}"),
    (10, "/runs/{run}/quarantine", "/runs/{run}/quarantine"),
    (10, "/healthz", "/healthz"),
];

/// The lookups plus what the dashboard loads (the whole-lake aggregates), 15% of requests.
const FULL: Mix = &[
    (30, "/clients/{c}/orders", "/clients/{c}/orders"),
    (
        5,
        "/client-orders client_orders",
        "/client-orders?resource=client_orders&client_id={c}",
    ),
    (
        5,
        "/client-orders status_summary",
        "/client-orders?resource=status_summary&client_id={c}",
    ),
    (
        5,
        "/client-orders orders_by_client",
        "/client-orders?resource=orders_by_client&client_id={c}",
    ),
    (10, "/runs", "/runs"),
    (10, "/runs/{run}", "/runs/{run}"),
    (10, "/runs/{run}/quarantine", "/runs/{run}/quarantine"),
    (10, "/healthz", "/healthz"),
    (3, "/sales/by-product", "/sales/by-product"),
    (3, "/sales/by-status", "/sales/by-status"),
    (3, "/sales/by-channel", "/sales/by-channel"),
    (3, "/sales/by-day", "/sales/by-day"),
    (3, "/clients", "/clients"),
];

fn mix_named(name: &str) -> Option<Mix> {
    match name {
        "full" => Some(FULL),
        "lookups" => Some(LOOKUPS),
        _ => None,
    }
}

/// A small deterministic generator (xorshift64*), one per client.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Sample {
    route: usize,
    elapsed: Duration,
}

/// What the clients of one concurrent phase have done so far (shared with the memory
/// watchdog, which prints it if it stops the run).
#[derive(Default)]
struct Tally {
    samples: Vec<Sample>,
    errors: Vec<String>,
    in_flight: usize,
}

type SharedTally = Arc<Mutex<Tally>>;

async fn load_client(
    addr: SocketAddr,
    mix: Mix,
    seed: u64,
    until: Instant,
    clients: Arc<Vec<i64>>,
    run_id: Arc<String>,
    tally: SharedTally,
) {
    let mut client = Client::connect(addr).await;
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let total: u32 = mix.iter().map(|m| m.0).sum();
    while Instant::now() < until {
        let mut pick = rng.below(u64::from(total)) as u32;
        let route = mix
            .iter()
            .position(|m| {
                if pick < m.0 {
                    true
                } else {
                    pick -= m.0;
                    false
                }
            })
            .expect("a route");
        let c = clients[rng.below(clients.len() as u64) as usize];
        let path = mix[route]
            .2
            .replace("{c}", &c.to_string())
            .replace("{run}", &run_id);
        tally.lock().unwrap().in_flight += 1;
        let started = Instant::now();
        let error = match client.get(&path).await {
            Ok(a) if a.status == StatusCode::OK && !a.body.is_empty() => None,
            Ok(a) => Some(format!(
                "GET {path}: {} {}",
                a.status,
                String::from_utf8_lossy(&a.body[..a.body.len().min(200)])
            )),
            Err(e) => {
                // The connection may be gone: start a new one.
                client = Client::connect(addr).await;
                Some(format!("GET {path}: {e}"))
            }
        };
        let elapsed = started.elapsed();
        let mut t = tally.lock().unwrap();
        t.in_flight -= 1;
        t.samples.push(Sample { route, elapsed });
        t.errors.extend(error);
    }
}

fn print_tally(mix: Mix, tally: &Tally, wall: Duration, seconds: f64) {
    let samples = &tally.samples;
    let mut all: Vec<Duration> = samples.iter().map(|s| s.elapsed).collect();
    all.sort();
    println!(
        "requests: {} completed in {:.1} s (requests started in the {} s window run to the end) \
         = {:.2} req/s",
        samples.len(),
        wall.as_secs_f64(),
        seconds,
        samples.len() as f64 / wall.as_secs_f64().max(1e-9)
    );
    println!(
        "latency over all: p50 {} ms, p99 {} ms, max {} ms",
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 99.0)),
        ms(all.last().copied().unwrap_or_default())
    );
    println!("errors: {}", tally.errors.len());
    for e in tally.errors.iter().take(10) {
        println!("  {e}");
    }
    println!(
        "{:<36} {:>8} {:>9} {:>9} {:>9}",
        "per route under load", "count", "p50 ms", "p99 ms", "max ms"
    );
    for (i, m) in mix.iter().enumerate() {
        let mut t: Vec<Duration> = samples
            .iter()
            .filter(|s| s.route == i)
            .map(|s| s.elapsed)
            .collect();
        t.sort();
        println!(
            "{:<36} {:>8} {:>9} {:>9} {:>9}",
            m.1,
            t.len(),
            ms(percentile(&t, 50.0)),
            ms(percentile(&t, 99.0)),
            ms(t.last().copied().unwrap_or_default())
        );
    }
}

/// Resident memory of this process in GiB.
fn rss_gib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0)
}

/// One concurrent phase. A watchdog thread stops the whole run (exit code 3, after printing
/// what was measured) when the process grows past `max_rss_gib`: the embedded engine has no
/// memory limit, and concurrent whole-lake aggregates can take more than the machine has.
async fn concurrent(
    addr: SocketAddr,
    name: &str,
    mix: Mix,
    args: &Args,
    fixture: &Fixture,
) -> usize {
    println!();
    println!(
        "== concurrent, mix {name:?}: {} clients (one keep-alive connection each), {} s ==",
        args.clients, args.seconds
    );
    let total_weight: u32 = mix.iter().map(|m| m.0).sum();
    println!(
        "mix: {}",
        mix.iter()
            .map(|m| format!("{} {}%", m.1, m.0 * 100 / total_weight))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("load average before: {}; {}", load_average(), memory());
    let tally: SharedTally = Arc::default();
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds);
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (tally, done, limit, seconds) =
            (tally.clone(), done.clone(), args.max_rss_gib, args.seconds);
        std::thread::spawn(move || {
            let mut peak: f64 = 0.0;
            while !done.load(Ordering::Relaxed) {
                let rss = rss_gib();
                peak = peak.max(rss);
                if rss > limit {
                    let t = tally.lock().unwrap();
                    println!(
                        "STOPPED: the process reached {rss:.1} GiB resident (limit {limit:.1} GiB, \
                         --max-rss-gib) after {:.1} s with {} requests in flight; measured so far:",
                        started.elapsed().as_secs_f64(),
                        t.in_flight
                    );
                    print_tally(mix, &t, started.elapsed(), seconds);
                    println!("load average at stop (1/5/15 min): {}", load_average());
                    std::process::exit(3);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        })
    };
    let clients = Arc::new(fixture.clients.clone());
    let run_id = Arc::new(fixture.run_id.clone());
    let tasks: Vec<_> = (0..args.clients)
        .map(|i| {
            tokio::spawn(load_client(
                addr,
                mix,
                i as u64 + 1,
                until,
                clients.clone(),
                run_id.clone(),
                tally.clone(),
            ))
        })
        .collect();
    for t in tasks {
        t.await.expect("client task");
    }
    let wall = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let peak = watchdog.join().expect("watchdog");
    let t = tally.lock().unwrap();
    print_tally(mix, &t, wall, args.seconds);
    println!("peak RSS during the phase (sampled every 50 ms): {peak:.2} GiB");
    println!("load average after (1/5/15 min): {}", load_average());
    t.errors.len()
}

fn main() {
    let args = parse_args();
    println!("duff-api latency bench (embedded engine, HTTP/1.1 keep-alive on loopback)");
    println!("machine: {}", machine());
    println!("load average at start (1/5/15 min): {}", load_average());
    println!(
        "memory limit for the run (--max-rss-gib): {:.1} GiB",
        args.max_rss_gib
    );

    let lake = match &args.lake {
        Some(dir) => {
            assert!(
                has_succeeded_run(dir),
                "{} has no succeeded run in its runs table",
                dir.display()
            );
            dir.clone()
        }
        None => lake_for(&args.size),
    };
    let lake = lake.canonicalize().expect("the lake");
    println!(
        "lake: {} ({:.1} MB on disk)",
        lake.display(),
        tree_bytes(&lake) as f64 / 1e6
    );

    // The server: `duff serve`'s construction, on its own runtime (all cores, like `duff serve`).
    let server = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("server runtime");
    let backend = EmbeddedBackend::open(&lake, 0).expect("open the lake");
    let app = router(backend, None);
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    server.spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    println!("server: http://{addr}/ (router as `duff serve` builds it; threads = cores)");

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    client_rt.block_on(async move {
        let mut client = Client::connect(addr).await;
        let setup = Instant::now();
        let f = fixture(&mut client).await;
        println!(
            "fixture ({:.1} s): run {}, top client {}, typical client {} (median sales of {} sampled)",
            setup.elapsed().as_secs_f64(),
            f.run_id,
            f.top_client,
            f.typical_client,
            f.clients.len()
        );

        println!();
        println!(
            "== sequential: 1 warm-up, then {} requests per route, one connection ==",
            args.rounds
        );
        if args.route_budget > 0.0 {
            println!(
                "(a route stops after {} s once it has 5 samples)",
                args.route_budget
            );
        }
        println!(
            "{:<58} {:>4} {:>9} {:>9} {:>9} {:>12}",
            "route", "n", "p50 ms", "p99 ms", "max ms", "bytes"
        );
        for (label, path) in routes(&f) {
            client.get_ok(&path).await;
            let mut times = Vec::with_capacity(args.rounds);
            let mut bytes = 0;
            let started = Instant::now();
            for _ in 0..args.rounds {
                let a = client.get_ok(&path).await;
                times.push(a.elapsed);
                bytes = a.body.len();
                if args.route_budget > 0.0
                    && times.len() >= 5
                    && started.elapsed().as_secs_f64() > args.route_budget
                {
                    break;
                }
            }
            times.sort();
            println!(
                "{:<58} {:>4} {:>9} {:>9} {:>9} {:>12}",
                label,
                times.len(),
                ms(percentile(&times, 50.0)),
                ms(percentile(&times, 99.0)),
                ms(*times.last().expect("samples")),
                bytes
            );
        }
        if args.heavy {
            let path = format!(
                "/client-orders?resource=client_orders&client_id={}",
                f.top_client
            );
            let a = client.get_ok(&path).await;
            println!(
                "{:<58} {:>4} {:>9} {:>9} {:>9} {:>12}   (no warm-up)",
                "GET /client-orders?resource=client_orders (top)",
                1,
                ms(a.elapsed),
                "-",
                "-",
                a.body.len()
            );
        }

        println!("memory after the sequential phase: {}", memory());

        let mut errors = 0;
        for name in &args.mixes {
            let mix = mix_named(name).expect("checked in parse_args");
            errors += concurrent(addr, name, mix, &args, &f).await;
        }
        println!();
        println!("memory at the end: {}", memory());
        println!("load average at end (1/5/15 min): {}", load_average());
        assert_eq!(errors, 0, "{errors} requests failed");
    });
    server.shutdown_timeout(Duration::from_secs(1));
}
