//! Accounts: one credential each, and the names people see.

use std::sync::Arc;

use subgate_config::AccountConfig;
use subgate_core::{SecretString, expose, fingerprint};

use crate::session::{Login, Session};

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
    /// A subscription login, refreshed as it nears expiry.
    Login(Arc<Session>),
}

impl Credential {
    /// The secret values this credential holds.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            Self::None => Vec::new(),
            Self::ApiKey(key) => vec![expose(key).to_owned()],
            Self::Login(session) => {
                let tokens = session.tokens();
                let mut secrets: Vec<String> = tokens.login.secrets().map(str::to_owned).collect();
                secrets.extend(tokens.api.iter().map(|api| api.token.clone()));
                secrets
            }
        }
    }

    /// The live session of a login.
    pub fn session(&self) -> Option<&Arc<Session>> {
        match self {
            Self::Login(session) => Some(session),
            Self::None | Self::ApiKey(_) => None,
        }
    }
}

impl Account {
    /// A stored login's account.
    pub fn login(id: String, name: String, priority: u32, login: Login) -> Self {
        Self {
            id,
            name,
            priority,
            credential: Credential::Login(Session::new(login)),
        }
    }

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
