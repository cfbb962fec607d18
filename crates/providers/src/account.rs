//! Accounts: one credential each, and the names people see.

use subgate_config::AccountConfig;
use subgate_core::{SecretString, expose, fingerprint};

/// One credential subgate can send requests with.
#[derive(Debug, Clone)]
pub struct Account {
    /// Stable id: the provider's name and a fingerprint of the key, so it
    /// survives reordering the config.
    pub id: String,
    /// What people see in logs, headers and records: the configured name
    /// or `provider#n`.
    pub name: String,
    /// Lower is preferred under the `priority` strategy.
    pub priority: u32,
    /// How requests authenticate.
    pub credential: Credential,
}

/// How an account authenticates.
#[derive(Debug, Clone)]
pub enum Credential {
    /// No credential (a local server).
    None,
    /// An API key sent as the provider expects.
    ApiKey(SecretString),
}

impl Credential {
    /// The secret values this credential holds.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        match self {
            Self::None => None,
            Self::ApiKey(key) => Some(expose(key)),
        }
        .into_iter()
    }
}

impl Account {
    /// The accounts of one provider entry.
    pub(crate) fn from_config(provider: &str, accounts: &[AccountConfig]) -> Vec<Self> {
        accounts
            .iter()
            .map(|account| Self {
                id: match &account.key {
                    Some(key) => format!("{provider}-{}", fingerprint(key)),
                    None if account.name == provider => format!("{provider}-keyless"),
                    None => format!("{provider}-keyless-{}", account.name),
                },
                name: account.name.clone(),
                priority: account.priority,
                credential: account
                    .key
                    .clone()
                    .map_or(Credential::None, Credential::ApiKey),
            })
            .collect()
    }
}
