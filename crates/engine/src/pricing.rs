//! What requests cost: a price per model (US dollars per million input,
//! output, cache-read and cache-write tokens), from a table bundled with
//! subgate in the models.dev format, which `[pricing] file` can extend or
//! correct and `[pricing] url` can keep up to date. Subscription requests are priced the same way: what the tokens
//! would have cost on the API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderMap, HeaderValue, Method};
use serde::Deserialize;
use subgate_config::{PricingConfig, Url};
use subgate_core::Usage;
use subgate_http::{OutboundRequest, Transport, TransportOptions};

/// The bundled table (models.dev's `api.json` shape, a subset).
const BUNDLED: &str = include_str!("../data/prices.json");

/// One model's prices, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Price {
    /// Uncached prompt tokens.
    pub input: f64,
    /// Generated tokens.
    pub output: f64,
    /// Prompt tokens read from a cache (the input price when unknown).
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Prompt tokens written to a cache (the input price when unknown).
    #[serde(default)]
    pub cache_write: Option<f64>,
}

impl Price {
    /// What `usage` costs, in US dollars. `input_tokens` counts cached
    /// tokens too; they are priced at the cache rates instead.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let uncached = usage
            .input_tokens
            .saturating_sub(usage.cache_read_tokens)
            .saturating_sub(usage.cache_write_tokens);
        let per = |tokens: u64, price: f64| {
            #[expect(
                clippy::cast_precision_loss,
                reason = "token counts stay far below 2^52"
            )]
            let tokens = tokens as f64;
            tokens * price / 1_000_000.0
        };
        per(uncached, self.input)
            + per(
                usage.cache_read_tokens,
                self.cache_read.unwrap_or(self.input),
            )
            + per(
                usage.cache_write_tokens,
                self.cache_write.unwrap_or(self.input),
            )
            + per(usage.output_tokens, self.output)
    }
}

/// Prices by model id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    models: HashMap<String, Price>,
}

#[derive(Deserialize)]
struct Provider {
    #[serde(default)]
    models: HashMap<String, Model>,
}

#[derive(Deserialize)]
struct Model {
    cost: Option<Price>,
}

impl PriceTable {
    /// Reads a models.dev `api.json` (`{provider: {models: {id: {cost:
    /// {input, output, cache_read, cache_write}}}}}`); models without a
    /// cost are left out.
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        // In file order (serde_json keeps it): the first provider to price
        // a model wins.
        let file: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)?;
        let mut models = HashMap::new();
        for value in file.into_iter().map(|(_, value)| value) {
            let provider: Provider = serde_json::from_value(value)?;
            for (id, model) in provider.models {
                if let Some(cost) = model.cost {
                    models.entry(id).or_insert(cost);
                }
            }
        }
        Ok(Self { models })
    }

    /// The bundled table.
    pub fn bundled() -> Self {
        // The bundled file is checked by a test; a broken one prices
        // nothing rather than stopping the gateway.
        Self::parse(BUNDLED).unwrap_or_default()
    }

    /// This table with `other`'s prices on top.
    fn extend(&mut self, other: Self) {
        self.models.extend(other.models);
    }

    /// How many models have a price.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether no model has a price.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The price of `model`: by its id, or its id without a `provider/`
    /// prefix, a date suffix or `-latest`, with dots as dashes
    /// (`claude-sonnet-4.5` is `claude-sonnet-4-5`).
    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(price) = self.models.get(model) {
            return Some(*price);
        }
        let bare = model.rsplit_once('/').map_or(model, |(_, bare)| bare);
        let bare = bare.strip_suffix("-latest").unwrap_or(bare);
        let undated = match bare.rsplit_once('-') {
            Some((head, date)) if date.len() == 8 && date.chars().all(|c| c.is_ascii_digit()) => {
                head
            }
            _ => bare,
        };
        let dashed = undated.replace('.', "-");
        // models.dev names a first release `-0` (`claude-sonnet-4-0`).
        [
            bare.to_owned(),
            undated.to_owned(),
            format!("{dashed}-0"),
            dashed,
        ]
        .iter()
        .find_map(|name| self.models.get(name))
        .copied()
    }
}

/// The largest price file read from a URL (models.dev's is a few MB).
const MAX_DOWNLOAD_BYTES: usize = 64 << 20;

/// How long a price download may take in all.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_mins(1);

/// The last good download, in the data directory: restarts and one-shot
/// commands (`subgate usage`) price with it without downloading.
pub(crate) const DOWNLOADED_FILE: &str = "prices-downloaded.json";

/// The table in force, swapped whole when its sources are read again.
#[derive(Debug)]
pub(crate) struct Prices {
    config: PricingConfig,
    /// Where the last good download is kept.
    cache: PathBuf,
    /// Set when prices come from a URL.
    transport: Option<Transport>,
    /// The last good read of each source: a failed read keeps it.
    sources: Mutex<Sources>,
    table: RwLock<Arc<PriceTable>>,
}

#[derive(Debug, Default)]
struct Sources {
    downloaded: Option<PriceTable>,
    file: Option<PriceTable>,
}

