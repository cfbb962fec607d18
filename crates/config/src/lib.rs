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
pub use load::{Override, Sources, load, parse};
pub use paths::{default_config_path, default_data_dir};
use subgate_core::{ProviderKind, SecretString};
pub use units::parse_duration;
pub use url::Url;

/// The port subgate listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 8420;

/// Kiro's API in its home region. Left at this default, a Kiro provider
/// sends each login to the region its profile ARN names.
pub const KIRO_DEFAULT_BASE_URL: &str = "https://q.us-east-1.amazonaws.com";

/// A validated configuration, defaults applied.
#[derive(Debug, Clone)]
pub struct Config {
    /// The listening side.
    pub server: ServerConfig,
    /// Where state is kept.
    pub storage: StorageConfig,
    /// How the process logs.
    pub log: LogConfig,
    /// How requests are spread over accounts and retried.
    pub routing: RoutingConfig,
    /// Model aliases, each to an ordered list of `provider/model` targets.
    pub aliases: Vec<Alias>,
    /// Upstream services, in the order they were written.
    pub providers: Vec<ProviderConfig>,
    /// `[pricing]`: where prices come from besides the bundled table.
    pub pricing: PricingConfig,
    /// The file this came from, if one was read.
    pub source: Option<PathBuf>,
}

/// `[pricing]`: price sources in the models.dev `api.json` format, put on
/// top of the bundled table (the file's prices over the URL's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingConfig {
    /// `file`: a local price file.
    pub file: Option<PathBuf>,
    /// `url`: where to download prices from.
    pub url: Option<Url>,
    /// `refresh`: how often the URL is fetched and the file read again.
    pub refresh: Duration,
}

/// How often prices are read again when `refresh` is not set.
pub const DEFAULT_PRICING_REFRESH: Duration = Duration::from_hours(24);

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
    /// How long a client may take to send a request's head, and then its
    /// body: a slow client cannot hold a connection forever.
    pub read_timeout: Duration,
    /// Whether client requests need a client key: `None` (the default)
    /// once any key has been made. Without keys the gateway serves only a
    /// loopback address.
    pub require_keys: Option<bool>,
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
    /// How long a successful answer may take to send its first chunk before
    /// the request is sent again (`None`: only `idle_timeout` applies). Kiro
    /// sometimes accepts a request and then stays silent.
    pub first_token_timeout: Option<Duration>,
    /// The longest silence allowed between two chunks of a body.
    pub idle_timeout: Duration,
    /// The largest single stream event accepted from the upstream.
    pub max_event_bytes: usize,
}

/// How a provider picks the account for the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The primary account (lowest `priority`) while it can serve, then
    /// the others in turn.
    Priority,
    /// Each account in turn.
    #[default]
    RoundRobin,
    /// The account with the fewest requests in flight, then the fewest
    /// served.
    LeastUsed,
    /// The first account in the list until it rests, then the next.
    FillFirst,
    /// The account with the most quota left where the upstream reports it,
    /// then the one whose quota resets soonest.
    QuotaAware,
}

impl Strategy {
    /// The name written in the config file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Priority => "priority",
            Self::RoundRobin => "round-robin",
            Self::LeastUsed => "least-used",
            Self::FillFirst => "fill-first",
            Self::QuotaAware => "quota-aware",
        }
    }
}

/// A well-known OpenAI-compatible service: its base URL and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// OpenRouter.
    OpenRouter,
    /// DeepSeek's API.
    DeepSeek,
    /// Groq.
    Groq,
    /// A local Ollama server.
    Ollama,
    /// A local vLLM server.
    Vllm,
    /// A local LM Studio server.
    LmStudio,
}

impl Preset {
    /// The name written in the config file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OpenRouter => "openrouter",
            Self::DeepSeek => "deepseek",
            Self::Groq => "groq",
            Self::Ollama => "ollama",
            Self::Vllm => "vllm",
            Self::LmStudio => "lmstudio",
        }
    }

    /// Where the service listens by default.
    pub const fn base_url(self) -> &'static str {
        match self {
            Self::OpenRouter => "https://openrouter.ai/api/v1",
            Self::DeepSeek => "https://api.deepseek.com/v1",
            Self::Groq => "https://api.groq.com/openai/v1",
            Self::Ollama => "http://127.0.0.1:11434/v1",
            Self::Vllm => "http://127.0.0.1:8000/v1",
            Self::LmStudio => "http://127.0.0.1:1234/v1",
        }
    }

    /// Whether the service refuses requests without a key (local servers
    /// do not need one).
    pub const fn needs_key(self) -> bool {
        matches!(self, Self::OpenRouter | Self::DeepSeek | Self::Groq)
    }
}

/// `[routing]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingConfig {
    /// The strategy of providers that do not set their own.
    pub strategy: Strategy,
    /// Keep one conversation on one account while it can serve.
    pub session_affinity: bool,
    /// How long a conversation stays bound to its account after its last
    /// request.
    pub affinity_ttl: Duration,
    /// Most upstream attempts for one request (accounts and alias targets
    /// together).
    pub max_attempts: u32,
    /// No new attempt starts this long after the request arrived.
    pub failover_deadline: Duration,
    /// The first rest after a failure that named no time; it doubles with
    /// each consecutive failure.
    pub backoff_base: Duration,
    /// The longest rest a backoff reaches.
    pub backoff_cap: Duration,
    /// How long an account whose credential was refused rests before it is
    /// tried again.
    pub auth_cooldown: Duration,
}

/// One `[aliases]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The model name clients ask for.
    pub name: String,
    /// `(provider, model)` pairs, tried in order.
    pub targets: Vec<(String, String)>,
}

/// One account of a provider.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// What people see: the configured name, or `provider#n`.
    pub name: String,
    /// The key, or `None` for a keyless upstream.
    pub key: Option<SecretString>,
    /// Lower is preferred under the `priority` strategy.
    pub priority: u32,
}

/// Per-account limits of one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// How the next account is picked.
    pub strategy: Strategy,
    /// Most requests in flight on one account.
    pub max_concurrency: Option<u32>,
    /// The least time between two requests starting on one account.
    pub min_interval: Option<Duration>,
}

/// One `[[providers]]` entry.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// What kind of service this is.
    pub kind: ProviderKind,
    /// Unique name, used in logs, headers and `provider/model` names.
    pub name: String,
    /// The well-known service an `openai-compatible` entry is, if named.
    pub preset: Option<Preset>,
    /// Base URL of the upstream API, without a trailing slash.
    pub base_url: Url,
    /// For subscriptions: the login and refresh server to use instead of
    /// the service's own (a mock in tests, GitHub Enterprise for Copilot).
    pub auth_url: Option<Url>,
    /// The accounts, in the order written; one keyless account for an
    /// upstream that needs no key (a local server). Never empty for API
    /// kinds; always empty for subscriptions, whose accounts are logins
    /// kept in the store.
    pub accounts: Vec<AccountConfig>,
    /// How requests spread over the accounts.
    pub pool: PoolConfig,
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
    /// Kiro: ask for thinking with tags in the prompt and turn the tagged
    /// text into thinking blocks (on by default; other kinds ignore it).
    pub thinking_tags: bool,
    /// Timeouts and limits for this upstream.
    pub limits: UpstreamLimits,
}
