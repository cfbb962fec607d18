//! File, then environment, then flags: the three layers of a configuration.

use std::path::{Path, PathBuf};

use crate::env_vars::{SETTINGS, ValueKind};
use crate::error::Invalid;
use crate::raw::RawConfig;
use crate::{Config, ConfigError, default_config_path, validate};

/// A value set from outside the file, and who set it.
#[derive(Debug, Clone)]
pub struct Override {
    key: &'static [&'static str],
    value: toml::Value,
    origin: String,
}

impl Override {
    /// `--host`.
    pub fn host(host: &str) -> Self {
        Self::flag(&["server", "host"], host.into(), "--host")
    }

    /// `--port`.
    pub fn port(port: u16) -> Self {
        Self::flag(&["server", "port"], i64::from(port).into(), "--port")
    }

    /// `--data-dir`.
    pub fn data_dir(path: &Path) -> Self {
        Self::flag(
            &["storage", "data_dir"],
            path.to_string_lossy().into_owned().into(),
            "--data-dir",
        )
    }

    /// `--log-format`.
    pub fn log_format(format: &str) -> Self {
        Self::flag(&["log", "format"], format.into(), "--log-format")
    }

    fn flag(key: &'static [&'static str], value: toml::Value, origin: &str) -> Self {
        Self {
            key,
            value,
            origin: origin.to_owned(),
        }
    }

    fn dotted_key(&self) -> String {
        self.key.join(".")
    }
}

/// Where a configuration comes from.
pub struct Sources<'a> {
    /// The file named by `--config` or `SUBGATE_CONFIG`. When `None`, the
    /// default path is read if it exists, and defaults are used if not.
    pub file: Option<PathBuf>,
    /// Looks up an environment variable (the caller decides whether that is
    /// the real environment).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Values from command-line flags, which win over everything.
    pub overrides: Vec<Override>,
}

impl std::fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("file", &self.file)
            .field("overrides", &self.overrides)
            .finish_non_exhaustive()
    }
}

/// Reads, overrides and validates a configuration.
pub fn load(sources: &Sources<'_>) -> Result<Config, ConfigError> {
    let (table, path) = read_file(sources.file.as_deref())?;
    build(table, path, sources)
}

/// Parses and validates configuration text (TOML), with `env` as the
/// environment and no flags: [`load`] without the file system, for tests
/// and the fuzzer. A syntax error names the file `<text>`.
pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let table = parse_table(text, Path::new("<text>"))?;
    let sources = Sources {
        file: None,
        env,
        overrides: Vec::new(),
    };
    build(table, None, &sources)
}

/// Applies the environment and the flags to the file's `table`, then
/// validates.
fn build(
    mut table: toml::Table,
    path: Option<PathBuf>,
    sources: &Sources<'_>,
) -> Result<Config, ConfigError> {
    let mut overrides = Vec::new();
    for var in SETTINGS {
        let Some(text) = (sources.env)(var.name) else {
            continue;
        };
        let value = match var.kind {
            ValueKind::String => toml::Value::String(text),
            ValueKind::Integer => text
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| ConfigError::Env {
                    var: var.name.to_owned(),
                    message: format!("`{text}` is not a whole number"),
                })?,
        };
        overrides.push(Override {
            key: var.key,
            value,
            origin: var.name.to_owned(),
        });
    }
    overrides.extend(sources.overrides.iter().cloned());
    for item in &overrides {
        set_key(&mut table, item)?;
    }

    let origin_of = |key: &str| {
        overrides
            .iter()
            .rev()
            .find(|item| item.dotted_key() == key)
            .map(|item| item.origin.clone())
    };
    let raw: RawConfig =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
            let key = error.path().to_string();
            ConfigError::Invalid(Invalid {
                origin: origin_of(&key),
                key,
                message: error.into_inner().message().trim_end().to_owned(),
                hint: None,
            })
        })?;
    validate::validate(raw, sources.env, path).map_err(|error| match error {
        ConfigError::Invalid(mut invalid) => {
            invalid.origin = origin_of(&invalid.key);
            ConfigError::Invalid(invalid)
        }
        other => other,
    })
}

fn read_file(explicit: Option<&Path>) -> Result<(toml::Table, Option<PathBuf>), ConfigError> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => match default_config_path() {
            Some(path) if path.exists() => path,
            _ => return Ok((toml::Table::new(), None)),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let table = parse_table(&text, &path)?;
    Ok((table, Some(path)))
}

fn parse_table(text: &str, path: &Path) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|error| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: error.to_string().trim_end().to_owned(),
        })
}

fn set_key(table: &mut toml::Table, item: &Override) -> Result<(), ConfigError> {
    let Some((last, parents)) = item.key.split_last() else {
        return Ok(());
    };
    let mut current = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = current
            .entry((*part).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry.as_table_mut().ok_or_else(|| {
            ConfigError::invalid_with_hint(
                item.key[..=depth].join("."),
                "must be a table",
                format!("write it as `[{}]`", item.key[..=depth].join(".")),
            )
        })?;
    }
    current.insert((*last).to_owned(), item.value.clone());
    Ok(())
}
