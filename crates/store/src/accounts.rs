//! Accounts subgate holds credentials for.

use subgate_core::{SecretString, expose};

use crate::{Store, StoreError, with_pool};

/// An account as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    /// Stable id.
    pub id: String,
    /// The provider entry it belongs to.
    pub provider: String,
    /// Unique within its provider; what people see.
    pub name: String,
    /// How it authenticates (`oauth`, `api_key`, …).
    pub auth_kind: String,
    /// The credential as JSON; secret.
    #[sqlx(try_from = "String")]
    pub credentials: SecretString,
    /// Disabled accounts take no traffic.
    pub enabled: bool,
    /// Lower is tried first under the `priority` strategy.
    pub priority: i64,
    /// When it was first stored.
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
}

/// An account to store, or to update when one with the same provider and
/// name exists (a second login of the same account).
#[derive(Debug, Clone)]
pub struct NewAccount<'a> {
    /// Id to use if the account is new.
    pub id: &'a str,
    /// The provider entry.
    pub provider: &'a str,
    /// Unique within its provider.
    pub name: &'a str,
    /// How it authenticates.
    pub auth_kind: &'a str,
    /// The credential as JSON.
    pub credentials: &'a SecretString,
    /// The time of this write.
    pub now: i64,
}

macro_rules! columns {
    () => {
        "id, provider, name, auth_kind, credentials, enabled, priority, created_at, updated_at"
    };
}

impl Store {
    /// Stores an account, or replaces the credential of the account with the
    /// same provider and name. Returns the stored row.
    pub async fn upsert_account(&self, account: &NewAccount<'_>) -> Result<AccountRow, StoreError> {
        let sql = concat!(
            "INSERT INTO accounts (id, provider, name, auth_kind, credentials, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (provider, name) DO UPDATE SET
                 auth_kind = excluded.auth_kind,
                 credentials = excluded.credentials,
                 updated_at = excluded.updated_at
             RETURNING ",
            columns!()
        );
        with_pool!(self, pool => sqlx::query_as(sql)
            .bind(account.id)
            .bind(account.provider)
            .bind(account.name)
            .bind(account.auth_kind)
            .bind(expose(account.credentials))
            .bind(account.now)
            .fetch_one(pool)
            .await)
        .map_err(StoreError::query("storing an account"))
    }

    /// Replaces an account's credential, as a refresh does. Returns whether
    /// the account exists.
    pub async fn update_credentials(
        &self,
        id: &str,
        credentials: &SecretString,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE accounts SET credentials = $1, updated_at = $2 WHERE id = $3";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(expose(credentials))
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected() > 0))
        .map_err(StoreError::query("storing a refreshed credential"))
    }

    /// Turns an account on or off. Returns whether the account exists.
    pub async fn set_account_enabled(
        &self,
        id: &str,
        enabled: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE accounts SET enabled = $1, updated_at = $2 WHERE id = $3";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(enabled)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected() > 0))
        .map_err(StoreError::query("enabling or disabling an account"))
    }

    /// Sets where an account stands under the `priority` strategy (lower
    /// first). Returns whether the account exists.
    pub async fn set_account_priority(
        &self,
        id: &str,
        priority: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE accounts SET priority = $1, updated_at = $2 WHERE id = $3";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(priority)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected() > 0))
        .map_err(StoreError::query("setting an account's priority"))
    }

    /// One account by id.
    pub async fn account(&self, id: &str) -> Result<Option<AccountRow>, StoreError> {
        let sql = concat!("SELECT ", columns!(), " FROM accounts WHERE id = $1");
        with_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)
            .map_err(StoreError::query("reading an account"))
    }

    /// Every account, by provider, then priority, then name.
    pub async fn accounts(&self) -> Result<Vec<AccountRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM accounts ORDER BY provider, priority, name"
        );
        with_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)
            .map_err(StoreError::query("listing accounts"))
    }

    /// Removes an account and its health. Returns whether it existed.
    pub async fn delete_account(&self, id: &str) -> Result<bool, StoreError> {
        with_pool!(self, pool => async {
            let mut transaction = pool.begin().await?;
            sqlx::query("DELETE FROM account_health WHERE account_id = $1")
                .bind(id)
                .execute(&mut *transaction)
                .await?;
            let done = sqlx::query("DELETE FROM accounts WHERE id = $1")
                .bind(id)
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
            Ok(done.rows_affected() > 0)
        }.await)
        .map_err(StoreError::query("removing an account"))
    }
}
