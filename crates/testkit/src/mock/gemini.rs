//! Gemini's API as Google serves it (`reference/protocols.md` §7.4, §4.3):
//! `x-goog-api-key`, `generateContent`, `streamGenerateContent` as SSE with
//! `alt=sse` and as one JSON array without, thought parts with
//! `thoughtSignature`, function calls whole and without ids, Google's RPC
//! error envelope, `countTokens` and the model list.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::common::{
    Check, Gate, Wire, add_headers, admit, json_response, output_words, record, stream, words,
};
use super::{Output, Scenario, State, Stop, lock};

pub(super) fn google_error(status: StatusCode, rpc_status: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"error": {"code": status.as_u16(), "message": message, "status": rpc_status}}),
    )
}

fn check(state: &State, headers: &HeaderMap) -> Option<Response> {
    let required = lock(&state.required_key).clone()?;
    let sent = headers
        .get("x-goog-api-key")
        .and_then(|value| value.to_str().ok());
    if sent == Some(required.as_str()) {
        return None;
    }
    Some(google_error(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
    ))
}

pub(super) fn prompt_tokens(request: &Value) -> u64 {
    let request = request.get("generateContentRequest").unwrap_or(request);
    words(&request["contents"]) + words(&request["systemInstruction"])
}

pub(super) async fn call(
    AxumState(state): AxumState<Arc<State>>,
    Path(call): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = record(&state, method, &uri, headers.clone(), body.clone());
    let Some((model, action)) = call.rsplit_once(':') else {
        super::OutcomeGuard::new(state.clone(), index).complete();
        return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such method");
    };
    let model = model.to_owned();
    if action == "countTokens" {
        super::OutcomeGuard::new(state.clone(), index).complete();
        if let Some(refusal) = check(&state, &headers) {
            return refusal;
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
        return json_response(
            StatusCode::OK,
            &json!({"totalTokens": prompt_tokens(&request)}),
        );
    }
    let gate = Gate {
        check: Check::Headers(check),
        credential: "x-goog-api-key",
        not_json: || {
            google_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "Invalid JSON payload received.",
            )
        },
    };
    let (scenario, mut guard, request) =
        match admit(&state, index, &uri, &headers, &body, &gate).await {
            Ok(admitted) => admitted,
            Err(answer) => return answer,
        };
    let delivery = match action {
        "generateContent" => Delivery::Whole,
        "streamGenerateContent" => Delivery::Stream { sse: alt_sse(&uri) },
        _ => {
            guard.complete();
            return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such method");
        }
    };
    generation(&model, delivery, &scenario, guard, &request, None)
}

/// Whether the query asks for SSE (`alt=sse`).
pub(super) fn alt_sse(uri: &Uri) -> bool {
    uri.query()
        .is_some_and(|query| query.split('&').any(|pair| pair == "alt=sse"))
}

/// How a generation is answered.
#[derive(Debug, Clone, Copy)]
pub(super) enum Delivery {
    /// `generateContent`: one JSON body.
    Whole,
    /// `streamGenerateContent`: SSE with `alt=sse`, one JSON array without.
    Stream {
        /// Whether the query said `alt=sse`.
        sse: bool,
    },
}

/// The answer to an admitted generation request (`request` is the
/// `GenerateContentRequest`) with the scenario's outputs. With a `trace`,
/// each chunk (and the whole body) goes inside Code Assist's
/// `{"response":…,"traceId":…}` wrapper, without a `responseId` of its own
/// (§4.2); an in-stream failure stays a bare `{"error":…}` object.
pub(super) fn generation(
    model: &str,
    delivery: Delivery,
    scenario: &Scenario,
    mut guard: super::OutcomeGuard,
    request: &Value,
    trace: Option<&str>,
) -> Response {
    let outputs = scenario.answer();
    let usage = json!({
        "promptTokenCount": prompt_tokens(request),
        "candidatesTokenCount": output_words(&outputs),
        "totalTokenCount": prompt_tokens(request) + output_words(&outputs),
    });
    let finish = match scenario.stop {
        Some(Stop::MaxTokens) => "MAX_TOKENS",
        Some(Stop::StopSequence(_)) | None => "STOP",
    };
    match delivery {
        Delivery::Whole => {
            guard.complete();
            let parts: Vec<Value> = outputs
                .iter()
                .flat_map(|output| parts(output, None))
                .collect();
            let mut response = json_response(
                StatusCode::OK,
                &wrap(chunk(model, &parts, Some(finish), Some(&usage)), trace),
            );
            add_headers(&mut response, scenario);
            response
        }
        Delivery::Stream { sse } => {
            let events = stream_events(model, &outputs, finish, &usage, sse, scenario, trace);
            stream(
                events,
                scenario,
                guard,
                if sse {
                    "text/event-stream"
                } else {
                    "application/json"
                },
                &|message, sent| {
                    let error = json!({"error": {"code": 503, "message": message, "status": "UNAVAILABLE"}});
                    Bytes::from(match (sse, sent) {
                        (true, _) => format!("data: {error}\r\n\r\n"),
                        (false, 0) => format!("[{error}]"),
                        (false, _) => format!(",\r\n{error}]"),
                    })
                },
            )
        }
    }
}

