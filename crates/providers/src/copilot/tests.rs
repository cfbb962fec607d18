use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::session::{ApiToken, Login};

fn copilot() -> Copilot {
    let mut config = crate::common::test_config(
        subgate_core::ProviderKind::Copilot,
        "http://127.0.0.1:9",
        &[],
        vec![("editor-version".into(), SecretString::from("vscode/9.9.9"))],
    );
    config.accounts.clear();
    Copilot::new(&config)
}

fn account() -> Account {
    let account = Account::login(
        "id".into(),
        "octocat".into(),
        0,
        Login {
            access_token: "ghu_github".into(),
            ..Login::default()
        },
    );
    account.credential.session().unwrap().install(
        None,
        Some(ApiToken {
            token: "tid=copilot".into(),
            expires_at: i64::MAX,
            refresh_at: i64::MAX,
            base_url: Some(Url::parse("http://127.0.0.1:8/").unwrap()),
        }),
    );
    account
}

#[test]
fn requests_go_to_the_tokens_base_with_the_editors_identity() {
    let body = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]});
    let request = copilot().generate_request(
        &account(),
        Dialect::OpenAiChat.into(),
        Bytes::from(body.to_string()),
    );
    assert_eq!(request.url.as_str(), "http://127.0.0.1:8/chat/completions");
    assert_eq!(request.headers["authorization"], "Bearer tid=copilot");
    assert_eq!(request.headers["copilot-integration-id"], "vscode-chat");
    assert_eq!(request.headers["editor-version"], "vscode/9.9.9");
    assert_eq!(request.headers["user-agent"], "GitHubCopilotChat/0.35.0");
    assert_eq!(request.headers["x-initiator"], "user");
    assert!(request.headers.get("copilot-vision-request").is_none());

    let messages = json!({"model": "claude-sonnet-4.5", "messages": [
        {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
    ]});
    let request = copilot().generate_request(
        &account(),
        Dialect::Anthropic.into(),
        Bytes::from(messages.to_string()),
    );
    assert_eq!(request.url.as_str(), "http://127.0.0.1:8/v1/messages");
    assert_eq!(request.headers["x-initiator"], "agent");
    assert_eq!(request.headers["copilot-vision-request"], "true");
    assert_eq!(request.headers["anthropic-version"], "2023-06-01");

    let responses = json!({"model": "gpt-5.2-codex", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "done"},
    ]});
    let request = copilot().generate_request(
        &account(),
        Dialect::OpenAiResponses.into(),
        Bytes::from(responses.to_string()),
    );
    assert_eq!(request.url.as_str(), "http://127.0.0.1:8/responses");
    assert_eq!(request.headers["x-initiator"], "agent");
}

#[test]
fn the_catalog_decides_each_models_dialects() {
    let copilot = copilot();
    assert_eq!(
        copilot.dialects("claude-sonnet-4.5"),
        vec![Dialect::Anthropic, Dialect::OpenAiChat]
    );
    assert_eq!(copilot.dialects("gpt-5.2"), vec![Dialect::OpenAiResponses]);
    let models = copilot
        .parse_models(
            json!({"object": "list", "data": [
                {"id": "gpt-5.2", "capabilities": {"type": "chat"}, "supported_endpoints": ["/chat/completions", "/responses"]},
                {"id": "text-embedding-3-small", "capabilities": {"type": "embeddings"}},
                {"id": "gpt-4.1", "capabilities": {"type": "chat"}},
            ]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(models, vec!["gpt-5.2", "gpt-4.1"]);
    assert_eq!(
        copilot.dialects("gpt-5.2"),
        vec![Dialect::OpenAiChat, Dialect::OpenAiResponses]
    );
    assert_eq!(copilot.dialects("gpt-4.1"), vec![Dialect::OpenAiChat]);
    assert!(
        copilot
            .count_request(&account(), "gpt-4.1", Bytes::new())
            .is_none()
    );
}

#[test]
fn premium_requests_are_the_quota() {
    let quota = parse_usage(
        json!({
            "copilot_plan": "individual", "quota_reset_date": "2026-12-01",
            "quota_snapshots": {
                "chat": {"entitlement": 0, "remaining": 0, "unlimited": true},
                "premium_interactions": {"entitlement": 300, "remaining": 41, "quota_remaining": 41.5, "unlimited": false},
            },
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(quota.windows.len(), 1);
    assert_eq!(quota.windows[0].name, "premium");
    assert!((quota.windows[0].remaining - 41.5).abs() < 1e-9);
    assert_eq!(quota.windows[0].resets_at, Some(1_796_083_200_000));
    let usage = copilot().usage_request(&account()).unwrap();
    assert_eq!(usage.headers["authorization"], "token ghu_github");
}
