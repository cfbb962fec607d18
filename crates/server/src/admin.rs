//! The management API under `/admin/api/`, for the admin token only
//! (`Authorization: Bearer`, compared in constant time): health, accounts,
//! client keys and usage. Answers are JSON; errors are
//! `{"error":{"type","message"}}` with the status that fits. The `OpenAPI`
//! 3.1 document at `/admin/api/openapi.json` is generated from the
//! handlers and types below ([`ApiDoc`]).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::request::Parts;
use http::{Method, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use subgate_config::Config;
use subgate_engine::{
    AccountError, AccountStatus, BudgetPeriod, Engine, KeyError, KeyInfo, KeyLimits, KeyScopes,
    LoginError, ModelInfo, ModelRest, NewKey, ProviderQuota, Saved, UsageGroup, UsageLine,
    WindowTotal,
};
use subgate_providers::LoginMethod;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::config_view::ConfigView;

/// The management API, described.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "subgate management API",
        description = "Accounts, client keys and usage of a subgate gateway. Every route but this document needs the admin token (`subgate admin token`) as `Authorization: Bearer`."
    ),
    paths(
        health, accounts, account, enable_account, disable_account, refresh_account,
        reset_account, set_priority, remove_account, models, keys, create_key, key, revoke_key,
        rotate_key, usage, quota, config_in_force, start_login, complete_login
    ),
    components(schemas(
        Health, Failure, FailureDetail, CreateKey, IssuedKeyBody, KeyInfo, KeyScopes,
        KeyLimits, BudgetPeriod, AccountStatus, UsageLine, ModelInfo, Reset, Priority,
        ConfigView, StartLogin, LoginPage, CompleteLogin, Saved, ProviderQuota, WindowTotal,
        ModelRest
    )),
    modifiers(&AdminToken),
    security(("admin_token" = []))
)]
pub(crate) struct ApiDoc;

/// Declares the admin token as the API's bearer scheme.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `{"status":"ok"}`.
#[derive(Debug, Serialize, ToSchema)]
struct Health {
    /// `ok`.
    status: String,
}

/// Every error's body.
#[derive(Debug, Serialize, ToSchema)]
struct Failure {
    /// What went wrong.
    error: FailureDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
struct FailureDetail {
    /// `authentication_error`, `invalid_request_error`, `internal_error`
    /// or `unavailable`.
    #[serde(rename = "type")]
    kind: String,
    /// A sentence for a human.
    message: String,
}

/// A key just made or rotated: the key, and its secret (shown this once).
#[derive(Debug, Serialize, ToSchema)]
struct IssuedKeyBody {
    #[serde(flatten)]
    key: KeyInfo,
    /// The secret (`sg-…`).
    secret: String,
}

/// What the management handlers reach.
#[derive(Debug, Clone)]
struct Admin {
    engine: Engine,
    token: Arc<str>,
    config: Arc<ConfigView>,
}

/// Where the management API lives.
pub(crate) const PREFIX: &str = "/admin/api/";

/// The management routes, behind the admin token.
pub(crate) fn router(engine: Engine, token: &str, config: &Config) -> Router {
    let state = Admin {
        engine,
        token: Arc::from(token),
        config: Arc::new(ConfigView::of(config)),
    };
    Router::new()
        .route("/admin/api/health", get(health))
        .route("/admin/api/accounts", get(accounts))
        .route("/admin/api/quota", get(quota))
        .route(
            "/admin/api/accounts/{name}",
            get(account).delete(remove_account),
        )
        .route("/admin/api/accounts/{name}/enable", post(enable_account))
        .route("/admin/api/accounts/{name}/disable", post(disable_account))
        .route("/admin/api/accounts/{name}/refresh", post(refresh_account))
        .route("/admin/api/accounts/{name}/reset", post(reset_account))
        .route("/admin/api/accounts/{name}/priority", post(set_priority))
        .route("/admin/api/models", get(models))
        .route("/admin/api/config", get(config_in_force))
        .route("/admin/api/logins", post(start_login))
        .route("/admin/api/logins/{flow}/complete", post(complete_login))
        .route("/admin/api/keys", get(keys).post(create_key))
        .route("/admin/api/keys/{name}", get(key))
        .route("/admin/api/keys/{name}/revoke", post(revoke_key))
        .route("/admin/api/keys/{name}/rotate", post(rotate_key))
        .route("/admin/api/usage", get(usage))
        // Before the token check wraps it: without the token, a wrong
        // method is a 401 like everything else.
        .method_not_allowed_fallback(wrong_method)
        .route_layer(middleware::from_fn_with_state(state.clone(), authorized))
        .route("/admin/api/openapi.json", get(openapi))
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
}

/// A path under [`PREFIX`] that names no route.
pub(crate) fn no_route(method: &Method, path: &str) -> Response {
    failure(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("there is no route for {method} {path}"),
    )
}

/// axum adds the `Allow` header to what this answers.
async fn wrong_method(method: Method, uri: Uri) -> Response {
    failure(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        format!("{} does not accept {method}", uri.path()),
    )
}

/// A request body; one over the size limit or that cannot be read is
/// refused in the API's error shape, not in axum's plain text.
struct Body(Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                failure(
                    rejection.status(),
                    "invalid_request_error",
                    rejection.body_text(),
                )
            })
    }
}

