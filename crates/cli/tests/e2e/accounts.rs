//! `subgate accounts list | show | enable | disable | remove | refresh`
//! and `subgate logout` on a Claude login imported from a Claude Code
//! file, through the real binary against the Claude mock: expiry and
//! disabled accounts in the list, a disabled account left out of the
//! gateway, logging out (the linked file untouched), and renewing a login
//! on demand.

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use serde_json::{Value, json};
use subgate_testkit::mock::MockUpstream;
use subgate_testkit::{TestGateway, http_client};

use crate::process::run;
use crate::subscriptions::{claude_code_file, claude_config, cli_env, import};
use crate::support::post_json;

/// Runs `subgate ARGS --config …` on the gateway's config and data.
async fn subgate(
    gateway: &TestGateway,
    home: &Path,
    args: &[&str],
) -> (ExitStatus, String, String) {
    let (config, data) = cli_env(gateway);
    let mut args = args.to_vec();
    args.extend(["--config", config.to_str().unwrap()]);
    run(home, &args, &[("SUBGATE_DATA_DIR", &data)]).await
}

/// `accounts list --json`, parsed.
async fn listed(gateway: &TestGateway, home: &Path) -> Vec<Value> {
    let (status, out, err) = subgate(gateway, home, &["accounts", "list", "--json"]).await;
    assert!(status.success(), "{err}");
    serde_json::from_str(&out).unwrap()
}

/// A gateway on the Claude mock with Claude Code's login imported
/// (linked) as `claude-1`: the mock, the gateway (restarted, so it serves
/// the account), the home, and Claude Code's file.
async fn imported() -> (
    MockUpstream,
    TestGateway,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let mock = MockUpstream::claude().await;
    let mut gateway = TestGateway::start(&claude_config(&mock)).await;
    let home = tempfile::tempdir().unwrap();
    let file = claude_code_file(home.path(), &mock);
    let out = import(&gateway, home.path(), &file).await;
    assert!(out.contains("account `claude-1`"), "{out}");
    gateway.restart().await;
    (mock, gateway, home, file)
}

fn messages() -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]})
}

