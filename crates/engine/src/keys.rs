//! Client keys: the keys subgate issues to the people and tools that use
//! it, each with scopes (models, providers, accounts), limits and an
//! expiry. Only a hash of each secret is stored (`subgate_auth::client_key`);
//! requests are checked against an in-memory book, kept in step with the
//! store every [`SYNC_EVERY`] (so a key revoked by another process, or
//! replica, stops working within that time; one revoked through this
//! engine stops at once).
//!
//! Requests per minute, tokens per minute and requests in flight are
//! enforced per key in this process ([`KeyMeter`]; with several replicas
//! each counts its own). A budget counts what the key's recorded requests
//! cost since the period began (read at the key's first request in the
//! period) plus what this process served since, priced by
//! [`crate::pricing`]; the records are read again at every sync, so what
//! other replicas spent counts here within seconds.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use subgate_auth::client_key;
use subgate_store::{ClientKeyRow, NewClientKey, Store, StoreError};

use crate::clock::now_millis;
use crate::pricing::PriceTable;
use crate::{Engine, GatewayError};

/// How often the book is read again from the store.
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(2);

/// What a key may reach; an empty list allows everything of its kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyScopes {
    /// Model name globs (`claude-*`, `gpt-5?`), matched against the model
    /// the client names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Provider entry names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// Account names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
}

impl KeyScopes {
    /// Whether the key may ask for `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|glob| glob_match(glob, model))
    }

    /// Whether the key may use the provider entry `name`.
    pub fn allows_provider(&self, name: &str) -> bool {
        self.providers.is_empty() || self.providers.iter().any(|allowed| allowed == name)
    }

    /// Whether the key may use the account `name`.
    pub fn allows_account(&self, name: &str) -> bool {
        self.accounts.is_empty() || self.accounts.iter().any(|allowed| allowed == name)
    }
}

/// How long a budget runs before it starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    /// A calendar day (UTC).
    Day,
    /// A calendar week (UTC, from Monday).
    Week,
    /// A calendar month (UTC).
    Month,
}

/// A key's limits, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyLimits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Requests in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Spend allowed per period, in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// The budget's period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_period: Option<BudgetPeriod>,
}

/// A key to make.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// Its name (unique among keys in force).
    pub name: String,
    /// What it may reach.
    pub scopes: KeyScopes,
    /// Its limits.
    pub limits: KeyLimits,
    /// When it stops working (Unix ms).
    pub expires_at: Option<i64>,
}

/// A key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// Stable id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The secret's first characters.
    pub prefix: String,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
    /// What it may reach.
    pub scopes: KeyScopes,
    /// Its limits.
    pub limits: KeyLimits,
    /// When it stops working (Unix ms).
    pub expires_at: Option<i64>,
    /// When it was revoked (Unix ms).
    pub revoked_at: Option<i64>,
    /// When it was made (Unix ms).
    pub created_at: i64,
    /// When it was last used, as last recorded (Unix ms).
    pub last_used_at: Option<i64>,
}

/// A key just made: its secret, shown once, and the key.
#[derive(Clone)]
pub struct IssuedKey {
    /// The secret.
    pub secret: String,
    /// The key.
    pub key: KeyInfo,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A key in force, as a request carries it.
#[derive(Debug)]
pub struct ClientKey {
    /// Stable id (recorded with the request's usage).
    pub id: String,
    /// Its name, for messages.
    pub name: String,
    /// What it may reach.
    pub scopes: KeyScopes,
    limits: KeyLimits,
    expires_at: Option<i64>,
    hash: [u8; 32],
    meter: Arc<KeyMeter>,
}

/// What one key has used lately: requests in flight, and the requests and
/// tokens of the last minute. Kept by key id, so it outlives the book's
/// reloads.
#[derive(Debug, Default)]
pub(crate) struct KeyMeter {
    in_flight: AtomicU32,
    /// `(when, requests, tokens)` in the last minute, oldest first.
    minute: Mutex<VecDeque<(i64, u32, u64)>>,
    /// The budget period counted (its start, Unix ms) and the dollars
    /// spent in it.
    spend: Mutex<Option<(i64, f64)>>,
}

/// The window requests and tokens are counted in.
const MINUTE_MS: i64 = 60_000;

impl KeyMeter {
    /// Notes the tokens a finished request used.
    pub(crate) fn add_tokens(&self, now: i64, tokens: u64) {
        if tokens > 0 {
            self.window(now).push_back((now, 0, tokens));
        }
    }

