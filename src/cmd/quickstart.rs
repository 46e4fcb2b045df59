//! `duff quickstart`: the front door. Sample file → lake → summary → dashboard.

use std::process::ExitCode;

use duff_datagen::{Dirt, GenConfig, Size};
use duff_delta::DeltaLake;
use duff_engine::{RunOptions, RunOutcome};

use crate::cli::QuickstartArgs;
use crate::summary;

pub fn quickstart(args: QuickstartArgs) -> anyhow::Result<ExitCode> {
    let inbox = args.dir.join("inbox");
    let sample = inbox.join(format!("orders-sample-{}.csv", args.seed));
    let cfg = GenConfig {
        seed: args.seed,
        size: Size::Rows(args.rows),
        dirt: Dirt::typical(),
        ..GenConfig::default()
    };
    if !sample.exists() {
        eprintln!("generating {} ({} rows)…", sample.display(), args.rows);
        super::datagen::write_file(&cfg, &sample)?;
    }
    let lake = DeltaLake::open_local(args.dir.join("lake"))?;
    let root = lake.files().root().to_path_buf();
    let options = RunOptions {
        threads: args.threads,
        ..RunOptions::default()
    };
    let input = duff_engine::input::LocalInput::open(&sample)?;
    let outcome = super::run::run_one(&input, &lake, &options, true)?;
    summary::print(std::slice::from_ref(&outcome), &root.display().to_string());
    if let RunOutcome::Succeeded(_) | RunOutcome::Skipped(_) = outcome {
        println!();
        println!("The lake is in {} (Delta tables):", root.display());
        println!("  orders/  model/fact_orders/  model/dim_*/  quarantine/  runs/");
        println!(
            "Expected counts of the sample: {}",
            duff_datagen::sidecar_path(&sample).display()
        );
        println!(
            "Process your own files with: duff run <file.csv> --lake {}",
            root.display()
        );
    }
    if let RunOutcome::Failed(_) = outcome {
        return Ok(ExitCode::from(super::EXIT_INPUT_REJECTED));
    }
    if !args.no_serve {
        println!();
        super::serve::serve_lake(&root, args.addr, None, args.threads)?;
    }
    Ok(ExitCode::SUCCESS)
}
