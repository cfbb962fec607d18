//! GitHub Copilot as its editor plugins reach it (`reference/protocols.md`
//! §3, §8 "Copilot mock"): GitHub's web, GitHub's API and the Copilot API
//! on one port.
//!
//! - GitHub's device flow (§3.1): `POST /login/device/code` (client
//!   `Iv1.b507a08c87ecfe98`) → `device_code`, `user_code`,
//!   `verification_uri`, `expires_in` 900, `interval`; `POST
//!   /login/oauth/access_token` → HTTP 200 either way, with
//!   `authorization_pending`, `slow_down` (+5 s interval), `expired_token`,
//!   `access_denied` or `{"access_token":"ghu_…","token_type":"bearer",
//!   "scope":"read:user"}` (mock choices: a finished or unknown device code
//!   gets `incorrect_device_code`, another client id a 404 at
//!   `/login/device/code` and `incorrect_client_credentials` when polling).
//!   Form or JSON bodies; JSON answers when `Accept` asks for it,
//!   form-encoded ones otherwise, as GitHub does.
//! - `GET /copilot_internal/v2/token` with `Authorization: token ghu_…` (or
//!   `Bearer`) → the §3.2 token (`tid=…;exp=…;sku=monthly_subscriber;
//!   proxy-ep=<mock address>`), `expires_at`, `refresh_in`, `endpoints.api`
//!   = the mock; an unknown GitHub token gets 401 `{"message":"Bad
//!   credentials"}`, a user without a seat 403 (mock choice:
//!   `{"message":"Copilot is not enabled for this account"}`, the source
//!   names no body). `GET /copilot_internal/user` → the §3.6 quota shape.
//! - The Copilot API at the root (§3.4): `POST /chat/completions`,
//!   `POST /responses`, `POST /v1/messages` (+ `count_tokens`), `GET
//!   /models` (§3.5, with `supported_endpoints`), behind, in order: a valid
//!   Copilot token (401 `{"error":{"message","code"}}` with code
//!   `token_expired` or `invalid_token`, mock choices), the
//!   `Copilot-Integration-Id` and `Editor-Version` headers (400), a model
//!   from the catalog (400 `model_not_supported`) served at that path (400
//!   `unsupported_api_for_model`). `X-Initiator` and
//!   `Copilot-Vision-Request` are only recorded.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::response::Response;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::anthropic::{count_tokens_behind, messages_behind};
use super::common::{Ask, Check, Gate, json_response};
use super::oauth::{
    Access, COPILOT_CLIENT_ID, Flavor, Poll, Refresh, bearer, civil, fields, note, now_s,
    raw_response, uuid_like,
};
use super::openai_chat::chat_behind;
use super::openai_responses::responses_behind;
use super::{MockUpstream, State, lock};

/// Copilot's own settings.
#[derive(Debug)]
pub(crate) struct Settings {
    no_seat: bool,
    entitlement: u64,
    remaining: f64,
    reset_date: String,
    /// Endpoints per model, where they differ from the derived ones.
    endpoints: Vec<(String, Vec<String>)>,
}

