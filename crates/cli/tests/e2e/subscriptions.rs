//! Subscription accounts end to end against their mocks: logins (paste and
//! browser) and imports through the real binary, then requests from every
//! client dialect, refresh on expiry (one refresh for a burst, written back
//! to the linked file), and failover when one account's window is used up.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use subgate_testkit::mock::{MockUpstream, claude_window_exhausted};
use subgate_testkit::{TestGateway, http_client};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::process::{run, subgate};
use crate::support::post_json;

pub(crate) fn claude_config(mock: &MockUpstream) -> String {
    format!(
        "[[providers]]\nkind = \"claude\"\nbase_url = \"{}\"\nauth_url = \"{}\"\nmodels = [\"claude-sonnet-4-5\"]\n",
        mock.url(),
        mock.auth_url()
    )
}

/// A config with one subscription entry of `kind` on `mock`.
pub(crate) fn subscription_config(kind: &str, mock: &MockUpstream) -> String {
    format!(
        "[[providers]]\nkind = \"{kind}\"\nbase_url = \"{}\"\nauth_url = \"{}\"\n",
        mock.url(),
        mock.auth_url()
    )
}

/// `--config` and the data directory of a test gateway, for the CLI.
pub(crate) fn cli_env(gateway: &TestGateway) -> (PathBuf, String) {
    let data = gateway.data_dir();
    let config = data.parent().unwrap().join("config.toml");
    (config, data.display().to_string())
}

/// Writes a Claude Code credentials file holding tokens the mock issued.
pub(crate) fn claude_code_file(dir: &Path, mock: &MockUpstream) -> PathBuf {
    let tokens = mock.oauth().issue_tokens();
    let path = dir.join(".credentials.json");
    let file = json!({"claudeAiOauth": {
        "accessToken": tokens.access_token,
        "refreshToken": tokens.refresh_token,
        "expiresAt": tokens.expires_at_ms,
        "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "max"
    }});
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

pub(crate) async fn import(gateway: &TestGateway, home: &Path, file: &Path) -> String {
    import_from(gateway, home, "claude-code", file).await
}

/// `subgate import SOURCE --file FILE`; returns what it printed.
pub(crate) async fn import_from(
    gateway: &TestGateway,
    home: &Path,
    source: &str,
    file: &Path,
) -> String {
    let (config, data) = cli_env(gateway);
    let (status, out, err) = run(
        home,
        &[
            "import",
            source,
            "--file",
            file.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[("SUBGATE_DATA_DIR", &data)],
    )
    .await;
    assert!(status.success(), "{out}{err}");
    out
}

/// One request per client dialect; each must be answered.
async fn every_dialect(gateway: &TestGateway) {
    every_dialect_for(gateway, "claude-sonnet-4-5", "claude").await;
}

/// One request per client dialect for `model`; each must be answered by
/// `provider`.
pub(crate) async fn every_dialect_for(gateway: &TestGateway, model: &str, provider: &str) {
    let requests = [
        (
            "/v1/chat/completions".to_owned(),
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/responses".to_owned(),
            json!({"model": model, "input": "hi"}),
        ),
        (
            "/v1/messages".to_owned(),
            json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            format!("/v1beta/models/{model}:generateContent"),
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        ),
    ];
    for (path, body) in requests {
        let (status, headers, bytes) = post_json(&gateway.url(&path), &body).await;
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(status, 200, "{model} {path}: {text}");
        assert!(text.contains("Hello"), "{model} {path}: {text}");
        assert_eq!(headers["x-subgate-provider"], provider);
    }
}

#[tokio::test]
async fn claude_import_serves_every_dialect_and_refreshes_once_on_expiry() {
    let mock = MockUpstream::claude().await;
    let mut gateway = TestGateway::start(&claude_config(&mock)).await;
    let home = tempfile::tempdir().unwrap();
    let file = claude_code_file(home.path(), &mock);
    let before: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let out = import(&gateway, home.path(), &file).await;
    assert!(
        out.contains("added account `claude-1` of provider `claude`"),
        "{out}"
    );
    assert!(out.contains("(linked)"), "{out}");
    gateway.restart().await;

    every_dialect(&gateway).await;
    let sent = &mock.requests_to("/v1/messages")[0];
    assert_eq!(
        sent.header("authorization").unwrap(),
        format!(
            "Bearer {}",
            before["claudeAiOauth"]["accessToken"].as_str().unwrap()
        )
    );
    assert!(sent.header("x-api-key").is_none());
    assert_eq!(sent.query.as_deref(), Some("beta=true"));
    assert!(
        sent.header("anthropic-beta")
            .unwrap()
            .contains("oauth-2025-04-20")
    );
    assert_eq!(
        sent.json()["system"][0]["text"],
        "You are Claude Code, Anthropic's official CLI for Claude."
    );

    // Every token the mock issued stops working: a burst of requests
    // renews the login exactly once and all of them are answered.
    mock.oauth().expire_access_tokens();
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]});
    let url = gateway.url("/v1/messages");
    let burst = (0..8).map(|_| post_json(&url, &body));
    for (status, _, bytes) in futures_util::future::join_all(burst).await {
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    }
    assert_eq!(mock.oauth().refresh_count(), 1);

    // The renewed (rotated) tokens were written back to Claude Code's file.
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_ne!(
        after["claudeAiOauth"]["accessToken"],
        before["claudeAiOauth"]["accessToken"]
    );
    assert_ne!(
        after["claudeAiOauth"]["refreshToken"],
        before["claudeAiOauth"]["refreshToken"]
    );
    assert_eq!(after["claudeAiOauth"]["subscriptionType"], "max");
    let last = mock.requests_to("/v1/messages").pop().unwrap();
    assert_eq!(
        last.header("authorization").unwrap(),
        format!(
            "Bearer {}",
            after["claudeAiOauth"]["accessToken"].as_str().unwrap()
        )
    );

    // A restart uses the stored, renewed login without refreshing again.
    gateway.restart().await;
    every_dialect(&gateway).await;
    assert_eq!(mock.oauth().refresh_count(), 1);
}

