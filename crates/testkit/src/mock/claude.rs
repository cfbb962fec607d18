//! Claude Pro/Max as Claude Code reaches it (`reference/protocols.md` §1,
//! §8 "Claude OAuth mock"), auth server and API on one port:
//!
//! - `GET /oauth/authorize` with client `9d1c250a-…`, `code=true` and PKCE
//!   S256 (§1.1); loopback redirects and the `CODE#STATE` paste page.
//! - `POST /v1/oauth/token`, JSON only (a form body gets 400): the
//!   `authorization_code` grant (`grant_type, code, state, client_id,
//!   redirect_uri, code_verifier`) and the `refresh_token` grant, answered
//!   with `sk-ant-oat01-…`/`sk-ant-ort01-…`, `expires_in`, `token_type`,
//!   `scope`, `organization` and `account`; a bad or used refresh token gets
//!   400 `invalid_grant` "Refresh token not found or invalid".
//! - `POST /v1/messages?beta=true` (and `count_tokens`) with Anthropic's
//!   wire and error envelope (§1.5, §7.3), behind the OAuth checks of §1.3 in
//!   this order: no `x-api-key` (401), a known bearer (401 "Invalid bearer
//!   token"), not expired (401, §1.1's exact message), `anthropic-beta` with
//!   `oauth-2025-04-20` (401), `?beta=true` (400), `user-agent: claude-cli/…`
//!   and `x-app: cli` (400), `anthropic-version` (400), `system` an array
//!   whose first block (after an optional `x-anthropic-billing-header:`
//!   block) starts with a Claude Code identity string (400), and every
//!   custom tool named `mcp_…` or one of Claude Code's own tools (400,
//!   standing in for the server's third-party detection). Answers carry the
//!   unified rate-limit headers (§1.5).
//! - `GET /v1/models` and `GET /api/oauth/usage` (§1.1) for a valid bearer
//!   with the OAuth beta.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::anthropic::{
    anthropic_error, count_tokens_behind, messages_behind, model_list, not_json,
};
use super::common::{Ask, Check, Gate, json_response};
use super::oauth::{
    Access, CLAUDE_CLIENT_ID, Encoding, Flavor, IssuedTokens, Refresh, bearer, fields, iso8601,
    note, now_s, oauth_error, query, raw_response,
};
use super::{MockUpstream, Scenario, State, lock};

/// The message Anthropic sends for an expired OAuth token (§1.1).
const EXPIRED: &str =
    "OAuth token has expired. Please obtain a new token or refresh your existing token.";

/// The message for a request that does not look like Claude Code.
const CLAUDE_CODE_ONLY: &str = "This credential is only authorized for use with Claude Code and cannot be used for other API requests.";

/// The identity a first system block starts with (§1.3).
const IDENTITIES: [&str; 2] = [
    "You are Claude Code, Anthropic's official CLI for Claude.",
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
];

/// Claude Code's own tool names (§1.3, the PI bullet).
const CLAUDE_CODE_TOOLS: [&str; 17] = [
    "Read",
    "Write",
    "Edit",
    "Bash",
    "Grep",
    "Glob",
    "AskUserQuestion",
    "EnterPlanMode",
    "ExitPlanMode",
    "KillShell",
    "NotebookEdit",
    "Skill",
    "Task",
    "TaskOutput",
    "TodoWrite",
    "WebFetch",
    "WebSearch",
];

/// The scopes a token answer grants (Claude Code's set, §1.1).
const SCOPES: &str =
    "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload";

/// The subscription windows the mock reports.
#[derive(Debug)]
pub(crate) struct Settings {
    five_hour_reset: u64,
    seven_day_reset: u64,
    status_5h: String,
    status_7d: String,
    usage: Value,
}

