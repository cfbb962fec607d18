//! subgate's configuration.
//!
//! One TOML file (the XDG config directory, `SUBGATE_CONFIG` or `--config`),
//! overridden key by key by `SUBGATE_*` variables ([`env_vars`]), which are
//! overridden by command-line flags. The file is parsed strictly (unknown keys
//! are errors) into a raw form, overrides are applied, and the result is
//! validated into [`Config`] with defaults filled in and secrets resolved.
//! Every error names the key and says how to fix it.

pub mod env_vars;
mod error;
mod example;
mod load;
mod paths;
mod raw;
mod units;
mod validate;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use error::ConfigError;
pub use example::EXAMPLE;
pub use load::{Override, Sources, load};
pub use paths::{default_config_path, default_data_dir};
use subgate_core::{ProviderKind, SecretString};
pub use url::Url;

/// The port subgate listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 8420;

/// A validated configuration, defaults applied.
#[derive(Debug, Clone)]
pub struct Config {
    /// The listening side.
    pub server: ServerConfig,
    /// Where state is kept.
    pub storage: StorageConfig,
    /// How the process logs.
    pub log: LogConfig,
    /// Upstream services, in the order they were written.
    pub providers: Vec<ProviderConfig>,
    /// The file this came from, if one was read.
    pub source: Option<PathBuf>,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// After a stop signal, how long in-flight requests and streams may
    /// still run before the process exits anyway.
    pub shutdown_timeout: Duration,
}

/// `[storage]`.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The directory for the database and other state (mode 0700).
    pub data_dir: PathBuf,
    /// Which database holds the state.
    pub database: Database,
}

/// The database subgate keeps its state in.
#[derive(Debug, Clone)]
pub enum Database {
    /// An embedded SQLite file.
    Sqlite {
        /// Path of the database file.
        path: PathBuf,
    },
    /// A PostgreSQL server, for several replicas.
    Postgres {
        /// The connection URL; it may carry a password.
        url: SecretString,
    },
}

/// `[log]`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `info,subgate_engine=debug`.
    pub filter: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// OpenAI's two generation APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenAiApi {
    /// Chat Completions: every model has it.
    #[default]
    Chat,
    /// Responses: reasoning round trips; some models only have this.
    Responses,
}

/// Limits on talking to one upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamLimits {
    /// How long a TCP (and TLS) connect may take.
    pub connect_timeout: Duration,
    /// How long the upstream may take to send its response head.
    pub first_byte_timeout: Duration,
    /// The longest silence allowed between two chunks of a body.
    pub idle_timeout: Duration,
    /// The largest single stream event accepted from the upstream.
    pub max_event_bytes: usize,
}

/// One `[[providers]]` entry.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// What kind of service this is.
    pub kind: ProviderKind,
    /// Unique name, used in logs, headers and `provider/model` names.
    pub name: String,
    /// Base URL of the upstream API, without a trailing slash.
    pub base_url: Url,
    /// One account per key; empty for a keyless upstream (a local server).
    pub api_keys: Vec<SecretString>,
    /// The models to offer; `None` means ask the upstream's catalog.
    pub models: Option<Vec<String>>,
    /// Ask the upstream for usage on streams whose client did not, so every
    /// stream is metered.
    pub stream_usage: bool,
    /// Extra headers sent with every upstream request.
    pub headers: Vec<(String, SecretString)>,
    /// For OpenAI-style providers: the APIs the upstream offers, the first
    /// being the one used to translate for clients that speak none of
    /// them. Empty for the other kinds.
    pub apis: Vec<OpenAiApi>,
    /// Ask the upstream for a stream even when the client did not, and
    /// assemble the answer (long generations then never sit silent on the
    /// connection).
    pub always_stream: bool,
    /// Timeouts and limits for this upstream.
    pub limits: UpstreamLimits,
}
