//! `duff lake check|vacuum`: maintenance of a local lake of Delta tables.

use std::process::ExitCode;
use std::time::Duration;

use duff_delta::DeltaLake;

use crate::cli::{LakeArgs, LakeCommand};

/// Exit status of `duff lake check` when it found problems.
const EXIT_PROBLEMS: u8 = 2;

pub fn lake(args: LakeArgs) -> anyhow::Result<ExitCode> {
    let dir = match &args.command {
        LakeCommand::Check(a) | LakeCommand::Convert(a) | LakeCommand::Fold(a) => &a.lake,
        LakeCommand::Vacuum(a) => &a.lake,
    };
    // Maintenance never creates a lake: a mistyped path must not become an empty one.
    anyhow::ensure!(
        dir.is_dir(),
        "no lake at {}: create one with `duff run <file.csv> --lake {}`",
        dir.display(),
        dir.display()
    );
    match args.command {
        LakeCommand::Check(a) => {
            let lake = DeltaLake::open_local(&a.lake)?;
            let problems = lake.check()?;
            if problems.is_empty() {
                let runs = lake.runs()?.len();
                println!("{}: healthy ({runs} runs)", a.lake.display());
                return Ok(ExitCode::SUCCESS);
            }
            for p in &problems {
                println!("{p}");
            }
            eprintln!("{}: {} problem(s)", a.lake.display(), problems.len());
            Ok(ExitCode::from(EXIT_PROBLEMS))
        }
        LakeCommand::Convert(a) => {
            let (_, runs) = DeltaLake::convert_legacy(&a.lake)?;
            println!(
                "{}: {runs} run(s) converted to Delta tables",
                a.lake.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        LakeCommand::Fold(a) => {
            let lake = DeltaLake::open_local(&a.lake)?;
            let folded = lake.fold_pending()?;
            for run in &folded {
                println!("folded {run}");
            }
            eprintln!(
                "{}: {} run(s) folded into order_lines",
                a.lake.display(),
                folded.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        LakeCommand::Vacuum(a) => {
            let lake = DeltaLake::open_local(&a.lake)?;
            let retention = Duration::from_secs(a.retention_hours * 3600);
            let mut removed = lake.vacuum(retention, a.dry_run)?;
            removed.push(("staging", lake.vacuum_staging(retention, a.dry_run)?));
            let verb = if a.dry_run { "would remove" } else { "removed" };
            for (table, files) in removed {
                for f in &files {
                    println!("{table}: {verb} {f}");
                }
                if !files.is_empty() {
                    eprintln!("{table}: {verb} {} file(s)", files.len());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
