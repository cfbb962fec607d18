//! Raw config → [`Config`]: defaults, resolved secrets, cross-checks.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use subgate_core::{ProviderKind, SecretString, expose};
use url::Url;

use crate::paths::expand_home;
use crate::raw::{
    OneOrMany, RawAccount, RawApi, RawConfig, RawLogFormat, RawPricing, RawProvider, RawRouting,
    RawTimeouts,
};
use crate::{
    AccountConfig, Alias, Config, ConfigError, DEFAULT_PORT, DEFAULT_PRICING_REFRESH, Database,
    KIRO_DEFAULT_BASE_URL, LogConfig, LogFormat, OpenAiApi, PoolConfig, PricingConfig,
    ProviderConfig, RoutingConfig, ServerConfig, StorageConfig, Strategy, UpstreamLimits,
    default_data_dir,
};

const DEFAULT_MAX_BODY_BYTES: u64 = 32 << 20;
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_mins(1);
const DEFAULT_LIMITS: UpstreamLimits = UpstreamLimits {
    connect_timeout: Duration::from_secs(10),
    // A non-streamed answer arrives whole, so its first byte can take as
    // long as the generation itself.
    first_byte_timeout: Duration::from_mins(10),
    first_token_timeout: None,
    idle_timeout: Duration::from_mins(5),
    max_event_bytes: 16 << 20,
};

/// How long Kiro may stay silent after accepting a request before it is
/// sent again (kiro-gateway waits 15 s; a long prompt can take longer to
/// start, so a little more).
const KIRO_FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers a provider entry may not set: the transport owns them.
const RESERVED_HEADERS: &[&str] = &["host", "content-length", "transfer-encoding", "connection"];

pub(crate) fn validate(
    raw: RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
    source: Option<PathBuf>,
) -> Result<Config, ConfigError> {
    let server = server(&raw)?;
    let storage = storage(&raw)?;
    let log = LogConfig {
        format: match raw.log.format {
            None | Some(RawLogFormat::Pretty) => LogFormat::Pretty,
            Some(RawLogFormat::Json) => LogFormat::Json,
        },
        filter: raw.log.level.unwrap_or_else(|| "info".to_owned()),
    };
    let defaults = limits(&raw.upstream, DEFAULT_LIMITS, "upstream")?;
    let routing = routing(&raw.routing)?;

    let mut names = HashSet::new();
    let mut providers = Vec::with_capacity(raw.providers.len());
    for (index, entry) in raw.providers.into_iter().enumerate() {
        let key = format!("providers[{index}]");
        let name = entry.name.as_deref().unwrap_or(entry.kind.as_str());
        if !names.insert(name.to_owned()) {
            return Err(ConfigError::invalid_with_hint(
                format!("{key}.name"),
                format!("the name `{name}` is used by an earlier provider"),
                "every provider needs its own name (it defaults to the kind); it is how `name/model` picks it",
            ));
        }
        providers.push(provider(entry, &key, defaults, routing.strategy, env)?);
    }
    // Subscriptions are usable as soon as someone logs in: a kind the file
    // does not mention gets an entry with every default, after the
    // configured ones (which therefore come first in routing).
    for &kind in ProviderKind::SUBSCRIPTIONS {
        if providers.iter().any(|entry| entry.kind == kind) || names.contains(kind.as_str()) {
            continue;
        }
        let entry = RawProvider::implicit(kind);
        providers.push(provider(
            entry,
            kind.as_str(),
            defaults,
            routing.strategy,
            env,
        )?);
    }
    let aliases = aliases(raw.aliases, &providers)?;

    let pricing = pricing(&raw.pricing)?;
    Ok(Config {
        server,
        storage,
        log,
        routing,
        aliases,
        providers,
        pricing,
        source,
    })
}

