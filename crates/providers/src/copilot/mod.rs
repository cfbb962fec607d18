//! A GitHub Copilot subscription, as its editor plugins use it
//! (`reference/protocols.md` §3).
//!
//! The login is a GitHub token; requests carry the short-lived Copilot API
//! token exchanged from it ([`login`]) and go to the API base that token
//! names. Copilot speaks three dialects, per model: Chat Completions at
//! `/chat/completions`, Responses at `/responses` and Anthropic Messages at
//! `/v1/messages` (no `/v1` for the OpenAI routes). The catalog's
//! `supported_endpoints` says which a model takes; until it has been read,
//! the model's name does. Every request carries the editor's identity
//! headers (overridable in the entry's `headers`, because versions drift),
//! `X-Initiator` (`agent` for a follow-up turn of an agent loop, so it does
//! not count as a new premium request) and `Copilot-Vision-Request` when
//! images are present. Quota: premium requests at the user endpoint.

pub(crate) mod cli_file;
mod login;

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use subgate_config::{ProviderConfig, Url};
use subgate_core::{Dialect, SecretString, Wire};
use subgate_http::OutboundRequest;

pub(crate) use login::{Endpoints, read_api_token, read_user};

use crate::common::{base_headers, join};
use crate::verdict::{Failure, Quota, QuotaWindow};
use crate::{Account, Credential};

/// The editor Copilot is told it serves; each overridable in `headers`.
const IDENTITY: [(&str, &str); 6] = [
    ("copilot-integration-id", "vscode-chat"),
    ("editor-version", "vscode/1.107.0"),
    ("editor-plugin-version", "copilot-chat/0.35.0"),
    ("user-agent", "GitHubCopilotChat/0.35.0"),
    ("openai-intent", "conversation-edits"),
    ("x-github-api-version", "2025-04-01"),
];

/// Models Copilot is known to serve (`reference/protocols.md` §3.4), for
/// when the catalog cannot be fetched.
pub(crate) const MODELS: &[&str] = &[
    "gpt-4.1",
    "gpt-4o",
    "gpt-5.2",
    "gpt-5.2-codex",
    "claude-sonnet-4.5",
    "claude-opus-4.5",
    "claude-haiku-4.5",
    "grok-code-fast-1",
];

#[derive(Debug)]
pub(crate) struct Copilot {
    base_url: Url,
    headers: Vec<(String, SecretString)>,
    pub(crate) endpoints: Endpoints,
    /// The dialects each model takes, from the last catalog read.
    served: RwLock<HashMap<String, Vec<Dialect>>>,
}

impl Copilot {
    pub(crate) fn new(config: &ProviderConfig) -> Self {
        Self {
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
            endpoints: Endpoints::new(config.auth_url.as_ref()),
            served: RwLock::new(HashMap::new()),
        }
    }

    /// The dialects `model` is served in, its preferred first.
    pub(crate) fn dialects(&self, model: &str) -> Vec<Dialect> {
        let served = self.served.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(dialects) = served.get(model).filter(|dialects| !dialects.is_empty()) {
            return dialects.clone();
        }
        if model.starts_with("claude-") {
            vec![Dialect::Anthropic, Dialect::OpenAiChat]
        } else if model.starts_with("gpt-5") {
            vec![Dialect::OpenAiResponses]
        } else {
            vec![Dialect::OpenAiChat]
        }
    }

    /// The editor's identity headers, without credentials.
    pub(crate) fn editor_headers(&self, json_body: bool) -> HeaderMap {
        let mut headers = base_headers(&self.headers, json_body);
        for (name, value) in IDENTITY {
            if !headers.contains_key(name) {
                headers.insert(name, HeaderValue::from_static(value));
            }
        }
        headers
    }

    /// The API base and headers for a request on `account`'s API token.
    fn api(&self, account: &Account, json_body: bool) -> (Url, HeaderMap) {
        let mut headers = self.editor_headers(json_body);
        let mut base = self.base_url.clone();
        if let Credential::Login(session) = &account.credential {
            let tokens = session.tokens();
            if let Some(url) = tokens.api.as_ref().and_then(|api| api.base_url.clone()) {
                base = url;
            }
            if let Ok(value) = HeaderValue::try_from(format!("Bearer {}", tokens.bearer())) {
                headers.insert(http::header::AUTHORIZATION, value);
            }
        }
        (base, headers)
    }

    pub(crate) fn generate_request(
        &self,
        account: &Account,
        wire: Wire,
        body: Bytes,
    ) -> OutboundRequest {
        // Copilot speaks only client dialects; Chat Completions is its own.
        let dialect = wire.dialect().unwrap_or(Dialect::OpenAiChat);
        let (base, mut headers) = self.api(account, true);
        let (initiator, vision) = inspect(dialect, &body);
        headers.insert("x-initiator", HeaderValue::from_static(initiator));
        if vision {
            headers.insert("copilot-vision-request", HeaderValue::from_static("true"));
        }
        let path = match dialect {
            Dialect::OpenAiResponses => "responses",
            Dialect::Anthropic => {
                headers.insert(
                    "anthropic-version",
                    HeaderValue::from_static(subgate_protocol::anthropic::VERSION),
                );
                "v1/messages"
            }
            Dialect::OpenAiChat | Dialect::Gemini => "chat/completions",
        };
        OutboundRequest {
            method: Method::POST,
            url: join(&base, path),
            headers,
            body,
        }
    }

