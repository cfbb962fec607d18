//! A Kiro subscription (`reference/protocols.md` §5): Claude and other
//! models through AWS CodeWhisperer, the service behind Kiro IDE and
//! kiro-cli.
//!
//! Requests go, as Kiro IDE sends them, to
//! `POST https://q.{region}.amazonaws.com/generateAssistantResponse` with
//! the login's bearer token and the IDE's identity headers; the body is a
//! CodeWhisperer conversation written from the canonical request by
//! [`subgate_protocol::kiro`] ([`codec`] adds what this provider remembers
//! between requests), and the answer is an AWS event stream. The region is
//! the profile ARN's (the auth region can differ); a configured `base_url`
//! other than the default sends every login there instead.
//!
//! Logins come from Kiro IDE's token file or kiro-cli's database
//! ([`cli_file`]): "social" ones (Google, GitHub) refresh at Kiro's desktop
//! auth service, `IdC` ones (Builder ID, Identity Center) at AWS SSO OIDC with
//! their registered client ([`auth`]).
//!
//! What rests on one source only (marked \[1\] in the reference) is kept in
//! named constants and small functions here: the identity strings, the
//! error reasons, the model-name rules, the usage endpoint's shape. If one
//! proves wrong, it is changed in one place.

pub(crate) mod auth;
pub(crate) mod cli_file;
mod codec;

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subgate_config::{KIRO_DEFAULT_BASE_URL, ProviderConfig, Url};
use subgate_core::SecretString;
use subgate_http::OutboundRequest;

pub(crate) use auth::Endpoints;
pub(crate) use codec::Truncations;

use crate::common::{base_headers, join};
use crate::oauth::with_query;
use crate::verdict::{Failure, Quota, QuotaWindow, Rest, Scope};
use crate::{Account, Credential};

/// Kiro IDE's version in its identity strings \[2+ structure, value drifts\];
/// `headers` in the config overrides the user agents whole.
const IDE_VERSION: &str = "0.7.45";
/// The AWS SDK the IDE's user agent names.
const SDK: &str = "aws-sdk-js/1.0.27";

/// The models Kiro serves when its catalog cannot be fetched (kiro-gateway's
/// fallback list \[1\]).
pub(crate) const MODELS: &[&str] = &[
    "auto",
    "claude-sonnet-4.5",
    "claude-sonnet-4",
    "claude-haiku-4.5",
    "claude-opus-4.5",
];

/// Where the model's input limit is unknown: Claude's.
pub(crate) const DEFAULT_MAX_INPUT_TOKENS: u64 = 200_000;

/// The largest conversation sent: kiro-gateway's practical limit \[1\];
/// past it Kiro answers `CONTENT_LENGTH_EXCEEDS_THRESHOLD`.
pub(crate) const MAX_REQUEST_BYTES: usize = 600_000;

#[derive(Debug)]
pub(crate) struct Kiro {
    base_url: Url,
    /// The base was left at its default: each login goes to its region.
    regional: bool,
    headers: Vec<(String, SecretString)>,
    pub(crate) endpoints: Endpoints,
    thinking_tags: bool,
    /// Each model's input limit, from the catalog.
    input_limits: RwLock<HashMap<String, u64>>,
    truncations: Truncations,
}

impl Kiro {
    pub(crate) fn new(config: &ProviderConfig) -> Self {
        Self {
            regional: config.base_url.as_str().trim_end_matches('/') == KIRO_DEFAULT_BASE_URL,
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
            endpoints: Endpoints::new(config.auth_url.as_ref()),
            thinking_tags: config.thinking_tags,
            input_limits: RwLock::new(HashMap::new()),
            truncations: Truncations::default(),
        }
    }

    /// The API base for an account: its profile's region, unless the config
    /// named a base.
    fn api_base(&self, account: &Account) -> Url {
        if self.regional
            && let Some(region) = account
                .credential
                .session()
                .and_then(|session| session.tokens().login.profile_arn.clone())
                .as_deref()
                .and_then(arn_region)
            && let Ok(url) = Url::parse(&format!("https://q.{region}.amazonaws.com"))
        {
            return url;
        }
        self.base_url.clone()
    }

    /// The IDE's headers for `account`, with its bearer and a fresh
    /// invocation id.
    fn api_headers(&self, account: &Account, json_body: bool) -> (HeaderMap, Option<String>) {
        let mut headers = base_headers(&self.headers, json_body);
        headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
        let machine = machine_id(&account.id);
        for (name, value) in [
            (
                "user-agent",
                format!(
                    "{SDK} ua/2.1 os/linux lang/js md/nodejs#22.21.1 api/codewhispererstreaming#1.0.27 m/E KiroIDE-{IDE_VERSION}-{machine}"
                ),
            ),
            (
                "x-amz-user-agent",
                format!("{SDK} KiroIDE-{IDE_VERSION}-{machine}"),
            ),
        ] {
            if !headers.contains_key(name)
                && let Ok(value) = HeaderValue::try_from(value)
            {
                headers.insert(name, value);
            }
        }
        if let Ok(value) = HeaderValue::try_from(uuid::Uuid::now_v7().to_string()) {
            headers.insert("amz-sdk-invocation-id", value);
        }
        headers.insert(
            "amz-sdk-request",
            HeaderValue::from_static("attempt=1; max=3"),
        );
        let mut profile = None;
        if let Credential::Login(session) = &account.credential {
            let tokens = session.tokens();
            if let Ok(value) = HeaderValue::try_from(format!("Bearer {}", tokens.bearer())) {
                headers.insert(http::header::AUTHORIZATION, value);
            }
            profile.clone_from(&tokens.login.profile_arn);
        }
        (headers, profile)
    }

