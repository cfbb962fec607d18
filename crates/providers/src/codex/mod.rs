//! A ChatGPT Plus/Pro/Team subscription, as Codex CLI uses it
//! (`reference/protocols.md` §2).
//!
//! The Responses API at `{base}/responses` (base
//! `https://chatgpt.com/backend-api/codex`) with the login's bearer token,
//! `chatgpt-account-id` from the ID token's claims, Codex CLI's
//! `originator` and `user-agent` (overridable in the entry's `headers`,
//! because client versions drift), and a `session_id`. Bodies follow the
//! backend's rules ([`body`]); it only streams, so a client that did not ask
//! for a stream gets the stream assembled. Quota: the `x-codex-*` headers
//! of every answer, `usage_limit_reached` 429s with their reset, and
//! `GET {backend}/wham/usage`. Catalog: `GET {base}/models?client_version=`.

mod body;
pub(crate) mod cli_file;
mod login;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use subgate_config::{ProviderConfig, Url};
use subgate_core::SecretString;
use subgate_http::OutboundRequest;

pub(crate) use login::{CALLBACK, Endpoints, read_tokens};

use crate::common::{base_headers, join};
use crate::verdict::{Failure, Quota, QuotaWindow, Rest, Scope, header_number, header_text};
use crate::{Account, Credential};

/// The model family the backend serves.
pub(crate) const FAMILY: &str = "gpt-5";
/// Who the requests say they come from.
pub(crate) const ORIGINATOR: &str = "codex_cli_rs";
/// The Codex CLI version named in the user agent and the catalog request.
const CLIENT_VERSION: &str = "0.146.0";

const ACCOUNT_ID: HeaderName = HeaderName::from_static("chatgpt-account-id");
const SESSION_ID: HeaderName = HeaderName::from_static("session_id");

/// Models the backend serves (`reference/protocols.md` §2.6), for when the
/// catalog cannot be fetched.
pub(crate) const MODELS: &[&str] = &[
    "gpt-5.4",
    "gpt-5.3-codex",
    "gpt-5.3-codex-spark",
    "gpt-5.2-codex",
    "gpt-5.2",
    "gpt-5.1-codex-max",
    "gpt-5.1-codex-mini",
    "gpt-5.1",
];

#[derive(Debug)]
pub(crate) struct Codex {
    base_url: Url,
    headers: Vec<(String, SecretString)>,
    user_agent: String,
    pub(crate) endpoints: Endpoints,
}

impl Codex {
    pub(crate) fn new(config: &ProviderConfig) -> Self {
        Self {
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
            user_agent: format!(
                "{ORIGINATOR}/{CLIENT_VERSION} ({}; {}) subgate",
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
            endpoints: Endpoints::new(config.auth_url.as_ref()),
        }
    }

    fn headers(&self, account: &Account, json_body: bool) -> HeaderMap {
        let mut headers = base_headers(&self.headers, json_body);
        if !headers.contains_key("originator") {
            headers.insert("originator", HeaderValue::from_static(ORIGINATOR));
        }
        if !headers.contains_key(http::header::USER_AGENT)
            && let Ok(value) = HeaderValue::try_from(&self.user_agent)
        {
            headers.insert(http::header::USER_AGENT, value);
        }
        if let Credential::Login(session) = &account.credential {
            let tokens = session.tokens();
            if let Ok(value) = HeaderValue::try_from(format!("Bearer {}", tokens.bearer())) {
                headers.insert(http::header::AUTHORIZATION, value);
            }
            if let Some(id) = tokens.login.account_id.as_deref()
                && let Ok(value) = HeaderValue::try_from(id)
            {
                headers.insert(ACCOUNT_ID, value);
            }
        }
        headers
    }

    /// `POST {base}/responses` with the body edited for the backend. The
    /// client's `session_id` is passed on (Codex CLI's own); otherwise the
    /// request gets a new one.
    pub(crate) fn responses_request(
        &self,
        account: &Account,
        body: Bytes,
        client: Option<&HeaderMap>,
    ) -> OutboundRequest {
        let body = body::prepare(&body).map_or(body, Bytes::from);
        let mut headers = self.headers(account, true);
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        let session = client
            .and_then(|client| client.get(SESSION_ID))
            .cloned()
            .or_else(|| HeaderValue::try_from(uuid::Uuid::now_v7().to_string()).ok());
        if let Some(session) = session {
            headers.insert(SESSION_ID, session);
        }
        OutboundRequest {
            method: Method::POST,
            url: join(&self.base_url, "responses"),
            headers,
            body,
        }
    }

    /// `GET {base}/models?client_version=…`.
    pub(crate) fn models_request(&self, account: &Account) -> OutboundRequest {
        let mut url = join(&self.base_url, "models");
        url.query_pairs_mut()
            .append_pair("client_version", CLIENT_VERSION);
        OutboundRequest {
            method: Method::GET,
            url,
            headers: self.headers(account, false),
            body: Bytes::new(),
        }
    }

    /// `GET {backend}/wham/usage`, beside the Codex base.
    pub(crate) fn usage_request(&self, account: &Account) -> OutboundRequest {
        let mut url = self.base_url.clone();
        let path = url.path().trim_end_matches('/');
        let backend = path.strip_suffix("/codex").unwrap_or(path).to_owned();
        url.set_path(&format!("{backend}/wham/usage"));
        OutboundRequest {
            method: Method::GET,
            url,
            headers: self.headers(account, false),
            body: Bytes::new(),
        }
    }

    pub(crate) fn header_secrets(&self) -> impl Iterator<Item = &str> {
        crate::common::header_secrets(&self.headers)
    }
}

/// Reads the catalog: `{"models":[{"slug":…},…]}`.
pub(crate) fn parse_models(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Catalog {
        models: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        slug: String,
    }
    let catalog: Catalog = serde_json::from_slice(body)?;
    Ok(catalog.models.into_iter().map(|model| model.slug).collect())
}

/// A window's name from its length: `5h`, `weekly`, else `<minutes>m`.
fn window_name(minutes: Option<f64>, fallback: &str) -> String {
    match minutes {
        Some(minutes) if (minutes - 300.0).abs() < 1.0 => "5h".to_owned(),
        Some(minutes) if (minutes - 10_080.0).abs() < 1.0 => "weekly".to_owned(),
        #[expect(
            clippy::cast_possible_truncation,
            reason = "window lengths are small whole numbers of minutes"
        )]
        Some(minutes) if minutes > 0.0 => format!("{}m", minutes.round() as i64),
        _ => fallback.to_owned(),
    }
}

