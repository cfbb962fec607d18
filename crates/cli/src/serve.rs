//! `subgate serve`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use subgate_config::{Config, Database, Override};
use tokio::signal::unix::{SignalKind, signal};

use crate::args::ServeArgs;
use crate::config_cmd::{config_path, load_config};

pub(crate) fn run(config_file: Option<PathBuf>, args: &ServeArgs) -> Result<()> {
    let mut overrides = Vec::new();
    if let Some(host) = &args.host {
        overrides.push(Override::host(host));
    }
    if let Some(port) = args.port {
        overrides.push(Override::port(port));
    }
    if let Some(dir) = &args.data_dir {
        overrides.push(Override::data_dir(dir));
    }
    if let Some(format) = &args.log_format {
        overrides.push(Override::log_format(format));
    }
    let config = load_config(config_file.clone(), overrides)?;
    let _log = crate::logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(&config, config_file))
}

async fn serve(config: &Config, config_file: Option<PathBuf>) -> Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;

    let running = subgate_server::start(config).await?;
    announce(
        config,
        config_file,
        running.local_addr(),
        &running.engine().provider_names(),
    )?;

    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!(
        grace_seconds = config.server.shutdown_timeout.as_secs_f32(),
        "Stopping: no new connections; requests in flight may finish."
    );
    let handle = running.stop_handle();
    handle.shutdown();
    let stopped = running.stopped();
    tokio::pin!(stopped);
    tokio::select! {
        () = &mut stopped => {}
        () = async { tokio::select! { _ = interrupt.recv() => {}, _ = terminate.recv() => {} } } => {
            tracing::warn!("Second stop signal: ending requests in flight now.");
            handle.hurry();
            stopped.await;
        }
    }
    tracing::info!("Stopped.");
    Ok(())
}

/// The one line `serve` prints: where it listens, where its data is, and
/// what to do next.
fn announce(
    config: &Config,
    config_file: Option<PathBuf>,
    address: std::net::SocketAddr,
    providers: &[&str],
) -> Result<()> {
    let data = match &config.storage.database {
        Database::Sqlite { path } => format!("data in {}", path.display()),
        Database::Postgres { .. } => "data in PostgreSQL".to_owned(),
    };
    let next = if providers.is_empty() {
        let path = config
            .source
            .clone()
            .or(config_file)
            .or_else(|| config_path(None).ok())
            .map_or_else(
                || "the config file".to_owned(),
                |path| format!("`{}`", path.display()),
            );
        format!(
            "no accounts yet: `subgate login claude|codex|copilot`, `subgate import`, or add an API-key provider to {path} (`subgate config init` writes an example)"
        )
    } else {
        format!("providers: {}", providers.join(", "))
    };
    writeln!(
        std::io::stdout(),
        "subgate listening on http://{address} · {data} · {next}"
    )
    .context("writing to stdout")
}
