//! Errors in OpenAI's shape with the right status, whatever went wrong.

use std::time::Duration;

use pretty_assertions::assert_eq;
use subgate_testkit::TestGateway;
use subgate_testkit::mock::{MockUpstream, Outcome, Scenario};

use crate::support::{chat_body, error_of, post_json, post_raw};

async fn gateway(mock: &MockUpstream, extra: &str) -> TestGateway {
    TestGateway::with_openai_compatible(&mock.url(), &format!("models = [\"m\"]\n{extra}")).await
}

#[tokio::test]
async fn malformed_or_incomplete_requests_are_400() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = gateway(&mock, "").await;
    let url = gateway.url("/v1/chat/completions");

    let (status, headers, body) = post_raw(&url, "{\"model\": \"m\", ").await;
    assert_eq!(status, 400);
    assert_eq!(headers["content-type"], "application/json");
    let error = error_of(&body);
    assert_eq!(error["type"], "invalid_request_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON object"),
        "{error}"
    );

    let (status, _, body) = post_raw(&url, r#"{"messages": []}"#).await;
    assert_eq!(status, 400);
    assert_eq!(error_of(&body)["param"], "model");

    let (status, _, body) = post_raw(&url, r#"{"model": "m", "stream": "yes"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(error_of(&body)["param"], "stream");

    let (status, _, _) = post_raw(&url, b"\xff\xfe".to_vec()).await;
    assert_eq!(status, 400);

    assert!(
        mock.requests_to("/v1/chat/completions").is_empty(),
        "nothing bad goes upstream"
    );
    let rows = gateway.usage(4).await;
    assert_eq!(rows.len(), 4, "refused requests are recorded too");
    assert!(
        rows.iter()
            .all(|row| row.status == 400 && row.error_class.as_deref() == Some("bad_request"))
    );
}

#[tokio::test]
async fn an_unknown_model_is_404_naming_the_available_ones() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = gateway(&mock, "").await;
    let (status, _, body) = post_json(
        &gateway.url("/v1/chat/completions"),
        &chat_body("gpt-9", false),
    )
    .await;
    assert_eq!(status, 404);
    let error = error_of(&body);
    assert_eq!(error["code"], "model_not_found");
    assert_eq!(error["param"], "model");
    assert_eq!(
        error["message"],
        "the model `gpt-9` is not served here; available models: m"
    );
    assert_eq!(
        gateway.usage(1).await[0].error_class.as_deref(),
        Some("unknown_model")
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = TestGateway::start(&format!(
        "[server]\nmax_body_size = \"1KiB\"\n[[providers]]\nkind = \"openai-compatible\"\nname = \"mock\"\nbase_url = \"{}\"\nmodels = [\"m\"]",
        mock.url()
    ))
    .await;
    let mut body = chat_body("m", false);
    body["messages"][0]["content"] = "x".repeat(2048).into();
    let (status, _, response) = post_json(&gateway.url("/v1/chat/completions"), &body).await;
    assert_eq!(status, 413);
    assert_eq!(error_of(&response)["code"], "request_too_large");
    assert!(mock.requests().is_empty());
    assert_eq!(gateway.usage(1).await[0].status, 413);
}

#[tokio::test]
async fn an_unreachable_upstream_is_502() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let gateway = TestGateway::with_openai_compatible(&url, "models = [\"m\"]").await;
    let (status, _, body) =
        post_json(&gateway.url("/v1/chat/completions"), &chat_body("m", false)).await;
    assert_eq!(status, 502);
    let error = error_of(&body);
    assert_eq!(error["type"], "upstream_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("provider `mock` could not be reached"),
        "{error}"
    );
    assert_eq!(
        gateway.usage(1).await[0].error_class.as_deref(),
        Some("upstream_unreachable")
    );
}

#[tokio::test]
async fn a_silent_upstream_is_504_and_is_abandoned() {
    let mock = MockUpstream::openai_chat().await;
    mock.enqueue(Scenario::default().first_byte_delay(Duration::from_secs(5)));
    let gateway = gateway(&mock, "first_byte_timeout = \"300ms\"").await;
    let (status, _, body) =
        post_json(&gateway.url("/v1/chat/completions"), &chat_body("m", false)).await;
    assert_eq!(status, 504);
    let error = error_of(&body);
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("timeout_error"), Some("first_byte_timeout"))
    );
    assert_eq!(
        mock.outcome(0, Duration::from_secs(2)).await,
        Outcome::Cancelled
    );
    assert_eq!(
        gateway.usage(1).await[0].error_class.as_deref(),
        Some("upstream_timeout")
    );
}

#[tokio::test]
async fn upstream_errors_keep_their_status_and_body() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = gateway(&mock, "").await;
    let url = gateway.url("/v1/chat/completions");

    let openai_body = r#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
    mock.enqueue(Scenario::error(400, openai_body));
    let (status, _, body) = post_json(&url, &chat_body("m", false)).await;
    assert_eq!(
        (status, String::from_utf8_lossy(&body).into_owned()),
        (400, openai_body.to_owned())
    );

    mock.enqueue(Scenario::error(429, r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#).header("retry-after", "7"));
    let (status, headers, body) = post_json(&url, &chat_body("m", true)).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(error_of(&body)["code"], "rate_limit_exceeded");
    // The 429 rested the only account for 7s; the next errors are about
    // their shape, not about routing.
    gateway.clear_rests().await;

    // Not JSON at all: wrapped into a well-formed error, status kept.
    mock.enqueue(Scenario::error(
        503,
        "upstream connect error or disconnect/reset before headers",
    ));
    let (status, _, body) = post_json(&url, &chat_body("m", false)).await;
    assert_eq!(status, 503);
    assert_eq!(
        error_of(&body)["message"],
        "provider `mock` answered 503 Service Unavailable: upstream connect error or disconnect/reset before headers"
    );

    // vLLM's flat shape: the message is lifted into OpenAI's.
    mock.enqueue(Scenario::error(400, r#"{"object":"error","message":"max_tokens is too large","type":"BadRequestError","code":400}"#));
    let (status, _, body) = post_json(&url, &chat_body("m", false)).await;
    assert_eq!(status, 400);
    assert_eq!(
        error_of(&body)["message"],
        "provider `mock` answered 400 Bad Request: max_tokens is too large"
    );

    let classes: Vec<Option<String>> = gateway
        .usage(4)
        .await
        .into_iter()
        .map(|row| row.error_class)
        .collect();
    assert_eq!(
        classes,
        [
            Some("upstream_rejected"),
            Some("upstream_rate_limited"),
            Some("upstream_fault"),
            Some("upstream_rejected")
        ]
        .map(|class| class.map(str::to_owned))
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_openai_shape() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = gateway(&mock, "").await;
    let client = subgate_testkit::http_client();

    let response = client.get(gateway.url("/v1/nothing")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        error_of(&response.bytes().await.unwrap())["message"],
        "there is no route for GET /v1/nothing"
    );

    let response = client
        .get(gateway.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    error_of(&response.bytes().await.unwrap());
}

#[tokio::test]
async fn health_and_readiness() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = gateway(&mock, "").await;
    let client = subgate_testkit::http_client();
    let response = client.get(gateway.url("/healthz")).send().await.unwrap();
    assert_eq!(
        (response.status().as_u16(), response.text().await.unwrap()),
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    let response = client.get(gateway.url("/readyz")).send().await.unwrap();
    assert_eq!(
        (response.status().as_u16(), response.text().await.unwrap()),
        (200, r#"{"status":"ready"}"#.to_owned())
    );
}
