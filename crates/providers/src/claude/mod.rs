//! A Claude Pro/Max subscription, as Claude Code uses it
//! (`reference/protocols.md` §1.1–1.3, §1.5).
//!
//! Anthropic Messages at `{base}/v1/messages?beta=true` with the login's
//! bearer token and no `x-api-key`; `anthropic-beta` carrying
//! `oauth-2025-04-20` and Claude Code's betas (plus the client's own on a
//! pass-through); Claude Code's `user-agent`, `x-app: cli` and
//! `anthropic-dangerous-direct-browser-access`. Each identity header can be
//! overridden in the entry's `headers`, because client versions drift.
//! Bodies get the identity block and tool renames ([`body`]). Quota: the
//! unified rate-limit headers on a 429 and `GET {base}/api/oauth/usage`.

mod body;
pub(crate) mod cli_file;
mod login;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use subgate_config::{ProviderConfig, Url};
use subgate_core::SecretString;
use subgate_http::OutboundRequest;
use subgate_protocol::anthropic::VERSION;

pub(crate) use body::Restore;
pub use body::ToolNames;
pub(crate) use login::{CALLBACK, Endpoints, read_tokens};

use crate::common::{base_headers, join};
use crate::verdict::{Failure, Quota, QuotaWindow, Rest, Scope, header_text, parse_instant};
use crate::{Account, Credential};

/// Claude Code's version in the user agent; override with
/// `headers = { "user-agent" = "claude-cli/X.Y.Z (external, cli)" }`.
const USER_AGENT: &str = "claude-cli/2.1.87 (external, cli)";
/// Betas every request carries: Claude Code's, and the one OAuth needs.
const BETAS: [&str; 4] = [
    "claude-code-20250219",
    "oauth-2025-04-20",
    "interleaved-thinking-2025-05-14",
    "fine-grained-tool-streaming-2025-05-14",
];
/// The beta the usage endpoint needs.
const OAUTH_BETA: &str = "oauth-2025-04-20";

const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");

#[derive(Debug)]
pub(crate) struct Claude {
    base_url: Url,
    headers: Vec<(String, SecretString)>,
    pub(crate) endpoints: Endpoints,
}

impl Claude {
    pub(crate) fn new(config: &ProviderConfig) -> Self {
        Self {
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
            endpoints: Endpoints::new(config.auth_url.as_ref()),
        }
    }