#[tokio::test]
async fn claude_fails_over_when_one_subscription_window_is_used_up() {
    let mock = MockUpstream::claude().await;
    let mut gateway = TestGateway::start(&claude_config(&mock)).await;
    let home = tempfile::tempdir().unwrap();
    for who in ["one", "two"] {
        let dir = home.path().join(who);
        std::fs::create_dir_all(&dir).unwrap();
        let file = claude_code_file(&dir, &mock);
        import(&gateway, home.path(), &file).await;
    }
    gateway.restart().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    mock.enqueue(claude_window_exhausted(reset));
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]});
    let (status, headers, bytes) = post_json(&gateway.url("/v1/messages"), &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers["x-subgate-attempts"], "2");
    let exhausted: Vec<_> = gateway
        .engine()
        .accounts()
        .into_iter()
        .filter(|account| account.state == "quota_exhausted")
        .collect();
    assert_eq!(exhausted.len(), 1);
    let until = exhausted[0].rests[0].until;
    let expected = i64::try_from(reset).unwrap() * 1000;
    assert!(
        (until - expected).abs() < 2_000,
        "rests until {until}, reset {expected}"
    );
}

/// Reads stderr lines until one holds a URL; returns it.
pub(crate) async fn printed_url(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
) -> String {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the login prints a link")
            .unwrap()
            .expect("the login prints a link before ending");
        if let Some(url) = line
            .split_whitespace()
            .find(|word| word.starts_with("http"))
        {
            return url.to_owned();
        }
    }
}

#[tokio::test]
async fn claude_logins_by_paste_and_by_browser_update_one_account() {
    let mock = MockUpstream::claude().await;
    mock.oauth()
        .set_identity("dev@example.com", "acct-1", "max");
    let gateway = TestGateway::start(&claude_config(&mock)).await;
    let (config, data) = cli_env(&gateway);
    let home = tempfile::tempdir().unwrap();
    let env = [("SUBGATE_DATA_DIR", data.as_str()), ("BROWSER", "true")];
    let config = config.to_str().unwrap();

    // Paste: the page shows CODE#STATE, which goes to stdin.
    let mut child = subgate(
        home.path(),
        &["login", "claude", "--no-browser", "--config", config],
        &env,
    )
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = printed_url(&mut lines).await;
    let page = http_client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let code = page
        .split("<code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{code}\n").as_bytes())
        .await
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains("account `dev@example.com` of provider `claude` added"),
        "{out}"
    );

    // Browser: visiting the link (as the browser would) returns to the
    // loopback callback; the same account is updated, not duplicated.
    let mut child = subgate(
        home.path(),
        &["login", "claude", "--port", "0", "--config", config],
        &env,
    )
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = printed_url(&mut lines).await;
    let landing = http_client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(landing.contains("Login complete"), "{landing}");
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains("account `dev@example.com` of provider `claude` updated"),
        "{out}"
    );

    // A refused login says so.
    mock.oauth().deny_authorize();
    let mut child = subgate(
        home.path(),
        &["login", "claude", "--port", "0", "--config", config],
        &env,
    )
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = printed_url(&mut lines).await;
    let _ = http_client().get(&url).send().await.unwrap();
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(!output.status.success());
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
    }
    assert!(rest.contains("refused"), "{rest}");
}
