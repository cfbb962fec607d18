//! Anthropic's API with an API key.
//!
//! `x-api-key`, `anthropic-version: 2023-06-01`, and the client's
//! `anthropic-beta` passed along when the client speaks Anthropic too.
//! `{base}/v1/messages`, `{base}/v1/messages/count_tokens`, `{base}/v1/models`.
//! Facts: `reference/protocols.md` §1.4–1.5.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use subgate_config::{ProviderConfig, Url};
use subgate_core::{FailureClass, SecretString, expose};

/// The prefix of this vendor's model names.
pub(crate) const FAMILY: &str = "claude-";

/// Claude models, for when the catalog cannot be fetched.
pub(crate) const MODELS: &[&str] = &[
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-opus-4-5",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "claude-opus-4-1",
    "claude-sonnet-4-0",
];
use subgate_http::OutboundRequest;
use subgate_protocol::anthropic::VERSION;

use crate::common::{base_headers, join};
use crate::verdict::{
    Failure, Quota, Rest, Scope, WindowHeaders, header_text, header_windows, parse_instant,
};
use crate::{Account, Credential};

const API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");

#[derive(Debug)]
pub(crate) struct Anthropic {
    base_url: Url,
    headers: Vec<(String, SecretString)>,
}

impl Anthropic {
    pub(crate) fn new(config: &ProviderConfig) -> Self {
        Self {
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
        }
    }

    fn headers(&self, account: &Account, json_body: bool, client: Option<&HeaderMap>) -> HeaderMap {
        let mut headers = base_headers(&self.headers, json_body);
        headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static(VERSION));
        if let Credential::ApiKey(key) = &account.credential
            && let Ok(value) = HeaderValue::try_from(expose(key))
        {
            headers.insert(API_KEY, value);
        }
        // The client's betas (an Anthropic client's, on a pass-through).
        if let Some(beta) = client.and_then(|client| client.get(ANTHROPIC_BETA)) {
            headers.insert(ANTHROPIC_BETA, beta.clone());
        }
        headers
    }

    pub(crate) fn messages_request(
        &self,
        account: &Account,
        body: Bytes,
        client: Option<&HeaderMap>,
    ) -> OutboundRequest {
        OutboundRequest {
            method: Method::POST,
            url: join(&self.base_url, "v1/messages"),
            headers: self.headers(account, true, client),
            body,
        }
    }

    pub(crate) fn count_request(
        &self,
        account: &Account,
        body: Bytes,
        client: Option<&HeaderMap>,
    ) -> OutboundRequest {
        OutboundRequest {
            method: Method::POST,
            url: join(&self.base_url, "v1/messages/count_tokens"),
            headers: self.headers(account, true, client),
            body,
        }
    }

    pub(crate) fn models_request(&self, account: &Account) -> OutboundRequest {
        let mut url = join(&self.base_url, "v1/models");
        url.set_query(Some("limit=1000"));
        OutboundRequest {
            method: Method::GET,
            url,
            headers: self.headers(account, false, None),
            body: Bytes::new(),
        }
    }

    pub(crate) fn header_secrets(&self) -> impl Iterator<Item = &str> {
        crate::common::header_secrets(&self.headers)
    }
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

pub(crate) fn parse_models(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    Ok(serde_json::from_slice::<ModelList>(body)?
        .data
        .into_iter()
        .map(|entry| entry.id)
        .collect())
}

/// 529 is Anthropic overloaded (for this model, not this account). A 429
/// without `retry-after` waits for the latest reset among the windows the
/// headers show used up, or the unified (subscription) reset.
pub(crate) fn classify_failure(status: StatusCode, headers: &HeaderMap, now: i64) -> Failure {
    let mut failure = Failure::from_status(status, headers);
    match status.as_u16() {
        529 => {
            failure.class = FailureClass::UpstreamFault;
            failure.rest = Some(Rest::Faulty);
            failure.scope = Scope::Model;
        }
        429 if failure.retry_after.is_none() => {
            let until = quota_from_headers(headers).exhausted_until().or_else(|| {
                header_text(headers, "anthropic-ratelimit-unified-reset").and_then(parse_instant)
            });
            failure.retry_after = until
                .and_then(|until| u64::try_from(until - now).ok())
                .map(std::time::Duration::from_millis);
        }
        _ => {}
    }
    failure
}