    /// Adds what a finished request cost to the period counted, if it is
    /// still the one `now` is in (`period_start`).
    pub(crate) fn add_spend(&self, period_start: Option<i64>, dollars: f64) {
        let mut spend = self.spend.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((start, spent)) = spend.as_mut()
            && Some(*start) == period_start
        {
            *spent += dollars;
        }
    }

    /// Raises the spend counted for the period starting at `start` to
    /// `recorded`, what the records of every replica add up to. This
    /// process's own spend is counted before its records are written, so
    /// the larger of the two is the nearer to the truth.
    fn catch_up(&self, start: i64, recorded: f64) {
        let mut spend = self.spend.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((counted, spent)) = spend.as_mut()
            && *counted == start
            && recorded > *spent
        {
            *spent = recorded;
        }
    }

    /// The dollars spent in the period starting at `start`, if counted.
    fn spent(&self, start: i64) -> Option<f64> {
        let spend = self.spend.lock().unwrap_or_else(PoisonError::into_inner);
        spend
            .filter(|&(counted, _)| counted == start)
            .map(|(_, spent)| spent)
    }

    /// The last minute's entries, older ones dropped.
    fn window(&self, now: i64) -> std::sync::MutexGuard<'_, VecDeque<(i64, u32, u64)>> {
        let mut minute = self.minute.lock().unwrap_or_else(PoisonError::into_inner);
        while minute
            .front()
            .is_some_and(|&(at, _, _)| at <= now - MINUTE_MS)
        {
            minute.pop_front();
        }
        minute
    }
}

/// A request admitted under its key's limits: its slot in flight, given
/// back when dropped (when the answer, streamed or not, is over).
#[derive(Debug)]
pub(crate) struct KeySlot(Arc<KeyMeter>);

impl Drop for KeySlot {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl BudgetPeriod {
    /// The word in messages.
    const fn as_str(self) -> &'static str {
        match self {
            Self::Day => "daily",
            Self::Week => "weekly",
            Self::Month => "monthly",
        }
    }

    /// The start and end (Unix ms, UTC) of the period `now` is in.
    pub(crate) fn bounds(self, now: i64) -> (i64, i64) {
        use chrono::{Datelike, Days, Months, NaiveTime};
        let Some(today) = chrono::DateTime::from_timestamp_millis(now).map(|at| at.date_naive())
        else {
            return (now, now);
        };
        let start = match self {
            Self::Day => today,
            Self::Week => today - Days::new(u64::from(today.weekday().num_days_from_monday())),
            Self::Month => today.with_day(1).unwrap_or(today),
        };
        let end = match self {
            Self::Day => start + Days::new(1),
            Self::Week => start + Days::new(7),
            Self::Month => start + Months::new(1),
        };
        let millis =
            |day: chrono::NaiveDate| day.and_time(NaiveTime::MIN).and_utc().timestamp_millis();
        (millis(start), millis(end))
    }
}

impl ClientKey {
    /// The meter its usage is counted on.
    pub(crate) fn meter(&self) -> &Arc<KeyMeter> {
        &self.meter
    }

    /// The start of the budget period `now` is in, for keys with a budget.
    pub(crate) fn budget_period(&self, now: i64) -> Option<i64> {
        self.limits.budget_usd?;
        Some(
            self.limits
                .budget_period
                .unwrap_or(BudgetPeriod::Month)
                .bounds(now)
                .0,
        )
    }

