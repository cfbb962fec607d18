//! ChatGPT/Codex subscriptions end to end against the Codex mock: device and
//! browser logins and an import through the real binary, requests from
//! every client dialect (non-streamed ones assembled from the stream the
//! backend insists on), one refresh for a burst on expiry, the `x-codex-*`
//! windows as quota, and failover when one plan's usage limit is reached.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use subgate_testkit::mock::{DeviceStep, MockUpstream, Scenario, StreamEnd, codex_usage_limit};
use subgate_testkit::{TestGateway, http_client};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::process::subgate;
use crate::subscriptions::{
    cli_env, every_dialect_for, import_from, printed_url, subscription_config,
};
use crate::support::post_json;

const MODEL: &str = "gpt-5.2-codex";

/// Runs `subgate login codex ARGS…`, letting `visit` act on the printed
/// link as a user would; returns stdout.
async fn login(gateway: &TestGateway, home: &Path, args: &[&str], visit: bool) -> String {
    let (config, data) = cli_env(gateway);
    let mut command = vec!["login", "codex", "--config", config.to_str().unwrap()];
    command.extend_from_slice(args);
    let env = [("SUBGATE_DATA_DIR", data.as_str()), ("BROWSER", "true")];
    let mut child = subgate(home, &command, &env).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = printed_url(&mut lines).await;
    if visit {
        let _ = http_client().get(&url).send().await.unwrap();
    }
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let mut err = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        err.push_str(&line);
    }
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{out}{err}");
    out
}

#[tokio::test]
async fn codex_device_login_serves_every_dialect_and_refreshes_once() {
    let mock = MockUpstream::codex().await;
    mock.oauth()
        .set_identity("dev@example.com", "acc-1", "plus");
    mock.oauth()
        .script_device(vec![DeviceStep::Pending, DeviceStep::Pending]);
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    mock.set_codex_limits(25.0, reset, 80.0, reset + 86_400);
    let mut gateway = TestGateway::start(&subscription_config("codex", &mock)).await;
    let home = tempfile::tempdir().unwrap();
    let out = login(&gateway, home.path(), &["--no-browser"], false).await;
    assert!(
        out.contains("account `dev@example.com` of provider `codex` added"),
        "{out}"
    );
    assert_eq!(mock.requests_to("/api/accounts/deviceauth/token").len(), 3);
    gateway.restart().await;

    // The catalog came from the backend.
    let models = http_client()
        .get(gateway.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(models.contains("gpt-5.2\""), "{models}");

    every_dialect_for(&gateway, MODEL, "codex").await;
    let sent = mock.requests_to("/backend-api/codex/responses");
    assert_eq!(sent.len(), 4);
    for request in &sent {
        assert_eq!(request.header("chatgpt-account-id"), Some("acc-1"));
        assert_eq!(request.header("originator"), Some("codex_cli_rs"));
        assert!(request.header("session_id").is_some());
        let body = request.json();
        assert_eq!(body["stream"], true);
        assert_eq!(body["store"], false);
    }
    // A streamed Responses request passes through, minus what the backend
    // refuses.
    let body = json!({"model": MODEL, "input": "hi", "stream": true, "max_output_tokens": 50, "temperature": 0.5});
    let (status, _, bytes) = post_json(&gateway.url("/v1/responses"), &body).await;
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("response.completed"), "{text}");

    // A stream the backend cuts before `response.completed` is not an
    // answer: the client that asked for a whole one gets an error.
    mock.enqueue(
        Scenario::reply("a long answer that stops")
            .pieces(4)
            .end(StreamEnd::Cut { after: 2 }),
    );
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "cut"}]});
    let (status, _, bytes) = post_json(&gateway.url("/v1/chat/completions"), &body).await;
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, 502, "{text}");
    assert!(!text.contains("a long"), "{text}");

    // The windows in the answers' headers are the account's quota.
    let account = &gateway.engine().accounts()[0];
    let weekly = account.tightest_quota().unwrap();
    assert_eq!(weekly.window, "weekly");
    assert!((weekly.remaining - 20.0).abs() < 1e-9, "{weekly:?}");

    // Every token stops working: a burst renews the login once.
    mock.oauth().expire_access_tokens();
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    let url = gateway.url("/v1/chat/completions");
    let burst = (0..8).map(|_| post_json(&url, &body));
    for (status, _, bytes) in futures_util::future::join_all(burst).await {
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    }
    assert_eq!(mock.oauth().refresh_count(), 1);
    gateway.restart().await;
    every_dialect_for(&gateway, MODEL, "codex").await;
    assert_eq!(mock.oauth().refresh_count(), 1);
}