    /// Claude models count tokens at `/v1/messages/count_tokens`; others
    /// are counted locally.
    pub(crate) fn count_request(
        &self,
        account: &Account,
        model: &str,
        body: Bytes,
    ) -> Option<OutboundRequest> {
        if !self.dialects(model).contains(&Dialect::Anthropic) {
            return None;
        }
        let (base, mut headers) = self.api(account, true);
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(subgate_protocol::anthropic::VERSION),
        );
        Some(OutboundRequest {
            method: Method::POST,
            url: join(&base, "v1/messages/count_tokens"),
            headers,
            body,
        })
    }

    pub(crate) fn models_request(&self, account: &Account) -> OutboundRequest {
        let (base, headers) = self.api(account, false);
        OutboundRequest {
            method: Method::GET,
            url: join(&base, "models"),
            headers,
            body: Bytes::new(),
        }
    }

    /// Reads the catalog (§3.5), remembering which dialects each model
    /// takes. Entries that are not chat models (embeddings) are left out.
    pub(crate) fn parse_models(&self, body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
        #[derive(Deserialize)]
        struct Catalog {
            data: Vec<Entry>,
        }
        #[derive(Deserialize)]
        struct Entry {
            id: String,
            capabilities: Option<Capabilities>,
            #[serde(default)]
            supported_endpoints: Vec<String>,
        }
        #[derive(Deserialize)]
        struct Capabilities {
            #[serde(rename = "type")]
            kind: Option<String>,
        }
        let catalog: Catalog = serde_json::from_slice(body)?;
        let mut served = HashMap::new();
        let mut models = Vec::new();
        for entry in catalog.data {
            let kind = entry
                .capabilities
                .and_then(|capabilities| capabilities.kind);
            if kind.as_deref().is_some_and(|kind| kind != "chat") {
                continue;
            }
            let dialects: Vec<Dialect> = entry
                .supported_endpoints
                .iter()
                .filter_map(|path| match path.as_str() {
                    "/chat/completions" => Some(Dialect::OpenAiChat),
                    "/responses" => Some(Dialect::OpenAiResponses),
                    "/v1/messages" => Some(Dialect::Anthropic),
                    _ => None,
                })
                .collect();
            if !dialects.is_empty() {
                served.insert(entry.id.clone(), dialects);
            }
            models.push(entry.id);
        }
        *self.served.write().unwrap_or_else(PoisonError::into_inner) = served;
        Ok(models)
    }

    /// `GET /copilot_internal/user` with the GitHub token.
    pub(crate) fn usage_request(&self, account: &Account) -> Option<OutboundRequest> {
        let tokens = account.credential.session()?.tokens();
        Some(
            self.endpoints
                .user_request(&tokens.login.access_token, self.editor_headers(false)),
        )
    }

    pub(crate) fn header_secrets(&self) -> impl Iterator<Item = &str> {
        crate::common::header_secrets(&self.headers)
    }
}

/// Who started this turn (`user`, or `agent` when the last message is a
/// tool result or the assistant's own), and whether images are present.
fn inspect(dialect: Dialect, body: &[u8]) -> (&'static str, bool) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return ("user", false);
    };
    let turns = match dialect {
        Dialect::OpenAiResponses => value.get("input"),
        _ => value.get("messages"),
    };
    let last = turns
        .and_then(Value::as_array)
        .and_then(|turns| turns.last());
    let agent = last.is_some_and(|turn| {
        let role = turn.get("role").and_then(Value::as_str);
        let kind = turn.get("type").and_then(Value::as_str);
        let tool_result = turn
            .get("content")
            .and_then(Value::as_array)
            .is_some_and(|blocks| {
                blocks
                    .iter()
                    .any(|block| block.get("type").and_then(Value::as_str) == Some("tool_result"))
            });
        role.is_some_and(|role| role != "user")
            || kind.is_some_and(|kind| kind != "message")
            || tool_result
    });
    let vision = turns.is_some_and(has_image);
    (if agent { "agent" } else { "user" }, vision)
}

/// Whether any content part is an image (`image_url`, `input_image`,
/// Anthropic's `image`).
fn has_image(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(has_image),
        Value::Object(object) => {
            matches!(
                object.get("type").and_then(Value::as_str),
                Some("image_url" | "input_image" | "image")
            ) || object
                .get("content")
                .or_else(|| object.get("output"))
                .is_some_and(has_image)
        }
        _ => false,
    }
}

/// Reads the user endpoint's quota snapshots: each limited one (premium
/// requests on paid plans) as a window resetting on `quota_reset_date`.
pub(crate) fn parse_usage(body: &[u8]) -> Result<Quota, serde_json::Error> {
    #[derive(Deserialize)]
    struct User {
        quota_reset_date: Option<String>,
        #[serde(default)]
        quota_snapshots: HashMap<String, Snapshot>,
    }
    #[derive(Deserialize)]
    struct Snapshot {
        entitlement: Option<f64>,
        remaining: Option<f64>,
        quota_remaining: Option<f64>,
        #[serde(default)]
        unlimited: bool,
    }
    let user: User = serde_json::from_slice(body)?;
    let resets_at = user
        .quota_reset_date
        .as_deref()
        .and_then(|date| chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok())
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc().timestamp_millis());
    let mut windows: Vec<QuotaWindow> = user
        .quota_snapshots
        .into_iter()
        .filter(|(_, snapshot)| !snapshot.unlimited)
        .filter_map(|(name, snapshot)| {
            Some(QuotaWindow {
                model: None,
                name: name
                    .strip_suffix("_interactions")
                    .unwrap_or(&name)
                    .to_owned(),
                limit: snapshot.entitlement?,
                remaining: snapshot.quota_remaining.or(snapshot.remaining)?.max(0.0),
                resets_at,
            })
        })
        .collect();
    windows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Quota { windows })
}

/// Copilot's errors read as OpenAI's (its Anthropic route's too: the
/// statuses decide).
pub(crate) fn classify_failure(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: i64,
) -> Failure {
    crate::openai_compatible::classify_failure(status, headers, body, now)
}

#[cfg(test)]
mod tests;
