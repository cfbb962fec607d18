//! Helpers shared by the end-to-end tests.

use bytes::Bytes;
use serde_json::{Value, json};
use subgate_testkit::http_client;
use subgate_testkit::mock::MockUpstream;

/// A chat request body as a client would send it.
pub(crate) fn chat_body(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "say hello to the tests"}],
        "stream": stream,
    })
}

/// Posts `body` (raw bytes) to `url` and returns status, headers and body.
pub(crate) async fn post_raw(
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, reqwest::header::HeaderMap, Bytes) {
    post_with(url, &[], body).await
}

/// [`post_raw`] with extra request headers.
pub(crate) async fn post_with(
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> (u16, reqwest::header::HeaderMap, Bytes) {
    let mut request = http_client()
        .post(url)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap())
}

/// Posts JSON and returns status, headers and body.
pub(crate) async fn post_json(url: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Bytes) {
    post_raw(url, body.to_string()).await
}

/// What the mock answers to `body` when called directly, bypassing the
/// gateway: the bytes a pass-through must reproduce.
pub(crate) async fn direct(mock: &MockUpstream, body: &[u8]) -> Bytes {
    let (status, _, bytes) =
        post_raw(&format!("{}/chat/completions", mock.url()), body.to_vec()).await;
    assert_eq!(status, 200);
    bytes
}

/// Parses an OpenAI error body.
pub(crate) fn error_of(body: &[u8]) -> Value {
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    assert!(
        value["error"]["message"].is_string(),
        "not an OpenAI error: {value}"
    );
    value["error"].clone()
}

/// The `data:` payloads of an SSE body.
pub(crate) fn sse_data(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// The text content streamed in Chat Completions chunks.
pub(crate) fn streamed_text(body: &[u8]) -> String {
    sse_data(body)
        .iter()
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}
