//! Every environment variable subgate reads, in one place.
//!
//! Settings variables override the config file and are overridden by
//! command-line flags. Secrets for providers are not here: a provider names
//! its own variable with `api_key_env`.

/// Path of the config file (default: `$XDG_CONFIG_HOME/subgate/config.toml`).
pub const CONFIG: &str = "SUBGATE_CONFIG";
/// Address to listen on (`server.host`).
pub const HOST: &str = "SUBGATE_HOST";
/// Port to listen on (`server.port`).
pub const PORT: &str = "SUBGATE_PORT";
/// Largest accepted request body (`server.max_body_size`).
pub const MAX_BODY_SIZE: &str = "SUBGATE_MAX_BODY_SIZE";
/// How long in-flight requests may finish after a stop signal
/// (`server.shutdown_timeout`).
pub const SHUTDOWN_TIMEOUT: &str = "SUBGATE_SHUTDOWN_TIMEOUT";
/// Where subgate keeps its database and secrets (`storage.data_dir`).
pub const DATA_DIR: &str = "SUBGATE_DATA_DIR";
/// `sqlite://…` or `postgres://…` (`storage.database_url`).
pub const DATABASE_URL: &str = "SUBGATE_DATABASE_URL";
/// `pretty` or `json` (`log.format`).
pub const LOG_FORMAT: &str = "SUBGATE_LOG_FORMAT";
/// Log filter such as `info` or `info,subgate_engine=debug` (`log.level`).
pub const LOG: &str = "SUBGATE_LOG";
/// Tests only: a PostgreSQL URL; when set, the store suite also runs there.
pub const TEST_POSTGRES_URL: &str = "SUBGATE_TEST_POSTGRES_URL";

/// How an overriding value is written into the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Kept as a string (durations and sizes parse from strings too).
    String,
    /// Parsed as an integer.
    Integer,
}

/// A variable that overrides one config key.
#[derive(Debug, Clone, Copy)]
pub struct SettingVar {
    /// The variable's name.
    pub name: &'static str,
    /// The config key it overrides, as a path of table keys.
    pub key: &'static [&'static str],
    /// How its value is read.
    pub kind: ValueKind,
}

/// Every variable that overrides a config key.
pub const SETTINGS: &[SettingVar] = &[
    SettingVar {
        name: HOST,
        key: &["server", "host"],
        kind: ValueKind::String,
    },
    SettingVar {
        name: PORT,
        key: &["server", "port"],
        kind: ValueKind::Integer,
    },
    SettingVar {
        name: MAX_BODY_SIZE,
        key: &["server", "max_body_size"],
        kind: ValueKind::String,
    },
    SettingVar {
        name: SHUTDOWN_TIMEOUT,
        key: &["server", "shutdown_timeout"],
        kind: ValueKind::String,
    },
    SettingVar {
        name: DATA_DIR,
        key: &["storage", "data_dir"],
        kind: ValueKind::String,
    },
    SettingVar {
        name: DATABASE_URL,
        key: &["storage", "database_url"],
        kind: ValueKind::String,
    },
    SettingVar {
        name: LOG_FORMAT,
        key: &["log", "format"],
        kind: ValueKind::String,
    },
    SettingVar {
        name: LOG,
        key: &["log", "level"],
        kind: ValueKind::String,
    },
];
