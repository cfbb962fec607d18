//! Pieces every provider's request building shares: URL joining and the
//! configured extra headers.

use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue};
use subgate_config::Url;
use subgate_core::{SecretString, expose};

/// `base` with `path` appended to its path (`path` without a leading `/`).
pub(crate) fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", url.path().trim_end_matches('/'));
    url.set_path(&joined);
    url
}

/// Headers every request carries: what it accepts, the configured extras,
/// and a JSON content type when it has a body.
pub(crate) fn base_headers(extra: &[(String, SecretString)], json_body: bool) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(extra.len() + 3);
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    if json_body {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    // Validated when the config was loaded, so these parse.
    for (name, value) in extra {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(expose(value)),
        ) {
            headers.insert(name, value);
        }
    }
    headers
}

/// Values of configured headers that carry credentials, judged by their
/// names (a title or referer header is not a secret, and masking it would
/// mangle error text).
pub(crate) fn header_secrets(extra: &[(String, SecretString)]) -> impl Iterator<Item = &str> {
    const CREDENTIAL_WORDS: [&str; 5] = ["auth", "key", "token", "secret", "cookie"];
    extra
        .iter()
        .filter(|(name, _)| CREDENTIAL_WORDS.iter().any(|word| name.contains(word)))
        .map(|(_, value)| expose(value))
}

/// A provider entry for unit tests: one account per key, short limits.
#[cfg(test)]
pub(crate) fn test_config(
    kind: subgate_core::ProviderKind,
    base_url: &str,
    keys: &[&str],
    headers: Vec<(String, SecretString)>,
) -> subgate_config::ProviderConfig {
    use std::time::Duration;

    use subgate_config::{AccountConfig, PoolConfig, ProviderConfig, Strategy, UpstreamLimits};

    let name = kind.as_str().to_owned();
    let mut accounts: Vec<AccountConfig> = keys
        .iter()
        .enumerate()
        .map(|(index, key)| AccountConfig {
            name: format!("{name}#{}", index + 1),
            key: Some(SecretString::from(*key)),
            priority: u32::from(index > 0),
        })
        .collect();
    if accounts.is_empty() {
        accounts.push(AccountConfig {
            name: name.clone(),
            key: None,
            priority: 0,
        });
    }
    ProviderConfig {
        kind,
        name,
        preset: None,
        base_url: Url::parse(base_url).expect("a test URL"),
        auth_url: None,
        accounts,
        pool: PoolConfig {
            strategy: Strategy::RoundRobin,
            max_concurrency: None,
            min_interval: None,
        },
        models: None,
        stream_usage: true,
        headers,
        apis: match kind {
            subgate_core::ProviderKind::OpenAi => vec![
                subgate_config::OpenAiApi::Chat,
                subgate_config::OpenAiApi::Responses,
            ],
            subgate_core::ProviderKind::OpenAiCompatible => vec![subgate_config::OpenAiApi::Chat],
            _ => Vec::new(),
        },
        always_stream: false,
        thinking_tags: true,
        limits: UpstreamLimits {
            connect_timeout: Duration::from_secs(1),
            first_byte_timeout: Duration::from_secs(1),
            first_token_timeout: None,
            idle_timeout: Duration::from_secs(1),
            max_event_bytes: 1024,
        },
    }
}