/// `[pricing]`.
fn pricing(raw: &RawPricing) -> Result<PricingConfig, ConfigError> {
    let file = raw
        .file
        .as_deref()
        .filter(|file| !file.is_empty())
        .map(expand_home);
    let url = match raw.url.as_deref().filter(|url| !url.is_empty()) {
        None => None,
        Some(text) => {
            let url = Url::parse(text).map_err(|error| {
                ConfigError::invalid_with_hint(
                    "pricing.url",
                    format!("`{text}` is not a URL: {error}"),
                    "e.g. url = \"https://models.dev/api.json\"",
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::invalid(
                    "pricing.url",
                    "must be an http:// or https:// URL",
                ));
            }
            Some(url)
        }
    };
    let refresh = raw
        .refresh
        .map_or(DEFAULT_PRICING_REFRESH, |duration| duration.0);
    if refresh < Duration::from_mins(1) {
        return Err(ConfigError::invalid(
            "pricing.refresh",
            "must be at least a minute",
        ));
    }
    Ok(PricingConfig { file, url, refresh })
}

fn routing(raw: &RawRouting) -> Result<RoutingConfig, ConfigError> {
    let pick = |value: Option<crate::units::ConfigDuration>, default: Duration| {
        value.map_or(default, |duration| duration.0)
    };
    let routing = RoutingConfig {
        strategy: raw.strategy.unwrap_or_default(),
        session_affinity: raw.session_affinity.unwrap_or(true),
        affinity_ttl: pick(raw.affinity_ttl, Duration::from_hours(1)),
        max_attempts: raw.max_attempts.unwrap_or(4),
        failover_deadline: pick(raw.failover_deadline, Duration::from_mins(2)),
        backoff_base: pick(raw.backoff_base, Duration::from_secs(1)),
        backoff_cap: pick(raw.backoff_cap, Duration::from_mins(10)),
        auth_cooldown: pick(raw.auth_cooldown, Duration::from_mins(30)),
    };
    if routing.max_attempts == 0 {
        return Err(ConfigError::invalid_with_hint(
            "routing.max_attempts",
            "must be at least 1",
            "1 turns failover off; the default is 4",
        ));
    }
    for (name, value) in [
        ("affinity_ttl", routing.affinity_ttl),
        ("failover_deadline", routing.failover_deadline),
        ("backoff_base", routing.backoff_base),
        ("backoff_cap", routing.backoff_cap),
    ] {
        if value.is_zero() {
            return Err(ConfigError::invalid(
                format!("routing.{name}"),
                "must be longer than 0s",
            ));
        }
    }
    if routing.backoff_cap < routing.backoff_base {
        return Err(ConfigError::invalid(
            "routing.backoff_cap",
            "must not be shorter than `routing.backoff_base`",
        ));
    }
    Ok(routing)
}

/// Aliases, each target checked against the providers.
fn aliases(
    raw: std::collections::BTreeMap<String, OneOrMany>,
    providers: &[ProviderConfig],
) -> Result<Vec<Alias>, ConfigError> {
    let mut aliases = Vec::with_capacity(raw.len());
    for (name, OneOrMany(targets)) in raw {
        let key = format!("aliases.{name}");
        if name.trim().is_empty() {
            return Err(ConfigError::invalid("aliases", "an alias name is empty"));
        }
        if targets.is_empty() {
            return Err(ConfigError::invalid_with_hint(
                key,
                "lists no target",
                "write one or more \"provider/model\" names",
            ));
        }
        let mut pairs = Vec::with_capacity(targets.len());
        for (index, target) in targets.iter().enumerate() {
            let Some((provider, model)) = target
                .split_once('/')
                .filter(|(provider, model)| !provider.is_empty() && !model.is_empty())
            else {
                return Err(ConfigError::invalid_with_hint(
                    format!("{key}[{index}]"),
                    format!("`{target}` is not a `provider/model` name"),
                    "name the provider entry and the model it serves, e.g. \"anthropic/claude-sonnet-4-5\"",
                ));
            };
            if !providers.iter().any(|entry| entry.name == provider) {
                let known: Vec<&str> = providers.iter().map(|entry| entry.name.as_str()).collect();
                return Err(ConfigError::invalid_with_hint(
                    format!("{key}[{index}]"),
                    format!("no provider is named `{provider}`"),
                    format!("configured providers: {}", known.join(", ")),
                ));
            }
            pairs.push((provider.to_owned(), model.to_owned()));
        }
        aliases.push(Alias {
            name,
            targets: pairs,
        });
    }
    Ok(aliases)
}

fn server(raw: &RawConfig) -> Result<ServerConfig, ConfigError> {
    let host = match raw.server.host.as_deref() {
        None | Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(text) => text.parse().map_err(|_| {
            ConfigError::invalid_with_hint(
                "server.host",
                format!("`{text}` is not an IP address"),
                "use 127.0.0.1 to serve this machine only, or 0.0.0.0 to serve every interface",
            )
        })?,
    };
    let max_body_bytes = raw
        .server
        .max_body_size
        .map_or(DEFAULT_MAX_BODY_BYTES, |size| size.0);
    if max_body_bytes == 0 {
        return Err(ConfigError::invalid(
            "server.max_body_size",
            "must be more than 0 bytes",
        ));
    }
    let read_timeout = raw
        .server
        .read_timeout
        .map_or(DEFAULT_READ_TIMEOUT, |duration| duration.0);
    if read_timeout.is_zero() {
        return Err(ConfigError::invalid(
            "server.read_timeout",
            "must be more than 0s",
        ));
    }
    Ok(ServerConfig {
        host,
        port: raw.server.port.unwrap_or(DEFAULT_PORT),
        max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
        shutdown_timeout: raw
            .server
            .shutdown_timeout
            .map_or(DEFAULT_SHUTDOWN_TIMEOUT, |duration| duration.0),
        read_timeout,
        require_keys: raw.server.require_keys,
    })
}

fn storage(raw: &RawConfig) -> Result<StorageConfig, ConfigError> {
    let data_dir = match raw.storage.data_dir.as_deref() {
        Some("") => {
            return Err(ConfigError::invalid(
                "storage.data_dir",
                "must not be empty",
            ));
        }
        Some(text) => expand_home(text),
        None => default_data_dir().ok_or_else(|| {
            ConfigError::invalid_with_hint(
                "storage.data_dir",
                "no home directory is known, so there is no default data directory",
                "set `storage.data_dir`, `SUBGATE_DATA_DIR` or `--data-dir`",
            )
        })?,
    };
    let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
    let database = match raw.storage.database_url.as_deref() {
        None => Database::Sqlite {
            path: data_dir.join("subgate.db"),
        },
        Some(url) => {
            if let Some(path) = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
            {
                if path.is_empty() {
                    return Err(ConfigError::invalid(
                        "storage.database_url",
                        "a sqlite URL needs a file path, like sqlite:///var/lib/subgate/subgate.db",
                    ));
                }
                Database::Sqlite {
                    path: expand_home(path),
                }
            } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                Database::Postgres {
                    url: SecretString::from(url.to_owned()),
                }
            } else {
                return Err(ConfigError::invalid_with_hint(
                    "storage.database_url",
                    "must start with `sqlite:` or `postgres://`",
                    "leave it unset to use the embedded SQLite file in the data directory",
                ));
            }
        }
    };
    Ok(StorageConfig { data_dir, database })
}