    /// Admits one request under the key's limits, or says which limit it
    /// hit and when to try again (429). A budget must have been counted
    /// for the period first ([`Engine::count_budget`]).
    pub(crate) fn admit(&self, now: i64) -> Result<KeySlot, GatewayError> {
        let limits = &self.limits;
        let meter = &self.meter;
        if let Some(budget) = limits.budget_usd {
            let period = limits.budget_period.unwrap_or(BudgetPeriod::Month);
            let (start, end) = period.bounds(now);
            let spent = meter.spent(start).unwrap_or(0.0);
            if spent >= budget {
                let renews = chrono::DateTime::from_timestamp_millis(end)
                    .map_or_else(String::new, |at| {
                        at.format("%Y-%m-%d %H:%M UTC").to_string()
                    });
                return Err(GatewayError::key_limited(
                    format!(
                        "the client key `{}` has spent ${spent:.2} of its {} budget of ${budget:.2}; it renews {renews}",
                        self.name,
                        period.as_str()
                    ),
                    Duration::from_millis(u64::try_from(end - now).unwrap_or(0).max(1)),
                ));
            }
        }
        if let Some(most) = limits.concurrency {
            let previous = meter.in_flight.fetch_add(1, Ordering::AcqRel);
            if previous >= most {
                meter.in_flight.fetch_sub(1, Ordering::AcqRel);
                return Err(GatewayError::key_limited(
                    format!(
                        "the client key `{}` has {previous} requests in flight, its limit; wait for one to finish",
                        self.name
                    ),
                    Duration::from_secs(1),
                ));
            }
        } else {
            meter.in_flight.fetch_add(1, Ordering::AcqRel);
        }
        let slot = KeySlot(meter.clone());
        let mut minute = meter.window(now);
        // When the oldest entry leaves the window.
        let refill = |minute: &VecDeque<(i64, u32, u64)>, kind: fn(&(i64, u32, u64)) -> bool| {
            let oldest = minute.iter().find(|entry| kind(entry)).map_or(now, |e| e.0);
            Duration::from_millis(u64::try_from(oldest + MINUTE_MS - now).unwrap_or(0).max(1))
        };
        if let Some(most) = limits.rpm {
            let requests: u32 = minute.iter().map(|&(_, requests, _)| requests).sum();
            if requests >= most {
                let wait = refill(&minute, |entry| entry.1 > 0);
                return Err(GatewayError::key_limited(
                    format!(
                        "the client key `{}` made {requests} requests in the last minute, its limit of {most} per minute; try again in {}s",
                        self.name,
                        wait.as_secs().max(1)
                    ),
                    wait,
                ));
            }
        }
        if let Some(most) = limits.tpm {
            let tokens: u64 = minute.iter().map(|&(_, _, tokens)| tokens).sum();
            if tokens >= most {
                let wait = refill(&minute, |entry| entry.2 > 0);
                return Err(GatewayError::key_limited(
                    format!(
                        "the client key `{}` used {tokens} tokens in the last minute, its limit of {most} per minute; try again in {}s",
                        self.name,
                        wait.as_secs().max(1)
                    ),
                    wait,
                ));
            }
        }
        minute.push_back((now, 1, 0));
        drop(minute);
        Ok(slot)
    }
}

