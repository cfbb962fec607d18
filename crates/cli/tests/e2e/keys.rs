//! Client keys end to end: open on loopback until a key exists, then
//! required in each way clients send one and refused in each client's
//! dialect; model, provider and account scopes; expiry; revocation at once
//! (and from another process within the sync interval); the CLI's
//! commands; and a network address refused without keys.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use subgate_engine::{BudgetPeriod, KeyLimits, KeyScopes, NewKey};
use subgate_testkit::mock::{MockUpstream, Scenario};
use subgate_testkit::{TestGateway, http_client};

use crate::process::run;
use crate::subscriptions::cli_env;

/// Two OpenAI-compatible entries, `one` (models `small`, `large`; accounts
/// `one#1` and `one#2`) and `two` (model `other`).
async fn gateway(mock: &MockUpstream) -> TestGateway {
    let config = format!(
        "[[providers]]\nkind = \"openai-compatible\"\nname = \"one\"\nbase_url = \"{url}\"\napi_keys = [\"k1\", \"k2\"]\nmodels = [\"small\", \"large\"]\n\
         [[providers]]\nkind = \"openai-compatible\"\nname = \"two\"\nbase_url = \"{url}\"\nmodels = [\"other\"]\n",
        url = mock.url()
    );
    TestGateway::start(&config).await
}

