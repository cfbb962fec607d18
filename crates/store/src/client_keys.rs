//! Keys subgate issues to its clients: only a hash of each secret is stored.

use crate::{Store, StoreError, with_pool};

/// A client key as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClientKeyRow {
    /// Stable id.
    pub id: String,
    /// What people call it.
    pub name: String,
    /// The first characters of the secret, shown to recognise it.
    pub prefix: String,
    /// Hex SHA-256 of the secret.
    pub hash: String,
    /// JSON: which models, providers and accounts it may use.
    pub scopes: String,
    /// JSON: rate limits, concurrency and budget.
    pub limits: String,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// When it was made.
    pub created_at: i64,
    /// When it was last used, as last recorded.
    pub last_used_at: Option<i64>,
}

/// A client key to store.
#[derive(Debug, Clone)]
pub struct NewClientKey<'a> {
    /// Id.
    pub id: &'a str,
    /// Name.
    pub name: &'a str,
    /// Public prefix.
    pub prefix: &'a str,
    /// Hex SHA-256 of the secret.
    pub hash: &'a str,
    /// JSON scopes.
    pub scopes: &'a str,
    /// JSON limits.
    pub limits: &'a str,
    /// Expiry, if any.
    pub expires_at: Option<i64>,
    /// Creation time.
    pub now: i64,
}

macro_rules! columns {
    () => {
        "id, name, prefix, hash, scopes, limits, expires_at, revoked_at, created_at, last_used_at"
    };
}

impl Store {
    /// Stores a new client key.
    pub async fn insert_client_key(&self, key: &NewClientKey<'_>) -> Result<(), StoreError> {
        let sql = "INSERT INTO client_keys (id, name, prefix, hash, scopes, limits, expires_at, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(key.id)
            .bind(key.name)
            .bind(key.prefix)
            .bind(key.hash)
            .bind(key.scopes)
            .bind(key.limits)
            .bind(key.expires_at)
            .bind(key.now)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(StoreError::query("storing a client key"))
    }

    /// The key whose secret hashes to `hash`, revoked or not.
    pub async fn client_key_by_hash(&self, hash: &str) -> Result<Option<ClientKeyRow>, StoreError> {
        let sql = concat!("SELECT ", columns!(), " FROM client_keys WHERE hash = $1");
        with_pool!(self, pool => sqlx::query_as(sql).bind(hash).fetch_optional(pool).await)
            .map_err(StoreError::query("looking up a client key"))
    }

    /// Every client key, oldest first.
    pub async fn client_keys(&self) -> Result<Vec<ClientKeyRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM client_keys ORDER BY created_at, id"
        );
        with_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)
            .map_err(StoreError::query("listing client keys"))
    }

    /// Revokes a key. Returns whether a key that was still active is now
    /// revoked.
    pub async fn revoke_client_key(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let sql = "UPDATE client_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected() > 0))
        .map_err(StoreError::query("revoking a client key"))
    }

    /// Records when keys were last used (batched by the caller).
    pub async fn touch_client_keys(&self, uses: &[(&str, i64)]) -> Result<(), StoreError> {
        let sql = "UPDATE client_keys SET last_used_at = $1
                   WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)";
        with_pool!(self, pool => async {
            let mut transaction = pool.begin().await?;
            for (id, at) in uses {
                sqlx::query(sql).bind(at).bind(id).execute(&mut *transaction).await?;
            }
            transaction.commit().await
        }.await)
        .map_err(StoreError::query("recording client key use"))
    }
}
