use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use subgate_config::Url;

use super::*;
use crate::session::{Login, OAuthClient};

const SOCIAL_ARN: &str = "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK";

fn kiro(base: &str, auth: Option<&str>) -> Kiro {
    let mut config =
        crate::common::test_config(subgate_core::ProviderKind::Kiro, base, &[], Vec::new());
    config.auth_url = auth.map(|url| Url::parse(url).unwrap());
    Kiro::new(&config)
}

fn account(login: Login) -> Account {
    Account::login("acct-1".to_owned(), "kiro-1".to_owned(), 0, login)
}

fn social(profile: &str) -> Login {
    Login {
        access_token: "aoa-access".to_owned(),
        refresh_token: Some("aor-refresh".to_owned()),
        profile_arn: Some(profile.to_owned()),
        region: Some("us-east-1".to_owned()),
        ..Login::default()
    }
}

#[test]
fn client_model_names_become_kiro_ids() {
    for (name, id) in [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4.5"),
        ("claude-3-7-sonnet-latest", "claude-3.7-sonnet"),
        ("claude-opus-4.5", "claude-opus-4.5"),
        ("auto", "auto"),
        ("qwen3-coder-next", "qwen3-coder-next"),
    ] {
        assert_eq!(model_id(name), id, "{name}");
    }
}

#[test]
fn requests_go_to_the_profile_region_unless_a_base_is_configured() {
    let regional = kiro(KIRO_DEFAULT_BASE_URL, None);
    let frankfurt = account(social("arn:aws:codewhisperer:eu-central-1:1234:profile/P"));
    let request = regional.generate_request(&frankfurt, Bytes::from_static(b"{}"));
    assert_eq!(
        request.url.as_str(),
        "https://q.eu-central-1.amazonaws.com/generateAssistantResponse"
    );
    let fixed = kiro("http://127.0.0.1:9/kiro", None);
    let request = fixed.generate_request(&frankfurt, Bytes::from_static(b"{}"));
    assert_eq!(
        request.url.as_str(),
        "http://127.0.0.1:9/kiro/generateAssistantResponse"
    );
    assert_eq!(arn_region("arn:aws:codewhisperer::1:profile/P"), None);
}

#[test]
fn the_ide_identity_is_sent() {
    let upstream = kiro("http://127.0.0.1:9", None);
    let request = upstream.generate_request(&account(social(SOCIAL_ARN)), Bytes::new());
    let header = |name: &str| request.headers[name].to_str().unwrap().to_owned();
    assert_eq!(header("authorization"), "Bearer aoa-access");
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("x-amzn-codewhisperer-optout"), "true");
    assert_eq!(header("x-amzn-kiro-agent-mode"), "vibe");
    assert_eq!(header("amz-sdk-request"), "attempt=1; max=3");
    let agent = header("user-agent");
    let machine = agent.rsplit('-').next().unwrap();
    assert!(agent.contains("KiroIDE-0.7.45-"), "{agent}");
    assert_eq!(machine.len(), 64);
    assert!(header("x-amz-user-agent").ends_with(machine));
    // Each account is its own machine.
    let other = Account::login("acct-2".to_owned(), "k2".to_owned(), 0, social(SOCIAL_ARN));
    let again = upstream.generate_request(&other, Bytes::new());
    assert_ne!(again.headers["user-agent"], request.headers["user-agent"]);
    assert_ne!(
        again.headers["amz-sdk-invocation-id"],
        request.headers["amz-sdk-invocation-id"]
    );
}

#[test]
fn catalog_and_usage_requests_name_the_profile() {
    let upstream = kiro("http://127.0.0.1:9", None);
    let account = account(social(SOCIAL_ARN));
    let models = upstream.models_request(&account);
    let query: Vec<(String, String)> = models.url.query_pairs().into_owned().collect();
    assert_eq!(models.url.path(), "/ListAvailableModels");
    assert!(query.contains(&("origin".to_owned(), "AI_EDITOR".to_owned())));
    assert!(query.contains(&("profileArn".to_owned(), SOCIAL_ARN.to_owned())));
    assert_eq!(models.headers["x-amzn-kiro-profile-arn"], SOCIAL_ARN);
    let usage = upstream.usage_request(&account);
    assert_eq!(usage.url.path(), "/getUsageLimits");
    assert!(
        usage
            .url
            .query()
            .unwrap()
            .contains("resourceType=AGENTIC_REQUEST")
    );
}

