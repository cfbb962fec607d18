//! The subscription mocks (Claude, Codex, Copilot) behave as documented:
//! their sign-in endpoints issue, refresh and refuse credentials, and their
//! APIs let through only requests made the way the real clients make them.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure should fail loudly"
)]

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use subgate_testkit::http_client;
use subgate_testkit::mock::{
    DeviceStep, MockUpstream, Output, Scenario, StreamEnd, claude_window_exhausted,
    codex_usage_limit,
};
use support::{VERIFIER, challenge, no_redirects, send};

const CLAUDE_CLIENT: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
const IDENTITY: &str = "You are Claude Code, Anthropic's official CLI for Claude.";

fn post_json(url: &str, body: &Value) -> reqwest::RequestBuilder {
    http_client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
}

/// `request` with header `name` set to `value` alone (reqwest's `header`
/// adds a value; `headers` replaces).
fn set(
    request: reqwest::RequestBuilder,
    name: &'static str,
    value: &str,
) -> reqwest::RequestBuilder {
    let mut headers = HeaderMap::new();
    headers.insert(name, value.parse().unwrap());
    request.headers(headers)
}

// ---------------------------------------------------------------- Claude

fn authorize_url(mock: &MockUpstream, client: &str, redirect: &str, scope: &str) -> String {
    let mut url = url::Url::parse(&format!("{}/oauth/authorize", mock.auth_url())).unwrap();
    url.query_pairs_mut()
        .append_pair("code", "true")
        .append_pair("client_id", client)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", scope)
        .append_pair("code_challenge", &challenge(VERIFIER))
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "the-state");
    url.into()
}

const PASTE_REDIRECT: &str = "https://platform.claude.com/oauth/code/callback";
const CLAUDE_SCOPES: &str = "user:profile user:inference user:sessions:claude_code";

