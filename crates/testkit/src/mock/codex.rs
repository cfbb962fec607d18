//! ChatGPT/Codex as Codex CLI reaches it (`reference/protocols.md` §2,
//! §8 "Codex mock"), auth server and backend on one port:
//!
//! - `GET /oauth/authorize` with client `app_EMoamEEZ73f0CkXaXp7hrann`,
//!   scope `openid profile email offline_access`, PKCE S256 and a loopback
//!   redirect (§2.1).
//! - `POST /oauth/token`, form **and** JSON bodies: `authorization_code`
//!   (with `code_verifier` and `redirect_uri`) and `refresh_token`, answered
//!   with JWT access and id tokens (claims under
//!   `https://api.openai.com/auth`), `rt_…`, `token_type` and `expires_in`.
//!   An unknown or already rotated refresh token gets 401
//!   `{"error":{"code":"refresh_token_reused",…}}` (CX's codes).
//! - The device login: `POST /api/accounts/deviceauth/usercode` →
//!   `device_auth_id`, `user_code`, `interval` as a string;
//!   `POST /api/accounts/deviceauth/token` → 403 while pending (slow down is
//!   pending too), 200 with `authorization_code`, `code_challenge`,
//!   `code_verifier` once approved, whose code is exchanged with
//!   `redirect_uri=<auth_url>/deviceauth/callback`. Mock choices where the
//!   source is silent: denied → 400 `access_denied`, expired → 410
//!   `expired_token`, unknown or finished login → 400 `invalid_device_auth`,
//!   each as `{"error":{"code","message"}}`.
//! - `POST /backend-api/codex/responses` with the Responses mock's
//!   scenarios (§2.3–2.5), behind, in order: a valid bearer (401 in the
//!   backend's `{"error":{…,"code":"token_invalidated"|"token_expired"},
//!   "status":401}` shape), `chatgpt-account-id` equal to the token's account
//!   (403 `{"detail"}`), an `originator` header (400), then the body's
//!   `stream: true`, `store: false`, none of `max_output_tokens`,
//!   `max_tokens`, `temperature`, `top_p`, `context_management` (400
//!   `{"detail":"Unsupported parameter: …"}`), `instructions` present, and
//!   `include` with `reasoning.encrypted_content` whenever `reasoning` is set
//!   (400 `{"detail"}` each). Answers carry the `x-codex-primary-*` and
//!   `x-codex-secondary-*` headers; `StreamEnd::Cut` ends a stream without
//!   `response.completed`.
//! - `GET /backend-api/codex/models?client_version=…` (§2.6) and
//!   `GET /backend-api/wham/usage` (§2.5).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::common::{Ask, Check, Gate, json_response};
use super::oauth::{
    Access, CODEX_CLIENT_ID, Flavor, Identity, IssuedTokens, Poll, Refresh, bearer, fields, note,
    now_s, oauth_error, query, raw_response,
};
use super::openai_responses::responses_behind;
use super::{MockUpstream, Scenario, State, lock};

/// The body parameters the Codex backend refuses.
const UNSUPPORTED: [&str; 5] = [
    "max_output_tokens",
    "max_tokens",
    "temperature",
    "top_p",
    "context_management",
];

/// The two usage windows the mock reports.
#[derive(Debug)]
pub(crate) struct Settings {
    primary_pct: f64,
    primary_reset: u64,
    secondary_pct: f64,
    secondary_reset: u64,
}

impl Default for Settings {
    fn default() -> Self {
        let now = now_s();
        Self {
            primary_pct: 0.0,
            primary_reset: now + 300 * 60,
            secondary_pct: 0.0,
            secondary_reset: now + 10_080 * 60,
        }
    }
}

impl MockUpstream {
    /// Starts a mock of ChatGPT's Codex backend and its auth server on one
    /// port: `GET /oauth/authorize`, `POST /oauth/token`,
    /// `POST /api/accounts/deviceauth/{usercode,token}`,
    /// `POST /backend-api/codex/responses`, `GET /backend-api/codex/models`,
    /// `GET /backend-api/wham/usage`. Generation uses the Responses mock's
    /// scenarios. [`MockUpstream::url`] is `http://127.0.0.1:PORT/backend-api/codex`.
    pub async fn codex() -> Self {
        use axum::routing::{get, post};
        let state = Arc::new(State::default());
        state.oauth.set_flavor(Flavor::Codex);
        *lock(&state.models) = vec!["gpt-5.2-codex".to_owned(), "gpt-5.2".to_owned()];
        let router = axum::Router::new()
            .route("/oauth/authorize", get(super::oauth::authorize))
            .route("/oauth/token", post(token))
            .route("/api/accounts/deviceauth/usercode", post(usercode))
            .route("/api/accounts/deviceauth/token", post(device_token))
            .route("/backend-api/codex/responses", post(responses))
            .route("/backend-api/codex/models", get(models))
            .route("/backend-api/wham/usage", get(wham_usage))
            .with_state(state.clone());
        Self::serve(router, state, "/backend-api/codex").await
    }

