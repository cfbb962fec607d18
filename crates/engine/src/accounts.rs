//! Accounts as people see them (`subgate accounts`): each one's state,
//! rests, load and quota; clearing rests; and polling the quota of
//! providers that have a usage endpoint.

use std::time::Duration;

use subgate_providers::{Failure, Provider, Quota, Rest, Scope};
use subgate_store::StoreError;

use crate::clock::now_millis;
use crate::health::RestInfo;
use crate::{Engine, Inner};

/// How often usage endpoints are asked for each account's quota.
pub(crate) const QUOTA_EVERY: Duration = Duration::from_mins(1);
/// How long one quota request may take.
const QUOTA_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest usage answer read.
const MAX_QUOTA_BYTES: usize = 1 << 20;

/// One account's state (serialized as `subgate accounts list --json` and
/// the management API show it).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AccountStatus {
    /// The provider entry.
    pub provider: String,
    /// What people see.
    pub name: String,
    /// Stable id (no secret in it).
    pub id: String,
    /// `ready`, or the state of the longest rest on the whole account.
    pub state: &'static str,
    /// Lower is preferred under the `priority` strategy.
    pub priority: u32,
    /// Requests in flight now.
    pub in_flight: u32,
    /// Requests started since the gateway started.
    pub started: u64,
    /// Rests in force: the whole account's (model empty) and per model.
    pub rests: Vec<RestInfo>,
    /// The quota the upstream last reported.
    pub quota: Vec<QuotaStatus>,
}

/// One quota window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuotaStatus {
    /// What it counts.
    pub window: String,
    /// The allowance.
    pub limit: f64,
    /// What is left.
    pub remaining: f64,
    /// When it refills, Unix milliseconds.
    pub resets_at: Option<i64>,
}

impl AccountStatus {
    /// The quota window with the smallest share left.
    pub fn tightest_quota(&self) -> Option<&QuotaStatus> {
        let share = |window: &QuotaStatus| {
            if window.limit > 0.0 {
                window.remaining / window.limit
            } else {
                window.remaining
            }
        };
        self.quota
            .iter()
            .min_by(|a, b| share(a).total_cmp(&share(b)))
    }
}

/// Why clearing an account's rests failed.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// No account has that name (or id).
    #[error("no account is named `{0}`; `subgate accounts list` shows them")]
    Unknown(String),
    /// Several providers have an account of that name.
    #[error("several providers have an account named `{0}`; name it as `provider/{0}`")]
    Ambiguous(String),
    /// The store could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Engine {
    /// Every configured account with its state.
    pub fn accounts(&self) -> Vec<AccountStatus> {
        let inner = &self.inner;
        let now = now_millis();
        let rests = inner.health.snapshot(now);
        let mut list = Vec::new();
        for (provider, pool) in inner.providers.iter().zip(&inner.pools) {
            for (index, account) in provider.accounts().iter().enumerate() {
                let own: Vec<RestInfo> = rests
                    .iter()
                    .filter(|rest| rest.account_id == account.id)
                    .cloned()
                    .collect();
                let state = own
                    .iter()
                    .filter(|rest| rest.model.is_empty())
                    .map(|rest| rest.state)
                    .next()
                    .unwrap_or("ready");
                let (in_flight, started) = pool.load(index);
                list.push(AccountStatus {
                    provider: provider.name().to_owned(),
                    name: account.name.clone(),
                    id: account.id.clone(),
                    state,
                    priority: account.priority,
                    in_flight,
                    started,
                    rests: own,
                    quota: pool
                        .quota(index)
                        .map(|quota| {
                            quota
                                .windows
                                .into_iter()
                                .map(|window| QuotaStatus {
                                    window: window.name,
                                    limit: window.limit,
                                    remaining: window.remaining,
                                    resets_at: window.resets_at,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
        }
        list
    }

    /// Clears every rest of the account named `name` (its name, or
    /// `provider/name`, or its id). Returns the account's name and how many
    /// stored health rows were removed (ended ones included).
    pub async fn reset_account(&self, name: &str) -> Result<(String, u64), ResetError> {
        let matches: Vec<_> = self
            .inner
            .providers
            .iter()
            .flat_map(|provider| {
                provider
                    .accounts()
                    .iter()
                    .map(move |account| (provider.name(), account))
            })
            .filter(|(provider, account)| {
                account.name == name
                    || account.id == name
                    || name
                        .split_once('/')
                        .is_some_and(|(p, n)| p == *provider && n == account.name)
            })
            .collect();
        let account = match matches.as_slice() {
            [] => return Err(ResetError::Unknown(name.to_owned())),
            [(_, account)] => account,
            [..] => return Err(ResetError::Ambiguous(name.to_owned())),
        };
        let cleared = self.inner.health.reset(&account.id).await?;
        Ok((account.name.clone(), cleared))
    }

    /// Asks every usage endpoint for its account's quota now.
    pub async fn refresh_quotas(&self) {
        poll_quotas(&self.inner).await;
    }
}

/// Reads the quota of every account whose provider has a usage endpoint;
/// a used-up window rests the account until it resets.
pub(crate) async fn poll_quotas(inner: &Inner) {
    let polls = inner
        .providers
        .iter()
        .zip(&inner.pools)
        .flat_map(|(provider, pool)| {
            (0..provider.accounts().len()).map(move |index| (provider, pool, index))
        })
        .map(|(provider, pool, index)| async move {
            let Some(quota) = fetch_quota(provider, index).await else {
                return;
            };
            let account = &provider.accounts()[index];
            let now = now_millis();
            match quota.exhausted_until().filter(|&until| until > now) {
                // Already resting for it: nothing new to record or store.
                Some(until)
                    if inner.health.resting(&account.id, "", now)
                        == Some((Rest::QuotaExhausted, until)) => {}
                Some(until) => {
                    let failure = Failure {
                        class: subgate_core::FailureClass::UpstreamRateLimited,
                        retry_after: u64::try_from(until - now).ok().map(Duration::from_millis),
                        rest: Some(Rest::QuotaExhausted),
                        scope: Scope::Account,
                    };
                    inner.health.record_failure(
                        &account.id,
                        "",
                        &failure,
                        "the usage endpoint reports a used-up quota window",
                        now,
                    );
                }
                None => inner.health.lift(&account.id, Rest::QuotaExhausted, now),
            }
            pool.set_quota(index, quota);
        });
    futures_util::future::join_all(polls).await;
}

async fn fetch_quota(provider: &Provider, index: usize) -> Option<Quota> {
    let account = &provider.accounts()[index];
    let request = provider.quota_request(account)?;
    let limits = (MAX_QUOTA_BYTES, QUOTA_TIMEOUT);
    crate::fetch::fetch(provider, request, limits, "a usage report", |body| {
        provider.parse_quota(body)
    })
    .await
    .inspect_err(|error| {
        tracing::debug!(provider = provider.name(), account = %account.name, %error, "Reading the quota failed.");
    })
    .ok()
}