#[tokio::test]
async fn claude_paste_login_exchange_and_rotating_refresh() {
    let mock = MockUpstream::claude().await;
    mock.oauth()
        .set_identity("ada@example.com", "acct-uuid", "max");
    let page = send(http_client().get(authorize_url(
        &mock,
        CLAUDE_CLIENT,
        PASTE_REDIRECT,
        CLAUDE_SCOPES,
    )))
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text.matches("<code>").count(), 1);
    let pasted = page.text.split("<code>").nth(1).unwrap();
    let pasted = pasted.split("</code>").next().unwrap();
    let (code, state) = pasted.split_once('#').unwrap();
    assert_eq!(state, "the-state");

    let token_url = format!("{}/v1/oauth/token", mock.auth_url());
    let exchange = json!({"grant_type": "authorization_code", "code": code, "state": state,
        "client_id": CLAUDE_CLIENT, "redirect_uri": PASTE_REDIRECT, "code_verifier": VERIFIER});
    let form = http_client()
        .post(&token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=authorization_code&code={code}"));
    assert_eq!(send(form).await.status, StatusCode::BAD_REQUEST);
    let tokens = send(post_json(&token_url, &exchange)).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    let tokens = tokens.json();
    assert!(
        tokens["access_token"]
            .as_str()
            .unwrap()
            .starts_with("sk-ant-oat01-")
    );
    assert!(
        tokens["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("sk-ant-ort01-")
    );
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["account"]["email_address"], "ada@example.com");
    assert_eq!(tokens["account"]["uuid"], "acct-uuid");
    assert!(tokens["organization"]["uuid"].is_string());
    let reused = send(post_json(&token_url, &exchange)).await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    assert_eq!(reused.json()["error"], "invalid_grant");

    let refresh = |token: &Value| {
        post_json(
            &token_url,
            &json!({"grant_type": "refresh_token", "refresh_token": token, "client_id": CLAUDE_CLIENT}),
        )
    };
    let refreshed = send(refresh(&tokens["refresh_token"])).await;
    assert_eq!(refreshed.status, StatusCode::OK);
    assert_ne!(refreshed.json()["refresh_token"], tokens["refresh_token"]);
    assert_eq!(mock.oauth().refresh_count(), 1);
    let old = send(refresh(&tokens["refresh_token"])).await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        old.json(),
        json!({"error": "invalid_grant", "error_description": "Refresh token not found or invalid"})
    );

    mock.oauth()
        .fail_next_refresh(429, r#"{"error":"rate_limited"}"#);
    let newest = refreshed.json()["refresh_token"].clone();
    assert_eq!(
        send(refresh(&newest)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(send(refresh(&newest)).await.status, StatusCode::OK);
    assert_eq!(mock.oauth().refresh_count(), 2);
}

#[tokio::test]
async fn claude_authorize_checks_pkce_and_redirects_to_loopback() {
    let mock = MockUpstream::claude().await;
    let redirect = "http://localhost:54545/callback";
    let answer =
        send(no_redirects().get(authorize_url(&mock, CLAUDE_CLIENT, redirect, CLAUDE_SCOPES)))
            .await;
    assert_eq!(answer.status, StatusCode::FOUND);
    let location = url::Url::parse(answer.header("location")).unwrap();
    assert!(location.as_str().starts_with(redirect));
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "the-state");
    let token_url = format!("{}/v1/oauth/token", mock.auth_url());
    let exchange = |verifier: &str| {
        post_json(
            &token_url,
            &json!({"grant_type": "authorization_code", "code": pairs["code"], "state": "the-state",
                "client_id": CLAUDE_CLIENT, "redirect_uri": redirect, "code_verifier": verifier}),
        )
    };
    let wrong = send(exchange("not-the-verifier")).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.json()["error"], "invalid_grant");
    // The code was used up by the failed attempt.
    assert_eq!(
        send(exchange(VERIFIER)).await.status,
        StatusCode::BAD_REQUEST
    );

    let wrong_client = authorize_url(&mock, "someone-else", redirect, CLAUDE_SCOPES);
    assert_eq!(
        send(no_redirects().get(wrong_client)).await.status,
        StatusCode::BAD_REQUEST
    );
    mock.oauth().deny_authorize();
    let denied =
        send(no_redirects().get(authorize_url(&mock, CLAUDE_CLIENT, redirect, CLAUDE_SCOPES)))
            .await;
    assert_eq!(denied.status, StatusCode::FOUND);
    assert!(denied.header("location").contains("error=access_denied"));
    let page = send(http_client().get(authorize_url(
        &mock,
        CLAUDE_CLIENT,
        PASTE_REDIRECT,
        CLAUDE_SCOPES,
    )))
    .await;
    assert!(!page.text.contains("<code>"));
}

fn claude_request(mock: &MockUpstream, token: &str, body: &Value) -> reqwest::RequestBuilder {
    post_json(&format!("{}/v1/messages?beta=true", mock.url()), body)
        .header("authorization", format!("Bearer {token}"))
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "claude-code-20250219,oauth-2025-04-20")
        .header("user-agent", "claude-cli/2.1.87 (external, cli)")
        .header("x-app", "cli")
}

fn claude_body(tools: &[&str]) -> Value {
    let tools: Vec<Value> = tools
        .iter()
        .map(|name| json!({"name": name, "description": "d", "input_schema": {"type": "object"}}))
        .collect();
    json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": false,
        "system": [{"type": "text", "text": IDENTITY}, {"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": "hi"}], "tools": tools})
}

