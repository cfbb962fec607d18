//! The Kiro mock behaves as documented: the desktop auth service and AWS
//! SSO OIDC issue, rotate and refuse credentials; `generateAssistantResponse`
//! refuses what the real service refuses and answers in AWS event-stream
//! frames (read here by a reader of the test's own, CRCs checked); the model
//! list pages and the usage report adds up.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure should fail loudly"
)]

#[expect(
    dead_code,
    reason = "the shared support module also serves the OAuth code flows"
)]
mod support;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subgate_testkit::http_client;
use subgate_testkit::mock::{
    DeviceStep, KIRO_PROFILE_ARN, KiroLogin, KiroScript, MockUpstream, Output, Scenario, Stop,
    StreamEnd, kiro_input_too_long, kiro_monthly_limit, kiro_overage_limit, kiro_server_error,
    kiro_throttled,
};
use support::{Answer, send};

const KIRO_UA: &str = "aws-sdk-js/1.0.27 ua/2.1 os/linux#6.8 lang/js md/nodejs#22.21.1 api/codewhispererstreaming#1.0.27 m/E KiroIDE-0.7.45-4f1c0a8e9b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const BEARER_INVALID: &str = "The bearer token included in the request is invalid.";

// ------------------------------------------------------------ frame reader

/// CRC-32 (IEEE, reflected, as zlib computes it), bit by bit: independent
/// of the mock's encoder.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn be32(bytes: &[u8]) -> usize {
    usize::try_from(u32::from_be_bytes(bytes[..4].try_into().unwrap())).unwrap()
}

/// One event-stream message.
#[derive(Debug)]
struct Frame {
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

impl Frame {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn kind(&self) -> &str {
        match self.header(":message-type") {
            Some("event") => self.header(":event-type").unwrap(),
            Some(other) => other,
            None => panic!("a frame without :message-type"),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap()
    }
}

/// Reads every message of `bytes`, checking both CRCs and that only string
/// headers appear; fails on a short or trailing frame.
fn read_frames(bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        assert!(rest.len() >= 16, "a frame of {} bytes", rest.len());
        let total = be32(rest);
        let headers_len = be32(&rest[4..]);
        assert_eq!(
            be32(&rest[8..]),
            usize::try_from(crc32(&rest[..8])).unwrap()
        );
        assert!(total <= rest.len(), "a frame cut short");
        let message = &rest[..total];
        let crc = u32::from_be_bytes(message[total - 4..].try_into().unwrap());
        assert_eq!(crc, crc32(&message[..total - 4]), "message CRC");
        let mut headers = Vec::new();
        let mut cursor = &message[12..12 + headers_len];
        while !cursor.is_empty() {
            let name_len = usize::from(cursor[0]);
            let name = std::str::from_utf8(&cursor[1..=name_len])
                .unwrap()
                .to_owned();
            assert_eq!(cursor[1 + name_len], 7, "header {name} is a string");
            let value_len = usize::from(u16::from_be_bytes(
                cursor[2 + name_len..4 + name_len].try_into().unwrap(),
            ));
            let value = &cursor[4 + name_len..4 + name_len + value_len];
            headers.push((name, std::str::from_utf8(value).unwrap().to_owned()));
            cursor = &cursor[4 + name_len + value_len..];
        }
        let payload = message[12 + headers_len..total - 4].to_vec();
        frames.push(Frame { headers, payload });
        at += total;
    }
    frames
}

#[test]
fn the_reader_reads_the_reference_vector() {
    let hex = "0000007c0000005c3bddcf780d3a6d6573736167652d747970650700056576656e740b3a6576656e742d74797065070016617373697374616e74526573706f6e73654576656e740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b22636f6e74656e74223a226f6b227d37972cb8";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
        .collect();
    let frames = read_frames(&bytes);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].kind(), "assistantResponseEvent");
    assert_eq!(frames[0].json(), json!({"content": "ok"}));
    let mut broken = bytes.clone();
    broken[100] ^= 1;
    assert!(std::panic::catch_unwind(|| read_frames(&broken)).is_err());
}

// ---------------------------------------------------------------- helpers

/// An answer read as bytes (event streams are binary).
struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.bytes)))
    }

    fn frames(&self) -> Vec<Frame> {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&self.bytes)
        );
        assert_eq!(
            self.header("content-type"),
            "application/vnd.amazon.eventstream"
        );
        read_frames(&self.bytes)
    }
}

fn ide_headers(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        headers.insert(name, HeaderValue::from_str(value).unwrap());
    };
    set("authorization", &format!("Bearer {token}"));
    set("content-type", "application/json");
    set("x-amzn-codewhisperer-optout", "true");
    set("x-amzn-kiro-agent-mode", "vibe");
    set(
        "amz-sdk-invocation-id",
        "5c1c8b4c-6f0e-4a57-9c3e-1f2d3c4b5a69",
    );
    set("amz-sdk-request", "attempt=1; max=3");
    set("user-agent", KIRO_UA);
    headers
}

async fn post_generate(mock: &MockUpstream, headers: HeaderMap, body: String) -> Raw {
    let response = http_client()
        .post(format!("{}/generateAssistantResponse", mock.url()))
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    Raw {
        status: response.status(),
        headers: response.headers().clone(),
        bytes: response.bytes().await.unwrap().to_vec(),
    }
}

async fn generate(mock: &MockUpstream, token: &str, body: &Value) -> Raw {
    post_generate(mock, ide_headers(token), body.to_string()).await
}

/// A first-turn request as the IDE sends it.
fn request(content: &str) -> Value {
    json!({
        "conversationState": {
            "chatTriggerType": "MANUAL",
            "conversationId": "0d6b1c9e-3f4a-4b2c-9d8e-7f6a5b4c3d2e",
            "agentTaskType": "vibe",
            "currentMessage": {"userInputMessage": {
                "content": content, "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR",
            }},
        },
        "profileArn": KIRO_PROFILE_ARN,
    })
}

