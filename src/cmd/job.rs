//! `duff job`: the AWS Batch container's entry point. One S3 object in, the lake out, and an
//! exit code the job definition's retry strategy can act on.

use std::process::ExitCode;

use duff_engine::manifest::CostBasis;
use duff_engine::{Error, Lake, RunOutcome};
use duff_s3::{Location, S3Url};

use super::aws::Aws;
use crate::cli::JobArgs;

/// Input rejected: a `failed` manifest was committed; retrying cannot help.
pub const EXIT_REJECTED: u8 = super::EXIT_INPUT_REJECTED;
/// Missing object, access denied, object replaced, bad arguments: retrying cannot help.
pub const EXIT_PERMANENT: u8 = 3;
/// Throttling, 5xx, network, disk: the job definition retries this code (EX_TEMPFAIL).
pub const EXIT_RETRYABLE: u8 = 75;

pub fn job(args: JobArgs) -> anyhow::Result<ExitCode> {
    let uri = format!("s3://{}/{}", args.bucket, args.key);
    let code = match process(&args) {
        Ok(outcome) => {
            let m = outcome.manifest();
            let (status, code) = match &outcome {
                RunOutcome::Succeeded(_) => ("succeeded", 0),
                RunOutcome::Skipped(_) => ("skipped", 0),
                RunOutcome::Failed(_) => ("rejected", EXIT_REJECTED),
            };
            tracing::info!(
                uri,
                run_id = m.run_id,
                status,
                rows_read = m.counts.rows_read,
                rows_written = m.counts.rows_written,
                quarantined = m.counts.quarantined,
                error = m.error.as_deref().unwrap_or(""),
                seconds = m.timings.total_ms / 1e3,
                vcpu_seconds = m.cost.as_ref().map_or(0.0, |c| c.vcpu_seconds),
                gb_seconds = m.cost.as_ref().map_or(0.0, |c| c.gb_seconds),
                exit_code = code,
                "job finished"
            );
            code
        }
        Err(e) => {
            let code = if e.is_retryable() {
                EXIT_RETRYABLE
            } else {
                EXIT_PERMANENT
            };
            tracing::error!(uri, error = %e, error_code = e.code(), retryable = e.is_retryable(), exit_code = code, "job failed");
            eprintln!("error: {e}");
            code
        }
    };
    Ok(ExitCode::from(code))
}

fn process(args: &JobArgs) -> Result<RunOutcome, Error> {
    let mut options = args
        .engine
        .to_options()
        .map_err(|e| Error::Config(format!("{e:#}")))?;
    options.cost_basis = Some(cost_basis(args));
    let lake_location = Location::parse(&args.lake)?;
    let aws = Aws::connect(&args.s3).map_err(|e| Error::Config(format!("{e:#}")))?;
    let lake: Box<dyn Lake> = match lake_location {
        Location::Local(path) => Box::new(duff_delta::DeltaLake::open_local(path)?),
        Location::S3(url) => Box::new(aws.lake(url)?),
    };
    let url = S3Url {
        bucket: args.bucket.clone(),
        key: args.key.clone(),
    };
    let etag = Some(args.etag.as_str()).filter(|e| !e.is_empty());
    let source = aws.source(url, etag)?;
    let last_logged = std::sync::Mutex::new(std::time::Instant::now());
    duff_engine::run(&source, lake.as_ref(), &options, &|p| {
        // A progress line every 10 s: Batch jobs have no terminal.
        let mut last = last_logged.lock().expect("progress lock");
        if last.elapsed().as_secs() >= 10 {
            *last = std::time::Instant::now();
            tracing::info!(bytes_done = p.bytes_done, bytes_total = ?p.bytes_total, rows_read = p.rows_read, "progress");
        }
    })
}

/// What the job was given: arguments, else the container's cgroup limits, else the host.
fn cost_basis(args: &JobArgs) -> CostBasis {
    let cgroup_cpus = read_trimmed("/sys/fs/cgroup/cpu.max").and_then(|s| {
        let (quota, period) = s.split_once(' ')?;
        Some(quota.parse::<f64>().ok()? / period.parse::<f64>().ok()?)
    });
    let cgroup_memory = read_trimmed("/sys/fs/cgroup/memory.max")
        .and_then(|s| s.parse::<f64>().ok())
        .map(|b| b / (1u64 << 30) as f64);
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let host_memory = read_trimmed("/proc/meminfo").and_then(|s| {
        let kb: f64 = s
            .lines()
            .find(|l| l.starts_with("MemTotal:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / (1u64 << 20) as f64)
    });
    let (vcpus, cpu_source) = match (args.vcpus, cgroup_cpus) {
        (Some(v), _) => (v, "arguments"),
        (None, Some(v)) => (v, "cgroup"),
        (None, None) => (host_cpus, "host"),
    };
    let (memory_gib, memory_source) = match (args.memory_mib, cgroup_memory, host_memory) {
        (Some(m), _, _) => (m / 1024.0, "arguments"),
        (None, Some(m), _) => (m, "cgroup"),
        (None, None, Some(m)) => (m, "host"),
        (None, None, None) => (0.0, "unknown"),
    };
    CostBasis {
        vcpus,
        memory_gib,
        source: format!("vcpus: {cpu_source}, memory: {memory_source}"),
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}
