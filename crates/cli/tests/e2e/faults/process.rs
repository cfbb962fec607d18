//! The real binary under faults: 500 concurrent streams in bounded memory,
//! a stop while translated streams run, and a kill during a token refresh.

use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use subgate_store::{Store, StoreLocation, UsageRow};
use subgate_testkit::http_client;
use subgate_testkit::mock::{MockUpstream, Scenario};
use tokio::time::Instant;

use super::{anthropic_text, events, messages_body};
use crate::process::{Server, default_data_dir, run};
use crate::subscriptions::{claude_code_file, claude_config};
use crate::support::{chat_body, sse_data, streamed_text};

fn write_config(home: &Path, config: &str) -> String {
    let path = home.join("subgate.toml");
    std::fs::write(&path, config).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Provider `oa` (OpenAI-compatible, model `m`) and, when given, provider
/// `claude` (Anthropic, model `claude-mock-4`).
fn providers(openai: &MockUpstream, anthropic: Option<&MockUpstream>) -> String {
    let mut config = format!(
        "[[providers]]\nkind = \"openai-compatible\"\nname = \"oa\"\nbase_url = \"{}\"\nmodels = [\"m\"]\n",
        openai.url()
    );
    if let Some(anthropic) = anthropic {
        let _ = write!(
            config,
            "\n[[providers]]\nkind = \"anthropic\"\nname = \"claude\"\nbase_url = \"{}\"\napi_keys = [\"sk-ant-1\"]\nmodels = [\"claude-mock-4\"]\n",
            anthropic.url()
        );
    }
    config
}

async fn open_store(home: &Path) -> Store {
    Store::open(&StoreLocation::Sqlite(
        default_data_dir(home).join("subgate.db"),
    ))
    .await
    .unwrap()
}

async fn stored_usage(home: &Path) -> Vec<UsageRow> {
    let store = open_store(home).await;
    let rows = store.usage_since(0, 10_000).await.unwrap();
    store.close().await;
    rows
}

/// `VmRSS` and `VmHWM` (the peak) of process `pid`, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"));
        kib * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// This process's limit on open files: (soft, hard).
fn open_files_limit() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(3)
        .take(2)
        .map(|value| value.parse().unwrap_or(u64::MAX))
        .collect();
    (values[0], values[1])
}

