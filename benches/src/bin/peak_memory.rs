//! Peak memory of one run:
//! `cargo run --release -p duff-benches --bin peak-memory -- <MB | file.csv> [threads] [chunk KiB] [files|delta] [redeliveries]`.
//! Generates (once) a datagen file of about <MB> megabytes (or takes the given file), processes
//! it into a fresh lake with `threads` (default 0: one per core) and parse ranges of `chunk KiB`
//! (default: `duff run`'s, 4096), and prints wall time, throughput, the dedup tables' size, the process's
//! peak RSS (VmHWM) and the manifest's per-stage timings. The lake is `files` (default: the
//! engine's own commit, a manifest) or `delta` (Delta tables, as `duff run` writes a local lake:
//! the difference is what committing to Delta and folding into the current state cost). With
//! `redeliveries` N > 0 (delta only), the same content is then uploaded again N times, as new
//! objects with later upload times: every key is re-delivered, the worst case of the fold.

use std::time::Instant;

use anyhow::Context;
use duff_engine::input::LocalInput;
use duff_engine::{Lake, LocalLake, RunOptions, RunOutcome, Source, peak_rss_bytes};

#[global_allocator]
static GLOBAL: duff_alloc::Allocator = duff_alloc::Allocator;

fn main() -> anyhow::Result<()> {
    duff_alloc::tune();
    duff_benches::log_to_stderr_if_asked();
    let mut args = std::env::args().skip(1);
    let what = args
        .next()
        .context("usage: peak-memory <MB | file.csv> [threads] [chunk KiB]")?;
    let threads: usize = args.next().map(|t| t.parse()).transpose()?.unwrap_or(0);
    let defaults = RunOptions::default();
    let chunk_bytes = match args.next() {
        Some(kib) => kib.parse::<usize>().context("chunk KiB")? << 10,
        None => defaults.chunk_bytes,
    };
    let delta = match args.next().as_deref() {
        None | Some("files") => false,
        Some("delta") => true,
        Some(other) => anyhow::bail!("lake kind {other:?}: expected files or delta"),
    };
    let redeliveries: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(0);
    anyhow::ensure!(delta || redeliveries == 0, "redeliveries need a delta lake");
    let path = match what.parse::<u64>() {
        Ok(mb) => duff_benches::input(mb * 1_000_000),
        Err(_) => what.into(),
    };
    let dir = tempfile::tempdir()?;
    let lake: Box<dyn Lake> = if delta {
        Box::new(duff_delta::DeltaLake::open_local(dir.path())?)
    } else {
        Box::new(LocalLake::open(dir.path())?)
    };
    let options = RunOptions {
        threads,
        chunk_bytes,
        ..defaults
    };
    for round in 0..=redeliveries {
        // A re-delivery is the same bytes as a new object, uploaded an hour later.
        let input = if round == 0 {
            path.clone()
        } else {
            let copy = dir.path().join(format!("redelivery-{round}.csv"));
            if std::fs::hard_link(&path, &copy).is_err() {
                std::fs::copy(&path, &copy)?;
            }
            copy
        };
        let source = LocalInput::open(&input)?;
        let options = RunOptions {
            ingested_at: Some(source.modified() + chrono::Duration::hours(round as i64)),
            ..options.clone()
        };
        let started = Instant::now();
        let outcome = duff_engine::run(&source, lake.as_ref(), &options, &|_| {})?;
        let secs = started.elapsed().as_secs_f64();
        let RunOutcome::Succeeded(m) = outcome else {
            anyhow::bail!("run did not succeed: {outcome:?}")
        };
        report(delta, round, &m, secs)?;
    }
    Ok(())
}

fn report(delta: bool, round: usize, m: &duff_engine::Manifest, secs: f64) -> anyhow::Result<()> {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let what = match (delta, round) {
        (false, _) => "files lake".to_string(),
        (true, 0) => "delta lake".to_string(),
        (true, n) => format!("delta lake, re-delivery {n}"),
    };
    println!(
        "{what}, input {:.0} MB, {} rows, threads {}: {:.2} s, {:.0} MB/s, {:.2} M rows/s, dedup tables {:.0} MiB, peak RSS {:.0} MiB",
        m.input_bytes as f64 / 1e6,
        m.counts.rows_read,
        m.threads,
        secs,
        m.input_bytes as f64 / 1e6 / secs,
        m.counts.rows_read as f64 / 1e6 / secs,
        mib(m.dedup_heap_bytes),
        mib(peak_rss_bytes().unwrap_or(0)),
    );
    println!("timings {}", serde_json::to_string(&m.timings)?);
    Ok(())
}