#[test]
fn the_catalog_names_models_and_their_input_limits() {
    let upstream = kiro("http://127.0.0.1:9", None);
    let body = json!({"defaultModel": {"modelId": "auto"}, "models": [
        {"modelId": "claude-sonnet-4.5", "tokenLimits": {"maxInputTokens": 1_000_000, "maxOutputTokens": 64000}},
        {"modelId": "auto"}], "nextToken": null});
    let models = upstream.parse_models(body.to_string().as_bytes()).unwrap();
    assert_eq!(models, ["claude-sonnet-4.5", "auto"]);
    assert_eq!(upstream.max_input_tokens("claude-sonnet-4.5"), 1_000_000);
    assert_eq!(upstream.max_input_tokens("auto"), DEFAULT_MAX_INPUT_TOKENS);
}

#[test]
fn usage_adds_active_trials_and_bonuses() {
    let body = json!({"userInfo": {"email": "a@b.c"}, "nextDateReset": 1_767_225_600,
        "usageBreakdownList": [{"currentUsageWithPrecision": 125.5, "usageLimitWithPrecision": 1000.0,
            "bonuses": [{"currentUsage": 10, "usageLimit": 100, "status": "ACTIVE"},
                        {"currentUsage": 5, "usageLimit": 50, "status": "EXPIRED"}],
            "freeTrialInfo": {"freeTrialStatus": "ACTIVE", "usageLimitWithPrecision": 500.0,
                "currentUsageWithPrecision": 499.5}}]});
    let quota = parse_usage(body.to_string().as_bytes()).unwrap();
    let window = &quota.windows[0];
    assert!((window.limit - 1600.0).abs() < 1e-9, "{window:?}");
    assert!((window.remaining - 965.0).abs() < 1e-9, "{window:?}");
    assert_eq!(window.resets_at, Some(1_767_225_600_000));
    assert!(parse_usage(b"{}").unwrap().windows.is_empty());
}