fn limits(
    raw: &RawTimeouts,
    fallback: UpstreamLimits,
    key: &str,
) -> Result<UpstreamLimits, ConfigError> {
    let limits = UpstreamLimits {
        connect_timeout: raw
            .connect_timeout
            .map_or(fallback.connect_timeout, |d| d.0),
        first_byte_timeout: raw
            .first_byte_timeout
            .map_or(fallback.first_byte_timeout, |d| d.0),
        first_token_timeout: raw
            .first_token_timeout
            .map(|d| d.0)
            .or(fallback.first_token_timeout),
        idle_timeout: raw.idle_timeout.map_or(fallback.idle_timeout, |d| d.0),
        max_event_bytes: raw.max_event_size.map_or(fallback.max_event_bytes, |size| {
            usize::try_from(size.0).unwrap_or(usize::MAX)
        }),
    };
    for (name, value) in [
        ("connect_timeout", limits.connect_timeout),
        ("first_byte_timeout", limits.first_byte_timeout),
        ("idle_timeout", limits.idle_timeout),
        (
            "first_token_timeout",
            limits.first_token_timeout.unwrap_or(Duration::MAX),
        ),
    ] {
        if value.is_zero() {
            return Err(ConfigError::invalid(
                format!("{key}.{name}"),
                "must be longer than 0s",
            ));
        }
    }
    if limits.max_event_bytes == 0 {
        return Err(ConfigError::invalid(
            format!("{key}.max_event_size"),
            "must be more than 0 bytes",
        ));
    }
    Ok(limits)
}

