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
    keep_freed_memory();
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

/// mimalloc hands memory freed by the engine (column buffers, every range) back to the OS after a
/// delay, and the next ranges fault it back in zeroed: ~1 GiB per GiB of input, a tenth of the
/// CPU of a run. Keeping it costs ~25 MiB of peak RSS (README, "Performance").
fn keep_freed_memory() {
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15; // mimalloc.h
    // SAFETY: sets a process-wide allocator option, valid at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}
