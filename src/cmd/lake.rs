//! `duff lake check|convert|fold|optimize|vacuum`: maintenance of a lake of Delta tables, local or in S3.

use std::process::ExitCode;
use std::time::Duration;

use duff_delta::DeltaLake;
use duff_delta::maintenance::Vacuumed;
use duff_s3::Location;

use super::aws::{AnyDeltaLake, Aws, open_delta_lake};
use crate::cli::{LakeArgs, LakeCommand};

/// Exit status of `duff lake check` when it found problems.
const EXIT_PROBLEMS: u8 = 2;

pub fn lake(args: LakeArgs) -> anyhow::Result<ExitCode> {
    let text = match &args.command {
        LakeCommand::Check(a) => &a.lake,
        LakeCommand::Convert(a) | LakeCommand::Fold(a) => &a.lake,
        LakeCommand::Optimize(a) => &a.lake,
        LakeCommand::Vacuum(a) => &a.lake,
    };
    let location = Location::parse(text)?;
    let aws = match &location {
        Location::S3(_) => Some(Aws::connect(&args.s3)?),
        Location::Local(_) => None,
    };
    // Maintenance never creates a lake: a mistyped path must not become an empty one.
    let exists = match (&location, &aws) {
        (Location::Local(dir), _) => dir.is_dir(),
        (Location::S3(url), Some(aws)) => aws.holds_a_lake(url)?,
        (Location::S3(_), None) => unreachable!("connected above"),
    };
    anyhow::ensure!(
        exists,
        "no lake at {location}: create one with `duff run <file.csv> --lake {location}`"
    );
    if let LakeCommand::Convert(_) = args.command {
        let Location::Local(dir) = &location else {
            anyhow::bail!(
                "{location}: `duff lake convert` converts a local lake; copy an S3 lake down, \
                 convert it, and copy it back"
            );
        };
        let (_, runs) = DeltaLake::convert_legacy(dir)?;
        println!("{location}: {runs} run(s) converted to Delta tables");
        return Ok(ExitCode::SUCCESS);
    }
    let lake = open_delta_lake(&location, aws.as_ref())?;
    // Abandoned staging directories exist on disk only; in S3 an abandoned multipart upload
    // is removed by the bucket's lifecycle rule.
    let staging = |lake: &DeltaLake<duff_engine::LocalLake>, retention, dry_run| {
        lake.vacuum_staging(retention, dry_run)
    };
    match lake {
        AnyDeltaLake::Local(lake) => maintain(&lake, &location, args.command, |r, d| {
            staging(&lake, r, d).map(Some)
        }),
        AnyDeltaLake::S3(lake) => maintain(&lake, &location, args.command, |_, _| Ok(None)),
    }
}

fn maintain<L: duff_engine::Lake>(
    lake: &DeltaLake<L>,
    location: &Location,
    command: LakeCommand,
    vacuum_staging: impl Fn(Duration, bool) -> Result<Option<Vec<String>>, duff_delta::Error>,
) -> anyhow::Result<ExitCode> {
    match command {
        LakeCommand::Check(a) => {
            let problems = lake.check_within(a.window_rows)?;
            if problems.is_empty() {
                let runs = lake.runs()?.len();
                println!("{location}: healthy ({runs} runs)");
                return Ok(ExitCode::SUCCESS);
            }
            for p in &problems {
                println!("{p}");
            }
            eprintln!("{location}: {} problem(s)", problems.len());
            Ok(ExitCode::from(EXIT_PROBLEMS))
        }
        LakeCommand::Convert(_) => unreachable!("converted before opening"),
        LakeCommand::Fold(_) => {
            let folded = lake.fold_pending()?;
            for run in &folded {
                println!("folded {run}");
            }
            eprintln!(
                "{location}: {} run(s) folded into order_lines",
                folded.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        LakeCommand::Optimize(a) => {
            let compacted = lake.optimize(duff_delta::optimize::OptimizeOptions {
                target_bytes: a.target_mib.saturating_mul(1 << 20),
                row_group_rows: a.row_group_rows,
            })?;
            for c in &compacted {
                let partition = if c.partition.is_empty() {
                    String::new()
                } else {
                    format!(" pa_date={}", c.partition)
                };
                println!(
                    "{}{partition}: {} files ({}) → {} ({}), {} rows",
                    c.table,
                    c.files_before,
                    mib(c.bytes_before),
                    c.files_after,
                    mib(c.bytes_after),
                    c.rows
                );
            }
            eprintln!("{location}: {} partition(s) compacted", compacted.len());
            Ok(ExitCode::SUCCESS)
        }
        LakeCommand::Vacuum(a) => {
            let retention = Duration::from_secs(a.retention_hours * 3600);
            let mut removed = lake.vacuum(retention, a.dry_run)?;
            if let Some(staging) = vacuum_staging(retention, a.dry_run)? {
                removed.push(Vacuumed {
                    table: "staging",
                    files: staging,
                    log_entries: 0,
                });
            }
            let verb = if a.dry_run { "would remove" } else { "removed" };
            for Vacuumed {
                table,
                files,
                log_entries,
            } in removed
            {
                for f in &files {
                    println!("{table}: {verb} {f}");
                }
                if !files.is_empty() {
                    eprintln!("{table}: {verb} {} file(s)", files.len());
                }
                if log_entries > 0 {
                    eprintln!("{table}: removed {log_entries} expired log entries");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}
