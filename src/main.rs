//! `duff`: the Duff orders engine on one machine.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod cmd;
mod logging;
mod summary;

#[global_allocator]
static GLOBAL: duff_alloc::Allocator = duff_alloc::Allocator;

/// The exit code of a command line that does not parse (an unknown option, a value out of
/// range): never retried.
const USAGE: u8 = 64;

fn main() -> ExitCode {
    duff_alloc::tune();
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            // Not clap's 2: that is "input rejected" to `duff run` and `duff job`, and
            // "problems found" to `duff lake check`. 64 is sysexits' EX_USAGE.
            return ExitCode::from(if e.use_stderr() { USAGE } else { 0 });
        }
    };
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