/// The name or id in a route's path; one that does not decode (a bad
/// percent-escape, invalid UTF-8) is refused in the API's error shape.
struct Name(String);

impl<S: Send + Sync> FromRequestParts<S> for Name {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(name)) => Ok(Self(name)),
            Err(rejection) => Err(failure(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                rejection.body_text(),
            )),
        }
    }
}

/// The `OpenAPI` document (open: it holds no secret).
async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// A JSON body of the shape `T` (`shape` names it in the refusal, with
/// the field at fault).
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, Box<Response>> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| {
            let path = error.path().to_string();
            let error = error.into_inner();
            if path == "." {
                format!("the body is not {shape}: {error}")
            } else {
                format!("the body is not {shape}: `{path}`: {error}")
            }
        })
        .and_then(|value| {
            deserializer
                .end()
                .map(|()| value)
                .map_err(|error| format!("the body is not {shape}: {error}"))
        })
        .map_err(|message| {
            Box::new(failure(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                message,
            ))
        })
}

fn failure(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = Failure {
        error: FailureDetail {
            kind: kind.to_owned(),
            message: message.into(),
        },
    };
    (status, Json(body)).into_response()
}

async fn authorized(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if subgate_auth::client_key::same_secret(token, &admin.token) => {
            next.run(request).await
        }
        _ => {
            // The path only: names, never a secret.
            tracing::warn!(
                method = %request.method(),
                path = request.uri().path(),
                token_sent = presented.is_some(),
                "Management API call refused: no valid admin token."
            );
            failure(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "the management API needs the admin token as `Authorization: Bearer`; `subgate admin token` prints it",
            )
        }
    }
}

fn account_failure(error: &AccountError) -> Response {
    let status = match error {
        AccountError::Unknown(_) => StatusCode::NOT_FOUND,
        AccountError::Ambiguous(_)
        | AccountError::InConfig { .. }
        | AccountError::NothingToRefresh { .. }
        | AccountError::CannotRenew { .. } => StatusCode::CONFLICT,
        AccountError::Refresh(_) => StatusCode::BAD_GATEWAY,
        AccountError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let kind = match status {
        StatusCode::BAD_GATEWAY => "upstream_error",
        StatusCode::INTERNAL_SERVER_ERROR => "internal_error",
        _ => "invalid_request_error",
    };
    failure(status, kind, error.to_string())
}

fn account_answer(result: Result<AccountStatus, AccountError>) -> Response {
    match result {
        Ok(account) => Json(account).into_response(),
        Err(error) => account_failure(&error),
    }
}

/// One account, by name, `provider/name` or id.
#[utoipa::path(get, path = "/admin/api/accounts/{name}",
    params(("name" = String, Path, description = "The account's name, `provider/name` or id")),
    responses(
        (status = 200, body = AccountStatus),
        (status = 401, body = Failure),
        (status = 404, body = Failure),
        (status = 409, body = Failure),
    ))]
async fn account(State(admin): State<Admin>, Name(name): Name) -> Response {
    account_answer(admin.engine.account(&name).await)
}

/// Puts a stored login back into routing (a running gateway uses it from
/// its next start); answers the account as it was.
#[utoipa::path(post, path = "/admin/api/accounts/{name}/enable",
    params(("name" = String, Path, description = "The account's name, `provider/name` or id")),
    responses(
        (status = 200, body = AccountStatus),
        (status = 401, body = Failure),
        (status = 404, body = Failure),
        (status = 409, body = Failure),
    ))]
