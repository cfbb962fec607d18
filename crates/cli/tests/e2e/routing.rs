//! Routing over several accounts and providers: the order each strategy
//! tries accounts in, rests and their length, failover before the first
//! byte, session affinity, concurrency caps, quota, and aliases that cross
//! providers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pretty_assertions::assert_eq;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use subgate_testkit::TestGateway;
use subgate_testkit::mock::{MockUpstream, Scenario};

use crate::support::post_json;

const RATE_LIMITED: &str = r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;

fn now_millis() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A gateway over one OpenAI-compatible provider `pool` with one account
/// per key, serving model `m`; `extra` goes into the provider entry.
async fn pool(mock: &MockUpstream, strategy: &str, keys: &[&str], extra: &str) -> TestGateway {
    let keys: Vec<String> = keys.iter().map(|key| format!("\"{key}\"")).collect();
    TestGateway::start(&format!(
        "[routing]\nsession_affinity = false\n\n[[providers]]\nkind = \"openai-compatible\"\nname = \"pool\"\nbase_url = \"{}\"\nmodels = [\"m\"]\nstrategy = \"{strategy}\"\napi_keys = [{}]\n{extra}\n",
        mock.url(),
        keys.join(", ")
    ))
    .await
}

/// One Chat Completions request for `model` whose conversation starts with
/// `text`.
async fn ask(gateway: &TestGateway, model: &str, text: &str) -> (u16, HeaderMap, Value) {
    let body = json!({"model": model, "messages": [{"role": "user", "content": text}]});
    let (status, headers, bytes) = post_json(&gateway.url("/v1/chat/completions"), &body).await;
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// The bearer keys of the generation requests a mock received, in order.
fn keys_seen(mock: &MockUpstream, path: &str) -> Vec<String> {
    mock.requests_to(path)
        .iter()
        .map(|request| {
            request
                .header("authorization")
                .unwrap_or_default()
                .trim_start_matches("Bearer ")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn each_strategy_tries_accounts_in_its_order() {
    for (strategy, expected) in [
        ("round-robin", ["k1", "k2", "k3", "k1", "k2", "k3"]),
        ("least-used", ["k1", "k2", "k3", "k1", "k2", "k3"]),
        ("fill-first", ["k1"; 6]),
        ("priority", ["k1"; 6]),
    ] {
        let mock = MockUpstream::openai_chat().await;
        let gateway = pool(&mock, strategy, &["k1", "k2", "k3"], "").await;
        for turn in 0..6 {
            let (status, headers, _) = ask(&gateway, "m", &format!("question {turn}")).await;
            assert_eq!(status, 200, "{strategy}");
            assert_eq!(header(&headers, "x-subgate-provider"), "pool");
            assert_eq!(header(&headers, "x-subgate-attempts"), "1");
        }
        assert_eq!(
            keys_seen(&mock, "/v1/chat/completions"),
            expected,
            "{strategy}"
        );
        let names: Vec<Option<String>> = gateway
            .usage(6)
            .await
            .into_iter()
            .map(|row| row.account_name)
            .collect();
        let expected_names: Vec<Option<String>> = expected
            .iter()
            .map(|key| Some(format!("pool#{}", &key[1..])))
            .collect();
        assert_eq!(names, expected_names, "{strategy}");
    }
}

#[tokio::test]
async fn priority_and_fill_first_move_on_only_when_the_first_rests() {
    for strategy in ["priority", "fill-first"] {
        let mock = MockUpstream::openai_chat().await;
        let gateway = pool(&mock, strategy, &["k1", "k2", "k3"], "").await;
        mock.enqueue(Scenario::error(429, RATE_LIMITED).header("retry-after", "60"));
        for turn in 0..4 {
            let (status, _, _) = ask(&gateway, "m", &format!("question {turn}")).await;
            assert_eq!(status, 200, "{strategy}");
        }
        let seen = keys_seen(&mock, "/v1/chat/completions");
        assert_eq!(seen[0], "k1", "{strategy}");
        assert!(
            !seen[1..].contains(&"k1".to_owned()),
            "{strategy}: {seen:?}"
        );
        if strategy == "fill-first" {
            // The first rests: the next one fills.
            assert_eq!(seen[1..], ["k2"; 4], "{strategy}");
        } else {
            // The primary rests: the others take turns.
            assert!(
                seen[2..].windows(2).all(|pair| pair[0] != pair[1]),
                "{strategy}: {seen:?}"
            );
        }
    }
}

#[tokio::test]
async fn least_used_avoids_the_account_that_is_busy() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = pool(&mock, "least-used", &["k1", "k2", "k3"], "").await;
    mock.enqueue(Scenario::reply("slow").first_byte_delay(Duration::from_millis(800)));
    let url = gateway.url("/v1/chat/completions");
    let slow_body = json!({"model": "m", "messages": [{"role": "user", "content": "slow"}]});
    let slow = post_json(&url, &slow_body);
    let quick = async {
        while mock.requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for turn in 0..2 {
            let (status, _, _) = ask(&gateway, "m", &format!("quick {turn}")).await;
            assert_eq!(status, 200);
        }
    };
    let ((status, _, _), ()) = tokio::join!(slow, quick);
    assert_eq!(status, 200);
    assert_eq!(keys_seen(&mock, "/v1/chat/completions"), ["k1", "k2", "k3"]);
}

#[tokio::test]
async fn a_429_rests_exactly_that_account_for_exactly_that_long() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = pool(&mock, "priority", &["k1", "k2"], "").await;
    mock.enqueue(Scenario::error(429, RATE_LIMITED).header("retry-after-ms", "1500"));
    let before = now_millis();
    let (status, headers, body) = ask(&gateway, "m", "first").await;
    let after = now_millis();
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "x-subgate-account"), "pool#2");
    assert_eq!(header(&headers, "x-subgate-attempts"), "2");

    let accounts = gateway.engine().accounts();
    assert_eq!(accounts[1].rests, []);
    let rests = &accounts[0].rests;
    assert_eq!(rests.len(), 1, "{rests:?}");
    assert_eq!(
        (rests[0].state, rests[0].model.as_str()),
        ("cooling_down", "m")
    );
    assert!(
        (before + 1500..=after + 1500).contains(&rests[0].until),
        "rest ends at {}, expected {}..={}",
        rests[0].until,
        before + 1500,
        after + 1500
    );

    // Resting: the other account serves; nothing is sent to the first.
    let (status, headers, _) = ask(&gateway, "m", "second").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-subgate-account"), "pool#2");
    assert_eq!(header(&headers, "x-subgate-attempts"), "1");

    // Its time has passed: it is the primary again.
    let wait = rests[0].until - now_millis() + 50;
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
    let (status, headers, _) = ask(&gateway, "m", "third").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-subgate-account"), "pool#1");
    assert_eq!(
        keys_seen(&mock, "/v1/chat/completions"),
        ["k1", "k2", "k2", "k1"]
    );
}

