//! Gemini CLI logins end to end against the Code Assist mock: an import of
//! Gemini CLI's file onboards a new account (load, onboard, poll) and then
//! every client dialect is answered through the wrapped API; expiry renews
//! the login once; a daily quota rests the model.

use serde_json::json;
use subgate_testkit::TestGateway;
use subgate_testkit::mock::{MockUpstream, gemini_daily_quota_exhausted};

use crate::subscriptions::{every_dialect_for, import_from, subscription_config};
use crate::support::post_json;

#[tokio::test]
async fn gemini_cli_import_onboards_and_serves_every_dialect() {
    let mock = MockUpstream::gemini_cli().await;
    mock.set_gemini_not_onboarded("proj-new-1");
    let mut gateway = TestGateway::start(&subscription_config("gemini-cli", &mock)).await;
    let home = tempfile::tempdir().unwrap();
    let tokens = mock.oauth().issue_tokens();
    let file = home.path().join("oauth_creds.json");
    let creds = json!({"access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
        "id_token": tokens.id_token, "token_type": "Bearer", "expiry_date": tokens.expires_at_ms});
    std::fs::write(&file, creds.to_string()).unwrap();
    let out = import_from(&gateway, home.path(), "gemini-cli", &file).await;
    assert!(out.contains("of provider `gemini-cli`"), "{out}");
    assert!(out.contains("(copied)"), "{out}");
    assert_eq!(mock.gemini_project().as_deref(), Some("proj-new-1"));
    gateway.restart().await;

    every_dialect_for(&gateway, "gemini-2.5-pro", "gemini-cli").await;
    let sent = mock.requests_to("/v1internal:generateContent");
    assert!(!sent.is_empty());
    assert_eq!(sent[0].json()["project"], "proj-new-1");

    // The user quota is read per model: a used-up bucket rests only its
    // model on the account.
    mock.set_gemini_quota("gemini-2.5-flash", 0.0, "2099-01-01T00:00:00Z");
    mock.set_gemini_quota("gemini-2.5-pro", 0.75, "2099-01-01T00:00:00Z");
    gateway.engine().refresh_quotas().await;
    let quota = mock.requests_to("/v1internal:retrieveUserQuota");
    assert_eq!(quota.last().unwrap().json()["project"], "proj-new-1");
    let account = &gateway.engine().accounts()[0];
    assert_eq!(account.state, "ready", "{account:?}");
    let rests: Vec<(&str, &str)> = account
        .rests
        .iter()
        .map(|rest| (rest.model.as_str(), rest.state))
        .collect();
    assert_eq!(rests, [("gemini-2.5-flash", "quota_exhausted")]);
    let flash =
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, _) = post_json(&gateway.url("/v1/chat/completions"), &flash).await;
    assert_eq!(status, 429);
    gateway.engine().reset_account(&account.name).await.unwrap();

    // Expiry: one refresh for the next requests.
    mock.oauth().expire_access_tokens();
    every_dialect_for(&gateway, "gemini-2.5-pro", "gemini-cli").await;
    assert_eq!(mock.oauth().refresh_count(), 1);

    // A daily quota rests the model on the account as quota, not as a
    // passing limit (Code Assist's quotas are per model).
    mock.enqueue(gemini_daily_quota_exhausted("3600s"));
    let body =
        json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "more"}]});
    let (status, _, bytes) = post_json(&gateway.url("/v1/chat/completions"), &body).await;
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&bytes));
    let account = &gateway.engine().accounts()[0];
    assert_eq!(account.rests.len(), 1, "{account:?}");
    assert_eq!(account.rests[0].model, "gemini-2.5-pro");
    assert_eq!(account.rests[0].state, "quota_exhausted");
}