async fn enable_account(State(admin): State<Admin>, Name(name): Name) -> Response {
    account_answer(admin.engine.set_account_enabled(&name, true).await)
}

/// Takes a stored login out of routing, keeping it; answers the account as
/// it was.
#[utoipa::path(post, path = "/admin/api/accounts/{name}/disable",
    params(("name" = String, Path, description = "The account's name, `provider/name` or id")),
    responses(
        (status = 200, body = AccountStatus),
        (status = 401, body = Failure),
        (status = 404, body = Failure),
        (status = 409, body = Failure),
    ))]
async fn disable_account(State(admin): State<Admin>, Name(name): Name) -> Response {
    account_answer(admin.engine.set_account_enabled(&name, false).await)
}

/// Renews a login's access token now; answers the account with its new
/// expiry.
#[utoipa::path(post, path = "/admin/api/accounts/{name}/refresh",
    params(("name" = String, Path, description = "The account's name, `provider/name` or id")),
    responses(
        (status = 200, body = AccountStatus),
        (status = 401, body = Failure),
        (status = 404, body = Failure),
        (status = 409, body = Failure),
        (status = 502, body = Failure),
    ))]
async fn refresh_account(State(admin): State<Admin>, Name(name): Name) -> Response {
    account_answer(admin.engine.refresh_account(&name).await)
}

/// Deletes a stored login and its rests; answers what was removed.
#[utoipa::path(delete, path = "/admin/api/accounts/{name}",
    params(("name" = String, Path, description = "The account's name, `provider/name` or id")),
    responses(
        (status = 200, body = AccountStatus),
        (status = 401, body = Failure),
        (status = 404, body = Failure),
        (status = 409, body = Failure),
    ))]
async fn remove_account(State(admin): State<Admin>, Name(name): Name) -> Response {
    account_answer(admin.engine.remove_account(&name).await)
}

/// What a reset cleared.
#[derive(Debug, Serialize, ToSchema)]
struct Reset {
    /// The account.
    account: String,
    /// Rests cleared (ended ones included).
    cleared: u64,
}

/// Clears an account's rests (cooldowns, quota, credential and fault
/// rests).
#[utoipa::path(post, path = "/admin/api/accounts/{name}/reset",
    params(("name" = String, Path, description = "The account's name, `provider/name` or id")),
    responses(
        (status = 200, body = Reset),
        (status = 401, body = Failure),
        (status = 404, body = Failure),
        (status = 409, body = Failure),
    ))]
async fn reset_account(State(admin): State<Admin>, Name(name): Name) -> Response {
    match admin.engine.reset_account(&name).await {
        Ok((account, cleared)) => Json(Reset { account, cleared }).into_response(),
        Err(error) => account_failure(&error),
    }
}

/// Where an account stands under the `priority` strategy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Priority {
    /// Lower is tried first.
    priority: u32,
}

/// Sets a stored login's priority (a running gateway uses it from its
/// next start); answers the account as it now is.
#[utoipa::path(post, path = "/admin/api/accounts/{name}/priority",
    params(("name" = String, Path, description = "The account's name, `provider/name` or id")),
    request_body = Priority,
    responses(
        (status = 200, body = AccountStatus),
        (status = 400, body = Failure),
        (status = 401, body = Failure),
        (status = 404, body = Failure),
        (status = 409, body = Failure),
    ))]
async fn set_priority(State(admin): State<Admin>, Name(name): Name, Body(body): Body) -> Response {
    match json_body::<Priority>(&body, "`{\"priority\": N}`") {
        Ok(Priority { priority }) => {
            account_answer(admin.engine.set_account_priority(&name, priority).await)
        }
        Err(refusal) => *refusal,
    }
}

/// A login to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StartLogin {
    /// The subscription provider (`claude` or `gemini-cli`, or an
    /// entry's name).
    provider: String,
}

/// A login waiting for the user. `paste`: open `url` anywhere, approve,
/// and send the code the page shows to `logins/{flow}/complete`.
/// `device`: open `url` anywhere and enter `user_code`, while a call to
/// `logins/{flow}/complete` (without a code) waits for the approval.
#[derive(Debug, Serialize, ToSchema)]
struct LoginPage {
    /// `paste` or `device`.
    method: String,
    /// Names the login when completing it.
    flow: String,
    /// The provider's page.
    url: String,
    /// What to enter on the page (device logins).
    user_code: Option<String>,
    /// How long the login can be completed, in seconds.
    expires_in: u64,
}

