//! Accounts as people see them (`subgate accounts`): each one's state,
//! credential, rests, load and quota, the engine's own and the stored
//! logins it does not serve (disabled ones among them); finding one by
//! name; turning stored logins on and off, removing and renewing them;
//! clearing rests; and polling the quota of providers that have a usage
//! endpoint.

use std::path::PathBuf;
use std::time::Duration;

use subgate_core::expose;
use subgate_providers::{Account, Credential, Failure, Login, Provider, Quota, Rest, Scope};
use subgate_store::{AccountRow, StoreError};

use crate::clock::now_millis;
use crate::credentials::{self, Need};
use crate::health::RestInfo;
use crate::pool::Pool;
use crate::{Engine, Inner};

/// How often usage endpoints are asked for each account's quota.
pub(crate) const QUOTA_EVERY: Duration = Duration::from_mins(1);
/// How long one quota request may take.
const QUOTA_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest usage answer read.
const MAX_QUOTA_BYTES: usize = 1 << 20;

/// One account's state (serialized as `subgate accounts list --json` and
/// the management API show it). Holds no secret.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AccountStatus {
    /// The provider entry.
    pub provider: String,
    /// What people see.
    pub name: String,
    /// Stable id (no secret in it).
    pub id: String,
    /// How it authenticates: `api_key` or `none` (a keyless upstream such
    /// as a local server), both defined in the config file; or `login`, a
    /// subscription login kept in the database.
    pub auth: &'static str,
    /// Whether it may take traffic; only stored logins can be disabled.
    pub enabled: bool,
    /// `ready`, or the state of the rest on the whole account
    /// (`cooling_down`, `quota_exhausted`, …); for a stored login the
    /// engine does not serve, `disabled`, or `inactive` when it is enabled
    /// (its provider is not configured, its credential cannot be read, or
    /// it was stored after the gateway started).
    pub state: &'static str,
    /// When the login's access token expires, Unix milliseconds; `None`
    /// for API keys and for logins that do not say.
    pub expires_at: Option<i64>,
    /// The login's email, when the upstream said.
    pub email: Option<String>,
    /// The login's subscription plan (`max`, `plus`, …), when the
    /// upstream said.
    pub plan: Option<String>,
    /// For a linked import: the CLI's file that renewed tokens are
    /// written back to.
    #[schema(value_type = Option<String>)]
    pub linked: Option<PathBuf>,
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
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

    /// Whether `name` names this account: its name, `provider/name`, or
    /// its id.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name
            || self.id == name
            || name.split_once('/').is_some_and(|(provider, account)| {
                provider == self.provider && account == self.name
            })
    }

    /// The account from the engine's own provider.
    fn live(provider: &Provider, pool: &Pool, index: usize, rests: &[RestInfo]) -> Self {
        let account = &provider.accounts()[index];
        let (auth, login) = match account.credential.session() {
            Some(session) => ("login", Some(session.tokens().login.clone())),
            None if matches!(account.credential, Credential::ApiKey(_)) => ("api_key", None),
            None => ("none", None),
        };
        let rests = own_rests(rests, &account.id);
        let (in_flight, started) = pool.load(index);
        let quota = pool
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
            .unwrap_or_default();
        Self {
            provider: provider.name().to_owned(),
            name: account.name.clone(),
            id: account.id.clone(),
            auth,
            enabled: true,
            state: rest_state(&rests),
            expires_at: None,
            email: None,
            plan: None,
            linked: None,
            priority: account.priority,
            in_flight,
            started,
            rests,
            quota,
        }
        .with_login(login)
    }

    /// A stored login the engine does not serve.
    fn stored(row: &AccountRow, rests: &[RestInfo]) -> Self {
        let login = serde_json::from_str::<Login>(expose(&row.credentials)).ok();
        Self {
            provider: row.provider.clone(),
            name: row.name.clone(),
            id: row.id.clone(),
            auth: "login",
            enabled: row.enabled,
            state: if row.enabled { "inactive" } else { "disabled" },
            expires_at: None,
            email: None,
            plan: None,
            linked: None,
            priority: u32::try_from(row.priority).unwrap_or(0),
            in_flight: 0,
            started: 0,
            rests: own_rests(rests, &row.id),
            quota: Vec::new(),
        }
        .with_login(login)
    }

    /// Fills in what a login says about itself (never its tokens).
    fn with_login(mut self, login: Option<Login>) -> Self {
        if let Some(login) = login {
            self.expires_at = login.expires_at;
            self.email = login.email;
            self.plan = login.plan;
            self.linked = login.linked.map(|linked| linked.path);
        }
        self
    }
}

