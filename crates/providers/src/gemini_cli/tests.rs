use http::StatusCode;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::session::Login;
use crate::setup::SetupStep;

fn gemini() -> GeminiCli {
    let mut config = crate::common::test_config(
        subgate_core::ProviderKind::GeminiCli,
        "http://127.0.0.1:9",
        &[],
        Vec::new(),
    );
    config.accounts.clear();
    GeminiCli::new(&config)
}

fn login() -> Login {
    Login {
        access_token: "ya29.a".into(),
        email: Some("dev@example.com".into()),
        project: Some("proj-1".into()),
        ..Login::default()
    }
}

#[test]
fn requests_are_wrapped_for_code_assist() {
    let account = Account::login("id".into(), "dev".into(), 0, login());
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "additionalProperties": false, "properties": {}}}]}]});
    let request = gemini().generate_request(
        &account,
        "gemini-2.5-pro",
        true,
        body.to_string().as_bytes(),
    );
    assert_eq!(
        request.url.as_str(),
        "http://127.0.0.1:9/v1internal:streamGenerateContent?alt=sse"
    );
    assert_eq!(request.headers["authorization"], "Bearer ya29.a");
    assert_eq!(request.headers["accept"], "text/event-stream");
    let sent: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(sent["model"], "gemini-2.5-pro");
    assert_eq!(sent["project"], "proj-1");
    assert_eq!(sent["request"]["contents"], body["contents"]);
    assert!(
        sent["request"]["tools"][0]["functionDeclarations"][0]["parameters"]
            .get("additionalProperties")
            .is_none()
    );
    let count = gemini().count_request(&account, "gemini-2.5-pro", body.to_string().as_bytes());
    assert_eq!(
        count.url.as_str(),
        "http://127.0.0.1:9/v1internal:countTokens"
    );
    let sent: Value = serde_json::from_slice(&count.body).unwrap();
    assert_eq!(sent["request"]["model"], "models/gemini-2.5-pro");
}

#[test]
fn a_new_account_is_onboarded_and_its_project_kept() {
    let gemini = gemini();
    let fresh = Login {
        project: None,
        ..login()
    };
    let load = gemini.first_setup(&fresh).unwrap();
    assert_eq!(load.step, SetupStep::LoadCodeAssist);
    assert_eq!(
        load.request.url.as_str(),
        "http://127.0.0.1:9/v1internal:loadCodeAssist"
    );
    let (fresh, onboard) = gemini
        .read_setup(
            fresh,
            &load.step,
            StatusCode::OK,
            br#"{"allowedTiers":[{"id":"free-tier","isDefault":true},{"id":"standard-tier"}]}"#,
        )
        .unwrap();
    let onboard = onboard.unwrap();
    let body: Value = serde_json::from_slice(&onboard.request.body).unwrap();
    assert_eq!(body["tierId"], "free-tier");
    let (fresh, poll) = gemini
        .read_setup(
            fresh,
            &onboard.step,
            StatusCode::OK,
            br#"{"name":"operations/op-1","done":false}"#,
        )
        .unwrap();
    let poll = poll.unwrap();
    assert_eq!(
        poll.request.url.as_str(),
        "http://127.0.0.1:9/v1internal/operations/op-1"
    );
    let (done, next) = gemini
        .read_setup(
            fresh,
            &poll.step,
            StatusCode::OK,
            br#"{"name":"operations/op-1","done":true,"response":{"cloudaicompanionProject":{"id":"proj-9","name":"p"}}}"#,
        )
        .unwrap();
    assert!(next.is_none());
    assert_eq!(done.project.as_deref(), Some("proj-9"));
    assert!(gemini.first_setup(&done).is_none());
    let onboarded = gemini
        .read_setup(
            Login {
                project: None,
                ..login()
            },
            &SetupStep::LoadCodeAssist,
            StatusCode::OK,
            br#"{"currentTier":{"id":"free-tier"},"cloudaicompanionProject":"proj-2"}"#,
        )
        .unwrap();
    assert_eq!(onboarded.0.project.as_deref(), Some("proj-2"));
    assert!(onboarded.1.is_none());
}

#[test]
fn the_user_quota_is_read_per_model() {
    let body = json!({"buckets": [
        {"modelId": "gemini-2.5-pro", "tokenType": "REQUESTS", "remainingFraction": 0.25,
            "resetTime": "2026-01-02T00:00:00Z"},
        {"modelId": "gemini-2.5-flash", "tokenType": "REQUESTS", "remainingFraction": 0.0,
            "resetTime": "2026-01-02T00:00:00Z"},
        {"tokenType": "REQUESTS", "remainingFraction": 0.5}]});
    let quota = parse_usage(body.to_string().as_bytes()).unwrap();
    assert_eq!(quota.windows.len(), 2);
    assert_eq!(quota.windows[0].name, "gemini-2.5-pro requests");
    assert!((quota.windows[0].remaining - 25.0).abs() < 1e-9);
    // A used-up model rests that model, not the account.
    assert_eq!(quota.exhausted_until(), None);
    let exhausted: Vec<(&str, i64)> = quota.exhausted_models().collect();
    assert_eq!(exhausted, [("gemini-2.5-flash", 1_767_312_000_000)]);
}
