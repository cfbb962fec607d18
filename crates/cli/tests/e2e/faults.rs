//! Faults injected upstream, on the translated path as well as the
//! pass-through: TCP resets before the head and mid-stream, stalls before
//! and after the head, malformed, non-UTF-8 and endless events, answers
//! that are not JSON, and a client that leaves a translated stream. Each
//! case checks what the client gets in its own dialect, what became of the
//! upstream request, and the usage record. `faults::process` runs the real
//! binary: many concurrent streams, a stop during translated streams, and a
//! kill during a token refresh.

mod process;

use std::time::Duration;

use futures_util::StreamExt;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use subgate_testkit::mock::{MockUpstream, Outcome, Scenario, StreamEnd};
use subgate_testkit::{TestGateway, http_client};

use crate::support::{chat_body, post_json, sse_data, streamed_text};

/// How long a test waits for something that should come at once.
const SOON: Duration = Duration::from_secs(5);

/// A gateway over one OpenAI-compatible mock: provider `mock`, model `m`.
async fn over_openai(mock: &MockUpstream, extra: &str) -> TestGateway {
    TestGateway::with_openai_compatible(&mock.url(), &format!("models = [\"m\"]\n{extra}")).await
}

/// A gateway over one Anthropic mock: provider `claude`, model
/// `claude-mock-4`.
async fn over_anthropic(mock: &MockUpstream, extra: &str) -> TestGateway {
    TestGateway::start(&format!(
        "[[providers]]\nkind = \"anthropic\"\nname = \"claude\"\nbase_url = \"{}\"\napi_keys = [\"sk-ant-1\"]\nmodels = [\"claude-mock-4\"]\n{extra}\n",
        mock.url()
    ))
    .await
}

/// An Anthropic Messages request.
pub(crate) fn messages_body(model: &str, text: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
    })
}

/// The events of an SSE body: `event:` name (if any) and data.
pub(crate) fn events(body: &[u8]) -> Vec<(Option<String>, String)> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push(value);
                }
            }
            (name, data.join("\n"))
        })
        .collect()
}

/// The text an Anthropic stream carried.
pub(crate) fn anthropic_text(body: &[u8]) -> String {
    events(body)
        .iter()
        .filter(|(name, _)| name.as_deref() == Some("content_block_delta"))
        .filter_map(|(_, data)| serde_json::from_str::<Value>(data).ok())
        .filter_map(|event| event["delta"]["text"].as_str().map(str::to_owned))
        .collect()
}

/// The `error` object of an Anthropic stream's last event, which must be
/// its `error` event.
fn anthropic_stream_error(body: &[u8]) -> Value {
    let events = events(body);
    let (name, data) = events.last().expect("at least one event");
    let error: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        (name.as_deref(), error["type"].as_str()),
        (Some("error"), Some("error")),
        "the stream does not end with an error event: {}",
        String::from_utf8_lossy(body)
    );
    error["error"].clone()
}

/// The `error` object of a Chat Completions stream's last chunk.
fn openai_stream_error(body: &[u8]) -> Value {
    let last: Value = serde_json::from_str(sse_data(body).last().unwrap()).unwrap();
    assert!(
        last["error"]["message"].is_string(),
        "the stream does not end with an error chunk: {}",
        String::from_utf8_lossy(body)
    );
    last["error"].clone()
}