/// What completes a login.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CompleteLogin {
    /// The code the page showed (`CODE#STATE` or the bare code); none for
    /// a device login.
    code: Option<String>,
    /// The account's name [default: its email].
    name: Option<String>,
}

fn login_failure(error: &LoginError) -> Response {
    let (status, kind) = match error {
        LoginError::UnknownProvider(_) => (StatusCode::NOT_FOUND, "invalid_request_error"),
        LoginError::Ambiguous(..)
        | LoginError::Unsupported { .. }
        | LoginError::BadCode
        | LoginError::Expired
        | LoginError::CodeExpired
        | LoginError::Denied(_) => (StatusCode::BAD_REQUEST, "invalid_request_error"),
        LoginError::Refused(_) | LoginError::Unreachable(_) => {
            (StatusCode::BAD_GATEWAY, "upstream_error")
        }
        LoginError::Store(_) | LoginError::Local(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
        }
    };
    failure(status, kind, error.to_string())
}

/// Starts a login: one whose code the user pastes back (Claude, Gemini
/// CLI), else a device login (Codex, Copilot, Kiro).
#[utoipa::path(post, path = "/admin/api/logins", request_body = StartLogin, responses(
    (status = 201, body = LoginPage),
    (status = 400, body = Failure),
    (status = 401, body = Failure),
    (status = 404, body = Failure),
))]
async fn start_login(State(admin): State<Admin>, Body(body): Body) -> Response {
    let request: StartLogin = match json_body(&body, "`{\"provider\"}`") {
        Ok(request) => request,
        Err(refusal) => return *refusal,
    };
    match begin(&admin.engine, &request.provider).await {
        Ok(page) => (StatusCode::CREATED, Json(page)).into_response(),
        Err(error) => login_failure(&error),
    }
}

/// Starts the login the provider offers without a local browser.
async fn begin(engine: &Engine, provider: &str) -> Result<LoginPage, LoginError> {
    let entry = engine.login_entry(provider)?.clone();
    let methods = engine.login_provider(&entry)?.login_methods();
    if methods.contains(&LoginMethod::Paste) {
        let start = engine.begin_login(&entry, None).await?;
        return Ok(LoginPage {
            method: "paste".to_owned(),
            flow: start.flow,
            url: start.url,
            user_code: None,
            expires_in: start.expires_in.as_secs(),
        });
    }
    let (flow, start) = engine.begin_device_flow(&entry).await?;
    Ok(LoginPage {
        method: "device".to_owned(),
        flow,
        url: start.verification_uri,
        user_code: Some(start.user_code),
        expires_in: start.expires_in.as_secs(),
    })
}

/// Completes a started login and saves the account (a running gateway
/// uses it from its next start): with the code the page showed, or, for a
/// device login, by waiting until the user approves (or the code
/// expires); a device login's flow is used up by the call.
#[utoipa::path(post, path = "/admin/api/logins/{flow}/complete",
    params(("flow" = String, Path, description = "The `flow` the start answered")),
    request_body = CompleteLogin,
    responses(
        (status = 201, body = Saved),
        (status = 400, body = Failure),
        (status = 401, body = Failure),
        (status = 502, body = Failure),
    ))]
async fn complete_login(
    State(admin): State<Admin>,
    Name(flow): Name,
    Body(body): Body,
) -> Response {
    let parsed = if body.is_empty() {
        Ok(CompleteLogin::default())
    } else {
        json_body(&body, "`{\"code\", \"name\"}`")
    };
    let request: CompleteLogin = match parsed {
        Ok(request) => request,
        Err(refusal) => return *refusal,
    };
    let name = request.name.as_deref();
    let saved = match request.code.as_deref() {
        Some(pasted) => admin.engine.finish_pasted_login(&flow, pasted, name).await,
        None => admin.engine.finish_device_flow(&flow, name).await,
    };
    match saved {
        Ok(saved) => (StatusCode::CREATED, Json(saved)).into_response(),
        Err(error) => login_failure(&error),
    }
}

