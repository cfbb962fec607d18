//! Stopping: requests in flight finish (or end properly at the deadline),
//! new ones are refused, and every usage record is stored.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use pretty_assertions::assert_eq;
use subgate_store::{Store, StoreLocation, UsageRow};
use subgate_testkit::http_client;
use subgate_testkit::mock::{MockUpstream, Scenario};

use crate::process::{Server, default_data_dir};
use crate::support::{chat_body, sse_data, streamed_text};

fn write_config(home: &Path, mock: &MockUpstream, extra: &str) -> String {
    let path = home.join("subgate.toml");
    std::fs::write(
        &path,
        format!(
            "{extra}\n[[providers]]\nkind = \"openai-compatible\"\nname = \"mock\"\nbase_url = \"{}\"\nmodels = [\"m\"]\n",
            mock.url()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

async fn stored_usage(home: &Path) -> Vec<UsageRow> {
    let store = Store::open(&StoreLocation::Sqlite(
        default_data_dir(home).join("subgate.db"),
    ))
    .await
    .unwrap();
    let rows = store.usage_since(0, 100).await.unwrap();
    store.close().await;
    rows
}

/// A streamed chat request whose first chunk has arrived.
struct Stream {
    chunks:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    body: Vec<u8>,
}

impl Stream {
    async fn open(server: &Server) -> Self {
        let response = http_client()
            .post(server.url("/v1/chat/completions"))
            .json(&chat_body("m", true))
            .send()
            .await
            .unwrap();
        let mut chunks = Box::pin(response.bytes_stream());
        let body = chunks.next().await.unwrap().unwrap().to_vec();
        Self { chunks, body }
    }

    /// Reads to the end; returns the whole body.
    async fn rest(&mut self) -> Vec<u8> {
        while let Some(chunk) = self.chunks.next().await {
            self.body.extend_from_slice(&chunk.unwrap());
        }
        std::mem::take(&mut self.body)
    }
}

#[tokio::test]
async fn a_stream_in_flight_finishes_after_sigterm_and_is_recorded() {
    let home = tempfile::tempdir().unwrap();
    let mock = MockUpstream::openai_chat().await;
    mock.enqueue(
        Scenario::reply("one two three four five six")
            .pieces(6)
            .chunk_delay(Duration::from_millis(150)),
    );
    let config = write_config(home.path(), &mock, "");
    let server = Server::start(home.path(), &["--config", &config], &[]).await;

    let mut stream = Stream::open(&server).await;

    server.signal("TERM").await;
    // New connections are refused once the signal is handled.
    let mut refused = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if http_client()
            .get(server.url("/healthz"))
            .send()
            .await
            .is_err()
        {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "the server still accepts connections after SIGTERM"
    );

    let body = stream.rest().await;
    assert_eq!(streamed_text(&body), "one two three four five six");
    assert_eq!(sse_data(&body).last().map(String::as_str), Some("[DONE]"));

    let (status, _, _) = server.wait().await;
    assert!(status.success(), "exit status {status}");
    let rows = stored_usage(home.path()).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status, rows[0].error_class.as_deref()),
        (200, None)
    );
    assert!(rows[0].usage_reported);
}

#[tokio::test]
async fn the_grace_period_ends_streams_properly_and_keeps_their_records() {
    let home = tempfile::tempdir().unwrap();
    let mock = MockUpstream::openai_chat().await;
    mock.enqueue(
        Scenario::reply("slow answer")
            .pieces(10)
            .chunk_delay(Duration::from_millis(400)),
    );
    let config = write_config(home.path(), &mock, "[server]\nshutdown_timeout = \"300ms\"");
    let server = Server::start(home.path(), &["--config", &config], &[]).await;

    let mut stream = Stream::open(&server).await;
    server.signal("TERM").await;
    let body = stream.rest().await;
    let last: serde_json::Value = serde_json::from_str(sse_data(&body).last().unwrap()).unwrap();
    assert_eq!(
        last["error"]["message"],
        "the gateway is shutting down; the answer is incomplete"
    );

    let (status, _, _) = server.wait().await;
    assert!(status.success());
    let rows = stored_usage(home.path()).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].error_class.as_deref(), Some("internal"));
}
