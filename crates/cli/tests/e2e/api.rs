//! The client API around generation: token counting, model listings in each
//! dialect's shape, Gemini's array streams, forced streaming, Anthropic's
//! betas, and requests that cannot be translated.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use subgate_testkit::mock::{MockUpstream, Scenario, StreamEnd};
use subgate_testkit::{TestGateway, http_client};

use crate::support::post_raw;

async fn gateway(providers: &[(&str, &str, &MockUpstream, &str)]) -> TestGateway {
    use std::fmt::Write as _;
    let mut config = String::new();
    for (kind, name, mock, extra) in providers {
        let _ = writeln!(
            config,
            "[[providers]]\nkind = \"{kind}\"\nname = \"{name}\"\nbase_url = \"{}\"\nmodels = [\"{name}-model\"]\n{extra}",
            mock.url()
        );
    }
    TestGateway::start(&config).await
}

async fn post(
    gateway: &TestGateway,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Value) {
    let mut request = http_client().post(gateway.url(path)).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})),
    )
}

#[tokio::test]
async fn tokens_are_counted_by_the_upstream_or_estimated() {
    let (openai, anthropic, gemini) = (
        MockUpstream::openai().await,
        MockUpstream::anthropic().await,
        MockUpstream::gemini().await,
    );
    let gateway = gateway(&[
        ("openai-compatible", "chat", &openai, ""),
        ("anthropic", "claude", &anthropic, ""),
        ("gemini", "gemini", &gemini, ""),
    ])
    .await;
    let question = "how many tokens are in this short question";
    for model in ["chat-model", "claude-model", "gemini-model"] {
        let (status, body) = post(
            &gateway,
            "/v1/messages/count_tokens",
            &[("anthropic-version", "2023-06-01")],
            &json!({"model": model, "messages": [{"role": "user", "content": question}], "system": "be brief"}),
        )
        .await;
        assert_eq!(status, 200, "{model}: {body}");
        let tokens = body["input_tokens"].as_u64().unwrap();
        assert!(tokens >= 8, "{model}: {tokens}");

        let (status, body) = post(
            &gateway,
            &format!("/v1beta/models/{model}:countTokens"),
            &[],
            &json!({"contents": [{"role": "user", "parts": [{"text": question}]}]}),
        )
        .await;
        assert_eq!(status, 200, "{model}: {body}");
        assert!(
            body["totalTokens"].as_u64().unwrap() >= 8,
            "{model}: {body}"
        );
    }
    // The upstreams that can count were asked (the mocks count words).
    let anthropic_counts: Vec<_> = anthropic.requests_to("/v1/messages/count_tokens");
    assert_eq!(
        anthropic_counts.len(),
        2,
        "both clients' counts for the Anthropic model went upstream"
    );
    assert!(
        anthropic_counts
            .iter()
            .all(|request| request.json().get("max_tokens").is_none())
    );
    assert_eq!(
        gemini
            .requests_to("/v1beta/models/gemini-model:countTokens")
            .len(),
        2
    );
    assert!(
        openai.requests().is_empty(),
        "Chat Completions cannot count: estimated locally"
    );
}