#[tokio::test]
async fn server_errors_and_first_byte_timeouts_fail_over() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = pool(
        &mock,
        "fill-first",
        &["k1", "k2"],
        "first_byte_timeout = \"300ms\"",
    )
    .await;
    mock.enqueue(Scenario::error(503, "upstream connect error"));
    let (status, headers, _) = ask(&gateway, "m", "first").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-subgate-attempts"), "2");
    assert_eq!(header(&headers, "x-subgate-account"), "pool#2");

    // One fault is a blip: the first account is tried again, and times out.
    mock.enqueue(Scenario::reply("too late").first_byte_delay(Duration::from_secs(3)));
    let (status, headers, body) = ask(&gateway, "m", "second").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "x-subgate-attempts"), "2");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the mock upstream."
    );

    // Two faults in a row: now it rests, and the next request goes
    // straight to the other account.
    let (status, headers, _) = ask(&gateway, "m", "third").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-subgate-attempts"), "1");
    assert_eq!(header(&headers, "x-subgate-account"), "pool#2");
    assert_eq!(
        keys_seen(&mock, "/v1/chat/completions"),
        ["k1", "k2", "k1", "k2", "k2"]
    );
    let rests = &gateway.engine().accounts()[0].rests;
    assert_eq!(rests[0].state, "upstream_faulty");
    assert_eq!(rests[0].failures, 2);
}

#[tokio::test]
async fn a_refused_connection_fails_over_to_the_alias_next_target() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = TestGateway::start(&format!(
        r#"
        [aliases]
        smart = ["dead/m", "live/m"]

        [[providers]]
        kind = "openai-compatible"
        name = "dead"
        base_url = "http://127.0.0.1:1/v1"
        models = ["m"]

        [[providers]]
        kind = "openai-compatible"
        name = "live"
        base_url = "{}"
        models = ["m"]
        "#,
        mock.url()
    ))
    .await;
    let (status, headers, body) = ask(&gateway, "smart", "hello").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "x-subgate-provider"), "live");
    assert_eq!(header(&headers, "x-subgate-attempts"), "2");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the mock upstream."
    );
}