/// What is particular to Kiro: its first-token timeout by default, and
/// `thinking_tags`, which only it takes.
fn kiro_settings(
    entry: &RawProvider,
    limits: &mut UpstreamLimits,
    key: &str,
) -> Result<(), ConfigError> {
    if entry.kind == ProviderKind::Kiro && limits.first_token_timeout.is_none() {
        limits.first_token_timeout = Some(KIRO_FIRST_TOKEN_TIMEOUT);
    }
    if entry.thinking_tags.is_some() && entry.kind != ProviderKind::Kiro {
        return Err(ConfigError::invalid_with_hint(
            format!("{key}.thinking_tags"),
            format!("a `{}` provider has its own thinking", entry.kind),
            "`thinking_tags` is a Kiro setting",
        ));
    }
    Ok(())
}

fn provider(
    entry: RawProvider,
    key: &str,
    defaults: UpstreamLimits,
    strategy: Strategy,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ProviderConfig, ConfigError> {
    let mut limits = limits(&entry.timeouts(), defaults, key)?;
    kiro_settings(&entry, &mut limits, key)?;
    let name = entry
        .name
        .clone()
        .unwrap_or_else(|| entry.kind.as_str().to_owned());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ConfigError::invalid_with_hint(
            format!("{key}.name"),
            format!("`{name}` is not a usable name"),
            "use letters, digits, `-`, `_` and `.`; it appears in `name/model` model names",
        ));
    }
    if entry.preset.is_some() && entry.kind != ProviderKind::OpenAiCompatible {
        return Err(ConfigError::invalid_with_hint(
            format!("{key}.preset"),
            format!("a `{}` provider has no presets", entry.kind),
            "presets name OpenAI-compatible services; use kind = \"openai-compatible\"",
        ));
    }
    let base_url = url(
        entry
            .base_url
            .as_deref()
            .or(default_base_url(entry.kind, entry.preset)),
        entry.kind,
        &format!("{key}.base_url"),
    )?;
    let auth_url = auth_url(&entry, key)?;
    if entry.kind.is_subscription() {
        subscription_has_no_keys(&entry, key)?;
    }

    let api_keys = api_keys(
        entry.api_keys,
        entry.api_key_env.map(|names| names.0),
        key,
        env,
    )?;
    let accounts = if entry.kind.is_subscription() {
        Vec::new()
    } else {
        accounts(&name, api_keys, entry.accounts, key, env)?
    };
    if let Some(preset) = entry.preset
        && preset.needs_key()
        && accounts.iter().all(|account| account.key.is_none())
    {
        return Err(ConfigError::invalid_with_hint(
            format!("{key}.api_keys"),
            format!("the `{}` preset needs an API key", preset.as_str()),
            "list it in `api_keys`, or name an environment variable in `api_key_env`",
        ));
    }
    if entry.max_concurrency == Some(0) {
        return Err(ConfigError::invalid_with_hint(
            format!("{key}.max_concurrency"),
            "must be at least 1",
            "leave it out for no limit",
        ));
    }
    let pool = PoolConfig {
        strategy: entry.strategy.unwrap_or(strategy),
        max_concurrency: entry.max_concurrency,
        min_interval: entry
            .min_interval
            .map(|duration| duration.0)
            .filter(|duration| !duration.is_zero()),
    };
    let models = entry
        .models
        .map(|models| models_list(models, key))
        .transpose()?;
    let headers = headers(entry.headers, key)?;

    let apis = apis(entry.kind, entry.apis, key)?;
    Ok(ProviderConfig {
        kind: entry.kind,
        name,
        preset: entry.preset,
        base_url,
        auth_url,
        accounts,
        pool,
        models,
        stream_usage: entry.stream_usage.unwrap_or(true),
        headers,
        apis,
        always_stream: entry.always_stream.unwrap_or(false),
        thinking_tags: entry.thinking_tags.unwrap_or(true),
        limits,
    })
}