/// An Anthropic error body's `error` object.
fn anthropic_error(body: &[u8]) -> Value {
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    assert_eq!(value["type"], "error", "not an Anthropic error: {value}");
    assert!(value["error"]["message"].is_string(), "{value}");
    value["error"].clone()
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn text_of(error: &Value) -> &str {
    error["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_reset_mid_stream_ends_a_translated_stream_with_the_clients_error_event() {
    // An Anthropic client on an OpenAI upstream. The delay lets the head
    // and the first piece reach the gateway before the RST.
    let openai = MockUpstream::openai_chat().await;
    openai.enqueue(
        Scenario::reply("abcdefgh")
            .chunk_delay(Duration::from_millis(50))
            .end(StreamEnd::Reset { after: 1 }),
    );
    let gateway = over_openai(&openai, "").await;
    let (status, _, body) = post_json(
        &gateway.url("/v1/messages"),
        &messages_body("m", "hi", true),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(anthropic_text(&body), "ab", "what arrived is passed on");
    let error = anthropic_stream_error(&body);
    assert_eq!(error["type"], "api_error");
    // A reset, not a clean close.
    assert!(
        text_of(&error).starts_with("the exchange with")
            && text_of(&error).contains("reset by peer"),
        "{error}"
    );
    assert_eq!(openai.outcome(0, SOON).await, Outcome::Completed);
    let row = &gateway.usage(1).await[0];
    assert_eq!(
        (row.status, row.error_class.as_deref()),
        (200, Some("stream_broken"))
    );
    assert_eq!(row.upstream_dialect.as_deref(), Some("openai_chat"));

    // An OpenAI client on an Anthropic upstream.
    let anthropic = MockUpstream::anthropic().await;
    anthropic.enqueue(
        Scenario::reply("abcdefgh")
            .chunk_delay(Duration::from_millis(50))
            .end(StreamEnd::Reset { after: 2 }),
    );
    let gateway = over_anthropic(&anthropic, "").await;
    let (status, _, body) = post_json(
        &gateway.url("/v1/chat/completions"),
        &chat_body("claude-mock-4", true),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(streamed_text(&body), "abcd");
    assert_eq!(openai_stream_error(&body)["type"], "upstream_error");
    assert_eq!(anthropic.outcome(0, SOON).await, Outcome::Completed);
    let row = &gateway.usage(1).await[0];
    assert_eq!(
        (row.status, row.error_class.as_deref()),
        (200, Some("stream_broken"))
    );
    assert!(
        row.input_tokens > 0,
        "message_start's usage is kept: {row:?}"
    );
}

/// The bearer keys of the generation requests a mock received, in order.
fn keys_seen(mock: &MockUpstream) -> Vec<String> {
    mock.requests_to("/v1/chat/completions")
        .iter()
        .map(|request| {
            request
                .header("authorization")
                .unwrap_or_default()
                .trim_start_matches("Bearer ")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_reset_before_the_head_fails_over_to_the_next_account() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = TestGateway::start(&format!(
        "[routing]\nsession_affinity = false\n\n[[providers]]\nkind = \"openai-compatible\"\nname = \"pool\"\nbase_url = \"{}\"\nmodels = [\"m\"]\nstrategy = \"fill-first\"\napi_keys = [\"k1\", \"k2\"]\n",
        mock.url()
    ))
    .await;
    mock.enqueue(Scenario::reset_before_head());
    mock.enqueue(Scenario::reply("from the second account"));
    let (status, headers, body) =
        post_json(&gateway.url("/v1/chat/completions"), &chat_body("m", true)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(streamed_text(&body), "from the second account");
    assert_eq!(sse_data(&body).last().map(String::as_str), Some("[DONE]"));
    assert_eq!(header(&headers, "x-subgate-attempts"), "2");
    assert_eq!(header(&headers, "x-subgate-account"), "pool#2");
    assert_eq!(keys_seen(&mock), ["k1", "k2"]);
    let rows = gateway.usage(1).await;
    assert_eq!(rows.len(), 1, "one request, one record: {rows:?}");
    assert_eq!(
        (rows[0].status, rows[0].error_class.as_deref()),
        (200, None)
    );
    assert_eq!(rows[0].account_name.as_deref(), Some("pool#2"));
}

#[tokio::test]
async fn a_reset_before_the_head_fails_over_to_the_next_provider_or_is_a_502() {
    let anthropic = MockUpstream::anthropic().await;
    let openai = MockUpstream::openai_chat().await;
    let gateway = TestGateway::start(&format!(
        r#"
        [aliases]
        smart = ["claude/claude-mock-4", "oa/m"]

        [[providers]]
        kind = "anthropic"
        name = "claude"
        base_url = "{}"
        api_keys = ["sk-ant-1"]
        models = ["claude-mock-4"]

        [[providers]]
        kind = "openai-compatible"
        name = "oa"
        base_url = "{}"
        models = ["m"]
        "#,
        anthropic.url(),
        openai.url()
    ))
    .await;
    // An Anthropic client: the pass-through to Anthropic is reset, the
    // translation to the OpenAI upstream answers.
    anthropic.enqueue(Scenario::reset_before_head());
    openai.enqueue(Scenario::reply("translated answer"));
    let (status, headers, body) = post_json(
        &gateway.url("/v1/messages"),
        &messages_body("smart", "hi", true),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(anthropic_text(&body), "translated answer");
    assert_eq!(
        events(&body).last().unwrap().0.as_deref(),
        Some("message_stop")
    );
    assert_eq!(header(&headers, "x-subgate-provider"), "oa");
    assert_eq!(header(&headers, "x-subgate-attempts"), "2");
    assert_eq!(anthropic.requests_to("/v1/messages").len(), 1);
    let row = &gateway.usage(1).await[0];
    assert_eq!((row.status, row.provider.as_deref()), (200, Some("oa")));

    // The only upstream resets: a 502 in the client's dialect, naming it.
    openai.enqueue(Scenario::reset_before_head());
    let (status, _, body) = post_json(
        &gateway.url("/v1/messages"),
        &messages_body("oa/m", "hi", true),
    )
    .await;
    assert_eq!(status, 502);
    let error = anthropic_error(&body);
    assert_eq!(error["type"], "api_error");
    assert!(
        text_of(&error).starts_with("provider `oa` failed: the exchange with")
            && text_of(&error).contains("reset by peer"),
        "{error}"
    );
    let rows = gateway.usage(2).await;
    assert_eq!(
        (rows[1].status, rows[1].error_class.as_deref()),
        (502, Some("upstream_fault"))
    );
}

#[tokio::test]
async fn a_stall_before_the_head_fails_over_and_alone_times_out_in_the_clients_dialect() {
    let slow = MockUpstream::anthropic().await;
    let live = MockUpstream::openai_chat().await;
    let gateway = TestGateway::start(&format!(
        r#"
        [aliases]
        smart = ["slow/claude-mock-4", "live/m"]

        [[providers]]
        kind = "anthropic"
        name = "slow"
        base_url = "{}"
        api_keys = ["sk-ant-1"]
        models = ["claude-mock-4"]
        first_byte_timeout = "300ms"

        [[providers]]
        kind = "openai-compatible"
        name = "live"
        base_url = "{}"
        models = ["m"]
        first_byte_timeout = "300ms"
        "#,
        slow.url(),
        live.url()
    ))
    .await;
    // An OpenAI client: the translation to Anthropic stalls, the
    // pass-through to the OpenAI upstream answers.
    slow.enqueue(Scenario::default().first_byte_delay(Duration::from_secs(10)));
    let (status, headers, body) = post_json(
        &gateway.url("/v1/chat/completions"),
        &chat_body("smart", true),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(streamed_text(&body), "Hello from the mock upstream.");
    assert_eq!(header(&headers, "x-subgate-provider"), "live");
    assert_eq!(header(&headers, "x-subgate-attempts"), "2");
    assert_eq!(slow.outcome(0, SOON).await, Outcome::Cancelled);

    // The only upstream stalls: each client gets its dialect's timeout.
    let only = "m";
    let cases = [
        (
            "/v1/messages".to_owned(),
            messages_body(only, "hi", true),
            json!({"type": "error", "error": {"type": "api_error"}}),
        ),
        (
            "/v1/responses".to_owned(),
            json!({"model": only, "input": "hi", "stream": true}),
            json!({"error": {"type": "timeout_error", "code": "first_byte_timeout"}}),
        ),
        (
            format!("/v1beta/models/{only}:streamGenerateContent?alt=sse"),
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
            json!({"error": {"code": 504, "status": "DEADLINE_EXCEEDED"}}),
        ),
    ];
    for (index, (path, request, shape)) in cases.into_iter().enumerate() {
        // Two timeouts in a row rest the account; each case wants it.
        gateway.clear_rests().await;
        live.enqueue(Scenario::default().first_byte_delay(Duration::from_secs(10)));
        let (status, _, body) = post_json(&gateway.url(&path), &request).await;
        assert_eq!(status, 504, "{path}: {}", String::from_utf8_lossy(&body));
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert_subset(&shape, &error, &path);
        // Each dialect keeps the message at `error.message`.
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("provider `live` did not answer in time"),
            "{path}: {error}"
        );
        assert_eq!(
            live.outcome(index + 1, SOON).await,
            Outcome::Cancelled,
            "{path}"
        );
    }
    let rows = gateway.usage(4).await;
    let classes: Vec<_> = rows.iter().map(|row| row.error_class.as_deref()).collect();
    assert_eq!(
        classes,
        [
            None,
            Some("upstream_timeout"),
            Some("upstream_timeout"),
            Some("upstream_timeout")
        ]
    );
}

/// Every field of `expected` is in `actual`, recursively.
fn assert_subset(expected: &Value, actual: &Value, context: &str) {
    match expected {
        Value::Object(fields) => {
            for (name, value) in fields {
                assert_subset(value, &actual[name], &format!("{context}.{name}"));
            }
        }
        _ => assert_eq!(actual, expected, "{context}"),
    }
}

#[tokio::test]
async fn a_stall_after_the_head_is_a_timeout_in_the_clients_dialect() {
    // Before any event: nothing went to the client yet, so it gets its
    // dialect's 504 (the head is held until the first chunk arrives, which
    // is what lets another account take over).
    let openai = MockUpstream::openai_chat().await;
    openai.enqueue(Scenario::default().body_delay(Duration::from_secs(10)));
    let gateway = over_openai(&openai, "idle_timeout = \"300ms\"").await;
    let (status, _, body) = post_json(
        &gateway.url("/v1/messages"),
        &messages_body("m", "hi", true),
    )
    .await;
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
    let error = anthropic_error(&body);
    assert_eq!(error["type"], "api_error");
    assert!(text_of(&error).contains("between two chunks"), "{error}");
    assert_eq!(openai.outcome(0, SOON).await, Outcome::Cancelled);

    // After the first event and before any text: the stream has begun, so
    // it ends with the dialect's error event.
    openai.enqueue(Scenario::default().chunk_delay(Duration::from_secs(10)));
    let (status, _, body) = post_json(
        &gateway.url("/v1/messages"),
        &messages_body("m", "hi", true),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        events(&body).first().unwrap().0.as_deref(),
        Some("message_start")
    );
    assert_eq!(anthropic_text(&body), "");
    let error = anthropic_stream_error(&body);
    assert_eq!(error["type"], "api_error");
    assert!(text_of(&error).contains("between two chunks"), "{error}");
    assert_eq!(openai.outcome(1, SOON).await, Outcome::Cancelled);
    let rows = gateway.usage(2).await;
    assert_eq!(
        rows.iter()
            .map(|row| (row.status, row.error_class.as_deref()))
            .collect::<Vec<_>>(),
        [
            (504, Some("upstream_timeout")),
            (200, Some("upstream_timeout"))
        ]
    );

    // The same from an Anthropic upstream to an OpenAI client: the stream
    // stops after `message_start`.
    let anthropic = MockUpstream::anthropic().await;
    anthropic.enqueue(Scenario::default().chunk_delay(Duration::from_secs(10)));
    let gateway = over_anthropic(&anthropic, "idle_timeout = \"300ms\"").await;
    let (status, _, body) = post_json(
        &gateway.url("/v1/chat/completions"),
        &chat_body("claude-mock-4", true),
    )
    .await;
    assert_eq!(status, 200);
    let error = openai_stream_error(&body);
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("timeout_error"), None)
    );
    assert_eq!(anthropic.outcome(0, SOON).await, Outcome::Cancelled);
    let row = &gateway.usage(1).await[0];
    assert_eq!(row.error_class.as_deref(), Some("upstream_timeout"));
    assert!(row.input_tokens > 0, "message_start's usage: {row:?}");
}

#[tokio::test]
async fn lines_that_are_not_events_are_skipped_on_the_translated_path() {
    // Per the event-stream rules, a line that is not a field and a block
    // without `data:` carry no event: the translation skips them and goes
    // on.
    let openai = MockUpstream::openai_chat().await;
    openai.enqueue(Scenario::reply("abcdefgh").raw_event_at(
        1,
        "this line is not an event\n\n{\"choices\": [{\"delta\": {\"content\": \"??\"}}]}\n\n: a comment\n\n",
    ));
    let gateway = over_openai(&openai, "").await;
    let (status, _, body) = post_json(
        &gateway.url("/v1/messages"),
        &messages_body("m", "hi", true),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(anthropic_text(&body), "abefgh");
    assert_eq!(
        events(&body).last().unwrap().0.as_deref(),
        Some("message_stop")
    );
    assert_eq!(openai.outcome(0, SOON).await, Outcome::Completed);
    let row = &gateway.usage(1).await[0];
    assert_eq!((row.status, row.error_class.as_deref()), (200, None));
}

#[tokio::test]
async fn an_event_that_cannot_be_read_ends_a_translated_stream_with_the_clients_error() {
    // Invalid JSON, then bytes that are not UTF-8, from an OpenAI upstream
    // to an Anthropic client. The delay keeps the rest of the answer
    // pending, so the upstream is seen to be let go.
    let cases: [(&[u8], &str); 2] = [
        (
            b"data: {\"choices\": [{\"delta\": \n\n",
            "the upstream stream could not be read: the upstream sent a chunk that is not valid",
        ),
        (
            b"data: {\"choices\": [{\"delta\": {\"content\": \"\xff\xfe\"}}]}\n\n",
            "the upstream stream could not be read: the event stream is not valid UTF-8",
        ),
    ];
    let openai = MockUpstream::openai_chat().await;
    let gateway = over_openai(&openai, "").await;
    for (index, (raw, message)) in cases.into_iter().enumerate() {
        openai.enqueue(
            Scenario::reply("abcdefgh")
                .chunk_delay(Duration::from_millis(100))
                .raw_event_at(1, raw.to_vec()),
        );
        let (status, _, body) = post_json(
            &gateway.url("/v1/messages"),
            &messages_body("m", "hi", true),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(anthropic_text(&body), "ab");
        let error = anthropic_stream_error(&body);
        assert_eq!(error["type"], "api_error");
        assert!(text_of(&error).starts_with(message), "{error}");
        assert_eq!(openai.outcome(index, SOON).await, Outcome::Cancelled);
    }

    // The same from an Anthropic upstream to an OpenAI client.
    let anthropic = MockUpstream::anthropic().await;
    let gateway_b = over_anthropic(&anthropic, "").await;
    for (index, raw) in [
        &b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \n\n"[..],
        &b"event: content_block_delta\ndata: \xc3\x28\n\n"[..],
    ]
    .into_iter()
    .enumerate()
    {
        anthropic.enqueue(
            Scenario::reply("abcdefgh")
                .chunk_delay(Duration::from_millis(100))
                .raw_event_at(1, raw.to_vec()),
        );
        let (status, _, body) = post_json(
            &gateway_b.url("/v1/chat/completions"),
            &chat_body("claude-mock-4", true),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(streamed_text(&body), "ab");
        let error = openai_stream_error(&body);
        assert_eq!(error["type"], "upstream_error");
        assert!(
            text_of(&error).starts_with("the upstream stream could not be read"),
            "{error}"
        );
        assert_eq!(anthropic.outcome(index, SOON).await, Outcome::Cancelled);
    }
    for rows in [gateway.usage(2).await, gateway_b.usage(2).await] {
        assert!(
            rows.iter().all(|row| row.status == 200
                && row.error_class.as_deref() == Some("stream_broken")),
            "{rows:?}"
        );
    }
}

#[tokio::test]
async fn an_event_without_end_is_refused_at_the_limit_and_the_gateway_goes_on() {
    let openai = MockUpstream::openai_chat().await;
    let gateway = over_openai(&openai, "max_event_size = \"1MiB\"").await;
    let limit = "an event in the stream is larger than 1048576 bytes";
    // Translated (Anthropic client) and passed through (OpenAI client): the
    // endless event is cut off at the limit, not buffered.
    for (index, path) in ["/v1/messages", "/v1/chat/completions"]
        .into_iter()
        .enumerate()
    {
        openai.enqueue(Scenario::reply("abcdefgh").endless_event_at(1));
        let request = if index == 0 {
            messages_body("m", "hi", true)
        } else {
            chat_body("m", true)
        };
        let response = tokio::time::timeout(
            Duration::from_secs(20),
            post_json(&gateway.url(path), &request),
        )
        .await;
        let (status, _, body) = response.expect("the endless event is cut off");
        assert_eq!(status, 200);
        assert!(body.len() < 64 * 1024, "{path}: {} bytes", body.len());
        let message = if index == 0 {
            assert_eq!(anthropic_text(&body), "ab");
            text_of(&anthropic_stream_error(&body)).to_owned()
        } else {
            assert_eq!(streamed_text(&body), "ab");
            text_of(&openai_stream_error(&body)).to_owned()
        };
        assert!(message.contains(limit), "{path}: {message}");
        assert_eq!(openai.outcome(index, SOON).await, Outcome::Cancelled);
    }
    let rows = gateway.usage(2).await;
    assert!(
        rows.iter()
            .all(|row| row.error_class.as_deref() == Some("stream_broken")),
        "{rows:?}"
    );
    // A whole answer over the limit is refused as well: a 502.
    openai.enqueue(Scenario::raw_answer(vec![b' '; 2 << 20]));
    let (status, _, body) = post_json(
        &gateway.url("/v1/messages"),
        &messages_body("m", "hi", false),
    )
    .await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    let error = anthropic_error(&body);
    assert!(
        text_of(&error).contains("sent a body larger than 1048576 bytes"),
        "{error}"
    );
    // Still serving.
    let (status, _, body) = post_json(
        &gateway.url("/v1/messages"),
        &messages_body("m", "hi", true),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(anthropic_text(&body), "Hello from the mock upstream.");
}

#[tokio::test]
async fn a_whole_answer_that_cannot_be_read_is_a_502_in_the_clients_dialect() {
    let not_json: &[u8] = b"<html>upstream maintenance</html>";
    // Well-formed answers but for text that is not UTF-8.
    let chat_not_utf8: &[u8] = b"{\"id\": \"chatcmpl-1\", \"object\": \"chat.completion\", \"model\": \"m\", \"choices\": [{\"index\": 0, \"finish_reason\": \"stop\", \"message\": {\"role\": \"assistant\", \"content\": \"\xff\xfe\"}}]}";
    // An error object sent with a 200 is not an answer either.
    let error_with_200: &[u8] =
        br#"{"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}"#;
    let messages_not_utf8: &[u8] = b"{\"id\": \"msg_1\", \"type\": \"message\", \"role\": \"assistant\", \"model\": \"claude-mock-4\", \"stop_reason\": \"end_turn\", \"content\": [{\"type\": \"text\", \"text\": \"\xc3\x28\"}], \"usage\": {\"input_tokens\": 1, \"output_tokens\": 1}}";

    // An Anthropic client on an OpenAI upstream.
    let openai = MockUpstream::openai_chat().await;
    let gateway = over_openai(&openai, "").await;
    for raw in [not_json, chat_not_utf8, b"{}"] {
        openai.enqueue(Scenario::raw_answer(raw.to_vec()));
        let (status, _, body) = post_json(
            &gateway.url("/v1/messages"),
            &messages_body("m", "hi", false),
        )
        .await;
        assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
        let error = anthropic_error(&body);
        assert_eq!(error["type"], "api_error");
        assert!(
            text_of(&error).starts_with("provider `mock` sent an answer that could not be read"),
            "{error}"
        );
    }

    // An OpenAI client on an Anthropic upstream.
    let anthropic = MockUpstream::anthropic().await;
    let gateway_b = over_anthropic(&anthropic, "").await;
    for raw in [not_json, messages_not_utf8, error_with_200] {
        anthropic.enqueue(Scenario::raw_answer(raw.to_vec()));
        let (status, _, body) = post_json(
            &gateway_b.url("/v1/chat/completions"),
            &chat_body("claude-mock-4", false),
        )
        .await;
        assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
        let error = crate::support::error_of(&body);
        assert_eq!(error["type"], "upstream_error");
        assert!(
            text_of(&error).starts_with("provider `claude` sent an answer that could not be read"),
            "{error}"
        );
    }
    for rows in [gateway.usage(3).await, gateway_b.usage(3).await] {
        assert!(rows.iter().all(|row| row.status == 502), "{rows:?}");
    }

    // The pass-through is lossless by design: what the upstream sent goes
    // back as it came, unread but for usage.
    openai.enqueue(Scenario::raw_answer(not_json.to_vec()));
    let (status, _, body) =
        post_json(&gateway.url("/v1/chat/completions"), &chat_body("m", false)).await;
    assert_eq!((status, &body[..]), (200, not_json));
    let row = &gateway.usage(4).await[3];
    assert_eq!((row.status, row.usage_reported), (200, false));
}

/// Posts `body` to `url`, reads the first chunk of the answer, and leaves.
async fn leave_after_first_chunk(url: &str, body: &Value) {
    let response = http_client().post(url).json(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut chunks = response.bytes_stream();
    let first = chunks.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(chunks);
}

#[tokio::test]
async fn a_client_that_leaves_a_stream_cancels_the_upstream_and_what_was_counted_is_recorded() {
    let slow = || {
        Scenario::reply("a long answer that takes a while to come")
            .pieces(30)
            .chunk_delay(Duration::from_millis(100))
    };
    // An Anthropic client on an OpenAI upstream.
    let openai = MockUpstream::openai_chat().await;
    openai.enqueue(slow());
    let gateway = over_openai(&openai, "").await;
    leave_after_first_chunk(
        &gateway.url("/v1/messages"),
        &messages_body("m", "hi", true),
    )
    .await;
    assert_eq!(openai.outcome(0, SOON).await, Outcome::Cancelled);
    let row = &gateway.usage(1).await[0];
    assert_eq!(
        (row.status, row.error_class.as_deref()),
        (499, Some("client_cancelled"))
    );
    assert!(row.first_token_ms.is_some());

    // An OpenAI client on an Anthropic upstream, whose `message_start`
    // reports the input tokens: they were spent, and are counted.
    let anthropic = MockUpstream::anthropic().await;
    anthropic.enqueue(slow());
    let gateway = over_anthropic(&anthropic, "").await;
    let body = json!({
        "model": "claude-mock-4",
        "stream": true,
        "messages": [{"role": "user", "content": "five words in this prompt"}],
    });
    leave_after_first_chunk(&gateway.url("/v1/chat/completions"), &body).await;
    assert_eq!(anthropic.outcome(0, SOON).await, Outcome::Cancelled);
    let row = &gateway.usage(1).await[0];
    assert_eq!(
        (row.status, row.error_class.as_deref()),
        (499, Some("client_cancelled"))
    );
    assert_eq!(
        (row.input_tokens, row.usage_reported),
        (5, true),
        "what was counted before the client left: {row:?}"
    );

    // The same on the pass-through, for an Anthropic client.
    anthropic.enqueue(slow());
    leave_after_first_chunk(
        &gateway.url("/v1/messages"),
        &messages_body("claude-mock-4", "five words in this prompt", true),
    )
    .await;
    assert_eq!(anthropic.outcome(1, SOON).await, Outcome::Cancelled);
    let row = &gateway.usage(2).await[1];
    assert_eq!(
        (row.status, row.upstream_dialect.as_deref()),
        (499, Some("anthropic"))
    );
    assert_eq!((row.input_tokens, row.usage_reported), (5, true), "{row:?}");
}