    fn headers(&self, account: &Account, json_body: bool, client: Option<&HeaderMap>) -> HeaderMap {
        let mut headers = base_headers(&self.headers, json_body);
        headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static(VERSION));
        for (name, value) in [
            ("user-agent", USER_AGENT),
            ("x-app", "cli"),
            ("anthropic-dangerous-direct-browser-access", "true"),
        ] {
            if !headers.contains_key(name) {
                headers.insert(name, HeaderValue::from_static(value));
            }
        }
        let mut betas: Vec<&str> = BETAS.to_vec();
        if let Some(client) = client.and_then(|client| client.get(ANTHROPIC_BETA))
            && let Ok(client) = client.to_str()
        {
            for beta in client.split(',').map(str::trim) {
                if !beta.is_empty() && !betas.contains(&beta) {
                    betas.push(beta);
                }
            }
        }
        if let Ok(value) = HeaderValue::try_from(betas.join(",")) {
            headers.insert(ANTHROPIC_BETA, value);
        }
        if let Credential::Login(session) = &account.credential
            && let Ok(value) =
                HeaderValue::try_from(format!("Bearer {}", session.tokens().bearer()))
        {
            headers.insert(http::header::AUTHORIZATION, value);
        }
        headers
    }

    /// A Messages request, with the body edited for a subscription; the
    /// renamed tools come back to restore in the answer.
    pub(crate) fn messages_request(
        &self,
        account: &Account,
        body: Bytes,
        client: Option<&HeaderMap>,
    ) -> (OutboundRequest, Option<Arc<ToolNames>>) {
        let (body, names) = match body::prepare(&body) {
            Some((edited, names)) => (Bytes::from(edited), names),
            None => (body, None),
        };
        let mut url = join(&self.base_url, "v1/messages");
        url.set_query(Some("beta=true"));
        let request = OutboundRequest {
            method: Method::POST,
            url,
            headers: self.headers(account, true, client),
            body,
        };
        (request, names)
    }

    pub(crate) fn count_request(
        &self,
        account: &Account,
        body: Bytes,
        client: Option<&HeaderMap>,
    ) -> OutboundRequest {
        let body = body::prepare(&body).map_or(body, |(edited, _)| Bytes::from(edited));
        let mut url = join(&self.base_url, "v1/messages/count_tokens");
        url.set_query(Some("beta=true"));
        OutboundRequest {
            method: Method::POST,
            url,
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

    /// `GET /api/oauth/usage`: the subscription's windows.
    pub(crate) fn usage_request(&self, account: &Account) -> OutboundRequest {
        let mut headers = self.headers(account, false, None);
        headers.insert(ANTHROPIC_BETA, HeaderValue::from_static(OAUTH_BETA));
        OutboundRequest {
            method: Method::GET,
            url: join(&self.base_url, "api/oauth/usage"),
            headers,
            body: Bytes::new(),
        }
    }

    pub(crate) fn header_secrets(&self) -> impl Iterator<Item = &str> {
        crate::common::header_secrets(&self.headers)
    }
}

/// The unified windows: their header names and how they are shown.
const UNIFIED: [(&str, &str, &str, Scope); 3] = [
    (
        "5h",
        "anthropic-ratelimit-unified-5h-status",
        "anthropic-ratelimit-unified-5h-reset",
        Scope::Account,
    ),
    (
        "7d",
        "anthropic-ratelimit-unified-7d-status",
        "anthropic-ratelimit-unified-7d-reset",
        Scope::Account,
    ),
    (
        "7d-model",
        "anthropic-ratelimit-unified-7d_oi-status",
        "anthropic-ratelimit-unified-7d_oi-reset",
        Scope::Model,
    ),
];

/// A 429 whose unified headers show a subscription window `rejected` is
/// the quota used up until that window resets (the latest, if several);
/// otherwise Anthropic's reading applies.
pub(crate) fn classify_failure(status: StatusCode, headers: &HeaderMap, now: i64) -> Failure {
    let mut failure = crate::anthropic::classify_failure(status, headers, now);
    if status != StatusCode::TOO_MANY_REQUESTS {
        return failure;
    }
    let rejected: Vec<(i64, Scope)> = UNIFIED
        .iter()
        .filter(|(_, status, _, _)| header_text(headers, status) == Some("rejected"))
        .filter_map(|(_, _, reset, scope)| {
            Some((header_text(headers, reset).and_then(parse_instant)?, *scope))
        })
        .collect();
    let until = rejected.iter().map(|(until, _)| *until).max().or_else(|| {
        (header_text(headers, "anthropic-ratelimit-unified-status") == Some("rejected"))
            .then(|| {
                header_text(headers, "anthropic-ratelimit-unified-reset").and_then(parse_instant)
            })
            .flatten()
    });
    if let Some(until) = until {
        failure.rest = Some(Rest::QuotaExhausted);
        failure.scope =
            if rejected.iter().all(|(_, scope)| *scope == Scope::Model) && !rejected.is_empty() {
                Scope::Model
            } else {
                Scope::Account
            };
        failure.retry_after = u64::try_from(until - now).ok().map(Duration::from_millis);
    }
    failure
}

#[derive(Deserialize)]
struct Usage {
    five_hour: Option<UsageWindow>,
    seven_day: Option<UsageWindow>,
    seven_day_opus: Option<UsageWindow>,
    seven_day_sonnet: Option<UsageWindow>,
}

#[derive(Deserialize)]
struct UsageWindow {
    utilization: Option<f64>,
    resets_at: Option<String>,
}

/// Reads `/api/oauth/usage`: each window's utilization (percent used) and
/// reset.
pub(crate) fn parse_usage(body: &[u8]) -> Result<Quota, serde_json::Error> {
    let usage: Usage = serde_json::from_slice(body)?;
    let windows = [
        ("5h", usage.five_hour),
        ("7d", usage.seven_day),
        ("7d-opus", usage.seven_day_opus),
        ("7d-sonnet", usage.seven_day_sonnet),
    ]
    .into_iter()
    .filter_map(|(name, window)| {
        let window = window?;
        let used = window.utilization?.clamp(0.0, 100.0);
        Some(QuotaWindow {
            model: None,
            name: name.to_owned(),
            limit: 100.0,
            remaining: 100.0 - used,
            resets_at: window.resets_at.as_deref().and_then(parse_instant),
        })
    })
    .collect();
    Ok(Quota { windows })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::session::Login;

    fn account() -> Account {
        Account::login(
            "id".into(),
            "me".into(),
            0,
            Login {
                access_token: "sk-ant-oat01-abc".into(),
                ..Login::default()
            },
        )
    }

    fn claude(headers: Vec<(String, SecretString)>) -> Claude {
        let mut config = crate::common::test_config(
            subgate_core::ProviderKind::Claude,
            "http://127.0.0.1:9",
            &[],
            headers,
        );
        config.accounts.clear();
        Claude::new(&config)
    }

    #[test]
    fn requests_carry_the_bearer_the_betas_and_claude_codes_identity() {
        let mut client = HeaderMap::new();
        client.insert(
            ANTHROPIC_BETA,
            HeaderValue::from_static("context-1m-2025-08-07, oauth-2025-04-20"),
        );
        let (request, names) = claude(Vec::new()).messages_request(
            &account(),
            Bytes::from_static(br#"{"model":"claude-sonnet-4-5","messages":[]}"#),
            Some(&client),
        );
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:9/v1/messages?beta=true"
        );
        assert_eq!(request.headers["authorization"], "Bearer sk-ant-oat01-abc");
        assert!(request.headers.get("x-api-key").is_none());
        assert_eq!(
            request.headers["anthropic-beta"],
            "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14,context-1m-2025-08-07"
        );
        assert_eq!(request.headers["user-agent"], USER_AGENT);
        assert_eq!(request.headers["x-app"], "cli");
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["system"][0]["text"], body::IDENTITY);
        assert!(names.is_none());
        let custom = claude(vec![(
            "user-agent".into(),
            SecretString::from("claude-cli/9.9.9 (external, cli)"),
        )]);
        let (request, _) = custom.messages_request(&account(), Bytes::new(), None);
        assert_eq!(
            request.headers["user-agent"],
            "claude-cli/9.9.9 (external, cli)"
        );
    }

    #[test]
    fn a_rejected_window_is_quota_until_its_reset() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("anthropic-ratelimit-unified-status", "rejected"),
            ("anthropic-ratelimit-unified-5h-status", "rejected"),
            ("anthropic-ratelimit-unified-5h-reset", "1767229200"),
            ("anthropic-ratelimit-unified-7d-status", "allowed"),
            ("anthropic-ratelimit-unified-7d-reset", "1767600000"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let now = 1_767_225_600_000;
        let failure = classify_failure(StatusCode::TOO_MANY_REQUESTS, &headers, now);
        assert_eq!(failure.rest, Some(Rest::QuotaExhausted));
        assert_eq!(failure.scope, Scope::Account);
        assert_eq!(failure.retry_after, Some(Duration::from_hours(1)));
        let plain = classify_failure(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), now);
        assert_eq!(plain.rest, Some(Rest::RateLimited));
    }

    #[test]
    fn usage_windows_are_read_as_shares_left() {
        let quota = parse_usage(br#"{"five_hour":{"utilization":25.0,"resets_at":"2026-01-01T05:00:00Z"},"seven_day":{"utilization":90,"resets_at":"2026-01-07T00:00:00Z"},"seven_day_opus":null}"#).unwrap();
        assert_eq!(quota.windows.len(), 2);
        assert!((quota.windows[0].remaining - 75.0).abs() < f64::EPSILON);
        assert_eq!(quota.tightest().unwrap().name, "7d");
        assert_eq!(quota.windows[1].resets_at, Some(1_767_744_000_000));
    }
}
