//! Logins in progress: PKCE verifiers and device codes, kept until used or
//! expired so a login can finish in another request (or on another replica).

use subgate_core::{SecretString, expose};

use crate::{Store, StoreError, with_pool};

/// A login in progress.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthFlowRow {
    /// The OAuth `state` (or device code) that names the flow.
    pub state: String,
    /// The provider being logged in to.
    pub provider: String,
    /// JSON with what finishing the flow needs; secret.
    #[sqlx(try_from = "String")]
    pub data: SecretString,
    /// When it started.
    pub created_at: i64,
    /// When it stops being valid.
    pub expires_at: i64,
}

impl Store {
    /// Stores a flow, replacing one with the same state.
    pub async fn put_oauth_flow(&self, flow: &OAuthFlowRow) -> Result<(), StoreError> {
        let sql = "INSERT INTO oauth_flows (state, provider, data, created_at, expires_at)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (state) DO UPDATE SET provider = excluded.provider,
                       data = excluded.data, created_at = excluded.created_at,
                       expires_at = excluded.expires_at";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(&flow.state)
            .bind(&flow.provider)
            .bind(expose(&flow.data))
            .bind(flow.created_at)
            .bind(flow.expires_at)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(StoreError::query("storing a login in progress"))
    }

    /// Removes and returns the flow named `state` if it has not expired by
    /// `now`. A flow can be taken once.
    pub async fn take_oauth_flow(
        &self,
        state: &str,
        now: i64,
    ) -> Result<Option<OAuthFlowRow>, StoreError> {
        let sql = "DELETE FROM oauth_flows WHERE state = $1
                   RETURNING state, provider, data, created_at, expires_at";
        let flow: Option<OAuthFlowRow> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(state).fetch_optional(pool).await)
                .map_err(StoreError::query("finishing a login in progress"))?;
        Ok(flow.filter(|flow| flow.expires_at > now))
    }

    /// Removes flows that expired by `now`. Returns how many.
    pub async fn purge_oauth_flows(&self, now: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM oauth_flows WHERE expires_at <= $1";
        with_pool!(self, pool => sqlx::query(sql).bind(now).execute(pool).await
            .map(|done| done.rows_affected()))
        .map_err(StoreError::query("removing expired logins in progress"))
    }
}