fn social_token(mock: &MockUpstream) -> String {
    mock.kiro_token_file(KiroLogin::Social)["accessToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn post_json(url: String, body: &Value, agent: &str) -> Answer {
    send(
        http_client()
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", agent)
            .body(body.to_string()),
    )
    .await
}

async fn social_refresh(mock: &MockUpstream, token: &str) -> Answer {
    let url = format!("{}/refreshToken", mock.auth_url());
    post_json(url, &json!({"refreshToken": token}), KIRO_UA).await
}

async fn oidc(mock: &MockUpstream, path: &str, body: &Value) -> Answer {
    post_json(format!("{}{path}", mock.auth_url()), body, "aws-sdk-js/3.0").await
}

fn str_of<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {value}"))
}

async fn usage(mock: &MockUpstream, token: &str, query: &str) -> Answer {
    send(
        http_client()
            .get(format!("{}/getUsageLimits?{query}", mock.url()))
            .bearer_auth(token),
    )
    .await
}

const USAGE_QUERY: &str = "origin=AI_EDITOR&resourceType=AGENTIC_REQUEST";

// ---------------------------------------------------------------- sign-in

#[tokio::test]
async fn social_refresh_rotates_and_the_spent_token_dies() {
    let mock = MockUpstream::kiro().await;
    let file = mock.kiro_token_file(KiroLogin::Social);
    assert_eq!(file["authMethod"], "social");
    assert_eq!(file["provider"], "Google");
    assert_eq!(file["region"], "us-east-1");
    assert_eq!(file["profileArn"], KIRO_PROFILE_ARN);
    assert!(file.get("clientIdHash").is_none());
    let expires = str_of(&file, "expiresAt");
    assert_eq!(expires.len(), 24, "{expires}");
    assert_eq!(&expires[19..20], ".");
    assert!(expires.ends_with('Z'));
    let refresh_token = str_of(&file, "refreshToken");
    assert!(str_of(&file, "accessToken").starts_with("aoa"));
    assert!(refresh_token.starts_with("aor") && refresh_token.len() > 100);

    let url = format!("{}/refreshToken", mock.auth_url());
    let no_ide = post_json(url, &json!({"refreshToken": refresh_token}), "curl/8").await;
    assert_eq!(no_ide.status, StatusCode::BAD_REQUEST);
    assert_eq!(mock.oauth().refresh_count(), 0);

    let refreshed = social_refresh(&mock, refresh_token).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    let refreshed = refreshed.json();
    assert_eq!(refreshed["profileArn"], KIRO_PROFILE_ARN);
    assert_eq!(refreshed["expiresIn"], 3600);
    let rotated = str_of(&refreshed, "refreshToken");
    assert_ne!(rotated, refresh_token);
    assert_ne!(
        str_of(&refreshed, "accessToken"),
        str_of(&file, "accessToken")
    );
    assert_eq!(mock.oauth().refresh_count(), 1);
    let fresh = str_of(&refreshed, "accessToken");
    assert_eq!(
        usage(&mock, fresh, USAGE_QUERY).await.status,
        StatusCode::OK
    );

    let spent = social_refresh(&mock, refresh_token).await;
    assert_eq!(spent.status, StatusCode::BAD_REQUEST);
    assert_eq!(spent.json()["error"], "invalid_grant");
    assert!(spent.json()["error_description"].is_string());
    let unknown = social_refresh(&mock, "aorAAAAAG-never-issued").await;
    assert_eq!(unknown.json()["error"], "invalid_grant");
    let idc = mock.kiro_token_file(KiroLogin::Idc);
    let idc = social_refresh(&mock, str_of(&idc, "refreshToken")).await;
    assert_eq!(idc.json()["error"], "invalid_grant");

    mock.oauth()
        .fail_next_refresh(500, r#"{"message":"Internal error"}"#);
    assert_eq!(
        social_refresh(&mock, rotated).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(social_refresh(&mock, rotated).await.status, StatusCode::OK);
    assert_eq!(mock.oauth().refresh_count(), 2);
    let recorded = mock.requests_to("/refreshToken");
    assert_eq!(recorded.len(), 7);
    assert_eq!(recorded[1].header("user-agent"), Some(KIRO_UA));
}

#[tokio::test]
async fn expired_or_unknown_bearers_get_403_until_refreshed() {
    let mock = MockUpstream::kiro().await;
    let file = mock.kiro_token_file(KiroLogin::Social);
    let token = str_of(&file, "accessToken");
    let forbidden = json!({"message": BEARER_INVALID, "reason": null});
    let missing =
        send(http_client().get(format!("{}/getUsageLimits?{USAGE_QUERY}", mock.url()))).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert_eq!(missing.json(), forbidden);
    let unknown = usage(&mock, "aoaAAAAAG-never-issued", USAGE_QUERY).await;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN);
    assert_eq!(
        generate(&mock, token, &request("hi")).await.status,
        StatusCode::OK
    );

    mock.oauth().expire_access_tokens();
    assert_eq!(mock.oauth().valid_access_tokens(), 0);
    let expired = generate(&mock, token, &request("hi")).await;
    assert_eq!(expired.status, StatusCode::FORBIDDEN);
    assert_eq!(expired.json(), forbidden);
    let models = send(
        http_client()
            .get(format!(
                "{}/ListAvailableModels?origin=AI_EDITOR",
                mock.url()
            ))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(models.status, StatusCode::FORBIDDEN);
    assert_eq!(
        usage(&mock, token, USAGE_QUERY).await.status,
        StatusCode::FORBIDDEN
    );

    let refreshed = social_refresh(&mock, str_of(&file, "refreshToken"))
        .await
        .json();
    let fresh = str_of(&refreshed, "accessToken");
    assert_eq!(
        generate(&mock, fresh, &request("hi")).await.status,
        StatusCode::OK
    );
    assert_eq!(mock.requests_to("/generateAssistantResponse").len(), 3);
}

fn oidc_refresh(id: &str, secret: &str, token: &str) -> Value {
    json!({"clientId": id, "clientSecret": secret, "refreshToken": token, "grantType": "refresh_token"})
}

#[tokio::test]
async fn oidc_refresh_takes_camel_case_and_binds_the_client() {
    let mock = MockUpstream::kiro().await;
    let file = mock.kiro_token_file(KiroLogin::Idc);
    let registration = mock.kiro_client_registration();
    let (id, secret) = (
        str_of(&registration, "clientId"),
        str_of(&registration, "clientSecret"),
    );
    assert_eq!(file["authMethod"], "IdC");
    assert_eq!(file["provider"], "BuilderId");
    assert_eq!(file["region"], "us-east-1");
    assert!(file.get("profileArn").is_none());
    let hash = Sha256::digest(id.as_bytes())
        .iter()
        .fold(String::new(), |mut hash, byte| {
            write!(hash, "{byte:02x}").unwrap();
            hash
        });
    assert_eq!(file["clientIdHash"], hash);
    assert!(str_of(&registration, "expiresAt").ends_with('Z'));
    assert_eq!(
        mock.kiro_client_registration()["clientId"],
        id,
        "one IDE client"
    );
    let token = str_of(&file, "refreshToken");

    let wrong = oidc(&mock, "/token", &oidc_refresh(id, "not-the-secret", token)).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json()["error"], "invalid_client");
    assert_eq!(wrong.header("x-amzn-errortype"), "InvalidClientException");
    let snake = json!({"client_id": id, "client_secret": secret, "refresh_token": token, "grant_type": "refresh_token"});
    let snake = oidc(&mock, "/token", &snake).await;
    assert_eq!(snake.status, StatusCode::BAD_REQUEST);
    assert_eq!(snake.json()["error"], "invalid_request");
    let bad = oidc(&mock, "/token", &oidc_refresh(id, secret, "aor-not-issued")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"], "invalid_grant");
    let social = mock.kiro_token_file(KiroLogin::Social);
    let social = oidc(
        &mock,
        "/token",
        &oidc_refresh(id, secret, str_of(&social, "refreshToken")),
    )
    .await;
    assert_eq!(social.json()["error"], "invalid_grant");

    let refreshed = oidc(&mock, "/token", &oidc_refresh(id, secret, token)).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    let refreshed = refreshed.json();
    assert_eq!(refreshed["tokenType"], "Bearer");
    assert_eq!(refreshed["expiresIn"], 3600);
    assert!(refreshed.get("profileArn").is_none());
    assert_ne!(str_of(&refreshed, "refreshToken"), token);
    assert_eq!(mock.oauth().refresh_count(), 1);
    let spent = oidc(&mock, "/token", &oidc_refresh(id, secret, token)).await;
    assert_eq!(spent.json()["error"], "invalid_grant");

    // An IdC login needs no profile ARN.
    let mut body = request("hello");
    body.as_object_mut().unwrap().remove("profileArn");
    let answer = generate(&mock, str_of(&refreshed, "accessToken"), &body).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn kiro_cli_values_are_snake_case_with_their_own_client() {
    let mock = MockUpstream::kiro().await;
    let token = mock.kiro_cli_token();
    let registration = mock.kiro_cli_registration();
    for key in [
        "access_token",
        "refresh_token",
        "expires_at",
        "region",
        "start_url",
    ] {
        assert!(token[key].is_string(), "{key} in {token}");
    }
    assert!(token.get("accessToken").is_none());
    assert_eq!(token["start_url"], "https://view.awsapps.com/start");
    assert!(
        token["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("codewhisperer:conversations"))
    );
    let expires = str_of(&token, "expires_at");
    assert_eq!(expires.len(), 30, "{expires}");
    assert!(expires.ends_with("000000Z"));
    assert_eq!(registration["region"], "us-east-1");
    let (id, secret) = (
        str_of(&registration, "client_id"),
        str_of(&registration, "client_secret"),
    );

    let ide = mock.kiro_client_registration();
    assert_ne!(ide["clientId"], id);
    let crossed = oidc_refresh(
        id,
        str_of(&ide, "clientSecret"),
        str_of(&token, "refresh_token"),
    );
    assert_eq!(
        oidc(&mock, "/token", &crossed).await.status,
        StatusCode::UNAUTHORIZED
    );
    let ide_client = oidc_refresh(
        str_of(&ide, "clientId"),
        str_of(&ide, "clientSecret"),
        str_of(&token, "refresh_token"),
    );
    assert_eq!(
        oidc(&mock, "/token", &ide_client).await.json()["error"],
        "invalid_grant"
    );
    let refreshed = oidc(
        &mock,
        "/token",
        &oidc_refresh(id, secret, str_of(&token, "refresh_token")),
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    let answer = usage(&mock, str_of(&refreshed.json(), "accessToken"), USAGE_QUERY).await;
    assert_eq!(answer.status, StatusCode::OK);
}

/// Registers a client and starts a device login; returns the client id,
/// secret and device code.
async fn start_device_login(mock: &MockUpstream) -> (String, String, String) {
    let register = json!({"clientName": "Kiro IDE", "clientType": "public",
        "scopes": ["codewhisperer:completions", "codewhisperer:analysis", "codewhisperer:conversations"]});
    let client = oidc(mock, "/client/register", &register).await;
    assert_eq!(client.status, StatusCode::OK, "{}", client.text);
    let client = client.json();
    assert!(
        client["clientIdIssuedAt"].as_u64().unwrap()
            < client["clientSecretExpiresAt"].as_u64().unwrap()
    );
    let (id, secret) = (
        str_of(&client, "clientId").to_owned(),
        str_of(&client, "clientSecret").to_owned(),
    );
    let start = json!({"clientId": id, "clientSecret": secret, "startUrl": "https://view.awsapps.com/start"});
    let device = oidc(mock, "/device_authorization", &start).await;
    assert_eq!(device.status, StatusCode::OK, "{}", device.text);
    let device = device.json();
    assert_eq!(device["expiresIn"], 600);
    assert_eq!(device["interval"], 1);
    let user_code = str_of(&device, "userCode");
    assert!(
        str_of(&device, "verificationUriComplete").ends_with(&format!("user_code={user_code}"))
    );
    assert!(device["verificationUri"].is_string());
    (id, secret, str_of(&device, "deviceCode").to_owned())
}

fn device_poll(id: &str, secret: &str, code: &str) -> Value {
    json!({"clientId": id, "clientSecret": secret, "grantType": DEVICE_GRANT, "deviceCode": code})
}

#[tokio::test]
async fn builder_id_device_login_pends_once_then_approves() {
    let mock = MockUpstream::kiro().await;
    let bad = json!({"clientName": "Kiro IDE", "clientType": "confidential"});
    let bad = oidc(&mock, "/client/register", &bad).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"], "invalid_client_metadata");

    let (id, secret, code) = start_device_login(&mock).await;
    let no_start = json!({"clientId": id, "clientSecret": secret});
    assert_eq!(
        oidc(&mock, "/device_authorization", &no_start).await.json()["error"],
        "invalid_request"
    );
    let wrong = json!({"clientId": id, "clientSecret": "nope", "startUrl": "https://view.awsapps.com/start"});
    assert_eq!(
        oidc(&mock, "/device_authorization", &wrong).await.status,
        StatusCode::UNAUTHORIZED
    );

    let pending = oidc(&mock, "/token", &device_poll(&id, &secret, &code)).await;
    assert_eq!(pending.status, StatusCode::BAD_REQUEST);
    assert_eq!(pending.json(), json!({"error": "authorization_pending"}));
    assert_eq!(
        pending.header("x-amzn-errortype"),
        "AuthorizationPendingException"
    );
    let tokens = oidc(&mock, "/token", &device_poll(&id, &secret, &code)).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    let tokens = tokens.json();
    assert_eq!(tokens["tokenType"], "Bearer");
    assert!(tokens.get("profileArn").is_none());
    let again = oidc(&mock, "/token", &device_poll(&id, &secret, &code)).await;
    assert_eq!(again.json()["error"], "invalid_grant");

    let mut body = request("hello");
    body.as_object_mut().unwrap().remove("profileArn");
    let answer = generate(&mock, str_of(&tokens, "accessToken"), &body).await;
    assert_eq!(answer.status, StatusCode::OK);
    let refresh = oidc_refresh(&id, &secret, str_of(&tokens, "refreshToken"));
    assert_eq!(oidc(&mock, "/token", &refresh).await.status, StatusCode::OK);
    let unsupported = json!({"clientId": id, "clientSecret": secret, "grantType": "password"});
    assert_eq!(
        oidc(&mock, "/token", &unsupported).await.json()["error"],
        "unsupported_grant_type"
    );
}

#[tokio::test]
async fn device_polls_follow_the_pending_count_and_the_script() {
    let mock = MockUpstream::kiro().await;
    mock.set_kiro_device_pending(2);
    mock.oauth()
        .script_device(vec![DeviceStep::SlowDown, DeviceStep::Expire]);
    let (id, secret, code) = start_device_login(&mock).await;
    let mut errors = Vec::new();
    for _ in 0..5 {
        let poll = oidc(&mock, "/token", &device_poll(&id, &secret, &code)).await;
        assert_eq!(poll.status, StatusCode::BAD_REQUEST);
        errors.push(poll.json()["error"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        errors,
        [
            "authorization_pending",
            "authorization_pending",
            "slow_down",
            "expired_token",
            "invalid_grant"
        ]
    );

    mock.set_kiro_device_pending(0);
    let (id, secret, code) = start_device_login(&mock).await;
    let (other, other_secret, _) = start_device_login(&mock).await;
    let stolen = oidc(&mock, "/token", &device_poll(&other, &other_secret, &code)).await;
    assert_eq!(stolen.json()["error"], "invalid_grant");
    let at_once = oidc(&mock, "/token", &device_poll(&id, &secret, &code)).await;
    assert_eq!(at_once.status, StatusCode::OK, "{}", at_once.text);
}

// ------------------------------------------------------------ the answer

#[tokio::test]
async fn an_answer_is_text_events_then_metering_and_context_usage() {
    let mock = MockUpstream::kiro().await;
    mock.enqueue(Scenario::reply("Hello from Kiro.").pieces(3));
    let token = social_token(&mock);
    let answer = generate(&mock, &token, &request("say hello")).await;
    assert!(!answer.header("x-amzn-requestid").is_empty());
    let frames = answer.frames();
    let kinds: Vec<&str> = frames.iter().map(Frame::kind).collect();
    assert_eq!(
        kinds,
        [
            "assistantResponseEvent",
            "assistantResponseEvent",
            "assistantResponseEvent",
            "meteringEvent",
            "contextUsageEvent"
        ]
    );
    for frame in &frames {
        assert_eq!(frame.header(":message-type"), Some("event"));
        assert_eq!(frame.header(":content-type"), Some("application/json"));
    }
    let text: String = frames[..3]
        .iter()
        .map(|frame| str_of(&frame.json(), "content").to_owned())
        .collect();
    assert_eq!(text, "Hello from Kiro.");
    assert_eq!(
        frames[3].json(),
        json!({"unit": "credit", "unitPlural": "credits", "usage": 0.25})
    );
    let context = frames[4].json()["contextUsagePercentage"].as_f64().unwrap();
    assert!(context > 0.0 && context < 1.0, "{context}");
    assert!((mock.kiro_usage() - 0.25).abs() < f64::EPSILON);
    let report = usage(&mock, &token, USAGE_QUERY).await.json();
    assert_eq!(
        report["usageBreakdownList"][0]["currentUsageWithPrecision"],
        0.25
    );

    let recorded = &mock.requests_to("/generateAssistantResponse")[0];
    assert_eq!(recorded.header("x-amzn-codewhisperer-optout"), Some("true"));
    assert_eq!(recorded.json()["profileArn"], KIRO_PROFILE_ARN);
    assert_eq!(
        mock.outcome(0, Duration::from_secs(5)).await,
        subgate_testkit::mock::Outcome::Completed
    );
}

fn tool_call() -> Output {
    Output::ToolCall {
        id: "tooluse_abc123".to_owned(),
        name: "read_file".to_owned(),
        arguments: r#"{"path":"src/main.rs"}"#.to_owned(),
    }
}

fn tool_events(frames: &[Frame]) -> Vec<Value> {
    frames
        .iter()
        .filter(|frame| frame.kind() == "toolUseEvent")
        .map(Frame::json)
        .collect()
}

#[tokio::test]
async fn tool_calls_stream_in_fragments_and_may_come_twice() {
    let mock = MockUpstream::kiro().await;
    let token = social_token(&mock);
    let outputs = vec![Output::Text("Let me look.".to_owned()), tool_call()];
    mock.enqueue(Scenario::outputs(outputs.clone()));
    let frames = generate(&mock, &token, &request("read main"))
        .await
        .frames();
    let events = tool_events(&frames);
    assert!(events.len() >= 3, "{events:?}");
    assert_eq!(
        events[0],
        json!({"toolUseId": "tooluse_abc123", "name": "read_file", "input": ""})
    );
    let input: String = events[1..]
        .iter()
        .map(|event| str_of(event, "input").to_owned())
        .collect();
    assert_eq!(input, r#"{"path":"src/main.rs"}"#);
    assert!(
        events
            .iter()
            .all(|event| event["toolUseId"] == "tooluse_abc123")
    );
    assert_eq!(events.last().unwrap()["stop"], true);
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|event| event.get("stop").is_none())
    );
    assert_eq!(frames.last().unwrap().kind(), "contextUsageEvent");

    mock.enqueue(Scenario::outputs(outputs).kiro(KiroScript::new().duplicate_tool_uses()));
    let frames = generate(&mock, &token, &request("read main"))
        .await
        .frames();
    let events = tool_events(&frames);
    let stops: Vec<&Value> = events
        .iter()
        .filter(|event| event["stop"] == true)
        .collect();
    assert_eq!(stops.len(), 2);
    assert_eq!(stops[1]["toolUseId"], "tooluse_abc123");
    assert_eq!(stops[1]["input"], r#"{"path":"src/main.rs"}"#);
}

#[tokio::test]
async fn truncation_leaves_out_metering_and_may_cut_a_tool_input() {
    let mock = MockUpstream::kiro().await;
    let token = social_token(&mock);
    mock.enqueue(Scenario::reply("cut short").kiro(KiroScript::new().truncated()));
    let frames = generate(&mock, &token, &request("go")).await.frames();
    assert!(
        frames
            .iter()
            .all(|frame| frame.kind() == "assistantResponseEvent")
    );
    assert!(
        mock.kiro_usage().abs() < f64::EPSILON,
        "a truncated answer meters nothing"
    );

    mock.enqueue(Scenario::reply("too long").stop(Stop::MaxTokens));
    let frames = generate(&mock, &token, &request("go")).await.frames();
    assert!(frames.iter().all(|frame| frame.kind() != "meteringEvent"));

    let outputs = vec![Output::Text("Reading.".to_owned()), tool_call()];
    mock.enqueue(Scenario::outputs(outputs).kiro(KiroScript::new().truncated_tool_input()));
    let frames = generate(&mock, &token, &request("go")).await.frames();
    assert_eq!(frames.last().unwrap().kind(), "toolUseEvent");
    let events = tool_events(&frames);
    assert!(events.iter().all(|event| event.get("stop").is_none()));
    let input: String = events
        .iter()
        .map(|event| str_of(event, "input").to_owned())
        .collect();
    assert!(
        !input.is_empty() && serde_json::from_str::<Value>(&input).is_err(),
        "{input}"
    );
}

#[tokio::test]
async fn scripted_numbers_repeats_and_wrapping() {
    let mock = MockUpstream::kiro().await;
    let token = social_token(&mock);
    let script = KiroScript::new()
        .credits(1.5)
        .context_usage(42.5)
        .metadata_token_usage(120, 30, 7, 11)
        .repeat_text_chunk();
    mock.enqueue(Scenario::reply("abcdef").pieces(3).kiro(script));
    let frames = generate(&mock, &token, &request("go")).await.frames();
    let texts: Vec<String> = frames
        .iter()
        .filter(|frame| frame.kind() == "assistantResponseEvent")
        .map(|frame| str_of(&frame.json(), "content").to_owned())
        .collect();
    assert_eq!(texts, ["ab", "ab", "cd", "ef"]);
    let tail: Vec<&str> = frames[4..].iter().map(Frame::kind).collect();
    assert_eq!(
        tail,
        ["meteringEvent", "contextUsageEvent", "metadataEvent"]
    );
    assert_eq!(frames[4].json()["usage"], 1.5);
    assert_eq!(frames[5].json(), json!({"contextUsagePercentage": 42.5}));
    let usage = &frames[6].json()["tokenUsage"];
    assert_eq!(usage["uncachedInputTokens"], 120);
    assert_eq!(usage["cacheReadInputTokens"], 30);
    assert_eq!(usage["cacheWriteInputTokens"], 7);
    assert_eq!(usage["outputTokens"], 11);
    assert_eq!(usage["totalTokens"], 168);
    assert!((mock.kiro_usage() - 1.5).abs() < f64::EPSILON);

    mock.enqueue(
        Scenario::outputs(vec![Output::Text("hi".to_owned()), tool_call()])
            .kiro(KiroScript::new().wrapped()),
    );
    let frames = generate(&mock, &token, &request("go")).await.frames();
    for frame in &frames {
        let payload = frame.json();
        let object = payload.as_object().unwrap();
        assert_eq!(object.len(), 1, "{payload}");
        assert!(object.contains_key(frame.kind()), "{payload}");
    }
    assert_eq!(frames[0].json()["assistantResponseEvent"]["content"], "h");
}

#[tokio::test]
async fn thinking_tags_and_native_reasoning() {
    let mock = MockUpstream::kiro().await;
    let token = social_token(&mock);
    let script = KiroScript::new().thinking("First, the plan.");
    mock.enqueue(Scenario::reply("The answer.").kiro(script));
    let frames = generate(&mock, &token, &request("think")).await.frames();
    let pieces: Vec<String> = frames
        .iter()
        .filter(|frame| frame.kind() == "assistantResponseEvent")
        .map(|frame| str_of(&frame.json(), "content").to_owned())
        .collect();
    assert_eq!(
        pieces.concat(),
        "<thinking>First, the plan.</thinking>\n\nThe answer."
    );
    assert!(
        pieces
            .iter()
            .all(|piece| !piece.contains("<thinking>") && !piece.contains("</thinking>"))
    );

    let reasoning = Output::Thinking {
        text: "weighing options".to_owned(),
        signature: Some("sig-1".to_owned()),
    };
    mock.enqueue(Scenario::outputs(vec![
        reasoning,
        Output::Text("Done.".to_owned()),
    ]));
    let frames = generate(&mock, &token, &request("think")).await.frames();
    let reasoning: Vec<Value> = frames
        .iter()
        .filter(|frame| frame.kind() == "reasoningContentEvent")
        .map(Frame::json)
        .collect();
    let text: String = reasoning
        .iter()
        .map(|event| str_of(event, "text").to_owned())
        .collect();
    assert_eq!(text, "weighing options");
    assert_eq!(reasoning.last().unwrap()["signature"], "sig-1");
    assert!(reasoning[0].get("signature").is_none());
}

#[tokio::test]
async fn failures_inside_the_stream() {
    let mock = MockUpstream::kiro().await;
    let token = social_token(&mock);
    let reply = || Scenario::reply("one two three four").pieces(4);

    mock.enqueue(reply().kiro(KiroScript::new().exception_after(
        1,
        "ThrottlingException",
        "Slow down",
    )));
    let frames = generate(&mock, &token, &request("go")).await.frames();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].header(":message-type"), Some("exception"));
    assert_eq!(
        frames[1].header(":exception-type"),
        Some("ThrottlingException")
    );
    assert_eq!(frames[1].json(), json!({"message": "Slow down"}));

    mock.enqueue(reply().kiro(KiroScript::new().error_after(0, "InternalFailure", "boom")));
    let frames = generate(&mock, &token, &request("go")).await.frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].header(":message-type"), Some("error"));
    assert_eq!(frames[0].header(":error-code"), Some("InternalFailure"));
    assert_eq!(frames[0].payload, b"boom");

    mock.enqueue(reply().kiro(KiroScript::new().invalid_state_after(
        2,
        "INVALID_STATE",
        "bad state",
    )));
    let frames = generate(&mock, &token, &request("go")).await.frames();
    let kinds: Vec<&str> = frames.iter().map(Frame::kind).collect();
    assert_eq!(
        kinds,
        [
            "assistantResponseEvent",
            "assistantResponseEvent",
            "invalidStateEvent"
        ]
    );
    assert_eq!(
        frames[2].json(),
        json!({"reason": "INVALID_STATE", "message": "bad state"})
    );

    mock.enqueue(reply().end(StreamEnd::Error {
        after: 3,
        message: "overloaded",
    }));
    let frames = generate(&mock, &token, &request("go")).await.frames();
    assert_eq!(frames.len(), 4);
    assert_eq!(
        frames[3].header(":exception-type"),
        Some("InternalServerException")
    );
    assert!(mock.kiro_usage().abs() < f64::EPSILON);
}

#[tokio::test]
async fn a_stalled_first_frame_and_frames_cut_across_chunks() {
    let mock = MockUpstream::kiro().await;
    let token = social_token(&mock);
    let script = KiroScript::new()
        .first_frame_delay(Duration::from_millis(300))
        .chunk_bytes(7);
    mock.enqueue(Scenario::reply("Chunked and late.").kiro(script));
    let mut response = http_client()
        .post(format!("{}/generateAssistantResponse", mock.url()))
        .headers(ide_headers(&token))
        .body(request("go").to_string())
        .send()
        .await
        .unwrap();
    let head = Instant::now();
    assert_eq!(response.status(), StatusCode::OK);
    let mut bytes = Vec::new();
    let mut sizes = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        if sizes.is_empty() {
            assert!(
                head.elapsed() >= Duration::from_millis(250),
                "{:?}",
                head.elapsed()
            );
        }
        sizes.push(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    assert!(sizes.iter().all(|size| *size <= 7), "{sizes:?}");
    let frames = read_frames(&bytes);
    assert!(
        sizes.len() > frames.len() * 10,
        "{} chunks for {} frames",
        sizes.len(),
        frames.len()
    );
    let text: String = frames
        .iter()
        .filter(|frame| frame.kind() == "assistantResponseEvent")
        .map(|frame| str_of(&frame.json(), "content").to_owned())
        .collect();
    assert_eq!(text, "Chunked and late.");
}

// ------------------------------------------------------------ validation

/// A valid second turn with a tool round trip and an image.
fn full_request() -> Value {
    json!({
        "conversationState": {
            "chatTriggerType": "MANUAL", "conversationId": "c-1", "agentTaskType": "vibe",
            "currentMessage": {"userInputMessage": {
                "content": "Here is the file.", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR",
                "images": [{"format": "png", "source": {"bytes": "iVBORw0KGgo="}}],
                "userInputMessageContext": {
                    "tools": [{"toolSpecification": {"name": "read_file", "description": "Reads a file.",
                        "inputSchema": {"json": {"type": "object",
                            "properties": {"path": {"type": "string"}, "opts": {"type": "object", "properties": {"n": {"type": "integer"}}}},
                            "required": ["path"]}}}}],
                    "toolResults": [{"toolUseId": "tooluse_1", "status": "success", "content": [{"text": "fn main() {}"}]}],
                },
            }},
            "history": [
                {"userInputMessage": {"content": "Read main.rs", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR"}},
                {"assistantResponseMessage": {"content": "Reading.",
                    "toolUses": [{"toolUseId": "tooluse_1", "name": "read_file", "input": {"path": "main.rs"}}]}},
            ],
        },
        "profileArn": KIRO_PROFILE_ARN,
    })
}

type Mutation = fn(&mut Value);

/// Each body rule, broken one at a time.
const BODY_RULES: [(&str, Mutation); 17] = [
    ("no profileArn", |body| {
        body.as_object_mut().unwrap().remove("profileArn");
    }),
    ("no current message", |body| {
        body["conversationState"]["currentMessage"] = json!({});
    }),
    ("empty content", |body| {
        current(body)["content"] = json!("");
    }),
    ("no modelId", |body| {
        current(body).as_object_mut().unwrap().remove("modelId");
    }),
    ("history starts with the assistant", |body| {
        history(body).remove(0);
    }),
    ("two user messages in a row", |body| {
        history(body)[1] = json!({"userInputMessage": {"content": "again"}});
    }),
    ("history ends with the user", |body| {
        history(body).push(json!({"userInputMessage": {"content": "more"}}));
    }),
    ("empty assistant content", |body| {
        history(body)[1]["assistantResponseMessage"]["content"] = json!("");
    }),
    ("a result for no tool use", |body| {
        context(body)["toolResults"][0]["toolUseId"] = json!("tooluse_9");
    }),
    ("results without tools", |body| {
        context(body).as_object_mut().unwrap().remove("tools");
    }),
    ("an empty tool result", |body| {
        context(body)["toolResults"][0]["content"] = json!([{"text": ""}]);
    }),
    ("additionalProperties", |body| {
        schema(body)["properties"]["opts"]["additionalProperties"] = json!(false);
    }),
    ("empty required", |body| {
        schema(body)["properties"]["opts"]["required"] = json!([]);
    }),
    ("a 65-character tool name", |body| {
        spec(body)["name"] = json!("t".repeat(65));
    }),
    ("an empty description", |body| {
        spec(body)["description"] = json!("");
    }),
    ("a data: URL as image bytes", |body| {
        current(body)["images"][0]["source"]["bytes"] = json!("data:image/png;base64,iVBORw0KGgo=");
    }),
    ("a bmp image", |body| {
        current(body)["images"][0]["format"] = json!("bmp");
    }),
];

fn current(body: &mut Value) -> &mut Value {
    &mut body["conversationState"]["currentMessage"]["userInputMessage"]
}

fn context(body: &mut Value) -> &mut Value {
    &mut current(body)["userInputMessageContext"]
}

fn spec(body: &mut Value) -> &mut Value {
    &mut context(body)["tools"][0]["toolSpecification"]
}

fn schema(body: &mut Value) -> &mut Value {
    &mut spec(body)["inputSchema"]["json"]
}

fn history(body: &mut Value) -> &mut Vec<Value> {
    body["conversationState"]["history"].as_array_mut().unwrap()
}

#[tokio::test]
async fn each_body_rule_gets_improperly_formed_and_keeps_the_queue() {
    let mock = MockUpstream::kiro().await;
    let token = social_token(&mock);
    mock.enqueue(Scenario::reply("the queued answer"));
    let malformed = json!({"message": "Improperly formed request.", "reason": null});
    for (rule, mutate) in BODY_RULES {
        let mut body = full_request();
        mutate(&mut body);
        let answer = generate(&mock, &token, &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{rule}");
        assert_eq!(answer.json(), malformed, "{rule}");
        assert!(!answer.header("x-mock-refusal").is_empty(), "{rule}");
    }
    let not_json = post_generate(&mock, ide_headers(&token), "{not json".to_owned()).await;
    assert_eq!(not_json.json(), malformed);
    let mut unknown = full_request();
    current(&mut unknown)["modelId"] = json!("claude-sonnet-4-20250514");
    let unknown = generate(&mock, &token, &unknown).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unknown.json(),
        json!({"message": "Invalid model. Please select a different model to continue.", "reason": "INVALID_MODEL_ID"})
    );
    assert_eq!(
        mock.requests_to("/generateAssistantResponse").len(),
        BODY_RULES.len() + 2
    );

    let frames = generate(&mock, &token, &full_request()).await.frames();
    let text: String = frames
        .iter()
        .filter(|frame| frame.kind() == "assistantResponseEvent")
        .map(|frame| str_of(&frame.json(), "content").to_owned())
        .collect();
    assert_eq!(text, "the queued answer");
}

#[tokio::test]
async fn headers_and_size_are_checked_before_the_body() {
    let mock = MockUpstream::kiro().await;
    let token = social_token(&mock);
    let body = request("hi").to_string();
    let broken: [(&str, Option<&str>); 4] = [
        ("content-type", Some("text/plain")),
        ("x-amzn-codewhisperer-optout", None),
        ("amz-sdk-invocation-id", None),
        ("user-agent", Some("aws-sdk-js/1.0.27 ua/2.1 lang/js")),
    ];
    for (name, value) in broken {
        let mut headers = ide_headers(&token);
        match value {
            Some(value) => headers.insert(name, HeaderValue::from_static(value)),
            None => headers.remove(name),
        };
        let answer = post_generate(&mock, headers, body.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(
            answer.json()["message"],
            "Improperly formed request.",
            "{name}"
        );
    }
    let mut amz = ide_headers(&token);
    amz.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    assert_eq!(
        post_generate(&mock, amz, body.clone()).await.status,
        StatusCode::OK
    );

    mock.set_kiro_max_body(2_000);
    let long = generate(&mock, &token, &request(&"word ".repeat(500))).await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        long.json(),
        json!({"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"})
    );
    mock.set_kiro_max_body(600_000);
    let default_limit = generate(&mock, &token, &request(&"x".repeat(600_001))).await;
    assert_eq!(
        default_limit.json()["reason"],
        "CONTENT_LENGTH_EXCEEDS_THRESHOLD"
    );
    let mut no_auth = ide_headers(&token);
    no_auth.remove("authorization");
    let no_auth = post_generate(&mock, no_auth, "{not json".to_owned()).await;
    assert_eq!(
        no_auth.status,
        StatusCode::FORBIDDEN,
        "the bearer comes first"
    );
}

#[tokio::test]
async fn quota_throttling_and_server_errors() {
    let mock = MockUpstream::kiro().await;
    let token = social_token(&mock);
    let cases = [
        (
            kiro_monthly_limit(),
            402,
            json!({"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"}),
        ),
        (
            kiro_overage_limit(),
            402,
            json!({"message": "You have reached the limit for overages.", "reason": "OVERAGE_REQUEST_LIMIT_EXCEEDED"}),
        ),
        (
            kiro_throttled(),
            429,
            json!({"message": "Too many requests", "reason": null}),
        ),
        (
            kiro_input_too_long(),
            400,
            json!({"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}),
        ),
    ];
    for (scenario, status, body) in cases {
        mock.enqueue(scenario);
        let answer = generate(&mock, &token, &request("go")).await;
        assert_eq!(answer.status.as_u16(), status);
        assert_eq!(answer.json(), body);
    }
    for status in [500, 503] {
        mock.enqueue(kiro_server_error(status));
        let answer = generate(&mock, &token, &request("go")).await;
        assert_eq!(answer.status.as_u16(), status);
        assert!(answer.json()["message"].is_string());
        assert!(answer.json()["reason"].is_null());
    }
    assert_eq!(
        generate(&mock, &token, &request("go")).await.status,
        StatusCode::OK
    );
}

// ------------------------------------------------------ models and usage

async fn models(mock: &MockUpstream, token: &str, query: &str) -> Answer {
    send(
        http_client()
            .get(format!("{}/ListAvailableModels?{query}", mock.url()))
            .bearer_auth(token),
    )
    .await
}

fn ids(page: &Value) -> Vec<&str> {
    page["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| str_of(model, "modelId"))
        .collect()
}

#[tokio::test]
async fn the_model_list_pages_by_max_results() {
    let mock = MockUpstream::kiro().await;
    let token = social_token(&mock);
    let first = models(
        &mock,
        &token,
        &format!("origin=AI_EDITOR&maxResults=3&profileArn={KIRO_PROFILE_ARN}"),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let first = first.json();
    assert_eq!(first["defaultModel"]["modelId"], "auto");
    assert_eq!(
        ids(&first),
        ["auto", "claude-sonnet-4.5", "claude-haiku-4.5"]
    );
    let sonnet = &first["models"][1];
    assert_eq!(sonnet["modelName"], "Claude Sonnet 4.5");
    assert_eq!(sonnet["tokenLimits"]["maxInputTokens"], 200_000);
    assert_eq!(sonnet["supportedInputTypes"], json!(["TEXT", "IMAGE"]));
    assert_eq!(sonnet["promptCaching"]["supportsPromptCaching"], true);
    assert_eq!(sonnet["rateUnit"], "Credit");
    assert!(sonnet["rateMultiplier"].as_f64().unwrap() > 0.0);
    let next = str_of(&first, "nextToken");
    let second = models(
        &mock,
        &token,
        &format!("origin=AI_EDITOR&maxResults=3&nextToken={next}"),
    )
    .await
    .json();
    assert_eq!(ids(&second), ["claude-opus-4.5"]);
    assert!(second["nextToken"].is_null());
    assert_eq!(
        ids(&models(&mock, &token, "origin=AI_EDITOR").await.json()).len(),
        4
    );

    for bad in [
        "maxResults=3",
        "origin=AI_EDITOR&maxResults=0",
        "origin=AI_EDITOR&nextToken=forged",
    ] {
        let answer = models(&mock, &token, bad).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }

    mock.set_models(&["claude-sonnet-4.5", "deepseek-3.2"]);
    let changed = models(&mock, &token, "origin=AI_EDITOR").await.json();
    assert_eq!(ids(&changed), ["claude-sonnet-4.5", "deepseek-3.2"]);
    assert_eq!(changed["defaultModel"]["modelId"], "claude-sonnet-4.5");
    let mut body = request("hi");
    body["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] =
        json!("deepseek-3.2");
    assert_eq!(generate(&mock, &token, &body).await.status, StatusCode::OK);
    let auto = generate(&mock, &token, &{
        body["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] = json!("auto");
        body
    })
    .await;
    assert_eq!(auto.json()["reason"], "INVALID_MODEL_ID");
}

#[tokio::test]
async fn the_usage_report_adds_base_bonuses_and_trial() {
    let mock = MockUpstream::kiro().await;
    mock.oauth()
        .set_identity("kira@example.com", "user-42", "KIRO PRO+");
    let token = social_token(&mock);
    let default = usage(&mock, &token, USAGE_QUERY).await;
    assert_eq!(default.status, StatusCode::OK, "{}", default.text);
    let default = default.json();
    let breakdown = &default["usageBreakdownList"][0];
    assert_eq!(breakdown["usageLimitWithPrecision"], 1000.0);
    assert_eq!(breakdown["currentUsage"], 0);
    let reset = default["nextDateReset"].as_i64().unwrap();
    assert_eq!(reset % 86_400, 0, "midnight");
    assert!(breakdown.get("freeTrialInfo").is_none());
    assert_eq!(default["userInfo"]["email"], "kira@example.com");
    assert_eq!(
        default["subscriptionInfo"]["subscriptionTitle"],
        "KIRO PRO+"
    );
    assert_eq!(default["overageConfiguration"]["overageStatus"], "ENABLED");

    mock.set_kiro_usage(1125.5, 1000.0, 1_767_225_600);
    mock.add_kiro_bonus(20.0, 100.0, true);
    mock.add_kiro_bonus(5.0, 50.0, false);
    mock.set_kiro_free_trial(10.0, 500.0, false);
    let report = usage(
        &mock,
        &token,
        &format!("{USAGE_QUERY}&profileArn={KIRO_PROFILE_ARN}"),
    )
    .await
    .json();
    assert_eq!(report["nextDateReset"], 1_767_225_600);
    let breakdown = &report["usageBreakdownList"][0];
    assert_eq!(breakdown["currentUsageWithPrecision"], 1125.5);
    assert_eq!(breakdown["currentUsage"], 1125);
    assert_eq!(breakdown["usageLimit"], 1000);
    assert_eq!(breakdown["nextDateReset"], 1_767_225_600);
    let bonuses = breakdown["bonuses"].as_array().unwrap();
    assert_eq!(bonuses.len(), 2);
    assert_eq!(
        (
            bonuses[0]["status"].as_str(),
            bonuses[0]["usageLimit"].as_f64()
        ),
        (Some("ACTIVE"), Some(100.0))
    );
    assert_eq!(bonuses[1]["status"], "EXPIRED");
    let trial = &breakdown["freeTrialInfo"];
    assert_eq!(trial["freeTrialStatus"], "EXPIRED");
    assert_eq!(trial["usageLimitWithPrecision"], 500.0);
    assert_eq!(trial["currentUsageWithPrecision"], 10.0);
    // 1125.5 used of 1000 + 100 (the active bonus): 25.5 over.
    assert_eq!(breakdown["currentOverages"], 25.5);
    assert_eq!(breakdown["overageRate"], 0.04);

    for bad in [
        "origin=AI_EDITOR",
        "resourceType=AGENTIC_REQUEST",
        "origin=AI_EDITOR&resourceType=CHAT",
    ] {
        assert_eq!(
            usage(&mock, &token, bad).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}