/// Posts a chat request for `model` with `headers`; the status and body.
async fn chat(
    gateway: &TestGateway,
    model: &str,
    headers: &[(&str, &str)],
    query: &str,
) -> (u16, Value) {
    let mut request = http_client()
        .post(gateway.url(&format!("/v1/chat/completions{query}")))
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn make(
    gateway: &TestGateway,
    name: &str,
    scopes: KeyScopes,
    expires_at: Option<i64>,
) -> String {
    gateway
        .engine()
        .create_key(NewKey {
            name: name.to_owned(),
            scopes,
            expires_at,
            ..NewKey::default()
        })
        .await
        .unwrap()
        .secret
}

#[tokio::test]
async fn keys_are_required_once_one_exists_and_read_every_way_clients_send_them() {
    let mock = MockUpstream::openai().await;
    let gateway = gateway(&mock).await;
    // Open on loopback while no key exists; a foreign key is ignored.
    assert_eq!(chat(&gateway, "small", &[], "").await.0, 200);
    let foreign = [("authorization", "Bearer sk-whatever")];
    assert_eq!(chat(&gateway, "small", &foreign, "").await.0, 200);

    let secret = make(&gateway, "alice", KeyScopes::default(), None).await;
    assert!(secret.starts_with("sg-"));
    let (status, body) = chat(&gateway, "small", &[], "").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client key")
    );
    assert_eq!(chat(&gateway, "small", &foreign, "").await.0, 401);

    let bearer = format!("Bearer {secret}");
    for headers in [
        vec![("authorization", bearer.as_str())],
        vec![("x-api-key", secret.as_str())],
        vec![("x-goog-api-key", secret.as_str())],
    ] {
        assert_eq!(
            chat(&gateway, "small", &headers, "").await.0,
            200,
            "{headers:?}"
        );
    }
    assert_eq!(
        chat(&gateway, "small", &[], &format!("?key={secret}"))
            .await
            .0,
        200
    );

    // Each dialect refuses in its own shape.
    let anthropic = http_client()
        .post(gateway.url("/v1/messages"))
        .json(&json!({"model": "small", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 401);
    let body: Value = anthropic.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    let gemini = http_client()
        .post(gateway.url("/v1beta/models/small:generateContent"))
        .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(gemini.status(), 401);
    let body: Value = gemini.json().await.unwrap();
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED", "{body}");
    // Health stays open.
    let health = http_client()
        .get(gateway.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn scopes_limit_models_providers_and_accounts() {
    let mock = MockUpstream::openai().await;
    let gateway = gateway(&mock).await;
    let models_only = make(
        &gateway,
        "small-only",
        KeyScopes {
            models: vec!["sm*".to_owned()],
            ..KeyScopes::default()
        },
        None,
    )
    .await;
    let auth = format!("Bearer {models_only}");
    let headers = [("authorization", auth.as_str())];
    let (status, body) = chat(&gateway, "small", &headers, "").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = chat(&gateway, "large", &headers, "").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("small-only")
    );
    // The listing shows what the key may use.
    let listed: Value = http_client()
        .get(gateway.url("/v1/models"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|model| model["id"].as_str())
        .collect();
    assert_eq!(ids, ["small"]);

    let provider = make(
        &gateway,
        "two-only",
        KeyScopes {
            providers: vec!["two".to_owned()],
            ..KeyScopes::default()
        },
        None,
    )
    .await;
    let auth = format!("Bearer {provider}");
    let headers = [("authorization", auth.as_str())];
    assert_eq!(chat(&gateway, "other", &headers, "").await.0, 200);
    assert_eq!(chat(&gateway, "small", &headers, "").await.0, 403);

    let account = make(
        &gateway,
        "second-account",
        KeyScopes {
            accounts: vec!["one#2".to_owned()],
            ..KeyScopes::default()
        },
        None,
    )
    .await;
    let auth = format!("Bearer {account}");
    let headers = [("authorization", auth.as_str())];
    for _ in 0..3 {
        let response = http_client()
            .post(gateway.url("/v1/chat/completions"))
            .header("authorization", &auth)
            .json(&json!({"model": "small", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-subgate-account"], "one#2");
    }
    assert_eq!(chat(&gateway, "other", &headers, "").await.0, 403);
}

#[tokio::test]
async fn expired_and_revoked_keys_stop_at_once() {
    let mock = MockUpstream::openai().await;
    let gateway = gateway(&mock).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let soon = i64::try_from(now).unwrap() + 300;
    let short = make(&gateway, "short", KeyScopes::default(), Some(soon)).await;
    let auth = format!("Bearer {short}");
    assert_eq!(
        chat(&gateway, "small", &[("authorization", &auth)], "")
            .await
            .0,
        200
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = chat(&gateway, "small", &[("authorization", &auth)], "").await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );

    let doomed = make(&gateway, "doomed", KeyScopes::default(), None).await;
    let auth = format!("Bearer {doomed}");
    assert_eq!(
        chat(&gateway, "small", &[("authorization", &auth)], "")
            .await
            .0,
        200
    );
    let revoked = gateway.engine().revoke_key("doomed").await.unwrap();
    assert_eq!(revoked.state, "revoked");
    assert_eq!(
        chat(&gateway, "small", &[("authorization", &auth)], "")
            .await
            .0,
        401
    );
}

/// `subgate ARGS --config …` against the gateway's config and data.
pub(crate) async fn subgate(
    gateway: &TestGateway,
    home: &Path,
    args: &[&str],
) -> (bool, String, String) {
    let (config, data) = cli_env(gateway);
    let mut args = args.to_vec();
    args.extend(["--config", config.to_str().unwrap()]);
    let (status, out, err) = run(home, &args, &[("SUBGATE_DATA_DIR", &data)]).await;
    (status.success(), out, err)
}

#[tokio::test]
async fn the_cli_makes_lists_rotates_and_revokes_keys_a_running_gateway_obeys() {
    let mock = MockUpstream::openai().await;
    let gateway = gateway(&mock).await;
    let home = tempfile::tempdir().unwrap();
    let (ok, out, err) = subgate(
        &gateway,
        home.path(),
        &[
            "keys",
            "create",
            "--name",
            "bob",
            "--models",
            "small,lar*",
            "--expires",
            "30d",
            "--json",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(created["scopes"]["models"], json!(["small", "lar*"]));
    assert!(created["expires_at"].is_number());
    // The running gateway reads the new key from the store.
    let auth = format!("Bearer {secret}");
    eventually(&gateway, "large", &auth, 200).await;

    let (ok, out, _) = subgate(&gateway, home.path(), &["keys", "list"]).await;
    assert!(ok);
    assert!(out.contains("bob") && out.contains("active"), "{out}");
    assert!(!out.contains(&secret), "a secret in the listing: {out}");

    let (ok, out, err) = subgate(&gateway, home.path(), &["keys", "rotate", "bob", "--json"]).await;
    assert!(ok, "{out}{err}");
    let rotated: Value = serde_json::from_str(&out).unwrap();
    let fresh = format!("Bearer {}", rotated["secret"].as_str().unwrap());
    eventually(&gateway, "small", &auth, 401).await;
    eventually(&gateway, "small", &fresh, 200).await;

    let (ok, out, err) = subgate(&gateway, home.path(), &["keys", "revoke", "bob"]).await;
    assert!(ok, "{out}{err}");
    eventually(&gateway, "small", &fresh, 401).await;
    let (ok, out, _) = subgate(&gateway, home.path(), &["keys", "show", "bob"]).await;
    assert!(ok);
    assert!(out.contains("state: revoked"), "{out}");
}

/// Retries a chat request for `model` with `auth` until it answers
/// `status`, for up to 5 s (the gateway reads keys from the store every
/// 2 s).
async fn eventually(gateway: &TestGateway, model: &str, auth: &str, status: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (got, body) = chat(gateway, model, &[("authorization", auth)], "").await;
        if got == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {got}, not {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_network_address_without_keys_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let (status, out, err) = run(
        home.path(),
        &["serve", "--host", "0.0.0.0", "--port", "0"],
        &[("SUBGATE_DATA_DIR", data.to_str().unwrap())],
    )
    .await;
    assert!(!status.success(), "{out}{err}");
    assert!(err.contains("without client keys"), "{err}");
}

async fn make_limited(gateway: &TestGateway, name: &str, limits: KeyLimits) -> String {
    let issued = gateway
        .engine()
        .create_key(NewKey {
            name: name.to_owned(),
            limits,
            ..NewKey::default()
        })
        .await
        .unwrap();
    format!("Bearer {}", issued.secret)
}

#[tokio::test]
async fn requests_per_minute_and_tokens_per_minute_are_enforced_with_a_wait() {
    let mock = MockUpstream::openai().await;
    let gateway = gateway(&mock).await;
    let rpm = make_limited(
        &gateway,
        "two-a-minute",
        KeyLimits {
            rpm: Some(2),
            ..KeyLimits::default()
        },
    )
    .await;
    for _ in 0..2 {
        assert_eq!(
            chat(&gateway, "small", &[("authorization", &rpm)], "")
                .await
                .0,
            200
        );
    }
    let refused = http_client()
        .post(gateway.url("/v1/chat/completions"))
        .header("authorization", &rpm)
        .json(&json!({"model": "small", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((55..=60).contains(&wait), "retry-after {wait}");
    let body: Value = refused.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("limit of 2 per minute"), "{message}");

    // A tokens-per-minute limit counts what answers used: the mock's
    // answer is over 5 tokens, so the next request waits.
    let tpm = make_limited(
        &gateway,
        "few-tokens",
        KeyLimits {
            tpm: Some(5),
            ..KeyLimits::default()
        },
    )
    .await;
    assert_eq!(
        chat(&gateway, "small", &[("authorization", &tpm)], "")
            .await
            .0,
        200
    );
    let (status, body) = chat(&gateway, "small", &[("authorization", &tpm)], "").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tokens"),
        "{body}"
    );
    // Other keys are not affected.
    let free = make_limited(&gateway, "free", KeyLimits::default()).await;
    assert_eq!(
        chat(&gateway, "small", &[("authorization", &free)], "")
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_concurrency_limit_holds_while_a_stream_is_open() {
    let mock = MockUpstream::openai().await;
    let gateway = gateway(&mock).await;
    let one = make_limited(
        &gateway,
        "one-at-a-time",
        KeyLimits {
            concurrency: Some(1),
            ..KeyLimits::default()
        },
    )
    .await;
    mock.enqueue(
        Scenario::reply("slow and steady wins")
            .pieces(4)
            .chunk_delay(Duration::from_millis(300)),
    );
    let stream = http_client()
        .post(gateway.url("/v1/chat/completions"))
        .header("authorization", &one)
        .json(&json!({"model": "small", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let (status, body) = chat(&gateway, "small", &[("authorization", &one)], "").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in flight"),
        "{body}"
    );
    // The stream ends; the slot is free again.
    let text = stream.text().await.unwrap();
    assert!(text.contains("[DONE]"), "{text}");
    assert_eq!(
        chat(&gateway, "small", &[("authorization", &one)], "")
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn usage_adds_up_per_key_and_model() {
    let mock = MockUpstream::openai().await;
    let gateway = gateway(&mock).await;
    let alice = make_limited(&gateway, "alice", KeyLimits::default()).await;
    let bob = make_limited(&gateway, "bob", KeyLimits::default()).await;
    for (auth, model) in [(&alice, "small"), (&alice, "large"), (&bob, "small")] {
        assert_eq!(
            chat(&gateway, model, &[("authorization", auth)], "")
                .await
                .0,
            200
        );
    }
    // A refused request is recorded too, against no key.
    assert_eq!(chat(&gateway, "small", &[], "").await.0, 401);
    let home = tempfile::tempdir().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let by_key = loop {
        let (ok, out, err) =
            subgate(&gateway, home.path(), &["usage", "--by", "key", "--json"]).await;
        assert!(ok, "{out}{err}");
        let lines: Value = serde_json::from_str(&out).unwrap();
        let requests: i64 = lines
            .as_array()
            .unwrap()
            .iter()
            .map(|line| line["requests"].as_i64().unwrap())
            .sum();
        if requests == 4 || tokio::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let line = |name: &str| {
        by_key
            .as_array()
            .unwrap()
            .iter()
            .find(|line| line["group"] == name)
            .unwrap_or_else(|| panic!("no {name}: {by_key}"))
            .clone()
    };
    assert_eq!(line("alice")["requests"], 2, "{by_key}");
    assert_eq!(line("bob")["requests"], 1, "{by_key}");
    assert!(
        line("alice")["output_tokens"].as_i64().unwrap() > 0,
        "{by_key}"
    );
    assert_eq!(line("-")["failures"], 1, "{by_key}");

    let (ok, out, _) = subgate(
        &gateway,
        home.path(),
        &["usage", "--by", "model", "--since", "1h"],
    )
    .await;
    assert!(ok);
    assert!(
        out.contains("MODEL") && out.contains("large") && out.contains("total"),
        "{out}"
    );
}

#[tokio::test]
async fn a_budget_refuses_once_spent_and_survives_a_restart() {
    let mock = MockUpstream::openai().await;
    // A price file makes the mock's `small` dear: $1000 per million input
    // and output tokens.
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.json");
    std::fs::write(
        &prices,
        r#"{"mock": {"models": {"small": {"cost": {"input": 1000, "output": 1000}}}}}"#,
    )
    .unwrap();
    let config = format!(
        "[pricing]\nfile = \"{}\"\n[[providers]]\nkind = \"openai-compatible\"\nname = \"one\"\nbase_url = \"{}\"\nmodels = [\"small\"]\n",
        prices.display(),
        mock.url()
    );
    let mut gateway = TestGateway::start(&config).await;
    let budget = make_limited(
        &gateway,
        "thrifty",
        KeyLimits {
            budget_usd: Some(0.05),
            budget_period: Some(BudgetPeriod::Day),
            ..KeyLimits::default()
        },
    )
    .await;
    let mut served = 0;
    let refusal = loop {
        let (status, body) = chat(&gateway, "small", &[("authorization", &budget)], "").await;
        if status != 200 {
            assert_eq!(status, 429, "{body}");
            break body;
        }
        served += 1;
        assert!(served < 50, "the budget never ran out");
    };
    assert!(served >= 1);
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(message.contains("daily budget of $0.05"), "{message}");
    assert!(message.contains("renews"), "{message}");

    // The spend is read back from the records after a restart.
    gateway.restart().await;
    let (status, body) = chat(&gateway, "small", &[("authorization", &budget)], "").await;
    assert_eq!(status, 429, "{body}");
    let home = tempfile::tempdir().unwrap();
    let (ok, out, err) = subgate(&gateway, home.path(), &["usage", "--by", "key", "--json"]).await;
    assert!(ok, "{err}");
    let lines: Value = serde_json::from_str(&out).unwrap();
    let thrifty = lines
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["group"] == "thrifty")
        .unwrap();
    assert!(thrifty["cost_usd"].as_f64().unwrap() >= 0.05, "{thrifty}");
}

/// The admin token of a test gateway, as `subgate admin token` prints it.
pub(crate) async fn admin_token(gateway: &TestGateway) -> String {
    let home = tempfile::tempdir().unwrap();
    let (ok, out, err) = subgate(gateway, home.path(), &["admin", "token"]).await;
    assert!(ok, "{err}");
    let token = out.trim().to_owned();
    assert!(token.starts_with("sga-"), "{token}");
    token
}

/// A management API call: status and JSON body.
pub(crate) async fn admin(
    gateway: &TestGateway,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http_client().request(method, gateway.url(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_management_api_makes_and_revokes_keys_for_the_admin_token_only() {
    use reqwest::Method;
    let mock = MockUpstream::openai().await;
    let gateway = gateway(&mock).await;
    let token = admin_token(&gateway).await;
    let near_miss = format!("{token}x");
    for wrong in [None, Some("sga-wrong"), Some(near_miss.as_str())] {
        let (status, body) = admin(&gateway, Method::GET, "/admin/api/keys", wrong, None).await;
        assert_eq!(status, 401, "{wrong:?}");
        assert_eq!(body["error"]["type"], "authentication_error");
    }
    let token = Some(token.as_str());
    let new = json!({"name": "carol", "models": ["small"], "rpm": 10});
    let (status, created) =
        admin(&gateway, Method::POST, "/admin/api/keys", token, Some(new)).await;
    assert_eq!(status, 201, "{created}");
    let secret = format!("Bearer {}", created["secret"].as_str().unwrap());
    assert_eq!(created["limits"]["rpm"], 10);
    assert_eq!(
        chat(&gateway, "small", &[("authorization", &secret)], "")
            .await
            .0,
        200
    );
    assert_eq!(
        chat(&gateway, "large", &[("authorization", &secret)], "")
            .await
            .0,
        403
    );

    let (_, listed) = admin(&gateway, Method::GET, "/admin/api/keys", token, None).await;
    assert_eq!(listed[0]["name"], "carol");
    assert!(listed[0].get("secret").is_none(), "{listed}");

    let path = "/admin/api/keys/carol/revoke";
    let (status, revoked) = admin(&gateway, Method::POST, path, token, None).await;
    assert_eq!((status, &revoked["state"]), (200, &json!("revoked")));
    assert_eq!(
        chat(&gateway, "small", &[("authorization", &secret)], "")
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn the_management_api_refuses_bad_requests_and_reports() {
    use reqwest::Method;
    let mock = MockUpstream::openai().await;
    let gateway = gateway(&mock).await;
    let token = admin_token(&gateway).await;
    let token = Some(token.as_str());
    let carol = json!({"name": "carol"});
    assert_eq!(
        admin(
            &gateway,
            Method::POST,
            "/admin/api/keys",
            token,
            Some(carol.clone())
        )
        .await
        .0,
        201
    );
    for (method, path, body, status) in [
        (Method::POST, "/admin/api/keys", Some(carol), 409),
        (
            Method::POST,
            "/admin/api/keys",
            Some(json!({"name": "dave", "rpm": "many"})),
            400,
        ),
        (
            Method::POST,
            "/admin/api/keys",
            Some(json!({"name": "bad name"})),
            400,
        ),
        (Method::GET, "/admin/api/keys/nobody", None, 404),
        (Method::GET, "/admin/api/usage?by=colour", None, 400),
        (Method::GET, "/admin/api/usage?since=1h&by=model", None, 200),
        (Method::GET, "/admin/api/health", None, 200),
    ] {
        let (got, answer) = admin(&gateway, method, path, token, body).await;
        assert_eq!(got, status, "{path}: {answer}");
        if status >= 400 {
            assert!(answer["error"]["message"].is_string(), "{path}: {answer}");
        }
    }
    let (_, accounts) = admin(&gateway, Method::GET, "/admin/api/accounts", token, None).await;
    assert_eq!(accounts.as_array().unwrap().len(), 3, "{accounts}");
    // The config shows every entry and no secret.
    let (status, config) = admin(&gateway, Method::GET, "/admin/api/config", token, None).await;
    assert_eq!(status, 200);
    let one = &config["providers"][0];
    assert_eq!(one["name"], "one", "{config}");
    assert_eq!(one["accounts"][1]["name"], "one#2");
    assert_eq!(one["accounts"][0]["key"], "[redacted]", "{config}");
    assert!(!config.to_string().contains("\"k1\""), "{config}");
}

/// Whether `value` fits `schema`, in the part of JSON Schema the generated
/// document uses: `$ref`, `allOf`/`oneOf`/`anyOf`, `type` (one or a
/// list), `enum`, `properties`/`required` and `items`.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return conforms(doc, &doc["components"]["schemas"][name], value, at);
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        conforms(doc, part, value, at)?;
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(choices) = schema[key].as_array()
            && !choices
                .iter()
                .any(|choice| conforms(doc, choice, value, at).is_ok())
        {
            return Err(format!("{at}: {value} fits none of {key}"));
        }
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fits = allowed.is_empty()
        || allowed.contains(&kind)
        || (kind == "integer" && allowed.contains(&"number"));
    if !fits {
        return Err(format!("{at}: {value} is {kind}, not {allowed:?}"));
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {options:?}"));
    }
    for name in schema["required"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap_or_default();
        if value.get(name).is_none() {
            return Err(format!("{at}: `{name}` is missing from {value}"));
        }
    }
    if let (Some(properties), Some(object)) = (schema["properties"].as_object(), value.as_object())
    {
        for (name, field) in object {
            if let Some(property) = properties.get(name) {
                conforms(doc, property, field, &format!("{at}.{name}"))?;
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            conforms(doc, items, item, &format!("{at}[{index}]"))?;
        }
    }
    Ok(())
}

/// Checks an answer against what the document declares for it.
fn declared(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "the document declares no body for {method} {path} {status}"
    );
    if let Err(mismatch) = conforms(doc, schema, body, "$") {
        panic!("{method} {path} {status}: {mismatch}");
    }
}

/// The account route's template in the document.
const ACCOUNT: &str = "/admin/api/accounts/{name}";

#[tokio::test]
async fn the_management_api_answers_as_its_openapi_document_says() {
    use reqwest::Method;
    let mock = MockUpstream::openai().await;
    let gateway = gateway(&mock).await;
    let (status, doc) = admin(&gateway, Method::GET, "/admin/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0", "{doc}");
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
    assert_eq!(
        doc["paths"].as_object().unwrap().len(),
        18,
        "{}",
        doc["paths"]
    );
    // The checker refuses what does not fit.
    let failure = json!({"$ref": "#/components/schemas/Failure"});
    assert!(conforms(&doc, &failure, &json!({"status": "ok"}), "$").is_err());
    let info = json!({"$ref": "#/components/schemas/KeyInfo"});
    let wrong = json!({"id": "x", "name": 5, "prefix": "sg-", "state": "active",
        "scopes": {}, "limits": {}, "created_at": 1});
    assert!(conforms(&doc, &info, &wrong, "$").is_err());

    let token = admin_token(&gateway).await;
    let token = Some(token.as_str());
    let (status, body) = admin(&gateway, Method::GET, "/admin/api/keys", None, None).await;
    declared(&doc, "get", "/admin/api/keys", status, &body);
    let new = json!({"name": "erin", "models": ["small"], "budget_usd": 5.0, "expires_in": 3600});
    let (status, body) = admin(&gateway, Method::POST, "/admin/api/keys", token, Some(new)).await;
    assert_eq!(status, 201);
    declared(&doc, "post", "/admin/api/keys", status, &body);
    let secret = format!("Bearer {}", body["secret"].as_str().unwrap());
    assert_eq!(
        chat(&gateway, "small", &[("authorization", &secret)], "")
            .await
            .0,
        200
    );
    let dup = json!({"name": "erin"});
    let (status, body) = admin(&gateway, Method::POST, "/admin/api/keys", token, Some(dup)).await;
    declared(&doc, "post", "/admin/api/keys", status, &body);
    for (method, path, template) in [
        (Method::GET, "/admin/api/keys", "/admin/api/keys"),
        (
            Method::GET,
            "/admin/api/keys/erin",
            "/admin/api/keys/{name}",
        ),
        (
            Method::GET,
            "/admin/api/keys/nobody",
            "/admin/api/keys/{name}",
        ),
        (
            Method::POST,
            "/admin/api/keys/erin/rotate",
            "/admin/api/keys/{name}/rotate",
        ),
        (
            Method::POST,
            "/admin/api/keys/erin/revoke",
            "/admin/api/keys/{name}/revoke",
        ),
        (Method::GET, "/admin/api/accounts", "/admin/api/accounts"),
        (Method::GET, "/admin/api/quota", "/admin/api/quota"),
        (Method::GET, "/admin/api/usage?by=key", "/admin/api/usage"),
        (
            Method::GET,
            "/admin/api/usage?by=colour",
            "/admin/api/usage",
        ),
        (Method::GET, "/admin/api/health", "/admin/api/health"),
        (Method::GET, "/admin/api/models", "/admin/api/models"),
        (Method::GET, "/admin/api/config", "/admin/api/config"),
        (Method::GET, "/admin/api/accounts/one%231", ACCOUNT),
        (Method::GET, "/admin/api/accounts/nobody", ACCOUNT),
        (
            Method::POST,
            "/admin/api/accounts/one%231/disable",
            "/admin/api/accounts/{name}/disable",
        ),
        (
            Method::POST,
            "/admin/api/accounts/one%231/reset",
            "/admin/api/accounts/{name}/reset",
        ),
        (
            Method::POST,
            "/admin/api/accounts/one%231/refresh",
            "/admin/api/accounts/{name}/refresh",
        ),
        (Method::DELETE, "/admin/api/accounts/one%231", ACCOUNT),
    ] {
        let name = method.as_str().to_lowercase();
        let (status, body) = admin(&gateway, method, path, token, None).await;
        declared(&doc, &name, template, status, &body);
    }
}

#[tokio::test]
async fn usage_is_exact_after_concurrent_streams_and_a_graceful_stop() {
    let mock = MockUpstream::openai().await;
    let mut gateway = gateway(&mock).await;
    let key = make_limited(&gateway, "streamer", KeyLimits::default()).await;
    let body = json!({"model": "small", "stream": true,
        "messages": [{"role": "user", "content": "count to four"}]});
    mock.set_default(
        Scenario::reply("one two three four")
            .pieces(4)
            .chunk_delay(Duration::from_millis(150)),
    );
    // One stream alone, for what one costs in tokens.
    let alone = http_client()
        .post(gateway.url("/v1/chat/completions"))
        .header("authorization", &key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(alone.contains("[DONE]"));
    let one = gateway.usage(1).await;
    let tokens = one[0].input_tokens + one[0].output_tokens;
    assert!(tokens > 0, "{one:?}");

    // Eight slow streams, and a graceful stop while they run: each ends
    // whole, and each is recorded.
    let url = gateway.url("/v1/chat/completions");
    let streams = (0..8).map(|_| async {
        let response = http_client()
            .post(&url)
            .header("authorization", &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    });
    let stop = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        gateway.stop().await;
    };
    let (texts, ()) = tokio::join!(futures_util::future::join_all(streams), stop);
    for text in &texts {
        assert!(text.contains("[DONE]"), "{text}");
    }
    gateway.restart().await;
    let rows = gateway.usage(9).await;
    let mine: Vec<_> = rows
        .iter()
        .filter(|row| row.client_key_id.is_some())
        .collect();
    assert_eq!(mine.len(), 9, "{rows:?}");
    let total: i64 = mine
        .iter()
        .map(|row| row.input_tokens + row.output_tokens)
        .sum();
    assert_eq!(total, 9 * tokens);
    // The report says the same.
    let lines = gateway
        .engine()
        .usage_report(0, subgate_engine::UsageGroup::Key)
        .await
        .unwrap();
    let streamer = lines.iter().find(|line| line.group == "streamer").unwrap();
    assert_eq!(streamer.requests, 9);
    assert_eq!(streamer.input_tokens + streamer.output_tokens, 9 * tokens);
}
