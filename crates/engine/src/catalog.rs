//! Which provider serves which model.
//!
//! A requested model resolves, in order, through: a `provider/model` prefix
//! naming a configured provider (the rest goes upstream as it is), then the
//! providers' catalogs in config order. A provider's catalog is the `models`
//! list from its config entry, or else what its `GET /models` returns,
//! fetched in the background at start, again every few minutes, and at once
//! when a request names a model nobody is known to serve.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use subgate_providers::Provider;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How often catalogs fetched from upstreams are refreshed.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_mins(10);
/// The least time between two fetches triggered by unknown models, so a
/// client asking for a bad name cannot hammer the upstreams.
const MISS_COOLDOWN: Duration = Duration::from_secs(30);
/// How long fetching one catalog may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest catalog body accepted.
const MAX_CATALOG_BYTES: usize = 8 << 20;

/// Where a requested model goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Index into the engine's providers.
    pub(crate) provider: usize,
    /// The model name to send upstream.
    pub(crate) upstream_model: String,
}

/// Every model the gateway can serve right now.
#[derive(Debug, Default)]
pub(crate) struct ModelMap {
    /// Model id → index of the first provider (in config order) serving it.
    owners: HashMap<String, usize>,
    /// `(model, provider index)` in listing order, one entry per model.
    listing: Vec<(String, usize)>,
}

impl ModelMap {
    fn build(catalogs: &[Arc<[String]>]) -> Self {
        let mut map = Self::default();
        for (provider, models) in catalogs.iter().enumerate() {
            for model in models.iter() {
                if !map.owners.contains_key(model) {
                    map.owners.insert(model.clone(), provider);
                    map.listing.push((model.clone(), provider));
                }
            }
        }
        map
    }

    /// `(model, provider index)` for every model, one entry each.
    pub(crate) fn listing(&self) -> &[(String, usize)] {
        &self.listing
    }
}

/// The catalogs of every provider and the map built from them.
#[derive(Debug)]
pub(crate) struct Catalog {
    catalogs: RwLock<Vec<Arc<[String]>>>,
    map: RwLock<Arc<ModelMap>>,
    /// One fetch at a time; holds when the last one started.
    fetching: Mutex<Option<Instant>>,
}

impl Catalog {
    /// A catalog holding the configured lists; fetched ones start empty.
    pub(crate) fn new(providers: &[Provider]) -> Self {
        let catalogs: Vec<Arc<[String]>> = providers
            .iter()
            .map(|provider| {
                provider
                    .configured_models()
                    .map_or_else(|| Arc::from([]), Arc::from)
            })
            .collect();
        let map = ModelMap::build(&catalogs);
        Self {
            catalogs: RwLock::new(catalogs),
            map: RwLock::new(Arc::new(map)),
            fetching: Mutex::new(None),
        }
    }

    /// The current model map.
    pub(crate) fn map(&self) -> Arc<ModelMap> {
        self.map
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |map| map.clone())
    }

    /// Where `requested` goes, by prefix or catalog, if anywhere.
    pub(crate) fn resolve(&self, providers: &[Provider], requested: &str) -> Option<Target> {
        if let Some((prefix, rest)) = requested.split_once('/')
            && !rest.is_empty()
            && let Some(provider) = providers
                .iter()
                .position(|provider| provider.name() == prefix)
        {
            return Some(Target {
                provider,
                upstream_model: rest.to_owned(),
            });
        }
        let provider = *self.map().owners.get(requested)?;
        Some(Target {
            provider,
            upstream_model: requested.to_owned(),
        })
    }

    /// Fetches the catalogs of providers that have no configured list.
    /// With `on_miss`, does nothing if a fetch started recently.
    pub(crate) async fn refresh(&self, providers: &[Provider], on_miss: bool) {
        let mut last = self.fetching.lock().await;
        if on_miss && last.is_some_and(|started| started.elapsed() < MISS_COOLDOWN) {
            return;
        }
        *last = Some(Instant::now());
        let fetches = providers
            .iter()
            .enumerate()
            .filter(|(_, provider)| provider.configured_models().is_none())
            .map(|(index, provider)| async move { (index, fetch(provider).await) });
        let results = futures_util::future::join_all(fetches).await;
        if results.is_empty() {
            return;
        }
        let mut catalogs = match self.catalogs.write() {
            Ok(catalogs) => catalogs,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (index, result) in results {
            if let Some(models) = result {
                catalogs[index] = models.into();
            }
        }
        let map = Arc::new(ModelMap::build(&catalogs));
        drop(catalogs);
        match self.map.write() {
            Ok(mut current) => *current = map,
            Err(poisoned) => *poisoned.into_inner() = map,
        }
    }
}

/// One provider's catalog, or `None` (logged) if it could not be read.
async fn fetch(provider: &Provider) -> Option<Vec<String>> {
    let account = provider.accounts().first()?;
    let request = provider.models_request(account);
    let exchange = async {
        let response = provider
            .transport()
            .send(request)
            .await
            .map_err(|error| error.to_string())?;
        if !response.status.is_success() {
            return Err(format!("it answered {}", response.status));
        }
        let body = response
            .body
            .collect(MAX_CATALOG_BYTES)
            .await
            .map_err(|error| error.to_string())?;
        provider
            .parse_models(&body)
            .map_err(|error| format!("its answer is not a model list: {error}"))
    };
    match tokio::time::timeout(FETCH_TIMEOUT, exchange).await {
        Ok(Ok(models)) => {
            tracing::debug!(
                provider = provider.name(),
                models = models.len(),
                "Model catalog fetched."
            );
            Some(models)
        }
        Ok(Err(error)) => {
            tracing::warn!(provider = provider.name(), %error, "Fetching the model catalog failed.");
            None
        }
        Err(_elapsed) => {
            tracing::warn!(
                provider = provider.name(),
                "Fetching the model catalog timed out."
            );
            None
        }
    }
}