fn file_json(file: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

#[tokio::test]
async fn a_login_is_listed_with_its_expiry_and_shown() {
    let (_mock, gateway, home, file) = imported().await;
    let home = home.path();
    let expires = file_json(&file)["claudeAiOauth"]["expiresAt"]
        .as_i64()
        .unwrap();

    // The list says when the login expires, and what it is (no secret).
    let accounts = listed(&gateway, home).await;
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    let account = &accounts[0];
    assert_eq!(account["name"], "claude-1");
    assert_eq!(account["auth"], "login");
    assert_eq!(account["enabled"], true);
    assert_eq!(account["state"], "ready");
    assert_eq!(account["expires_at"], expires);
    assert_eq!(account["plan"], "max");
    assert_eq!(account["linked"], file.display().to_string());
    let text = serde_json::to_string(&accounts).unwrap();
    let tokens = &file_json(&file)["claudeAiOauth"];
    for secret in ["accessToken", "refreshToken"] {
        assert!(!text.contains(tokens[secret].as_str().unwrap()), "{text}");
    }
    let (status, out, err) = subgate(&gateway, home, &["accounts", "list"]).await;
    assert!(status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("PROVIDER  ACCOUNT   STATE  EXPIRES"),
        "{out}"
    );
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cells[..4], ["claude", "claude-1", "ready", "in"], "{out}");
    assert!(cells[4] == "1h00m" || cells[4].starts_with("59m"), "{out}");

    // Show: everything about it, as `key: value` lines.
    let (status, out, err) =
        subgate(&gateway, home, &["accounts", "show", "claude/claude-1"]).await;
    assert!(status.success(), "{err}");
    let id = account["id"].as_str().unwrap();
    for line in [
        "provider:     claude".to_owned(),
        "name:         claude-1".to_owned(),
        format!("id:           {id}"),
        "auth:         login, kept in the database".to_owned(),
        "plan:         max".to_owned(),
        format!("linked file:  {}", file.display()),
        "enabled:      yes".to_owned(),
        "state:        ready".to_owned(),
        "rests:        -".to_owned(),
        "priority:     0".to_owned(),
    ] {
        assert!(
            out.lines().any(|shown| shown == line),
            "no `{line}` in:\n{out}"
        );
    }
    assert!(out.contains("\nexpires:      in "), "{out}");
    let (status, out, err) = subgate(&gateway, home, &["accounts", "show", id, "--json"]).await;
    assert!(status.success(), "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["expires_at"], expires);
}

#[tokio::test]
async fn a_disabled_login_is_listed_but_not_served_and_logout_removes_it() {
    let (mock, mut gateway, home, file) = imported().await;
    let home = home.path();
    let account = listed(&gateway, home).await.remove(0);
    let id = account["id"].as_str().unwrap();

    // Disabled: still listed, and a gateway started after has no account
    // for Claude, so nothing reaches the upstream.
    let (status, out, err) = subgate(&gateway, home, &["accounts", "disable", "claude-1"]).await;
    assert!(status.success(), "{err}");
    assert!(
        out.starts_with("disabled account `claude-1` of provider `claude`"),
        "{out}"
    );
    let accounts = listed(&gateway, home).await;
    assert_eq!(accounts[0]["state"], "disabled");
    assert_eq!(accounts[0]["enabled"], false);
    assert_eq!(accounts[0]["expires_at"], account["expires_at"]);
    let (_, out, _) = subgate(&gateway, home, &["accounts", "list"]).await;
    assert!(out.lines().nth(1).unwrap().contains(" disabled "), "{out}");
    let (_, out, _) = subgate(&gateway, home, &["accounts", "disable", "claude-1"]).await;
    assert_eq!(
        out,
        "account `claude-1` of provider `claude` is already disabled\n"
    );
    gateway.restart().await;
    assert_eq!(gateway.engine().accounts(), []);
    assert!(!gateway.engine().provider_names().contains(&"claude"));
    let (status, _, _) = post_json(&gateway.url("/v1/messages"), &messages()).await;
    assert_ne!(status, 200);
    assert_eq!(mock.requests_to("/v1/messages").len(), 0);

    // Enabled again: served after the next start.
    let (status, out, err) = subgate(&gateway, home, &["accounts", "enable", "claude-1"]).await;
    assert!(status.success(), "{err}");
    assert!(out.starts_with("enabled account `claude-1`"), "{out}");
    gateway.restart().await;
    let (status, _, bytes) = post_json(&gateway.url("/v1/messages"), &messages()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));

    // Logout removes the login and its health, and leaves Claude Code's
    // file as it was.
    let before = std::fs::read(&file).unwrap();
    let database = gateway.data_dir().join("subgate.db");
    let store = subgate_store::Store::open(&subgate_store::StoreLocation::Sqlite(database))
        .await
        .unwrap();
    store
        .put_health(&subgate_store::HealthRow {
            account_id: id.to_owned(),
            model: String::new(),
            state: "cooling_down".into(),
            until_at: Some(i64::MAX - 1),
            reason: Some("slow down".into()),
            failures: 1,
            updated_at: 0,
        })
        .await
        .unwrap();
    let (status, out, err) = subgate(&gateway, home, &["logout", "claude-1"]).await;
    assert!(status.success(), "{err}");
    assert_eq!(
        out,
        format!(
            "removed account `claude-1` of provider `claude` (its stored login and health)\nthe linked file {} is left untouched: the CLI that owns it stays logged in\na running `subgate serve` stops using it after a restart\n",
            file.display()
        )
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert!(store.accounts().await.unwrap().is_empty());
    assert!(store.health(0).await.unwrap().is_empty());
    store.close().await;
    assert_eq!(listed(&gateway, home).await, Vec::<Value>::new());

    let (status, out, err) = subgate(&gateway, home, &["logout", "claude-1"]).await;
    assert_eq!(status.code(), Some(1));
    assert_eq!(out, "");
    assert_eq!(
        err,
        "error: no account is named `claude-1`; `subgate accounts list` shows them\n"
    );
}

#[tokio::test]
async fn refresh_renews_a_login_at_once() {
    let (mock, mut gateway, home, file) = imported().await;
    let home = home.path();
    let before = listed(&gateway, home).await[0]["expires_at"]
        .as_i64()
        .unwrap();
    mock.oauth().set_access_ttl(Duration::from_hours(2));

    let (status, out, err) = subgate(&gateway, home, &["accounts", "refresh", "claude-1"]).await;
    assert!(status.success(), "{err}");
    assert_eq!(mock.oauth().refresh_count(), 1);
    let after = listed(&gateway, home).await[0]["expires_at"]
        .as_i64()
        .unwrap();
    assert!(after > before + 3_000_000, "{before} → {after}");
    assert!(
        out.starts_with(
            "renewed the login of account `claude-1` of provider `claude`: it expires in "
        ),
        "{out}"
    );
    assert!(
        out.contains("expires in 1h59m") || out.contains("expires in 2h00m"),
        "{out}"
    );
    assert!(
        out.ends_with(&format!(
            "the new tokens were written back to {}\n",
            file.display()
        )),
        "{out}"
    );
    // Written back to Claude Code's file, and what the gateway sends after
    // its next start, without refreshing again.
    let tokens = file_json(&file)["claudeAiOauth"].clone();
    assert_eq!(tokens["expiresAt"], after);
    gateway.restart().await;
    let (status, _, bytes) = post_json(&gateway.url("/v1/messages"), &messages()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let sent = mock.requests_to("/v1/messages").pop().unwrap();
    assert_eq!(
        sent.header("authorization").unwrap(),
        format!("Bearer {}", tokens["accessToken"].as_str().unwrap())
    );
    assert_eq!(mock.oauth().refresh_count(), 1);

    // Claude Code renews on its own, spending the refresh token subgate
    // holds: a refresh takes up the file's login first and succeeds.
    let renewed: Value = http_client()
        .post(format!("{}/v1/oauth/token", mock.auth_url()))
        .json(&json!({
            "grant_type": "refresh_token",
            "refresh_token": tokens["refreshToken"],
            "client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut claude_code = file_json(&file);
    claude_code["claudeAiOauth"]["accessToken"] = renewed["access_token"].clone();
    claude_code["claudeAiOauth"]["refreshToken"] = renewed["refresh_token"].clone();
    claude_code["claudeAiOauth"]["expiresAt"] = json!(after + 1_000);
    std::fs::write(&file, claude_code.to_string()).unwrap();
    assert_eq!(mock.oauth().refresh_count(), 2);

    // A disabled login can be renewed too.
    let (status, _, err) = subgate(&gateway, home, &["accounts", "disable", "claude-1"]).await;
    assert!(status.success(), "{err}");
    let (status, out, err) = subgate(&gateway, home, &["accounts", "refresh", "claude-1"]).await;
    assert!(status.success(), "{out}{err}");
    assert_eq!(mock.oauth().refresh_count(), 3);
    assert_ne!(
        file_json(&file)["claudeAiOauth"]["refreshToken"],
        renewed["refresh_token"]
    );
    assert_eq!(listed(&gateway, home).await[0]["state"], "disabled");

    // A refusal says so, exits non-zero and rests the account as a failed
    // automatic refresh would; the next renewal that works ends the rest.
    mock.oauth().fail_next_refresh(
        400,
        r#"{"error":"invalid_grant","error_description":"Refresh token not found or invalid"}"#,
    );
    let (status, out, err) = subgate(&gateway, home, &["accounts", "refresh", "claude-1"]).await;
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(err.contains("could not be renewed"), "{err}");
    let rests = listed(&gateway, home).await[0]["rests"].clone();
    assert_eq!(rests[0]["state"], "credential_invalid", "{rests}");
    let (status, out, err) = subgate(&gateway, home, &["accounts", "refresh", "claude-1"]).await;
    assert!(status.success(), "{out}{err}");
    assert_eq!(mock.oauth().refresh_count(), 4);
    assert_eq!(listed(&gateway, home).await[0]["rests"], json!([]));
}

#[tokio::test]
async fn config_accounts_are_refused_with_where_to_change_them() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = TestGateway::start(&format!(
        "[[providers]]\nkind = \"openai-compatible\"\nname = \"local\"\nbase_url = \"{}/v1\"\nmodels = [\"m1\"]\napi_keys = [\"sk-a\"]\n",
        mock.url()
    ))
    .await;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (config, _) = cli_env(&gateway);
    for command in ["disable", "enable", "remove"] {
        let (status, out, err) = subgate(&gateway, home, &["accounts", command, "local#1"]).await;
        assert_eq!(status.code(), Some(1), "{command}: {out}");
        assert_eq!(
            err,
            format!(
                "error: account `local#1` of provider `local` is defined in the config file {}, not stored by a login: subgate cannot enable, disable or remove it; to stop using it, delete it from that `[[providers]]` entry (its `api_keys`, `api_key_env` or `accounts`, or the whole entry) and restart the gateway\n",
                config.display()
            ),
            "{command}"
        );
    }
    let (status, _, err) = subgate(&gateway, home, &["logout", "local/local#1"]).await;
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("is defined in the config file"), "{err}");

    let (status, _, err) = subgate(&gateway, home, &["accounts", "refresh", "local#1"]).await;
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        err,
        "error: account `local#1` of provider `local` is an API key from the config file, not a login: there is nothing to refresh\n"
    );

    // Still there, enabled, and shown as an API key without expiry.
    let (status, out, err) = subgate(&gateway, home, &["accounts", "show", "local#1"]).await;
    assert!(status.success(), "{err}");
    for line in [
        "auth:         API key, from the config file",
        "enabled:      yes",
        "expires:      -",
        "linked file:  -",
    ] {
        assert!(
            out.lines().any(|shown| shown == line),
            "no `{line}` in:\n{out}"
        );
    }
    assert!(!out.contains("sk-a"), "{out}");

    let (status, out, _) = subgate(&gateway, home, &["logout", "--help"]).await;
    assert!(status.success());
    assert!(out.contains("subgate accounts remove NAME"), "{out}");
    let (status, out, _) = subgate(&gateway, home, &["accounts", "--help"]).await;
    assert!(status.success());
    for command in [
        "list", "show", "enable", "disable", "remove", "refresh", "reset",
    ] {
        assert!(out.contains(&format!("  {command} ")), "{command}: {out}");
    }
}

#[tokio::test]
async fn a_logins_priority_is_set_from_the_cli_and_the_management_api() {
    let (_mock, gateway, home, _file) = imported().await;
    let home = home.path();
    let (status, out, err) =
        subgate(&gateway, home, &["accounts", "priority", "claude-1", "3"]).await;
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("priority 3"), "{out}");
    let shown = listed(&gateway, home).await;
    assert_eq!(shown[0]["priority"], 3, "{shown:?}");

    let token = subgate_engine::admin_token(&gateway.data_dir()).unwrap();
    let response = http_client()
        .post(gateway.url("/admin/api/accounts/claude-1/priority"))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({"priority": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let account: Value = response.json().await.unwrap();
    assert_eq!(account["priority"], 1, "{account}");
    let malformed = http_client()
        .post(gateway.url("/admin/api/accounts/claude-1/priority"))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({"priority": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
}

#[tokio::test]
async fn a_login_is_started_and_completed_through_the_management_api() {
    let mock = MockUpstream::claude().await;
    mock.oauth()
        .set_identity("api@example.com", "acct-api", "max");
    let gateway = TestGateway::start(&claude_config(&mock)).await;
    let token = subgate_engine::admin_token(&gateway.data_dir()).unwrap();
    let post = |path: &str, body: Value| {
        http_client()
            .post(gateway.url(path))
            .header("authorization", format!("Bearer {token}"))
            .json(&body)
            .send()
    };
    let started = post("/admin/api/logins", json!({"provider": "claude"}))
        .await
        .unwrap();
    assert_eq!(started.status(), 201);
    let started: Value = started.json().await.unwrap();
    let flow = started["flow"].as_str().unwrap().to_owned();
    // The user opens the page anywhere; it shows CODE#STATE.
    let page = http_client()
        .get(started["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let code = page
        .split("<code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap()
        .to_owned();
    let wrong = post(
        &format!("/admin/api/logins/{flow}/complete"),
        json!({"code": format!("{}#not-the-flow", code.split('#').next().unwrap())}),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 400);
    let saved = post(
        &format!("/admin/api/logins/{flow}/complete"),
        json!({"code": code}),
    )
    .await
    .unwrap();
    assert_eq!(saved.status(), 201);
    let saved: Value = saved.json().await.unwrap();
    assert_eq!(saved["name"], "api@example.com", "{saved}");
    assert_eq!(saved["provider"], "claude");
    // A flow completes once.
    let again = post(
        &format!("/admin/api/logins/{flow}/complete"),
        json!({"code": code}),
    )
    .await
    .unwrap();
    assert_eq!(again.status(), 400);
    let unknown = post("/admin/api/logins", json!({"provider": "nobody"}))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}
