//! Kiro end to end against its mock: a Builder ID device login, imports of
//! Kiro IDE's file (social and `IdC` logins) and of kiro-cli's database
//! through the real binary, every
//! client dialect answered from the AWS event stream, a 403 renewing the
//! token (written back to the IDE's file), tool calls assembled from
//! fragments and duplicates, thinking tags turned into thinking blocks, a
//! truncated answer flagged and announced on the next turn, a first token
//! that never comes sent again, quota failover, and a conversation too
//! large for Kiro refused before it is sent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use subgate_testkit::mock::{
    KIRO_PROFILE_ARN, KiroLogin, KiroScript, MockUpstream, Output, Scenario, kiro_monthly_limit,
};
use subgate_testkit::{TestGateway, http_client};

use crate::process::run;
use crate::subscriptions::{cli_env, every_dialect_for, import_from, subscription_config};
use crate::support::{post_json, sse_data, streamed_text};

const MODEL: &str = "claude-sonnet-4.5";

/// Writes Kiro IDE's token file (and, for an `IdC` login, its client
/// registration beside it) under `home`, as the IDE keeps them.
fn kiro_files(home: &Path, mock: &MockUpstream, login: KiroLogin) -> PathBuf {
    let cache = home.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let token = mock.kiro_token_file(login);
    if let Some(hash) = token["clientIdHash"].as_str() {
        let registration = mock.kiro_client_registration();
        std::fs::write(cache.join(format!("{hash}.json")), registration.to_string()).unwrap();
    }
    let path = cache.join("kiro-auth-token.json");
    std::fs::write(&path, token.to_string()).unwrap();
    path
}

/// A gateway with one Kiro account imported from the IDE's file.
async fn gateway_with(
    mock: &MockUpstream,
    login: KiroLogin,
    extra: &str,
) -> (TestGateway, PathBuf, tempfile::TempDir) {
    let config = format!("{}{extra}", subscription_config("kiro", mock));
    let mut gateway = TestGateway::start(&config).await;
    let home = tempfile::tempdir().unwrap();
    let file = kiro_files(home.path(), mock, login);
    let out = import_from(&gateway, home.path(), "kiro", &file).await;
    assert!(out.contains("of provider `kiro`"), "{out}");
    assert!(out.contains("(linked)"), "{out}");
    gateway.restart().await;
    (gateway, file, home)
}

fn sent_bodies(mock: &MockUpstream) -> Vec<Value> {
    mock.requests_to("/generateAssistantResponse")
        .iter()
        .map(subgate_testkit::mock::RecordedRequest::json)
        .collect()
}

