//! Keys and tokens never reach a log line or an error body, whatever the
//! log level or format.

use pretty_assertions::assert_eq;
use serde_json::json;
use subgate_testkit::mock::{MockUpstream, Scenario};

use crate::process::Server;
use crate::support::{chat_body, post_json};

const SECRET: &str = "sk-live-5ecret0123456789abcdef";

async fn exercise(format: &str) -> (String, Vec<String>) {
    let home = tempfile::tempdir().unwrap();
    let mock = MockUpstream::openai_chat().await;
    mock.require_key(SECRET);
    let config = home.path().join("subgate.toml");
    std::fs::write(
        &config,
        format!(
            "[log]\nlevel = \"trace\"\n[routing]\nauth_cooldown = \"1ms\"\n[[providers]]\nkind = \"openai-compatible\"\nname = \"mock\"\nbase_url = \"{}\"\napi_key_env = \"MOCK_KEY\"\nheaders = {{ \"x-api-key\" = \"{SECRET}\" }}\n",
            mock.url()
        ),
    )
    .unwrap();
    let server = Server::start(
        home.path(),
        &["--config", config.to_str().unwrap(), "--log-format", format],
        &[("MOCK_KEY", SECRET)],
    )
    .await;
    let url = server.url("/v1/chat/completions");
    let mut bodies = Vec::new();

    let (status, _, body) = post_json(&url, &chat_body("mock-small", false)).await;
    assert_eq!(status, 200);
    bodies.push(String::from_utf8_lossy(&body).into_owned());
    let mut streamed = chat_body("mock-small", true);
    streamed["stream_options"] = json!({"include_usage": true});
    let (status, _, body) = post_json(&url, &streamed).await;
    assert_eq!(status, 200);
    bodies.push(String::from_utf8_lossy(&body).into_owned());

    // A careless upstream echoes the credential in its error body.
    mock.enqueue(Scenario::error(
        401,
        r#"{"error":{"message":"Incorrect API key provided: {authorization}","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
    ));
    let (status, _, body) = post_json(&url, &chat_body("mock-small", false)).await;
    assert_eq!(status, 401);
    let text = String::from_utf8_lossy(&body).into_owned();
    assert!(
        text.contains("Incorrect API key provided: Bearer sk-l…[redacted]"),
        "{text}"
    );
    bodies.push(text);

    mock.enqueue(Scenario::error(
        500,
        "internal failure for key {authorization}",
    ));
    let (status, _, body) = post_json(&url, &chat_body("mock-small", true)).await;
    assert_eq!(status, 500);
    bodies.push(String::from_utf8_lossy(&body).into_owned());

    server.signal("TERM").await;
    let (status, out, err) = server.wait().await;
    assert!(status.success());
    (format!("{out}{err}"), bodies)
}

fn assert_clean(logs: &str, bodies: &[String]) {
    assert!(
        logs.contains("Request finished"),
        "the test must see real log output:\n{logs}"
    );
    // Trace level from every crate, our own and the HTTP stacks'.
    assert!(
        logs.lines().count() > 20,
        "expected verbose logs, got:\n{logs}"
    );
    assert!(
        !logs.contains(SECRET),
        "a log line holds the secret:\n{}",
        logs.lines()
            .filter(|line| line.contains(SECRET))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        !logs.contains("5ecret0123"),
        "a log line holds part of the secret"
    );
    for body in bodies {
        assert!(
            !body.contains(SECRET) && !body.contains("5ecret0123"),
            "a response holds the secret: {body}"
        );
    }
}

#[tokio::test]
async fn secrets_stay_out_of_pretty_logs_and_error_bodies() {
    let (logs, bodies) = exercise("pretty").await;
    assert_clean(&logs, &bodies);
}

#[tokio::test]
async fn secrets_stay_out_of_json_logs() {
    let (logs, bodies) = exercise("json").await;
    assert!(
        logs.lines().any(|line| line.starts_with('{')),
        "JSON format writes JSON lines"
    );
    assert_clean(&logs, &bodies);
}