/// The rests of one account.
fn own_rests(rests: &[RestInfo], account: &str) -> Vec<RestInfo> {
    rests
        .iter()
        .filter(|rest| rest.account_id == account)
        .cloned()
        .collect()
}

/// `ready`, or the state of the rest on the whole account.
fn rest_state(rests: &[RestInfo]) -> &'static str {
    rests
        .iter()
        .find(|rest| rest.model.is_empty())
        .map_or("ready", |rest| rest.state)
}

/// Why an account could not be found or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No account has that name (or id).
    #[error("no account is named `{0}`; `subgate accounts list` shows them")]
    Unknown(String),
    /// Several providers have an account of that name.
    #[error("several providers have an account named `{0}`; name it as `provider/{0}`")]
    Ambiguous(String),
    /// The account is defined in the config file, so it cannot be
    /// disabled, enabled or removed from here.
    #[error(
        "account `{name}` of provider `{provider}` is defined in {file}, not stored by a login: subgate cannot enable, disable or remove it; to stop using it, delete it from that `[[providers]]` entry (its `api_keys`, `api_key_env` or `accounts`, or the whole entry) and restart the gateway"
    )]
    InConfig {
        /// The provider entry.
        provider: String,
        /// The account.
        name: String,
        /// The config file, as people read it.
        file: String,
    },
    /// The account has no login to renew.
    #[error(
        "account `{name}` of provider `{provider}` is {what} from the config file, not a login: there is nothing to refresh"
    )]
    NothingToRefresh {
        /// The provider entry.
        provider: String,
        /// The account.
        name: String,
        /// `an API key` or `a keyless account`.
        what: &'static str,
    },
    /// The stored login cannot be renewed by this gateway.
    #[error("account `{name}` of provider `{provider}` cannot be renewed: {reason}")]
    CannotRenew {
        /// The provider entry.
        provider: String,
        /// The account.
        name: String,
        /// Why.
        reason: String,
    },
    /// The token endpoint refused or failed.
    #[error("{0}")]
    Refresh(String),
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An account as listed, with its row when it is a stored login.
struct Listed {
    status: AccountStatus,
    row: Option<AccountRow>,
}

/// The one account of `listed` that `name` names.
fn pick(listed: Vec<Listed>, name: &str) -> Result<Listed, AccountError> {
    let mut matches: Vec<Listed> = listed
        .into_iter()
        .filter(|listed| listed.status.answers_to(name))
        .collect();
    match (matches.pop(), matches.is_empty()) {
        (None, _) => Err(AccountError::Unknown(name.to_owned())),
        (Some(listed), true) => Ok(listed),
        (Some(_), false) => Err(AccountError::Ambiguous(name.to_owned())),
    }
}

/// Puts the engine's accounts and the stored rows together: provider by
/// provider (configured entries in order, then providers only rows
/// name), each one's served accounts first, then its other stored logins.
fn merge(
    live: Vec<AccountStatus>,
    rows: Vec<AccountRow>,
    rests: &[RestInfo],
    entries: &[&str],
) -> Vec<Listed> {
    let mut providers: Vec<&str> = entries.to_vec();
    for provider in live
        .iter()
        .map(|status| status.provider.as_str())
        .chain(rows.iter().map(|row| row.provider.as_str()))
    {
        if !providers.contains(&provider) {
            providers.push(provider);
        }
    }
    let providers: Vec<String> = providers.into_iter().map(str::to_owned).collect();
    let mut live: Vec<Option<AccountStatus>> = live.into_iter().map(Some).collect();
    let mut rows: Vec<Option<AccountRow>> = rows.into_iter().map(Some).collect();
    let mut listed = Vec::with_capacity(live.len() + rows.len());
    for provider in &providers {
        for slot in &mut live {
            let Some(mut status) = slot.take_if(|status| status.provider == *provider) else {
                continue;
            };
            let row = rows
                .iter_mut()
                .find_map(|row| row.take_if(|row| row.id == status.id));
            // What is stored wins: a change takes effect at the next start,
            // but is shown at once.
            if let Some(row) = &row {
                status.enabled = row.enabled;
                status.priority = u32::try_from(row.priority).unwrap_or(status.priority);
            }
            listed.push(Listed { status, row });
        }
        for slot in &mut rows {
            if let Some(row) = slot.take_if(|row| row.provider == *provider) {
                listed.push(Listed {
                    status: AccountStatus::stored(&row, rests),
                    row: Some(row),
                });
            }
        }
    }
    listed
}

