//! subgate's state: one [`Store`] over SQLite or PostgreSQL.
//!
//! Both backends share the schema (two migration sets, `migrations/sqlite`
//! and `migrations/postgres`, kept in step because the SQL dialects differ in
//! types) and the queries: every statement here is written once in the SQL
//! both understand (`$1` placeholders, `ON CONFLICT … DO UPDATE`,
//! `RETURNING`) and run on whichever pool is open. Where a backend needs
//! its own SQL, the method matches on the pool and says why.
//!
//! The store writes what it is given: ids and timestamps are decided by the
//! caller. Times are Unix milliseconds.

mod accounts;
mod client_keys;
mod error;
mod flows;
mod health;
mod open;
mod settings;
mod usage;

use sqlx::{PgPool, SqlitePool};

pub use accounts::{AccountRow, NewAccount};
pub use client_keys::{ClientKeyRow, NewClientKey};
pub use error::StoreError;
pub use flows::OAuthFlowRow;
pub use health::HealthRow;
pub use open::StoreLocation;
pub use usage::{UsageGroup, UsageRow, UsageTotals};

/// The database behind subgate: cheap to clone, shared by every task.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has. The body
/// is written once and type-checked against both backends.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

impl Store {
    /// Which backend this store runs on: `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
            .map_err(StoreError::query("checking the database"))
    }

    /// Closes every connection, waiting for queries in flight.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }
}