/// Why a key command failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key has that name or id.
    #[error("no key is named `{0}`; `subgate keys list` shows them")]
    NotFound(String),
    /// A key in force already has that name.
    #[error("a key named `{0}` exists; revoke it or choose another name")]
    Duplicate(String),
    /// The name is empty or has characters that do not belong.
    #[error("`{0}` is not a usable key name: use letters, digits, `-`, `_`, `.` and `@`")]
    BadName(String),
    /// The OS gave no randomness.
    #[error("no randomness for a secret: {0}")]
    Random(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The keys in force, by the hash of their secret.
#[derive(Debug, Default)]
pub(crate) struct KeyBook {
    keys: RwLock<HashMap<[u8; 32], Arc<ClientKey>>>,
    /// Whether any key was ever made: from then on keys are required
    /// (unless the config says otherwise).
    any: AtomicBool,
    /// Each key's meter, by id.
    meters: Mutex<HashMap<String, Arc<KeyMeter>>>,
    /// Held while the book and the store change together (a key made or
    /// revoked here) and while the book is read again from the store, so a
    /// read that started before a change cannot undo it.
    changes: tokio::sync::Mutex<()>,
}

impl KeyBook {
    /// Reads every key from the store.
    pub(crate) async fn sync(&self, store: &Store) -> Result<(), StoreError> {
        let _changes = self.changes.lock().await;
        let rows = store.client_keys().await?;
        let now = now_millis();
        let keys = rows
            .iter()
            .filter(|row| row.revoked_at.is_none() && row.expires_at.is_none_or(|at| at > now))
            .filter_map(|row| {
                let key = in_force(row, self.meter(&row.id))?;
                Some((key.hash, Arc::new(key)))
            })
            .collect();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
        self.any.store(!rows.is_empty(), Ordering::Release);
        Ok(())
    }

    /// Reads again what each key with a budget counted here has spent in
    /// its period, from the records of every replica.
    pub(crate) async fn recount_budgets(
        &self,
        store: &Store,
        prices: &PriceTable,
    ) -> Result<(), StoreError> {
        let now = now_millis();
        let counted: Vec<(Arc<KeyMeter>, String, i64)> = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter_map(|key| {
                let start = key.budget_period(now)?;
                key.meter
                    .spent(start)
                    .map(|_| (key.meter.clone(), key.id.clone(), start))
            })
            .collect();
        for (meter, id, start) in counted {
            let totals = store.key_usage_totals(&id, start).await?;
            meter.catch_up(start, crate::report::cost_of(&totals, prices));
        }
        Ok(())
    }

    /// The meter of the key `id`, made on first use.
    fn meter(&self, id: &str) -> Arc<KeyMeter> {
        self.meters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    fn insert(&self, key: ClientKey) {
        self.any.store(true, Ordering::Release);
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.hash, Arc::new(key));
    }

    fn remove(&self, id: &str) {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, key| key.id != id);
    }

    fn find(&self, secret: &str) -> Option<Arc<ClientKey>> {
        let hash = client_key::hash(secret);
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.get(&hash)
            .filter(|key| client_key::same_hash(&key.hash, &hash))
            .cloned()
    }

    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }
}

/// A stored row as a key in force, if its hash reads.
fn in_force(row: &ClientKeyRow, meter: Arc<KeyMeter>) -> Option<ClientKey> {
    let mut hash = [0u8; 32];
    if row.hash.len() != 64 {
        return None;
    }
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(row.hash.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(ClientKey {
        id: row.id.clone(),
        name: row.name.clone(),
        scopes: serde_json::from_str(&row.scopes).unwrap_or_default(),
        limits: serde_json::from_str(&row.limits).unwrap_or_default(),
        expires_at: row.expires_at,
        hash,
        meter,
    })
}

fn info(row: ClientKeyRow, now: i64) -> KeyInfo {
    let state = if row.revoked_at.is_some() {
        "revoked"
    } else if row.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    };
    KeyInfo {
        scopes: serde_json::from_str(&row.scopes).unwrap_or_default(),
        limits: serde_json::from_str(&row.limits).unwrap_or_default(),
        id: row.id,
        name: row.name,
        prefix: row.prefix,
        state,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
    }
}