#[tokio::test]
async fn a_social_login_serves_every_dialect_and_renews_on_403() {
    let mock = MockUpstream::kiro().await;
    mock.oauth()
        .set_identity("dev@example.com", "dev", "KIRO PRO");
    let (gateway, file, home) = gateway_with(&mock, KiroLogin::Social, "").await;
    let account = &gateway.engine().accounts()[0];
    assert_eq!(account.email.as_deref(), Some("dev@example.com"));
    assert_eq!(account.plan.as_deref(), Some("KIRO PRO"));
    // `subgate accounts list` shows it, linked to the IDE's file.
    let (config, data) = cli_env(&gateway);
    let (status, out, err) = run(
        home.path(),
        &[
            "accounts",
            "list",
            "--json",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("SUBGATE_DATA_DIR", &data)],
    )
    .await;
    assert!(status.success(), "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    let row = &listed[0];
    assert_eq!(row["provider"], "kiro", "{row}");
    assert_eq!(row["name"], "dev@example.com", "{row}");
    assert_eq!(row["state"], "ready", "{row}");
    assert_eq!(row["linked"], file.display().to_string(), "{row}");

    // The catalog came from ListAvailableModels.
    let models = http_client()
        .get(gateway.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(models.contains("claude-haiku-4.5\""), "{models}");
    assert_eq!(mock.requests_to("/ListAvailableModels").len(), 1);

    every_dialect_for(&gateway, MODEL, "kiro").await;
    let bodies = sent_bodies(&mock);
    assert_eq!(bodies.len(), 4);
    for body in &bodies {
        let current = &body["conversationState"]["currentMessage"]["userInputMessage"];
        assert_eq!(current["modelId"], MODEL);
        assert_eq!(current["origin"], "AI_EDITOR");
        assert!(
            body["profileArn"]
                .as_str()
                .unwrap()
                .starts_with("arn:aws:codewhisperer:")
        );
    }
    let sent = &mock.requests_to("/generateAssistantResponse")[0];
    assert!(sent.header("user-agent").unwrap().contains("KiroIDE-"));

    // A client's dated name reaches Kiro as its dotted id.
    let body = json!({"model": "claude-sonnet-4-5-20250929", "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}]});
    let (status, headers, bytes) = post_json(&gateway.url("/v1/messages"), &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers["x-subgate-provider"], "kiro");
    let last = sent_bodies(&mock).pop().unwrap();
    assert_eq!(
        last["conversationState"]["currentMessage"]["userInputMessage"]["modelId"],
        MODEL
    );

    // The token dies early: Kiro answers 403, the login is renewed once,
    // the request goes again, and the renewed tokens reach the IDE's file.
    mock.oauth().expire_access_tokens();
    every_dialect_for(&gateway, MODEL, "kiro").await;
    assert_eq!(mock.oauth().refresh_count(), 1);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let refresh = &mock.requests_to("/refreshToken")[0];
    assert_ne!(written["refreshToken"], refresh.json()["refreshToken"]);
    assert_eq!(written["authMethod"], "social");
}

#[tokio::test]
async fn a_builder_id_device_login_registers_a_client_and_serves() {
    let mock = MockUpstream::kiro().await;
    mock.oauth()
        .set_identity("builder@example.com", "builder", "KIRO FREE");
    mock.set_kiro_device_pending(2);
    let mut gateway = TestGateway::start(&subscription_config("kiro", &mock)).await;
    let home = tempfile::tempdir().unwrap();
    let (config, data) = cli_env(&gateway);
    let (status, out, err) = run(
        home.path(),
        &[
            "login",
            "kiro",
            "--no-browser",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("SUBGATE_DATA_DIR", &data)],
    )
    .await;
    assert!(status.success(), "{out}{err}");
    assert!(err.contains("enter the code"), "{err}");
    assert!(
        out.contains("account `builder@example.com` of provider `kiro` added"),
        "{out}"
    );
    let register = mock.requests_to("/client/register")[0].json();
    assert_eq!(register["clientType"], "public");
    let started = mock.requests_to("/device_authorization")[0].json();
    assert_eq!(started["startUrl"], "https://view.awsapps.com/start");
    let client = started["clientId"].clone();
    assert!(
        client.as_str().is_some_and(|id| !id.is_empty()),
        "{started}"
    );
    // Two pending polls, then the tokens.
    assert_eq!(mock.requests_to("/token").len(), 3);
    gateway.restart().await;
    every_dialect_for(&gateway, MODEL, "kiro").await;
    // The login kept its client: the refresh presents it.
    mock.oauth().expire_access_tokens();
    every_dialect_for(&gateway, MODEL, "kiro").await;
    let refresh = mock.requests_to("/token").pop().unwrap().json();
    assert_eq!(refresh["grantType"], "refresh_token");
    assert_eq!(refresh["clientId"], client);
}

#[tokio::test]
async fn an_idc_login_refreshes_at_sso_oidc_with_its_client() {
    let mock = MockUpstream::kiro().await;
    let (gateway, _file, _home) = gateway_with(&mock, KiroLogin::Idc, "").await;
    mock.oauth().expire_access_tokens();
    every_dialect_for(&gateway, MODEL, "kiro").await;
    let refreshes = mock.requests_to("/token");
    assert_eq!(refreshes.len(), 1);
    let body = refreshes[0].json();
    assert_eq!(body["grantType"], "refresh_token");
    assert!(body["clientId"].is_string() && body["clientSecret"].is_string());
    assert!(mock.requests_to("/refreshToken").is_empty());
}

#[tokio::test]
async fn a_kiro_cli_database_is_linked_and_renewed_tokens_go_back_into_it() {
    let mock = MockUpstream::kiro().await;
    let mut gateway = TestGateway::start(&subscription_config("kiro", &mock)).await;
    let home = tempfile::tempdir().unwrap();
    let database = home.path().join("data.sqlite3");
    let rows = [
        ("auth_kv", "kirocli:odic:token", mock.kiro_cli_token()),
        (
            "auth_kv",
            "kirocli:odic:device-registration",
            mock.kiro_cli_registration(),
        ),
        (
            "state",
            "api.codewhisperer.profile",
            json!({"arn": KIRO_PROFILE_ARN}),
        ),
    ];
    write_database(&database, &rows).await;
    let out = import_from(&gateway, home.path(), "kiro-cli", &database).await;
    assert!(out.contains("(linked)"), "{out}");
    gateway.restart().await;
    every_dialect_for(&gateway, MODEL, "kiro").await;
    assert_eq!(sent_bodies(&mock)[0]["profileArn"], KIRO_PROFILE_ARN);

    mock.oauth().expire_access_tokens();
    every_dialect_for(&gateway, MODEL, "kiro").await;
    let refreshes = mock.requests_to("/token");
    assert_eq!(refreshes.len(), 1);
    // The row now holds the rotated refresh token, in kiro-cli's spelling,
    // its other fields kept.
    let row = read_row(&database, "kirocli:odic:token").await;
    let spent = refreshes[0].json()["refreshToken"].clone();
    assert!(row["refresh_token"].is_string(), "{row}");
    assert_ne!(row["refresh_token"], spent);
    assert_eq!(row["start_url"], rows[0].2["start_url"]);
    assert!(row.get("refreshToken").is_none(), "{row}");
}

async fn read_row(path: &Path, key: &str) -> Value {
    use sqlx::Connection as _;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let text: String = sqlx::query_scalar("SELECT value FROM auth_kv WHERE key = ?")
        .bind(key)
        .fetch_one(&mut connection)
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn write_database(path: &Path, rows: &[(&str, &str, Value)]) {
    use sqlx::Connection as _;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    for create in [
        "CREATE TABLE auth_kv (key TEXT PRIMARY KEY, value TEXT)",
        "CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT)",
    ] {
        sqlx::query(create).execute(&mut connection).await.unwrap();
    }
    for (table, key, value) in rows {
        let insert = match *table {
            "auth_kv" => "INSERT INTO auth_kv (key, value) VALUES (?, ?)",
            _ => "INSERT INTO state (key, value) VALUES (?, ?)",
        };
        sqlx::query(insert)
            .bind(*key)
            .bind(value.to_string())
            .execute(&mut connection)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn tool_fragments_and_duplicates_become_one_call() {
    let mock = MockUpstream::kiro().await;
    let (gateway, _file, _home) = gateway_with(&mock, KiroLogin::Social, "").await;
    let arguments = r#"{"path":"src/main.rs","lines":[1,2,3]}"#;
    mock.enqueue(
        Scenario::outputs(vec![
            Output::Text("Reading it.".to_owned()),
            Output::ToolCall {
                id: "tooluse_1".to_owned(),
                name: "read_file".to_owned(),
                arguments: arguments.to_owned(),
            },
        ])
        .kiro(KiroScript::new().duplicate_tool_uses().chunk_bytes(7)),
    );
    let body = json!({"model": MODEL, "stream": true,
        "messages": [{"role": "user", "content": "read main"}],
        "tools": [{"type": "function", "function": {"name": "read_file", "description": "",
            "parameters": {"type": "object", "additionalProperties": false,
                "properties": {"path": {"type": "string"}}, "required": []}}}]});
    let (status, _, bytes) = post_json(&gateway.url("/v1/chat/completions"), &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let chunks: Vec<Value> = sse_data(&bytes)
        .iter()
        .filter_map(|data| serde_json::from_str(data).ok())
        .collect();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    let starts = calls.iter().filter(|call| call["id"].is_string()).count();
    assert_eq!(starts, 1, "{calls:?}");
    let joined: String = calls
        .iter()
        .filter_map(|call| call["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&joined).unwrap(),
        serde_json::from_str::<Value>(arguments).unwrap()
    );
    let finish = chunks
        .iter()
        .find_map(|chunk| chunk["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("tool_calls"));
    assert_eq!(streamed_text(&bytes), "Reading it.");
    // The schema reached Kiro cleaned of what it refuses.
    let sent = sent_bodies(&mock).pop().unwrap();
    let tools = &sent["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
        ["tools"];
    let schema = tools[0]["toolSpecification"]["inputSchema"]["json"].to_string();
    assert!(!schema.contains("additionalProperties"), "{schema}");
}

#[tokio::test]
async fn thinking_tags_become_thinking_blocks() {
    let mock = MockUpstream::kiro().await;
    let (gateway, _file, _home) = gateway_with(&mock, KiroLogin::Social, "").await;
    mock.enqueue(
        Scenario::reply("The answer is 4.").kiro(KiroScript::new().thinking("2 and 2 make 4")),
    );
    let body = json!({"model": MODEL, "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "2+2?"}]});
    let (status, _, bytes) = post_json(&gateway.url("/v1/messages"), &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["content"][0]["type"], "thinking", "{answer}");
    assert_eq!(answer["content"][0]["thinking"], "2 and 2 make 4");
    assert_eq!(answer["content"][1]["type"], "text");
    assert!(
        !answer["content"][1]["text"]
            .as_str()
            .unwrap()
            .contains("<thinking>")
    );
    // The request asked the model for the tags.
    let sent = sent_bodies(&mock).pop().unwrap();
    let content = sent["conversationState"]["currentMessage"]["userInputMessage"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        content.contains("<thinking_mode>enabled</thinking_mode>"),
        "{content}"
    );
    assert!(
        content.contains("<max_thinking_length>1024</max_thinking_length>"),
        "{content}"
    );
}

#[tokio::test]
async fn a_streamed_anthropic_answer_carries_thinking_deltas() {
    let mock = MockUpstream::kiro().await;
    let (gateway, _file, _home) = gateway_with(&mock, KiroLogin::Social, "").await;
    mock.enqueue(
        Scenario::reply("Four.").kiro(KiroScript::new().thinking("two plus two").chunk_bytes(5)),
    );
    let body = json!({"model": MODEL, "max_tokens": 2048, "stream": true,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": "2+2?"}]});
    let (status, _, bytes) = post_json(&gateway.url("/v1/messages"), &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let events: Vec<Value> = String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str(data).ok())
        .collect();
    let delta = |kind: &str, field: &str| -> String {
        events
            .iter()
            .filter(|event| event["delta"]["type"] == kind)
            .filter_map(|event| event["delta"][field].as_str())
            .collect()
    };
    assert_eq!(delta("thinking_delta", "thinking"), "two plus two");
    assert_eq!(delta("text_delta", "text").trim(), "Four.");
    assert_eq!(events.last().unwrap()["type"], "message_stop");
}

#[tokio::test]
async fn an_exception_mid_stream_reaches_the_client_as_an_error_event() {
    let mock = MockUpstream::kiro().await;
    let (gateway, _file, _home) = gateway_with(&mock, KiroLogin::Social, "").await;
    mock.enqueue(
        Scenario::reply("one two three four")
            .pieces(4)
            .kiro(KiroScript::new().exception_after(2, "ThrottlingException", "Too many tokens")),
    );
    let body = json!({"model": MODEL, "stream": true,
        "messages": [{"role": "user", "content": "count"}]});
    let (status, _, bytes) = post_json(&gateway.url("/v1/chat/completions"), &body).await;
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&bytes);
    let error = sse_data(&bytes)
        .iter()
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .find(|event| event["error"].is_object())
        .unwrap_or_else(|| panic!("no error event: {text}"));
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Too many tokens"),
        "{error}"
    );
}

#[tokio::test]
async fn a_truncated_answer_ends_as_length_and_is_announced_next_turn() {
    let mock = MockUpstream::kiro().await;
    let (gateway, _file, _home) = gateway_with(&mock, KiroLogin::Social, "").await;
    mock.enqueue(Scenario::reply("The first half of a long").kiro(KiroScript::new().truncated()));
    let first = json!({"model": MODEL, "messages": [{"role": "user", "content": "write a lot"}]});
    let (status, _, bytes) = post_json(&gateway.url("/v1/chat/completions"), &first).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["choices"][0]["finish_reason"], "length", "{answer}");
    let text = answer["choices"][0]["message"]["content"].as_str().unwrap();

    let next = json!({"model": MODEL, "messages": [
        {"role": "user", "content": "write a lot"},
        {"role": "assistant", "content": text},
        {"role": "user", "content": "go on"}]});
    let (status, _, _) = post_json(&gateway.url("/v1/chat/completions"), &next).await;
    assert_eq!(status, 200);
    let sent = sent_bodies(&mock).pop().unwrap().to_string();
    assert!(sent.contains("[System Notice]"), "{sent}");
    // Once only.
    let (status, _, _) = post_json(&gateway.url("/v1/chat/completions"), &next).await;
    assert_eq!(status, 200);
    assert!(
        !sent_bodies(&mock)
            .pop()
            .unwrap()
            .to_string()
            .contains("[System Notice]")
    );
}

#[tokio::test]
async fn a_silent_answer_is_sent_again_after_the_first_token_timeout() {
    let mock = MockUpstream::kiro().await;
    let (gateway, _file, _home) = gateway_with(
        &mock,
        KiroLogin::Social,
        "first_token_timeout = \"300ms\"\n",
    )
    .await;
    mock.enqueue(
        Scenario::reply("late").kiro(KiroScript::new().first_frame_delay(Duration::from_secs(3))),
    );
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    let (status, headers, bytes) = post_json(&gateway.url("/v1/chat/completions"), &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert!(String::from_utf8_lossy(&bytes).contains("Hello"));
    assert_eq!(headers["x-subgate-attempts"], "1");
    assert_eq!(mock.requests_to("/generateAssistantResponse").len(), 2);
}

#[tokio::test]
async fn the_monthly_limit_rests_one_account_and_the_other_answers() {
    let mock = MockUpstream::kiro().await;
    // getUsageLimits: base credits plus an active bonus; the reset it names
    // is when a used-up month ends. Set before any gateway starts, so its
    // first poll (at start) reads the same.
    let reset = 4_102_444_800; // 2100-01-01
    mock.set_kiro_usage(250.0, 1000.0, reset);
    mock.add_kiro_bonus(0.0, 500.0, true);
    mock.oauth()
        .set_identity("first@example.com", "first", "KIRO PRO");
    let (mut gateway, _file, _home) = gateway_with(&mock, KiroLogin::Social, "").await;
    mock.oauth()
        .set_identity("second@example.com", "second", "KIRO FREE");
    let home = tempfile::tempdir().unwrap();
    let file = kiro_files(home.path(), &mock, KiroLogin::Idc);
    let out = import_from(&gateway, home.path(), "kiro", &file).await;
    assert!(out.contains("added account"), "{out}");
    gateway.restart().await;
    assert_eq!(gateway.engine().accounts().len(), 2);

    gateway.engine().refresh_quotas().await;
    for account in gateway.engine().accounts() {
        let monthly = account.tightest_quota().unwrap();
        assert_eq!(monthly.window, "monthly");
        assert!((monthly.limit - 1500.0).abs() < 1e-9, "{monthly:?}");
        assert!((monthly.remaining - 1250.0).abs() < 1e-9, "{monthly:?}");
        assert_eq!(monthly.resets_at, Some(reset * 1000));
    }

    mock.enqueue(kiro_monthly_limit());
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    let (status, headers, bytes) = post_json(&gateway.url("/v1/chat/completions"), &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers["x-subgate-attempts"], "2");
    let rests: Vec<&str> = gateway
        .engine()
        .accounts()
        .iter()
        .map(|account| account.state)
        .collect();
    assert!(rests.contains(&"quota_exhausted"), "{rests:?}");
    assert!(rests.contains(&"ready"), "{rests:?}");
    let rested = gateway
        .engine()
        .accounts()
        .into_iter()
        .find(|account| account.state == "quota_exhausted")
        .unwrap();
    assert_eq!(rested.rests[0].until, reset * 1000, "{rested:?}");
}

#[tokio::test]
async fn a_conversation_too_large_for_kiro_is_refused_before_it_is_sent() {
    let mock = MockUpstream::kiro().await;
    let (gateway, _file, _home) = gateway_with(&mock, KiroLogin::Social, "").await;
    let huge = "word ".repeat(130_000);
    let body =
        json!({"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": huge}]});
    let (status, _, bytes) = post_json(&gateway.url("/v1/messages"), &body).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&bytes));
    let error: Value = serde_json::from_slice(&bytes).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("kB"), "{message}");
    assert!(mock.requests_to("/generateAssistantResponse").is_empty());
}

#[tokio::test]
async fn a_device_login_is_completed_through_the_management_api() {
    let mock = MockUpstream::kiro().await;
    mock.oauth()
        .set_identity("api@example.com", "api", "KIRO FREE");
    mock.set_kiro_device_pending(1);
    let mut gateway = TestGateway::start(&subscription_config("kiro", &mock)).await;
    let token = subgate_engine::admin_token(&gateway.data_dir()).unwrap();
    let post = |path: &str, body: Option<Value>| {
        let mut request = http_client()
            .post(gateway.url(path))
            .header("authorization", format!("Bearer {token}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let started = post("/admin/api/logins", Some(json!({"provider": "kiro"})))
        .await
        .unwrap();
    assert_eq!(started.status(), 201);
    let started: Value = started.json().await.unwrap();
    assert_eq!(started["method"], "device", "{started}");
    assert!(started["user_code"].is_string(), "{started}");
    let flow = started["flow"].as_str().unwrap().to_owned();
    let complete = format!("/admin/api/logins/{flow}/complete");
    // A call the client gives up on leaves the flow for the next one.
    let cut = http_client()
        .post(gateway.url(&complete))
        .header("authorization", format!("Bearer {token}"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(cut.is_err_and(|error| error.is_timeout()));
    // No code: the call waits for the approval (the mock's, after one
    // pending poll). The gateway puts the flow back as it notices the
    // client left.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let saved = loop {
        let answer = post(&complete, None).await.unwrap();
        if answer.status() != 400 || tokio::time::Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(saved.status(), 201);
    let saved: Value = saved.json().await.unwrap();
    assert_eq!(saved["name"], "api@example.com", "{saved}");
    // Used up.
    let again = post(&complete, None).await.unwrap();
    assert_eq!(again.status(), 400);
    gateway.restart().await;
    every_dialect_for(&gateway, MODEL, "kiro").await;
}
