//! The real server, started in-process on an ephemeral port.

use std::net::SocketAddr;
use std::time::Duration;

use subgate_config::{Override, Sources};
use subgate_server::Running;
use subgate_store::{Store, StoreLocation, UsageRow};

/// A running gateway with its own temporary data directory.
#[derive(Debug)]
pub struct TestGateway {
    running: Option<Running>,
    address: SocketAddr,
    data_dir: tempfile::TempDir,
}

fn load_config(data_dir: &tempfile::TempDir) -> subgate_config::Config {
    subgate_config::load(&Sources {
        file: Some(data_dir.path().join("config.toml")),
        env: &|_| None,
        overrides: vec![
            Override::host("127.0.0.1"),
            Override::port(0),
            Override::data_dir(&data_dir.path().join("data")),
        ],
    })
    .expect("the test config is valid")
}

/// An HTTP client for tests: no proxies, no pooling surprises.
pub fn http_client() -> reqwest::Client {
    #[expect(
        clippy::disallowed_methods,
        reason = "tests act as clients of the gateway, not as the gateway"
    )]
    let builder = reqwest::Client::builder();
    builder.no_proxy().build().expect("building a test client")
}

impl TestGateway {
    /// Starts the server with `config` (TOML). The port and data directory
    /// are chosen here; the rest is the config's.
    pub async fn start(config: &str) -> Self {
        let data_dir = tempfile::tempdir().expect("creating a temporary data directory");
        let file = data_dir.path().join("config.toml");
        std::fs::write(&file, config).expect("writing the test config");
        let config = load_config(&data_dir);
        let running = subgate_server::start(&config)
            .await
            .expect("the gateway starts");
        Self {
            address: running.local_addr(),
            running: Some(running),
            data_dir,
        }
    }

    /// A gateway in front of one OpenAI-compatible mock, provider `mock`,
    /// with `extra` appended to the provider entry.
    pub async fn with_openai_compatible(base_url: &str, extra: &str) -> Self {
        Self::start(&format!(
            "[[providers]]\nkind = \"openai-compatible\"\nname = \"mock\"\nbase_url = \"{base_url}\"\n{extra}\n"
        ))
        .await
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The engine behind the server.
    pub fn engine(&self) -> &subgate_engine::Engine {
        self.running
            .as_ref()
            .expect("the gateway is running")
            .engine()
    }

    /// Clears every account's rests, for tests that provoke upstream
    /// errors one after another on a single account and are not about
    /// routing.
    pub async fn clear_rests(&self) {
        for account in self.engine().accounts() {
            self.engine()
                .reset_account(&account.id)
                .await
                .expect("clearing an account's rests");
        }
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The data directory.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.data_dir.path().join("data")
    }

    /// Stops gracefully and starts again on the same config and data
    /// directory (on a new port), as a restart of the process would.
    pub async fn restart(&mut self) {
        self.stop().await;
        let running = subgate_server::start(&load_config(&self.data_dir))
            .await
            .expect("the gateway starts again");
        self.address = running.local_addr();
        self.running = Some(running);
    }

    /// Stops gracefully (bounded), storing every usage record.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop_within(Duration::from_secs(10)).await;
        }
    }

    /// The usage records stored so far, waiting up to five seconds for at
    /// least `count` of them (records are written in the background).
    pub async fn usage(&self, count: usize) -> Vec<UsageRow> {
        let store = Store::open(&StoreLocation::Sqlite(self.data_dir().join("subgate.db")))
            .await
            .expect("opening the gateway's store");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let rows = store.usage_since(0, 10_000).await.expect("reading usage");
            if rows.len() >= count || tokio::time::Instant::now() > deadline {
                store.close().await;
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.shutdown();
        }
    }
}
