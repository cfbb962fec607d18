use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use pretty_assertions::assert_eq;
use subgate_config::ProviderConfig;
use subgate_core::{FailureClass, ProviderKind, SecretString};

use crate::Provider;
use crate::common::test_config;

fn config(keys: &[&str]) -> ProviderConfig {
    let mut config = test_config(
        ProviderKind::OpenAiCompatible,
        "http://127.0.0.1:9/v1",
        keys,
        vec![
            ("x-title".to_owned(), SecretString::from("subgate")),
            ("x-team-token".to_owned(), SecretString::from("tok-1")),
        ],
    );
    "local".clone_into(&mut config.name);
    for account in &mut config.accounts {
        account.name = account.name.replace("openai-compatible", "local");
    }
    config
}

#[test]
fn each_key_is_an_account_with_a_stable_id() {
    let provider = Provider::from_config(&config(&["k1", "k2"])).unwrap();
    let names: Vec<&str> = provider
        .accounts()
        .iter()
        .map(|account| account.name.as_str())
        .collect();
    assert_eq!(names, ["local#1", "local#2"]);
    let reordered = Provider::from_config(&config(&["k2", "k1"])).unwrap();
    assert_eq!(provider.accounts()[0].id, reordered.accounts()[1].id);
    assert!(!provider.accounts()[0].id.contains("k1"));

    let keyless = Provider::from_config(&config(&[])).unwrap();
    assert_eq!(keyless.accounts().len(), 1);
    assert_eq!(keyless.accounts()[0].name, "local");
}

#[test]
fn chat_request_carries_the_key_and_extra_headers() {
    let provider = Provider::from_config(&config(&["sk-1"])).unwrap();
    let call = crate::Call {
        wire: subgate_core::Dialect::OpenAiChat.into(),
        model: "m",
        stream: false,
        body: Bytes::from_static(b"{}"),
        client_headers: None,
    };
    let request = provider
        .generate_request(&provider.accounts()[0], call)
        .request;
    assert_eq!(
        request.url.as_str(),
        "http://127.0.0.1:9/v1/chat/completions"
    );
    assert_eq!(request.headers["authorization"], "Bearer sk-1");
    assert_eq!(request.headers["x-title"], "subgate");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["x-team-token"], "tok-1");
    assert_eq!(provider.secrets(&provider.accounts()[0]), ["sk-1", "tok-1"]);

    let keyless = Provider::from_config(&config(&[])).unwrap();
    let request = keyless.models_request(&keyless.accounts()[0]).unwrap();
    assert_eq!(request.url.as_str(), "http://127.0.0.1:9/v1/models");
    assert!(request.headers.get("authorization").is_none());
}

#[test]
fn openai_speaks_both_apis_and_compatible_servers_one() {
    let compatible = Provider::from_config(&config(&[])).unwrap();
    assert_eq!(compatible.dialects(), [subgate_core::Dialect::OpenAiChat]);
    assert_eq!(
        compatible.dialect_for(subgate_core::Dialect::Anthropic, "gpt-4o"),
        subgate_core::Dialect::OpenAiChat
    );
    let mut openai = config(&["sk"]);
    openai.kind = ProviderKind::OpenAi;
    openai.apis = vec![
        subgate_config::OpenAiApi::Responses,
        subgate_config::OpenAiApi::Chat,
    ];
    let openai = Provider::from_config(&openai).unwrap();
    assert_eq!(
        openai.dialect_for(subgate_core::Dialect::OpenAiChat, "gpt-4o"),
        subgate_core::Dialect::OpenAiChat
    );
    assert_eq!(
        openai.dialect_for(subgate_core::Dialect::Gemini, "gpt-4o"),
        subgate_core::Dialect::OpenAiResponses
    );
    assert!(openai.chat_upstream().max_completion_tokens);
    let call = crate::Call {
        wire: subgate_core::Dialect::OpenAiResponses.into(),
        model: "m",
        stream: true,
        body: Bytes::new(),
        client_headers: None,
    };
    assert_eq!(
        openai
            .generate_request(&openai.accounts()[0], call)
            .request
            .url
            .as_str(),
        "http://127.0.0.1:9/v1/responses"
    );
}

#[test]
fn failures_read_status_and_retry_after() {
    let provider = Provider::from_config(&config(&[])).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "3".parse().unwrap());
    let failure = provider.classify_failure(StatusCode::TOO_MANY_REQUESTS, &headers, "", 0);
    assert_eq!(failure.class, FailureClass::UpstreamRateLimited);
    assert_eq!(failure.retry_after, Some(Duration::from_secs(3)));
    headers.insert("retry-after-ms", "1500".parse().unwrap());
    assert_eq!(
        provider
            .classify_failure(StatusCode::TOO_MANY_REQUESTS, &headers, "", 0)
            .retry_after,
        Some(Duration::from_millis(1500))
    );
    let failure = provider.classify_failure(StatusCode::BAD_GATEWAY, &HeaderMap::new(), "", 0);
    assert_eq!(
        (failure.class, failure.retry_after),
        (FailureClass::UpstreamFault, None)
    );
}

#[test]
fn openai_claims_its_model_families_and_compatible_services_none() {
    let openai = Provider::from_config(&test_config(
        ProviderKind::OpenAi,
        "http://127.0.0.1:9/v1",
        &["k"],
        Vec::new(),
    ))
    .unwrap();
    for model in ["gpt-6", "o5-mini", "o3", "codex-mini-latest"] {
        assert!(openai.claims_family(model), "{model}");
    }
    for model in ["ollama", "o", "claude-opus-9", "gemini-9"] {
        assert!(!openai.claims_family(model), "{model}");
    }
    let compatible = Provider::from_config(&config(&[])).unwrap();
    assert!(!compatible.claims_family("gpt-6"));
}
