//! The Gemini CLI mock behaves as documented: Google's installed-app sign-in
//! issues, refreshes (without rotation) and refuses credentials, and the
//! Code Assist API onboards, generates inside its wrapper, counts, reports
//! quota and fails the way the real one does.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure should fail loudly"
)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Value, json};
use subgate_testkit::http_client;
use subgate_testkit::mock::{
    MockUpstream, Scenario, gemini_daily_quota_exhausted, gemini_rate_limited,
    gemini_validation_required,
};
use support::{Answer, VERIFIER, challenge, no_redirects, send};

const CLIENT_ID: &str = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "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";
const SCOPES: &str = "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile";
const REDIRECT: &str = "http://127.0.0.1:45123/oauth2callback";
const PROJECT: &str = "mock-project-p41fc";

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn post_form(mock: &MockUpstream, pairs: &[(&str, &str)]) -> Answer {
    send(
        http_client()
            .post(format!("{}/token", mock.auth_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs)),
    )
    .await
}

/// The authorize URL as Gemini CLI builds it; `extra` adds or overrides.
fn authorize_url(mock: &MockUpstream, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("access_type", "offline"),
        ("scope", SCOPES),
        ("state", "the-state"),
        ("response_type", "code"),
    ];
    for (name, value) in extra {
        params.retain(|(key, _)| key != name);
        params.push((name, value));
    }
    let mut url = url::Url::parse(&format!("{}/o/oauth2/v2/auth", mock.auth_url())).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

/// Follows the authorize page to its redirect; returns the code.
async fn authorize(mock: &MockUpstream, extra: &[(&str, &str)]) -> String {
    let answer = send(no_redirects().get(authorize_url(mock, extra))).await;
    assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.text);
    let location = url::Url::parse(answer.header("location")).unwrap();
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("the-state"));
    param("code").unwrap_or_else(|| panic!("no code in {location}"))
}

fn exchange<'a>(code: &'a str, verifier: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(verifier) = verifier {
        pairs.push(("code_verifier", verifier));
    }
    pairs
}

fn refresh(token: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("refresh_token", token),
    ]
}

fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn error_status(answer: &Answer) -> (u64, String) {
    let body = answer.json();
    (
        body["error"]["code"].as_u64().unwrap_or_default(),
        body["error"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

// ------------------------------------------------------------- sign-in

#[tokio::test]
async fn code_flow_then_refresh_without_rotation() {
    let mock = MockUpstream::gemini_cli().await;
    mock.oauth()
        .set_identity("gina@example.com", "112233445566778899001", "");
    let code = authorize(&mock, &[]).await;

    let bad_secret = exchange(&code, None)
        .into_iter()
        .map(|(name, value)| {
            (
                name,
                if name == "client_secret" {
                    "GOCSPX-wrong"
                } else {
                    value
                },
            )
        })
        .collect::<Vec<_>>();
    let wrong_secret = post_form(&mock, &bad_secret).await;
    assert_eq!(wrong_secret.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_secret.json()["error"], "invalid_client");

    let tokens = post_form(&mock, &exchange(&code, None)).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    let tokens = tokens.json();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    assert!(access.starts_with("ya29."), "{access}");
    assert!(refresh_token.starts_with("1//0"), "{refresh_token}");
    assert_eq!(tokens["expires_in"], 3599);
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(
        tokens["scope"]
            .as_str()
            .unwrap()
            .contains("https://www.googleapis.com/auth/cloud-platform")
    );
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["email"], "gina@example.com");
    assert_eq!(claims["sub"], "112233445566778899001");
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["iss"], "https://accounts.google.com");

    let reused = post_form(&mock, &exchange(&code, None)).await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    assert_eq!(reused.json()["error"], "invalid_grant");

    for _ in 0..2 {
        let refreshed = post_form(&mock, &refresh(refresh_token)).await;
        assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
        let refreshed = refreshed.json();
        assert!(refreshed.get("refresh_token").is_none(), "{refreshed}");
        let fresh = refreshed["access_token"].as_str().unwrap();
        assert!(fresh.starts_with("ya29.") && fresh != access);
        assert_eq!(refreshed["expires_in"], 3599);
        assert!(refreshed["id_token"].is_string());
    }
    assert_eq!(mock.oauth().refresh_count(), 2);

    let unknown = post_form(&mock, &refresh("1//0-never-issued")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unknown.json(),
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    );
    let mut wrong_client = refresh(refresh_token);
    wrong_client[1].1 = "someone-else.apps.googleusercontent.com";
    let wrong_client = post_form(&mock, &wrong_client).await;
    assert_eq!(wrong_client.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_client.json()["error"], "invalid_client");

    mock.oauth()
        .fail_next_refresh(400, r#"{"error":"invalid_grant"}"#);
    let injected = post_form(&mock, &refresh(refresh_token)).await;
    assert_eq!(injected.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        post_form(&mock, &refresh(refresh_token)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn authorize_checks_the_request_and_pkce_is_optional_but_binding() {
    let mock = MockUpstream::gemini_cli().await;
    for extra in [
        vec![("client_id", "other.apps.googleusercontent.com")],
        vec![("access_type", "online")],
        vec![(
            "scope",
            "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email",
        )],
        vec![("response_type", "token")],
        vec![("redirect_uri", "https://evil.example.com/callback")],
        vec![
            ("code_challenge", "abc"),
            ("code_challenge_method", "plain"),
        ],
    ] {
        let answer = send(no_redirects().get(authorize_url(&mock, &extra))).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{extra:?}");
    }

    // A code asked for without PKCE takes no verifier.
    let code = authorize(&mock, &[]).await;
    let answer = post_form(&mock, &exchange(&code, Some(VERIFIER))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);

    // With PKCE (the manual flow), the verifier must match.
    let challenge = challenge(VERIFIER);
    let pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let code = authorize(&mock, &pkce).await;
    let answer = post_form(&mock, &exchange(&code, Some("not-the-verifier"))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"], "invalid_grant");
    let code = authorize(&mock, &pkce).await;
    let answer = post_form(&mock, &exchange(&code, None)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let code = authorize(&mock, &pkce).await;
    let answer = post_form(&mock, &exchange(&code, Some(VERIFIER))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);

    // The manual redirect is Google's code page.
    let manual = [
        ("redirect_uri", "https://codeassist.google.com/authcode"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let answer = send(no_redirects().get(authorize_url(&mock, &manual))).await;
    assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.text);
    assert!(
        answer
            .header("location")
            .starts_with("https://codeassist.google.com/authcode?code=")
    );

    mock.oauth().deny_authorize();
    let answer = send(no_redirects().get(authorize_url(&mock, &[]))).await;
    assert_eq!(answer.status, StatusCode::FOUND);
    assert!(
        answer.header("location").contains("error=access_denied"),
        "{}",
        answer.header("location")
    );
}

#[tokio::test]
async fn userinfo_needs_a_valid_bearer() {
    let mock = MockUpstream::gemini_cli().await;
    mock.oauth()
        .set_identity("gina@example.com", "112233445566778899001", "");
    let tokens = mock.oauth().issue_tokens();
    for version in ["v2", "v1"] {
        let url = format!("{}/oauth2/{version}/userinfo", mock.auth_url());
        let info = send(
            http_client()
                .get(format!("{url}?alt=json"))
                .bearer_auth(&tokens.access_token),
        )
        .await;
        assert_eq!(info.status, StatusCode::OK, "{}", info.text);
        let info = info.json();
        assert_eq!(info["email"], "gina@example.com");
        assert_eq!(info["id"], "112233445566778899001");
        assert_eq!(info["verified_email"], true);
        let missing = send(http_client().get(&url)).await;
        assert_eq!(error_status(&missing), (401, "UNAUTHENTICATED".to_owned()));
    }
    mock.oauth().expire_access_tokens();
    let expired = send(
        http_client()
            .get(format!("{}/oauth2/v2/userinfo", mock.auth_url()))
            .bearer_auth(&tokens.access_token),
    )
    .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_status(&expired), (401, "UNAUTHENTICATED".to_owned()));
}

// ---------------------------------------------------------- Code Assist

async fn call(mock: &MockUpstream, token: &str, method: &str, body: &Value) -> Answer {
    send(
        http_client()
            .post(format!("{}/v1internal:{method}", mock.url()))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

fn generate_body(project: &str, model: &str) -> Value {
    json!({
        "model": model,
        "project": project,
        "user_prompt_id": "prompt-1",
        "request": {
            "contents": [{"role": "user", "parts": [{"text": "say hello to me"}]}],
            "generationConfig": {"temperature": 1},
            "session_id": "session-1",
        },
    })
}

const LOAD: &str = r#"{"metadata":{"ideType":"IDE_UNSPECIFIED","platform":"PLATFORM_UNSPECIFIED","pluginType":"GEMINI"}}"#;

#[tokio::test]
async fn load_onboard_poll_then_load_reports_the_project() {
    let mock = MockUpstream::gemini_cli().await;
    mock.set_gemini_not_onboarded("managed-42");
    let token = mock.oauth().issue_tokens().access_token;
    let load: Value = serde_json::from_str(LOAD).unwrap();

    let before = call(&mock, &token, "loadCodeAssist", &load).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    let before = before.json();
    assert!(before.get("currentTier").is_none(), "{before}");
    assert!(before.get("cloudaicompanionProject").is_none());
    let default_tier = before["allowedTiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tier| tier["isDefault"] == true)
        .unwrap();
    assert_eq!(default_tier["id"], "free-tier");
    let denied = call(
        &mock,
        &token,
        "generateContent",
        &generate_body("managed-42", "gemini-2.5-pro"),
    )
    .await;
    assert_eq!(error_status(&denied), (403, "PERMISSION_DENIED".to_owned()));

    let bad_tier = call(
        &mock,
        &token,
        "onboardUser",
        &json!({"tierId": "gold-tier"}),
    )
    .await;
    assert_eq!(
        error_status(&bad_tier),
        (400, "INVALID_ARGUMENT".to_owned())
    );
    let no_project = call(
        &mock,
        &token,
        "onboardUser",
        &json!({"tierId": "standard-tier"}),
    )
    .await;
    assert_eq!(
        error_status(&no_project),
        (400, "INVALID_ARGUMENT".to_owned())
    );

    let started = call(
        &mock,
        &token,
        "onboardUser",
        &json!({"tierId": "free-tier", "metadata": load["metadata"]}),
    )
    .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text);
    let started = started.json();
    assert_eq!(started["done"], false);
    let name = started["name"].as_str().unwrap();
    assert!(name.starts_with("operations/"), "{name}");

    let poll_url = format!("{}/v1internal/{name}", mock.url());
    let first = send(http_client().get(&poll_url).bearer_auth(&token))
        .await
        .json();
    assert_eq!(first["done"], false, "{first}");
    let still = call(&mock, &token, "loadCodeAssist", &load).await.json();
    assert!(still.get("currentTier").is_none());
    let done = send(http_client().get(&poll_url).bearer_auth(&token))
        .await
        .json();
    assert_eq!(done["done"], true, "{done}");
    assert_eq!(
        done["response"]["cloudaicompanionProject"]["id"],
        "managed-42"
    );
    assert!(done["response"]["cloudaicompanionProject"]["name"].is_string());

    let after = call(&mock, &token, "loadCodeAssist", &load).await.json();
    assert_eq!(after["currentTier"]["id"], "free-tier");
    assert_eq!(after["cloudaicompanionProject"], "managed-42");
    assert_eq!(mock.gemini_project().as_deref(), Some("managed-42"));
    let allowed = call(
        &mock,
        &token,
        "generateContent",
        &generate_body("managed-42", "gemini-2.5-pro"),
    )
    .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text);

    let unknown = send(
        http_client()
            .get(format!("{}/v1internal/operations/nope", mock.url()))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(error_status(&unknown), (404, "NOT_FOUND".to_owned()));
}

#[tokio::test]
async fn standard_tier_onboards_to_the_users_project_at_once_without_polls() {
    let mock = MockUpstream::gemini_cli().await;
    mock.set_gemini_not_onboarded("managed-42");
    mock.set_gemini_onboard_polls(0);
    let token = mock.oauth().issue_tokens().access_token;
    let done = call(
        &mock,
        &token,
        "onboardUser",
        &json!({"tierId": "standard-tier", "cloudaicompanionProject": "my-gcp-project"}),
    )
    .await
    .json();
    assert_eq!(done["done"], true, "{done}");
    assert_eq!(
        done["response"]["cloudaicompanionProject"]["id"],
        "my-gcp-project"
    );
    let load: Value = serde_json::from_str(LOAD).unwrap();
    let after = call(&mock, &token, "loadCodeAssist", &load).await.json();
    assert_eq!(after["currentTier"]["id"], "standard-tier");
    assert_eq!(after["cloudaicompanionProject"], "my-gcp-project");
}

#[tokio::test]
async fn generate_whole_is_wrapped() {
    let mock = MockUpstream::gemini_cli().await;
    mock.enqueue(Scenario::reply("Hello from Code Assist."));
    let token = mock.oauth().issue_tokens().access_token;
    let answer = call(
        &mock,
        &token,
        "generateContent",
        &generate_body(PROJECT, "gemini-2.5-flash"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let body = answer.json();
    assert!(
        body["traceId"]
            .as_str()
            .is_some_and(|trace| !trace.is_empty()),
        "{body}"
    );
    let response = &body["response"];
    assert!(response.get("responseId").is_none());
    assert_eq!(
        response["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from Code Assist."
    );
    assert_eq!(response["candidates"][0]["finishReason"], "STOP");
    assert_eq!(response["modelVersion"], "gemini-2.5-flash");
    assert_eq!(response["usageMetadata"]["promptTokenCount"], 4);
    let recorded = mock.requests_to("/v1internal:generateContent");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].json()["user_prompt_id"], "prompt-1");
}

#[tokio::test]
async fn generate_stream_is_sse_of_wrapped_chunks() {
    let mock = MockUpstream::gemini_cli().await;
    mock.enqueue(Scenario::reply("Streaming from Code Assist.").pieces(3));
    let token = mock.oauth().issue_tokens().access_token;
    let answer = send(
        http_client()
            .post(format!(
                "{}/v1internal:streamGenerateContent?alt=sse",
                mock.url()
            ))
            .bearer_auth(&token)
            .header("accept", "text/event-stream")
            .header("content-type", "application/json")
            .body(generate_body(PROJECT, "gemini-3-pro-preview").to_string()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(
        answer
            .header("content-type")
            .starts_with("text/event-stream")
    );
    let events: Vec<Value> = answer
        .text
        .lines()
        .filter_map(|line| line.trim_end().strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert!(events.len() >= 4, "{}", answer.text);
    let mut text = String::new();
    for event in &events {
        assert!(event["traceId"].is_string(), "{event}");
        let candidate = &event["response"]["candidates"][0];
        if let Some(piece) = candidate["content"]["parts"][0]["text"].as_str() {
            text.push_str(piece);
        }
    }
    assert_eq!(text, "Streaming from Code Assist.");
    let last = &events.last().unwrap()["response"];
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(last["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 0);
    let recorded = mock.requests_to("/v1internal:streamGenerateContent");
    assert_eq!(recorded[0].query.as_deref(), Some("alt=sse"));
    assert_eq!(
        mock.outcome(0, Duration::from_secs(5)).await,
        subgate_testkit::mock::Outcome::Completed
    );
}

#[tokio::test]
async fn generate_checks_bearer_project_model_and_keeps_the_queue() {
    let mock = MockUpstream::gemini_cli().await;
    mock.enqueue(Scenario::reply("the queued answer"));
    let tokens = mock.oauth().issue_tokens();
    let body = generate_body(PROJECT, "gemini-2.5-pro");

    let missing = send(
        http_client()
            .post(format!("{}/v1internal:generateContent", mock.url()))
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await;
    assert_eq!(error_status(&missing), (401, "UNAUTHENTICATED".to_owned()));
    let unknown = call(&mock, "ya29.not-issued", "generateContent", &body).await;
    assert_eq!(error_status(&unknown), (401, "UNAUTHENTICATED".to_owned()));
    let project = call(
        &mock,
        &tokens.access_token,
        "generateContent",
        &generate_body("someone-elses", "gemini-2.5-pro"),
    )
    .await;
    assert_eq!(
        error_status(&project),
        (403, "PERMISSION_DENIED".to_owned())
    );
    assert!(project.text.contains("someone-elses"));
    let model = call(
        &mock,
        &tokens.access_token,
        "generateContent",
        &generate_body(PROJECT, "gemini-1.0-ultra"),
    )
    .await;
    assert_eq!(error_status(&model), (404, "NOT_FOUND".to_owned()));
    let mut no_contents = body.clone();
    no_contents["request"] = json!({"contents": "hi"});
    let shape = call(&mock, &tokens.access_token, "generateContent", &no_contents).await;
    assert_eq!(error_status(&shape), (400, "INVALID_ARGUMENT".to_owned()));
    let not_json = send(
        http_client()
            .post(format!("{}/v1internal:generateContent", mock.url()))
            .bearer_auth(&tokens.access_token)
            .body("{not json"),
    )
    .await;
    assert_eq!(
        error_status(&not_json),
        (400, "INVALID_ARGUMENT".to_owned())
    );

    let answer = call(&mock, &tokens.access_token, "generateContent", &body).await;
    assert_eq!(
        answer.json()["response"]["candidates"][0]["content"]["parts"][0]["text"],
        "the queued answer"
    );

    mock.oauth().expire_access_tokens();
    let expired = call(&mock, &tokens.access_token, "generateContent", &body).await;
    assert_eq!(error_status(&expired), (401, "UNAUTHENTICATED".to_owned()));
    let other = call(&mock, &tokens.access_token, "loadCodeAssist", &json!({})).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    let missing_method = call(
        &mock,
        &mock.oauth().issue_tokens().access_token,
        "noSuchMethod",
        &json!({}),
    )
    .await;
    assert_eq!(error_status(&missing_method), (404, "NOT_FOUND".to_owned()));
}

#[tokio::test]
async fn count_tokens_and_user_quota() {
    let mock = MockUpstream::gemini_cli().await;
    let token = mock.oauth().issue_tokens().access_token;
    let count = json!({"request": {"model": "models/gemini-2.5-pro", "contents": [{"role": "user", "parts": [{"text": "one two three four five"}]}]}});
    let counted = call(&mock, &token, "countTokens", &count).await;
    assert_eq!(counted.status, StatusCode::OK, "{}", counted.text);
    assert_eq!(counted.json(), json!({"totalTokens": 5}));
    let unknown = json!({"request": {"model": "models/gemini-0", "contents": []}});
    let unknown = call(&mock, &token, "countTokens", &unknown).await;
    assert_eq!(error_status(&unknown), (404, "NOT_FOUND".to_owned()));

    let quota = call(
        &mock,
        &token,
        "retrieveUserQuota",
        &json!({"project": PROJECT}),
    )
    .await;
    assert_eq!(quota.status, StatusCode::OK, "{}", quota.text);
    let buckets = quota.json()["buckets"].as_array().unwrap().clone();
    let models: Vec<&str> = buckets
        .iter()
        .map(|bucket| bucket["modelId"].as_str().unwrap())
        .collect();
    assert_eq!(
        models,
        [
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "gemini-2.5-flash-lite",
            "gemini-3-pro-preview"
        ]
    );
    for bucket in &buckets {
        assert_eq!(bucket["tokenType"], "REQUESTS");
        assert_eq!(bucket["remainingFraction"], 1.0);
        assert!(bucket["resetTime"].as_str().unwrap().ends_with('Z'));
    }

    mock.set_gemini_quota("gemini-2.5-pro", 0.25, "2026-03-01T00:00:00Z");
    let quota = call(
        &mock,
        &token,
        "retrieveUserQuota",
        &json!({"project": PROJECT}),
    )
    .await
    .json();
    let pro = &quota["buckets"][0];
    assert_eq!(pro["modelId"], "gemini-2.5-pro");
    assert_eq!(pro["remainingFraction"], 0.25);
    assert_eq!(pro["resetTime"], "2026-03-01T00:00:00Z");
    assert_eq!(quota["buckets"][1]["remainingFraction"], 1.0);

    let foreign = call(
        &mock,
        &token,
        "retrieveUserQuota",
        &json!({"project": "not-mine"}),
    )
    .await;
    assert_eq!(
        error_status(&foreign),
        (403, "PERMISSION_DENIED".to_owned())
    );
}

fn detail<'a>(body: &'a Value, kind: &str) -> &'a Value {
    body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|detail| detail["@type"] == format!("type.googleapis.com/google.rpc.{kind}"))
        .unwrap_or_else(|| panic!("no {kind} in {body}"))
}

#[tokio::test]
async fn quota_errors_carry_googles_details() {
    let mock = MockUpstream::gemini_cli().await;
    let token = mock.oauth().issue_tokens().access_token;
    let body = generate_body(PROJECT, "gemini-2.5-pro");

    mock.enqueue(gemini_rate_limited("2.5s"));
    let limited = call(&mock, &token, "generateContent", &body).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let limited = limited.json();
    assert_eq!(limited["error"]["status"], "RESOURCE_EXHAUSTED");
    let info = detail(&limited, "ErrorInfo");
    assert_eq!(info["reason"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(info["domain"], "cloudcode-pa.googleapis.com");
    assert_eq!(detail(&limited, "RetryInfo")["retryDelay"], "2.5s");

    mock.enqueue(gemini_daily_quota_exhausted("43200s"));
    let daily = call(&mock, &token, "generateContent", &body).await;
    assert_eq!(daily.status, StatusCode::TOO_MANY_REQUESTS);
    let daily = daily.json();
    assert_eq!(daily["error"]["code"], 429);
    assert_eq!(detail(&daily, "ErrorInfo")["reason"], "QUOTA_EXHAUSTED");
    assert!(
        detail(&daily, "QuotaFailure")["violations"][0]["quotaId"]
            .as_str()
            .unwrap()
            .contains("PerDay")
    );
    assert_eq!(detail(&daily, "RetryInfo")["retryDelay"], "43200s");

    let link = "https://accounts.google.com/signin/continue?verify=1";
    mock.enqueue(gemini_validation_required(link));
    let validation = send(
        http_client()
            .post(format!(
                "{}/v1internal:streamGenerateContent?alt=sse",
                mock.url()
            ))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await;
    assert_eq!(validation.status, StatusCode::FORBIDDEN);
    let validation = validation.json();
    assert_eq!(validation["error"]["status"], "PERMISSION_DENIED");
    let info = detail(&validation, "ErrorInfo");
    assert_eq!(info["reason"], "VALIDATION_REQUIRED");
    assert_eq!(info["domain"], "cloudcode-pa.googleapis.com");
    assert_eq!(info["metadata"]["validation_link"], link);
    assert_eq!(detail(&validation, "Help")["links"][0]["url"], link);

    let after = call(&mock, &token, "generateContent", &body).await;
    assert_eq!(after.status, StatusCode::OK);
}