impl Prices {
    /// The bundled table with the last download (kept in `data_dir`) and
    /// `config.file`'s prices on top. The URL is read by
    /// [`Prices::refresh`], which the engine runs at start and then every
    /// `config.refresh`.
    pub(crate) fn load(config: &PricingConfig, data_dir: &Path) -> Result<Self, String> {
        let file = config.file.as_deref().map(read_file).transpose()?;
        let cache = data_dir.join(DOWNLOADED_FILE);
        // A download from another URL, or from before the URL was removed,
        // is not used; a damaged one is downloaded again.
        let downloaded = config.url.as_ref().and_then(|_| read_file(&cache).ok());
        let transport = config
            .url
            .as_ref()
            .map(|_| {
                Transport::new(TransportOptions {
                    connect_timeout: Duration::from_secs(10),
                    first_byte_timeout: Duration::from_secs(30),
                    idle_timeout: Duration::from_secs(30),
                })
            })
            .transpose()
            .map_err(|error| error.to_string())?;
        let sources = Sources { downloaded, file };
        let table = sources.table();
        Ok(Self {
            config: config.clone(),
            cache,
            transport,
            sources: Mutex::new(sources),
            table: RwLock::new(Arc::new(table)),
        })
    }

    /// Whether there is anything to read again.
    pub(crate) fn refreshes(&self) -> Option<Duration> {
        (self.config.url.is_some() || self.config.file.is_some()).then_some(self.config.refresh)
    }

    /// Downloads the URL and reads the file again; a source that fails
    /// keeps its last good prices, and says why in the log.
    pub(crate) async fn refresh(&self) {
        let downloaded = match (&self.config.url, &self.transport) {
            (Some(url), Some(transport)) => match download(transport, url).await {
                Ok((table, text)) => {
                    tracing::info!(url = %url, models = table.len(), "Prices downloaded.");
                    if let Err(error) = keep(&self.cache, &text).await {
                        tracing::warn!(%error, "Keeping the downloaded prices failed; a restart downloads them again.");
                    }
                    Some(table)
                }
                Err(error) => {
                    tracing::warn!(url = %url, %error, "Downloading prices failed; the last prices stay in force.");
                    None
                }
            },
            _ => None,
        };
        let file = self.config.file.as_deref().and_then(|path| {
            read_file(path)
                .inspect_err(|error| {
                    tracing::warn!(%error, "Reading the price file failed; its last prices stay in force.");
                })
                .ok()
        });
        let table = {
            let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
            if downloaded.is_some() {
                sources.downloaded = downloaded;
            }
            if file.is_some() {
                sources.file = file;
            }
            sources.table()
        };
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
    }

