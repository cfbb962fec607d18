//! Which providers serve which model.
//!
//! A requested model resolves to an ordered list of targets, through the
//! first of: a config alias (its `provider/model` targets in order); a
//! `provider/model` prefix naming a configured provider (the rest goes
//! upstream as it is); the providers' catalogs (every provider listing it,
//! in config order); the model's family (each provider claims the names of
//! its vendor's models: `claude-*`, `gpt-*`, `gemini-*`, `kimi-*`, …), for
//! models newer than any catalog.
//!
//! A provider's catalog is the `models` list from its config entry, or else
//! what its `GET /models` returns: fetched in the background at start,
//! again every few minutes, and at once when a request names a model nobody
//! is known to serve. Until the first fetch (and when fetches fail) it is
//! the last fetched list, kept in the store, or else the list built into
//! the provider.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use subgate_config::Alias;
use subgate_providers::Provider;
use subgate_store::Store;
use tokio::sync::Mutex;

use crate::clock::now_millis;
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

/// Every model the providers' catalogs list.
#[derive(Debug, Default)]
pub(crate) struct ModelMap {
    /// Model id → indexes of the providers listing it, in config order.
    owners: HashMap<String, Vec<usize>>,
    /// Model ids in listing order, one entry per model.
    listing: Vec<String>,
}

impl ModelMap {
    fn build(catalogs: &[Arc<[String]>]) -> Self {
        let mut map = Self::default();
        for (provider, models) in catalogs.iter().enumerate() {
            for model in models.iter() {
                let owners = map.owners.entry(model.clone()).or_insert_with(|| {
                    map.listing.push(model.clone());
                    Vec::new()
                });
                if !owners.contains(&provider) {
                    owners.push(provider);
                }
            }
        }
        map
    }

    /// `(model, providers listing it)` for every model, one entry each.
    pub(crate) fn listing(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.listing
            .iter()
            .map(|model| (model.as_str(), self.owners[model].as_slice()))
    }
}

/// An alias with its providers found.
#[derive(Debug)]
pub(crate) struct Routes {
    aliases: Vec<(String, Vec<Target>)>,
}

impl Routes {
    pub(crate) fn new(aliases: &[Alias], providers: &[Provider]) -> Self {
        let aliases = aliases
            .iter()
            .map(|alias| {
                let targets = alias
                    .targets
                    .iter()
                    .filter_map(|(provider, model)| {
                        Some(Target {
                            provider: providers.iter().position(|p| p.name() == provider)?,
                            upstream_model: model.clone(),
                        })
                    })
                    .collect();
                (alias.name.clone(), targets)
            })
            .collect();
        Self { aliases }
    }

    /// Every alias and its targets.
    pub(crate) fn aliases(&self) -> &[(String, Vec<Target>)] {
        &self.aliases
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
    /// A catalog holding the configured lists; the others start as the
    /// provider's built-in list until fetched.
    pub(crate) fn new(providers: &[Provider]) -> Self {
        let catalogs: Vec<Arc<[String]>> = providers
            .iter()
            .map(|provider| match provider.configured_models() {
                Some(models) => Arc::from(models),
                None => provider
                    .builtin_models()
                    .iter()
                    .map(|&model| model.to_owned())
                    .collect(),
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

    /// Where `requested` goes: the targets to try, in order (empty when
    /// nothing serves it).
    pub(crate) fn resolve(
        &self,
        providers: &[Provider],
        routes: &Routes,
        requested: &str,
    ) -> Vec<Target> {
        if let Some((_, targets)) = routes.aliases.iter().find(|(name, _)| name == requested) {
            return targets.clone();
        }
        if let Some((prefix, rest)) = requested.split_once('/')
            && !rest.is_empty()
            && let Some(provider) = providers
                .iter()
                .position(|provider| provider.name() == prefix)
        {
            return vec![Target {
                provider,
                upstream_model: rest.to_owned(),
            }];
        }
        let owners: Vec<usize> = match self.map().owners.get(requested) {
            Some(owners) => owners.clone(),
            None => (0..providers.len())
                .filter(|&index| providers[index].claims_family(requested))
                .collect(),
        };
        owners
            .into_iter()
            .map(|provider| Target {
                provider,
                upstream_model: requested.to_owned(),
            })
            .collect()
    }

    /// Replaces fetched catalogs with the lists last stored, where there
    /// are any.
    pub(crate) async fn load_cached(&self, store: &Store, providers: &[Provider]) {
        let mut loaded = Vec::new();
        for (index, provider) in providers.iter().enumerate() {
            if provider.configured_models().is_some() {
                continue;
            }
            if let Ok(Some(text)) = store.setting(&cache_key(provider)).await
                && let Ok(models) = serde_json::from_str::<Vec<String>>(&text)
            {
                loaded.push((index, models));
            }
        }
        if !loaded.is_empty() {
            self.replace(loaded);
        }
    }

    fn replace(&self, fresh: Vec<(usize, Vec<String>)>) {
        let mut catalogs = match self.catalogs.write() {
            Ok(catalogs) => catalogs,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (index, models) in fresh {
            catalogs[index] = models.into();
        }
        let map = Arc::new(ModelMap::build(&catalogs));
        drop(catalogs);
        match self.map.write() {
            Ok(mut current) => *current = map,
            Err(poisoned) => *poisoned.into_inner() = map,
        }
    }

    /// Fetches the catalogs of providers that have no configured list.
    /// With `on_miss`, does nothing if a fetch started recently.
    pub(crate) async fn refresh(&self, providers: &[Provider], store: &Store, on_miss: bool) {
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
        let fresh: Vec<(usize, Vec<String>)> = results
            .into_iter()
            .filter_map(|(index, models)| Some((index, models?)))
            .collect();
        if fresh.is_empty() {
            return;
        }
        for (index, models) in &fresh {
            if let Ok(text) = serde_json::to_string(models)
                && let Err(error) = store
                    .set_setting(&cache_key(&providers[*index]), &text, now_millis())
                    .await
            {
                tracing::debug!(%error, "Keeping the fetched catalog failed.");
            }
        }
        self.replace(fresh);
    }
}

/// The setting a provider's fetched catalog is kept under.
fn cache_key(provider: &Provider) -> String {
    format!("catalog:{}", provider.name())
}

/// One provider's catalog, or `None` (logged) if it could not be read.
async fn fetch(provider: &Provider) -> Option<Vec<String>> {
    let account = provider.accounts().first()?;
    let request = provider.models_request(account)?;
    let limits = (MAX_CATALOG_BYTES, FETCH_TIMEOUT);
    match crate::fetch::fetch(provider, request, limits, "a model list", |body| {
        provider.parse_models(body)
    })
    .await
    {
        Ok(models) => {
            tracing::debug!(
                provider = provider.name(),
                models = models.len(),
                "Model catalog fetched."
            );
            Some(models)
        }
        Err(error) => {
            tracing::warn!(provider = provider.name(), %error, "Fetching the model catalog failed.");
            None
        }
    }
}