/// The OpenAI APIs a provider offers: its own list, or its kind's default.
fn apis(
    kind: ProviderKind,
    raw: Option<Vec<RawApi>>,
    key: &str,
) -> Result<Vec<OpenAiApi>, ConfigError> {
    let key = format!("{key}.apis");
    let Some(raw) = raw else {
        return Ok(match kind {
            ProviderKind::OpenAi => vec![OpenAiApi::Chat, OpenAiApi::Responses],
            ProviderKind::OpenAiCompatible => vec![OpenAiApi::Chat],
            ProviderKind::Anthropic
            | ProviderKind::Gemini
            | ProviderKind::Kimi
            | ProviderKind::Claude
            | ProviderKind::Codex
            | ProviderKind::Copilot
            | ProviderKind::GeminiCli
            | ProviderKind::Kiro => Vec::new(),
        });
    };
    match kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {}
        ProviderKind::Anthropic
        | ProviderKind::Gemini
        | ProviderKind::Kimi
        | ProviderKind::Claude
        | ProviderKind::Codex
        | ProviderKind::Copilot
        | ProviderKind::GeminiCli
        | ProviderKind::Kiro => {
            return Err(ConfigError::invalid_with_hint(
                key,
                format!("a `{kind}` provider speaks its own API only"),
                "`apis` lists the OpenAI APIs (\"chat\", \"responses\") an OpenAI-style upstream offers",
            ));
        }
    }
    let mut apis = Vec::with_capacity(raw.len());
    for api in raw {
        let api = match api {
            RawApi::Chat => OpenAiApi::Chat,
            RawApi::Responses => OpenAiApi::Responses,
        };
        if apis.contains(&api) {
            return Err(ConfigError::invalid(key, "lists an API twice"));
        }
        apis.push(api);
    }
    if apis.is_empty() {
        return Err(ConfigError::invalid_with_hint(
            key,
            "is empty",
            "list at least one of \"chat\" and \"responses\"",
        ));
    }
    Ok(apis)
}

fn api_keys(
    inline: Vec<String>,
    from_env: Option<Vec<String>>,
    key: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<SecretString>, ConfigError> {
    let mut api_keys: Vec<SecretString> = Vec::new();
    let mut seen = HashSet::new();
    for (index, value) in inline.into_iter().enumerate() {
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.api_keys[{index}]"),
                "is empty",
            ));
        }
        if !seen.insert(value.clone()) {
            return Err(ConfigError::invalid(
                format!("{key}.api_keys[{index}]"),
                "repeats an earlier key; each key is one account",
            ));
        }
        api_keys.push(SecretString::from(value));
    }
    for (index, var) in from_env.unwrap_or_default().into_iter().enumerate() {
        let value = env(&var)
            .map(|value| value.trim().to_owned())
            .unwrap_or_default();
        if value.is_empty() {
            return Err(ConfigError::invalid_with_hint(
                format!("{key}.api_key_env[{index}]"),
                format!("the environment variable `{var}` is not set or is empty"),
                format!("export {var}=… before starting subgate, or list the key in `api_keys`"),
            ));
        }
        if seen.insert(value.clone()) {
            api_keys.push(SecretString::from(value));
        }
    }
    Ok(api_keys)
}