/// `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
/// {limit,remaining,reset}`; resets are RFC 3339 times.
pub(crate) fn quota_from_headers(headers: &HeaderMap) -> Quota {
    const WINDOWS: [WindowHeaders; 4] = [
        WindowHeaders {
            name: "requests",
            limit: "anthropic-ratelimit-requests-limit",
            remaining: "anthropic-ratelimit-requests-remaining",
            reset: "anthropic-ratelimit-requests-reset",
        },
        WindowHeaders {
            name: "tokens",
            limit: "anthropic-ratelimit-tokens-limit",
            remaining: "anthropic-ratelimit-tokens-remaining",
            reset: "anthropic-ratelimit-tokens-reset",
        },
        WindowHeaders {
            name: "input-tokens",
            limit: "anthropic-ratelimit-input-tokens-limit",
            remaining: "anthropic-ratelimit-input-tokens-remaining",
            reset: "anthropic-ratelimit-input-tokens-reset",
        },
        WindowHeaders {
            name: "output-tokens",
            limit: "anthropic-ratelimit-output-tokens-limit",
            remaining: "anthropic-ratelimit-output-tokens-remaining",
            reset: "anthropic-ratelimit-output-tokens-reset",
        },
    ];
    header_windows(headers, &WINDOWS, parse_instant)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn requests_carry_key_version_and_client_betas() {
        let anthropic = Anthropic {
            base_url: Url::parse("http://127.0.0.1:9/").unwrap(),
            headers: Vec::new(),
        };
        let account = Account {
            id: "a".into(),
            name: "a#1".into(),
            priority: 0,
            credential: Credential::ApiKey(SecretString::from("sk-ant-1")),
        };
        let mut client = HeaderMap::new();
        client.insert(
            ANTHROPIC_BETA,
            HeaderValue::from_static("interleaved-thinking-2025-05-14"),
        );
        let request =
            anthropic.messages_request(&account, Bytes::from_static(b"{}"), Some(&client));
        assert_eq!(request.url.as_str(), "http://127.0.0.1:9/v1/messages");
        assert_eq!(request.headers["x-api-key"], "sk-ant-1");
        assert_eq!(request.headers["anthropic-version"], "2023-06-01");
        assert_eq!(
            request.headers["anthropic-beta"],
            "interleaved-thinking-2025-05-14"
        );
        assert!(request.headers.get("authorization").is_none());
        assert_eq!(
            anthropic.models_request(&account).url.as_str(),
            "http://127.0.0.1:9/v1/models?limit=1000"
        );
        assert_eq!(
            classify_failure(StatusCode::from_u16(529).unwrap(), &HeaderMap::new(), 0).rest,
            Some(Rest::Faulty)
        );
        assert_eq!(
            parse_models(
                br#"{"data":[{"type":"model","id":"claude-sonnet-4-5"}],"has_more":false}"#
            )
            .unwrap(),
            ["claude-sonnet-4-5"]
        );
    }

    #[test]
    fn a_429_without_retry_after_waits_for_the_used_up_window() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2026-01-01T00:01:00Z"),
            ("anthropic-ratelimit-tokens-limit", "40000"),
            ("anthropic-ratelimit-tokens-remaining", "39000"),
            ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:05Z"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let now = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let failure = classify_failure(StatusCode::TOO_MANY_REQUESTS, &headers, now);
        assert_eq!(failure.rest, Some(Rest::RateLimited));
        assert_eq!(failure.retry_after, Some(std::time::Duration::from_mins(1)));
        let quota = quota_from_headers(&headers);
        assert_eq!(quota.tightest().unwrap().name, "requests");
        assert_eq!(quota.windows[1].resets_at, Some(now + 5_000));
    }
}
