//! What S3's request latency adds to a run into a Delta lake in S3:
//! `cargo run --release -p duff-benches --bin s3-delta-latency -- <file.csv> [runs] [latency ms]`.
//!
//! Starts the S3-protocol test server on loopback with every request answered `latency ms` late
//! (default 20: S3's small requests take tens of milliseconds), uploads the file, then `runs`
//! times (default 5): opens a fresh Delta lake in the server (every table created), runs the
//! engine on the object into it, and runs it again on the same object under another key into
//! the lake that now holds a run. Prints each step's median wall time and the requests of the
//! last run by operation. On a small file these are almost all the run's time: its requests one
//! after another, which is what a Lambda run of a small upload costs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, bail};
use duff_delta::DeltaLake;
use duff_engine::{RunOptions, RunOutcome};
use duff_s3::test_server::S3Server;
use duff_s3::{S3Lake, S3Source, S3Url, TransferSettings};

#[global_allocator]
static GLOBAL: duff_alloc::Allocator = duff_alloc::Allocator;

fn main() -> anyhow::Result<()> {
    duff_alloc::tune();
    duff_benches::log_to_stderr_if_asked();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let input = args
        .first()
        .context("usage: s3-delta-latency <file.csv> [runs] [latency ms]")?;
    let runs: usize = args.get(1).map_or(Ok(5), |r| r.parse())?;
    let latency_ms: u64 = args.get(2).map_or(Ok(20), |l| l.parse())?;
    anyhow::ensure!(runs > 0, "runs: at least one");
    let server = S3Server::start(&["inbox", "lake"]);
    server.put_file("inbox", "bench/first.csv", Path::new(input));
    server.put_file("inbox", "bench/second.csv", Path::new(input));
    server
        .faults
        .latency_ms
        .store(latency_ms, Ordering::Relaxed);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let settings = TransferSettings::default();
    let endpoint = server.endpoint();
    let client = runtime.block_on(duff_s3::client(&settings, &endpoint));
    let options = RunOptions::default();
    let run = |lake: &DeltaLake<S3Lake>, key: &str| -> anyhow::Result<f64> {
        let url = S3Url {
            bucket: "inbox".into(),
            key: key.into(),
        };
        let source =
            runtime.block_on(S3Source::head(client.clone(), settings.clone(), url, None))?;
        let started = Instant::now();
        let outcome = duff_engine::run(&source, lake, &options, &|_| {})?;
        let RunOutcome::Succeeded(_) = outcome else {
            bail!("the run of {key} did not succeed: {outcome:?}")
        };
        Ok(started.elapsed().as_secs_f64())
    };

    let (mut opens, mut firsts, mut seconds) = (Vec::new(), Vec::new(), Vec::new());
    let mut requests = BTreeMap::new();
    for i in 0..runs {
        let root = S3Url {
            bucket: "lake".into(),
            key: format!("round-{i}/"),
        };
        let started = Instant::now();
        let lake = {
            let _entered = runtime.enter();
            let files = S3Lake::new(client.clone(), settings.clone(), root.clone())?;
            let store = duff_s3::object_store(&settings, &endpoint, "lake")?;
            DeltaLake::open_in_store(files, root.directory_url()?, store)?
        };
        opens.push(started.elapsed().as_secs_f64());
        firsts.push(run(&lake, "bench/first.csv")?);
        let before = server.counts();
        seconds.push(run(&lake, "bench/second.csv")?);
        requests = server.counts();
        for (op, n) in before {
            *requests.entry(op).or_default() -= n;
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("{runs} rounds, every request {latency_ms} ms late, medians:");
    println!("| step | wall s |");
    println!("|---|---:|");
    println!("| open a fresh lake | {:.3} |", median(&mut opens));
    println!("| first run into it | {:.3} |", median(&mut firsts));
    println!(
        "| a run into a lake that holds one | {:.3} |",
        median(&mut seconds)
    );
    let total: u64 = requests.values().sum();
    println!("requests of the last run ({total}): {requests:?}");
    Ok(())
}