#[tokio::test]
async fn a_conversation_stays_on_its_account_until_it_cannot_serve() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = TestGateway::start(&format!(
        "[[providers]]\nkind = \"openai-compatible\"\nname = \"pool\"\nbase_url = \"{}\"\nmodels = [\"m\"]\napi_keys = [\"k1\", \"k2\"]\n",
        mock.url()
    ))
    .await;
    let url = gateway.url("/v1/chat/completions");
    let turn = |turns: usize| {
        let mut messages = vec![json!({"role": "user", "content": "refactor the parser"})];
        for index in 1..turns {
            messages.push(json!({"role": "assistant", "content": format!("step {index} done")}));
            messages.push(json!({"role": "user", "content": "go on"}));
        }
        json!({"model": "m", "messages": messages})
    };
    let mut accounts = Vec::new();
    for turns in 1..=3 {
        // Another conversation in between moves the round-robin turn.
        ask(&gateway, "m", &format!("unrelated {turns}")).await;
        let (status, headers, _) = post_json(&url, &turn(turns)).await;
        assert_eq!(status, 200);
        accounts.push(header(&headers, "x-subgate-account").to_owned());
    }
    assert!(
        accounts.iter().all(|account| *account == accounts[0]),
        "{accounts:?}"
    );
    let home = accounts[0].clone();

    // Its account is rate limited: the conversation moves, and stays moved.
    mock.enqueue(Scenario::error(429, RATE_LIMITED).header("retry-after", "60"));
    let (status, headers, _) = post_json(&url, &turn(4)).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-subgate-attempts"), "2");
    let moved = header(&headers, "x-subgate-account").to_owned();
    assert_ne!(moved, home);
    for turns in 5..=6 {
        ask(&gateway, "m", &format!("unrelated {turns}")).await;
        let (_, headers, _) = post_json(&url, &turn(turns)).await;
        assert_eq!(header(&headers, "x-subgate-account"), moved);
    }

    // Claude Code's session header keeps a session together whatever its
    // messages say.
    let mut sessions = Vec::new();
    for text in ["one", "two", "three"] {
        let response = subgate_testkit::http_client()
            .post(&url)
            .header("x-claude-code-session-id", "3f2a-session")
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": text}]}))
            .send()
            .await
            .unwrap();
        sessions.push(header(response.headers(), "x-subgate-account").to_owned());
    }
    assert!(
        sessions.iter().all(|account| *account == sessions[0]),
        "{sessions:?}"
    );
}

#[tokio::test]
async fn cooldowns_survive_a_restart() {
    let mock = MockUpstream::openai_chat().await;
    let mut gateway = pool(&mock, "priority", &["k1", "k2"], "").await;
    mock.enqueue(Scenario::error(429, RATE_LIMITED).header("retry-after", "120"));
    let (status, _, _) = ask(&gateway, "m", "first").await;
    assert_eq!(status, 200);
    let until = gateway.engine().accounts()[0].rests[0].until;

    gateway.restart().await;
    let rests = &gateway.engine().accounts()[0].rests;
    assert_eq!(rests.len(), 1);
    assert_eq!((rests[0].state, rests[0].until), ("cooling_down", until));
    let (status, headers, _) = ask(&gateway, "m", "after the restart").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-subgate-account"), "pool#2");
    assert_eq!(keys_seen(&mock, "/v1/chat/completions"), ["k1", "k2", "k2"]);
}

