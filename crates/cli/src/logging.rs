//! Log output: readable lines by default, JSON on request, always stderr.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use subgate_config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// Checks the filter without installing anything (`config check`).
pub(crate) fn filter(config: &LogConfig) -> Result<EnvFilter> {
    EnvFilter::try_new(&config.filter).with_context(|| {
        format!(
            "`log.level`: `{}` is not a log filter; use a level such as `info` or directives such as `info,subgate_engine=debug`",
            config.filter
        )
    })
}

/// Installs the global subscriber.
pub(crate) fn init(config: &LogConfig) -> Result<()> {
    let filter = filter(config)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match config.format {
        LogFormat::Pretty => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(color).with_target(false).try_init()
        }
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("installing the logger: {error}"))
}
