//! Account health that must survive a restart: cooldowns, exhausted quotas,
//! dead credentials.

use crate::{Store, StoreError, with_pool};

/// Why an account (or one model on it) is resting, and until when.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HealthRow {
    /// The account.
    pub account_id: String,
    /// The model it applies to; empty for the whole account.
    pub model: String,
    /// The state's name (`cooling_down`, `quota_exhausted`, …).
    pub state: String,
    /// When it clears by itself, if it does.
    pub until_at: Option<i64>,
    /// What the upstream said, for people.
    pub reason: Option<String>,
    /// Consecutive failures, for backoff.
    pub failures: i64,
    /// When it was recorded.
    pub updated_at: i64,
}

macro_rules! columns {
    () => {
        "account_id, model, state, until_at, reason, failures, updated_at"
    };
}

impl Store {
    /// Records an account's state, replacing the previous one.
    pub async fn put_health(&self, health: &HealthRow) -> Result<(), StoreError> {
        let sql = concat!(
            "INSERT INTO account_health (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (account_id, model) DO UPDATE SET state = excluded.state,
                 until_at = excluded.until_at, reason = excluded.reason,
                 failures = excluded.failures, updated_at = excluded.updated_at"
        );
        with_pool!(self, pool => sqlx::query(sql)
            .bind(&health.account_id)
            .bind(&health.model)
            .bind(&health.state)
            .bind(health.until_at)
            .bind(&health.reason)
            .bind(health.failures)
            .bind(health.updated_at)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(StoreError::query("recording account health"))
    }

    /// Every state still in force at `now` (states with no end never clear
    /// by themselves).
    pub async fn health(&self, now: i64) -> Result<Vec<HealthRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM account_health WHERE until_at IS NULL OR until_at > $1
             ORDER BY account_id, model"
        );
        with_pool!(self, pool => sqlx::query_as(sql).bind(now).fetch_all(pool).await)
            .map_err(StoreError::query("reading account health"))
    }

    /// Clears every state of one account. Returns how many were cleared.
    pub async fn clear_health(&self, account_id: &str) -> Result<u64, StoreError> {
        let sql = "DELETE FROM account_health WHERE account_id = $1";
        with_pool!(self, pool => sqlx::query(sql).bind(account_id).execute(pool).await
            .map(|done| done.rows_affected()))
        .map_err(StoreError::query("clearing account health"))
    }

    /// Removes states that ended by `now`.
    pub async fn purge_health(&self, now: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM account_health WHERE until_at IS NOT NULL AND until_at <= $1";
        with_pool!(self, pool => sqlx::query(sql).bind(now).execute(pool).await
            .map(|done| done.rows_affected()))
        .map_err(StoreError::query("removing ended account states"))
    }
}
