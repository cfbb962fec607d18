//! Command-line arguments, and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use subgate_config::env_vars;

/// One gateway for your AI subscriptions and API keys.
///
/// Point Claude Code, Codex CLI, OpenCode, Cursor or any OpenAI-compatible
/// SDK at subgate and it answers from whichever account can.
#[derive(Debug, Parser)]
#[command(
    name = "subgate",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
pub(crate) struct Cli {
    /// The config file [default: `$XDG_CONFIG_HOME/subgate/config.toml`].
    #[arg(long, global = true, value_name = "FILE", env = env_vars::CONFIG)]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway in the foreground.
    ///
    /// Stops on Ctrl-C or SIGTERM: new connections are refused and requests
    /// in flight get `server.shutdown_timeout` to finish; a second signal
    /// ends them at once. Usage records are always stored before exit.
    Serve(ServeArgs),
    /// Write, check or locate the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the version.
    Version,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) host: Option<String>,
    /// Port to listen on; 0 picks a free one [default: 8420].
    #[arg(long, short)]
    pub(crate) port: Option<u16>,
    /// Where to keep the database [default: `$XDG_DATA_HOME/subgate`].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Log line format [default: pretty].
    #[arg(long, value_name = "FORMAT", value_parser = ["pretty", "json"])]
    pub(crate) log_format: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Write a commented example config to the config path.
    Init {
        /// Replace a file that is already there.
        #[arg(long)]
        force: bool,
    },
    /// Check the config (file, environment and all) without starting.
    Check,
    /// Print the path of the config file in use.
    Path,
}