    /// The usage windows Codex reports, in the `x-codex-*` headers of its
    /// answers and at `/wham/usage`: the five-hour (primary) and weekly
    /// (secondary) windows' used percentage and reset (unix seconds).
    pub fn set_codex_limits(
        &self,
        primary_pct: f64,
        primary_reset_unix: u64,
        secondary_pct: f64,
        secondary_reset_unix: u64,
    ) {
        *lock(&self.state.codex) = Settings {
            primary_pct,
            primary_reset: primary_reset_unix,
            secondary_pct,
            secondary_reset: secondary_reset_unix,
        };
    }
}

/// The 429 Codex sends when the plan's usage limit is reached (§2.5):
/// `usage_limit_reached` with `plan_type` `plus`, `resets_at` (unix
/// seconds) and `resets_in_seconds`.
pub fn codex_usage_limit(resets_in_seconds: u64) -> Scenario {
    let body = json!({"error": {
        "type": "usage_limit_reached",
        "message": "The usage limit has been reached",
        "plan_type": "plus",
        "resets_at": now_s() + resets_in_seconds,
        "resets_in_seconds": resets_in_seconds,
    }});
    Scenario::error(429, &body.to_string())
}

fn detail(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({"detail": message}))
}

/// An error of the auth server's account API.
fn account_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

fn token_answer(state: &State, tokens: &IssuedTokens) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "id_token": tokens.id_token,
            "token_type": "Bearer",
            "expires_in": state.oauth.access_ttl().as_secs(),
        }),
    )
}

/// `POST /oauth/token`: form or JSON.
async fn token(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    note(&state, method, &uri, &headers, &body);
    let Some((_, fields)) = fields(&headers, &body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The body must be form-encoded or JSON",
        );
    };
    let field = |name: &str| fields.get(name).map_or("", String::as_str);
    if field("client_id") != CODEX_CLIENT_ID {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Unknown client_id",
        );
    }
    match field("grant_type") {
        "authorization_code" => {
            let required = ["code", "redirect_uri", "code_verifier"];
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
                None,
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
                Refresh::Unknown | Refresh::NoSeat => account_error(
                    StatusCode::UNAUTHORIZED,
                    "refresh_token_reused",
                    "Your refresh token has already been used to generate a new access token. Please try signing in again.",
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

/// `POST /api/accounts/deviceauth/usercode`.
async fn usercode(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    note(&state, method, &uri, &headers, &body);
    let client = serde_json::from_slice::<Value>(&body).ok();
    if client.as_ref().and_then(|body| body["client_id"].as_str()) != Some(CODEX_CLIENT_ID) {
        return account_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "client_id is missing or unknown",
        );
    }
    let (id, user_code, interval) = state.oauth.start_device();
    json_response(
        StatusCode::OK,
        &json!({"device_auth_id": id, "user_code": user_code, "interval": interval.to_string()}),
    )
}

/// `POST /api/accounts/deviceauth/token`: one poll of a device login.
async fn device_token(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    note(&state, method, &uri, &headers, &body);
    let request = serde_json::from_slice::<Value>(&body).unwrap_or_default();
    let id = request["device_auth_id"].as_str().unwrap_or_default();
    let user_code = request["user_code"].as_str().unwrap_or_default();
    match state.oauth.poll_device(id, Some(user_code)) {
        Poll::Pending | Poll::SlowDown(_) => account_error(
            StatusCode::FORBIDDEN,
            "authorization_pending",
            "The user has not approved the device yet",
        ),
        Poll::Denied => account_error(
            StatusCode::BAD_REQUEST,
            "access_denied",
            "The user denied the device authorization",
        ),
        Poll::Expired => account_error(
            StatusCode::GONE,
            "expired_token",
            "The device code has expired",
        ),
        Poll::Unknown => account_error(
            StatusCode::BAD_REQUEST,
            "invalid_device_auth",
            "Unknown device authorization",
        ),
        Poll::Approved(_) => {
            let redirect = format!("{}/deviceauth/callback", lock(&state.base));
            let (code, challenge, verifier) = state.oauth.device_code(&redirect);
            json_response(
                StatusCode::OK,
                &json!({"authorization_code": code, "code_challenge": challenge, "code_verifier": verifier}),
            )
        }
    }
}

fn unauthorized(code: &str, message: &str) -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": {"message": message, "type": "invalid_request_error", "code": code, "param": null}, "status": 401}),
    )
}

/// The bearer's identity, or the 401 the backend sends.
fn authenticate(state: &State, headers: &HeaderMap) -> Result<Identity, Box<Response>> {
    let access = bearer(headers, false).map_or(Access::Unknown, |token| state.oauth.access(token));
    let refusal = match access {
        Access::Valid(identity) => return Ok(identity),
        Access::Unknown => unauthorized(
            "token_invalidated",
            "Your authentication token has been invalidated. Please try signing in again.",
        ),
        Access::Expired => unauthorized(
            "token_expired",
            "Provided authentication token is expired. Please try signing in again.",
        ),
    };
    Err(Box::new(refusal))
}

