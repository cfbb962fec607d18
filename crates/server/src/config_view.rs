//! The configuration in force as the management API shows it: every
//! setting, no secret (keys, header values and database passwords are
//! masked).

use serde::Serialize;
use subgate_config::{Config, Database};
use subgate_core::{expose, mask};
use utoipa::ToSchema;

/// The configuration in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ConfigView {
    /// The config file read, if one was.
    source: Option<String>,
    /// `[server]`.
    server: ServerView,
    /// `[storage]`.
    storage: StorageView,
    /// The providers, in order.
    providers: Vec<ProviderView>,
    /// Model aliases and their targets (`provider/model`).
    aliases: Vec<AliasView>,
    /// `[pricing]`.
    pricing: PricingView,
}

/// `[pricing]`.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct PricingView {
    /// A models.dev-format price file.
    file: Option<String>,
    /// Where prices are downloaded from (its query masked).
    url: Option<String>,
    /// How often both are read again.
    refresh_ms: u64,
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct ServerView {
    host: String,
    port: u16,
    max_body_bytes: usize,
    shutdown_timeout_ms: u64,
    /// `None`: once a client key exists.
    require_keys: Option<bool>,
}

/// `[storage]`.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct StorageView {
    data_dir: String,
    /// `sqlite:PATH`, or the PostgreSQL URL without its password.
    database: String,
}

/// One `[[providers]]` entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct ProviderView {
    name: String,
    kind: String,
    base_url: String,
    auth_url: Option<String>,
    /// The configured accounts (none for subscriptions, whose accounts are
    /// logins: see the accounts routes).
    accounts: Vec<AccountView>,
    /// The models offered, when the entry lists them.
    models: Option<Vec<String>>,
    /// Extra headers, values masked.
    headers: Vec<HeaderView>,
    stream_usage: bool,
    always_stream: bool,
}

/// A configured account.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct AccountView {
    name: String,
    /// The key, masked (`sk-a…[redacted]`); `None` for a keyless one.
    key: Option<String>,
    priority: u32,
}

/// An extra header.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct HeaderView {
    name: String,
    /// Masked: header values may carry credentials.
    value: String,
}

/// An alias.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct AliasView {
    name: String,
    targets: Vec<String>,
}

impl ConfigView {
    pub(crate) fn of(config: &Config) -> Self {
        let database = match &config.storage.database {
            Database::Sqlite { path } => format!("sqlite:{}", path.display()),
            Database::Postgres { url } => without_password(expose(url)),
        };
        Self {
            source: config
                .source
                .as_ref()
                .map(|path| path.display().to_string()),
            server: ServerView {
                host: config.server.host.to_string(),
                port: config.server.port,
                max_body_bytes: config.server.max_body_bytes,
                shutdown_timeout_ms: millis(config.server.shutdown_timeout),
                require_keys: config.server.require_keys,
            },
            storage: StorageView {
                data_dir: config.storage.data_dir.display().to_string(),
                database,
            },
            providers: config
                .providers
                .iter()
                .map(|entry| ProviderView {
                    name: entry.name.clone(),
                    kind: entry.kind.as_str().to_owned(),
                    base_url: entry.base_url.to_string(),
                    auth_url: entry.auth_url.as_ref().map(ToString::to_string),
                    accounts: entry
                        .accounts
                        .iter()
                        .map(|account| AccountView {
                            name: account.name.clone(),
                            key: account.key.as_ref().map(|key| mask(expose(key))),
                            priority: account.priority,
                        })
                        .collect(),
                    models: entry.models.clone(),
                    headers: entry
                        .headers
                        .iter()
                        .map(|(name, value)| HeaderView {
                            name: name.clone(),
                            value: mask(expose(value)),
                        })
                        .collect(),
                    stream_usage: entry.stream_usage,
                    always_stream: entry.always_stream,
                })
                .collect(),
            aliases: config
                .aliases
                .iter()
                .map(|alias| AliasView {
                    name: alias.name.clone(),
                    targets: alias
                        .targets
                        .iter()
                        .map(|(provider, model)| format!("{provider}/{model}"))
                        .collect(),
                })
                .collect(),
            pricing: PricingView {
                file: config
                    .pricing
                    .file
                    .as_ref()
                    .map(|path| path.display().to_string()),
                url: config.pricing.url.as_ref().map(|url| {
                    let mut url = url.clone();
                    if url.query().is_some() {
                        url.set_query(Some("redacted"));
                    }
                    url.to_string()
                }),
                refresh_ms: millis(config.pricing.refresh),
            },
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A database URL with its password (if any) masked.
fn without_password(url: &str) -> String {
    match subgate_config::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("redacted"));
            }
            parsed.to_string()
        }
        Err(_) => "[unreadable URL redacted]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_masked() {
        assert_eq!(
            without_password("postgres://app:hunter2@db:5432/subgate"),
            "postgres://app:redacted@db:5432/subgate"
        );
        assert_eq!(
            without_password("postgres://db/subgate"),
            "postgres://db/subgate"
        );
    }
}
