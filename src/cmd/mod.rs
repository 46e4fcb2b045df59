//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::Command;

mod datagen;
mod quickstart;
mod run;

/// Exit status when at least one input was rejected (a `failed` manifest was written).
pub const EXIT_INPUT_REJECTED: u8 = 2;

pub fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Quickstart(args) => quickstart::quickstart(args),
        Command::Run(args) => run::run(args),
        Command::Datagen(args) => datagen::datagen(args).map(|()| ExitCode::SUCCESS),
    }
}