/// The accounts of one provider: one per key in `api_keys` and
/// `api_key_env` (named `provider#n`; the first is the primary), then the
/// named `accounts`; one keyless account when there is none.
fn accounts(
    provider: &str,
    keys: Vec<SecretString>,
    named: Vec<RawAccount>,
    key: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<AccountConfig>, ConfigError> {
    let mut accounts: Vec<AccountConfig> = keys
        .into_iter()
        .enumerate()
        .map(|(index, secret)| AccountConfig {
            name: format!("{provider}#{}", index + 1),
            key: Some(secret),
            priority: u32::from(index > 0),
        })
        .collect();
    for (index, account) in named.into_iter().enumerate() {
        let account_key = format!("{key}.accounts[{index}]");
        if account.name.is_empty()
            || account.name.contains('#')
            || account.name.chars().any(char::is_whitespace)
        {
            return Err(ConfigError::invalid_with_hint(
                format!("{account_key}.name"),
                format!("`{}` is not a usable account name", account.name),
                "use a short name without spaces or `#`, e.g. \"work\"",
            ));
        }
        if accounts.iter().any(|other| other.name == account.name) {
            return Err(ConfigError::invalid(
                format!("{account_key}.name"),
                format!("the name `{}` is used by another account", account.name),
            ));
        }
        let secret = match (account.api_key, account.api_key_env) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    account_key,
                    "sets both `api_key` and `api_key_env`; keep one",
                ));
            }
            (Some(inline), None) => Some(inline.trim().to_owned()),
            (None, Some(var)) => Some(env(&var).map(|value| value.trim().to_owned()).ok_or_else(
                || {
                    ConfigError::invalid_with_hint(
                        format!("{account_key}.api_key_env"),
                        format!("the environment variable `{var}` is not set or is empty"),
                        format!("export {var}=… before starting subgate"),
                    )
                },
            )?),
            (None, None) => None,
        };
        if secret.as_deref() == Some("") {
            return Err(ConfigError::invalid(
                format!("{account_key}.api_key"),
                "is empty",
            ));
        }
        if let Some(secret) = &secret
            && accounts
                .iter()
                .any(|other| other.key.as_ref().is_some_and(|key| expose(key) == secret))
        {
            return Err(ConfigError::invalid(
                format!("{account_key}.api_key"),
                "repeats another account's key; each key is one account",
            ));
        }
        let position = accounts.len();
        accounts.push(AccountConfig {
            name: account.name,
            key: secret.map(SecretString::from),
            priority: account.priority.unwrap_or(u32::from(position > 0)),
        });
    }
    if accounts.is_empty() {
        accounts.push(AccountConfig {
            name: provider.to_owned(),
            key: None,
            priority: 0,
        });
    }
    Ok(accounts)
}

fn models_list(models: Vec<String>, key: &str) -> Result<Vec<String>, ConfigError> {
    let mut unique = Vec::with_capacity(models.len());
    for (index, model) in models.into_iter().enumerate() {
        let model = model.trim().to_owned();
        if model.is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.models[{index}]"),
                "is empty",
            ));
        }
        if !unique.contains(&model) {
            unique.push(model);
        }
    }
    Ok(unique)
}