/// The configuration in force, secrets masked (keys, header values, the
/// database password).
#[utoipa::path(get, path = "/admin/api/config", responses(
    (status = 200, body = ConfigView),
    (status = 401, body = Failure),
))]
async fn config_in_force(State(admin): State<Admin>) -> Response {
    Json(admin.config.as_ref()).into_response()
}

/// The models the gateway serves now, and which provider serves each.
#[utoipa::path(get, path = "/admin/api/models", responses(
    (status = 200, body = [ModelInfo]),
    (status = 401, body = Failure),
))]
async fn models(State(admin): State<Admin>) -> Response {
    Json(admin.engine.models()).into_response()
}

fn key_failure(error: &KeyError) -> Response {
    let status = match error {
        KeyError::NotFound(_) => StatusCode::NOT_FOUND,
        KeyError::Duplicate(_) => StatusCode::CONFLICT,
        KeyError::BadName(_) => StatusCode::BAD_REQUEST,
        KeyError::Random(_) | KeyError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let kind = if status.is_server_error() {
        "internal_error"
    } else {
        "invalid_request_error"
    };
    failure(status, kind, error.to_string())
}

/// Whether the gateway and its store answer.
#[utoipa::path(get, path = "/admin/api/health", responses(
    (status = 200, body = Health),
    (status = 401, body = Failure),
    (status = 503, body = Failure),
))]
async fn health(State(admin): State<Admin>) -> Response {
    match admin.engine.ready().await {
        Ok(()) => Json(Health {
            status: "ok".to_owned(),
        })
        .into_response(),
        Err(error) => failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the store does not answer: {error}"),
        ),
    }
}

/// Every account, API keys and logins, with its state, rests and quota.
#[utoipa::path(get, path = "/admin/api/accounts", responses(
    (status = 200, body = [AccountStatus]),
    (status = 401, body = Failure),
))]
async fn accounts(State(admin): State<Admin>) -> Response {
    listing(admin.engine.all_accounts().await)
}

/// Quota at a glance: per provider, the accounts that can answer now, when
/// the next resting one is back, and each quota window summed.
#[utoipa::path(get, path = "/admin/api/quota", responses(
    (status = 200, body = [ProviderQuota]),
    (status = 401, body = Failure),
))]
async fn quota(State(admin): State<Admin>) -> Response {
    listing(admin.engine.quota_overview().await)
}

/// A listing read from the store as JSON, or a 500 saying why not.
fn listing<T: Serialize, E: std::fmt::Display>(result: Result<T, E>) -> Response {
    match result {
        Ok(listed) => Json(listed).into_response(),
        Err(error) => failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            error.to_string(),
        ),
    }
}

/// Every client key (never a secret).
#[utoipa::path(get, path = "/admin/api/keys", responses(
    (status = 200, body = [KeyInfo]),
    (status = 401, body = Failure),
))]
async fn keys(State(admin): State<Admin>) -> Response {
    match admin.engine.keys().await {
        Ok(keys) => Json(keys).into_response(),
        Err(error) => key_failure(&error),
    }
}

/// One client key, by name or id.
#[utoipa::path(get, path = "/admin/api/keys/{name}",
    params(("name" = String, Path, description = "The key's name or id")),
    responses(
        (status = 200, body = KeyInfo),
        (status = 401, body = Failure),
        (status = 404, body = Failure),
    ))]
async fn key(State(admin): State<Admin>, Name(name): Name) -> Response {
    match admin.engine.key(&name).await {
        Ok(key) => Json(key).into_response(),
        Err(error) => key_failure(&error),
    }
}

/// A key to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    /// Its name: letters, digits, `-`, `_`, `.`, `@`.
    name: String,
    /// Model globs it may use (empty: all).
    #[serde(default)]
    models: Vec<String>,
    /// Provider entries it may use (empty: all).
    #[serde(default)]
    providers: Vec<String>,
    /// Accounts it may use (empty: all).
    #[serde(default)]
    accounts: Vec<String>,
    /// How long it works, in seconds (none: until revoked).
    expires_in: Option<u64>,
    /// Most requests per minute.
    rpm: Option<u32>,
    /// Most tokens per minute.
    tpm: Option<u64>,
    /// Most requests in flight.
    concurrency: Option<u32>,
    /// Most spend per period, US dollars.
    budget_usd: Option<f64>,
    /// The budget's period (default `month`).
    budget_period: Option<BudgetPeriod>,
}

