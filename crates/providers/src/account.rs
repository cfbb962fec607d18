//! Accounts: one credential each, and the names people see.

use subgate_core::{SecretString, expose, fingerprint};

/// One credential subgate can send requests with.
#[derive(Debug, Clone)]
pub struct Account {
    /// Stable id: the provider's name and a fingerprint of the key, so it
    /// survives reordering the config.
    pub id: String,
    /// What people see in logs, headers and records: `provider#n`.
    pub name: String,
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
    /// The accounts for a list of API keys: one each, or one without a
    /// credential when there are none.
    pub(crate) fn from_keys(provider: &str, keys: &[SecretString]) -> Vec<Self> {
        if keys.is_empty() {
            return vec![Self {
                id: format!("{provider}-keyless"),
                name: provider.to_owned(),
                credential: Credential::None,
            }];
        }
        keys.iter()
            .enumerate()
            .map(|(index, key)| Self {
                id: format!("{provider}-{}", fingerprint(key)),
                name: format!("{provider}#{}", index + 1),
                credential: Credential::ApiKey(key.clone()),
            })
            .collect()
    }
}