fn headers(
    raw: std::collections::BTreeMap<String, String>,
    key: &str,
) -> Result<Vec<(String, SecretString)>, ConfigError> {
    let mut headers = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        let header_key = format!("{key}.headers.{name}");
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ConfigError::invalid(
                header_key,
                "is not a valid HTTP header name",
            ));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(ConfigError::invalid(
                header_key,
                "is set by the HTTP transport and cannot be configured",
            ));
        }
        if !value
            .bytes()
            .all(|byte| byte == b'\t' || (b' '..=b'~').contains(&byte))
        {
            return Err(ConfigError::invalid(
                header_key,
                "must be printable ASCII without line breaks",
            ));
        }
        headers.push((name.to_ascii_lowercase(), SecretString::from(value)));
    }
    Ok(headers)
}

/// The base URL a kind uses when the entry sets none.
fn default_base_url(kind: ProviderKind, preset: Option<crate::Preset>) -> Option<&'static str> {
    Some(match kind {
        ProviderKind::OpenAiCompatible => return preset.map(crate::Preset::base_url),
        ProviderKind::OpenAi => "https://api.openai.com/v1",
        ProviderKind::Anthropic | ProviderKind::Claude => "https://api.anthropic.com",
        ProviderKind::Gemini => "https://generativelanguage.googleapis.com",
        ProviderKind::Kimi => "https://api.kimi.com/coding/v1",
        ProviderKind::Codex => "https://chatgpt.com/backend-api/codex",
        // Only a fallback: each Copilot token names its account's API.
        ProviderKind::Copilot => "https://api.individual.githubcopilot.com",
        ProviderKind::GeminiCli => "https://cloudcode-pa.googleapis.com",
        // Only a fallback: each login's profile ARN names its region.
        ProviderKind::Kiro => KIRO_DEFAULT_BASE_URL,
    })
}

/// `auth_url`: where a subscription's logins and refreshes go, when not
/// to the service's own servers.
fn auth_url(entry: &RawProvider, key: &str) -> Result<Option<Url>, ConfigError> {
    let key = format!("{key}.auth_url");
    let Some(text) = entry.auth_url.as_deref() else {
        return Ok(None);
    };
    if !entry.kind.is_subscription() {
        return Err(ConfigError::invalid_with_hint(
            key,
            format!("a `{}` provider has no login", entry.kind),
            "`auth_url` points a subscription (claude, codex, copilot) at another login server",
        ));
    }
    url(Some(text), entry.kind, &key).map(Some)
}

/// Subscription accounts come from logins; a key in the file is a mistake
/// worth explaining.
fn subscription_has_no_keys(entry: &RawProvider, key: &str) -> Result<(), ConfigError> {
    let field = if !entry.api_keys.is_empty() {
        "api_keys"
    } else if entry.api_key_env.is_some() {
        "api_key_env"
    } else if !entry.accounts.is_empty() {
        "accounts"
    } else {
        return Ok(());
    };
    Err(ConfigError::invalid_with_hint(
        format!("{key}.{field}"),
        format!("`{}` accounts are logins, not API keys", entry.kind),
        format!(
            "run `subgate login {kind}` or `subgate import`; for an API key use kind = \"{api}\"",
            kind = entry.kind,
            api = match entry.kind {
                ProviderKind::Codex => "openai",
                _ => "anthropic",
            }
        ),
    ))
}

/// Parses and checks a configured URL.
fn url(text: Option<&str>, kind: ProviderKind, key: &str) -> Result<Url, ConfigError> {
    let Some(text) = text else {
        return Err(ConfigError::invalid_with_hint(
            key,
            format!("an `{kind}` provider needs a base URL or a preset"),
            "e.g. preset = \"ollama\", or base_url = \"http://127.0.0.1:11434/v1\"",
        ));
    };
    let mut url = Url::parse(text).map_err(|error| {
        ConfigError::invalid_with_hint(
            key,
            format!("`{text}` is not a URL: {error}"),
            "write the full URL, e.g. https://api.example.com/v1",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(
            key,
            "must be an http:// or https:// URL",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid_with_hint(
            key,
            "must not carry credentials",
            "put the key in `api_keys` or `api_key_env`; URLs end up in logs",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::invalid(
            key,
            "must not have a query or a fragment",
        ));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}
