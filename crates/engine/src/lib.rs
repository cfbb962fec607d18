//! subgate's request pipeline.
//!
//! The server hands the engine a client's request; the engine decides which
//! provider and account answer it, sends it, and hands back a [`Reply`] (or a
//! [`GatewayError`]) for the server to write. The engine also meters every
//! request and owns the background work: the usage writer and catalog
//! refreshes. It names providers only through `subgate-providers` and
//! dialects only through `subgate-protocol`.

mod accounts;
mod admin;
mod catalog;
mod clock;
mod credentials;
mod error;
mod fetch;
mod generate;
mod health;
mod import;
mod keys;
mod login;
mod overview;
mod passthrough;
mod pool;
mod pricing;
mod report;
mod tokens;
mod translate;
mod usage;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, StatusCode};
use subgate_config::{Config, Database, ProviderConfig, RoutingConfig};
use subgate_core::{Dialect, RequestId, expose};
use subgate_providers::{Account, BuildError, Login, Provider};
use subgate_store::{Store, StoreError, StoreLocation};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::accounts::{AccountError, AccountStatus, QuotaStatus};
pub use crate::admin::admin_token;
use crate::catalog::{Catalog, Routes};
pub use crate::clock::now_millis;
pub use crate::error::{ErrorDetails, GatewayError};
use crate::health::HealthBook;
pub use crate::health::RestInfo;
pub use crate::import::{Found, ImportError, ImportSource, read as read_import};
pub use crate::keys::{
    BudgetPeriod, ClientKey, IssuedKey, KeyError, KeyInfo, KeyLimits, KeyScopes, NewKey,
};
pub use crate::login::{LoginError, LoginStart, Saved};
pub use crate::overview::{ModelRest, ProviderQuota, WindowTotal};
use crate::pool::{Affinity, Pool};
pub use crate::pricing::{Price, PriceTable};
pub use crate::report::{UsageLine, since};
use crate::usage::{Meter, UsageSink};
pub use subgate_store::UsageGroup;

/// A client's request as the server read it.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// The API the client speaks (from the route).
    pub dialect: Dialect,
    /// The body as received.
    pub body: Bytes,
    /// The model named in the path (Gemini).
    pub model: Option<String>,
    /// Streaming asked for in the path (Gemini's `streamGenerateContent`).
    pub stream: bool,
    /// Gemini's `alt=sse`.
    pub sse: bool,
    /// The request headers (Anthropic's betas travel on).
    pub headers: HeaderMap,
    /// The client key it came with, checked ([`Engine::authenticate`]).
    pub key: Option<Arc<ClientKey>>,
}

impl ClientRequest {
    /// A request whose dialect carries everything in its body.
    pub fn new(dialect: Dialect, body: Bytes, headers: HeaderMap) -> Self {
        Self {
            dialect,
            body,
            model: None,
            stream: false,
            sse: false,
            headers,
            key: None,
        }
    }

    pub(crate) fn line(&self) -> subgate_protocol::dispatch::RequestLine<'_> {
        subgate_protocol::dispatch::RequestLine {
            model: self.model.as_deref(),
            stream: self.stream,
            sse: self.sse,
        }
    }
}

/// Builds the providers: API-key entries with their configured accounts,
/// subscriptions with the enabled logins stored for them (a subscription
/// with none is left out until someone logs in).
async fn build_providers(
    entries: &[ProviderConfig],
    store: &Store,
) -> Result<Vec<Provider>, StartError> {
    let rows = store.accounts().await?;
    let mut providers = Vec::with_capacity(entries.len());
    for entry in entries {
        let built = if entry.kind.is_subscription() {
            let accounts: Vec<Account> = rows
                .iter()
                .filter(|row| row.provider == entry.name && row.enabled)
                .filter_map(|row| {
                    let login = serde_json::from_str::<Login>(expose(&row.credentials))
                        .inspect_err(|error| {
                            tracing::error!(account = %row.name, %error, "A stored login cannot be read; log in again.");
                        })
                        .ok()?;
                    let priority = u32::try_from(row.priority).unwrap_or(0);
                    Some(Account::login(row.id.clone(), row.name.clone(), priority, login))
                })
                .collect();
            if accounts.is_empty() {
                continue;
            }
            Provider::with_accounts(entry, accounts)
        } else {
            Provider::from_config(entry)
        };
        match built {
            Ok(provider) => providers.push(provider),
            Err(source) => {
                return Err(StartError::Provider {
                    name: entry.name.clone(),
                    source,
                });
            }
        }
    }
    let known = |name: &str| entries.iter().any(|entry| entry.name == name);
    for row in rows.iter().filter(|row| !known(&row.provider)) {
        tracing::warn!(provider = %row.provider, account = %row.name, "A stored login belongs to no configured provider; it is not used.");
    }
    Ok(providers)
}