/// Makes sure this process, and the server it starts (which inherits the
/// limit), may open `needed` files: the soft limit is raised towards the
/// hard one when it is lower.
fn ensure_open_files(needed: u64) {
    let (soft, hard) = open_files_limit();
    if soft >= needed {
        return;
    }
    let target = if hard == u64::MAX {
        needed.to_string()
    } else {
        hard.to_string()
    };
    let _ = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={target}:"))
        .status();
    let (soft, hard) = open_files_limit();
    assert!(
        soft >= needed,
        "this test needs {needed} open files; the limit is {soft} (hard {hard}): raise `ulimit -n`"
    );
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Opens a stream and waits for its first chunk: the chunks to come, and
/// the bytes so far.
async fn open_stream(url: &str, body: &Value) -> (Body, Vec<u8>) {
    let response = http_client().post(url).json(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut chunks: Body = Box::pin(response.bytes_stream());
    let first = chunks.next().await.unwrap().unwrap().to_vec();
    (chunks, first)
}

/// Reads a stream to its end.
async fn read_rest((mut chunks, mut body): (Body, Vec<u8>)) -> Vec<u8> {
    while let Some(chunk) = chunks.next().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    body
}

const STREAMS: usize = 500;
const TEXT: &str = "one two three four five six seven eight nine ten";

/// One streamed request, from an OpenAI client (even `index`, passed
/// through) or an Anthropic one (odd, translated). Checks that it ends
/// whole; returns when its head came and when it ended.
async fn one_stream(client: reqwest::Client, base: String, index: usize) -> (Instant, Instant) {
    let anthropic = index % 2 == 1;
    let (url, body) = if anthropic {
        (
            format!("{base}/v1/messages"),
            messages_body("m", "hi", true),
        )
    } else {
        (format!("{base}/v1/chat/completions"), chat_body("m", true))
    };
    let response = client.post(url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200, "stream {index}");
    let opened = Instant::now();
    let body = response.bytes().await.unwrap();
    let closed = Instant::now();
    if anthropic {
        assert_eq!(anthropic_text(&body), TEXT, "stream {index}");
        let last = events(&body).pop().unwrap().0;
        assert_eq!(last.as_deref(), Some("message_stop"), "stream {index}");
    } else {
        assert_eq!(streamed_text(&body), TEXT, "stream {index}");
        let last = sse_data(&body).pop();
        assert_eq!(last.as_deref(), Some("[DONE]"), "stream {index}");
    }
    (opened, closed)
}

/// The most spans open at one time.
fn most_at_once(spans: &[(Instant, Instant)]) -> usize {
    let mut edges: Vec<(Instant, i32)> = spans
        .iter()
        .flat_map(|&(opened, closed)| [(opened, 1), (closed, -1)])
        .collect();
    edges.sort();
    let mut open = 0;
    let mut most = 0;
    for (_, step) in edges {
        open += step;
        most = most.max(open);
    }
    usize::try_from(most).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_streams_end_whole_in_bounded_memory() {
    // Per stream: a socket at each end of both hops, two in each process.
    ensure_open_files(3 * STREAMS as u64 + 256);
    let home = tempfile::tempdir().unwrap();
    let mock = MockUpstream::openai_chat().await;
    mock.set_default(
        Scenario::reply(TEXT)
            .pieces(10)
            .chunk_delay(Duration::from_millis(250)),
    );
    // The test reads the server's log only at the end: its line per
    // request fills the pipe long before the streams end, which must cost
    // log lines, not requests.
    let config = write_config(home.path(), &providers(&mock, None));
    let server = Server::start(home.path(), &["--config", &config], &[]).await;
    let client = http_client();
    // Warm up both paths first, so that what is built once does not count
    // as growth.
    futures_util::future::join_all(
        (0..4).map(|index| one_stream(client.clone(), server.base.clone(), index)),
    )
    .await;
    let (before, _) = memory(server.pid());

    let started = Instant::now();
    let streams = (0..STREAMS).map(|index| one_stream(client.clone(), server.base.clone(), index));
    let spans = tokio::time::timeout(
        Duration::from_mins(1),
        futures_util::future::join_all(streams),
    )
    .await
    .expect("every stream ends");
    let took = started.elapsed();
    let (after, peak) = memory(server.pid());
    let at_once = most_at_once(&spans);
    println!(
        "{STREAMS} streams in {took:?}, {at_once} at once; RSS {} MiB before, {} MiB after, peak {} MiB",
        before >> 20,
        after >> 20,
        peak >> 20
    );
    assert!(at_once >= STREAMS / 2, "only {at_once} streams ran at once");
    assert!(
        peak.saturating_sub(before) < 100 << 20,
        "the gateway grew by {} MiB",
        (peak - before) >> 20
    );

    server.signal("TERM").await;
    let (status, _, _) = server.wait().await;
    assert!(status.success(), "exit status {status}");
    let rows = stored_usage(home.path()).await;
    assert_eq!(rows.len(), STREAMS + 4);
    assert!(
        rows.iter()
            .all(|row| row.status == 200 && row.error_class.is_none() && row.usage_reported),
        "{:?}",
        rows.iter()
            .find(|row| row.status != 200 || row.error_class.is_some())
    );
}

#[tokio::test]
async fn translated_streams_in_flight_at_sigterm_end_properly_and_are_recorded() {
    let home = tempfile::tempdir().unwrap();
    let openai = MockUpstream::openai_chat().await;
    let anthropic = MockUpstream::anthropic().await;
    // Short answers end within the grace period; long ones do not.
    for mock in [&openai, &anthropic] {
        mock.when_body_contains(
            "short",
            Scenario::reply("a short answer")
                .pieces(4)
                .chunk_delay(Duration::from_millis(100)),
        );
        mock.when_body_contains(
            "long",
            Scenario::reply("a long answer that the stop cuts off")
                .pieces(30)
                .chunk_delay(Duration::from_millis(400)),
        );
    }
    let config = write_config(
        home.path(),
        &format!(
            "[server]\nshutdown_timeout = \"3s\"\n\n{}",
            providers(&openai, Some(&anthropic))
        ),
    );
    let server = Server::start(home.path(), &["--config", &config], &[]).await;
    let chat = |text: &str| json!({"model": "claude-mock-4", "stream": true, "messages": [{"role": "user", "content": text}]});
    // Anthropic clients on the OpenAI upstream, OpenAI clients on the
    // Anthropic one.
    let messages_url = server.url("/v1/messages");
    let chat_url = server.url("/v1/chat/completions");
    let streams = [
        open_stream(&messages_url, &messages_body("m", "short", true)).await,
        open_stream(&messages_url, &messages_body("m", "long", true)).await,
        open_stream(&chat_url, &chat("short")).await,
        open_stream(&chat_url, &chat("long")).await,
    ];
    server.signal("TERM").await;
    let bodies = futures_util::future::join_all(streams.into_iter().map(read_rest)).await;

    assert_eq!(anthropic_text(&bodies[0]), "a short answer");
    assert_eq!(
        events(&bodies[0]).pop().unwrap().0.as_deref(),
        Some("message_stop")
    );
    let (name, data) = events(&bodies[1]).pop().unwrap();
    let error: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(name.as_deref(), Some("error"));
    assert_eq!(
        error["error"],
        json!({"type": "overloaded_error", "message": "the gateway is shutting down; the answer is incomplete"})
    );
    assert_eq!(streamed_text(&bodies[2]), "a short answer");
    assert_eq!(sse_data(&bodies[2]).pop().as_deref(), Some("[DONE]"));
    let last: Value = serde_json::from_str(&sse_data(&bodies[3]).pop().unwrap()).unwrap();
    assert_eq!(
        last["error"]["message"],
        "the gateway is shutting down; the answer is incomplete"
    );

    let (status, _, _) = server.wait().await;
    assert!(status.success(), "exit status {status}");
    let mut rows: Vec<_> = stored_usage(home.path())
        .await
        .into_iter()
        .map(|row| {
            (
                row.model,
                row.error_class,
                row.usage_reported,
                row.input_tokens > 0,
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("claude-mock-4".to_owned(), None, true, true),
            // The cut stream still counts the input `message_start` reported.
            (
                "claude-mock-4".to_owned(),
                Some("internal".to_owned()),
                true,
                true
            ),
            ("m".to_owned(), None, true, true),
            ("m".to_owned(), Some("internal".to_owned()), false, false),
        ]
    );
}

/// Claude's OAuth client id, for refreshing by hand.
const CLAUDE_CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";

/// Imports into `home` a Claude Code login whose access token has
/// expired (its refresh token is good), with a config for `mock`: the
/// first use of the account refreshes it. Returns the config's path.
async fn import_expired_claude_login(home: &Path, mock: &MockUpstream) -> String {
    let config = write_config(home, &claude_config(mock));
    mock.oauth().set_access_ttl(Duration::ZERO);
    let file = claude_code_file(home, mock);
    mock.oauth().set_access_ttl(Duration::from_hours(1));
    let (status, out, err) = run(
        home,
        &[
            "import",
            "claude-code",
            "--file",
            file.to_str().unwrap(),
            "--config",
            &config,
        ],
        &[],
    )
    .await;
    assert!(status.success(), "{out}{err}");
    assert_eq!(
        mock.oauth().refresh_count(),
        0,
        "the import does not refresh"
    );
    config
}

/// The login stored for the only account.
async fn stored_login(home: &Path) -> Value {
    let store = open_store(home).await;
    let accounts = store.accounts().await.unwrap();
    store.close().await;
    assert_eq!(accounts.len(), 1);
    serde_json::from_str(subgate_core::expose(&accounts[0].credentials))
        .expect("the stored login is whole JSON")
}

/// Waits (bounded) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends one Messages request to `server` and SIGKILLs it once `ready`
/// holds; the request must fail with the process.
async fn kill_during_request(server: Server, ready: impl Fn() -> bool) {
    let request = http_client()
        .post(server.url("/v1/messages"))
        .timeout(Duration::from_secs(30))
        .json(&messages_body("claude-sonnet-4-5", "hi", false))
        .send();
    let kill = async {
        until("the refresh to be in flight", ready).await;
        server.signal("KILL").await;
    };
    let (answer, ()) = tokio::join!(request, kill);
    assert!(answer.is_err(), "the killed gateway answered: {answer:?}");
    let (status, _, _) = server.wait().await;
    assert_eq!(status.signal(), Some(9), "{status}");
}

/// Refreshes by hand with `refresh_token`: whether the mock still takes it.
async fn refresh_token_works(mock: &MockUpstream, refresh_token: &Value) -> bool {
    http_client()
        .post(format!("{}/v1/oauth/token", mock.auth_url()))
        .json(&json!({
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLAUDE_CLIENT_ID,
        }))
        .send()
        .await
        .unwrap()
        .status()
        .is_success()
}

#[tokio::test]
async fn a_kill_during_a_refresh_the_upstream_never_answered_leaves_a_working_login() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mock = MockUpstream::claude().await;
    let config = import_expired_claude_login(home, &mock).await;
    let old = stored_login(home).await;
    // The token endpoint holds the refresh; the gateway dies waiting.
    mock.oauth().hold_refresh(Duration::from_mins(1));
    let server = Server::start(home, &["--config", &config], &[]).await;
    kill_during_request(server, || !mock.requests_to("/v1/oauth/token").is_empty()).await;
    assert_eq!(
        mock.oauth().refresh_count(),
        0,
        "the held refresh was dropped with its caller"
    );
    assert_eq!(stored_login(home).await, old, "nothing half-written");

    // Started again on the same data: the old refresh token is still good,
    // so the request refreshes and is answered.
    mock.oauth().hold_refresh(Duration::ZERO);
    let server = Server::start(home, &["--config", &config], &[]).await;
    let (status, _, body) = crate::support::post_json(
        &server.url("/v1/messages"),
        &messages_body("claude-sonnet-4-5", "hi", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(mock.oauth().refresh_count(), 1);
    server.signal("TERM").await;
    assert!(server.wait().await.0.success());

    // The renewed login was stored, and is the one in use.
    let stored = stored_login(home).await;
    assert_ne!(stored["refresh_token"], old["refresh_token"]);
    let sent = mock.requests_to("/v1/messages").pop().unwrap();
    assert_eq!(
        sent.header("authorization").unwrap(),
        format!("Bearer {}", stored["access_token"].as_str().unwrap())
    );
    assert!(refresh_token_works(&mock, &stored["refresh_token"]).await);
}

#[tokio::test]
async fn a_kill_after_a_rotating_refresh_answered_but_before_it_was_stored_loses_the_login() {
    use sqlx::Connection as _;

    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mock = MockUpstream::claude().await;
    let config = import_expired_claude_login(home, &mock).await;
    let old = stored_login(home).await;
    // The gateway renews the expired login in the background as it starts;
    // the token endpoint holds that renewal a moment, long enough to take
    // the database's write lock, then answers with a rotated refresh token
    // that the gateway cannot store.
    mock.oauth().hold_refresh(Duration::from_secs(2));
    let server = Server::start(home, &["--config", &config], &[]).await;
    until("the renewal to be held", || {
        !mock.requests_to("/v1/oauth/token").is_empty()
    })
    .await;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(default_data_dir(home).join("subgate.db"));
    let mut lock = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    until("the rotating answer", || mock.oauth().refresh_count() == 1).await;
    // A moment for the gateway to read the answer and wait on the store
    // (nothing is asserted about it: the lock keeps the write out anyway).
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("KILL").await;
    let (status, _, _) = server.wait().await;
    assert_eq!(status.signal(), Some(9), "{status}");
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();

    // What was stored is the old login, whole (the write is one UPDATE,
    // stored before the tokens are used); but the upstream rotated its
    // refresh token away with an answer that never reached the store.
    assert_eq!(stored_login(home).await, old);
    // Started again, the gateway renews the login in the background at
    // once. The request is sent while that renewal is held, so that it
    // waits for it and then tries once more itself, rather than finding the
    // account already resting.
    mock.oauth().hold_refresh(Duration::from_secs(1));
    let server = Server::start(home, &["--config", &config], &[]).await;
    until("the background renewal", || {
        mock.requests_to("/v1/oauth/token").len() == 2
    })
    .await;
    let (status, _, body) = crate::support::post_json(
        &server.url("/v1/messages"),
        &messages_body("claude-sonnet-4-5", "hi", false),
    )
    .await;
    // No way back but a new login: the client is told so, in its dialect.
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    let error = super::anthropic_error(&body);
    assert_eq!(error["type"], "authentication_error");
    assert!(
        super::text_of(&error).starts_with(
            "the login of account `claude-1` on provider `claude` could not be renewed"
        ),
        "{error}"
    );
    assert_eq!(mock.requests_to("/v1/oauth/token").len(), 3);
    assert_eq!(mock.oauth().refresh_count(), 1, "the old token was refused");
    mock.oauth().hold_refresh(Duration::ZERO);
    server.signal("TERM").await;
    assert!(server.wait().await.0.success());
    assert_eq!(stored_login(home).await, old);
    assert!(!refresh_token_works(&mock, &old["refresh_token"]).await);
}
