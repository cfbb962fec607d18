//! Store failures, each with what the store was doing.

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory or database file could not be prepared.
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The database could not be reached or refused a statement.
    #[error("{context}: {source}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// The cause.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("migrating the {backend} database: {source}")]
    Migrate {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The cause.
        source: sqlx::migrate::MigrateError,
    },
}

impl StoreError {
    /// Wraps a query error with what the store was doing.
    pub(crate) fn query(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { context, source }
    }
}
