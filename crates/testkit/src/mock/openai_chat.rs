//! The OpenAI Chat Completions wire, as OpenAI serves it: the shapes, event
//! order and error bodies of `reference/protocols.md` §7.1.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::StreamExt;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use super::{OutcomeGuard, RecordedRequest, Scenario, State, StreamEnd, lock};

/// Responses carry this fixed id and time so that two runs of the same
/// request give the same bytes.
const ID: &str = "chatcmpl-mock";
const CREATED: u64 = 1_735_689_600;

pub(super) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .with_state(state)
}

fn record(
    state: &State,
    method: Method,
    uri: &http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> usize {
    state.record(RecordedRequest {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body,
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

/// `None` when the request may pass, else the 401 OpenAI sends.
fn check_key(state: &State, headers: &HeaderMap) -> Option<Response> {
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

async fn models(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: http::Uri,
    headers: HeaderMap,
) -> Response {
    let index = record(&state, method, &uri, headers.clone(), Bytes::new());
    let mut guard = OutcomeGuard::new(state.clone(), index);
    guard.complete();
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

async fn chat(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = record(&state, method, &uri, headers.clone(), body.clone());
    let scenario = state.next_scenario();
    let mut guard = OutcomeGuard::new(state.clone(), index);
    if !scenario.first_byte_delay.is_zero() {
        tokio::time::sleep(scenario.first_byte_delay).await;
    }
    if let Some(refusal) = check_key(&state, &headers) {
        guard.complete();
        return refusal;
    }
    if let Some((status, template)) = &scenario.error {
        guard.complete();
        let authorization = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let mut response = Response::new(Body::from(
            template.replace("{authorization}", authorization),
        ));
        *response.status_mut() = *status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        add_headers(&mut response, &scenario);
        return response;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        guard.complete();
        return openai_error(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            None,
        );
    };
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    let prompt_tokens = prompt_tokens(&request);
    let pieces = scenario.split_reply();
    let usage = usage(prompt_tokens, pieces.len());

    if request["stream"].as_bool() != Some(true) {
        guard.complete();
        let mut response = json_response(
            StatusCode::OK,
            &json!({
                "id": ID, "object": "chat.completion", "created": CREATED, "model": model,
                "system_fingerprint": null,
                "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": scenario.reply, "refusal": null}}],
                "usage": usage,
            }),
        );
        add_headers(&mut response, &scenario);
        return response;
    }

    let include_usage = request["stream_options"]["include_usage"].as_bool() == Some(true);
    let events = stream_events(&model, &pieces, &usage, include_usage, &scenario);
    let delay = scenario.chunk_delay;
    let stream = futures_util::stream::iter(events.into_iter().enumerate()).then(
        move |(at, event)| async move {
            if at > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            event
        },
    );
    // The guard rides inside the body: dropped early, it marks the request
    // cancelled; the last event marks it complete.
    let mut guard = Some(guard);
    let stream = stream.map(move |event| {
        if let Event::Last(_) | Event::Abort = event
            && let Some(guard) = guard.as_mut()
        {
            guard.complete();
        }
        match event {
            Event::Data(bytes) | Event::Last(bytes) => Ok(bytes),
            Event::Abort => Err(std::io::Error::other("the mock resets the stream")),
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    add_headers(&mut response, &scenario);
    response
}

enum Event {
    Data(Bytes),
    /// The final event of a body that ends normally.
    Last(Bytes),
    /// Abort the connection here.
    Abort,
}

fn add_headers(response: &mut Response, scenario: &Scenario) {
    for (name, value) in &scenario.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
}

/// One token per whitespace-separated word of the messages' text content.
fn prompt_tokens(request: &Value) -> u64 {
    let words: usize = request["messages"].as_array().map_or(0, |messages| {
        messages
            .iter()
            .filter_map(|message| message["content"].as_str())
            .map(|text| text.split_whitespace().count())
            .sum()
    });
    words as u64
}

fn usage(prompt: u64, completion: usize) -> Value {
    let completion = completion as u64;
    json!({
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
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

/// The events of a streamed answer in OpenAI's order: role, content,
/// finish, the usage chunk when asked for, `[DONE]`.
fn stream_events(
    model: &str,
    pieces: &[String],
    usage: &Value,
    include_usage: bool,
    scenario: &Scenario,
) -> Vec<Event> {
    let mut events = vec![Event::Data(data(&chunk(
        model,
        &json!({"role": "assistant", "content": ""}),
        None,
        include_usage,
    )))];
    for (index, piece) in pieces.iter().enumerate() {
        match scenario.end {
            StreamEnd::Cut { after } if index == after => {
                // A clean end of body: the terminator never comes.
                if let Some(Event::Data(last)) = events.pop() {
                    events.push(Event::Last(last));
                }
                return events;
            }
            StreamEnd::Reset { after } if index == after => {
                events.push(Event::Abort);
                return events;
            }
            StreamEnd::Complete | StreamEnd::Cut { .. } | StreamEnd::Reset { .. } => {}
        }
        if scenario.malformed_at == Some(index) {
            events.push(Event::Data(Bytes::from_static(
                b"data: {\"id\": \"chatcmpl-mock\", \"choices\": [\n\n",
            )));
            continue;
        }
        events.push(Event::Data(data(&chunk(
            model,
            &json!({"content": piece}),
            None,
            include_usage,
        ))));
    }
    events.push(Event::Data(data(&chunk(
        model,
        &json!({}),
        Some("stop"),
        include_usage,
    ))));
    if include_usage {
        let mut last = json!({
            "id": ID, "object": "chat.completion.chunk", "created": CREATED, "model": model,
            "system_fingerprint": null, "choices": [],
        });
        last["usage"] = usage.clone();
        events.push(Event::Data(data(&last)));
    }
    events.push(Event::Last(Bytes::from_static(b"data: [DONE]\n\n")));
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(events: &[Event]) -> String {
        events
            .iter()
            .map(|event| match event {
                Event::Data(bytes) | Event::Last(bytes) => {
                    String::from_utf8_lossy(bytes).into_owned()
                }
                Event::Abort => "<abort>".to_owned(),
            })
            .collect()
    }

    #[test]
    fn events_follow_openai_order() {
        let scenario = Scenario::reply("abcd").pieces(2);
        let events = stream_events("m", &scenario.split_reply(), &usage(3, 2), true, &scenario);
        let text = text(&events);
        let role = text.find(r#""role":"assistant""#).unwrap();
        let first = text.find(r#""content":"ab""#).unwrap();
        let finish = text.find(r#""finish_reason":"stop""#).unwrap();
        let usage_chunk = text.find(r#""choices":[],"#).unwrap();
        let done = text.find("[DONE]").unwrap();
        assert!(role < first && first < finish && finish < usage_chunk && usage_chunk < done);
        assert!(matches!(events.last(), Some(Event::Last(_))));
    }

    #[test]
    fn cut_and_reset_end_early() {
        let cut = Scenario::default().end(StreamEnd::Cut { after: 1 });
        let text_cut = text(&stream_events(
            "m",
            &cut.split_reply(),
            &usage(1, 4),
            false,
            &cut,
        ));
        assert!(!text_cut.contains("[DONE]") && !text_cut.contains("finish_reason\":\"stop"));
        let reset = Scenario::default().end(StreamEnd::Reset { after: 2 });
        assert!(
            text(&stream_events(
                "m",
                &reset.split_reply(),
                &usage(1, 4),
                false,
                &reset
            ))
            .ends_with("<abort>")
        );
    }
}
