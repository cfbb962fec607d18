//! OpenAI Chat Completions as OpenAI serves it: the shapes, event order and
//! error bodies of `reference/protocols.md` §7.1. Thinking is sent as
//! DeepSeek-style `reasoning_content`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::response::Response;
use http::header::AUTHORIZATION;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::common::{
    Check, Gate, Wire, add_headers, admit, data, fragments, json_response, output_words, record,
    stream, words,
};
use super::{Output, Scenario, State, Stop, lock};

/// Responses carry this fixed id and time so that two runs of the same
/// request give the same bytes.
const ID: &str = "chatcmpl-mock";
const CREATED: u64 = 1_735_689_600;

pub(super) fn openai_error(
    status: StatusCode,
    message: &str,
    kind: &str,
    code: Option<&str>,
) -> Response {
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

/// `None` when the request may pass, else the 401 OpenAI sends.
/// How both OpenAI APIs turn a request away.
pub(super) const OPENAI_GATE: Gate = Gate {
    check: Check::Headers(check_key),
    credential: "authorization",
    not_json: || {
        openai_error(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            None,
        )
    },
};

pub(super) fn check_key(state: &State, headers: &HeaderMap) -> Option<Response> {
    let required = lock(&state.required_key).clone()?;
    let sent = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if sent == Some(required.as_str()) {
        return None;
    }
    Some(openai_error(
        StatusCode::UNAUTHORIZED,
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        Some("invalid_api_key"),
    ))
}

pub(super) async fn models(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let index = record(&state, method, &uri, headers.clone(), Bytes::new());
    super::OutcomeGuard::new(state.clone(), index).complete();
    if let Some(refusal) = check_key(&state, &headers) {
        return refusal;
    }
    let data: Vec<Value> = lock(&state.models)
        .iter()
        .map(
            |id| json!({"id": id, "object": "model", "created": 1_686_935_002, "owned_by": "mock"}),
        )
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

pub(super) async fn chat(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    chat_behind(&OPENAI_GATE, &state, method, &uri, headers, body).await
}

/// Chat Completions behind `gate` (OpenAI's, or a provider's own checks).
pub(super) async fn chat_behind(
    gate: &Gate,
    state: &Arc<State>,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let state = state.clone();
    let index = record(&state, method, uri, headers.clone(), body.clone());
    let (scenario, mut guard, request) =
        match admit(&state, index, uri, &headers, &body, gate).await {
            Ok(admitted) => admitted,
            Err(answer) => return answer,
        };
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    let outputs = scenario.answer();
    let usage = usage(words(&request["messages"]), output_words(&outputs));
    let finish = finish_reason(&outputs, scenario.stop.as_ref());

    if request["stream"].as_bool() != Some(true) {
        guard.complete();
        let mut response = json_response(StatusCode::OK, &whole(&model, &outputs, finish, &usage));
        add_headers(&mut response, &scenario);
        return response;
    }
    let include_usage = request["stream_options"]["include_usage"].as_bool() == Some(true);
    let events = stream_events(&model, &outputs, finish, &usage, include_usage, &scenario);
    stream(
        events,
        &scenario,
        guard,
        "text/event-stream",
        &|message, _| {
            data(
                &json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}}),
            )
        },
    )
}

fn finish_reason(outputs: &[Output], stop: Option<&Stop>) -> &'static str {
    match stop {
        Some(Stop::MaxTokens) => "length",
        None if outputs
            .iter()
            .any(|output| matches!(output, Output::ToolCall { .. })) =>
        {
            "tool_calls"
        }
        Some(Stop::StopSequence(_)) | None => "stop",
    }
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

fn whole(model: &str, outputs: &[Output], finish: &str, usage: &Value) -> Value {
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for output in outputs {
        match output {
            Output::Thinking { text, .. } => reasoning.push_str(text),
            Output::Text(text) => content.push_str(text),
            Output::ToolCall {
                id,
                name,
                arguments,
            } => {
                calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}));
            }
        }
    }
    let mut message = json!({"role": "assistant", "content": if content.is_empty() && !calls.is_empty() { Value::Null } else { content.into() }, "refusal": null});
    if !reasoning.is_empty() {
        message["reasoning_content"] = reasoning.into();
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": ID, "object": "chat.completion", "created": CREATED, "model": model,
        "system_fingerprint": null,
        "choices": [{"index": 0, "logprobs": null, "finish_reason": finish, "message": message}],
        "usage": usage,
    })
}

