//! Streams that break, stall or lose their client: the client always gets a
//! proper end, the upstream is let go, and the request is recorded.

use std::time::Duration;

use futures_util::StreamExt;
use pretty_assertions::assert_eq;
use subgate_testkit::mock::{MockUpstream, Outcome, Scenario, StreamEnd};
use subgate_testkit::{TestGateway, http_client};

use crate::support::{chat_body, post_json, sse_data, streamed_text};

async fn gateway(mock: &MockUpstream, extra: &str) -> TestGateway {
    TestGateway::with_openai_compatible(&mock.url(), &format!("models = [\"m\"]\n{extra}")).await
}

/// The `error` object of the last event, which must be an error event.
fn last_error(body: &[u8]) -> serde_json::Value {
    let events = sse_data(body);
    let last: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(
        last["error"]["message"].is_string(),
        "the stream does not end with an error event: {last}"
    );
    last["error"].clone()
}

#[tokio::test]
async fn a_stream_that_goes_quiet_ends_with_a_timeout_event() {
    let mock = MockUpstream::openai_chat().await;
    mock.enqueue(Scenario::reply("abcdefgh").chunk_delay(Duration::from_millis(1500)));
    let gateway = gateway(&mock, "idle_timeout = \"300ms\"").await;
    let (status, _, body) =
        post_json(&gateway.url("/v1/chat/completions"), &chat_body("m", true)).await;
    assert_eq!(status, 200, "the head went out before the upstream stalled");
    let error = last_error(&body);
    assert_eq!(error["type"], "timeout_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("between two chunks"),
        "{error}"
    );
    assert_eq!(
        mock.outcome(0, Duration::from_secs(3)).await,
        Outcome::Cancelled
    );
    let row = &gateway.usage(1).await[0];
    assert_eq!(
        (row.status, row.error_class.as_deref()),
        (200, Some("upstream_timeout"))
    );
}

#[tokio::test]
async fn a_truncated_stream_ends_with_an_error_event() {
    let mock = MockUpstream::openai_chat().await;
    mock.enqueue(Scenario::reply("abcdefgh").end(StreamEnd::Cut { after: 2 }));
    let gateway = gateway(&mock, "").await;
    let (status, _, body) =
        post_json(&gateway.url("/v1/chat/completions"), &chat_body("m", true)).await;
    assert_eq!(status, 200);
    assert_eq!(streamed_text(&body), "abcd", "what arrived is passed on");
    assert_eq!(
        last_error(&body)["message"],
        "the upstream stream ended before it was complete"
    );
    assert_eq!(
        gateway.usage(1).await[0].error_class.as_deref(),
        Some("stream_broken")
    );
}

#[tokio::test]
async fn a_reset_stream_ends_with_an_error_event() {
    let mock = MockUpstream::openai_chat().await;
    // The delay lets the head and the first events reach the gateway before
    // the connection is aborted.
    mock.enqueue(
        Scenario::reply("abcdefgh")
            .chunk_delay(Duration::from_millis(50))
            .end(StreamEnd::Reset { after: 1 }),
    );
    let gateway = gateway(&mock, "").await;
    let (status, _, body) =
        post_json(&gateway.url("/v1/chat/completions"), &chat_body("m", true)).await;
    assert_eq!(status, 200);
    assert_eq!(streamed_text(&body), "ab");
    assert_eq!(last_error(&body)["type"], "upstream_error");
    assert_eq!(
        gateway.usage(1).await[0].error_class.as_deref(),
        Some("stream_broken")
    );
}

#[tokio::test]
async fn a_malformed_chunk_is_passed_on_and_the_stream_goes_on() {
    let mock = MockUpstream::openai_chat().await;
    mock.enqueue(Scenario::reply("abcdefgh").malformed_chunk_at(1));
    let gateway = gateway(&mock, "").await;
    let (status, _, body) =
        post_json(&gateway.url("/v1/chat/completions"), &chat_body("m", true)).await;
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("data: {\"malformed\": [\n\n"),
        "forwarded as it came"
    );
    assert_eq!(streamed_text(&body), "abefgh");
    assert!(text.ends_with("data: [DONE]\n\n"));
    let row = &gateway.usage(1).await[0];
    assert!(row.usage_reported && row.error_class.is_none());
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_cancels_the_upstream() {
    let mock = MockUpstream::openai_chat().await;
    mock.enqueue(
        Scenario::reply("a long answer that takes a while")
            .pieces(30)
            .chunk_delay(Duration::from_millis(100)),
    );
    let gateway = gateway(&mock, "").await;
    let response = http_client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&chat_body("m", true))
        .send()
        .await
        .unwrap();
    let mut chunks = response.bytes_stream();
    let first = chunks.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(chunks);

    assert_eq!(
        mock.outcome(0, Duration::from_secs(3)).await,
        Outcome::Cancelled
    );
    let row = &gateway.usage(1).await[0];
    assert_eq!(
        (row.status, row.error_class.as_deref()),
        (499, Some("client_cancelled"))
    );
    assert!(row.first_token_ms.is_some());
}

#[tokio::test]
async fn a_client_that_leaves_before_the_answer_cancels_the_upstream() {
    let mock = MockUpstream::openai_chat().await;
    mock.enqueue(Scenario::default().first_byte_delay(Duration::from_secs(5)));
    let gateway = gateway(&mock, "").await;
    let result = http_client()
        .post(gateway.url("/v1/chat/completions"))
        .timeout(Duration::from_millis(300))
        .json(&chat_body("m", false))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert_eq!(
        mock.outcome(0, Duration::from_secs(3)).await,
        Outcome::Cancelled
    );
    let row = &gateway.usage(1).await[0];
    assert_eq!(
        (row.status, row.error_class.as_deref()),
        (499, Some("client_cancelled"))
    );
}
