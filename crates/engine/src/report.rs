//! Usage reports: the recorded requests added up per client key, model,
//! account, provider or day (`subgate usage`).

use serde::Serialize;
use subgate_store::{UsageGroup, UsageTotals};

use subgate_core::Usage;

use crate::Engine;
use crate::keys::KeyError;
use crate::pricing::PriceTable;

/// One line of a usage report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageLine {
    /// What the line counts: a key's name, a model, an account, a provider
    /// or a day (`YYYY-MM-DD`); `-` for requests without one.
    pub group: String,
    /// Requests.
    pub requests: i64,
    /// Requests that failed.
    pub failures: i64,
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
    /// What the tokens cost at API prices, in US dollars (for subscription
    /// accounts: what they would have cost); models without a known price
    /// count nothing.
    pub cost_usd: f64,
    /// Models of this line without a known price.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unpriced_models: Vec<String>,
}

impl Engine {
    /// The requests recorded since `since` (Unix ms), added up by `by`,
    /// largest first (days in order).
    pub async fn usage_report(
        &self,
        since: i64,
        by: UsageGroup,
    ) -> Result<Vec<UsageLine>, KeyError> {
        let totals = self.inner.store.usage_totals(since, by).await?;
        let prices = self.inner.prices.table();
        let names: Vec<(String, String)> = if by == UsageGroup::Key {
            self.inner
                .store
                .client_keys()
                .await?
                .into_iter()
                .map(|row| (row.id, row.name))
                .collect()
        } else {
            Vec::new()
        };
        let label = |group: &str| -> String {
            match by {
                _ if group.is_empty() => "-".to_owned(),
                UsageGroup::Key => names
                    .iter()
                    .find(|(id, _)| id == group)
                    .map_or_else(|| group.to_owned(), |(_, name)| name.clone()),
                UsageGroup::Day => group
                    .parse::<i64>()
                    .ok()
                    .and_then(|day| chrono::DateTime::from_timestamp(day * 86_400, 0))
                    .map_or_else(|| group.to_owned(), |at| at.format("%Y-%m-%d").to_string()),
                UsageGroup::Model | UsageGroup::Account | UsageGroup::Provider => group.to_owned(),
            }
        };
        let mut lines: Vec<UsageLine> = Vec::new();
        for total in &totals {
            let group = label(&total.grp);
            let index = match lines.iter().position(|line| line.group == group) {
                Some(index) => index,
                None => {
                    lines.push(UsageLine {
                        group,
                        ..UsageLine::default()
                    });
                    lines.len() - 1
                }
            };
            add(&mut lines[index], total, &prices);
        }
        if by == UsageGroup::Day {
            lines.sort_by(|a, b| a.group.cmp(&b.group));
        } else {
            lines.sort_by(|a, b| {
                (b.input_tokens + b.output_tokens)
                    .cmp(&(a.input_tokens + a.output_tokens))
                    .then(b.requests.cmp(&a.requests))
                    .then(a.group.cmp(&b.group))
            });
        }
        Ok(lines)
    }
}

/// What `totals` cost at `prices` (models without a price count nothing).
pub(crate) fn cost_of(totals: &[UsageTotals], prices: &PriceTable) -> f64 {
    totals
        .iter()
        .map(|total| {
            let mut line = UsageLine::default();
            add(&mut line, total, prices);
            line.cost_usd
        })
        .sum()
}

/// A report's start: a span back from `now` (`24h`, `7d`) or a UTC date
/// (`2026-11-01`), in Unix ms.
pub fn since(text: &str, now: i64) -> Result<i64, String> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date
            .and_hms_opt(0, 0, 0)
            .map_or(0, |at| at.and_utc().timestamp_millis()));
    }
    match subgate_config::parse_duration(text) {
        Ok(span) => Ok(now.saturating_sub(i64::try_from(span.as_millis()).unwrap_or(i64::MAX))),
        Err(error) => Err(format!(
            "since `{text}`: {error}, or a date like 2026-11-01"
        )),
    }
}

fn add(line: &mut UsageLine, total: &UsageTotals, prices: &PriceTable) {
    let tokens = |count: i64| u64::try_from(count).unwrap_or(0);
    match prices.price(&total.model) {
        Some(price) => {
            line.cost_usd += price.cost(&Usage {
                input_tokens: tokens(total.input_tokens),
                output_tokens: tokens(total.output_tokens),
                cache_read_tokens: tokens(total.cache_read_tokens),
                cache_write_tokens: tokens(total.cache_write_tokens),
                reasoning_tokens: tokens(total.reasoning_tokens),
            });
        }
        None if !line.unpriced_models.contains(&total.model) => {
            line.unpriced_models.push(total.model.clone());
        }
        None => {}
    }
    line.requests += total.requests;
    line.failures += total.failures;
    line.input_tokens += total.input_tokens;
    line.output_tokens += total.output_tokens;
    line.cache_read_tokens += total.cache_read_tokens;
    line.cache_write_tokens += total.cache_write_tokens;
    line.reasoning_tokens += total.reasoning_tokens;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_span_or_a_date() {
        assert_eq!(since("24h", 100_000_000).unwrap(), 100_000_000 - 86_400_000);
        assert_eq!(since("2026-11-01", 0).unwrap(), 1_793_491_200_000);
        assert!(since("yesterday", 0).is_err());
    }
}