/// A valid bearer whose account is the `chatgpt-account-id` header's.
fn authenticate_account(state: &State, headers: &HeaderMap) -> Option<Response> {
    let identity = match authenticate(state, headers) {
        Ok(identity) => identity,
        Err(refusal) => return Some(*refusal),
    };
    let account = headers
        .get("chatgpt-account-id")
        .and_then(|value| value.to_str().ok());
    if account != Some(identity.account_id.as_str()) {
        return Some(detail(
            StatusCode::FORBIDDEN,
            "chatgpt-account-id does not match the authenticated account",
        ));
    }
    None
}

/// Everything the backend checks of a Responses request, in order (see
/// the module's documentation).
fn screen(state: &State, ask: &Ask<'_>) -> Option<Response> {
    if let Some(refusal) = authenticate_account(state, ask.headers) {
        return Some(refusal);
    }
    if !ask.headers.contains_key("originator") {
        return Some(detail(StatusCode::BAD_REQUEST, "Missing originator header"));
    }
    let body = ask.body?;
    if body["stream"] != true {
        return Some(detail(
            StatusCode::BAD_REQUEST,
            "Stream must be set to true",
        ));
    }
    if body["store"] != false {
        return Some(detail(
            StatusCode::BAD_REQUEST,
            "Store must be set to false",
        ));
    }
    if let Some(name) = UNSUPPORTED.iter().find(|name| body.get(**name).is_some()) {
        return Some(detail(
            StatusCode::BAD_REQUEST,
            &format!("Unsupported parameter: {name}"),
        ));
    }
    if body.get("instructions").is_none() {
        return Some(detail(StatusCode::BAD_REQUEST, "Instructions are required"));
    }
    let encrypted = body["include"].as_array().is_some_and(|include| {
        include
            .iter()
            .any(|item| item == "reasoning.encrypted_content")
    });
    if body
        .get("reasoning")
        .is_some_and(|reasoning| !reasoning.is_null())
        && !encrypted
    {
        return Some(detail(
            StatusCode::BAD_REQUEST,
            "include must contain reasoning.encrypted_content when store is false",
        ));
    }
    None
}

const CODEX_GATE: Gate = Gate {
    check: Check::Request(screen),
    credential: "authorization",
    not_json: || {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({"detail": "The request body is not valid JSON"}),
        )
    },
};

/// Adds the `x-codex-*` usage headers to a successful answer (a scenario's
/// own headers win).
fn with_limits(state: &State, mut response: Response) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let settings = lock(&state.codex);
    let values = [
        (
            "x-codex-primary-used-percent",
            settings.primary_pct.to_string(),
        ),
        ("x-codex-primary-window-minutes", "300".to_owned()),
        (
            "x-codex-primary-reset-at",
            settings.primary_reset.to_string(),
        ),
        (
            "x-codex-secondary-used-percent",
            settings.secondary_pct.to_string(),
        ),
        ("x-codex-secondary-window-minutes", "10080".to_owned()),
        (
            "x-codex-secondary-reset-at",
            settings.secondary_reset.to_string(),
        ),
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

async fn responses(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = responses_behind(&CODEX_GATE, &state, method, &uri, headers, body).await;
    with_limits(&state, response)
}

/// `GET /backend-api/codex/models?client_version=…`.
async fn models(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    note(&state, method, &uri, &headers, &Bytes::new());
    if let Some(refusal) = authenticate_account(&state, &headers) {
        return refusal;
    }
    if query(&uri)
        .get("client_version")
        .is_none_or(String::is_empty)
    {
        return detail(StatusCode::BAD_REQUEST, "client_version is required");
    }
    let models: Vec<Value> = lock(&state.models)
        .iter()
        .enumerate()
        .map(|(priority, slug)| {
            json!({
                "slug": slug, "display_name": slug, "description": format!("{slug} (mock)"),
                "default_reasoning_level": "medium",
                "supported_reasoning_levels": [{"effort": "low", "description": "Fast"}, {"effort": "medium", "description": "Balanced"}, {"effort": "high", "description": "Thorough"}],
                "shell_type": "shell_command", "visibility": "list", "supported_in_api": true,
                "priority": priority, "context_window": 272_000, "supports_parallel_tool_calls": true,
            })
        })
        .collect();
    let mut response = json_response(StatusCode::OK, &json!({"models": models}));
    response.headers_mut().insert(
        http::header::ETAG,
        HeaderValue::from_static("\"mock-models\""),
    );
    response
}

/// `GET /backend-api/wham/usage`: the plan and its two windows.
async fn wham_usage(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    note(&state, method, &uri, &headers, &Bytes::new());
    let identity = match authenticate(&state, &headers) {
        Ok(identity) => identity,
        Err(refusal) => return *refusal,
    };
    let settings = lock(&state.codex);
    json_response(
        StatusCode::OK,
        &json!({
            "plan_type": identity.plan,
            "rate_limit": {
                "primary_window": {"used_percent": settings.primary_pct, "limit_window_seconds": 300 * 60, "reset_at": settings.primary_reset},
                "secondary_window": {"used_percent": settings.secondary_pct, "limit_window_seconds": 10_080 * 60, "reset_at": settings.secondary_reset},
            },
        }),
    )
}