    /// The table now.
    pub(crate) fn table(&self) -> Arc<PriceTable> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Sources {
    /// Bundled, then downloaded, then the file's prices on top.
    fn table(&self) -> PriceTable {
        let mut table = PriceTable::bundled();
        for extra in [&self.downloaded, &self.file].into_iter().flatten() {
            table.extend(extra.clone());
        }
        table
    }
}

fn read_file(path: &Path) -> Result<PriceTable, String> {
    let text =
        std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    PriceTable::parse(&text)
        .map_err(|error| format!("{}: not a models.dev price file: {error}", path.display()))
}

/// Writes `text` to `path` whole or not at all.
async fn keep(path: &Path, text: &str) -> std::io::Result<()> {
    let partial = path.with_extension("json.partial");
    tokio::fs::write(&partial, text).await?;
    tokio::fs::rename(&partial, path).await
}

/// The table at `url`, and its text.
async fn download(transport: &Transport, url: &Url) -> Result<(PriceTable, String), String> {
    let request = OutboundRequest {
        method: Method::GET,
        url: url.clone(),
        headers: HeaderMap::from_iter([(ACCEPT, HeaderValue::from_static("application/json"))]),
        body: Bytes::new(),
    };
    let exchange = async {
        let response = transport
            .send(request)
            .await
            .map_err(|error| error.to_string())?;
        if !response.status.is_success() {
            return Err(format!("it answered {}", response.status));
        }
        response
            .body
            .collect(MAX_DOWNLOAD_BYTES)
            .await
            .map_err(|error| error.to_string())
    };
    let body = tokio::time::timeout(DOWNLOAD_TIMEOUT, exchange)
        .await
        .map_err(|_elapsed| {
            format!("it did not answer within {}s", DOWNLOAD_TIMEOUT.as_secs())
        })??;
    let text = String::from_utf8(body.to_vec()).map_err(|error| format!("not UTF-8: {error}"))?;
    let table = PriceTable::parse(&text)
        .map_err(|error| format!("not a models.dev price file: {error}"))?;
    Ok((table, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_table_reads_and_prices_the_common_models() {
        let table = PriceTable::parse(BUNDLED).unwrap();
        for model in [
            "claude-sonnet-4-5",
            "claude-sonnet-4",
            "gpt-5",
            "gemini-2.5-pro",
        ] {
            assert!(table.price(model).is_some(), "{model}");
        }
    }

    #[test]
    fn names_are_matched_loosely_and_cache_tokens_priced_apart() {
        let table = PriceTable::parse(
            r#"{"a": {"models": {"claude-sonnet-4-5": {"cost": {"input": 3, "output": 15,
                "cache_read": 0.3, "cache_write": 3.75}}, "free": {}}}}"#,
        )
        .unwrap();
        for name in [
            "claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4.5",
            "anthropic/claude-sonnet-4-5",
        ] {
            assert!(table.price(name).is_some(), "{name}");
        }
        assert_eq!(table.price("free"), None);
        let price = table.price("claude-sonnet-4-5").unwrap();
        let usage = Usage {
            input_tokens: 1_000_000 + 2_000_000 + 1_000_000,
            cache_read_tokens: 2_000_000,
            cache_write_tokens: 1_000_000,
            output_tokens: 100_000,
            ..Usage::default()
        };
        // 1M uncached × 3 + 2M read × 0.3 + 1M written × 3.75 + 0.1M out × 15.
        let cost = price.cost(&usage);
        assert!((cost - (3.0 + 0.6 + 3.75 + 1.5)).abs() < 1e-9, "{cost}");
    }

    /// A price host on loopback: each GET gets the status and body set in
    /// `answer` at that moment.
    async fn price_host(answer: Arc<Mutex<(u16, String)>>) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!(
            "http://{}/api.json",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        #[expect(
            clippy::disallowed_methods,
            reason = "the price host lives as long as the test's runtime"
        )]
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut byte = [0; 1];
                while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1
                {
                    head.push(byte[0]);
                }
                let (status, body) = answer.lock().unwrap().clone();
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        url
    }

    fn priced(input: u32) -> String {
        format!(
            r#"{{"host": {{"models": {{"m": {{"cost": {{"input": {input}, "output": 1}}}}}}}}}}"#
        )
    }

    fn input_price(prices: &Prices) -> Option<f64> {
        prices.table().price("m").map(|price| price.input)
    }

    #[tokio::test]
    async fn downloads_refresh_the_table_keep_the_last_good_one_and_survive_a_restart() {
        let answer = Arc::new(Mutex::new((200, priced(1))));
        let url = price_host(answer.clone()).await;
        let data = tempfile::tempdir().unwrap();
        let config = PricingConfig {
            file: None,
            url: Some(url),
            refresh: Duration::from_hours(1),
        };
        let prices = Prices::load(&config, data.path()).unwrap();
        assert_eq!(prices.refreshes(), Some(Duration::from_hours(1)));
        assert_eq!(input_price(&prices), None, "nothing downloaded yet");
        assert!(
            prices.table().price("claude-sonnet-4-5").is_some(),
            "bundled"
        );

        prices.refresh().await;
        assert_eq!(input_price(&prices), Some(1.0));
        *answer.lock().unwrap() = (500, "down".to_owned());
        prices.refresh().await;
        assert_eq!(
            input_price(&prices),
            Some(1.0),
            "a failed download keeps the last"
        );
        *answer.lock().unwrap() = (200, "{not json".to_owned());
        prices.refresh().await;
        assert_eq!(input_price(&prices), Some(1.0), "so does a broken one");
        *answer.lock().unwrap() = (200, priced(2));
        prices.refresh().await;
        assert_eq!(input_price(&prices), Some(2.0));

        // A restart prices with the last download before downloading.
        *answer.lock().unwrap() = (503, String::new());
        let restarted = Prices::load(&config, data.path()).unwrap();
        assert_eq!(input_price(&restarted), Some(2.0));
        // Without the URL, the download is not used.
        let no_url = PricingConfig {
            url: None,
            ..config
        };
        assert_eq!(
            input_price(&Prices::load(&no_url, data.path()).unwrap()),
            None
        );
        assert_eq!(
            Prices::load(&no_url, data.path()).unwrap().refreshes(),
            None
        );
    }

    #[tokio::test]
    async fn the_file_goes_over_the_download_and_is_read_again() {
        let url = price_host(Arc::new(Mutex::new((200, priced(1))))).await;
        let data = tempfile::tempdir().unwrap();
        let file = data.path().join("mine.json");
        std::fs::write(&file, priced(9)).unwrap();
        let config = PricingConfig {
            file: Some(file.clone()),
            url: Some(url),
            refresh: Duration::from_hours(1),
        };
        let prices = Prices::load(&config, data.path()).unwrap();
        assert_eq!(input_price(&prices), Some(9.0));
        prices.refresh().await;
        assert_eq!(input_price(&prices), Some(9.0), "the file wins");
        std::fs::write(&file, priced(7)).unwrap();
        prices.refresh().await;
        assert_eq!(input_price(&prices), Some(7.0), "the file is read again");
        std::fs::write(&file, "broken").unwrap();
        prices.refresh().await;
        assert_eq!(
            input_price(&prices),
            Some(7.0),
            "a broken file keeps its last prices"
        );
        assert!(
            Prices::load(&config, data.path())
                .unwrap_err()
                .contains("not a models.dev price file"),
            "but is refused at start"
        );
    }
}