/// `chunk` as it goes out: bare, or in Code Assist's wrapper.
fn wrap(mut chunk: Value, trace: Option<&str>) -> Value {
    match trace {
        None => chunk,
        Some(trace) => {
            if let Some(object) = chunk.as_object_mut() {
                object.remove("responseId");
            }
            json!({"response": chunk, "traceId": trace})
        }
    }
}

/// The parts of one output; a streamed text output comes in `pieces`.
fn parts(output: &Output, pieces: Option<&Scenario>) -> Vec<Value> {
    match output {
        Output::Thinking { text, signature } => {
            let texts = pieces.map_or_else(|| vec![text.clone()], |scenario| scenario.split(text));
            let last = texts.len().saturating_sub(1);
            texts
                .into_iter()
                .enumerate()
                .map(|(n, text)| {
                    let mut part = json!({"text": text, "thought": true});
                    if n == last
                        && let Some(signature) = signature
                    {
                        part["thoughtSignature"] = signature.as_str().into();
                    }
                    part
                })
                .collect()
        }
        Output::Text(text) => pieces
            .map_or_else(|| vec![text.clone()], |scenario| scenario.split(text))
            .into_iter()
            .map(|text| json!({"text": text}))
            .collect(),
        Output::ToolCall {
            name, arguments, ..
        } => {
            let args: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
            vec![json!({"functionCall": {"name": name, "args": args}})]
        }
    }
}

fn chunk(model: &str, parts: &[Value], finish: Option<&str>, usage: Option<&Value>) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if let Some(finish) = finish {
        candidate["finishReason"] = finish.into();
    }
    let mut chunk =
        json!({"candidates": [candidate], "modelVersion": model, "responseId": "mock-response"});
    if let Some(usage) = usage {
        chunk["usageMetadata"] = usage.clone();
    }
    chunk
}

fn stream_events(
    model: &str,
    outputs: &[Output],
    finish: &str,
    usage: &Value,
    sse: bool,
    scenario: &Scenario,
    trace: Option<&str>,
) -> Vec<Wire> {
    let mut chunks: Vec<(Value, bool)> = Vec::new();
    for output in outputs {
        let content = matches!(output, Output::Text(_));
        for part in parts(output, Some(scenario)) {
            chunks.push((chunk(model, &[part], None, None), content));
        }
    }
    chunks.push((
        chunk(model, &[json!({"text": ""})], Some(finish), Some(usage)),
        false,
    ));
    let count = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(n, (value, content))| {
            let value = wrap(value, trace);
            let bytes = if sse {
                Bytes::from(format!("data: {value}\r\n\r\n"))
            } else {
                let open = if n == 0 { "[" } else { ",\r\n" };
                let close = if n + 1 == count { "]" } else { "" };
                Bytes::from(format!("{open}{value}{close}"))
            };
            if content {
                Wire::content(bytes)
            } else {
                Wire::meta(bytes)
            }
        })
        .collect()
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
    let models: Vec<Value> = lock(&state.models)
        .iter()
        .map(|id| json!({"name": format!("models/{id}"), "displayName": id, "supportedGenerationMethods": ["generateContent", "countTokens"]}))
        .collect();
    json_response(StatusCode::OK, &json!({"models": models}))
}