impl Engine {
    /// Every account the engine serves with, and its state.
    pub fn accounts(&self) -> Vec<AccountStatus> {
        let inner = &self.inner;
        let rests = inner.health.snapshot(now_millis());
        inner
            .providers
            .iter()
            .zip(&inner.pools)
            .flat_map(|(provider, pool)| {
                let rests = &rests;
                (0..provider.accounts().len())
                    .map(move |index| AccountStatus::live(provider, pool, index, rests))
            })
            .collect()
    }

    /// Every account, provider by provider: those the engine serves with
    /// (as [`Self::accounts`]), then the stored logins it does not serve
    /// (`disabled`, or `inactive`).
    pub async fn all_accounts(&self) -> Result<Vec<AccountStatus>, StoreError> {
        Ok(self
            .listing()
            .await?
            .into_iter()
            .map(|listed| listed.status)
            .collect())
    }

    /// The account `name` names (its name, `provider/name`, or its id),
    /// served or only stored.
    pub async fn account(&self, name: &str) -> Result<AccountStatus, AccountError> {
        Ok(self.find(name).await?.status)
    }

    async fn listing(&self) -> Result<Vec<Listed>, StoreError> {
        let inner = &self.inner;
        let rows = inner.store.accounts().await?;
        let rests = inner.health.snapshot(now_millis());
        let entries: Vec<&str> = inner
            .entries
            .iter()
            .map(|entry| entry.name.as_str())
            .collect();
        Ok(merge(self.accounts(), rows, &rests, &entries))
    }

    async fn find(&self, name: &str) -> Result<Listed, AccountError> {
        pick(self.listing().await?, name)
    }

    /// The stored login `name` names; an account from the config file is
    /// an error that says where to change it.
    async fn find_stored(&self, name: &str) -> Result<(AccountStatus, AccountRow), AccountError> {
        let listed = self.find(name).await?;
        match listed.row {
            Some(row) => Ok((listed.status, row)),
            None => Err(AccountError::InConfig {
                provider: listed.status.provider,
                name: listed.status.name,
                file: self.inner.config_file.as_ref().map_or_else(
                    || "the config file".to_owned(),
                    |path| format!("the config file {}", path.display()),
                ),
            }),
        }
    }

    /// Clears every rest of the account `name` names (its name, or
    /// `provider/name`, or its id). Returns the account's name and how many
    /// stored health rows were removed (ended ones included).
    pub async fn reset_account(&self, name: &str) -> Result<(String, u64), AccountError> {
        let account = self.find(name).await?.status;
        let cleared = self.inner.health.reset(&account.id).await?;
        Ok((account.name, cleared))
    }

    /// Turns the stored login `name` names on or off: a disabled one is
    /// kept but takes no traffic (a running gateway notices at its next
    /// start). Returns the account as it was before.
    pub async fn set_account_enabled(
        &self,
        name: &str,
        enabled: bool,
    ) -> Result<AccountStatus, AccountError> {
        let (status, row) = self.find_stored(name).await?;
        if row.enabled != enabled {
            self.inner
                .store
                .set_account_enabled(&row.id, enabled, now_millis())
                .await?;
        }
        Ok(status)
    }

    /// Sets where the stored login `name` names stands under the `priority`
    /// strategy (lower first; a running gateway uses it from its next
    /// start). Returns the account as it now is.
    pub async fn set_account_priority(
        &self,
        name: &str,
        priority: u32,
    ) -> Result<AccountStatus, AccountError> {
        let (_, row) = self.find_stored(name).await?;
        self.inner
            .store
            .set_account_priority(&row.id, i64::from(priority), now_millis())
            .await?;
        Ok(self.find(&row.id).await?.status)
    }

