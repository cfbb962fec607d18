//! Usage records: one row per client request.

use crate::{Store, StoreError, with_pool};

/// One request as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    /// The request id.
    pub id: String,
    /// When the request arrived.
    pub at: i64,
    /// The client key that made it, if keys are in use.
    pub client_key_id: Option<String>,
    /// The provider entry that served it, if one was reached.
    pub provider: Option<String>,
    /// The account that served it.
    pub account_id: Option<String>,
    /// The account's display name.
    pub account_name: Option<String>,
    /// The model the client asked for.
    pub model: String,
    /// The model name sent upstream.
    pub upstream_model: Option<String>,
    /// The client's wire format.
    pub client_dialect: String,
    /// The upstream's wire format.
    pub upstream_dialect: Option<String>,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// Whether the upstream reported token counts (false: they are zero
    /// because nothing was reported, not because nothing was used).
    pub usage_reported: bool,
    /// Prompt tokens, cached ones included.
    pub input_tokens: i64,
    /// Generated tokens, reasoning included.
    pub output_tokens: i64,
    /// Prompt tokens read from a cache.
    pub cache_read_tokens: i64,
    /// Prompt tokens written to a cache.
    pub cache_write_tokens: i64,
    /// Generated tokens spent reasoning.
    pub reasoning_tokens: i64,
    /// From arrival to the last byte sent.
    pub latency_ms: i64,
    /// From arrival to the first byte of the answer, if one was sent.
    pub first_token_ms: Option<i64>,
    /// The HTTP status the client got.
    pub status: i64,
    /// Why it failed, if it did.
    pub error_class: Option<String>,
}

macro_rules! columns {
    () => {
        "id, at, client_key_id, provider, account_id, account_name, model, upstream_model, \
         client_dialect, upstream_dialect, stream, usage_reported, input_tokens, output_tokens, \
         cache_read_tokens, cache_write_tokens, reasoning_tokens, latency_ms, first_token_ms, \
         status, error_class"
    };
}

/// Rows per INSERT statement: 21 columns × 400 rows stays under every
/// backend's limit on bound parameters.
const ROWS_PER_STATEMENT: usize = 400;

impl Store {
    /// Stores a batch of records in one transaction. A record whose id is
    /// already stored is left as it was, so a retried batch is harmless.
    pub async fn insert_usage(&self, records: &[UsageRow]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        with_pool!(self, pool => async {
            let mut transaction = pool.begin().await?;
            for chunk in records.chunks(ROWS_PER_STATEMENT) {
                let mut insert =
                    sqlx::QueryBuilder::new(concat!("INSERT INTO usage_records (", columns!(), ") "));
                insert.push_values(chunk, |mut row, record| {
                    row.push_bind(&record.id)
                        .push_bind(record.at)
                        .push_bind(&record.client_key_id)
                        .push_bind(&record.provider)
                        .push_bind(&record.account_id)
                        .push_bind(&record.account_name)
                        .push_bind(&record.model)
                        .push_bind(&record.upstream_model)
                        .push_bind(&record.client_dialect)
                        .push_bind(&record.upstream_dialect)
                        .push_bind(record.stream)
                        .push_bind(record.usage_reported)
                        .push_bind(record.input_tokens)
                        .push_bind(record.output_tokens)
                        .push_bind(record.cache_read_tokens)
                        .push_bind(record.cache_write_tokens)
                        .push_bind(record.reasoning_tokens)
                        .push_bind(record.latency_ms)
                        .push_bind(record.first_token_ms)
                        .push_bind(record.status)
                        .push_bind(&record.error_class);
                });
                insert.push(" ON CONFLICT (id) DO NOTHING");
                insert.build().execute(&mut *transaction).await?;
            }
            transaction.commit().await
        }.await)
        .map_err(StoreError::query("storing usage records"))
    }