fn window(name: String, used_percent: f64, resets_at: Option<i64>) -> QuotaWindow {
    QuotaWindow {
        model: None,
        name,
        limit: 100.0,
        remaining: 100.0 - used_percent.clamp(0.0, 100.0),
        resets_at,
    }
}

/// The `x-codex-{primary,secondary}-*` headers: each window's used share,
/// length and reset (Unix seconds).
pub(crate) fn quota_from_headers(headers: &HeaderMap) -> Quota {
    let windows = ["primary", "secondary"]
        .into_iter()
        .filter_map(|family| {
            let used = header_number(headers, &format!("x-codex-{family}-used-percent"))?;
            let minutes = header_number(headers, &format!("x-codex-{family}-window-minutes"));
            let resets_at = header_text(headers, &format!("x-codex-{family}-reset-at"))
                .and_then(crate::verdict::parse_instant);
            Some(window(window_name(minutes, family), used, resets_at))
        })
        .collect();
    Quota { windows }
}

/// Reads `/wham/usage`: `rate_limit.{primary,secondary}_window`.
pub(crate) fn parse_usage(body: &[u8]) -> Result<Quota, serde_json::Error> {
    #[derive(Deserialize)]
    struct Usage {
        rate_limit: Option<Limits>,
    }
    #[derive(Deserialize)]
    struct Limits {
        primary_window: Option<Window>,
        secondary_window: Option<Window>,
    }
    #[derive(Deserialize)]
    struct Window {
        used_percent: Option<f64>,
        limit_window_seconds: Option<f64>,
        reset_at: Option<i64>,
    }
    let usage: Usage = serde_json::from_slice(body)?;
    let Some(limits) = usage.rate_limit else {
        return Ok(Quota::default());
    };
    let windows = [
        ("primary", limits.primary_window),
        ("secondary", limits.secondary_window),
    ]
    .into_iter()
    .filter_map(|(family, found)| {
        let found = found?;
        let minutes = found.limit_window_seconds.map(|seconds| seconds / 60.0);
        Some(window(
            window_name(minutes, family),
            found.used_percent?,
            found.reset_at.map(|seconds| seconds * 1000),
        ))
    })
    .collect();
    Ok(Quota { windows })
}