#[tokio::test]
async fn model_listings_take_each_clients_shape() {
    let openai = MockUpstream::openai().await;
    let gateway = gateway(&[("openai-compatible", "local", &openai, "")]).await;
    let client = http_client();
    let openai_shape: Value = client
        .get(gateway.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        openai_shape,
        json!({"object": "list", "data": [{"id": "local-model", "object": "model", "created": 0, "owned_by": "local"}]})
    );
    let anthropic_shape: Value = client
        .get(gateway.url("/v1/models"))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anthropic_shape["data"][0]["type"], "model");
    assert_eq!(anthropic_shape["has_more"], false);
    let gemini_shape: Value = client
        .get(gateway.url("/v1beta/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gemini_shape["models"][0]["name"], "models/local-model");

    let one: Value = client
        .get(gateway.url("/v1/models/local-model"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], "local-model");
    let missing = client
        .get(gateway.url("/v1beta/models/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["status"], "NOT_FOUND");
}

#[tokio::test]
async fn gemini_clients_without_sse_get_one_json_array() {
    let (openai, gemini) = (MockUpstream::openai().await, MockUpstream::gemini().await);
    let gateway = gateway(&[
        ("openai-compatible", "chat", &openai, ""),
        ("gemini", "gemini", &gemini, ""),
    ])
    .await;
    for model in ["gemini-model", "chat-model"] {
        let (status, headers, body) = post_raw(
            &gateway.url(&format!("/v1beta/models/{model}:streamGenerateContent")),
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{model}");
        assert_eq!(headers["content-type"], "application/json", "{model}");
        let chunks: Vec<Value> = serde_json::from_slice(&body)
            .unwrap_or_else(|error| panic!("{model}: {error}: {}", String::from_utf8_lossy(&body)));
        let text: String = chunks
            .iter()
            .filter_map(|chunk| chunk["candidates"][0]["content"]["parts"][0]["text"].as_str())
            .collect();
        assert_eq!(text, "Hello from the mock upstream.", "{model}");
        assert!(
            chunks.last().unwrap()["candidates"][0]["finishReason"].is_string(),
            "{model}"
        );
    }
    // The Gemini upstream was asked for SSE either way.
    let upstream = gemini.requests_to("/v1beta/models/gemini-model:streamGenerateContent");
    assert_eq!(upstream[0].query.as_deref(), Some("alt=sse"));

    // A stream cut short still ends as a whole array, its last element the error.
    for (mock, model) in [(&gemini, "gemini-model"), (&openai, "chat-model")] {
        mock.enqueue(
            Scenario::reply("an answer cut short")
                .pieces(4)
                .end(StreamEnd::Cut { after: 2 }),
        );
        let (status, _, body) = post_raw(
            &gateway.url(&format!("/v1beta/models/{model}:streamGenerateContent")),
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{model}");
        let chunks: Vec<Value> = serde_json::from_slice(&body)
            .unwrap_or_else(|error| panic!("{model}: {error}: {}", String::from_utf8_lossy(&body)));
        let last = chunks.last().unwrap();
        assert!(last["error"]["message"].is_string(), "{model}: {last}");
        assert!(
            chunks.len() > 1,
            "{model}: the text before the cut was lost"
        );
    }
}

#[tokio::test]
async fn always_stream_assembles_the_answer_for_a_client_that_did_not_stream() {
    let anthropic = MockUpstream::anthropic().await;
    let gateway = gateway(&[("anthropic", "claude", &anthropic, "always_stream = true")]).await;
    let (status, body) = post(
        &gateway,
        "/v1/messages",
        &[("anthropic-version", "2023-06-01")],
        &json!({"model": "claude-model", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["content"][0]["text"], "Hello from the mock upstream.");
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(
        anthropic.requests_to("/v1/messages")[0].json()["stream"],
        true
    );
}

#[tokio::test]
async fn anthropic_betas_travel_only_on_a_pass_through() {
    let (openai, anthropic) = (
        MockUpstream::openai().await,
        MockUpstream::anthropic().await,
    );
    let gateway = gateway(&[
        ("openai-compatible", "chat", &openai, ""),
        ("anthropic", "claude", &anthropic, ""),
    ])
    .await;
    let beta = ("anthropic-beta", "interleaved-thinking-2025-05-14");
    let body = json!({"model": "claude-model", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    let (status, _) = post(
        &gateway,
        "/v1/messages",
        &[("anthropic-version", "2023-06-01"), beta],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        anthropic.requests()[0].header("anthropic-beta"),
        Some(beta.1)
    );
    assert_eq!(
        anthropic.requests()[0].header("anthropic-version"),
        Some("2023-06-01")
    );
    // A Chat Completions client has no betas to pass.
    let (status, _) = post(
        &gateway,
        "/v1/chat/completions",
        &[beta],
        &json!({"model": "claude-model", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(anthropic.requests()[1].header("anthropic-beta"), None);
}

#[tokio::test]
async fn requests_that_cannot_be_translated_get_400_in_the_clients_shape() {
    let anthropic = MockUpstream::anthropic().await;
    let gateway = gateway(&[("anthropic", "claude", &anthropic, "")]).await;
    let (status, body) = post(
        &gateway,
        "/v1/responses",
        &[],
        &json!({"model": "claude-model", "input": "hi", "previous_response_id": "resp_1"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "previous_response_id");
    let (status, body) = post(
        &gateway,
        "/v1/chat/completions",
        &[],
        &json!({"model": "claude-model", "messages": [{"role": "wizard", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "messages[0].role");
    let (status, body) = post(
        &gateway,
        "/v1beta/models/claude-model:explode",
        &[],
        &json!({}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    assert!(anthropic.requests().is_empty());
}

#[tokio::test]
async fn upstream_usage_flows_into_the_record_of_a_translated_stream() {
    let gemini = MockUpstream::gemini().await;
    gemini.enqueue(Scenario::reply("one two three four"));
    let gateway = gateway(&[("gemini", "gemini", &gemini, "")]).await;
    let (status, _, body) = post_raw(
        &gateway.url("/v1/chat/completions"),
        json!({"model": "gemini-model", "messages": [{"role": "user", "content": "count these five words"}], "stream": true}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).ends_with("data: [DONE]\n\n"));
    let row = &gateway.usage(1).await[0];
    assert!(row.usage_reported);
    assert_eq!((row.input_tokens, row.output_tokens), (4, 4));
    assert_eq!(row.upstream_dialect.as_deref(), Some("gemini"));
    // Noted even when the whole answer came in one read.
    assert!(row.first_token_ms.is_some(), "{row:?}");
}
