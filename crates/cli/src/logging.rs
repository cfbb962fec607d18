//! Log output: readable lines by default, JSON on request, always stderr.
//!
//! Lines are written by a thread of their own through a bounded queue: a
//! slow or stuck reader of stderr (a full pipe) costs log lines, never
//! requests.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use subgate_config::{LogConfig, LogFormat};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
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

/// Lines waiting for the writer thread before new ones are dropped.
const QUEUED_LINES: usize = 16_384;

/// Installs the global subscriber. Lines still queued are written when
/// the returned guard is dropped, so keep it until the process ends.
pub(crate) fn init(config: &LogConfig) -> Result<WorkerGuard> {
    let filter = filter(config)?;
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("subgate-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
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
    installed.map_err(|error| anyhow::anyhow!("installing the logger: {error}"))?;
    Ok(guard)
}