    /// Records from `since` on, oldest first, at most `limit` of them.
    pub async fn usage_since(&self, since: i64, limit: i64) -> Result<Vec<UsageRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM usage_records WHERE at >= $1 ORDER BY at, id LIMIT $2"
        );
        with_pool!(self, pool => sqlx::query_as(sql).bind(since).bind(limit).fetch_all(pool).await)
            .map_err(StoreError::query("reading usage records"))
    }

    /// Totals of the records from `since` on, per group of `by` and per
    /// model (the model sent upstream, else the one asked for), so a
    /// caller can price each model's tokens.
    pub async fn usage_totals(
        &self,
        since: i64,
        by: UsageGroup,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        // One fixed statement per grouping: the grouping is never text
        // from outside.
        macro_rules! totals {
            ($group:literal) => {
                concat!(
                    "SELECT ",
                    $group,
                    " AS grp, COALESCE(upstream_model, model) AS model, COUNT(*) AS requests, \
                     CAST(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS BIGINT) AS failures, \
                     CAST(SUM(input_tokens) AS BIGINT) AS input_tokens, \
                     CAST(SUM(output_tokens) AS BIGINT) AS output_tokens, \
                     CAST(SUM(cache_read_tokens) AS BIGINT) AS cache_read_tokens, \
                     CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens, \
                     CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens \
                     FROM usage_records WHERE at >= $1 GROUP BY grp, COALESCE(upstream_model, model) \
                     ORDER BY grp, model"
                )
            };
        }
        let sql = match by {
            UsageGroup::Key => totals!("COALESCE(client_key_id, '')"),
            UsageGroup::Model => totals!("model"),
            UsageGroup::Account => totals!("COALESCE(account_name, '')"),
            UsageGroup::Provider => totals!("COALESCE(provider, '')"),
            UsageGroup::Day => totals!("CAST(at / 86400000 AS TEXT)"),
        };
        with_pool!(self, pool => sqlx::query_as(sql).bind(since).fetch_all(pool).await)
            .map_err(StoreError::query("adding up usage records"))
    }
}

impl Store {
    /// One client key's totals from `since` on, per model (the model sent
    /// upstream, else the one asked for): what its budget has spent.
    pub async fn key_usage_totals(
        &self,
        key_id: &str,
        since: i64,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        let sql = "SELECT client_key_id AS grp, COALESCE(upstream_model, model) AS model, \
                   COUNT(*) AS requests, \
                   CAST(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS BIGINT) AS failures, \
                   CAST(SUM(input_tokens) AS BIGINT) AS input_tokens, \
                   CAST(SUM(output_tokens) AS BIGINT) AS output_tokens, \
                   CAST(SUM(cache_read_tokens) AS BIGINT) AS cache_read_tokens, \
                   CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens, \
                   CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens \
                   FROM usage_records WHERE client_key_id = $1 AND at >= $2 \
                   GROUP BY client_key_id, COALESCE(upstream_model, model) ORDER BY model";
        with_pool!(self, pool => sqlx::query_as(sql).bind(key_id).bind(since).fetch_all(pool).await)
            .map_err(StoreError::query("adding up a key's usage"))
    }
}

/// What usage totals are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    /// The client key (`""`: requests without one).
    Key,
    /// The model the client asked for.
    Model,
    /// The account that served (`""`: none was reached).
    Account,
    /// The provider entry that served (`""`: none was reached).
    Provider,
    /// The UTC day, as days since 1970 (text).
    Day,
}

/// The totals of one group and one model.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageTotals {
    /// The group's value.
    pub grp: String,
    /// The model priced (sent upstream, else asked for).
    pub model: String,
    /// Requests.
    pub requests: i64,
    /// Requests that failed (status 400 and above).
    pub failures: i64,
    /// Prompt tokens, cached ones included.
    pub input_tokens: i64,
    /// Generated tokens.
    pub output_tokens: i64,
    /// Prompt tokens read from a cache.
    pub cache_read_tokens: i64,
    /// Prompt tokens written to a cache.
    pub cache_write_tokens: i64,
    /// Generated tokens spent reasoning.
    pub reasoning_tokens: i64,
}
