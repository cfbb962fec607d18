//! The `subgate` binary: parses the command line, sets up logging and the
//! allocator, and runs a command.

mod accounts_cmd;
mod args;
mod config_cmd;
mod keys_cmd;
mod logging;
mod login_cmd;
mod models_cmd;
mod serve;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(cli.config, &args),
        Command::Config(command) => config_cmd::run(cli.config, &command),
        Command::Models { json } => models_cmd::run(cli.config, json),
        Command::Accounts(command) => accounts_cmd::run(cli.config, &command),
        Command::Keys(command) => keys_cmd::run(cli.config, &command),
        Command::Usage(args) => keys_cmd::usage(cli.config, &args),
        Command::Admin(args::AdminCommand::Token) => keys_cmd::admin_token(cli.config),
        Command::Login(args) => login_cmd::login(cli.config, &args),
        Command::Import(args) => login_cmd::import(cli.config, &args),
        Command::Logout(account) => accounts_cmd::remove(cli.config, &account.name),
        Command::Version => {
            let line = concat!("subgate ", env!("CARGO_PKG_VERSION"));
            writeln!(std::io::stdout(), "{line}").map_err(anyhow::Error::from)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}

/// Prints an error and its causes the way people read them:
/// `error: …` then one `caused by: …` line per cause.
fn report(error: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {error}");
    for cause in error.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {cause}");
    }
}