/// A 429 saying the plan's usage limit is reached is quota until the reset
/// it names; other answers read as OpenAI's do.
pub(crate) fn classify_failure(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: i64,
) -> Failure {
    #[derive(Deserialize)]
    struct Envelope {
        error: Option<Limit>,
    }
    #[derive(Deserialize)]
    struct Limit {
        #[serde(rename = "type")]
        kind: Option<String>,
        code: Option<String>,
        resets_at: Option<i64>,
        resets_in_seconds: Option<u64>,
    }
    let mut failure = crate::openai_compatible::classify_failure(status, headers, body, now);
    if status != StatusCode::TOO_MANY_REQUESTS {
        return failure;
    }
    let Ok(Envelope { error: Some(limit) }) = serde_json::from_str::<Envelope>(body) else {
        return failure;
    };
    let word = limit.kind.as_deref().or(limit.code.as_deref());
    if matches!(word, Some("usage_limit_reached" | "usage_not_included")) {
        failure.rest = Some(Rest::QuotaExhausted);
        failure.scope = Scope::Account;
        failure.retry_after = limit
            .resets_in_seconds
            .map(Duration::from_secs)
            .or_else(|| {
                let until = limit.resets_at? * 1000;
                u64::try_from(until - now).ok().map(Duration::from_millis)
            });
    }
    failure
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::session::Login;

    fn codex() -> Codex {
        let mut config = crate::common::test_config(
            subgate_core::ProviderKind::Codex,
            "http://127.0.0.1:9/backend-api/codex",
            &[],
            Vec::new(),
        );
        config.accounts.clear();
        Codex::new(&config)
    }

    fn account() -> Account {
        Account::login(
            "id".into(),
            "me".into(),
            0,
            Login {
                access_token: "eyJ.at".into(),
                account_id: Some("acc-1".into()),
                ..Login::default()
            },
        )
    }

    #[test]
    fn requests_carry_the_account_the_originator_and_a_session() {
        let mut client = HeaderMap::new();
        client.insert(SESSION_ID, HeaderValue::from_static("s-1"));
        let request = codex().responses_request(
            &account(),
            Bytes::from_static(br#"{"model":"gpt-5.2-codex","input":[],"max_output_tokens":9}"#),
            Some(&client),
        );
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:9/backend-api/codex/responses"
        );
        assert_eq!(request.headers["authorization"], "Bearer eyJ.at");
        assert_eq!(request.headers["chatgpt-account-id"], "acc-1");
        assert_eq!(request.headers["originator"], ORIGINATOR);
        assert_eq!(request.headers["session_id"], "s-1");
        assert_eq!(request.headers["accept"], "text/event-stream");
        assert!(
            request.headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("codex_cli_rs/0.146.0 (")
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["stream"], true);
        assert!(body.get("max_output_tokens").is_none());
        let fresh = codex().responses_request(&account(), Bytes::from_static(b"{}"), None);
        assert_eq!(fresh.headers["session_id"].len(), 36);
        assert_eq!(
            codex().usage_request(&account()).url.as_str(),
            "http://127.0.0.1:9/backend-api/wham/usage"
        );
        assert_eq!(
            codex().models_request(&account()).url.as_str(),
            "http://127.0.0.1:9/backend-api/codex/models?client_version=0.146.0"
        );
    }

    #[test]
    fn usage_limits_are_quota_until_their_reset() {
        let now = 1_767_225_600_000;
        let body = r#"{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus","resets_at":1767229200,"resets_in_seconds":3600}}"#;
        let failure = classify_failure(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body, now);
        assert_eq!(failure.rest, Some(Rest::QuotaExhausted));
        assert_eq!(failure.scope, Scope::Account);
        assert_eq!(failure.retry_after, Some(Duration::from_hours(1)));
        let only_at = r#"{"error":{"type":"usage_limit_reached","resets_at":1767227400}}"#;
        let failure = classify_failure(
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            only_at,
            now,
        );
        assert_eq!(failure.retry_after, Some(Duration::from_mins(30)));
        let plain = classify_failure(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), "{}", now);
        assert_eq!(plain.rest, Some(Rest::RateLimited));
    }

    #[test]
    fn windows_come_from_headers_and_the_usage_endpoint() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-codex-primary-used-percent", "25.5"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-at", "1767229200"),
            ("x-codex-secondary-used-percent", "80"),
            ("x-codex-secondary-window-minutes", "10080"),
            ("x-codex-secondary-reset-at", "1767600000"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let quota = quota_from_headers(&headers);
        assert_eq!(quota.windows.len(), 2);
        assert_eq!(quota.windows[0].name, "5h");
        assert!((quota.windows[0].remaining - 74.5).abs() < 1e-9);
        assert_eq!(quota.windows[0].resets_at, Some(1_767_229_200_000));
        assert_eq!(quota.tightest().unwrap().name, "weekly");
        let usage = parse_usage(br#"{"plan_type":"plus","rate_limit":{"primary_window":{"used_percent":100,"limit_window_seconds":18000,"reset_at":1767229200},"secondary_window":null}}"#).unwrap();
        assert_eq!(usage.windows.len(), 1);
        assert_eq!(usage.exhausted_until(), Some(1_767_229_200_000));
        assert_eq!(
            parse_models(
                br#"{"models":[{"slug":"gpt-5.2-codex","priority":1},{"slug":"gpt-5.2"}]}"#
            )
            .unwrap(),
            vec!["gpt-5.2-codex", "gpt-5.2"]
        );
    }
}
