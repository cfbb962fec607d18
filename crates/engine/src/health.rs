//! Account health: which accounts (or models on them) are resting, why, and
//! until when.
//!
//! The book lives in memory, where routing reads it on every request, and
//! is written through to the store off the request path, so a restart keeps
//! every rest. Every rest has an end and clears itself when it passes; a
//! success clears the failure count that backoff grows from. A sync task
//! reads the store back every few seconds: rests recorded by other
//! replicas are adopted, and rests cleared from outside (`subgate accounts
//! reset`) are dropped.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use subgate_config::RoutingConfig;
use subgate_providers::{Failure, Rest, Scope};
use subgate_store::{HealthRow, Store};
use tokio_util::task::TaskTracker;

use crate::clock::now_millis;

/// How often the book is compared with the store.
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(5);

/// A rest in force, or one that ended but still counts failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) rest: Rest,
    /// Unix milliseconds.
    pub(crate) until: i64,
    pub(crate) failures: u32,
    pub(crate) reason: String,
    /// When it was recorded here, to tell our writes from outside ones.
    pub(crate) updated_at: i64,
}

/// One account's rests: the whole account, and per model.
#[derive(Debug, Default, Clone)]
struct AccountHealth {
    account: Option<Entry>,
    models: HashMap<String, Entry>,
}

impl AccountHealth {
    fn is_empty(&self) -> bool {
        self.account.is_none() && self.models.is_empty()
    }
}

/// Every account's health.
#[derive(Debug)]
pub(crate) struct HealthBook {
    accounts: RwLock<HashMap<String, AccountHealth>>,
    store: Store,
    routing: RoutingConfig,
    /// Writes run here, so shutdown waits for them.
    tasks: TaskTracker,
}

/// A rest as people see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RestInfo {
    /// The account's stable id.
    pub account_id: String,
    /// The model it applies to; empty for the whole account.
    pub model: String,
    /// The state: `cooling_down`, `quota_exhausted`, ….
    pub state: &'static str,
    /// When it ends, Unix milliseconds.
    pub until: i64,
    /// What the upstream said.
    pub reason: String,
    /// Failures in a row.
    pub failures: u32,
}