    /// `POST {api}/generateAssistantResponse` with a body [`codec`] wrote.
    pub(crate) fn generate_request(&self, account: &Account, body: Bytes) -> OutboundRequest {
        let (mut headers, _) = self.api_headers(account, true);
        headers.insert(
            "x-amzn-codewhisperer-optout",
            HeaderValue::from_static("true"),
        );
        headers.insert("x-amzn-kiro-agent-mode", HeaderValue::from_static("vibe"));
        OutboundRequest {
            method: Method::POST,
            url: join(&self.api_base(account), "generateAssistantResponse"),
            headers,
            body,
        }
    }

    /// A `GET` on the API with the IDE's query: `origin=AI_EDITOR` and the
    /// profile ARN.
    fn api_get(&self, account: &Account, path: &str, query: &[(&str, &str)]) -> OutboundRequest {
        let (mut headers, profile) = self.api_headers(account, false);
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let mut pairs = vec![("origin", "AI_EDITOR")];
        pairs.extend_from_slice(query);
        if let Some(profile) = profile.as_deref() {
            pairs.push(("profileArn", profile));
            if let Ok(value) = HeaderValue::try_from(profile) {
                headers.insert("x-amzn-kiro-profile-arn", value);
            }
        }
        OutboundRequest {
            method: Method::GET,
            url: with_query(join(&self.api_base(account), path), &pairs),
            headers,
            body: Bytes::new(),
        }
    }

    /// `GET {api}/ListAvailableModels` (one page of 50: more than Kiro has).
    pub(crate) fn models_request(&self, account: &Account) -> OutboundRequest {
        self.api_get(account, "ListAvailableModels", &[("maxResults", "50")])
    }