impl Default for Settings {
    fn default() -> Self {
        let (year, month, _) = civil(now_s() / 86_400);
        let (year, month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        Self {
            no_seat: false,
            entitlement: 300,
            remaining: 300.0,
            reset_date: format!("{year:04}-{month:02}-01"),
            endpoints: Vec::new(),
        }
    }
}

impl MockUpstream {
    /// Starts a mock of GitHub Copilot on one port: GitHub's device flow
    /// (`POST /login/device/code`, `POST /login/oauth/access_token`),
    /// GitHub's API (`GET /copilot_internal/v2/token`,
    /// `GET /copilot_internal/user`) and the Copilot API at the root
    /// (`POST /chat/completions`, `POST /responses`, `POST /v1/messages`,
    /// `GET /models`), whose generation uses the Chat, Responses and
    /// Anthropic mocks' scenarios. [`MockUpstream::url`] and
    /// [`MockUpstream::auth_url`] are both `http://127.0.0.1:PORT`. Default
    /// catalog: `gpt-4.1` (`/chat/completions`), `gpt-5.2-codex`
    /// (`/responses`), `claude-sonnet-4.5` (`/v1/messages`,
    /// `/chat/completions`).
    pub async fn copilot() -> Self {
        use axum::routing::{get, post};
        let state = Arc::new(State::default());
        state.oauth.set_flavor(Flavor::Copilot);
        *lock(&state.models) = vec![
            "gpt-4.1".to_owned(),
            "gpt-5.2-codex".to_owned(),
            "claude-sonnet-4.5".to_owned(),
        ];
        let router = axum::Router::new()
            .route("/login/device/code", post(device_code))
            .route("/login/oauth/access_token", post(access_token))
            .route("/copilot_internal/v2/token", get(copilot_token))
            .route("/copilot_internal/user", get(copilot_user))
            .route("/chat/completions", post(chat))
            .route("/responses", post(responses))
            .route("/v1/messages", post(messages))
            .route("/v1/messages/count_tokens", post(count_tokens))
            .route("/models", get(models))
            .with_state(state.clone());
        Self::serve(router, state, "").await
    }

    /// Copilot's token exchange answers 403 from now on: the GitHub user
    /// has no Copilot seat.
    pub fn set_no_seat(&self) {
        lock(&self.state.copilot).no_seat = true;
    }

    /// Successful Copilot token exchanges so far (the same count as
    /// [`MockOAuth::refresh_count`](super::MockOAuth::refresh_count)).
    pub fn token_exchange_count(&self) -> usize {
        self.state.oauth.refresh_count()
    }

    /// What `GET /copilot_internal/user` reports for premium requests: the
    /// monthly entitlement, what remains, and the reset date
    /// (`YYYY-MM-DD`).
    pub fn set_copilot_premium(&self, entitlement: u64, remaining: f64, reset_date_iso: &str) {
        let mut settings = lock(&self.state.copilot);
        settings.entitlement = entitlement;
        settings.remaining = remaining;
        reset_date_iso.clone_into(&mut settings.reset_date);
    }

    /// The paths Copilot serves `model` at (`/chat/completions`,
    /// `/responses`, `/v1/messages`). Without this a model's endpoints
    /// follow its name: `claude-*` at `/v1/messages` and
    /// `/chat/completions`, `gpt-5*` at `/responses`, others at
    /// `/chat/completions`.
    pub fn set_copilot_endpoints(&self, model: &str, endpoints: &[&str]) {
        let mut settings = lock(&self.state.copilot);
        settings.endpoints.retain(|(name, _)| name != model);
        settings.endpoints.push((
            model.to_owned(),
            endpoints.iter().map(|path| (*path).to_owned()).collect(),
        ));
    }
}

/// The paths `model` is served at.
fn endpoints(settings: &Settings, model: &str) -> Vec<String> {
    if let Some((_, paths)) = settings.endpoints.iter().find(|(name, _)| name == model) {
        return paths.clone();
    }
    let paths: &[&str] = if model.starts_with("claude-") {
        &["/v1/messages", "/chat/completions"]
    } else if model.starts_with("gpt-5") {
        &["/responses"]
    } else {
        &["/chat/completions"]
    };
    paths.iter().map(|path| (*path).to_owned()).collect()
}

/// GitHub's web answers: JSON when the client accepts it, form-encoded
/// otherwise.
fn github_answer(headers: &HeaderMap, body: &Value) -> Response {
    let json = headers
        .get(ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    if json {
        return json_response(StatusCode::OK, body);
    }
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in body.as_object().into_iter().flatten() {
        match value {
            Value::String(text) => form.append_pair(key, text),
            other => form.append_pair(key, &other.to_string()),
        };
    }
    let mut response = Response::new(Body::from(form.finish()));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    response
}

/// `POST /login/device/code`.
async fn device_code(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    note(&state, method, &uri, &headers, &body);
    let fields = fields(&headers, &body).map(|(_, fields)| fields);
    if fields
        .as_ref()
        .and_then(|fields| fields.get("client_id"))
        .map(String::as_str)
        != Some(COPILOT_CLIENT_ID)
    {
        return json_response(StatusCode::NOT_FOUND, &json!({"error": "Not Found"}));
    }
    let (device_code, user_code, interval) = state.oauth.start_device();
    let base = lock(&state.base).clone();
    github_answer(
        &headers,
        &json!({
            "device_code": device_code, "user_code": user_code,
            "verification_uri": format!("{base}/login/device"),
            "expires_in": 900, "interval": interval,
        }),
    )
}

/// `POST /login/oauth/access_token`: one poll of the device flow.
async fn access_token(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    note(&state, method, &uri, &headers, &body);
    let fields = fields(&headers, &body)
        .map(|(_, fields)| fields)
        .unwrap_or_default();
    let field = |name: &str| fields.get(name).map_or("", String::as_str);
    let error = |error: &str| github_answer(&headers, &json!({"error": error}));
    if field("client_id") != COPILOT_CLIENT_ID {
        return error("incorrect_client_credentials");
    }
    if field("grant_type") != "urn:ietf:params:oauth:grant-type:device_code" {
        return error("unsupported_grant_type");
    }
    match state.oauth.poll_device(field("device_code"), None) {
        Poll::Unknown => error("incorrect_device_code"),
        Poll::Pending => error("authorization_pending"),
        Poll::SlowDown(interval) => github_answer(
            &headers,
            &json!({"error": "slow_down", "interval": interval}),
        ),
        Poll::Denied => error("access_denied"),
        Poll::Expired => error("expired_token"),
        Poll::Approved(identity) => {
            let tokens = state.oauth.mint_github(identity);
            github_answer(
                &headers,
                &json!({"access_token": tokens.access_token, "token_type": "bearer", "scope": "read:user"}),
            )
        }
    }
}

fn bad_credentials() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
    )
}