impl HealthBook {
    pub(crate) fn new(store: Store, routing: RoutingConfig, tasks: TaskTracker) -> Self {
        Self {
            accounts: RwLock::new(HashMap::new()),
            store,
            routing,
            tasks,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, AccountHealth>> {
        self.accounts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, AccountHealth>> {
        self.accounts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Loads the rests still in force from the store.
    pub(crate) async fn load(&self) {
        match self.store.health(now_millis()).await {
            Ok(rows) => self.adopt(rows, None),
            Err(error) => {
                tracing::warn!(%error, "Reading account health failed; starting with none.");
            }
        }
    }

    /// Why `account` cannot serve `model` now, and until when.
    pub(crate) fn resting(&self, account: &str, model: &str, now: i64) -> Option<(Rest, i64)> {
        let accounts = self.read();
        let health = accounts.get(account)?;
        let whole = health.account.as_ref().filter(|entry| entry.until > now);
        let one = health.models.get(model).filter(|entry| entry.until > now);
        match (whole, one) {
            (Some(a), Some(b)) => Some(if a.until >= b.until { a } else { b }),
            (a, b) => a.or(b),
        }
        .map(|entry| (entry.rest, entry.until))
    }

    /// Records a refusal: the account (or the model on it) rests for what
    /// the upstream said, or else for a backoff that grows with failures
    /// in a row. Returns the end of the rest.
    pub(crate) fn record_failure(
        &self,
        account: &str,
        model: &str,
        failure: &Failure,
        reason: &str,
        now: i64,
    ) -> i64 {
        let Some(rest) = failure.rest else {
            return now;
        };
        let key = match failure.scope {
            Scope::Account => "",
            Scope::Model => model,
        };
        let entry = {
            let mut accounts = self.write();
            let health = accounts.entry(account.to_owned()).or_default();
            let previous = if key.is_empty() {
                health.account.as_ref()
            } else {
                health.models.get(key)
            };
            let failures = previous.map_or(0, |entry| entry.failures).saturating_add(1);
            let wait = match (failure.retry_after, rest) {
                (Some(wait), _) => wait,
                (None, Rest::CredentialInvalid) => self.routing.auth_cooldown,
                // One fault can be a blip: the request fails over, but the
                // account rests only from the second fault in a row.
                (None, Rest::Faulty) => match failures {
                    1 => Duration::ZERO,
                    n => self.backoff(n - 1),
                },
                (None, _) => self.backoff(failures),
            };
            let entry = Entry {
                rest,
                until: now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
                failures,
                reason: reason.to_owned(),
                updated_at: now,
            };
            if key.is_empty() {
                health.account = Some(entry.clone());
            } else {
                health.models.insert(key.to_owned(), entry.clone());
            }
            entry
        };
        self.persist(account, key, &entry);
        entry.until
    }

    /// `backoff_base` doubled for each failure after the first, capped.
    fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.routing
            .backoff_base
            .saturating_mul(1 << doublings)
            .min(self.routing.backoff_cap)
    }

    /// Records that the account served the model: ended rests stop
    /// counting toward backoff.
    pub(crate) fn record_success(&self, account: &str, model: &str, now: i64) {
        let stale = |entry: Option<&Entry>| entry.is_some_and(|entry| entry.until <= now);
        {
            let accounts = self.read();
            let Some(health) = accounts.get(account) else {
                return;
            };
            if !stale(health.account.as_ref()) && !stale(health.models.get(model)) {
                return;
            }
        }
        let mut accounts = self.write();
        if let Some(health) = accounts.get_mut(account) {
            if health
                .account
                .as_ref()
                .is_some_and(|entry| entry.until <= now)
            {
                health.account = None;
            }
            if health
                .models
                .get(model)
                .is_some_and(|entry| entry.until <= now)
            {
                health.models.remove(model);
            }
            if health.is_empty() {
                accounts.remove(account);
            }
        }
    }

    /// Ends an account-wide rest of kind `rest` early, when the upstream
    /// says it is over (a quota that refilled before its announced reset).
    /// Only a rest recorded before `asked` (when the upstream was asked)
    /// is lifted: a refusal that came in meanwhile is the fresher news.
    pub(crate) fn lift(&self, account: &str, rest: Rest, asked: i64, now: i64) {
        let ended = {
            let mut accounts = self.write();
            let Some(health) = accounts.get_mut(account) else {
                return;
            };
            match &mut health.account {
                Some(entry)
                    if entry.rest == rest && entry.until > now && entry.updated_at < asked =>
                {
                    entry.until = now;
                    entry.updated_at = now;
                    entry.clone()
                }
                _ => return,
            }
        };
        self.persist(account, "", &ended);
    }

    /// Clears every rest of an account here and in the store. Returns how
    /// many rests were in force.
    pub(crate) async fn reset(&self, account: &str) -> Result<u64, subgate_store::StoreError> {
        self.write().remove(account);
        self.store.clear_health(account).await
    }

    /// Drops an account's rests here only (its stored rows went with the
    /// account).
    pub(crate) fn forget(&self, account: &str) {
        self.write().remove(account);
    }

    /// Every rest in force at `now`.
    pub(crate) fn snapshot(&self, now: i64) -> Vec<RestInfo> {
        let accounts = self.read();
        let mut rests = Vec::new();
        for (account, health) in accounts.iter() {
            let entries = health.account.iter().map(|entry| ("", entry)).chain(
                health
                    .models
                    .iter()
                    .map(|(model, entry)| (model.as_str(), entry)),
            );
            for (model, entry) in entries.filter(|(_, entry)| entry.until > now) {
                rests.push(RestInfo {
                    account_id: account.clone(),
                    model: model.to_owned(),
                    state: entry.rest.as_str(),
                    until: entry.until,
                    reason: entry.reason.clone(),
                    failures: entry.failures,
                });
            }
        }
        rests.sort_by(|a, b| (&a.account_id, &a.model).cmp(&(&b.account_id, &b.model)));
        rests
    }

    /// Writes one rest to the store in the background.
    fn persist(&self, account: &str, model: &str, entry: &Entry) {
        let row = HealthRow {
            account_id: account.to_owned(),
            model: model.to_owned(),
            state: entry.rest.as_str().to_owned(),
            until_at: Some(entry.until),
            reason: Some(entry.reason.clone()),
            failures: i64::from(entry.failures),
            updated_at: entry.updated_at,
        };
        let store = self.store.clone();
        self.tasks.spawn(async move {
            if let Err(error) = store.put_health(&row).await {
                tracing::warn!(%error, account = %row.account_id, "Storing account health failed.");
            }
        });
    }

    /// Compares the book with the store: adopts rests recorded elsewhere,
    /// drops rests cleared elsewhere, removes ended rows.
    pub(crate) async fn sync(&self) {
        let started = now_millis();
        let rows = match self.store.health(started).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::debug!(%error, "Reading account health failed; will retry.");
                return;
            }
        };
        // Rests we recorded since just before the read may not have
        // reached the store yet, and ended ones (not in the store) still
        // count failures for backoff: keep those.
        self.adopt(rows, Some((started - 2_000, started)));
        if let Err(error) = self.store.purge_health(started).await {
            tracing::debug!(%error, "Removing ended account states failed.");
        }
    }

    /// Takes `rows` (the store's rests in force) as the truth; with
    /// `keep: (after, ended_by)`, rests recorded here after `after`, or
    /// ended by `ended_by`, survive even though the store lacks them.
    fn adopt(&self, rows: Vec<HealthRow>, keep: Option<(i64, i64)>) {
        let mut fresh: HashMap<String, AccountHealth> = HashMap::new();
        for row in rows {
            let Some(rest) = Rest::from_name(&row.state) else {
                continue;
            };
            let entry = Entry {
                rest,
                until: row.until_at.unwrap_or(i64::MAX),
                failures: u32::try_from(row.failures).unwrap_or(u32::MAX),
                reason: row.reason.unwrap_or_default(),
                updated_at: row.updated_at,
            };
            let health = fresh.entry(row.account_id).or_default();
            if row.model.is_empty() {
                health.account = Some(entry);
            } else {
                health.models.insert(row.model, entry);
            }
        }
        let mut accounts = self.write();
        if let Some((after, ended_by)) = keep {
            for (account, health) in accounts.iter() {
                let recent = |entry: &Entry| entry.updated_at >= after || entry.until <= ended_by;
                let target = fresh.entry(account.clone()).or_default();
                if let Some(entry) = health.account.as_ref().filter(|entry| recent(entry))
                    && target
                        .account
                        .as_ref()
                        .is_none_or(|stored| stored.updated_at < entry.updated_at)
                {
                    target.account = Some(entry.clone());
                }
                for (model, entry) in &health.models {
                    if recent(entry)
                        && target
                            .models
                            .get(model)
                            .is_none_or(|stored| stored.updated_at < entry.updated_at)
                    {
                        target.models.insert(model.clone(), entry.clone());
                    }
                }
            }
        }
        fresh.retain(|_, health| !health.is_empty());
        *accounts = fresh;
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use subgate_core::FailureClass;
    use subgate_store::StoreLocation;

    use super::*;

    fn routing() -> RoutingConfig {
        RoutingConfig {
            strategy: subgate_config::Strategy::RoundRobin,
            session_affinity: true,
            affinity_ttl: Duration::from_hours(1),
            max_attempts: 4,
            failover_deadline: Duration::from_mins(1),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(8),
            auth_cooldown: Duration::from_mins(30),
        }
    }

    fn failure(rest: Rest, scope: Scope, retry_after: Option<Duration>) -> Failure {
        Failure {
            class: FailureClass::UpstreamFault,
            retry_after,
            rest: Some(rest),
            scope,
        }
    }

    async fn book() -> (HealthBook, Store, TaskTracker, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreLocation::Sqlite(dir.path().join("db")))
            .await
            .unwrap();
        let tasks = TaskTracker::new();
        let book = HealthBook::new(store.clone(), routing(), tasks.clone());
        (book, store, tasks, dir)
    }

    /// Waits for the background writes so far.
    async fn flushed(tasks: &TaskTracker) {
        tasks.close();
        tasks.wait().await;
        tasks.reopen();
    }

    #[tokio::test]
    async fn backoff_grows_faults_rest_from_the_second_and_scopes_hold() {
        let (book, _store, _tasks, _dir) = book().await;
        let now = 1_000_000;
        let rate = failure(Rest::RateLimited, Scope::Model, None);
        let ends: Vec<i64> = (0..5)
            .map(|_| book.record_failure("a", "m", &rate, "slow down", now) - now)
            .collect();
        assert_eq!(ends, [1_000, 2_000, 4_000, 8_000, 8_000]);
        assert_eq!(
            book.resting("a", "m", now),
            Some((Rest::RateLimited, now + 8_000))
        );
        assert_eq!(book.resting("a", "other", now), None);

        let fault = failure(Rest::Faulty, Scope::Account, None);
        assert_eq!(book.record_failure("b", "m", &fault, "502", now), now);
        assert_eq!(book.resting("b", "any", now), None);
        assert_eq!(
            book.record_failure("b", "m", &fault, "502", now),
            now + 1_000
        );
        assert_eq!(
            book.resting("b", "any", now),
            Some((Rest::Faulty, now + 1_000))
        );

        let auth = failure(Rest::CredentialInvalid, Scope::Account, None);
        assert_eq!(
            book.record_failure("c", "m", &auth, "401", now),
            now + 1_800_000
        );
        let told = failure(
            Rest::QuotaExhausted,
            Scope::Account,
            Some(Duration::from_secs(90)),
        );
        assert_eq!(
            book.record_failure("d", "m", &told, "402", now),
            now + 90_000
        );

        // Once a rest has ended, a success stops it counting.
        book.record_success("b", "m", now + 1_000);
        assert_eq!(
            book.record_failure("b", "m", &fault, "502", now + 2_000),
            now + 2_000
        );
    }

    #[tokio::test]
    async fn a_quota_report_lifts_only_rests_older_than_its_question() {
        let (book, _store, _tasks, _dir) = book().await;
        let quota = failure(
            Rest::QuotaExhausted,
            Scope::Account,
            Some(Duration::from_hours(1)),
        );
        // A 402 that came in after the usage endpoint was asked stays.
        book.record_failure("a", "m", &quota, "402", 2_000);
        book.lift("a", Rest::QuotaExhausted, 1_500, 2_500);
        assert_eq!(
            book.resting("a", "m", 2_500),
            Some((Rest::QuotaExhausted, 2_000 + 3_600_000))
        );
        // One recorded before the question ends.
        book.lift("a", Rest::QuotaExhausted, 3_000, 3_500);
        assert_eq!(book.resting("a", "m", 3_500), None);
    }

    #[tokio::test]
    async fn rests_are_stored_and_the_store_is_the_truth_between_replicas() {
        let (book, store, tasks, _dir) = book().await;
        let now = now_millis();
        // Recorded a while ago, still in force.
        let rate = failure(
            Rest::RateLimited,
            Scope::Model,
            Some(Duration::from_mins(5)),
        );
        book.record_failure("a", "m", &rate, "slow down", now - 10_000);
        flushed(&tasks).await;
        let rows = store.health(now).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].state.as_str(), rows[0].until_at),
            ("cooling_down", Some(now + 290_000))
        );

        // A fresh book (a restart) loads it.
        let restarted = HealthBook::new(store.clone(), routing(), tasks.clone());
        restarted.load().await;
        assert_eq!(
            restarted.resting("a", "m", now),
            Some((Rest::RateLimited, now + 290_000))
        );

        // Cleared elsewhere (`subgate accounts reset`): the sync drops it.
        // Recorded by another replica: the sync adopts it.
        store.clear_health("a").await.unwrap();
        store
            .put_health(&HealthRow {
                account_id: "b".to_owned(),
                model: String::new(),
                state: "quota_exhausted".to_owned(),
                until_at: Some(now + 60_000),
                reason: Some("weekly limit".to_owned()),
                failures: 1,
                updated_at: now,
            })
            .await
            .unwrap();
        // A rest recorded here just now survives even before it is stored.
        book.write().entry("c".to_owned()).or_default().account = Some(Entry {
            rest: Rest::Faulty,
            until: now + 30_000,
            failures: 1,
            reason: "502".to_owned(),
            updated_at: now,
        });
        book.sync().await;
        assert_eq!(book.resting("a", "m", now), None);
        assert_eq!(
            book.resting("b", "x", now),
            Some((Rest::QuotaExhausted, now + 60_000))
        );
        assert_eq!(
            book.resting("c", "x", now),
            Some((Rest::Faulty, now + 30_000))
        );
        let snapshot = book.snapshot(now);
        assert_eq!(snapshot.len(), 2);
        assert_eq!(snapshot[0].reason, "weekly limit");
    }
}