impl Default for Settings {
    fn default() -> Self {
        let now = now_s();
        let (five_hour_reset, seven_day_reset) = (now + 5 * 3600, now + 7 * 86_400);
        Self {
            five_hour_reset,
            seven_day_reset,
            status_5h: "allowed".to_owned(),
            status_7d: "allowed".to_owned(),
            usage: usage(
                0.0,
                &iso8601(five_hour_reset),
                0.0,
                &iso8601(seven_day_reset),
            ),
        }
    }
}

fn usage(five_hour: f64, five_hour_reset: &str, seven_day: f64, seven_day_reset: &str) -> Value {
    json!({
        "five_hour": {"utilization": five_hour, "resets_at": five_hour_reset},
        "seven_day": {"utilization": seven_day, "resets_at": seven_day_reset},
        "seven_day_oauth_apps": null,
        "seven_day_opus": null,
        "seven_day_sonnet": null,
        "extra_usage": null,
    })
}

impl MockUpstream {
    /// Starts a mock of Claude Pro/Max behind OAuth, auth server and API on
    /// one port: `GET /oauth/authorize`, `POST /v1/oauth/token`,
    /// `POST /v1/messages?beta=true`, `POST /v1/messages/count_tokens`,
    /// `GET /v1/models`, `GET /api/oauth/usage`. Generation uses the
    /// Anthropic mock's scenarios. [`MockUpstream::url`] and
    /// [`MockUpstream::auth_url`] are both `http://127.0.0.1:PORT`.
    pub async fn claude() -> Self {
        use axum::routing::{get, post};
        let state = Arc::new(State::default());
        state.oauth.set_flavor(Flavor::Claude);
        *lock(&state.models) = vec![
            "claude-sonnet-4-5".to_owned(),
            "claude-opus-4-5".to_owned(),
            "claude-haiku-4-5".to_owned(),
        ];
        let router = axum::Router::new()
            .route("/oauth/authorize", get(super::oauth::authorize))
            .route("/v1/oauth/token", post(token))
            .route("/v1/messages", post(messages))
            .route("/v1/messages/count_tokens", post(count_tokens))
            .route("/v1/models", get(models))
            .route("/api/oauth/usage", get(oauth_usage))
            .with_state(state.clone());
        Self::serve(router, state, "").await
    }

    /// The unified rate-limit headers successful Claude answers carry: the
    /// five-hour and seven-day windows' resets (unix seconds) and statuses
    /// (`allowed`, `allowed_warning`, `rejected`). The overall status and
    /// reset are those of the tighter window.
    pub fn set_unified_limits(
        &self,
        five_hour_reset_unix: u64,
        seven_day_reset_unix: u64,
        five_hour_status: &str,
        seven_day_status: &str,
    ) {
        let mut settings = lock(&self.state.claude);
        settings.five_hour_reset = five_hour_reset_unix;
        settings.seven_day_reset = seven_day_reset_unix;
        five_hour_status.clone_into(&mut settings.status_5h);
        seven_day_status.clone_into(&mut settings.status_7d);
    }

    /// What `GET /api/oauth/usage` reports: utilization (0–100) and reset
    /// time (RFC 3339) of the five-hour and seven-day windows.
    pub fn set_claude_usage(
        &self,
        five_hour_pct: f64,
        five_hour_reset_iso: &str,
        seven_day_pct: f64,
        seven_day_reset_iso: &str,
    ) {
        lock(&self.state.claude).usage = usage(
            five_hour_pct,
            five_hour_reset_iso,
            seven_day_pct,
            seven_day_reset_iso,
        );
    }
}

/// The 429 Claude sends when the five-hour window is used up (§1.5, §8):
/// `rate_limit_error`, unified status and five-hour status `rejected`, the
/// window's reset (unix seconds) and `retry-after`.
pub fn claude_window_exhausted(reset_unix: u64) -> Scenario {
    let reset = reset_unix.to_string();
    Scenario::error(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed your account's rate limit. Please try again later."},"request_id":"req_mock"}"#,
    )
    .header("anthropic-ratelimit-unified-status", "rejected")
    .header("anthropic-ratelimit-unified-5h-status", "rejected")
    .header("anthropic-ratelimit-unified-5h-reset", &reset)
    .header("anthropic-ratelimit-unified-reset", &reset)
    .header(
        "retry-after",
        &reset_unix.saturating_sub(now_s()).to_string(),
    )
}

