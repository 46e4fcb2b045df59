//! `duff`: the Duff orders engine on one machine.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod cmd;
mod logging;
mod summary;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    logging::init(args.log_format, args.verbose);
    match cmd::dispatch(args.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
