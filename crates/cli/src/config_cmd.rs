//! `subgate config init | check | path`.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use subgate_config::{Config, Database, EXAMPLE, Sources, default_config_path, load};

use crate::args::ConfigCommand;

pub(crate) fn run(config: Option<PathBuf>, command: &ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Init { force } => init(&config_path(config)?, *force),
        ConfigCommand::Check => check(config),
        ConfigCommand::Path => {
            let path = config_path(config)?;
            writeln!(std::io::stdout(), "{}", path.display())?;
            if !path.exists() {
                writeln!(
                    std::io::stderr(),
                    "note: there is no file there yet; `subgate config init` writes one"
                )?;
            }
            Ok(())
        }
    }
}

/// The file named on the command line or in `SUBGATE_CONFIG`, else the
/// default path.
pub(crate) fn config_path(explicit: Option<PathBuf>) -> Result<PathBuf> {
    match explicit {
        Some(path) => Ok(path),
        None => default_config_path().context(
            "no home directory is known, so there is no default config path; pass `--config FILE`",
        ),
    }
}

/// Loads the config from the real environment.
pub(crate) fn load_config(
    file: Option<PathBuf>,
    overrides: Vec<subgate_config::Override>,
) -> Result<Config> {
    let env = |name: &str| std::env::var(name).ok();
    Ok(load(&Sources {
        file,
        env: &env,
        overrides,
    })?)
}

fn init(path: &Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!(
            "`{}` already exists; pass `--force` to replace it",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating `{}`", dir.display()))?;
    }
    // The file may come to hold API keys.
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing `{}`", path.display()))?;
    file.write_all(EXAMPLE.as_bytes())
        .with_context(|| format!("writing `{}`", path.display()))?;
    writeln!(
        std::io::stdout(),
        "wrote a commented config to `{}`\nhint: add a `[[providers]]` entry, then run `subgate config check`",
        path.display()
    )?;
    Ok(())
}

fn check(file: Option<PathBuf>) -> Result<()> {
    let config = load_config(file, Vec::new())?;
    crate::logging::filter(&config.log)?;
    let mut out = std::io::stdout().lock();
    match &config.source {
        Some(path) => writeln!(out, "config ok: `{}`", path.display())?,
        None => writeln!(
            out,
            "config ok: no config file, defaults and environment only"
        )?,
    }
    writeln!(
        out,
        "  listen    http://{}",
        std::net::SocketAddr::new(config.server.host, config.server.port)
    )?;
    writeln!(out, "  data      {}", config.storage.data_dir.display())?;
    match &config.storage.database {
        Database::Sqlite { path } => writeln!(out, "  database  sqlite `{}`", path.display())?,
        Database::Postgres { .. } => writeln!(out, "  database  postgres")?,
    }
    if config.providers.is_empty() {
        writeln!(out, "  providers none yet; add a `[[providers]]` entry")?;
    }
    for provider in &config.providers {
        let keyed = provider
            .accounts
            .iter()
            .filter(|account| account.key.is_some())
            .count();
        let accounts = match keyed {
            0 => "no key".to_owned(),
            1 => "1 account".to_owned(),
            n => format!("{n} accounts, {}", provider.pool.strategy.as_str()),
        };
        let models = match &provider.models {
            Some(models) => format!("models: {}", models.join(", ")),
            None => "models from the upstream's catalog".to_owned(),
        };
        let kind = provider.kind.as_str();
        writeln!(
            out,
            "  provider  {} ({kind}, {}, {accounts}, {models})",
            provider.name, provider.base_url
        )?;
    }
    Ok(())
}