fn token_answer(state: &State, tokens: &IssuedTokens) -> Response {
    let identity = state.oauth.identity();
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_in": state.oauth.access_ttl().as_secs(),
            "token_type": "Bearer",
            "scope": SCOPES,
            "organization": {"uuid": identity.user_id, "name": format!("{}'s Organization", identity.email)},
            "account": {"uuid": identity.account_id, "email_address": identity.email},
        }),
    )
}

/// `POST /v1/oauth/token`: JSON bodies only.
async fn token(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    note(&state, method, &uri, &headers, &body);
    let Some((Encoding::Json, fields)) = fields(&headers, &body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body must be JSON",
        );
    };
    let field = |name: &str| fields.get(name).map_or("", String::as_str);
    if field("client_id") != CLAUDE_CLIENT_ID {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Unknown client_id",
        );
    }
    match field("grant_type") {
        "authorization_code" => {
            let required = ["code", "state", "redirect_uri", "code_verifier"];
            if let Some(missing) = required.iter().find(|name| field(name).is_empty()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("{missing} is required"),
                );
            }
            match state.oauth.redeem_code(
                field("code"),
                field("code_verifier"),
                field("redirect_uri"),
                Some(field("state")),
            ) {
                Ok(tokens) => token_answer(&state, &tokens),
                Err(message) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", message),
            }
        }
        "refresh_token" => {
            let base = lock(&state.base).clone();
            match state
                .oauth
                .refresh_held(field("refresh_token"), &base, true)
                .await
            {
                Refresh::Injected(status, body) => raw_response(status, &body),
                Refresh::Issued(tokens) => token_answer(&state, &tokens),
                Refresh::Unknown | Refresh::NoSeat => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Refresh token not found or invalid",
                ),
            }
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
    }
}

fn unauthorized(message: &str) -> Response {
    anthropic_error(StatusCode::UNAUTHORIZED, "authentication_error", message)
}