async fn claude_error(request: reqwest::RequestBuilder) -> (StatusCode, String, String) {
    let answer = send(request).await;
    let body = answer.json();
    assert_eq!(body["type"], "error", "{body}");
    let kind = body["error"]["type"].as_str().unwrap().to_owned();
    (
        answer.status,
        kind,
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn claude_api_admits_only_claude_code_requests() {
    let mock = MockUpstream::claude().await;
    mock.set_unified_limits(1_800_000_000, 1_800_500_000, "allowed", "allowed_warning");
    let token = mock.oauth().issue_tokens().access_token;
    let good = claude_body(&["Bash", "mcp_Weather"]);
    let ok = send(claude_request(&mock, &token, &good)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(
        ok.header("anthropic-ratelimit-unified-status"),
        "allowed_warning"
    );
    assert_eq!(
        ok.header("anthropic-ratelimit-unified-5h-status"),
        "allowed"
    );
    assert_eq!(
        ok.header("anthropic-ratelimit-unified-5h-reset"),
        "1800000000"
    );
    assert_eq!(
        ok.header("anthropic-ratelimit-unified-7d-reset"),
        "1800500000"
    );
    assert_eq!(ok.header("anthropic-ratelimit-unified-reset"), "1800500000");

    let unauthorized = (StatusCode::UNAUTHORIZED, "authentication_error".to_owned());
    let invalid = (StatusCode::BAD_REQUEST, "invalid_request_error".to_owned());
    let (status, kind, _) =
        claude_error(claude_request(&mock, &token, &good).header("x-api-key", "sk-ant-api03-x"))
            .await;
    assert_eq!((status, kind), unauthorized);
    let (status, kind, message) =
        claude_error(claude_request(&mock, "sk-ant-oat01-unknown", &good)).await;
    assert_eq!(
        (status, kind, message.as_str()),
        (
            unauthorized.0,
            unauthorized.1.clone(),
            "Invalid bearer token"
        )
    );
    let (status, kind, message) = claude_error(set(
        claude_request(&mock, &token, &good),
        "anthropic-beta",
        "claude-code-20250219",
    ))
    .await;
    assert_eq!((status, kind), unauthorized.clone());
    assert_eq!(message, "OAuth authentication is currently not supported.");
    let no_beta_query = post_json(&format!("{}/v1/messages", mock.url()), &good);
    let (status, ..) = claude_error(
        no_beta_query
            .header("authorization", format!("Bearer {token}"))
            .header("anthropic-beta", "oauth-2025-04-20"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, kind, _) = claude_error(set(
        claude_request(&mock, &token, &good),
        "user-agent",
        "my-agent/1.0",
    ))
    .await;
    assert_eq!((status, kind), invalid.clone());
    let (status, kind, _) =
        claude_error(set(claude_request(&mock, &token, &good), "x-app", "web")).await;
    assert_eq!((status, kind), invalid.clone());

    let mut foreign_system = good.clone();
    foreign_system["system"] = json!("You are a helpful assistant.");
    let (status, kind, message) =
        claude_error(claude_request(&mock, &token, &foreign_system)).await;
    assert_eq!((status, kind), invalid.clone());
    assert_eq!(
        message,
        "This credential is only authorized for use with Claude Code and cannot be used for other API requests."
    );
    let mut billed = good.clone();
    billed["system"] = json!([{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.87.abc; cc_entrypoint=cli; cch=00000;"},
        {"type": "text", "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK."}]);
    assert_eq!(
        send(claude_request(&mock, &token, &billed)).await.status,
        StatusCode::OK
    );
    let (status, kind, _) =
        claude_error(claude_request(&mock, &token, &claude_body(&["read_file"]))).await;
    assert_eq!((status, kind), invalid);

    mock.oauth().expire_access_tokens();
    let (status, kind, message) = claude_error(claude_request(&mock, &token, &good)).await;
    assert_eq!((status, kind), unauthorized);
    assert_eq!(
        message,
        "OAuth token has expired. Please obtain a new token or refresh your existing token."
    );
}

#[tokio::test]
async fn claude_refusals_leave_queued_scenarios_for_the_retry() {
    let mock = MockUpstream::claude().await;
    let stale = mock.oauth().issue_tokens().access_token;
    mock.oauth().expire_access_tokens();
    mock.enqueue(Scenario::outputs(vec![Output::ToolCall {
        id: "toolu_1".into(),
        name: "mcp_Weather".into(),
        arguments: r#"{"city":"Paris"}"#.into(),
    }]));
    mock.enqueue(claude_window_exhausted(1_900_000_000));
    let body = claude_body(&["mcp_Weather"]);
    assert_eq!(
        send(claude_request(&mock, &stale, &body)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let fresh = mock.oauth().issue_tokens().access_token;
    let answer = send(claude_request(&mock, &fresh, &body)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["content"][0]["name"], "mcp_Weather");
    let limited = send(claude_request(&mock, &fresh, &body)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json()["error"]["type"], "rate_limit_error");
    assert_eq!(
        limited.header("anthropic-ratelimit-unified-5h-status"),
        "rejected"
    );
    assert_eq!(
        limited.header("anthropic-ratelimit-unified-5h-reset"),
        "1900000000"
    );
    assert_eq!(mock.requests_to("/v1/messages").len(), 3);
}

#[tokio::test]
async fn claude_usage_models_and_count_tokens_need_the_oauth_bearer() {
    let mock = MockUpstream::claude().await;
    let token = mock.oauth().issue_tokens().access_token;
    mock.set_claude_usage(42.0, "2026-01-01T05:00:00Z", 7.5, "2026-01-07T00:00:00Z");
    let get = |path: &str, beta: &str| {
        http_client()
            .get(format!("{}{path}", mock.url()))
            .header("authorization", format!("Bearer {token}"))
            .header("anthropic-beta", beta)
    };
    let usage = send(get("/api/oauth/usage", "oauth-2025-04-20"))
        .await
        .json();
    assert_eq!(
        usage["five_hour"],
        json!({"utilization": 42.0, "resets_at": "2026-01-01T05:00:00Z"})
    );
    assert_eq!(usage["seven_day"]["utilization"], 7.5);
    assert!(usage["seven_day_opus"].is_null());
    assert_eq!(
        send(get("/api/oauth/usage", "other")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let models = send(get("/v1/models", "oauth-2025-04-20")).await.json();
    assert_eq!(models["data"][0]["type"], "model");
    let mut count = claude_body(&[]);
    count.as_object_mut().unwrap().remove("max_tokens");
    let counted = send(
        post_json(
            &format!("{}/v1/messages/count_tokens?beta=true", mock.url()),
            &count,
        )
        .header("authorization", format!("Bearer {token}"))
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "oauth-2025-04-20")
        .header("user-agent", "claude-cli/2.1.87 (external, cli)")
        .header("x-app", "cli"),
    )
    .await;
    assert!(counted.json()["input_tokens"].is_u64(), "{}", counted.text);
}

// ---------------------------------------------------------------- Codex

const CODEX_CLIENT: &str = "app_EMoamEEZ73f0CkXaXp7hrann";

fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn codex_browser_login_with_form_exchange_and_json_refresh() {
    let mock = MockUpstream::codex().await;
    mock.oauth()
        .set_identity("bob@example.com", "acct-42", "pro");
    let redirect = "http://localhost:1455/auth/callback";
    let url = authorize_url(
        &mock,
        CODEX_CLIENT,
        redirect,
        "openid profile email offline_access",
    );
    let answer = send(no_redirects().get(url)).await;
    assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.text);
    let location = url::Url::parse(answer.header("location")).unwrap();
    let code = location
        .query_pairs()
        .find(|(key, _)| key == "code")
        .unwrap()
        .1
        .into_owned();
    let token_url = format!("{}/oauth/token", mock.auth_url());
    let form = format!(
        "grant_type=authorization_code&client_id={CODEX_CLIENT}&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let tokens = send(
        http_client()
            .post(&token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form),
    )
    .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    let tokens = tokens.json();
    let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["email"], "bob@example.com");
    assert_eq!(
        claims["https://api.openai.com/auth"]["chatgpt_account_id"],
        "acct-42"
    );
    assert_eq!(
        claims["https://api.openai.com/auth"]["chatgpt_plan_type"],
        "pro"
    );
    assert!(claims["exp"].is_u64());
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["email"],
        "bob@example.com"
    );
    assert!(tokens["refresh_token"].as_str().unwrap().starts_with("rt_"));

    let refresh = json!({"client_id": CODEX_CLIENT, "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]});
    let refreshed = send(post_json(&token_url, &refresh)).await;
    assert_eq!(refreshed.status, StatusCode::OK);
    assert!(refreshed.json()["id_token"].is_string());
    let reused = send(post_json(&token_url, &refresh)).await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reused.json()["error"]["code"], "refresh_token_reused");

    mock.oauth().set_rotate_refresh(false);
    let kept = json!({"client_id": CODEX_CLIENT, "grant_type": "refresh_token", "refresh_token": refreshed.json()["refresh_token"]});
    let again = send(post_json(&token_url, &kept)).await.json();
    assert_eq!(again["refresh_token"], kept["refresh_token"]);
    assert_eq!(
        send(post_json(&token_url, &kept)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn codex_device_login_is_pending_then_exchanges_the_served_verifier() {
    let mock = MockUpstream::codex().await;
    mock.oauth()
        .script_device(vec![DeviceStep::Pending, DeviceStep::SlowDown]);
    let base = mock.auth_url();
    let start = send(post_json(
        &format!("{base}/api/accounts/deviceauth/usercode"),
        &json!({"client_id": CODEX_CLIENT}),
    ))
    .await
    .json();
    assert_eq!(start["interval"], "1");
    let user_code = start["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    let poll = json!({"device_auth_id": start["device_auth_id"], "user_code": user_code});
    let poll_url = format!("{base}/api/accounts/deviceauth/token");
    assert_eq!(
        send(post_json(&poll_url, &poll)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(post_json(&poll_url, &poll)).await.status,
        StatusCode::FORBIDDEN
    );
    let approved = send(post_json(&poll_url, &poll)).await;
    assert_eq!(approved.status, StatusCode::OK);
    let approved = approved.json();
    let verifier = approved["code_verifier"].as_str().unwrap();
    assert_eq!(approved["code_challenge"], challenge(verifier));
    let exchange = json!({"grant_type": "authorization_code", "client_id": CODEX_CLIENT,
        "code": approved["authorization_code"], "code_verifier": verifier,
        "redirect_uri": format!("{base}/deviceauth/callback")});
    let tokens = send(post_json(&format!("{base}/oauth/token"), &exchange)).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);

    mock.oauth().script_device(vec![DeviceStep::Deny]);
    let start = send(post_json(
        &format!("{base}/api/accounts/deviceauth/usercode"),
        &json!({"client_id": CODEX_CLIENT}),
    ))
    .await
    .json();
    let poll = json!({"device_auth_id": start["device_auth_id"], "user_code": start["user_code"]});
    let denied = send(post_json(&poll_url, &poll)).await;
    assert_eq!(denied.status, StatusCode::BAD_REQUEST);
    assert_eq!(denied.json()["error"]["code"], "access_denied");
}

fn codex_request(
    mock: &MockUpstream,
    token: &str,
    account: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    post_json(&format!("{}/responses", mock.url()), body)
        .header("authorization", format!("Bearer {token}"))
        .header("chatgpt-account-id", account)
        .header("originator", "codex_cli_rs")
}

fn codex_body() -> Value {
    json!({"model": "gpt-5.2-codex", "instructions": "", "stream": true, "store": false,
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "reasoning": {"effort": "medium", "summary": "auto"}, "include": ["reasoning.encrypted_content"]})
}

async fn detail(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let answer = send(request).await;
    (answer.status, answer.json())
}

#[tokio::test]
async fn codex_backend_admits_only_codex_shaped_requests() {
    let mock = MockUpstream::codex().await;
    mock.oauth().set_identity("c@example.com", "acct-7", "plus");
    mock.set_codex_limits(12.5, 1_800_000_000, 40.0, 1_800_600_000);
    let token = mock.oauth().issue_tokens().access_token;
    let ok = send(codex_request(&mock, &token, "acct-7", &codex_body())).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert!(ok.text.contains("event: response.completed"));
    assert_eq!(ok.header("x-codex-primary-used-percent"), "12.5");
    assert_eq!(ok.header("x-codex-primary-window-minutes"), "300");
    assert_eq!(ok.header("x-codex-primary-reset-at"), "1800000000");
    assert_eq!(ok.header("x-codex-secondary-used-percent"), "40");
    assert_eq!(ok.header("x-codex-secondary-window-minutes"), "10080");

    let (status, body) = detail(codex_request(&mock, "nope", "acct-7", &codex_body())).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_invalidated"))
    );
    let (status, _) = detail(codex_request(&mock, &token, "acct-other", &codex_body())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let cases = [
        ("stream", json!(false), "Stream must be set to true"),
        ("store", json!(true), "Store must be set to false"),
        (
            "max_output_tokens",
            json!(100),
            "Unsupported parameter: max_output_tokens",
        ),
        (
            "temperature",
            json!(0.2),
            "Unsupported parameter: temperature",
        ),
        (
            "include",
            json!([]),
            "include must contain reasoning.encrypted_content when store is false",
        ),
    ];
    for (field, value, message) in cases {
        let mut body = codex_body();
        body[field] = value;
        let (status, answer) = detail(codex_request(&mock, &token, "acct-7", &body)).await;
        assert_eq!(
            (status, answer),
            (StatusCode::BAD_REQUEST, json!({"detail": message}))
        );
    }
    let mut body = codex_body();
    body.as_object_mut().unwrap().remove("instructions");
    let (_, answer) = detail(codex_request(&mock, &token, "acct-7", &body)).await;
    assert_eq!(answer, json!({"detail": "Instructions are required"}));

    mock.enqueue(Scenario::reply("cut short").end(StreamEnd::Cut { after: 1 }));
    mock.enqueue(codex_usage_limit(3600));
    mock.oauth().expire_access_tokens();
    let (status, body) = detail(codex_request(&mock, &token, "acct-7", &codex_body())).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_expired"))
    );
    let token = mock.oauth().issue_tokens().access_token;
    let cut = send(codex_request(&mock, &token, "acct-7", &codex_body())).await;
    assert!(cut.text.contains("response.output_text.delta"));
    assert!(!cut.text.contains("response.completed"));
    let limited = send(codex_request(&mock, &token, "acct-7", &codex_body())).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let error = &limited.json()["error"];
    assert_eq!(
        (error["type"].as_str(), error["resets_in_seconds"].as_u64()),
        (Some("usage_limit_reached"), Some(3600))
    );
}

#[tokio::test]
async fn codex_models_and_usage() {
    let mock = MockUpstream::codex().await;
    mock.oauth().set_identity("d@example.com", "acct-9", "plus");
    mock.set_codex_limits(5.0, 1_800_000_000, 60.0, 1_800_600_000);
    let token = mock.oauth().issue_tokens().access_token;
    let get = |url: String| {
        http_client()
            .get(url)
            .header("authorization", format!("Bearer {token}"))
            .header("chatgpt-account-id", "acct-9")
    };
    let models = send(get(format!("{}/models?client_version=0.99.0", mock.url())))
        .await
        .json();
    let first = &models["models"][0];
    assert_eq!(
        (first["slug"].as_str(), first["supported_in_api"].as_bool()),
        (Some("gpt-5.2-codex"), Some(true))
    );
    assert_eq!(first["visibility"], "list");
    assert_eq!(
        send(get(format!("{}/models", mock.url()))).await.status,
        StatusCode::BAD_REQUEST
    );
    let usage = send(get(format!("{}/backend-api/wham/usage", mock.auth_url())))
        .await
        .json();
    assert_eq!(usage["plan_type"], "plus");
    assert_eq!(
        usage["rate_limit"]["primary_window"],
        json!({"used_percent": 5.0, "limit_window_seconds": 18000, "reset_at": 1_800_000_000})
    );
    assert_eq!(
        usage["rate_limit"]["secondary_window"]["used_percent"],
        60.0
    );
}

// ---------------------------------------------------------------- Copilot

const COPILOT_CLIENT: &str = "Iv1.b507a08c87ecfe98";

#[tokio::test]
async fn copilot_device_flow_answers_as_github_does() {
    let mock = MockUpstream::copilot().await;
    mock.oauth()
        .script_device(vec![DeviceStep::Pending, DeviceStep::SlowDown]);
    let base = mock.auth_url();
    let start = send(
        post_json(
            &format!("{base}/login/device/code"),
            &json!({"client_id": COPILOT_CLIENT, "scope": "read:user"}),
        )
        .header("accept", "application/json"),
    )
    .await
    .json();
    assert_eq!(start["verification_uri"], format!("{base}/login/device"));
    assert_eq!(
        (start["expires_in"].as_u64(), start["interval"].as_u64()),
        (Some(900), Some(1))
    );
    let poll = || {
        http_client()
            .post(format!("{base}/login/oauth/access_token"))
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "client_id={COPILOT_CLIENT}&device_code={}&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code",
                start["device_code"].as_str().unwrap()
            ))
    };
    let pending = send(poll()).await;
    assert_eq!(
        (pending.status, pending.json()),
        (StatusCode::OK, json!({"error": "authorization_pending"}))
    );
    assert_eq!(
        send(poll()).await.json(),
        json!({"error": "slow_down", "interval": 6})
    );
    let granted = send(poll()).await.json();
    assert!(
        granted["access_token"]
            .as_str()
            .unwrap()
            .starts_with("ghu_")
    );
    assert_eq!(
        (granted["token_type"].as_str(), granted["scope"].as_str()),
        (Some("bearer"), Some("read:user"))
    );
    // Without `Accept: application/json` GitHub answers form-encoded.
    let form = send(set(poll(), "accept", "*/*")).await;
    assert_eq!(form.text, "error=incorrect_device_code");
}

#[tokio::test]
async fn copilot_token_exchange_and_quota() {
    let mock = MockUpstream::copilot().await;
    let github = mock.oauth().issue_tokens().access_token;
    let exchange = |scheme: &str| {
        http_client()
            .get(format!("{}/copilot_internal/v2/token", mock.auth_url()))
            .header("authorization", format!("{scheme} {github}"))
    };
    let answer = send(exchange("token")).await.json();
    let token = answer["token"].as_str().unwrap();
    assert!(token.starts_with("tid="));
    assert!(token.contains(";sku=monthly_subscriber;proxy-ep="));
    let expires_at = answer["expires_at"].as_u64().unwrap();
    assert!(token.contains(&format!(";exp={expires_at};")));
    assert_eq!(answer["refresh_in"], 1500);
    assert_eq!(answer["endpoints"]["api"], mock.url());
    assert_eq!(send(exchange("Bearer")).await.status, StatusCode::OK);
    assert_eq!(mock.token_exchange_count(), 2);
    let bad = send(
        http_client()
            .get(format!("{}/copilot_internal/v2/token", mock.auth_url()))
            .header("authorization", "token ghu_nope"),
    )
    .await;
    assert_eq!(
        (bad.status, bad.json()["message"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Bad credentials"))
    );

    mock.set_copilot_premium(300, 75.5, "2026-02-01");
    let user = send(
        http_client()
            .get(format!("{}/copilot_internal/user", mock.auth_url()))
            .header("authorization", format!("token {github}")),
    )
    .await
    .json();
    let premium = &user["quota_snapshots"]["premium_interactions"];
    assert_eq!(
        (
            premium["entitlement"].as_u64(),
            premium["remaining"].as_f64()
        ),
        (Some(300), Some(75.0))
    );
    assert_eq!(premium["unlimited"], false);
    assert!((premium["percent_remaining"].as_f64().unwrap() - 25.166_666).abs() < 0.01);
    assert_eq!(user["quota_reset_date"], "2026-02-01");

    mock.set_no_seat();
    assert_eq!(send(exchange("token")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(mock.token_exchange_count(), 2);
}

fn copilot_request(
    mock: &MockUpstream,
    path: &str,
    token: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    post_json(&format!("{}{path}", mock.url()), body)
        .header("authorization", format!("Bearer {token}"))
        .header("copilot-integration-id", "vscode-chat")
        .header("editor-version", "vscode/1.107.0")
        .header("x-initiator", "agent")
}

async fn copilot_token(mock: &MockUpstream) -> String {
    let github = mock.oauth().issue_tokens().access_token;
    let answer = send(
        http_client()
            .get(format!("{}/copilot_internal/v2/token", mock.auth_url()))
            .header("authorization", format!("token {github}")),
    )
    .await;
    answer.json()["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn copilot_api_routes_models_to_their_endpoints() {
    let mock = MockUpstream::copilot().await;
    let token = copilot_token(&mock).await;
    let chat = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]});
    let ok = send(copilot_request(&mock, "/chat/completions", &token, &chat)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(
        mock.requests_to("/chat/completions")[0].header("x-initiator"),
        Some("agent")
    );
    let responses = json!({"model": "gpt-5.2-codex", "input": "hi"});
    assert_eq!(
        send(copilot_request(&mock, "/responses", &token, &responses))
            .await
            .status,
        StatusCode::OK
    );
    let messages = json!({"model": "claude-sonnet-4.5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        send(copilot_request(&mock, "/v1/messages", &token, &messages))
            .await
            .status,
        StatusCode::OK
    );

    let wrong = send(copilot_request(
        &mock,
        "/chat/completions",
        &token,
        &responses,
    ))
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        wrong.json()["error"],
        json!({"message": "model gpt-5.2-codex is not supported via /chat/completions", "code": "unsupported_api_for_model"})
    );
    let bare = post_json(&format!("{}/chat/completions", mock.url()), &chat)
        .header("authorization", format!("Bearer {token}"));
    assert_eq!(send(bare).await.status, StatusCode::BAD_REQUEST);

    let models = send(
        http_client()
            .get(format!("{}/models", mock.url()))
            .header("authorization", format!("Bearer {token}"))
            .header("copilot-integration-id", "vscode-chat")
            .header("editor-version", "vscode/1.107.0"),
    )
    .await
    .json();
    let endpoints: Vec<(String, Value)> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| {
            (
                model["id"].as_str().unwrap().to_owned(),
                model["supported_endpoints"].clone(),
            )
        })
        .collect();
    assert_eq!(
        endpoints,
        vec![
            ("gpt-4.1".to_owned(), json!(["/chat/completions"])),
            ("gpt-5.2-codex".to_owned(), json!(["/responses"])),
            (
                "claude-sonnet-4.5".to_owned(),
                json!(["/v1/messages", "/chat/completions"])
            ),
        ]
    );

    mock.enqueue(Scenario::reply("after the re-exchange"));
    mock.oauth().expire_access_tokens();
    let expired = send(copilot_request(&mock, "/chat/completions", &token, &chat)).await;
    assert_eq!(
        (expired.status, expired.json()["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_expired"))
    );
    let token = copilot_token(&mock).await;
    let answer = send(copilot_request(&mock, "/chat/completions", &token, &chat))
        .await
        .json();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "after the re-exchange"
    );
}

#[tokio::test]
async fn copilot_token_ttl_is_settable() {
    let mock = MockUpstream::copilot().await;
    mock.oauth()
        .set_access_ttl(std::time::Duration::from_mins(1));
    let token = copilot_token(&mock).await;
    assert_eq!(mock.oauth().valid_access_tokens(), 1);
    let exp: u64 = token
        .split(";exp=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 58..=now + 61).contains(&exp), "{exp} vs {now}");
}