    /// Reads the catalog, noting each model's input limit.
    pub(crate) fn parse_models(&self, body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
        #[derive(Deserialize)]
        struct Catalog {
            models: Vec<Model>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Model {
            model_id: String,
            token_limits: Option<Limits>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Limits {
            max_input_tokens: Option<u64>,
        }
        let catalog: Catalog = serde_json::from_slice(body)?;
        let mut limits = self
            .input_limits
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for model in &catalog.models {
            if let Some(max) = model
                .token_limits
                .as_ref()
                .and_then(|limits| limits.max_input_tokens)
            {
                limits.insert(model.model_id.clone(), max);
            }
        }
        Ok(catalog
            .models
            .into_iter()
            .map(|model| model.model_id)
            .collect())
    }

    /// A model's input limit, for estimating usage from Kiro's context
    /// percentage.
    fn max_input_tokens(&self, model: &str) -> u64 {
        self.input_limits
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(model)
            .copied()
            .unwrap_or(DEFAULT_MAX_INPUT_TOKENS)
    }

    /// `GET {api}/getUsageLimits` \[1\].
    pub(crate) fn usage_request(&self, account: &Account) -> OutboundRequest {
        self.api_get(
            account,
            "getUsageLimits",
            &[("resourceType", "AGENTIC_REQUEST")],
        )
    }

    pub(crate) fn header_secrets(&self) -> impl Iterator<Item = &str> {
        crate::common::header_secrets(&self.headers)
    }
}

/// The region in a profile ARN (`arn:aws:codewhisperer:{region}:…`).
pub(crate) fn arn_region(arn: &str) -> Option<&str> {
    let region = arn
        .strip_prefix("arn:aws:codewhisperer:")?
        .split(':')
        .next()?;
    (!region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    .then_some(region)
}

/// The 64-hex machine id Kiro's user agent ends with, stable per account
/// (so two accounts never look like one machine switching logins).
fn machine_id(account_id: &str) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(format!("subgate-kiro-{account_id}").as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The model id Kiro knows for a client's name \[1\]: dates and `-latest`
/// dropped, version numbers dotted (`claude-sonnet-4-5-20250929` →
/// `claude-sonnet-4.5`, `claude-3-7-sonnet` → `claude-3.7-sonnet`). Names
/// already in Kiro's form pass unchanged.
pub(crate) fn model_id(name: &str) -> String {
    let name = name.strip_suffix("-latest").unwrap_or(name);
    let mut parts: Vec<&str> = name.split('-').collect();
    if parts
        .last()
        .is_some_and(|last| last.len() == 8 && last.chars().all(|c| c.is_ascii_digit()))
    {
        parts.pop();
    }
    let mut out = String::with_capacity(name.len());
    let mut index = 0;
    while index < parts.len() {
        let part = parts[index];
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(part);
        // A one-digit number followed by another: a dotted version.
        let digit = |text: &str| text.len() == 1 && text.chars().all(|c| c.is_ascii_digit());
        if digit(part) && parts.get(index + 1).is_some_and(|next| digit(next)) {
            out.push('.');
            out.push_str(parts[index + 1]);
            index += 1;
        }
        index += 1;
    }
    out
}

/// Reads `getUsageLimits` \[1\]: one monthly window of credits, its limit
/// the base plus an active free trial plus active bonuses.
pub(crate) fn parse_usage(body: &[u8]) -> Result<Quota, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Limits {
        next_date_reset: Option<f64>,
        #[serde(default)]
        usage_breakdown_list: Vec<Breakdown>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Breakdown {
        current_usage_with_precision: Option<f64>,
        current_usage: Option<f64>,
        usage_limit_with_precision: Option<f64>,
        usage_limit: Option<f64>,
        next_date_reset: Option<f64>,
        #[serde(default)]
        bonuses: Vec<Extra>,
        free_trial_info: Option<Extra>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Extra {
        current_usage_with_precision: Option<f64>,
        current_usage: Option<f64>,
        usage_limit_with_precision: Option<f64>,
        usage_limit: Option<f64>,
        status: Option<String>,
        free_trial_status: Option<String>,
    }
    let limits: Limits = serde_json::from_slice(body)?;
    let windows = limits
        .usage_breakdown_list
        .iter()
        .filter_map(|item| {
            let mut used = item.current_usage_with_precision.or(item.current_usage)?;
            let mut limit = item.usage_limit_with_precision.or(item.usage_limit)?;
            let active = item
                .bonuses
                .iter()
                .chain(&item.free_trial_info)
                .filter(|extra| {
                    extra
                        .status
                        .as_deref()
                        .or(extra.free_trial_status.as_deref())
                        == Some("ACTIVE")
                });
            for extra in active {
                used += extra
                    .current_usage_with_precision
                    .or(extra.current_usage)
                    .unwrap_or(0.0);
                limit += extra
                    .usage_limit_with_precision
                    .or(extra.usage_limit)
                    .unwrap_or(0.0);
            }
            #[expect(
                clippy::cast_possible_truncation,
                reason = "Unix seconds times 1000 fit an i64"
            )]
            let resets_at = item
                .next_date_reset
                .or(limits.next_date_reset)
                .map(|seconds| (seconds * 1000.0) as i64);
            Some(QuotaWindow {
                model: None,
                name: "monthly".to_owned(),
                limit,
                remaining: (limit - used).max(0.0),
                resets_at,
            })
        })
        .take(1)
        .collect();
    Ok(Quota { windows })
}

/// What Kiro's refusals mean \[§5.5\]: 402 `MONTHLY_REQUEST_COUNT` or
/// `OVERAGE_REQUEST_LIMIT_EXCEEDED` \[1\] is the month's quota (until the
/// reset the last usage report named); 403, or a body saying the bearer
/// token is invalid \[1\], is a token to renew; 400 `INVALID_MODEL_ID` \[1\]
/// is a model this account does not have; other 400s (too long, badly
/// formed) are the request's; 429 is a short cooldown.
pub(crate) fn classify_failure(status: StatusCode, headers: &HeaderMap, body: &str) -> Failure {
    let mut failure = Failure::from_status(status, headers);
    let reason = error_reason(body);
    match reason.as_deref() {
        Some("MONTHLY_REQUEST_COUNT" | "OVERAGE_REQUEST_LIMIT_EXCEEDED") => {
            failure.rest = Some(Rest::QuotaExhausted);
            failure.scope = Scope::Account;
        }
        Some("INVALID_MODEL_ID") => {
            failure.rest = Some(Rest::ModelUnavailable);
            failure.scope = Scope::Model;
        }
        _ if body.contains("The bearer token included in the request is invalid") => {
            failure.rest = Some(Rest::CredentialInvalid);
            failure.scope = Scope::Account;
        }
        _ => {}
    }
    if status == StatusCode::TOO_MANY_REQUESTS && failure.retry_after.is_none() {
        // Kiro names no wait; kiro-gateway backs off 1–4 s.
        failure.retry_after = Some(Duration::from_secs(5));
    }
    failure
}

/// The `reason` of Kiro's error body, at the top or under `error` (both
/// seen \[1\]).
fn error_reason(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value
        .get("reason")
        .or_else(|| value.pointer("/error/reason"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

/// Whether an answer with `status` means the token must be renewed and the
/// request sent again: 403 is what Kiro sends for an expired token \[2+\].
pub(crate) fn wants_new_token(status: StatusCode) -> bool {
    status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED
}

#[cfg(test)]
mod tests;
