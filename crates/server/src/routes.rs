//! The routes: path → handler, and nothing else of substance.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, FromRequestParts, Path, RawQuery, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use http::header::ALLOW;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use subgate_core::Dialect;
use subgate_engine::{ClientKey, ClientRequest, Engine, GatewayError, Reply};
use subgate_protocol::models::{self, ListShape};

use crate::respond;

/// What every handler can reach.
#[derive(Debug, Clone)]
struct AppState {
    engine: Engine,
    max_body_bytes: usize,
    read_timeout: Duration,
}

/// How long `/readyz` waits for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The client key a request came with, checked by [`authenticate`].
#[derive(Debug, Clone)]
struct Key(Option<Arc<ClientKey>>);

/// The methods a Gemini model path takes after its `:`.
const GEMINI_METHODS: [&str; 3] = ["generateContent", "streamGenerateContent", "countTokens"];

/// A route's path parameter. One that does not decode (a bad
/// percent-escape, invalid UTF-8) is refused in the route's dialect, not
/// in axum's plain text.
struct Param(String);

impl<S: Send + Sync> FromRequestParts<S> for Param {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(respond::error(
                route_dialect(parts.uri.path(), &parts.headers),
                &GatewayError::bad_request(rejection.body_text(), None),
            )),
        }
    }
}

/// The client APIs, the health routes, and (with the admin token) the
/// management API.
pub fn router(engine: Engine, config: &subgate_config::Config, admin_token: &str) -> Router {
    let max_body_bytes = config.server.max_body_bytes;
    let admin = crate::admin::router(engine.clone(), admin_token, config);
    let state = AppState {
        engine,
        max_body_bytes,
        read_timeout: config.server.read_timeout,
    };
    let clients = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/responses", post(responses))
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models_list))
        .route("/v1/models/{*id}", get(model_get))
        .route("/v1beta/models", get(gemini_models))
        .route(
            "/v1beta/models/{*call}",
            post(gemini_call).get(gemini_model),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .merge(clients)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
        .merge(admin)
}

/// Checks the client key (where keys are required, or one was sent)
/// before any client route runs; a refusal is written in the route's
/// dialect.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    match state
        .engine
        .authenticate(request.headers(), request.uri().query())
    {
        Ok(key) => {
            request.extensions_mut().insert(Key(key));
            next.run(request).await
        }
        Err(error) => {
            let dialect = route_dialect(request.uri().path(), request.headers());
            state.engine.record_refused(dialect, &error);
            respond::error(dialect, &error)
        }
    }
}

/// The dialect of the client route at `path`.
fn route_dialect(path: &str, headers: &HeaderMap) -> Dialect {
    if path.starts_with("/v1/messages") {
        Dialect::Anthropic
    } else if path.starts_with("/v1/responses") {
        Dialect::OpenAiResponses
    } else if path.starts_with("/v1/models") && list_shape(headers) == ListShape::Anthropic {
        Dialect::Anthropic
    } else {
        dialect_of(path)
    }
}

/// Reads a request body, refusing more than the configured limit or a
/// body that takes longer than `server.read_timeout`.
async fn read_body(state: &AppState, dialect: Dialect, body: Body) -> Result<Bytes, Response> {
    let reading = Limited::new(body, state.max_body_bytes).collect();
    let error = match tokio::time::timeout(state.read_timeout, reading).await {
        Ok(Ok(collected)) => return Ok(collected.to_bytes()),
        Ok(Err(cause)) => {
            if cause
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                GatewayError::payload_too_large(state.max_body_bytes)
            } else {
                GatewayError::bad_request(
                    format!("the request body could not be read: {cause}"),
                    None,
                )
            }
        }
        Err(_elapsed) => GatewayError::body_too_slow(state.read_timeout),
    };
    state.engine.record_refused(dialect, &error);
    Err(respond::error(dialect, &error))
}

fn answer(dialect: Dialect, result: Result<Reply, GatewayError>) -> Response {
    match result {
        Ok(reply) => respond::reply(reply),
        Err(error) => respond::error(dialect, &error),
    }
}

