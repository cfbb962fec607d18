//! Anthropic Messages as Anthropic serves it (`reference/protocols.md`
//! §7.3, §1.4–1.5): `x-api-key` and `anthropic-version` required, the SSE
//! event order with a ping, thinking with `signature_delta`, tool input in
//! `input_json_delta` fragments cut mid-token, Anthropic's error envelope,
//! `count_tokens` and the model list.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::common::{
    Check, Gate, Wire, add_headers, admit, fragments, json_response, named, output_words, record,
    stream, words,
};
use super::{Output, Scenario, State, Stop, lock};

const ID: &str = "msg_mock";

pub(super) fn anthropic_error(status: StatusCode, kind: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock"}),
    )
}

/// `None` when the request may pass: the version header is there and, when
/// the mock wants one, the right key.
fn check(state: &State, headers: &HeaderMap) -> Option<Response> {
    if headers.get("anthropic-version").is_none() {
        return Some(anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        ));
    }
    let required = lock(&state.required_key).clone()?;
    let sent = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok());
    if sent == Some(required.as_str()) {
        return None;
    }
    Some(anthropic_error(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "invalid x-api-key",
    ))
}

fn input_tokens(request: &Value) -> u64 {
    words(&request["messages"]) + words(&request["system"])
}

/// How Anthropic's API turns a request away.
const ANTHROPIC_GATE: Gate = Gate {
    check: Check::Headers(check),
    credential: "x-api-key",
    not_json,
};

pub(super) fn not_json() -> Response {
    anthropic_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "The request body is not valid JSON.",
    )
}

pub(super) async fn messages(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    messages_behind(&ANTHROPIC_GATE, &state, method, &uri, headers, body).await
}

/// Messages behind `gate` (Anthropic's, or a provider's own checks).
pub(super) async fn messages_behind(
    gate: &Gate,
    state: &Arc<State>,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = record(state, method, uri, headers.clone(), body.clone());
    let (scenario, mut guard, request) = match admit(state, index, uri, &headers, &body, gate).await
    {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    if !request["max_tokens"].is_u64() {
        guard.complete();
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: Field required",
        );
    }
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    let outputs = scenario.answer();
    let input = input_tokens(&request);
    let output = output_words(&outputs);
    let (stop_reason, stop_sequence) = match &scenario.stop {
        Some(Stop::MaxTokens) => ("max_tokens", Value::Null),
        Some(Stop::StopSequence(sequence)) => ("stop_sequence", Value::from(sequence.as_str())),
        None if outputs
            .iter()
            .any(|output| matches!(output, Output::ToolCall { .. })) =>
        {
            ("tool_use", Value::Null)
        }
        None => ("end_turn", Value::Null),
    };
    if request["stream"].as_bool() != Some(true) {
        guard.complete();
        let content: Vec<Value> = outputs.iter().map(block).collect();
        let body = json!({
            "id": ID, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason, "stop_sequence": stop_sequence,
            "usage": {"input_tokens": input, "output_tokens": output, "cache_creation_input_tokens": scenario.cache_tokens.1, "cache_read_input_tokens": scenario.cache_tokens.0},
        });
        let mut response = json_response(StatusCode::OK, &body);
        add_headers(&mut response, &scenario);
        return response;
    }
    let events = stream_events(
        &model,
        &outputs,
        stop_reason,
        &stop_sequence,
        input,
        output,
        &scenario,
    );
    stream(
        events,
        &scenario,
        guard,
        "text/event-stream",
        &|message, _| {
            named(
                "error",
                &json!({"type": "error", "error": {"type": "overloaded_error", "message": message}}),
            )
        },
    )
}

fn block(output: &Output) -> Value {
    match output {
        Output::Thinking { text, signature } => {
            json!({"type": "thinking", "thinking": text, "signature": signature.clone().unwrap_or_default()})
        }
        Output::Text(text) => json!({"type": "text", "text": text}),
        Output::ToolCall {
            id,
            name,
            arguments,
        } => {
            let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
    }
}

fn stream_events(
    model: &str,
    outputs: &[Output],
    stop_reason: &str,
    stop_sequence: &Value,
    input: u64,
    output: u64,
    scenario: &Scenario,
) -> Vec<Wire> {
    let mut events = vec![
        Wire::meta(named(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": ID, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input, "output_tokens": 1, "cache_creation_input_tokens": scenario.cache_tokens.1, "cache_read_input_tokens": scenario.cache_tokens.0},
            }}),
        )),
        Wire::meta(named("ping", &json!({"type": "ping"}))),
    ];
    for (index, output) in outputs.iter().enumerate() {
        let delta = |delta: Value| {
            named(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            )
        };
        match output {
            Output::Thinking { text, signature } => {
                events.push(Wire::meta(named("content_block_start", &json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))));
                for piece in scenario.split(text) {
                    events.push(Wire::meta(delta(
                        json!({"type": "thinking_delta", "thinking": piece}),
                    )));
                }
                if let Some(signature) = signature {
                    events.push(Wire::meta(delta(
                        json!({"type": "signature_delta", "signature": signature}),
                    )));
                }
            }
            Output::Text(text) => {
                events.push(Wire::meta(named("content_block_start", &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}))));
                for piece in scenario.split(text) {
                    events.push(Wire::content(delta(
                        json!({"type": "text_delta", "text": piece}),
                    )));
                }
            }
            Output::ToolCall {
                id,
                name,
                arguments,
            } => {
                events.push(Wire::meta(named("content_block_start", &json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}))));
                events.push(Wire::meta(delta(
                    json!({"type": "input_json_delta", "partial_json": ""}),
                )));
                for fragment in fragments(arguments) {
                    events.push(Wire::meta(delta(
                        json!({"type": "input_json_delta", "partial_json": fragment}),
                    )));
                }
            }
        }
        events.push(Wire::meta(named(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        )));
    }
    events.push(Wire::meta(named("message_delta", &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence}, "usage": {"output_tokens": output}}))));
    events.push(Wire::meta(named(
        "message_stop",
        &json!({"type": "message_stop"}),
    )));
    events
}

pub(super) async fn count_tokens(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    count_tokens_behind(&ANTHROPIC_GATE, &state, method, &uri, &headers, &body)
}

/// `count_tokens` behind `gate` (Anthropic's, or a provider's own checks).
pub(super) fn count_tokens_behind(
    gate: &Gate,
    state: &Arc<State>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let index = record(state, method, uri, headers.clone(), body.clone());
    super::OutcomeGuard::new(state.clone(), index).complete();
    let parsed = serde_json::from_slice::<Value>(body).ok();
    if let Some(refusal) = gate.refuse(state, uri, headers, parsed.as_ref()) {
        return refusal;
    }
    let Some(request) = parsed else {
        return (gate.not_json)();
    };
    if request.get("max_tokens").is_some() {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: Extra inputs are not permitted",
        );
    }
    json_response(
        StatusCode::OK,
        &json!({"input_tokens": input_tokens(&request)}),
    )
}

pub(super) async fn models(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let index = record(&state, method, &uri, headers.clone(), Bytes::new());
    super::OutcomeGuard::new(state.clone(), index).complete();
    if let Some(refusal) = check(&state, &headers) {
        return refusal;
    }
    model_list(&state)
}

/// The model list in Anthropic's shape.
pub(super) fn model_list(state: &State) -> Response {
    let data: Vec<Value> = lock(&state.models)
        .iter()
        .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-09-29T00:00:00Z"}))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"data": data, "has_more": false, "first_id": null, "last_id": null}),
    )
}
