//! What requests cost: prices downloaded from a models.dev-format URL (and
//! kept for restarts and the CLI), cache reads and writes priced apart,
//! and the quota overview of the management API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use subgate_testkit::mock::{MockUpstream, Scenario};
use subgate_testkit::{TestGateway, http_client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::keys::{admin, admin_token, subgate};

/// A static file host on loopback: every GET gets `body`, and is counted.
async fn price_host(body: &str) -> (String, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api.json", listener.local_addr().unwrap());
    let hits = Arc::new(Mutex::new(0));
    let counted = hits.clone();
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    #[expect(
        clippy::disallowed_methods,
        reason = "the price host lives as long as the test's runtime"
    )]
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0; 1];
            while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            *counted.lock().unwrap() += 1;
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (url, hits)
}

/// `$/M` prices for the mock's model `m`: input 1000, output 2000, cache
/// reads 100, cache writes 1250.
const PRICES: &str = r#"{"host": {"models": {"m": {"cost": {"input": 1000, "output": 2000, "cache_read": 100, "cache_write": 1250}}}}}"#;

/// The `cost_usd` of the `by model` usage line for `m`, once the gateway
/// has written `requests` records.
fn model_line(lines: &Value) -> Value {
    lines
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["group"] == "m")
        .unwrap_or_else(|| panic!("no line for m: {lines}"))
        .clone()
}

#[tokio::test]
async fn downloaded_prices_price_cache_tokens_apart_in_the_api_and_the_cli() {
    let (url, hits) = price_host(PRICES).await;
    let mock = MockUpstream::anthropic().await;
    mock.set_default(Scenario::reply("cached answer").cache_tokens(2000, 1000));
    let config = format!(
        "[pricing]\nurl = \"{url}\"\n[[providers]]\nkind = \"anthropic\"\nname = \"a\"\nbase_url = \"{}\"\napi_keys = [\"k\"]\nmodels = [\"m\"]\n",
        mock.url()
    );
    let mut gateway = TestGateway::start(&config).await;
    // The download runs at start, off the request path.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while *hits.lock().unwrap() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never downloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let response = http_client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let row = gateway.usage(1).await.remove(0);
    assert_eq!(
        (row.cache_read_tokens, row.cache_write_tokens),
        (2000, 1000)
    );
    let uncached = row.input_tokens - 3000;
    assert!(uncached > 0, "{row:?}");
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let expected = (uncached as f64 * 1000.0
        + 2000.0 * 100.0
        + 1000.0 * 1250.0
        + row.output_tokens as f64 * 2000.0)
        / 1e6;

    let token = admin_token(&gateway).await;
    let (status, lines) = admin(
        &gateway,
        Method::GET,
        "/admin/api/usage?by=model",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{lines}");
    let line = model_line(&lines);
    let cost = line["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - expected).abs() < 1e-9,
        "{cost} ≠ {expected}: {line}"
    );
    assert_eq!(line["cache_read_tokens"], 2000, "{line}");

    // The CLI, a process of its own, prices with the kept download.
    let home = tempfile::tempdir().unwrap();
    let (ok, out, err) =
        subgate(&gateway, home.path(), &["usage", "--by", "model", "--json"]).await;
    assert!(ok, "{err}");
    let cli_cost = model_line(&serde_json::from_str(&out).unwrap())["cost_usd"]
        .as_f64()
        .unwrap();
    assert!(
        (cli_cost - expected).abs() < 1e-9,
        "{cli_cost} ≠ {expected}"
    );

    // So does a restart, before (and whatever) its own download.
    gateway.restart().await;
    let (_, lines) = admin(
        &gateway,
        Method::GET,
        "/admin/api/usage?by=model",
        Some(&token),
        None,
    )
    .await;
    let cost = model_line(&lines)["cost_usd"].as_f64().unwrap();
    assert!((cost - expected).abs() < 1e-9, "{cost} ≠ {expected}");
}

#[tokio::test]
async fn the_quota_overview_counts_ready_and_resting_accounts() {
    let mock = MockUpstream::openai().await;
    let config = format!(
        "[[providers]]\nkind = \"openai-compatible\"\nname = \"one\"\nbase_url = \"{}\"\napi_keys = [\"k1\", \"k2\"]\nmodels = [\"m\"]\n",
        mock.url()
    );
    let gateway = TestGateway::start(&config).await;
    // One account is told to wait a minute.
    mock.enqueue(
        Scenario::error(
            429,
            r#"{"error": {"message": "slow down", "type": "rate_limit_error"}}"#,
        )
        .header("retry-after", "60"),
    );
    let response = http_client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "answered by the other account");
    let token = admin_token(&gateway).await;
    let (status, overview) = admin(
        &gateway,
        Method::GET,
        "/admin/api/quota",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{overview}");
    assert_eq!(
        overview.as_array().unwrap().len(),
        1,
        "only providers with accounts: {overview}"
    );
    let one = &overview[0];
    // A rate limit rests the model on that account, not the account.
    assert_eq!(
        (&one["provider"], &one["accounts"], &one["ready"]),
        (&json!("one"), &json!(2), &json!(2)),
        "{overview}"
    );
    let rest = &one["model_rests"][0];
    assert_eq!(
        (&rest["model"], &rest["accounts"]),
        (&json!("m"), &json!(1)),
        "{overview}"
    );
    let back = rest["until"].as_i64().unwrap();
    let now = subgate_engine::now_millis();
    assert!(
        (now + 50_000..=now + 61_000).contains(&back),
        "back in about a minute: {back} vs {now}"
    );
    let (status, _) = admin(&gateway, Method::GET, "/admin/api/quota", None, None).await;
    assert_eq!(status, 401);
}
