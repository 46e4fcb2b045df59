//! One run: an input file processed into the lake, exactly once.
//!
//! [`run`] reads as the pipeline it is: find the run's identity and whether it is done
//! already, read the input window by window (`read`, `pipeline`), then publish and commit the
//! manifest (`record`), or commit a `failed` one when the input itself is at fault.

mod context;
mod observe;
mod options;
mod outcome;
mod pipeline;
mod read;
mod record;

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};

pub use options::RunOptions;
pub use outcome::{Progress, RunOutcome};
pub use record::peak_rss_bytes;

use crate::error::Error;
use crate::lake::LocalLake;
use crate::lake::input::{LocalInput, run_id_for};
use crate::lake::manifest::{Manifest, SourceInfo};
use crate::lake::storage::{Commit, Lake, Source, Stage};
use context::{Processed, RunContext};
use observe::Observing;
use record::{Identity, Record};

/// Processes a local file into a local lake: [`run`] over [`LocalInput`] and [`LocalLake`].
pub fn run_local(
    input: &Path,
    lake: &LocalLake,
    options: &RunOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunOutcome, Error> {
    run(&LocalInput::open(input)?, lake, options, progress)
}

/// Processes one input into a lake, exactly once. File-level problems give
/// `Ok(RunOutcome::Failed)` (a `failed` manifest is committed); `Err` means the environment
/// failed (storage, I/O, configuration): see [`Error::is_retryable`].
pub fn run(
    input: &dyn Source,
    lake: &dyn Lake,
    options: &RunOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunOutcome, Error> {
    run_or_give_up(input, lake, options, progress, None)
}

/// Commits the input's run as `failed` (`gave_up`) without reading it: `attempts` earlier
/// attempts ended without a result (each killed by memory, a timeout or a crash), so another
/// would too, and the input would be retried forever. A run already committed is skipped.
pub fn give_up(
    input: &dyn Source,
    lake: &dyn Lake,
    options: &RunOptions,
    attempts: u32,
) -> Result<RunOutcome, Error> {
    run_or_give_up(input, lake, options, &|_| {}, Some(attempts))
}

fn run_or_give_up(
    input: &dyn Source,
    lake: &dyn Lake,
    options: &RunOptions,
    progress: &(dyn Fn(Progress) + Sync),
    give_up_after: Option<u32>,
) -> Result<RunOutcome, Error> {
    options.validate()?;
    let started_at = Utc::now();
    let clock = Instant::now();
    let source = input.info();
    let run_id = run_id_for(&source);
    if !options.force
        && let Some(existing) = lake.read_manifest(&run_id)?
    {
        tracing::info!(run_id, status = ?existing.status, "run already committed; skipping");
        lake.settle()?;
        return Ok(RunOutcome::Skipped(existing));
    }
    let uploaded = input.modified();
    let pa_date = pa_date_of_run(lake, &run_id, options.pa_date, uploaded)?;
    let ingested_at = options.ingested_at.unwrap_or(uploaded);
    let context = RunContext::new(lake, options, &source, &run_id, pa_date, ingested_at)?;
    let stage = context.stage.clone();
    let processed = match give_up_after {
        // Nothing to read: no threads either.
        Some(attempts) => Err(Error::GaveUp { attempts }),
        None => read_in_pool(&context, input, &source, progress),
    };
    let id = Identity {
        run_id: &run_id,
        source: &source,
        pa_date,
        ingested_at,
        started_at,
        threads: context.threads,
    };
    let mut record = Record::begin(id, options, clock);
    match processed.and_then(|p| fail_on_bad_rows(options, p, &mut record)) {
        Ok(mut p) => {
            let publish = Instant::now();
            // The observer finishes while the files are published and committed; the settle
            // (a Delta lake's fold) uses what it leaves.
            let observing = p.observing.take();
            publish_files(stage.as_ref(), &p)?;
            let manifest = record.succeeded(p, publish.elapsed());
            commit(
                lake,
                manifest,
                options.force,
                observing,
                RunOutcome::Succeeded,
            )
        }
        Err(e) if e.is_file_level() => {
            stage.abort();
            tracing::warn!(run_id, error = %e, "run failed on a file-level error");
            commit(
                lake,
                record.failed(&e),
                options.force,
                None,
                RunOutcome::Failed,
            )
        }
        Err(e) => {
            // A writer's storage failure explains a generic encoder error better.
            let e = stage.take_failure().unwrap_or(e);
            stage.abort();
            Err(e)
        }
    }
}

/// Reads the input on a pool of the run's threads.
fn read_in_pool(
    context: &RunContext<'_>,
    input: &dyn Source,
    source: &SourceInfo,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Processed, Error> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(context.threads)
        .thread_name(|i| format!("duff-parse-{i}"))
        .build()
        .map_err(|e| Error::Config(format!("thread pool: {e}")))?;
    pool.install(|| read::process(context, input, source, progress))
    // The pool ends here: its threads hold in their allocator heaps what the run freed (the
    // dedup tables among it), and ending them lets the commit and the lake's fold reuse that
    // memory.
}

/// A file whose share of bad rows is too high fails as a whole (its counts are recorded).
fn fail_on_bad_rows(
    options: &RunOptions,
    p: Processed,
    record: &mut Record,
) -> Result<Processed, Error> {
    let (quarantined, read) = (p.counts.quarantined, p.counts.rows_read);
    if options.rejects(&p.counts) {
        record.count(&p.counts);
        return Err(Error::TooManyBadRows {
            quarantined,
            read,
            max_fraction: options.max_bad_fraction,
            min_rows: options.min_bad_rows,
        });
    }
    Ok(p)
}

/// Makes the run's files visible under their final names.
fn publish_files(stage: &dyn Stage, p: &Processed) -> Result<(), Error> {
    crate::failpoint::hit("before_publish");
    if let Err(e) = stage.publish(&p.outputs) {
        stage.abort();
        return Err(stage.take_failure().unwrap_or(e));
    }
    Ok(())
}

/// The run's partition date, derived once per input: the date an earlier attempt already
/// committed with, else the caller's, else the input's upload (modification) date, UTC.
fn pa_date_of_run(
    lake: &dyn Lake,
    run_id: &str,
    requested: Option<NaiveDate>,
    uploaded: DateTime<Utc>,
) -> Result<NaiveDate, Error> {
    let derived = requested.unwrap_or_else(|| uploaded.date_naive());
    match lake.committed_pa_date(run_id)? {
        Some(committed) if committed != derived => {
            tracing::warn!(
                run_id,
                %committed,
                requested = %derived,
                "an earlier attempt committed this run with another pa_date; keeping it"
            );
            Ok(committed)
        }
        Some(committed) => Ok(committed),
        None => Ok(derived),
    }
}

/// Commits the manifest, waits for the lake's observer (it finished beside the commit), then
/// settles the lake, which uses what the observer left; when a concurrent attempt of the same
/// run committed first, this attempt reports the other's manifest as skipped (its files are
/// byte-identical).
fn commit(
    lake: &dyn Lake,
    manifest: Manifest,
    overwrite: bool,
    observing: Option<Observing>,
    outcome: fn(Manifest) -> RunOutcome,
) -> Result<RunOutcome, Error> {
    let commit = lake.commit(&manifest, overwrite);
    if let Some(observing) = observing {
        observing.finish();
    }
    let commit = commit?;
    lake.settle()?;
    match commit {
        Commit::Written => {
            tracing::info!(
                run_id = manifest.run_id,
                status = ?manifest.status,
                rows = manifest.counts.rows_read,
                "run committed"
            );
            Ok(outcome(manifest))
        }
        Commit::AlreadyCommitted(existing) => {
            tracing::info!(
                run_id = manifest.run_id,
                "a concurrent attempt of this run committed first"
            );
            Ok(RunOutcome::Skipped(*existing))
        }
    }
}
