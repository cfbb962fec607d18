//! Mock upstreams: shared machinery (listener, recorder, scenarios, a
//! reset switch on every connection), one module per wire the mocks speak,
//! and the subscription services (Claude, Codex, Copilot, Gemini CLI, Kiro)
//! with the sign-in side they share (`oauth`).

mod anthropic;
mod claude;
mod codex;
mod common;
mod connection;
mod copilot;
mod gemini;
mod gemini_cli;
mod kimi;
mod kiro;
mod oauth;
mod openai_chat;
mod openai_responses;
mod scenario;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Method};
use tokio::sync::Notify;

pub use claude::claude_window_exhausted;
pub use codex::codex_usage_limit;
pub use gemini_cli::{
    gemini_daily_quota_exhausted, gemini_rate_limited, gemini_validation_required,
};
pub use kiro::{
    KIRO_PROFILE_ARN, KiroLogin, KiroScript, kiro_input_too_long, kiro_monthly_limit,
    kiro_overage_limit, kiro_server_error, kiro_throttled,
};
pub use oauth::{DeviceStep, IssuedTokens, MockOAuth};
pub use scenario::{Output, Scenario, Stop, StreamEnd};

/// A request a mock received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as received.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the recorded body is JSON")
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// How a request's answer ended, as the mock saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still being answered.
    Pending,
    /// Answered to the end of its scenario.
    Completed,
    /// The caller went away before the answer was complete.
    Cancelled,
}

#[derive(Debug, Default)]
struct State {
    requests: Mutex<Vec<RecordedRequest>>,
    outcomes: Mutex<Vec<Outcome>>,
    queue: Mutex<VecDeque<Scenario>>,
    /// Scenarios chosen by what the request body says.
    rules: Mutex<Vec<(String, Scenario)>>,
    default: Mutex<Scenario>,
    models: Mutex<Vec<String>>,
    required_key: Mutex<Option<String>>,
    /// Kimi's usage reports, per bearer key.
    usages: Mutex<Vec<(String, serde_json::Value)>>,
    /// `http://127.0.0.1:PORT`, once the listener is bound.
    base: Mutex<String>,
    /// The subscription mocks' issued credentials and sign-in behaviour.
    oauth: MockOAuth,
    claude: Mutex<claude::Settings>,
    codex: Mutex<codex::Settings>,
    copilot: Mutex<copilot::Settings>,
    gemini_cli: Mutex<gemini_cli::Settings>,
    kiro: Mutex<kiro::Settings>,
    changed: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    /// Records a request and returns its index.
    fn record(&self, request: RecordedRequest) -> usize {
        let mut requests = lock(&self.requests);
        requests.push(request);
        lock(&self.outcomes).push(Outcome::Pending);
        self.changed.notify_waiters();
        requests.len() - 1
    }

    fn next_scenario(&self, body: &[u8]) -> Scenario {
        if let Some(scenario) = lock(&self.queue).pop_front() {
            return scenario;
        }
        let text = String::from_utf8_lossy(body);
        lock(&self.rules)
            .iter()
            .find(|(needle, _)| text.contains(needle.as_str()))
            .map_or_else(
                || lock(&self.default).clone(),
                |(_, scenario)| scenario.clone(),
            )
    }

    fn set_outcome(&self, index: usize, outcome: Outcome) {
        if let Some(slot) = lock(&self.outcomes).get_mut(index) {
            *slot = outcome;
        }
        self.changed.notify_waiters();
    }
}

/// Marks a request cancelled if dropped before [`OutcomeGuard::complete`].
struct OutcomeGuard {
    state: Arc<State>,
    index: usize,
    done: bool,
}

impl OutcomeGuard {
    fn new(state: Arc<State>, index: usize) -> Self {
        Self {
            state,
            index,
            done: false,
        }
    }

    fn complete(&mut self) {
        self.done = true;
        self.state.set_outcome(self.index, Outcome::Completed);
    }
}

impl Drop for OutcomeGuard {
    fn drop(&mut self) {
        if !self.done {
            self.state.set_outcome(self.index, Outcome::Cancelled);
        }
    }
}

/// A mock upstream on a loopback port. It stops when dropped.
#[derive(Debug)]
pub struct MockUpstream {
    address: SocketAddr,
    /// What the provider's `base_url` ends with (`/v1` for OpenAI).
    base_path: &'static str,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockUpstream {
    /// Starts a mock of OpenAI (or any OpenAI-compatible server):
    /// `POST /v1/chat/completions`, `POST /v1/responses`, `GET /v1/models`.
    pub async fn openai() -> Self {
        use axum::routing::{get, post};
        let state = Arc::new(State::default());
        *lock(&state.models) = vec!["mock-small".to_owned(), "mock-large".to_owned()];
        let router = Router::new()
            .route("/v1/chat/completions", post(openai_chat::chat))
            .route("/v1/responses", post(openai_responses::responses))
            .route("/v1/models", get(openai_chat::models))
            .with_state(state.clone());
        Self::serve(router, state, "/v1").await
    }

    /// The same as [`MockUpstream::openai`], named for tests about Chat
    /// Completions.
    pub async fn openai_chat() -> Self {
        Self::openai().await
    }