#[tokio::test]
async fn codex_browser_login_and_import_fail_over_on_a_usage_limit() {
    let mock = MockUpstream::codex().await;
    let mut gateway = TestGateway::start(&subscription_config("codex", &mock)).await;
    let home = tempfile::tempdir().unwrap();

    mock.oauth()
        .set_identity("one@example.com", "acc-1", "plus");
    let out = login(&gateway, home.path(), &["--port", "0"], true).await;
    assert!(
        out.contains("account `one@example.com` of provider `codex` added"),
        "{out}"
    );
    let authorize = &mock.requests_to("/oauth/authorize")[0];
    let query = authorize.query.clone().unwrap_or_default();
    assert!(query.contains("codex_cli_simplified_flow=true"), "{query}");

    // Codex CLI's own login, imported linked.
    mock.oauth().set_identity("two@example.com", "acc-2", "pro");
    let tokens = mock.oauth().issue_tokens();
    let file = home.path().join("auth.json");
    let auth = json!({"auth_mode": "chatgpt", "OPENAI_API_KEY": null, "tokens": {
        "id_token": tokens.id_token, "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token, "account_id": "acc-2"},
        "last_refresh": "2026-01-01T00:00:00Z"});
    std::fs::write(&file, auth.to_string()).unwrap();
    let out = import_from(&gateway, home.path(), "codex", &file).await;
    assert!(
        out.contains("added account `two@example.com` of provider `codex`"),
        "{out}"
    );
    assert!(out.contains("(linked)"), "{out}");
    gateway.restart().await;
    every_dialect_for(&gateway, MODEL, "codex").await;

    // A renewal of the imported login is written back to Codex's file.
    let after = renew_both(&gateway, &mock, &file).await;
    assert_ne!(
        after["tokens"]["refresh_token"],
        json!(tokens.refresh_token)
    );
    assert_ne!(after["tokens"]["access_token"], json!(tokens.access_token));
    assert_eq!(after["auth_mode"], "chatgpt");
    assert_ne!(after["last_refresh"], "2026-01-01T00:00:00Z");

    // One plan reaches its limit: the other answers, and the first rests
    // until the reset the backend named.
    mock.enqueue(codex_usage_limit(3600));
    let body = json!({"model": MODEL, "input": "hi"});
    let (status, headers, bytes) = post_json(&gateway.url("/v1/responses"), &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers["x-subgate-attempts"], "2");
    let accounts = gateway.engine().accounts();
    let exhausted: Vec<_> = accounts
        .iter()
        .filter(|account| account.state == "quota_exhausted")
        .collect();
    assert_eq!(exhausted.len(), 1, "{accounts:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let left = exhausted[0].rests[0].until - i64::try_from(now).unwrap();
    assert!((3_590_000..=3_600_000).contains(&left), "{left}");
}

/// Renews both logins (requests rotate over them) and returns Codex's file.
async fn renew_both(gateway: &TestGateway, mock: &MockUpstream, file: &Path) -> Value {
    mock.oauth().expire_access_tokens();
    // Different conversations, so affinity does not keep them on one
    // account.
    for turn in 0..4 {
        if mock.oauth().refresh_count() == 2 {
            break;
        }
        let body = json!({"model": MODEL, "input": format!("conversation {turn}")});
        let (status, _, bytes) = post_json(&gateway.url("/v1/responses"), &body).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    }
    assert_eq!(mock.oauth().refresh_count(), 2);
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}