/// Makes a client key; the answer holds its secret, shown this once.
#[utoipa::path(post, path = "/admin/api/keys", request_body = CreateKey, responses(
    (status = 201, body = IssuedKeyBody),
    (status = 400, body = Failure),
    (status = 401, body = Failure),
    (status = 409, body = Failure),
))]
async fn create_key(State(admin): State<Admin>, Body(body): Body) -> Response {
    let request: CreateKey = match json_body(&body, "a key") {
        Ok(request) => request,
        Err(refusal) => return *refusal,
    };
    let now = subgate_engine::now_millis();
    let new = NewKey {
        name: request.name,
        scopes: KeyScopes {
            models: request.models,
            providers: request.providers,
            accounts: request.accounts,
        },
        limits: KeyLimits {
            rpm: request.rpm,
            tpm: request.tpm,
            concurrency: request.concurrency,
            budget_usd: request.budget_usd,
            budget_period: request
                .budget_usd
                .map(|_| request.budget_period.unwrap_or(BudgetPeriod::Month)),
        },
        expires_at: request.expires_in.map(|seconds| {
            now.saturating_add(i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX))
        }),
    };
    match admin.engine.create_key(new).await {
        Ok(issued) => issued_response(StatusCode::CREATED, &issued),
        Err(error) => key_failure(&error),
    }
}

fn issued_response(status: StatusCode, issued: &subgate_engine::IssuedKey) -> Response {
    let body = IssuedKeyBody {
        key: issued.key.clone(),
        secret: issued.secret.clone(),
    };
    (status, Json(body)).into_response()
}

/// Revokes a key: it stops working at once.
#[utoipa::path(post, path = "/admin/api/keys/{name}/revoke",
    params(("name" = String, Path, description = "The key's name or id")),
    responses(
        (status = 200, body = KeyInfo),
        (status = 401, body = Failure),
        (status = 404, body = Failure),
    ))]
async fn revoke_key(State(admin): State<Admin>, Name(name): Name) -> Response {
    match admin.engine.revoke_key(&name).await {
        Ok(key) => Json(key).into_response(),
        Err(error) => key_failure(&error),
    }
}

/// Replaces a key's secret: a new key with the same name, scopes, limits
/// and expiry; the old secret stops working.
#[utoipa::path(post, path = "/admin/api/keys/{name}/rotate",
    params(("name" = String, Path, description = "The key's name or id")),
    responses(
        (status = 200, body = IssuedKeyBody),
        (status = 401, body = Failure),
        (status = 404, body = Failure),
    ))]
async fn rotate_key(State(admin): State<Admin>, Name(name): Name) -> Response {
    match admin.engine.rotate_key(&name).await {
        Ok(issued) => issued_response(StatusCode::OK, &issued),
        Err(error) => key_failure(&error),
    }
}

/// `GET /admin/api/usage?since=24h&by=key`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct UsageQuery {
    /// From when: `24h`, `7d` or a UTC date (default `24h`).
    since: Option<String>,
    /// `key` (default), `model`, `account`, `provider` or `day`.
    by: Option<String>,
}

/// The recorded requests added up: requests, failures, tokens and cost
/// per group.
#[utoipa::path(get, path = "/admin/api/usage", params(UsageQuery), responses(
    (status = 200, body = [UsageLine]),
    (status = 400, body = Failure),
    (status = 401, body = Failure),
))]
async fn usage(
    State(admin): State<Admin>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            return failure(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                rejection.body_text(),
            );
        }
    };
    let now = subgate_engine::now_millis();
    let since = match subgate_engine::since(query.since.as_deref().unwrap_or("24h"), now) {
        Ok(since) => since,
        Err(message) => return failure(StatusCode::BAD_REQUEST, "invalid_request_error", message),
    };
    let by = match query.by.as_deref().unwrap_or("key") {
        "key" => UsageGroup::Key,
        "model" => UsageGroup::Model,
        "account" => UsageGroup::Account,
        "provider" => UsageGroup::Provider,
        "day" => UsageGroup::Day,
        other => {
            return failure(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("`by` is one of key, model, account, provider, day, not `{other}`"),
            );
        }
    };
    match admin.engine.usage_report(since, by).await {
        Ok(lines) => Json(lines).into_response(),
        Err(error) => key_failure(&error),
    }
}