#[test]
fn refusals_read_as_rests() {
    let read = |status: u16, body: Value| {
        classify_failure(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            &body.to_string(),
        )
    };
    let monthly = read(
        402,
        json!({"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"}),
    );
    assert_eq!(monthly.rest, Some(Rest::QuotaExhausted));
    let nested = read(
        400,
        json!({"error": {"reason": "OVERAGE_REQUEST_LIMIT_EXCEEDED"}}),
    );
    assert_eq!(nested.rest, Some(Rest::QuotaExhausted));
    let model = read(
        400,
        json!({"message": "Invalid model.", "reason": "INVALID_MODEL_ID"}),
    );
    assert_eq!(
        (model.rest, model.scope),
        (Some(Rest::ModelUnavailable), Scope::Model)
    );
    let long = read(
        400,
        json!({"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}),
    );
    assert_eq!(long.rest, None);
    let token = read(
        403,
        json!({"message": "The bearer token included in the request is invalid."}),
    );
    assert_eq!(token.rest, Some(Rest::CredentialInvalid));
    let busy = read(429, json!({"message": "Too many requests"}));
    assert_eq!(busy.rest, Some(Rest::RateLimited));
    assert_eq!(busy.retry_after, Some(Duration::from_secs(5)));
    assert!(wants_new_token(StatusCode::FORBIDDEN));
    assert!(!wants_new_token(StatusCode::PAYMENT_REQUIRED));
}

#[test]
fn social_logins_refresh_at_the_desktop_service_and_idc_ones_at_oidc() {
    let upstream = kiro("http://127.0.0.1:9", None);
    let request = upstream
        .endpoints
        .refresh_request(&social(SOCIAL_ARN), "acct-1")
        .unwrap();
    assert_eq!(
        request.url.as_str(),
        "https://prod.us-east-1.auth.desktop.kiro.dev/refreshToken"
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, json!({"refreshToken": "aor-refresh"}));
    assert!(
        request.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("KiroIDE-")
    );

    let mut idc = social(SOCIAL_ARN);
    idc.region = Some("eu-west-1".to_owned());
    idc.client = Some(OAuthClient {
        id: "cid".to_owned(),
        secret: "csecret".to_owned(),
        expires_at: None,
    });
    let request = upstream.endpoints.refresh_request(&idc, "acct-1").unwrap();
    assert_eq!(
        request.url.as_str(),
        "https://oidc.eu-west-1.amazonaws.com/token"
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({"clientId": "cid", "clientSecret": "csecret", "refreshToken": "aor-refresh",
            "grantType": "refresh_token"})
    );
    let mocked = kiro("http://127.0.0.1:9", Some("http://127.0.0.1:7/auth"));
    let request = mocked.endpoints.refresh_request(&idc, "acct-1").unwrap();
    assert_eq!(request.url.as_str(), "http://127.0.0.1:7/auth/token");
}

#[test]
fn a_refresh_answer_renews_the_login() {
    let previous = social(SOCIAL_ARN);
    let body = json!({"accessToken": "aoa-2", "refreshToken": "aor-2", "expiresIn": 3600,
        "profileArn": "arn:aws:codewhisperer:us-east-1:1:profile/NEW"});
    let login = auth::read_tokens(
        StatusCode::OK,
        None,
        body.to_string().as_bytes(),
        Some(&previous),
        1_000,
    )
    .unwrap();
    assert_eq!(login.access_token, "aoa-2");
    assert_eq!(login.refresh_token.as_deref(), Some("aor-2"));
    assert_eq!(login.expires_at, Some(1_000 + 3_600_000));
    assert!(login.profile_arn.unwrap().ends_with("NEW"));
    let dead = auth::read_tokens(
        StatusCode::BAD_REQUEST,
        None,
        br#"{"error":"invalid_grant","error_description":"Invalid refresh token provided"}"#,
        Some(&previous),
        1_000,
    )
    .unwrap_err();
    assert!(dead.dead);
}

#[test]
fn the_setup_names_the_account_by_its_email() {
    let body = json!({"userInfo": {"email": "dev@example.com"},
        "subscriptionInfo": {"subscriptionTitle": "KIRO PRO"}});
    let login = auth::read_setup(
        StatusCode::OK,
        body.to_string().as_bytes(),
        Login::default(),
    );
    assert_eq!(login.email.as_deref(), Some("dev@example.com"));
    assert_eq!(login.account_id.as_deref(), Some("dev@example.com"));
    assert_eq!(login.plan.as_deref(), Some("KIRO PRO"));
    let refused = auth::read_setup(StatusCode::FORBIDDEN, b"{}", Login::default());
    assert_eq!(refused.email, None);
}

#[test]
fn a_builder_id_login_registers_a_client_then_polls_with_it() {
    let upstream = kiro("http://127.0.0.1:9", Some("http://127.0.0.1:7"));
    let register = upstream.endpoints.register_request().unwrap();
    assert_eq!(register.url.as_str(), "http://127.0.0.1:7/client/register");
    let body: Value = serde_json::from_slice(&register.body).unwrap();
    assert_eq!(body["clientType"], "public");
    assert_eq!(body["scopes"][2], "codewhisperer:conversations");

    let client = auth::read_registration(
        StatusCode::OK,
        br#"{"clientId":"cid","clientSecret":"cs","clientIdIssuedAt":1,"clientSecretExpiresAt":2000000000}"#,
        1_000,
    )
    .unwrap();
    assert_eq!(client.expires_at, Some(2_000_000_000_000));
    let start = upstream.endpoints.device_start_request(&client).unwrap();
    let body: Value = serde_json::from_slice(&start.body).unwrap();
    assert_eq!(
        body,
        json!({"clientId": "cid", "clientSecret": "cs", "startUrl": "https://view.awsapps.com/start"})
    );
    let started = auth::read_device_start(
        StatusCode::OK,
        br#"{"deviceCode":"dc","userCode":"ABCD-EFGH","verificationUri":"https://device.sso/","verificationUriComplete":"https://device.sso/?user_code=ABCD-EFGH","expiresIn":600,"interval":1}"#,
        Some(client),
    )
    .unwrap();
    assert_eq!(
        started.verification_uri,
        "https://device.sso/?user_code=ABCD-EFGH"
    );
    let poll = upstream.endpoints.device_poll_request(&started).unwrap();
    let body: Value = serde_json::from_slice(&poll.body).unwrap();
    assert_eq!(
        body["grantType"],
        "urn:ietf:params:oauth:grant-type:device_code"
    );
    assert_eq!(body["deviceCode"], "dc");

    let read = |status: u16, body: &str| {
        auth::read_device_poll(
            &started,
            StatusCode::from_u16(status).unwrap(),
            body.as_bytes(),
            1_000,
        )
    };
    assert!(matches!(
        read(400, r#"{"error":"authorization_pending"}"#),
        Ok(subgate_auth::DevicePoll::Pending)
    ));
    assert!(matches!(
        read(400, r#"{"error":"slow_down"}"#),
        Ok(subgate_auth::DevicePoll::SlowDown(None))
    ));
    assert!(matches!(
        read(400, r#"{"error":"expired_token"}"#),
        Err(subgate_auth::DeviceError::Expired)
    ));
    assert!(matches!(
        read(400, r#"{"error":"access_denied"}"#),
        Err(subgate_auth::DeviceError::Denied(_))
    ));
    let Ok(subgate_auth::DevicePoll::Done(crate::DeviceGrant::Login(login))) = read(
        200,
        r#"{"accessToken":"aoa","refreshToken":"aor","expiresIn":3600,"tokenType":"Bearer"}"#,
    ) else {
        panic!("no login");
    };
    assert_eq!(login.client.as_ref().unwrap().id, "cid");
    assert_eq!(login.region.as_deref(), Some("us-east-1"));
    assert_eq!(login.expires_at, Some(1_000 + 3_600_000));
}