/// An answer for the client: status, headers, and a body whole or streamed.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers (content type, request id, provider, account).
    pub headers: HeaderMap,
    /// The body.
    pub body: ReplyBody,
}

/// A reply's body.
pub enum ReplyBody {
    /// The whole body.
    Full(Bytes),
    /// A stream of chunks in the client's dialect; a failure mid-stream is
    /// already written into it as the dialect's error event.
    Stream(Pin<Box<dyn Stream<Item = Bytes> + Send>>),
}

impl std::fmt::Debug for ReplyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(bytes) => f.debug_tuple("Full").field(&bytes.len()).finish(),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// A model the gateway can serve.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ModelInfo {
    /// The id clients ask for.
    pub id: String,
    /// The provider that serves it.
    pub provider: String,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A provider could not be built.
    #[error("provider `{name}`: {source}")]
    Provider {
        /// The provider.
        name: String,
        /// The cause.
        source: BuildError,
    },
    /// `[pricing]`'s file could not be read.
    #[error("pricing: {0}")]
    Pricing(String),
}

/// The request pipeline; cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The configured entries, for logins (whose providers may have no
    /// accounts yet, and so are not in `providers`).
    entries: Vec<ProviderConfig>,
    /// The config file read, for messages that send people to it.
    config_file: Option<PathBuf>,
    /// The providers with accounts, in config order.
    providers: Vec<Provider>,
    /// One pool per provider, in the same order.
    pools: Vec<Pool>,
    catalog: Catalog,
    routes: Routes,
    health: HealthBook,
    affinity: Affinity,
    routing: RoutingConfig,
    store: Store,
    usage: UsageSink,
    /// The client keys in force.
    keys: keys::KeyBook,
    /// What each model's tokens cost.
    prices: pricing::Prices,
    /// `server.require_keys`: `None` requires them once one exists.
    require_keys: Option<bool>,
    tasks: TaskTracker,
    /// Cancelled when the shutdown deadline passes: requests still running
    /// end with an error in their dialect.
    stop_requests: CancellationToken,
    /// Cancelled last: the usage writer and periodic work stop.
    stop_background: CancellationToken,
}

impl Engine {
    /// Opens the store, builds the providers and starts background work:
    /// catalog refreshes, quota polls and the health sync.
    pub async fn start(config: &Config) -> Result<Self, StartError> {
        let engine = Self::open(config).await?;
        engine.every(catalog::REFRESH_EVERY, |inner| async move {
            inner
                .catalog
                .refresh(&inner.providers, &inner.store, false)
                .await;
        });
        engine.every(health::SYNC_EVERY, |inner| async move {
            inner.health.sync().await;
        });
        engine.every(keys::SYNC_EVERY, |inner| async move {
            if let Err(error) = inner.keys.sync(&inner.store).await {
                tracing::warn!(%error, "Reading the client keys failed; the last ones read stay in force.");
            }
            let prices = inner.prices.table();
            if let Err(error) = inner.keys.recount_budgets(&inner.store, &prices).await {
                tracing::warn!(%error, "Reading what keys spent failed; budgets count this replica's spend until the next read.");
            }
        });
        if let Some(period) = engine.inner.prices.refreshes() {
            engine.every(period, |inner| async move {
                inner.prices.refresh().await;
            });
        }
        engine.every(credentials::REFRESH_EVERY, |inner| async move {
            credentials::refresh_due(&inner).await;
        });
        if engine.inner.providers.iter().any(|provider| {
            provider
                .accounts()
                .first()
                .is_some_and(|account| provider.quota_request(account).is_some())
        }) {
            engine.every(accounts::QUOTA_EVERY, |inner| async move {
                accounts::poll_quotas(&inner).await;
            });
        }
        Ok(engine)
    }

    /// Opens the store and builds the providers, without periodic
    /// background work: for one-shot commands (`subgate models`,
    /// `subgate accounts`), which refresh what they need themselves.
    pub async fn open(config: &Config) -> Result<Self, StartError> {
        let location = match &config.storage.database {
            Database::Sqlite { path } => StoreLocation::Sqlite(path.clone()),
            Database::Postgres { url } => StoreLocation::Postgres {
                url: url.clone(),
                schema: None,
            },
        };
        let store = Store::open(&location).await?;
        let providers = build_providers(&config.providers, &store).await?;

        let (usage, records) = UsageSink::new();
        let tasks = TaskTracker::new();
        let stop_background = CancellationToken::new();
        tasks.spawn(usage::run_writer(
            store.clone(),
            records,
            stop_background.clone(),
        ));

        let catalog = Catalog::new(&providers);
        catalog.load_cached(&store, &providers).await;
        let health = HealthBook::new(store.clone(), config.routing, tasks.clone());
        health.load().await;
        let keys = keys::KeyBook::default();
        keys.sync(&store).await?;
        let prices = pricing::Prices::load(&config.pricing, &config.storage.data_dir)
            .map_err(StartError::Pricing)?;
        let engine = Self {
            inner: Arc::new(Inner {
                entries: config.providers.clone(),
                config_file: config.source.clone(),
                pools: providers.iter().map(Pool::new).collect(),
                routes: Routes::new(&config.aliases, &providers),
                catalog,
                health,
                affinity: Affinity::new(config.routing.affinity_ttl),
                routing: config.routing,
                providers,
                store,
                usage,
                keys,
                prices,
                require_keys: config.server.require_keys,
                tasks,
                stop_requests: CancellationToken::new(),
                stop_background,
            }),
        };
        Ok(engine)
    }

