//! `duff run`: process files into a lake.

use std::process::ExitCode;

use anyhow::Context;
use duff_engine::{Channels, Codec, Encoder, Lake, ParquetOptions, RunOptions, RunOutcome, Source};
use duff_s3::Location;
use indicatif::{ProgressBar, ProgressStyle};

use super::aws::{connect_if_needed, open_lake, open_source};
use crate::cli::{EngineArgs, RunArgs};
use crate::summary;

impl EngineArgs {
    pub fn to_options(&self) -> anyhow::Result<RunOptions> {
        anyhow::ensure!(self.chunk_kib > 0, "--chunk-kib must be at least 1");
        anyhow::ensure!(
            self.row_group_rows > 0,
            "--row-group-rows must be at least 1"
        );
        anyhow::ensure!(self.row_group_mib > 0, "--row-group-mib must be at least 1");
        Ok(RunOptions {
            threads: self.threads,
            chunk_bytes: self.chunk_kib * 1024,
            max_record_bytes: self.max_record_bytes,
            channels: Channels::new(&self.channels)?,
            pa_date: self.pa_date.and_then(|d| d.0),
            ingested_at: self.ingested_at,
            parquet: ParquetOptions {
                codec: self.codec.parse::<Codec>().map_err(anyhow::Error::msg)?,
                encoder: self
                    .parquet_encoder
                    .parse::<Encoder>()
                    .map_err(anyhow::Error::msg)?,
                file_bytes: self.file_mib << 20,
                row_group_rows: self.row_group_rows,
                row_group_bytes: self.row_group_mib << 20,
                ..ParquetOptions::default()
            },
            max_bad_fraction: self.max_bad_fraction,
            min_bad_rows: self.min_bad_rows,
            max_gzip_ratio: self.max_gzip_ratio,
            gzip_allowance_bytes: RunOptions::default().gzip_allowance_bytes,
            force: self.force,
            cost_basis: None,
            stop_at: None,
        })
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let options = args.engine.to_options()?;
    let lake_location = Location::parse(&args.lake)?;
    let inputs = args
        .inputs
        .iter()
        .map(|i| Location::parse(i))
        .collect::<Result<Vec<_>, _>>()?;
    let aws = connect_if_needed(&args.s3, inputs.iter().chain([&lake_location]))?;
    let lake = open_lake(&lake_location, aws.as_ref())
        .with_context(|| format!("opening lake {lake_location}"))?;
    let mut outcomes = Vec::new();
    for input in &inputs {
        let outcome = open_source(input, aws.as_ref(), None)
            .map_err(anyhow::Error::from)
            .and_then(|source| run_one(source.as_ref(), lake.as_ref(), &options, !args.no_progress))
            .with_context(|| format!("processing {input}"))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(outcome.manifest())?);
        }
        outcomes.push(outcome);
    }
    if !args.json {
        summary::print(&outcomes, &args.lake);
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
    source: &dyn Source,
    lake: &dyn Lake,
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
    let uri = source.info().uri;
    bar.set_message(uri.rsplit('/').next().unwrap_or(&uri).to_string());
    let outcome = duff_engine::run(source, lake, options, &|p| {
        if let Some(total) = p.bytes_total {
            bar.set_length(total);
        }
        bar.set_position(p.bytes_done);
    });
    bar.finish_and_clear();
    Ok(outcome?)
}
