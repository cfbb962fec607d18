//! OpenAI Responses as OpenAI serves it (`reference/protocols.md` §7.2):
//! output items, the SSE lifecycle with sequence numbers and one terminal
//! event, `encrypted_content` when the request includes it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::common::{
    Gate, Wire, add_headers, admit, fragments, json_response, named, output_words, record, stream,
    words,
};
use super::openai_chat::OPENAI_GATE;
use super::{Output, Scenario, State, Stop};

const ID: &str = "resp_mock";

pub(super) async fn responses(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    responses_behind(&OPENAI_GATE, &state, method, &uri, headers, body).await
}

/// Responses behind `gate` (OpenAI's, or a provider's own checks).
pub(super) async fn responses_behind(
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
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    let encrypted = request["include"].as_array().is_some_and(|include| {
        include
            .iter()
            .any(|item| item == "reasoning.encrypted_content")
    });
    let outputs = scenario.answer();
    let input = words(&request["input"]) + words(&request["instructions"]);
    let output_tokens = output_words(&outputs);
    let usage = json!({
        "input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input + output_tokens,
    });
    let (status, incomplete) = match scenario.stop {
        Some(Stop::MaxTokens) => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some(Stop::StopSequence(_)) | None => ("completed", Value::Null),
    };
    let items: Vec<Value> = outputs
        .iter()
        .enumerate()
        .map(|(n, output)| item(output, n, encrypted))
        .collect();
    let done = response(&model, status, &Value::Array(items), &usage, &incomplete);
    if request["stream"].as_bool() != Some(true) {
        guard.complete();
        let mut response = json_response(StatusCode::OK, &done);
        add_headers(&mut response, &scenario);
        return response;
    }
    let events = stream_events(&model, &outputs, &done, encrypted, &scenario);
    let failed = response(&model, "failed", &json!([]), &Value::Null, &Value::Null);
    stream(
        events,
        &scenario,
        guard,
        "text/event-stream",
        &|message, sequence| {
            let mut failed = failed.clone();
            failed["error"] = json!({"code": "server_error", "message": message});
            named(
                "response.failed",
                &json!({"type": "response.failed", "sequence_number": sequence, "response": failed}),
            )
        },
    )
}

fn response(model: &str, status: &str, output: &Value, usage: &Value, incomplete: &Value) -> Value {
    json!({
        "id": ID, "object": "response", "created_at": 1_735_689_600, "status": status, "model": model,
        "output": output, "usage": usage, "incomplete_details": incomplete, "error": null,
        "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
    })
}

fn item(output: &Output, n: usize, encrypted: bool) -> Value {
    match output {
        Output::Thinking { text, signature } => {
            let mut item = json!({"type": "reasoning", "id": format!("rs_mock_{n}"), "summary": [{"type": "summary_text", "text": text}]});
            if encrypted && let Some(signature) = signature {
                item["encrypted_content"] = signature.as_str().into();
            }
            item
        }
        Output::Text(text) => json!({
            "type": "message", "id": format!("msg_mock_{n}"), "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }),
        Output::ToolCall {
            id,
            name,
            arguments,
        } => json!({
            "type": "function_call", "id": format!("fc_mock_{n}"), "call_id": id, "name": name,
            "arguments": arguments, "status": "completed",
        }),
    }
}

struct Numbered {
    sequence: u64,
    events: Vec<Wire>,
}

impl Numbered {
    fn push(&mut self, kind: &str, mut body: Value, content: bool) {
        body["type"] = kind.into();
        body["sequence_number"] = self.sequence.into();
        self.sequence += 1;
        let bytes = named(kind, &body);
        self.events.push(if content {
            Wire::content(bytes)
        } else {
            Wire::meta(bytes)
        });
    }
}

fn stream_events(
    model: &str,
    outputs: &[Output],
    done: &Value,
    encrypted: bool,
    scenario: &Scenario,
) -> Vec<Wire> {
    let mut stream = Numbered {
        sequence: 0,
        events: Vec::new(),
    };
    let start = response(model, "in_progress", &json!([]), &Value::Null, &Value::Null);
    stream.push("response.created", json!({"response": start}), false);
    stream.push("response.in_progress", json!({"response": start}), false);
    for (n, output) in outputs.iter().enumerate() {
        let full = item(output, n, encrypted);
        let id = full["id"].clone();
        match output {
            Output::Thinking { text, .. } => {
                stream.push("response.output_item.added", json!({"output_index": n, "item": {"type": "reasoning", "id": id, "summary": []}}), false);
                stream.push("response.reasoning_summary_part.added", json!({"item_id": id, "output_index": n, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}), false);
                for piece in scenario.split(text) {
                    stream.push("response.reasoning_summary_text.delta", json!({"item_id": id, "output_index": n, "summary_index": 0, "delta": piece}), false);
                }
                stream.push(
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": n, "summary_index": 0, "text": text}),
                    false,
                );
                stream.push("response.reasoning_summary_part.done", json!({"item_id": id, "output_index": n, "summary_index": 0, "part": {"type": "summary_text", "text": text}}), false);
            }
            Output::Text(text) => {
                stream.push("response.output_item.added", json!({"output_index": n, "item": {"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []}}), false);
                stream.push("response.content_part.added", json!({"item_id": id, "output_index": n, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}), false);
                for piece in scenario.split(text) {
                    stream.push("response.output_text.delta", json!({"item_id": id, "output_index": n, "content_index": 0, "delta": piece, "logprobs": []}), true);
                }
                stream.push("response.output_text.done", json!({"item_id": id, "output_index": n, "content_index": 0, "text": text, "logprobs": []}), false);
                stream.push("response.content_part.done", json!({"item_id": id, "output_index": n, "content_index": 0, "part": {"type": "output_text", "text": text, "annotations": []}}), false);
            }
            Output::ToolCall {
                id: call_id,
                name,
                arguments,
            } => {
                stream.push("response.output_item.added", json!({"output_index": n, "item": {"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": "", "status": "in_progress"}}), false);
                for fragment in fragments(arguments) {
                    stream.push(
                        "response.function_call_arguments.delta",
                        json!({"item_id": id, "output_index": n, "delta": fragment}),
                        false,
                    );
                }
                stream.push(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": n, "arguments": arguments}),
                    false,
                );
            }
        }
        stream.push(
            "response.output_item.done",
            json!({"output_index": n, "item": full}),
            false,
        );
    }
    let terminal = if done["status"] == "completed" {
        "response.completed"
    } else {
        "response.incomplete"
    };
    stream.push(terminal, json!({"response": done}), false);
    stream.events
}
