//! The management API under `/admin/api/`, for the admin token only
//! (`Authorization: Bearer`, compared in constant time): health, accounts,
//! client keys and usage. Answers are JSON; errors are
//! `{"error":{"type","message"}}` with the status that fits.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use subgate_engine::{BudgetPeriod, Engine, KeyError, KeyLimits, KeyScopes, NewKey, UsageGroup};

/// What the management handlers reach.
#[derive(Debug, Clone)]
struct Admin {
    engine: Engine,
    token: Arc<str>,
}

/// The management routes, behind the admin token.
pub(crate) fn router(engine: Engine, token: &str) -> Router {
    let state = Admin {
        engine,
        token: Arc::from(token),
    };
    Router::new()
        .route("/admin/api/health", get(health))
        .route("/admin/api/accounts", get(accounts))
        .route("/admin/api/keys", get(keys).post(create_key))
        .route("/admin/api/keys/{name}", get(key))
        .route("/admin/api/keys/{name}/revoke", post(revoke_key))
        .route("/admin/api/keys/{name}/rotate", post(rotate_key))
        .route("/admin/api/usage", get(usage))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorized))
        .with_state(state)
}

fn failure(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"type": kind, "message": message.into()}});
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
        _ => failure(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "the management API needs the admin token as `Authorization: Bearer`; `subgate admin token` prints it",
        ),
    }
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

async fn health(State(admin): State<Admin>) -> Response {
    match admin.engine.ready().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(error) => failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the store does not answer: {error}"),
        ),
    }
}

async fn accounts(State(admin): State<Admin>) -> Response {
    match admin.engine.all_accounts().await {
        Ok(accounts) => Json(accounts).into_response(),
        Err(error) => failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            error.to_string(),
        ),
    }
}

async fn keys(State(admin): State<Admin>) -> Response {
    match admin.engine.keys().await {
        Ok(keys) => Json(keys).into_response(),
        Err(error) => key_failure(&error),
    }
}

async fn key(State(admin): State<Admin>, Path(name): Path<String>) -> Response {
    match admin.engine.key(&name).await {
        Ok(key) => Json(key).into_response(),
        Err(error) => key_failure(&error),
    }
}

/// `POST /admin/api/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    providers: Vec<String>,
    #[serde(default)]
    accounts: Vec<String>,
    /// Seconds from now.
    expires_in: Option<u64>,
    rpm: Option<u32>,
    tpm: Option<u64>,
    concurrency: Option<u32>,
    budget_usd: Option<f64>,
    budget_period: Option<BudgetPeriod>,
}

async fn create_key(State(admin): State<Admin>, body: axum::body::Bytes) -> Response {
    let request: CreateKey = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return failure(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!("the body is not a key: {error}"),
            );
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        });
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
    let mut body = serde_json::to_value(&issued.key).unwrap_or_default();
    body["secret"] = serde_json::Value::from(issued.secret.clone());
    (status, Json(body)).into_response()
}

async fn revoke_key(State(admin): State<Admin>, Path(name): Path<String>) -> Response {
    match admin.engine.revoke_key(&name).await {
        Ok(key) => Json(key).into_response(),
        Err(error) => key_failure(&error),
    }
}

async fn rotate_key(State(admin): State<Admin>, Path(name): Path<String>) -> Response {
    match admin.engine.rotate_key(&name).await {
        Ok(issued) => issued_response(StatusCode::OK, &issued),
        Err(error) => key_failure(&error),
    }
}

/// `GET /admin/api/usage?since=24h&by=key`.
#[derive(Debug, Deserialize)]
struct UsageQuery {
    since: Option<String>,
    by: Option<String>,
}

async fn usage(State(admin): State<Admin>, Query(query): Query<UsageQuery>) -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        });
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