/// `GET /copilot_internal/v2/token`: a GitHub token for a Copilot token.
async fn copilot_token(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    note(&state, method, &uri, &headers, &Bytes::new());
    let github = bearer(&headers, true).unwrap_or_default();
    let base = lock(&state.base).clone();
    let seat = !lock(&state.copilot).no_seat;
    let tokens = match state.oauth.refresh_held(github, &base, seat).await {
        Refresh::Injected(status, body) => return raw_response(status, &body),
        Refresh::Unknown => return bad_credentials(),
        Refresh::NoSeat => {
            return json_response(
                StatusCode::FORBIDDEN,
                &json!({"message": "Copilot is not enabled for this account", "documentation_url": "https://docs.github.com/rest"}),
            );
        }
        Refresh::Issued(tokens) => tokens,
    };
    let ttl = state.oauth.access_ttl().as_secs();
    let refresh_in = if ttl >= 600 { ttl - 300 } else { ttl / 2 };
    json_response(
        StatusCode::OK,
        &json!({
            "token": tokens.access_token,
            "expires_at": tokens.expires_at_ms / 1000,
            "refresh_in": refresh_in,
            "endpoints": {"api": base, "proxy": base, "telemetry": base, "origin-tracker": base},
            "sku": "monthly_subscriber",
            "chat_enabled": true,
            "annotations_enabled": true,
            "individual": true,
            "tracking_id": uuid_like(),
        }),
    )
}

fn snapshot(id: &str, entitlement: u64, remaining: f64, unlimited: bool) -> Value {
    let percent = if unlimited || entitlement == 0 {
        100.0
    } else {
        #[expect(
            clippy::cast_precision_loss,
            reason = "entitlements are small counts of requests"
        )]
        let entitlement = entitlement as f64;
        remaining / entitlement * 100.0
    };
    json!({
        "entitlement": entitlement, "remaining": remaining.floor(), "quota_remaining": remaining,
        "percent_remaining": percent, "unlimited": unlimited, "overage_permitted": false,
        "overage_count": 0, "quota_id": id,
    })
}