    /// Removes the stored login `name` names, and its health. A linked
    /// CLI's file is left as it is. Returns what was removed.
    pub async fn remove_account(&self, name: &str) -> Result<AccountStatus, AccountError> {
        let (status, row) = self.find_stored(name).await?;
        self.inner.store.delete_account(&row.id).await?;
        self.inner.health.forget(&row.id);
        Ok(status)
    }

    /// Renews the login `name` names now, even if it looks valid: the new
    /// tokens are stored (and written back to a linked CLI's file) as a
    /// background refresh would. A refusal rests the account as a
    /// background refresh would; a success ends a `credential_invalid`
    /// rest. Returns the account with its new expiry.
    pub async fn refresh_account(&self, name: &str) -> Result<AccountStatus, AccountError> {
        let listed = self.find(name).await?;
        let mut status = listed.status;
        let Some(row) = listed.row else {
            return Err(AccountError::NothingToRefresh {
                what: if status.auth == "api_key" {
                    "an API key"
                } else {
                    "a keyless account"
                },
                provider: status.provider,
                name: status.name,
            });
        };
        let inner = &self.inner;
        let served = inner.providers.iter().find_map(|provider| {
            provider
                .accounts()
                .iter()
                .find(|account| account.id == row.id)
                .map(|account| (provider, account))
        });
        status.expires_at = if let Some((provider, account)) = served {
            renew(inner, provider, account).await?
        } else {
            let provider = self.standalone(&row)?;
            renew(inner, &provider, &provider.accounts()[0]).await?
        };
        Ok(status)
    }

    /// A provider holding only the stored login `row`, for renewing one the
    /// engine does not serve (a disabled one).
    fn standalone(&self, row: &AccountRow) -> Result<Provider, AccountError> {
        let cannot = |reason: String| AccountError::CannotRenew {
            provider: row.provider.clone(),
            name: row.name.clone(),
            reason,
        };
        let entry = self
            .inner
            .entries
            .iter()
            .find(|entry| entry.name == row.provider)
            .ok_or_else(|| cannot(format!("no provider `{}` is configured", row.provider)))?;
        let login = serde_json::from_str::<Login>(expose(&row.credentials))
            .map_err(|_| cannot("the stored login cannot be read; log in again".to_owned()))?;
        let priority = u32::try_from(row.priority).unwrap_or(0);
        let account = Account::login(row.id.clone(), row.name.clone(), priority, login);
        Provider::with_accounts(entry, vec![account]).map_err(|error| cannot(error.to_string()))
    }

    /// Asks every usage endpoint for its account's quota now.
    pub async fn refresh_quotas(&self) {
        poll_quotas(&self.inner).await;
    }
}

/// Renews `account`'s login whatever its expiry, after adopting a
/// fresher one a linked CLI or another replica stored meanwhile (whose
/// refresh token is the live one). Returns the new expiry.
async fn renew(
    inner: &Inner,
    provider: &Provider,
    account: &Account,
) -> Result<Option<i64>, AccountError> {
    let Some(session) = account.credential.session() else {
        return Err(AccountError::CannotRenew {
            provider: provider.name().to_owned(),
            name: account.name.clone(),
            reason: "it holds no login".to_owned(),
        });
    };
    let generation = {
        let _one_flight = session.refresh_lock().await;
        credentials::adopt_stored(inner, account).await;
        session.tokens().generation
    };
    if let Err(error) =
        credentials::ensure_fresh(inner, provider, account, Need::Replacing(generation)).await
    {
        if let Some(failure) = &error.failure {
            inner
                .health
                .record_failure(&account.id, "", failure, &error.message, now_millis());
        }
        return Err(AccountError::Refresh(error.message.clone()));
    }
    // The login works now, whenever the refusal came.
    inner
        .health
        .lift(&account.id, Rest::CredentialInvalid, i64::MAX, now_millis());
    Ok(session.tokens().login.expires_at)
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
            let asked = now_millis();
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
                None => inner
                    .health
                    .lift(&account.id, Rest::QuotaExhausted, asked, now),
            }
            rest_exhausted_models(inner, &account.id, &quota, now);
            pool.set_quota(index, quota);
        });
    futures_util::future::join_all(polls).await;
}

