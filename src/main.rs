//! `duff`: the Duff orders engine on one machine.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod cmd;
mod logging;
mod summary;

#[global_allocator]
static GLOBAL: duff_alloc::Allocator = duff_alloc::Allocator;

fn main() -> ExitCode {
    duff_alloc::tune();
    let args = cli::Cli::parse();
    // A Batch job has no terminal and no summary table: its info logs are the record.
    let verbose = match args.command {
        cli::Command::Job(_) => args.verbose.max(1),
        _ => args.verbose,
    };
    logging::init(args.log_format, verbose);
    match cmd::dispatch(args.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