    /// Runs `work` now and then every `period` until shutdown.
    fn every<F, Fut>(&self, period: Duration, work: F)
    where
        F: Fn(Arc<Inner>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let inner = self.inner.clone();
        let stop = self.inner.stop_background.clone();
        self.inner.tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = work(inner.clone()) => {}
                    () = stop.cancelled() => return,
                }
                tokio::select! {
                    () = tokio::time::sleep(period) => {}
                    () = stop.cancelled() => return,
                }
            }
        });
    }

    /// Fetches every provider's catalog now.
    pub async fn refresh_catalogs(&self) {
        let inner = &self.inner;
        inner
            .catalog
            .refresh(&inner.providers, &inner.store, false)
            .await;
    }

    /// Every model that can be served right now (some account of a
    /// provider listing it is not resting), one entry per id; then the
    /// aliases that can be.
    pub fn models(&self) -> Vec<ModelInfo> {
        let inner = &self.inner;
        let now = now_millis();
        let serves = |provider: usize, model: &str| {
            inner.providers[provider]
                .accounts()
                .iter()
                .any(|account| inner.health.resting(&account.id, model, now).is_none())
        };
        let map = inner.catalog.map();
        let mut models: Vec<ModelInfo> = map
            .listing()
            .filter_map(|(id, owners)| {
                let provider = owners.iter().copied().find(|&owner| serves(owner, id))?;
                Some(ModelInfo {
                    id: id.to_owned(),
                    provider: inner.providers[provider].name().to_owned(),
                })
            })
            .collect();
        for (alias, targets) in inner.routes.aliases() {
            if let Some(target) = targets
                .iter()
                .find(|target| serves(target.provider, &target.upstream_model))
            {
                models.push(ModelInfo {
                    id: alias.clone(),
                    provider: inner.providers[target.provider].name().to_owned(),
                });
            }
        }
        models
    }

    /// The providers that have accounts to serve with, in routing order.
    pub fn provider_names(&self) -> Vec<&str> {
        self.inner.providers.iter().map(Provider::name).collect()
    }

    /// Checks that the store answers.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.inner.store.ping().await
    }

    /// Records a request the server refused before the engine saw it (a
    /// body over the limit).
    pub fn record_refused(&self, dialect: Dialect, error: &GatewayError) {
        let mut meter = Meter::new(
            &self.inner.usage,
            RequestId::from(uuid::Uuid::now_v7()),
            dialect,
        );
        meter.finish(error.status.as_u16(), None, Some(error.class));
    }

    /// Ends whatever is still in flight (each request gets an error in its
    /// dialect and keeps its usage record), stores every record, and stops
    /// background work. Call it after the server stopped accepting and its
    /// grace period ran out or every request finished.
    pub async fn shutdown(&self) {
        self.inner.stop_requests.cancel();
        let left = self.inner.usage.wait_idle(Duration::from_secs(5)).await;
        if left > 0 {
            tracing::warn!(
                requests = left,
                "Requests still running at shutdown; their usage may be lost."
            );
        }
        self.inner.stop_background.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.store.close().await;
    }

    /// Where a requested model goes, looking at fresh catalogs once before
    /// giving up (they may be stale, or still loading just after start).
    async fn resolve_model(&self, model: &str) -> Result<Vec<catalog::Target>, GatewayError> {
        let inner = &self.inner;
        let targets = inner
            .catalog
            .resolve(&inner.providers, &inner.routes, model);
        if !targets.is_empty() {
            return Ok(targets);
        }
        inner
            .catalog
            .refresh(&inner.providers, &inner.store, true)
            .await;
        let targets = inner
            .catalog
            .resolve(&inner.providers, &inner.routes, model);
        if targets.is_empty() {
            let available: Vec<String> = self.models().into_iter().map(|model| model.id).collect();
            let available: Vec<&str> = available.iter().map(String::as_str).collect();
            return Err(GatewayError::unknown_model(model, &available));
        }
        Ok(targets)
    }
}
