//! `duff run`: process files into a lake.

use std::process::ExitCode;

use anyhow::Context;
use duff_engine::{Channels, Codec, LocalLake, ParquetOptions, RunOptions, RunOutcome, run_local};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{EngineArgs, RunArgs};
use crate::summary;

impl EngineArgs {
    pub fn to_options(&self) -> anyhow::Result<RunOptions> {
        anyhow::ensure!(self.chunk_kib > 0, "--chunk-kib must be at least 1");
        Ok(RunOptions {
            threads: self.threads,
            chunk_bytes: self.chunk_kib * 1024,
            max_record_bytes: self.max_record_bytes,
            channels: Channels::new(&self.channels)?,
            pa_date: self.pa_date,
            ingested_at: self.ingested_at,
            parquet: ParquetOptions {
                codec: self.codec.parse::<Codec>().map_err(anyhow::Error::msg)?,
                file_bytes: self.file_mib << 20,
                row_group_bytes: self.row_group_mib << 20,
                ..ParquetOptions::default()
            },
            max_bad_fraction: self.max_bad_fraction,
            force: self.force,
        })
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let options = args.engine.to_options()?;
    let lake = LocalLake::open(&args.lake)
        .with_context(|| format!("opening lake {}", args.lake.display()))?;
    let mut outcomes = Vec::new();
    for input in &args.inputs {
        let outcome = run_one(input, &lake, &options, !args.no_progress)
            .with_context(|| format!("processing {}", input.display()))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(outcome.manifest())?);
        }
        outcomes.push(outcome);
    }
    if !args.json {
        summary::print(&outcomes, lake.root());
    }
    let rejected = outcomes.iter().any(|o| matches!(o, RunOutcome::Failed(_)));
    Ok(if rejected {
        ExitCode::from(super::EXIT_INPUT_REJECTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs one input with a progress bar (drawn only when stderr is a terminal).
pub fn run_one(
    input: &std::path::Path,
    lake: &LocalLake,
    options: &RunOptions,
    show_progress: bool,
) -> anyhow::Result<RunOutcome> {
    let bar = if show_progress {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(
        input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let outcome = run_local(input, lake, options, &|p| {
        if let Some(total) = p.bytes_total {
            bar.set_length(total);
        }
        bar.set_position(p.bytes_done);
    });
    bar.finish_and_clear();
    Ok(outcome?)
}
