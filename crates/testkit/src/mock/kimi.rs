//! Kimi For Coding as it serves coding agents (`reference/protocols.md`
//! §6): Chat Completions under `/coding/v1`, open only to clients whose
//! `User-Agent` names a known coding agent (others get 403
//! `access_terminated_error`), `reasoning_content` deltas, and
//! `GET /coding/v1/usages` reporting each key's quota with numbers written
//! as strings.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::response::Response;
use http::header::{AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::json;

use super::common::{Check, Gate, json_response, record};
use super::openai_chat::{OPENAI_GATE, chat_behind, check_key, openai_error};
use super::{OutcomeGuard, State, lock};

/// User agents of the coding agents Kimi serves.
const AGENTS: [&str; 4] = ["KimiCLI/", "kimi-code-cli/", "claude-cli/", "RooCode/"];

const KIMI_GATE: Gate = Gate {
    check: Check::Headers(check_agent),
    credential: OPENAI_GATE.credential,
    not_json: OPENAI_GATE.not_json,
};

fn check_agent(state: &State, headers: &HeaderMap) -> Option<Response> {
    let agent = headers
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !AGENTS.iter().any(|prefix| agent.starts_with(prefix)) {
        return Some(openai_error(
            StatusCode::FORBIDDEN,
            "Kimi For Coding is currently only available for Coding Agents such as Kimi CLI, Claude Code, Roo Code, Kilo Code, etc.",
            "access_terminated_error",
            None,
        ));
    }
    check_key(state, headers)
}

pub(super) async fn chat(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    chat_behind(&KIMI_GATE, &state, method, &uri, headers, body).await
}

/// The quota of the key the request carries, as set by
/// [`super::MockUpstream::set_kimi_usage`]; an empty report otherwise.
pub(super) async fn usages(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let index = record(&state, method, &uri, headers.clone(), Bytes::new());
    OutcomeGuard::new(state.clone(), index).complete();
    if let Some(refusal) = check_agent(&state, &headers) {
        return refusal;
    }
    let key = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    let report = lock(&state.usages)
        .iter()
        .find(|(owner, _)| owner == key)
        .map_or_else(|| json!({}), |(_, report)| report.clone());
    json_response(StatusCode::OK, &report)
}

/// A usage report shaped as Kimi writes it: the weekly quota in `usage`,
/// a five-hour window in `limits`, numbers as strings.
pub(super) fn usage_report(limit: u64, remaining: u64, reset: &str) -> serde_json::Value {
    json!({
        "user": {"membership": {"level": "LEVEL_ADVANCED"}},
        "usage": {
            "limit": limit.to_string(),
            "used": (limit - remaining.min(limit)).to_string(),
            "remaining": remaining.to_string(),
            "resetTime": reset,
        },
        "limits": [{
            "window": {"duration": 300, "timeUnit": "TIME_UNIT_MINUTE"},
            "detail": {"limit": "200", "remaining": "200", "resetTime": reset},
        }],
    })
}