async fn generate(
    state: AppState,
    dialect: Dialect,
    key: Key,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(&state, dialect, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let mut request = ClientRequest::new(dialect, body, headers);
    request.key = key.0;
    answer(dialect, state.engine.generate(request).await)
}

async fn chat_completions(
    State(state): State<AppState>,
    Extension(key): Extension<Key>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    generate(state, Dialect::OpenAiChat, key, headers, body).await
}

async fn responses(
    State(state): State<AppState>,
    Extension(key): Extension<Key>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    generate(state, Dialect::OpenAiResponses, key, headers, body).await
}

async fn messages(
    State(state): State<AppState>,
    Extension(key): Extension<Key>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    generate(state, Dialect::Anthropic, key, headers, body).await
}

async fn count_tokens(
    State(state): State<AppState>,
    Extension(key): Extension<Key>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dialect = Dialect::Anthropic;
    let body = match read_body(&state, dialect, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let mut request = ClientRequest::new(dialect, body, headers);
    request.key = key.0;
    answer(dialect, state.engine.count_tokens(request).await)
}

/// `POST /v1beta/models/{model}:{method}`.
async fn gemini_call(
    State(state): State<AppState>,
    Extension(key): Extension<Key>,
    Param(call): Param,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dialect = Dialect::Gemini;
    let Some((model, method)) = call.rsplit_once(':') else {
        // `/v1beta/models/{model}` itself is there to be read.
        return not_allowed(
            dialect,
            "POST",
            &format!("/v1beta/models/{call}"),
            "GET,HEAD",
        );
    };
    let stream = match method {
        "generateContent" | "countTokens" => false,
        "streamGenerateContent" => true,
        _ => {
            return respond::error(
                dialect,
                &GatewayError::no_route("POST", &format!("/v1beta/models/{call}")),
            );
        }
    };
    let body = match read_body(&state, dialect, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let sse = query
        .as_deref()
        .is_some_and(|query| query.split('&').any(|pair| pair == "alt=sse"));
    let request = ClientRequest {
        dialect,
        body,
        model: Some(model.to_owned()),
        stream,
        sse,
        headers,
        key: key.0,
    };
    let result = if method == "countTokens" {
        state.engine.count_tokens(request).await
    } else {
        state.engine.generate(request).await
    };
    answer(dialect, result)
}

/// Anthropic's SDKs send `anthropic-version`; OpenAI's do not.
fn list_shape(headers: &HeaderMap) -> ListShape {
    if headers.contains_key("anthropic-version") {
        ListShape::Anthropic
    } else {
        ListShape::OpenAi
    }
}

/// The models a key may use (all of them without one).
fn listed(state: &AppState, key: &Key) -> Vec<subgate_engine::ModelInfo> {
    let mut models = state.engine.models();
    if let Some(key) = &key.0 {
        models.retain(|model| {
            key.scopes.allows_model(&model.id) && key.scopes.allows_provider(&model.provider)
        });
    }
    models
}

async fn models_list(
    State(state): State<AppState>,
    Extension(key): Extension<Key>,
    headers: HeaderMap,
) -> Response {
    let models = listed(&state, &key);
    respond::json(models::list(
        list_shape(&headers),
        models
            .iter()
            .map(|model| (model.id.as_str(), model.provider.as_str())),
    ))
}

async fn model_get(
    State(state): State<AppState>,
    Param(id): Param,
    headers: HeaderMap,
) -> Response {
    let shape = list_shape(&headers);
    let dialect = if shape == ListShape::Anthropic {
        Dialect::Anthropic
    } else {
        Dialect::OpenAiChat
    };
    one_model(&state, dialect, shape, &id)
}

async fn gemini_models(State(state): State<AppState>, Extension(key): Extension<Key>) -> Response {
    let models = listed(&state, &key);
    respond::json(models::list(
        ListShape::Gemini,
        models
            .iter()
            .map(|model| (model.id.as_str(), model.provider.as_str())),
    ))
}

async fn gemini_model(State(state): State<AppState>, Param(id): Param) -> Response {
    if is_gemini_call(&id) {
        return not_allowed(
            Dialect::Gemini,
            "GET",
            &format!("/v1beta/models/{id}"),
            "POST",
        );
    }
    one_model(&state, Dialect::Gemini, ListShape::Gemini, &id)
}

fn one_model(state: &AppState, dialect: Dialect, shape: ListShape, id: &str) -> Response {
    let models = state.engine.models();
    match models.iter().find(|model| model.id == id) {
        Some(model) => respond::json(models::one(shape, &model.id, &model.provider)),
        None => {
            let available: Vec<&str> = models.iter().map(|model| model.id.as_str()).collect();
            respond::error(dialect, &GatewayError::unknown_model(id, &available))
        }
    }
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

/// The dialect of whatever API lives under `path`, for errors on unknown
/// routes.
fn dialect_of(path: &str) -> Dialect {
    if path.starts_with("/v1beta/") {
        Dialect::Gemini
    } else {
        Dialect::OpenAiChat
    }
}

async fn no_route(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if uri.path().starts_with(crate::admin::PREFIX) {
        return crate::admin::no_route(&method, uri.path());
    }
    respond::error(
        route_dialect(uri.path(), &headers),
        &GatewayError::no_route(method.as_str(), uri.path()),
    )
}

/// axum adds the `Allow` header to what this answers, unless it has one.
async fn wrong_method(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let dialect = route_dialect(path, &headers);
    match path.strip_prefix("/v1beta/models/") {
        // One route serves both, so axum would allow both.
        Some(call) if is_gemini_call(call) => not_allowed(dialect, method.as_str(), path, "POST"),
        Some(_) => not_allowed(dialect, method.as_str(), path, "GET,HEAD"),
        None => respond::error(
            dialect,
            &GatewayError::method_not_allowed(method.as_str(), path),
        ),
    }
}

/// Whether a Gemini model path is a call (`{model}:generateContent` …),
/// which takes POST, rather than the model, which is read.
fn is_gemini_call(call: &str) -> bool {
    call.rsplit_once(':')
        .is_some_and(|(_, method)| GEMINI_METHODS.contains(&method))
}

/// A 405 that axum does not know of (the method is in the path), with its
/// `Allow` header.
fn not_allowed(dialect: Dialect, method: &str, path: &str, allow: &'static str) -> Response {
    let mut error = GatewayError::method_not_allowed(method, path);
    error.headers.insert(ALLOW, HeaderValue::from_static(allow));
    respond::error(dialect, &error)
}