/// `*` any run of characters, `?` any one character.
pub(crate) fn glob_match(glob: &str, text: &str) -> bool {
    let (glob, text): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((star_g, star_t)) => {
                    g = star_g + 1;
                    t = star_t + 1;
                    star = Some((star_g, star_t + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

/// The secret a request carries, the ways clients send one:
/// `Authorization: Bearer`, `x-api-key` (Anthropic), `x-goog-api-key` or
/// `?key=` (Gemini).
fn presented<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    header("authorization")
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or_else(|| header("x-api-key"))
        .or_else(|| header("x-goog-api-key"))
        .or_else(|| {
            query?
                .split('&')
                .find_map(|pair| pair.strip_prefix("key="))
                .filter(|key| !key.is_empty())
        })
}

impl Engine {
    /// Counts what a key with a budget spent in the period `now` is in,
    /// from the recorded requests, when it is not counted yet (its first
    /// request in the period here).
    pub(crate) async fn count_budget(&self, key: &ClientKey, now: i64) -> Result<(), GatewayError> {
        let Some(start) = key.budget_period(now) else {
            return Ok(());
        };
        if key.meter.spent(start).is_some() {
            return Ok(());
        }
        let totals = self
            .inner
            .store
            .key_usage_totals(&key.id, start)
            .await
            .map_err(|error| {
                GatewayError::internal(format!("the key's spend could not be read: {error}"))
            })?;
        let prices = self.inner.prices.table();
        let recorded = crate::report::cost_of(&totals, &prices);
        let mut counted = key
            .meter
            .spend
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if counted.is_none_or(|(period, _)| period != start) {
            *counted = Some((start, recorded));
        }
        Ok(())
    }

    /// Whether client requests must carry a key: as `server.require_keys`
    /// says, else once any key has been made.
    pub fn keys_required(&self) -> bool {
        self.inner
            .require_keys
            .unwrap_or_else(|| self.inner.keys.any())
    }

    /// The key a client request carries, checked: `None` when keys are not
    /// required and none was sent. A key that is unknown, expired or
    /// revoked is refused (401), as is a missing one where keys are
    /// required.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<Arc<ClientKey>>, GatewayError> {
        let required = self.keys_required();
        let Some(secret) = presented(headers, query) else {
            return if required {
                Err(GatewayError::unauthorized(
                    "this gateway needs a client key: send it as `Authorization: Bearer`, `x-api-key`, `x-goog-api-key` or `?key=`",
                ))
            } else {
                Ok(None)
            };
        };
        match self.inner.keys.find(secret) {
            Some(key) if key.expires_at.is_none_or(|at| at > now_millis()) => Ok(Some(key)),
            Some(key) => Err(GatewayError::unauthorized(format!(
                "the client key `{}` has expired",
                key.name
            ))),
            // A key that is not ours, where keys are optional, is some
            // other service's: the client simply has none for us.
            None if !required && !secret.starts_with(client_key::KEY_PREFIX) => Ok(None),
            None => Err(GatewayError::unauthorized(
                "the client key is not valid (unknown, or revoked)",
            )),
        }
    }

    /// Makes a key; its secret is in the answer only.
    pub async fn create_key(&self, new: NewKey) -> Result<IssuedKey, KeyError> {
        let valid = !new.name.is_empty()
            && new
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
        if !valid {
            return Err(KeyError::BadName(new.name));
        }
        let now = now_millis();
        let taken = self
            .inner
            .store
            .client_keys()
            .await?
            .into_iter()
            .any(|row| row.name == new.name && row.revoked_at.is_none());
        if taken {
            return Err(KeyError::Duplicate(new.name));
        }
        self.issue(&new, now).await
    }

    async fn issue(&self, new: &NewKey, now: i64) -> Result<IssuedKey, KeyError> {
        let _changes = self.inner.keys.changes.lock().await;
        let secret =
            client_key::new_secret().map_err(|error| KeyError::Random(error.to_string()))?;
        let id = uuid::Uuid::now_v7().to_string();
        let scopes = serde_json::to_string(&new.scopes).unwrap_or_else(|_| "{}".to_owned());
        let limits = serde_json::to_string(&new.limits).unwrap_or_else(|_| "{}".to_owned());
        let hash = client_key::hex(&secret.hash);
        self.inner
            .store
            .insert_client_key(&NewClientKey {
                id: &id,
                name: &new.name,
                prefix: &secret.prefix,
                hash: &hash,
                scopes: &scopes,
                limits: &limits,
                expires_at: new.expires_at,
                now,
            })
            .await?;
        self.inner.keys.insert(ClientKey {
            meter: self.inner.keys.meter(&id),
            id: id.clone(),
            name: new.name.clone(),
            scopes: new.scopes.clone(),
            limits: new.limits.clone(),
            expires_at: new.expires_at,
            hash: secret.hash,
        });
        Ok(IssuedKey {
            key: KeyInfo {
                id,
                name: new.name.clone(),
                prefix: secret.prefix.clone(),
                state: "active",
                scopes: new.scopes.clone(),
                limits: new.limits.clone(),
                expires_at: new.expires_at,
                revoked_at: None,
                created_at: now,
                last_used_at: None,
            },
            secret: secret.secret,
        })
    }

    /// Every key, revoked and expired ones too, oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyInfo>, KeyError> {
        let now = now_millis();
        Ok(self
            .inner
            .store
            .client_keys()
            .await?
            .into_iter()
            .map(|row| info(row, now))
            .collect())
    }

    /// One key, by name (the one in force, else the newest) or id.
    pub async fn key(&self, name: &str) -> Result<KeyInfo, KeyError> {
        let keys = self.keys().await?;
        keys.iter()
            .rev()
            .find(|key| key.id == name || (key.name == name && key.state == "active"))
            .or_else(|| keys.iter().rev().find(|key| key.name == name))
            .cloned()
            .ok_or_else(|| KeyError::NotFound(name.to_owned()))
    }

    /// Revokes a key: it stops working at once here, and within
    /// [`SYNC_EVERY`] on other replicas.
    pub async fn revoke_key(&self, name: &str) -> Result<KeyInfo, KeyError> {
        let key = self.key(name).await?;
        let now = now_millis();
        {
            let _changes = self.inner.keys.changes.lock().await;
            self.inner.store.revoke_client_key(&key.id, now).await?;
            self.inner.keys.remove(&key.id);
        }
        self.key(&key.id).await
    }

    /// Replaces a key's secret: a new key with the same name, scopes,
    /// limits and expiry; the old one is revoked.
    pub async fn rotate_key(&self, name: &str) -> Result<IssuedKey, KeyError> {
        let old = self.key(name).await?;
        let now = now_millis();
        let new = NewKey {
            name: old.name.clone(),
            scopes: old.scopes.clone(),
            limits: old.limits.clone(),
            expires_at: old.expires_at,
        };
        {
            let _changes = self.inner.keys.changes.lock().await;
            self.inner.store.revoke_client_key(&old.id, now).await?;
            self.inner.keys.remove(&old.id);
        }
        self.issue(&new, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_periods_start_at_utc_midnight_monday_and_the_first() {
        // 2026-11-21 (a Saturday) 13:45:00 UTC.
        let now = 1_795_268_700_000;
        let day = |text: &str| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis()
        };
        assert_eq!(
            BudgetPeriod::Day.bounds(now),
            (day("2026-11-21"), day("2026-11-22"))
        );
        assert_eq!(
            BudgetPeriod::Week.bounds(now),
            (day("2026-11-16"), day("2026-11-23"))
        );
        assert_eq!(
            BudgetPeriod::Month.bounds(now),
            (day("2026-11-01"), day("2026-12-01"))
        );
    }

    #[test]
    fn globs_match_like_a_shell() {
        for (glob, text, matches) in [
            ("claude-*", "claude-sonnet-4-5", true),
            ("claude-*", "gpt-5", false),
            ("*", "anything", true),
            ("gpt-5?", "gpt-5o", true),
            ("gpt-5?", "gpt-5", false),
            ("*sonnet*", "claude-sonnet-4.5", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("exact", "exact", true),
        ] {
            assert_eq!(glob_match(glob, text), matches, "{glob} {text}");
        }
    }

    #[test]
    fn keys_are_read_the_ways_clients_send_them() {
        let with = |name: &str, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                http::HeaderName::try_from(name).unwrap(),
                http::HeaderValue::try_from(value).unwrap(),
            );
            headers
        };
        let bearer = with("authorization", "Bearer sg-1");
        assert_eq!(presented(&bearer, None), Some("sg-1"));
        assert_eq!(presented(&with("x-api-key", "sg-2"), None), Some("sg-2"));
        assert_eq!(
            presented(&with("x-goog-api-key", "sg-3"), None),
            Some("sg-3")
        );
        assert_eq!(
            presented(&HeaderMap::new(), Some("alt=sse&key=sg-4")),
            Some("sg-4")
        );
        assert_eq!(presented(&HeaderMap::new(), Some("alt=sse")), None);
        let scopes = KeyScopes {
            models: vec!["claude-*".to_owned()],
            providers: Vec::new(),
            accounts: vec!["work".to_owned()],
        };
        assert!(scopes.allows_model("claude-opus-4.5"));
        assert!(!scopes.allows_model("gpt-5"));
        assert!(scopes.allows_provider("anything"));
        assert!(!scopes.allows_account("home"));
    }
}
