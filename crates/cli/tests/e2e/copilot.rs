//! GitHub Copilot end to end against the Copilot mock: the GitHub device
//! login and an import of the editor plugin's file through the real binary;
//! every client dialect for models served at each of Copilot's endpoints
//! (chosen from the catalog's `supported_endpoints`); the API token
//! exchanged once and again after it expires; `X-Initiator` and the vision
//! header; premium quota; and a GitHub account without a Copilot seat.

use std::time::Duration;

use serde_json::json;
use subgate_testkit::TestGateway;
use subgate_testkit::mock::{DeviceStep, MockUpstream};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::process::subgate;
use crate::subscriptions::{
    cli_env, every_dialect_for, import_from, printed_url, subscription_config,
};
use crate::support::post_json;

#[tokio::test]
async fn copilot_device_login_serves_each_model_at_its_endpoint() {
    let mock = MockUpstream::copilot().await;
    mock.oauth().set_identity("", "octocat", "individual");
    mock.oauth().script_device(vec![DeviceStep::Pending]);
    let mut gateway = TestGateway::start(&subscription_config("copilot", &mock)).await;
    let home = tempfile::tempdir().unwrap();
    let (config, data) = cli_env(&gateway);
    let env = [("SUBGATE_DATA_DIR", data.as_str()), ("BROWSER", "true")];
    let mut child = subgate(
        home.path(),
        &["login", "copilot", "--config", config.to_str().unwrap()],
        &env,
    )
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = printed_url(&mut lines).await;
    assert!(url.ends_with("/login/device"), "{url}");
    let code = lines.next_line().await.unwrap();
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out} {code:?}");
    assert!(
        out.contains("account `octocat` of provider `copilot` added"),
        "{out}"
    );
    gateway.restart().await;

    for model in ["gpt-4.1", "gpt-5.2-codex", "claude-sonnet-4.5"] {
        every_dialect_for(&gateway, model, "copilot").await;
    }
    // Each model went to the endpoint the catalog names for it: a client
    // whose dialect the model takes passes through, others translate.
    let at = |path: &str| -> Vec<String> {
        mock.requests_to(path)
            .iter()
            .map(|request| request.json()["model"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        at("/responses")
            .iter()
            .all(|model| model == "gpt-5.2-codex")
    );
    assert_eq!(at("/responses").len(), 4);
    assert_eq!(at("/v1/messages").len(), 3, "{:?}", at("/v1/messages"));
    assert!(at("/chat/completions").contains(&"claude-sonnet-4.5".to_owned()));
    assert_eq!(
        at("/chat/completions")
            .iter()
            .filter(|model| *model == "gpt-4.1")
            .count(),
        4
    );
    let sent = &mock.requests_to("/chat/completions")[0];
    assert_eq!(sent.header("copilot-integration-id"), Some("vscode-chat"));
    assert_eq!(sent.header("x-initiator"), Some("user"));
    assert!(sent.header("copilot-vision-request").is_none());
    // One API token serves every request until it expires.
    assert_eq!(mock.token_exchange_count(), 1);

    // A tool result's follow-up is the agent's turn; an image asks for
    // vision.
    let body = json!({"model": "gpt-4.1", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
    ]});
    let (status, _, bytes) = post_json(&gateway.url("/v1/chat/completions"), &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let sent = mock.requests_to("/chat/completions").pop().unwrap();
    assert_eq!(sent.header("x-initiator"), Some("agent"));
    assert_eq!(sent.header("copilot-vision-request"), Some("true"));

    // The API token expires: the next request exchanges a new one and is
    // answered.
    mock.oauth().expire_access_tokens();
    every_dialect_for(&gateway, "gpt-4.1", "copilot").await;
    assert_eq!(mock.token_exchange_count(), 2);

    // Premium requests are the account's quota.
    mock.set_copilot_premium(300, 120.0, "2099-01-01");
    gateway.engine().refresh_quotas().await;
    let account = &gateway.engine().accounts()[0];
    let premium = account.tightest_quota().unwrap();
    assert_eq!(premium.window, "premium");
    assert!((premium.remaining - 120.0).abs() < 1e-9, "{premium:?}");
}

#[tokio::test]
async fn copilot_import_is_copied_and_a_missing_seat_is_said() {
    let mock = MockUpstream::copilot().await;
    mock.oauth().set_identity("", "octocat", "individual");
    let mut gateway = TestGateway::start(&subscription_config("copilot", &mock)).await;
    let home = tempfile::tempdir().unwrap();
    let token = mock.oauth().issue_tokens().access_token;
    let file = home.path().join("apps.json");
    let apps = json!({"github.com:Iv1.b507a08c87ecfe98": {"user": "octocat", "oauth_token": token, "githubAppId": "Iv1.b507a08c87ecfe98"}});
    std::fs::write(&file, apps.to_string()).unwrap();
    let out = import_from(&gateway, home.path(), "copilot", &file).await;
    assert!(
        out.contains("added account `octocat` of provider `copilot`"),
        "{out}"
    );
    assert!(out.contains("(copied)"), "{out}");
    gateway.restart().await;
    every_dialect_for(&gateway, "claude-sonnet-4.5", "copilot").await;
    let sent = &mock.requests_to("/copilot_internal/v2/token")[0];
    assert_eq!(
        sent.header("authorization"),
        Some(format!("token {token}").as_str())
    );

    // The seat goes away: the next exchange is refused and the client is
    // told why.
    mock.set_no_seat();
    mock.oauth().expire_access_tokens();
    let body = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, bytes) = post_json(&gateway.url("/v1/chat/completions"), &body).await;
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("Copilot seat"), "{text}");
}
