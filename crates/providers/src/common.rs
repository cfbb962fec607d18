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

/// `retry-after-ms` (OpenAI's) or `retry-after` in seconds.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<std::time::Duration> {
    let read = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|value| value.is_finite() && *value >= 0.0)
    };
    if let Some(millis) = read("retry-after-ms") {
        return std::time::Duration::try_from_secs_f64(millis / 1000.0).ok();
    }
    read("retry-after").and_then(|seconds| std::time::Duration::try_from_secs_f64(seconds).ok())
}