fn invalid(message: &str) -> Response {
    anthropic_error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// The OAuth credential checks every Claude API endpoint makes: a valid,
/// unexpired bearer with the OAuth beta, and no API key.
fn authenticate(state: &State, headers: &HeaderMap) -> Option<Response> {
    if headers.contains_key("x-api-key") {
        return Some(unauthorized("invalid x-api-key"));
    }
    let Some(token) = bearer(headers, false) else {
        return Some(unauthorized("Invalid bearer token"));
    };
    match state.oauth.access(token) {
        Access::Unknown => return Some(unauthorized("Invalid bearer token")),
        Access::Expired => return Some(unauthorized(EXPIRED)),
        Access::Valid(_) => {}
    }
    let betas = header(headers, "anthropic-beta");
    if !betas
        .split(',')
        .any(|beta| beta.trim() == "oauth-2025-04-20")
    {
        return Some(unauthorized(
            "OAuth authentication is currently not supported.",
        ));
    }
    None
}

/// Everything Claude checks of a Messages request made with an OAuth
/// token, in order (see the module's documentation).
fn screen(state: &State, ask: &Ask<'_>) -> Option<Response> {
    if let Some(refusal) = authenticate(state, ask.headers) {
        return Some(refusal);
    }
    if query(ask.uri).get("beta").map(String::as_str) != Some("true") {
        return Some(invalid(
            "OAuth requests must use the beta Messages API (?beta=true).",
        ));
    }
    if !header(ask.headers, "user-agent").starts_with("claude-cli/")
        || header(ask.headers, "x-app") != "cli"
    {
        return Some(invalid(CLAUDE_CODE_ONLY));
    }
    if !ask.headers.contains_key("anthropic-version") {
        return Some(invalid("anthropic-version: header is required"));
    }
    let body = ask.body?;
    if !claude_code_system(&body["system"]) {
        return Some(invalid(CLAUDE_CODE_ONLY));
    }
    let custom = |tool: &&Value| tool["type"].as_str().is_none_or(|kind| kind == "custom");
    let foreign = body["tools"].as_array().and_then(|tools| {
        tools.iter().filter(custom).find_map(|tool| {
            let name = tool["name"].as_str().unwrap_or_default();
            (!name.starts_with("mcp_") && !CLAUDE_CODE_TOOLS.contains(&name)).then_some(name)
        })
    });
    if let Some(name) = foreign {
        return Some(invalid(&format!("{CLAUDE_CODE_ONLY} (tool {name:?})")));
    }
    None
}

/// Whether `system` is an array of text blocks whose first block (after a
/// billing-header block, which real Claude Code puts first) starts with a
/// Claude Code identity.
fn claude_code_system(system: &Value) -> bool {
    let Some(blocks) = system.as_array() else {
        return false;
    };
    if !blocks.iter().all(|block| block["type"] == "text") {
        return false;
    }
    let mut texts = blocks.iter().filter_map(|block| block["text"].as_str());
    let first = match texts.next() {
        Some(text) if text.starts_with("x-anthropic-billing-header:") => texts.next(),
        other => other,
    };
    first.is_some_and(|text| IDENTITIES.iter().any(|identity| text.starts_with(identity)))
}

const CLAUDE_GATE: Gate = Gate {
    check: Check::Request(screen),
    credential: "authorization",
    not_json,
};

fn rank(status: &str) -> u8 {
    match status {
        "rejected" => 2,
        "allowed_warning" => 1,
        _ => 0,
    }
}

/// Adds the unified rate-limit headers to a successful answer (a scenario's
/// own headers win).
fn with_limits(state: &State, mut response: Response) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let settings = lock(&state.claude);
    let (status, reset) = if rank(&settings.status_7d) > rank(&settings.status_5h) {
        (&settings.status_7d, settings.seven_day_reset)
    } else {
        (&settings.status_5h, settings.five_hour_reset)
    };
    let overall = if rank(status) == 0 {
        "allowed"
    } else {
        status.as_str()
    };
    let values = [
        ("anthropic-ratelimit-unified-status", overall.to_owned()),
        (
            "anthropic-ratelimit-unified-5h-status",
            settings.status_5h.clone(),
        ),
        (
            "anthropic-ratelimit-unified-5h-reset",
            settings.five_hour_reset.to_string(),
        ),
        (
            "anthropic-ratelimit-unified-7d-status",
            settings.status_7d.clone(),
        ),
        (
            "anthropic-ratelimit-unified-7d-reset",
            settings.seven_day_reset.to_string(),
        ),
        ("anthropic-ratelimit-unified-reset", reset.to_string()),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::try_from(value) {
            response
                .headers_mut()
                .entry(HeaderName::from_static(name))
                .or_insert(value);
        }
    }
    response
}

async fn messages(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = messages_behind(&CLAUDE_GATE, &state, method, &uri, headers, body).await;
    with_limits(&state, response)
}

async fn count_tokens(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    count_tokens_behind(&CLAUDE_GATE, &state, method, &uri, &headers, &body)
}

async fn models(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    note(&state, method, &uri, &headers, &Bytes::new());
    if let Some(refusal) = authenticate(&state, &headers) {
        return refusal;
    }
    model_list(&state)
}

/// `GET /api/oauth/usage`: the subscription windows' utilization.
async fn oauth_usage(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    note(&state, method, &uri, &headers, &Bytes::new());
    if let Some(refusal) = authenticate(&state, &headers) {
        return refusal;
    }
    let usage = lock(&state.claude).usage.clone();
    json_response(StatusCode::OK, &usage)
}