    /// Starts a mock of Anthropic's API: `POST /v1/messages`,
    /// `POST /v1/messages/count_tokens`, `GET /v1/models`.
    pub async fn anthropic() -> Self {
        use axum::routing::{get, post};
        let state = Arc::new(State::default());
        *lock(&state.models) = vec!["claude-mock-4".to_owned()];
        let router = Router::new()
            .route("/v1/messages", post(anthropic::messages))
            .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
            .route("/v1/models", get(anthropic::models))
            .with_state(state.clone());
        Self::serve(router, state, "").await
    }

    /// Starts a mock of Google's Gemini API: `POST
    /// /v1beta/models/{model}:generateContent|streamGenerateContent|countTokens`,
    /// `GET /v1beta/models`.
    pub async fn gemini() -> Self {
        use axum::routing::{get, post};
        let state = Arc::new(State::default());
        *lock(&state.models) = vec!["gemini-mock-pro".to_owned()];
        let router = Router::new()
            .route("/v1beta/models", get(gemini::models))
            .route("/v1beta/models/{*call}", post(gemini::call))
            .with_state(state.clone());
        Self::serve(router, state, "").await
    }

    /// Starts a mock of Kimi For Coding: `POST /coding/v1/chat/completions`
    /// (403 `access_terminated_error` unless the `User-Agent` names a
    /// coding agent), `GET /coding/v1/models`, `GET /coding/v1/usages`.
    pub async fn kimi() -> Self {
        use axum::routing::{get, post};
        let state = Arc::new(State::default());
        *lock(&state.models) = vec!["kimi-for-coding".to_owned()];
        let router = Router::new()
            .route("/coding/v1/chat/completions", post(kimi::chat))
            .route("/coding/v1/models", get(openai_chat::models))
            .route("/coding/v1/usages", get(kimi::usages))
            .with_state(state.clone());
        Self::serve(router, state, "/coding/v1").await
    }

    /// Kimi's usage endpoint reports, for requests with bearer `key`, a
    /// weekly quota of `limit` with `remaining` left, resetting at `reset`
    /// (RFC 3339).
    pub fn set_kimi_usage(&self, key: &str, limit: u64, remaining: u64, reset: &str) {
        let mut usages = lock(&self.state.usages);
        usages.retain(|(owner, _)| owner != key);
        usages.push((key.to_owned(), kimi::usage_report(limit, remaining, reset)));
    }

    async fn serve(router: Router, state: Arc<State>, base_path: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let address = listener.local_addr().expect("reading the bound address");
        *lock(&state.base) = format!("http://{address}");
        // Every request can reach its connection, to reset it.
        let service = router
            .layer(axum::middleware::from_fn(connection::scope))
            .into_make_service_with_connect_info::<connection::Connection>();
        #[expect(
            clippy::disallowed_methods,
            reason = "the mock lives as long as the test and is aborted on drop"
        )]
        let server = tokio::spawn(async move {
            let _ = axum::serve(connection::ResettableListener(listener), service).await;
        });
        Self {
            address,
            base_path,
            state,
            server,
        }
    }

    /// The base URL a provider entry configures: `http://127.0.0.1:PORT/v1`
    /// for OpenAI, `http://127.0.0.1:PORT/backend-api/codex` for Codex,
    /// `http://127.0.0.1:PORT` for Anthropic, Gemini, Claude and Copilot.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.address, self.base_path)
    }

    /// The base URL of a subscription mock's sign-in side (its authorize,
    /// token and device endpoints; GitHub's web and API for Copilot):
    /// `http://127.0.0.1:PORT`.
    pub fn auth_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The credentials a subscription mock has issued, and the knobs of its
    /// sign-in endpoints.
    pub fn oauth(&self) -> &MockOAuth {
        &self.state.oauth
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The next request gets `scenario` (queued scenarios are used in order).
    pub fn enqueue(&self, scenario: Scenario) {
        lock(&self.state.queue).push_back(scenario);
    }

    /// Requests with no queued scenario whose body contains `needle` get
    /// `scenario` (the first matching rule wins). Lets a client steer the
    /// mock through what it asks, as the SDK suite does.
    pub fn when_body_contains(&self, needle: &str, scenario: Scenario) {
        lock(&self.state.rules).push((needle.to_owned(), scenario));
    }

    /// Requests with no queued scenario get this one.
    pub fn set_default(&self, scenario: Scenario) {
        *lock(&self.state.default) = scenario;
    }

    /// The models the mock's catalog lists (`GET /v1/models`, Codex's
    /// `/models`, Copilot's `/models`, Kiro's `ListAvailableModels`; Copilot,
    /// Gemini CLI and Kiro also refuse other models).
    pub fn set_models(&self, models: &[&str]) {
        *lock(&self.state.models) = models.iter().map(|model| (*model).to_owned()).collect();
    }

    /// Refuses requests (401, OpenAI's shape) whose bearer key is not `key`
    /// (the API-key mocks; the subscription mocks check the tokens they
    /// issued).
    pub fn require_key(&self, key: &str) {
        *lock(&self.state.required_key) = Some(key.to_owned());
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// Requests received on `path`.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.path == path)
            .collect()
    }

    /// How request `index` ended, waiting up to `limit` for it to leave
    /// [`Outcome::Pending`].
    pub async fn outcome(&self, index: usize, limit: Duration) -> Outcome {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.state.changed.notified();
            let outcome = lock(&self.state.outcomes).get(index).copied();
            match outcome {
                Some(Outcome::Pending) | None => {}
                Some(done) => return done,
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return lock(&self.state.outcomes)
                    .get(index)
                    .copied()
                    .unwrap_or(Outcome::Pending);
            }
        }
    }
}
