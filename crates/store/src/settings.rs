//! Small named values the gateway keeps for itself.

use crate::{Store, StoreError, with_pool};

impl Store {
    /// The value stored under `key`.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let sql = "SELECT value FROM settings WHERE key = $1";
        with_pool!(self, pool => sqlx::query_scalar(sql).bind(key).fetch_optional(pool).await)
            .map_err(StoreError::query("reading a setting"))
    }

    /// Stores `value` under `key`, replacing what was there.
    pub async fn set_setting(&self, key: &str, value: &str, now: i64) -> Result<(), StoreError> {
        let sql = "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                       updated_at = excluded.updated_at";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(key)
            .bind(value)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(StoreError::query("storing a setting"))
    }
}
