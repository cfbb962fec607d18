//! What can be wrong with a configuration, said so that it can be fixed.

use std::fmt;
use std::path::PathBuf;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("the config file `{path}` is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key has a value that cannot work.
    #[error("{0}")]
    Invalid(Invalid),
    /// An environment variable holds something that cannot work.
    #[error("environment variable `{var}`: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A key with a value that cannot work.
#[derive(Debug)]
pub struct Invalid {
    /// The key's path, e.g. `providers[0].base_url`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when that is not obvious from the message.
    pub hint: Option<String>,
    /// Where the value came from when it was not the file (`SUBGATE_PORT`,
    /// `--port`).
    pub origin: Option<String>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)?;
        if let Some(origin) = &self.origin {
            write!(f, " (set by `{origin}`)")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(Invalid {
            key: key.into(),
            message: message.into(),
            hint: None,
            origin: None,
        })
    }

    pub(crate) fn invalid_with_hint(
        key: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::Invalid(Invalid {
            key: key.into(),
            message: message.into(),
            hint: Some(hint.into()),
            origin: None,
        })
    }
}