#[tokio::test]
async fn when_every_account_rests_the_client_gets_a_429_with_the_soonest_reset() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = pool(&mock, "fill-first", &["k1", "k2"], "").await;
    mock.enqueue(Scenario::error(429, RATE_LIMITED).header("retry-after", "30"));
    mock.enqueue(Scenario::error(429, RATE_LIMITED).header("retry-after", "10"));
    let messages = |text: &str| json!({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": text}]});
    let url = gateway.url("/v1/messages");
    // Both accounts refuse: the last refusal comes back, waiting for the
    // first account back.
    let (status, headers, body) = post_json(&url, &messages("first")).await;
    assert_eq!(status, 429);
    let wait: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((9..=10).contains(&wait), "{wait}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");

    // Both resting: refused here, in the client's dialect, without
    // bothering the upstream.
    let (status, headers, body) = post_json(&url, &messages("second")).await;
    assert_eq!(status, 429);
    let wait: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((9..=10).contains(&wait), "{wait}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("every account that serves `m` is resting"),
        "{message}"
    );
    assert_eq!(mock.requests_to("/v1/chat/completions").len(), 2);
}

#[tokio::test]
async fn the_concurrency_cap_holds_under_parallel_load() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = pool(&mock, "round-robin", &["k1", "k2"], "max_concurrency = 1").await;
    mock.set_default(Scenario::reply("steady").first_byte_delay(Duration::from_millis(300)));
    let started = std::time::Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let requests = futures_util::future::join_all((0..6).map(|index| {
        let url = gateway.url("/v1/chat/completions");
        async move {
            let body = json!({"model": "m", "messages": [{"role": "user", "content": format!("job {index}")}]});
            post_json(&url, &body).await.0
        }
    }));
    let sample = async {
        let mut most = 0;
        while !done.load(std::sync::atomic::Ordering::Acquire) {
            for account in gateway.engine().accounts() {
                most = most.max(account.in_flight);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        most
    };
    let finish = async {
        let statuses = requests.await;
        done.store(true, std::sync::atomic::Ordering::Release);
        statuses
    };
    let (statuses, most) = tokio::join!(finish, sample);
    assert_eq!(statuses, [200; 6]);
    assert_eq!(most, 1, "an account held more than one request at once");
    // Two accounts, one request each at a time: three waves of 300 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
    let seen = keys_seen(&mock, "/v1/chat/completions");
    assert_eq!(
        seen.iter().filter(|key| *key == "k1").count(),
        3,
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|key| *key == "k2").count(),
        3,
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_alias_crosses_providers_when_the_first_one_rests() {
    let anthropic = MockUpstream::anthropic().await;
    let openai = MockUpstream::openai_chat().await;
    let gateway = TestGateway::start(&format!(
        r#"
        [aliases]
        smart = ["claude/claude-mock-4", "oa/mock-small"]

        [[providers]]
        kind = "anthropic"
        name = "claude"
        base_url = "{}"
        api_keys = ["sk-ant-1"]
        models = ["claude-mock-4"]

        [[providers]]
        kind = "openai-compatible"
        name = "oa"
        base_url = "{}"
        models = ["mock-small"]
        "#,
        anthropic.url(),
        openai.url()
    ))
    .await;
    anthropic.enqueue(
        Scenario::error(
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#,
        )
        .header("retry-after", "60"),
    );
    let url = gateway.url("/v1/messages");
    let body = json!({"model": "smart", "max_tokens": 100, "messages": [{"role": "user", "content": "hello"}]});
    for attempts in ["2", "1"] {
        let (status, headers, bytes) = post_json(&url, &body).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(header(&headers, "x-subgate-provider"), "oa");
        assert_eq!(header(&headers, "x-subgate-attempts"), attempts);
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(answer["type"], "message");
        assert_eq!(answer["model"], "smart");
        assert_eq!(
            answer["content"][0]["text"],
            "Hello from the mock upstream."
        );
    }
    assert_eq!(anthropic.requests_to("/v1/messages").len(), 1);

    // The models list shows what can be served now: the alias (through its
    // second target), not the resting model.
    let listed: Value = subgate_testkit::http_client()
        .get(gateway.url("/v1/models"))
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
        .map(|model| model["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["mock-small", "smart"]);
}

#[tokio::test]
async fn kimi_reports_its_quota_and_quota_aware_routing_follows_it() {
    let kimi = MockUpstream::kimi().await;
    let reset = "2099-01-01T00:00:00Z";
    kimi.set_kimi_usage("k1", 100, 10, reset);
    kimi.set_kimi_usage("k2", 100, 80, reset);
    kimi.set_kimi_usage("k3", 100, 50, reset);
    let gateway = TestGateway::start(&format!(
        "[routing]\nsession_affinity = false\n[[providers]]\nkind = \"kimi\"\nname = \"kimi\"\nbase_url = \"{}\"\napi_keys = [\"k1\", \"k2\", \"k3\"]\nstrategy = \"quota-aware\"\n",
        kimi.url()
    ))
    .await;
    gateway.engine().refresh_quotas().await;
    let quotas: Vec<f64> = gateway
        .engine()
        .accounts()
        .iter()
        .map(|account| {
            let weekly = account
                .quota
                .iter()
                .find(|window| window.window == "weekly")
                .expect("the weekly window");
            weekly.remaining
        })
        .collect();
    assert_eq!(quotas, [10.0, 80.0, 50.0]);

    // The most quota left: k2. The mock turns away clients without a
    // coding agent's identity, so a 200 proves the identity went along.
    for turn in 0..2 {
        let (status, headers, body) = ask(&gateway, "kimi-for-coding", &format!("q{turn}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(header(&headers, "x-subgate-account"), "kimi#2");
    }
    let request = kimi.requests_to("/coding/v1/chat/completions").remove(0);
    assert!(
        request
            .header("user-agent")
            .unwrap()
            .starts_with("KimiCLI/")
    );

    // k2's weekly quota runs out: it rests until the reset, and k3 (more
    // left than k1) serves.
    kimi.set_kimi_usage("k2", 100, 0, reset);
    gateway.engine().refresh_quotas().await;
    let k2 = &gateway.engine().accounts()[1];
    assert_eq!(k2.state, "quota_exhausted");
    assert_eq!(k2.rests[0].until, 4_070_908_800_000);
    let (status, headers, _) = ask(&gateway, "kimi-for-coding", "q3").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-subgate-account"), "kimi#3");

    // Kimi's 403 about a used-up weekly limit is quota, not a bad key.
    kimi.enqueue(Scenario::error(
        403,
        r#"{"error":{"message":"You've reached your weekly (7-day) usage limit. Please wait for the reset.","type":"access_terminated_error"}}"#,
    ));
    let (status, headers, _) = ask(&gateway, "kimi-for-coding", "q4").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-subgate-account"), "kimi#1");
    // It rests until the reset its last quota report named.
    let k3 = &gateway.engine().accounts()[2];
    assert_eq!(k3.state, "quota_exhausted");
    assert_eq!(k3.rests[0].until, 4_070_908_800_000);
    assert_eq!(
        keys_seen(&kimi, "/coding/v1/chat/completions"),
        ["k2", "k2", "k3", "k3", "k1"]
    );
}

#[tokio::test]
async fn min_interval_paces_requests_on_one_account() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = pool(&mock, "fill-first", &["k1"], "min_interval = \"250ms\"").await;
    let started = std::time::Instant::now();
    for turn in 0..3 {
        let (status, _, _) = ask(&gateway, "m", &format!("paced {turn}")).await;
        assert_eq!(status, 200);
    }
    // Three starts on one account, 250 ms apart at least.
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn models_resolve_through_catalogs_built_in_lists_and_families() {
    let anthropic = MockUpstream::anthropic().await;
    let gateway = TestGateway::start(&format!(
        r#"
        [[providers]]
        kind = "anthropic"
        name = "claude"
        base_url = "{}"
        api_keys = ["sk-ant-1"]

        # Unreachable: its catalog cannot be fetched, so its built-in list
        # stands in.
        [[providers]]
        kind = "gemini"
        name = "google"
        base_url = "http://127.0.0.1:1"
        api_keys = ["AIza-1"]
        "#,
        anthropic.url()
    ))
    .await;
    gateway.engine().refresh_catalogs().await;
    let ids: Vec<String> = gateway
        .engine()
        .models()
        .into_iter()
        .map(|model| format!("{}:{}", model.provider, model.id))
        .collect();
    assert!(ids.contains(&"claude:claude-mock-4".to_owned()), "{ids:?}");
    assert!(ids.contains(&"google:gemini-2.5-pro".to_owned()), "{ids:?}");
    assert!(
        !ids.iter().any(|id| id.starts_with("claude:claude-sonnet")),
        "{ids:?}"
    );

    // A Claude model no catalog lists yet goes to the Claude provider.
    let body = json!({"model": "claude-opus-9", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]});
    let (status, headers, _) = post_json(&gateway.url("/v1/messages"), &body).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-subgate-provider"), "claude");
    assert_eq!(
        anthropic.requests_to("/v1/messages")[0].json()["model"],
        "claude-opus-9"
    );
    // A name of no family is unknown, with the list of what is served.
    let (status, _, body) = ask(&gateway, "mystery-model", "hi").await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("claude-mock-4")
    );
}

#[tokio::test]
async fn a_stream_that_stalls_before_its_first_byte_fails_over() {
    let mock = MockUpstream::openai_chat().await;
    let gateway = pool(
        &mock,
        "fill-first",
        &["k1", "k2"],
        "idle_timeout = \"300ms\"",
    )
    .await;
    for (url, body) in [
        (
            gateway.url("/v1/chat/completions"),
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "pass through"}]}),
        ),
        (
            gateway.url("/v1/messages"),
            json!({"model": "m", "stream": true, "max_tokens": 50, "messages": [{"role": "user", "content": "translated"}]}),
        ),
    ] {
        // The first account says yes, then sends nothing.
        mock.enqueue(Scenario::reply("never").body_delay(Duration::from_secs(3)));
        let (status, headers, bytes) = post_json(&url, &body).await;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert_eq!(status, 200, "{text}");
        assert_eq!(header(&headers, "x-subgate-attempts"), "2", "{url}");
        assert_eq!(header(&headers, "x-subgate-account"), "pool#2", "{url}");
        assert!(text.contains("Hello"), "{text}");
        assert!(!text.contains("error"), "{text}");
    }
}
