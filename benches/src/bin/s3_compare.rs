//! `duff run` from a loopback S3 server vs from the local file, side by side:
//! `cargo run --release -p duff-benches --bin s3-compare -- <file.csv> [runs] [threads]`.
//!
//! Starts the S3-protocol test server (s3s-fs on loopback, in this process), uploads the file,
//! then alternates local and S3 runs, each in a child process of its own (so peak RSS is the
//! engine's alone), S3 runs writing their lake back to the server. Prints medians, the ratio and
//! the requests each S3 run made, by operation.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use duff_engine::{LocalLake, RunOptions, RunOutcome, peak_rss_bytes, run_local};
use duff_s3::test_server::S3Server;
use duff_s3::{Endpoint, S3Lake, S3Source, S3Url, TransferSettings};

#[global_allocator]
static GLOBAL: duff_alloc::Allocator = duff_alloc::Allocator;

fn main() -> anyhow::Result<()> {
    duff_alloc::tune();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--child") {
        return child(&args[1..]);
    }
    let input = args
        .first()
        .context("usage: s3-compare <file.csv> [runs] [threads]")?;
    let runs: usize = args.get(1).map_or(Ok(3), |r| r.parse())?;
    let threads = args.get(2).cloned().unwrap_or_else(|| "0".into());
    let server = S3Server::start(&["inbox", "lake"]);
    server.put_file("inbox", "bench/input.csv", Path::new(input));
    let me = std::env::current_exe()?;
    let mut local = Vec::new();
    let mut remote = Vec::new();
    let mut requests = BTreeMap::new();
    for i in 0..runs {
        let dir = tempfile::tempdir()?;
        let lake = dir.path().to_string_lossy().to_string();
        local.push(measure(&me, &["local", input, &lake, &threads])?);
        let before = server.counts();
        let prefix = format!("s3://lake/run-{i}/");
        remote.push(measure(&me, &["s3", &server.endpoint, &prefix, &threads])?);
        requests = server.counts();
        for (op, n) in before {
            *requests.entry(op).or_default() -= n;
        }
    }
    let median = |v: &mut Vec<Figures>, f: fn(&Figures) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    println!("{runs} alternating runs each, medians:");
    println!("| input | wall s | MB/s | M rows/s | peak RSS MiB |");
    println!("|---|---|---|---|---|");
    for (name, v) in [("local file", &mut local), ("loopback S3", &mut remote)] {
        println!(
            "| {name} | {:.2} | {:.0} | {:.2} | {:.0} |",
            median(v, |f| f.seconds),
            median(v, |f| f.mb_per_s),
            median(v, |f| f.rows_per_s / 1e6),
            median(v, |f| f.peak_rss_mib),
        );
    }
    println!(
        "S3 / local wall-time ratio: {:.2}",
        median(&mut remote, |f| f.seconds) / median(&mut local, |f| f.seconds)
    );
    println!("requests of the last S3 run: {requests:?}");
    Ok(())
}

struct Figures {
    seconds: f64,
    mb_per_s: f64,
    rows_per_s: f64,
    peak_rss_mib: f64,
}

fn measure(me: &Path, args: &[&str]) -> anyhow::Result<Figures> {
    let out = Command::new(me).arg("--child").args(args).output()?;
    if !out.status.success() {
        bail!(
            "child {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Vec<f64> = String::from_utf8(out.stdout)?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    Ok(Figures {
        seconds: v[0],
        mb_per_s: v[1],
        rows_per_s: v[2],
        peak_rss_mib: v[3],
    })
}

/// One measured run; prints `seconds MB/s rows/s peak-RSS-MiB`.
fn child(args: &[String]) -> anyhow::Result<()> {
    let threads: usize = args[3].parse()?;
    let options = RunOptions {
        threads,
        ..RunOptions::default()
    };
    let started = std::time::Instant::now();
    let outcome = match args[0].as_str() {
        "local" => run_local(
            Path::new(&args[1]),
            &LocalLake::open(&args[2])?,
            &options,
            &|_| {},
        )?,
        "s3" => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let settings = TransferSettings::default();
            let endpoint = Endpoint {
                url: Some(args[1].clone()),
                region: Some(duff_s3::test_server::REGION.into()),
                credentials: Some((
                    duff_s3::test_server::ACCESS_KEY.into(),
                    duff_s3::test_server::SECRET_KEY.into(),
                )),
            };
            let (source, lake) = runtime.block_on(async {
                let client = duff_s3::client(&settings, &endpoint).await;
                let url = S3Url::parse("s3://inbox/bench/input.csv").expect("s3 url")?;
                let source = S3Source::head(client.clone(), settings.clone(), url, None).await?;
                let root = S3Url::parse(&args[2]).expect("s3 url")?;
                Ok::<_, duff_engine::Error>((source, S3Lake::new(client, settings, root)?))
            })?;
            duff_engine::run(&source, &lake, &options, &|_| {})?
        }
        other => bail!("unknown mode {other}"),
    };
    let seconds = started.elapsed().as_secs_f64();
    let RunOutcome::Succeeded(m) = outcome else {
        bail!("the run did not succeed: {outcome:?}")
    };
    println!(
        "{seconds} {} {} {}",
        m.input_bytes as f64 / 1e6 / seconds,
        m.counts.rows_read as f64 / seconds,
        peak_rss_bytes().unwrap_or(0) as f64 / (1 << 20) as f64
    );
    Ok(())
}