/// Rests each model whose own quota window (Code Assist's per-model
/// buckets) is used up, until it refills.
fn rest_exhausted_models(inner: &Inner, account_id: &str, quota: &Quota, now: i64) {
    for (model, until) in quota.exhausted_models() {
        if until <= now
            || inner.health.resting(account_id, model, now) == Some((Rest::QuotaExhausted, until))
        {
            continue;
        }
        let failure = Failure {
            class: subgate_core::FailureClass::UpstreamRateLimited,
            retry_after: u64::try_from(until - now).ok().map(Duration::from_millis),
            rest: Some(Rest::QuotaExhausted),
            scope: Scope::Model,
        };
        inner.health.record_failure(
            account_id,
            model,
            &failure,
            "the usage endpoint reports the model's quota used up",
            now,
        );
    }
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

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use subgate_config::{Database, Override, Sources};
    use subgate_core::SecretString;
    use subgate_providers::Linked;
    use subgate_store::{NewAccount, Store, StoreLocation};

    use super::*;

    fn status(provider: &str, name: &str, id: &str) -> AccountStatus {
        AccountStatus {
            provider: provider.to_owned(),
            name: name.to_owned(),
            id: id.to_owned(),
            auth: "api_key",
            enabled: true,
            state: "ready",
            expires_at: None,
            email: None,
            plan: None,
            linked: None,
            priority: 0,
            in_flight: 0,
            started: 0,
            rests: Vec::new(),
            quota: Vec::new(),
        }
    }

    fn listed() -> Vec<Listed> {
        [
            status("openai", "work", "openai-1"),
            status("kimi", "work", "kimi-1"),
            status("kimi", "kimi#2", "kimi-2"),
        ]
        .into_iter()
        .map(|status| Listed { status, row: None })
        .collect()
    }

    fn picked(name: &str) -> Result<String, String> {
        pick(listed(), name)
            .map(|listed| listed.status.id)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn names_pick_one_account() {
        assert_eq!(picked("kimi#2"), Ok("kimi-2".to_owned()));
        assert_eq!(picked("kimi/work"), Ok("kimi-1".to_owned()));
        assert_eq!(picked("openai-1"), Ok("openai-1".to_owned()));
        assert_eq!(
            picked("work"),
            Err(
                "several providers have an account named `work`; name it as `provider/work`"
                    .to_owned()
            )
        );
        assert_eq!(
            picked("openai/kimi#2"),
            Err(
                "no account is named `openai/kimi#2`; `subgate accounts list` shows them"
                    .to_owned()
            )
        );
    }

    /// An engine with one API-key provider (`local`, two keys) and two
    /// stored Claude logins: `on` (linked, enabled) and `off` (disabled),
    /// whose token endpoint refuses connections.
    async fn engine() -> (Engine, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "[[providers]]\nkind = \"openai-compatible\"\nname = \"local\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodels = [\"m1\"]\napi_keys = [\"sk-a\", \"sk-b\"]\n\n[[providers]]\nkind = \"claude\"\nbase_url = \"http://127.0.0.1:9\"\nauth_url = \"http://127.0.0.1:9\"\nmodels = [\"claude-sonnet-4-5\"]\n",
        )
        .unwrap();
        let config = subgate_config::load(&Sources {
            file: Some(file),
            env: &|_| None,
            overrides: vec![Override::data_dir(&dir.path().join("data"))],
        })
        .unwrap();
        let Database::Sqlite { path } = &config.storage.database else {
            unreachable!("the default database is SQLite");
        };
        let store = Store::open(&StoreLocation::Sqlite(path.clone()))
            .await
            .unwrap();
        for (id, name) in [("id-on", "on"), ("id-off", "off")] {
            let login = Login {
                access_token: format!("sk-ant-oat01-{name}"),
                refresh_token: Some(format!("sk-ant-ort01-{name}")),
                expires_at: Some(4_000_000_000_000),
                email: Some(format!("{name}@example.com")),
                plan: Some("max".to_owned()),
                linked: (name == "on").then(|| Linked {
                    path: dir.path().join(".credentials.json"),
                    format: "claude-code".to_owned(),
                }),
                ..Login::default()
            };
            let credentials = SecretString::from(serde_json::to_string(&login).unwrap());
            store
                .upsert_account(&NewAccount {
                    id,
                    provider: "claude",
                    name,
                    auth_kind: "oauth",
                    credentials: &credentials,
                    now: 1,
                })
                .await
                .unwrap();
        }
        store.set_account_enabled("id-off", false, 2).await.unwrap();
        store.close().await;
        (Engine::open(&config).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn disabled_logins_are_listed_but_not_served() {
        let (engine, dir) = engine().await;
        let served: Vec<String> = engine.accounts().into_iter().map(|a| a.name).collect();
        assert_eq!(served, ["local#1", "local#2", "on"]);
        let all = engine.all_accounts().await.unwrap();
        let rows: Vec<(&str, &str, &str, bool)> = all
            .iter()
            .map(|a| (a.name.as_str(), a.auth, a.state, a.enabled))
            .collect();
        assert_eq!(
            rows,
            [
                ("local#1", "api_key", "ready", true),
                ("local#2", "api_key", "ready", true),
                ("on", "login", "ready", true),
                ("off", "login", "disabled", false),
            ]
        );
        assert_eq!(all[0].expires_at, None);
        let on = &all[2];
        assert_eq!(on.expires_at, Some(4_000_000_000_000));
        assert_eq!(on.email.as_deref(), Some("on@example.com"));
        assert_eq!(on.plan.as_deref(), Some("max"));
        assert_eq!(on.linked, Some(dir.path().join(".credentials.json")));
        let off = engine.account("claude/off").await.unwrap();
        assert_eq!(off.email.as_deref(), Some("off@example.com"));

        // No secret reaches what people see.
        let json = serde_json::to_string(&all).unwrap();
        for secret in ["sk-a", "sk-b", "sk-ant-oat01", "sk-ant-ort01"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
        engine.shutdown().await;
    }

    #[tokio::test]
    async fn logins_turn_on_and_off_and_go_while_config_accounts_are_refused() {
        let (engine, dir) = engine().await;
        let before = engine.set_account_enabled("on", false).await.unwrap();
        assert!(before.enabled);
        let before = engine.set_account_enabled("off", true).await.unwrap();
        assert!(!before.enabled);
        let enabled: Vec<(String, bool)> = engine
            .all_accounts()
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.auth == "login")
            .map(|a| (a.name, a.enabled))
            .collect();
        // `on` is still served by this engine (until a restart), `off` is
        // stored and enabled but not served yet.
        assert_eq!(
            enabled,
            [("on".to_owned(), false), ("off".to_owned(), true)]
        );
        assert_eq!(engine.account("off").await.unwrap().state, "inactive");

        let error = engine
            .set_account_enabled("local#1", false)
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, AccountError::InConfig { .. }), "{message}");
        assert!(
            message.contains(&dir.path().join("config.toml").display().to_string()),
            "{message}"
        );
        assert!(message.contains("api_keys"), "{message}");
        assert!(matches!(
            engine.remove_account("local#2").await,
            Err(AccountError::InConfig { .. })
        ));

        let removed = engine.remove_account("id-off").await.unwrap();
        assert_eq!(removed.name, "off");
        assert!(matches!(
            engine.remove_account("off").await,
            Err(AccountError::Unknown(_))
        ));
        let names: Vec<String> = engine
            .all_accounts()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["local#1", "local#2", "on"]);
        engine.shutdown().await;
    }

    #[tokio::test]
    async fn refresh_needs_a_login_and_a_failed_one_rests_the_account() {
        let (engine, _dir) = engine().await;
        let error = engine.refresh_account("local#1").await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "account `local#1` of provider `local` is an API key from the config file, not a login: there is nothing to refresh"
        );

        // The token endpoint refuses connections: the error says so and the
        // failure counts as a failed background refresh's does (a fault
        // rests the account from the second in a row).
        for state in ["ready", "upstream_faulty"] {
            let error = engine.refresh_account("on").await.unwrap_err();
            assert!(matches!(error, AccountError::Refresh(_)), "{error}");
            assert!(
                error.to_string().contains("could not be renewed"),
                "{error}"
            );
            assert_eq!(engine.account("on").await.unwrap().state, state);
        }

        // A disabled login is renewed through a provider of its own.
        let error = engine.refresh_account("off").await.unwrap_err();
        assert!(matches!(error, AccountError::Refresh(_)), "{error}");
        engine.shutdown().await;
    }
}