fn chunk(model: &str, delta: &Value, finish: Option<&str>, include_usage: bool) -> Value {
    let mut chunk = json!({
        "id": ID, "object": "chat.completion.chunk", "created": CREATED, "model": model,
        "system_fingerprint": null,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    });
    if include_usage {
        chunk["usage"] = Value::Null;
    }
    chunk
}

/// The events of a streamed answer in OpenAI's order: role, reasoning,
/// content, tool-call fragments, finish, the usage chunk when asked for,
/// `[DONE]`.
fn stream_events(
    model: &str,
    outputs: &[Output],
    finish: &str,
    usage: &Value,
    include_usage: bool,
    scenario: &Scenario,
) -> Vec<Wire> {
    let mut events = vec![Wire::meta(data(&chunk(
        model,
        &json!({"role": "assistant", "content": ""}),
        None,
        include_usage,
    )))];
    let mut call_index = 0;
    for output in outputs {
        match output {
            Output::Thinking { text, .. } => {
                for piece in scenario.split(text) {
                    events.push(Wire::meta(data(&chunk(
                        model,
                        &json!({"reasoning_content": piece}),
                        None,
                        include_usage,
                    ))));
                }
            }
            Output::Text(text) => {
                for piece in scenario.split(text) {
                    events.push(Wire::content(data(&chunk(
                        model,
                        &json!({"content": piece}),
                        None,
                        include_usage,
                    ))));
                }
            }
            Output::ToolCall {
                id,
                name,
                arguments,
            } => {
                let first = json!({"tool_calls": [{"index": call_index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]});
                events.push(Wire::meta(data(&chunk(model, &first, None, include_usage))));
                for fragment in fragments(arguments) {
                    let more = json!({"tool_calls": [{"index": call_index, "function": {"arguments": fragment}}]});
                    events.push(Wire::meta(data(&chunk(model, &more, None, include_usage))));
                }
                call_index += 1;
            }
        }
    }
    events.push(Wire::meta(data(&chunk(
        model,
        &json!({}),
        Some(finish),
        include_usage,
    ))));
    if include_usage {
        let mut last = json!({
            "id": ID, "object": "chat.completion.chunk", "created": CREATED, "model": model,
            "system_fingerprint": null, "choices": [],
        });
        last["usage"] = usage.clone();
        events.push(Wire::meta(data(&last)));
    }
    events.push(Wire::meta(Bytes::from_static(b"data: [DONE]\n\n")));
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(events: &[Wire]) -> String {
        events
            .iter()
            .map(|event| String::from_utf8_lossy(&event.bytes).into_owned())
            .collect()
    }

    #[test]
    fn events_follow_openai_order() {
        let scenario = Scenario::reply("abcd").pieces(2);
        let outputs = scenario.answer();
        let events = stream_events("m", &outputs, "stop", &usage(3, 2), true, &scenario);
        let text = text(&events);
        let role = text.find(r#""role":"assistant""#).unwrap();
        let first = text.find(r#""content":"ab""#).unwrap();
        let finish = text.find(r#""finish_reason":"stop""#).unwrap();
        let usage_chunk = text.find(r#""choices":[],"#).unwrap();
        let done = text.find("[DONE]").unwrap();
        assert!(role < first && first < finish && finish < usage_chunk && usage_chunk < done);
    }

    #[test]
    fn tool_calls_stream_in_fragments_and_finish_with_tool_calls() {
        let outputs = vec![Output::ToolCall {
            id: "call_1".into(),
            name: "f".into(),
            arguments: r#"{"a":1}"#.into(),
        }];
        let scenario = Scenario::outputs(outputs.clone());
        let events = stream_events(
            "m",
            &outputs,
            finish_reason(&outputs, None),
            &usage(1, 1),
            false,
            &scenario,
        );
        let text = text(&events);
        assert!(
            text.contains(r#""arguments":"{\"a""#) && text.contains(r#""arguments":"\":1}""#),
            "{text}"
        );
        assert!(text.contains(r#""finish_reason":"tool_calls""#));
    }
}
