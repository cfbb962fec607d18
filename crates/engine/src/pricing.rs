//! What requests cost: a price per model (US dollars per million input,
//! output, cache-read and cache-write tokens), from a table bundled with
//! subgate in the models.dev format, which `[pricing] file` can extend or
//! correct. Subscription requests are priced the same way: what the tokens
//! would have cost on the API.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use serde::Deserialize;
use subgate_core::Usage;

/// The bundled table (models.dev's `api.json` shape, a subset).
const BUNDLED: &str = include_str!("../data/prices.json");

/// One model's prices, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Price {
    /// Uncached prompt tokens.
    pub input: f64,
    /// Generated tokens.
    pub output: f64,
    /// Prompt tokens read from a cache (the input price when unknown).
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Prompt tokens written to a cache (the input price when unknown).
    #[serde(default)]
    pub cache_write: Option<f64>,
}

impl Price {
    /// What `usage` costs, in US dollars. `input_tokens` counts cached
    /// tokens too; they are priced at the cache rates instead.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let uncached = usage
            .input_tokens
            .saturating_sub(usage.cache_read_tokens)
            .saturating_sub(usage.cache_write_tokens);
        let per = |tokens: u64, price: f64| {
            #[expect(
                clippy::cast_precision_loss,
                reason = "token counts stay far below 2^52"
            )]
            let tokens = tokens as f64;
            tokens * price / 1_000_000.0
        };
        per(uncached, self.input)
            + per(
                usage.cache_read_tokens,
                self.cache_read.unwrap_or(self.input),
            )
            + per(
                usage.cache_write_tokens,
                self.cache_write.unwrap_or(self.input),
            )
            + per(usage.output_tokens, self.output)
    }
}

/// Prices by model id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    models: HashMap<String, Price>,
}

#[derive(Deserialize)]
struct Provider {
    #[serde(default)]
    models: HashMap<String, Model>,
}

#[derive(Deserialize)]
struct Model {
    cost: Option<Price>,
}

impl PriceTable {
    /// Reads a models.dev `api.json` (`{provider: {models: {id: {cost:
    /// {input, output, cache_read, cache_write}}}}}`); models without a
    /// cost are left out.
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        // In file order (serde_json keeps it): the first provider to price
        // a model wins.
        let file: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)?;
        let mut models = HashMap::new();
        for value in file.into_iter().map(|(_, value)| value) {
            let provider: Provider = serde_json::from_value(value)?;
            for (id, model) in provider.models {
                if let Some(cost) = model.cost {
                    models.entry(id).or_insert(cost);
                }
            }
        }
        Ok(Self { models })
    }

    /// The bundled table.
    pub fn bundled() -> Self {
        // The bundled file is checked by a test; a broken one prices
        // nothing rather than stopping the gateway.
        Self::parse(BUNDLED).unwrap_or_default()
    }

    /// This table with `other`'s prices on top.
    fn extend(&mut self, other: Self) {
        self.models.extend(other.models);
    }

    /// The price of `model`: by its id, or its id without a `provider/`
    /// prefix, a date suffix or `-latest`, with dots as dashes
    /// (`claude-sonnet-4.5` is `claude-sonnet-4-5`).
    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(price) = self.models.get(model) {
            return Some(*price);
        }
        let bare = model.rsplit_once('/').map_or(model, |(_, bare)| bare);
        let bare = bare.strip_suffix("-latest").unwrap_or(bare);
        let undated = match bare.rsplit_once('-') {
            Some((head, date)) if date.len() == 8 && date.chars().all(|c| c.is_ascii_digit()) => {
                head
            }
            _ => bare,
        };
        let dashed = undated.replace('.', "-");
        // models.dev names a first release `-0` (`claude-sonnet-4-0`).
        [
            bare.to_owned(),
            undated.to_owned(),
            format!("{dashed}-0"),
            dashed,
        ]
        .iter()
        .find_map(|name| self.models.get(name))
        .copied()
    }
}

/// The table in force, swapped whole when it is read again.
#[derive(Debug)]
pub(crate) struct Prices(RwLock<Arc<PriceTable>>);

impl Prices {
    /// The bundled table, with the prices in `file` (models.dev format) on
    /// top when one is named.
    pub(crate) fn load(file: Option<&Path>) -> Result<Self, String> {
        let mut table = PriceTable::bundled();
        if let Some(file) = file {
            let text = std::fs::read_to_string(file)
                .map_err(|error| format!("{}: {error}", file.display()))?;
            let extra = PriceTable::parse(&text).map_err(|error| {
                format!("{}: not a models.dev price file: {error}", file.display())
            })?;
            table.extend(extra);
        }
        Ok(Self(RwLock::new(Arc::new(table))))
    }

    /// The table now.
    pub(crate) fn table(&self) -> Arc<PriceTable> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_table_reads_and_prices_the_common_models() {
        let table = PriceTable::parse(BUNDLED).unwrap();
        for model in [
            "claude-sonnet-4-5",
            "claude-sonnet-4",
            "gpt-5",
            "gemini-2.5-pro",
        ] {
            assert!(table.price(model).is_some(), "{model}");
        }
    }

    #[test]
    fn names_are_matched_loosely_and_cache_tokens_priced_apart() {
        let table = PriceTable::parse(
            r#"{"a": {"models": {"claude-sonnet-4-5": {"cost": {"input": 3, "output": 15,
                "cache_read": 0.3, "cache_write": 3.75}}, "free": {}}}}"#,
        )
        .unwrap();
        for name in [
            "claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4.5",
            "anthropic/claude-sonnet-4-5",
        ] {
            assert!(table.price(name).is_some(), "{name}");
        }
        assert_eq!(table.price("free"), None);
        let price = table.price("claude-sonnet-4-5").unwrap();
        let usage = Usage {
            input_tokens: 1_000_000 + 2_000_000 + 1_000_000,
            cache_read_tokens: 2_000_000,
            cache_write_tokens: 1_000_000,
            output_tokens: 100_000,
            ..Usage::default()
        };
        // 1M uncached × 3 + 2M read × 0.3 + 1M written × 3.75 + 0.1M out × 15.
        let cost = price.cost(&usage);
        assert!((cost - (3.0 + 0.6 + 3.75 + 1.5)).abs() < 1e-9, "{cost}");
    }
}
