//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::Command;

mod aws;
mod datagen;
#[cfg(feature = "dispatch")]
mod dispatch;
mod job;
mod lake;
#[cfg(feature = "serve")]
mod quickstart;
mod run;
#[cfg(feature = "serve")]
mod serve;

/// Exit status when at least one input was rejected (a `failed` manifest was written).
pub const EXIT_INPUT_REJECTED: u8 = 2;

pub fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        #[cfg(feature = "serve")]
        Command::Quickstart(args) => quickstart::quickstart(args),
        Command::Run(args) => run::run(args),
        Command::Datagen(args) => datagen::datagen(args).map(|()| ExitCode::SUCCESS),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::serve(args),
        Command::Job(args) => job::job(args),
        #[cfg(feature = "dispatch")]
        Command::Dispatch(args) => dispatch::dispatch(args),
        #[cfg(feature = "dispatch")]
        Command::Backfill(args) => dispatch::backfill(args),
        Command::Lake(args) => lake::lake(args),
    }
}
