//! The routes: path → handler, and nothing else of substance.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use http::{Method, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use subgate_core::Dialect;
use subgate_engine::{Engine, GatewayError};
use subgate_protocol::openai_chat;

use crate::respond;

/// What every handler can reach.
#[derive(Debug, Clone)]
struct AppState {
    engine: Engine,
    max_body_bytes: usize,
}

/// How long `/readyz` waits for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The client API and health routes.
pub fn router(engine: Engine, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(AppState {
            engine,
            max_body_bytes,
        })
}

/// Reads a request body, refusing more than the configured limit.
async fn read_body(state: &AppState, dialect: Dialect, body: Body) -> Result<Bytes, Response> {
    match Limited::new(body, state.max_body_bytes).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(cause) => {
            let error = if cause
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                GatewayError::payload_too_large(state.max_body_bytes)
            } else {
                GatewayError::bad_request(
                    format!("the request body could not be read: {cause}"),
                    None,
                )
            };
            state.engine.record_refused(dialect, &error);
            Err(respond::error(dialect, &error))
        }
    }
}

async fn chat_completions(State(state): State<AppState>, body: Body) -> Response {
    let dialect = Dialect::OpenAiChat;
    let body = match read_body(&state, dialect, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    match state.engine.chat_completions(body).await {
        Ok(reply) => respond::reply(reply),
        Err(error) => respond::error(dialect, &error),
    }
}

async fn models(State(state): State<AppState>) -> Response {
    let models = state.engine.models();
    respond::json(openai_chat::model_list(
        models
            .iter()
            .map(|model| (model.id.as_str(), model.provider.as_str())),
    ))
}

async fn healthz() -> Response {
    respond::json(br#"{"status":"ok"}"#.to_vec())
}

async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, state.engine.ready()).await {
        Ok(Ok(())) => respond::json(br#"{"status":"ready"}"#.to_vec()),
        Ok(Err(error)) => {
            tracing::warn!(%error, "Readiness check failed: the store does not answer.");
            not_ready("the store does not answer")
        }
        Err(_elapsed) => not_ready("the store did not answer in time"),
    }
}

fn not_ready(reason: &str) -> Response {
    let body = serde_json::json!({"status": "not_ready", "reason": reason});
    let mut response = respond::json(body.to_string().into_bytes());
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
}

async fn no_route(method: Method, uri: Uri) -> Response {
    respond::error(
        Dialect::OpenAiChat,
        &GatewayError::no_route(method.as_str(), uri.path()),
    )
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
    respond::error(
        Dialect::OpenAiChat,
        &GatewayError::method_not_allowed(method.as_str(), uri.path()),
    )
}
