//! Opening a store: files and permissions, connection options, migrations.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use subgate_core::{SecretString, expose};

use crate::{Pool, Store, StoreError};

/// Where a store keeps its data.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    /// An SQLite file; its directory is created with mode 0700 and the file
    /// (and its WAL companions) with mode 0600.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres {
        /// The connection URL.
        url: SecretString,
        /// A schema to keep the tables in (created if missing); `None` uses
        /// the server's default search path.
        schema: Option<String>,
    },
}

/// SQLite serializes writers; a second connection lets a reader run beside
/// the usage writer. Each connection is a thread with its own page cache
/// and malloc arena, so more cost memory for little.
const SQLITE_CONNECTIONS: u32 = 2;
/// Each SQLite connection's page cache, in KiB (SQLite's default is 2 MiB).
const SQLITE_CACHE_KIB: i64 = 1024;
const POSTGRES_CONNECTIONS: u32 = 8;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Opens (creating if needed) the store and brings its schema up to date.
    pub async fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        let pool = match location {
            StoreLocation::Sqlite(path) => Pool::Sqlite(open_sqlite(path).await?),
            StoreLocation::Postgres { url, schema } => {
                Pool::Postgres(open_postgres(url, schema.as_deref()).await?)
            }
        };
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Brings the schema up to date; [`Store::open`] already does this, and
    /// running it again is a no-op.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let backend = self.backend();
        let result = match &self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Pool::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        };
        result.map_err(|source| StoreError::Migrate { backend, source })
    }
}

/// Creates `dir` (and parents) with mode 0700 if missing, and tightens it to
/// 0700 if it exists: it holds credentials.
pub(crate) fn private_dir(dir: &Path) -> Result<(), StoreError> {
    let io = |context: String| move |source| StoreError::Io { context, source };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(format!(
            "creating the data directory `{}`",
            dir.display()
        )))?;
    std::fs::set_permissions(dir, Permissions::from_mode(0o700)).map_err(io(format!(
        "restricting the data directory `{}` to its owner",
        dir.display()
    )))
}

async fn open_sqlite(path: &Path) -> Result<sqlx::SqlitePool, StoreError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        private_dir(dir)?;
    }
    // Create the file ourselves so it is born 0600; SQLite gives its -wal
    // and -shm files the same mode as the database file.
    let io = |context: String| move |source| StoreError::Io { context, source };
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!(
            "creating the database file `{}`",
            path.display()
        )))?;
    std::fs::set_permissions(path, Permissions::from_mode(0o600))
        .map_err(io(format!("restricting `{}` to its owner", path.display())))?;

    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .pragma("cache_size", (-SQLITE_CACHE_KIB).to_string())
        .disable_statement_logging();
    SqlitePoolOptions::new()
        .max_connections(SQLITE_CONNECTIONS)
        // A local file: a connection that broke says so when used; a ping
        // before each use is a round trip to its thread for nothing.
        .test_before_acquire(false)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(StoreError::query("opening the SQLite database"))
}

async fn open_postgres(
    url: &SecretString,
    schema: Option<&str>,
) -> Result<sqlx::PgPool, StoreError> {
    let mut options = PgConnectOptions::from_str(expose(url))
        .map_err(StoreError::query("reading the PostgreSQL URL"))?
        .disable_statement_logging();
    if let Some(schema) = schema {
        let mut connection = options
            .connect()
            .await
            .map_err(StoreError::query("connecting to PostgreSQL"))?;
        // The identifier is quoted, so any schema name is safe here.
        let create = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_identifier(schema));
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut connection)
            .await
            .map_err(StoreError::query("creating the PostgreSQL schema"))?;
        connection
            .close()
            .await
            .map_err(StoreError::query("connecting to PostgreSQL"))?;
        options = options.options([("search_path", schema)]);
    }
    PgPoolOptions::new()
        .max_connections(POSTGRES_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(StoreError::query("connecting to PostgreSQL"))
}

/// Quotes an SQL identifier: wraps it in double quotes and doubles any inside.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