/// `GET /copilot_internal/user`: the plan and its quotas.
async fn copilot_user(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    note(&state, method, &uri, &headers, &Bytes::new());
    let github = bearer(&headers, true).unwrap_or_default();
    let Some(identity) = state.oauth.github_identity(github) else {
        return bad_credentials();
    };
    let settings = lock(&state.copilot);
    json_response(
        StatusCode::OK,
        &json!({
            "login": identity.account_id,
            "copilot_plan": identity.plan,
            "access_type_sku": "monthly_subscriber",
            "chat_enabled": true,
            "quota_reset_date": settings.reset_date,
            "quota_snapshots": {
                "chat": snapshot("chat", 0, 0.0, true),
                "completions": snapshot("completions", 0, 0.0, true),
                "premium_interactions": snapshot("premium_interactions", settings.entitlement, settings.remaining, false),
            },
        }),
    )
}

fn copilot_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"error": {"message": message, "code": code}}),
    )
}

/// The token and editor headers every Copilot API request needs.
fn authenticate(state: &State, headers: &HeaderMap) -> Option<Response> {
    let access = bearer(headers, false).map_or(Access::Unknown, |token| state.oauth.access(token));
    match access {
        Access::Unknown => {
            return Some(copilot_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "unauthorized: token is not valid",
            ));
        }
        Access::Expired => {
            return Some(copilot_error(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "unauthorized: token expired",
            ));
        }
        Access::Valid(_) => {}
    }
    for name in ["copilot-integration-id", "editor-version"] {
        if !headers.contains_key(name) {
            return Some(copilot_error(
                StatusCode::BAD_REQUEST,
                "missing_header",
                &format!("missing required header {name}"),
            ));
        }
    }
    None
}

/// Everything Copilot checks of a generation request, in order (see the
/// module's documentation).
fn screen(state: &State, ask: &Ask<'_>) -> Option<Response> {
    if let Some(refusal) = authenticate(state, ask.headers) {
        return Some(refusal);
    }
    let body = ask.body?;
    let model = body["model"].as_str().unwrap_or_default();
    if !lock(&state.models).iter().any(|known| known == model) {
        return Some(copilot_error(
            StatusCode::BAD_REQUEST,
            "model_not_supported",
            "The requested model is not supported.",
        ));
    }
    let path = ask.uri.path();
    let endpoint = path.strip_suffix("/count_tokens").unwrap_or(path);
    if !endpoints(&lock(&state.copilot), model)
        .iter()
        .any(|served| served == endpoint)
    {
        return Some(copilot_error(
            StatusCode::BAD_REQUEST,
            "unsupported_api_for_model",
            &format!("model {model} is not supported via {endpoint}"),
        ));
    }
    None
}

const COPILOT_GATE: Gate = Gate {
    check: Check::Request(screen),
    credential: "authorization",
    not_json: || {
        copilot_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_body",
            "The request body is not valid JSON.",
        )
    },
};

async fn chat(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    chat_behind(&COPILOT_GATE, &state, method, &uri, headers, body).await
}

async fn responses(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    responses_behind(&COPILOT_GATE, &state, method, &uri, headers, body).await
}

async fn messages(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    messages_behind(&COPILOT_GATE, &state, method, &uri, headers, body).await
}

async fn count_tokens(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    count_tokens_behind(&COPILOT_GATE, &state, method, &uri, &headers, &body)
}

/// `GET /models`: the catalog in Copilot's shape (§3.5).
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
    let settings = lock(&state.copilot);
    let data: Vec<Value> = lock(&state.models)
        .iter()
        .map(|id| {
            let vendor = if id.starts_with("claude-") {
                "Anthropic"
            } else if id.starts_with("gemini-") {
                "Google"
            } else {
                "Azure OpenAI"
            };
            json!({
                "id": id, "name": id, "object": "model", "vendor": vendor, "version": id,
                "preview": false, "model_picker_enabled": true,
                "capabilities": {
                    "family": id, "type": "chat", "object": "model_capabilities", "tokenizer": "o200k_base",
                    "limits": {"max_context_window_tokens": 128_000, "max_output_tokens": 16_384, "max_prompt_tokens": 128_000},
                    "supports": {"streaming": true, "tool_calls": true, "parallel_tool_calls": true, "vision": true},
                },
                "policy": {"state": "enabled", "terms": "Enable access to the model."},
                "supported_endpoints": endpoints(&settings, id),
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}
