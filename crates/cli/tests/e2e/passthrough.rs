//! Same dialect in and out: the body goes up with only the model changed and
//! the answer comes back byte for byte, metered on the side.

use pretty_assertions::assert_eq;
use serde_json::json;
use subgate_testkit::TestGateway;
use subgate_testkit::mock::MockUpstream;

use crate::support::{chat_body, direct, post_json, post_raw, sse_data};

#[tokio::test]
async fn json_request_goes_up_with_only_the_model_changed_and_comes_back_unchanged() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = TestGateway::with_openai_compatible(&mock.url(), "").await;

    // Odd spacing, number formats and unknown fields must all survive.
    let client_body = r#"{ "model" : "mock/mock-small",  "messages":[{"role":"user","content":"hi there"}],
        "x_vendor_field": {"keep": [1, 2.50, 1e3]}, "temperature": 0.70 }"#;
    let (status, headers, body) = post_raw(&gateway.url("/v1/chat/completions"), client_body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let upstream_body = client_body.replace(r#""mock/mock-small""#, r#""mock-small""#);
    let received = mock.requests_to("/v1/chat/completions");
    assert_eq!(received.len(), 1);
    assert_eq!(String::from_utf8_lossy(&received[0].body), upstream_body);
    assert_eq!(
        received[0].header("authorization"),
        None,
        "a keyless provider sends no key"
    );

    assert_eq!(body, direct(&mock, upstream_body.as_bytes()).await);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-subgate-provider"], "mock");
    assert_eq!(headers["x-subgate-account"], "mock");
    assert_eq!(headers["x-request-id"].len(), 36);

    let usage = gateway.usage(1).await;
    assert_eq!(usage.len(), 1);
    let row = &usage[0];
    assert_eq!(row.id, headers["x-request-id"].to_str().unwrap());
    assert_eq!(
        (
            row.model.as_str(),
            row.upstream_model.as_deref(),
            row.provider.as_deref()
        ),
        ("mock/mock-small", Some("mock-small"), Some("mock"))
    );
    assert_eq!(
        (row.input_tokens, row.output_tokens, row.status),
        (2, 5, 200)
    );
    assert!(row.usage_reported && !row.stream && row.error_class.is_none());
    assert_eq!(row.client_dialect, "openai_chat");
    assert_eq!(row.upstream_dialect.as_deref(), Some("openai_chat"));
}

#[tokio::test]
async fn stream_with_usage_asked_for_is_byte_identical() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = TestGateway::with_openai_compatible(&mock.url(), "").await;
    let mut request = chat_body("mock-small", true);
    request["stream_options"] = json!({"include_usage": true});

    let (status, headers, body) = post_json(&gateway.url("/v1/chat/completions"), &request).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let received = mock.requests_to("/v1/chat/completions");
    assert_eq!(
        received[0].body,
        request.to_string().as_bytes(),
        "nothing to edit: the body goes up as sent"
    );
    assert_eq!(body, direct(&mock, request.to_string().as_bytes()).await);

    let row = &gateway.usage(1).await[0];
    assert_eq!((row.input_tokens, row.output_tokens), (5, 5));
    assert!(row.stream && row.usage_reported);
    assert!(row.first_token_ms.is_some());
}

#[tokio::test]
async fn stream_without_usage_asked_for_is_metered_and_the_usage_chunk_held_back() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = TestGateway::with_openai_compatible(&mock.url(), "").await;
    let request = chat_body("mock-small", true);

    let (status, _, body) = post_json(&gateway.url("/v1/chat/completions"), &request).await;
    assert_eq!(status, 200);

    // Upstream was asked for usage on the client's behalf.
    let sent = mock.requests_to("/v1/chat/completions")[0].json();
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    assert_eq!(sent["messages"], request["messages"]);

    // The client gets exactly what the upstream sent, minus the one event
    // it did not ask for.
    let upstream = direct(&mock, &serde_json::to_vec(&sent).unwrap()).await;
    let upstream_events = sse_data(&upstream);
    let usage_event = upstream_events
        .iter()
        .find(|data| data.contains(r#""choices":[]"#))
        .unwrap();
    let expected =
        String::from_utf8_lossy(&upstream).replace(&format!("data: {usage_event}\n\n"), "");
    assert_eq!(String::from_utf8_lossy(&body), expected);
    assert!(sse_data(&body).last().is_some_and(|data| data == "[DONE]"));

    let row = &gateway.usage(1).await[0];
    assert!(row.usage_reported);
    assert_eq!((row.input_tokens, row.output_tokens), (5, 5));
}

#[tokio::test]
async fn stream_usage_off_sends_the_body_untouched() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = TestGateway::with_openai_compatible(
        &mock.url(),
        "stream_usage = false\nmodels = [\"mock-small\"]",
    )
    .await;
    let request = chat_body("mock-small", true);
    let (status, _, body) = post_json(&gateway.url("/v1/chat/completions"), &request).await;
    assert_eq!(status, 200);
    assert_eq!(
        mock.requests_to("/v1/chat/completions")[0].body,
        request.to_string().as_bytes()
    );
    assert_eq!(body, direct(&mock, request.to_string().as_bytes()).await);
    let row = &gateway.usage(1).await[0];
    assert!(
        !row.usage_reported,
        "the upstream reported nothing, and the record says so"
    );
    assert_eq!(row.status, 200);
}

#[tokio::test]
async fn models_come_from_config_and_from_upstream_catalogs() {
    let listed = MockUpstream::openai_chat().await;
    let fetched = MockUpstream::openai_chat().await;
    fetched.set_models(&["cat-a", "cat-b", "shared"]);
    fetched.require_key("sk-cat");
    let gateway = TestGateway::start(&format!(
        r#"
        [[providers]]
        kind = "openai-compatible"
        name = "listed"
        base_url = "{}"
        models = ["shared", "only-listed"]

        [[providers]]
        kind = "openai-compatible"
        name = "fetched"
        base_url = "{}"
        api_keys = ["sk-cat"]
        "#,
        listed.url(),
        fetched.url()
    ))
    .await;

    // A model only the fetched catalog has routes there, without a prefix.
    let (status, headers, _) = post_json(
        &gateway.url("/v1/chat/completions"),
        &chat_body("cat-b", false),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-subgate-provider"], "fetched");
    // A model both have goes to the first provider in config order.
    let (_, headers, _) = post_json(
        &gateway.url("/v1/chat/completions"),
        &chat_body("shared", false),
    )
    .await;
    assert_eq!(headers["x-subgate-provider"], "listed");
    // A prefix picks the provider explicitly.
    let (_, headers, _) = post_json(
        &gateway.url("/v1/chat/completions"),
        &chat_body("fetched/shared", false),
    )
    .await;
    assert_eq!(headers["x-subgate-provider"], "fetched");

    let models: serde_json::Value = subgate_testkit::http_client()
        .get(gateway.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    let listing: Vec<(String, String)> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| {
            (
                model["id"].as_str().unwrap().to_owned(),
                model["owned_by"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listing,
        [
            ("shared", "listed"),
            ("only-listed", "listed"),
            ("cat-a", "fetched"),
            ("cat-b", "fetched")
        ]
        .map(|(id, owner)| (id.to_owned(), owner.to_owned()))
    );
    assert_eq!(
        listed.requests_to("/v1/models").len(),
        0,
        "a configured list is not fetched"
    );
    assert_eq!(
        fetched.requests_to("/v1/models")[0].header("authorization"),
        Some("Bearer sk-cat")
    );
}
