//! `duff dispatch` and `duff backfill`: the dispatcher Lambda's handler, run here on one event
//! (or one backfill request) against S3, so events can be tried without deploying anything.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use duff_dispatcher::{BatchTarget, Config, Report, Setup};
use duff_s3::Location;
use serde_json::{Value, json};

use super::job::{EXIT_REJECTED, EXIT_RETRYABLE};
use crate::cli::{BackfillArgs, DispatchArgs, DispatcherArgs};

pub fn dispatch(args: DispatchArgs) -> anyhow::Result<ExitCode> {
    let text = if args.event.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(&args.event)
            .with_context(|| format!("reading {}", args.event.display()))?
    };
    let payload: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.event.display()))?;
    run(&args.dispatcher, &payload)
}

pub fn backfill(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let payload = json!({
        "bucket": args.bucket,
        "prefix": args.prefix,
        "from": args.from,
        "to": args.to,
        "dry_run": args.dispatcher.dry_run,
        "page_size": args.page_size,
        "lookback_days": args.lookback_days,
        "dated_keys": args.dated_keys,
    });
    run(&args.dispatcher, &payload)
}

fn run(args: &DispatcherArgs, payload: &Value) -> anyhow::Result<ExitCode> {
    let batch = match (&args.batch_queue, &args.batch_job_definition) {
        (Some(queue), Some(definition)) => Some(BatchTarget {
            queue: queue.clone(),
            definition: definition.clone(),
            job_size: Default::default(),
        }),
        _ => None,
    };
    let config = Config {
        lake: Location::parse(&args.lake)?,
        inbox_prefix: args.inbox_prefix.clone(),
        threshold_bytes: args.threshold_bytes,
        batch,
        dry_run: args.dry_run,
    };
    let setup = Setup {
        settings: args.s3.settings()?,
        ..Setup::default()
    };
    // I/O only: the engine parses on its own threads (spawn_blocking + rayon).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("duff-io")
        .enable_all()
        .build()?;
    let report: Report = runtime.block_on(async {
        let dispatcher = duff_dispatcher::connect(config, &setup).await?;
        dispatcher.handle(payload, None).await
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::from(if report.retryable_failures() > 0 {
        EXIT_RETRYABLE
    } else if report.count("failed") > 0 {
        EXIT_REJECTED
    } else {
        0
    }))
}
