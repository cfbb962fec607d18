//! subgate's upstreams.
//!
//! A [`Provider`] is one `[[providers]]` entry: which service, how to reach
//! it, its accounts, and every quirk of its wire: URLs, headers, how a
//! failure reads. Each kind lives in its own module; nothing outside that
//! module knows its quirks. Providers describe requests and read responses;
//! they never touch the store or the server.

mod account;
mod openai_compatible;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use subgate_config::ProviderConfig;
use subgate_core::{Dialect, FailureClass, ProviderKind};
use subgate_http::{OutboundRequest, Transport, TransportError, TransportOptions};

pub use account::{Account, Credential};

/// One configured upstream and its accounts.
#[derive(Debug)]
pub struct Provider {
    name: String,
    kind: Kind,
    accounts: Vec<Account>,
    models: Option<Vec<String>>,
    stream_usage: bool,
    max_event_bytes: usize,
    transport: Transport,
}

/// The per-kind part of a provider. One arm per [`ProviderKind`].
#[derive(Debug)]
enum Kind {
    OpenAiCompatible(openai_compatible::OpenAiCompatible),
}

/// What an upstream's refusal means for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The class, for records and metrics.
    pub class: FailureClass,
    /// How long the upstream asked us to wait, if it said.
    pub retry_after: Option<Duration>,
}

impl Provider {
    /// Builds a provider from its config entry.
    pub fn from_config(config: &ProviderConfig) -> Result<Self, TransportError> {
        let transport = Transport::new(TransportOptions {
            connect_timeout: config.limits.connect_timeout,
            first_byte_timeout: config.limits.first_byte_timeout,
            idle_timeout: config.limits.idle_timeout,
        })?;
        let kind = match config.kind {
            ProviderKind::OpenAiCompatible => {
                Kind::OpenAiCompatible(openai_compatible::OpenAiCompatible::new(config))
            }
        };
        Ok(Self {
            name: config.name.clone(),
            kind,
            accounts: Account::from_keys(&config.name, &config.api_keys),
            models: config.models.clone(),
            stream_usage: config.stream_usage,
            max_event_bytes: config.limits.max_event_bytes,
            transport,
        })
    }

    /// The entry's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of service.
    pub fn kind(&self) -> ProviderKind {
        match self.kind {
            Kind::OpenAiCompatible(_) => ProviderKind::OpenAiCompatible,
        }
    }

    /// The dialect the upstream speaks.
    pub fn dialect(&self) -> Dialect {
        match self.kind {
            Kind::OpenAiCompatible(_) => Dialect::OpenAiChat,
        }
    }

    /// The accounts requests rotate over; never empty.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// The models the config lists, if it lists them.
    pub fn configured_models(&self) -> Option<&[String]> {
        self.models.as_deref()
    }

    /// Whether to ask for usage on streams whose client did not.
    pub fn stream_usage(&self) -> bool {
        self.stream_usage
    }

    /// The largest stream event or whole response body accepted.
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// The client to send this provider's requests with.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// A Chat Completions request carrying `body` as it should go upstream.
    pub fn chat_request(&self, account: &Account, body: Bytes) -> OutboundRequest {
        match &self.kind {
            Kind::OpenAiCompatible(upstream) => upstream.chat_request(account, body),
        }
    }

    /// A request for the upstream's model catalog.
    pub fn models_request(&self, account: &Account) -> OutboundRequest {
        match &self.kind {
            Kind::OpenAiCompatible(upstream) => upstream.models_request(account),
        }
    }

    /// Reads the upstream's model catalog.
    pub fn parse_models(&self, body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
        match &self.kind {
            Kind::OpenAiCompatible(_) => openai_compatible::parse_models(body),
        }
    }

    /// What an error status from the upstream means.
    pub fn classify_failure(&self, status: StatusCode, headers: &HeaderMap) -> Failure {
        match &self.kind {
            Kind::OpenAiCompatible(_) => openai_compatible::classify_failure(status, headers),
        }
    }

    /// Every secret this provider sends for `account`, so text coming back
    /// from the upstream can be scrubbed of them before anyone sees it.
    pub fn secrets<'a>(&'a self, account: &'a Account) -> Vec<&'a str> {
        let mut secrets: Vec<&str> = account.credential.secrets().collect();
        match &self.kind {
            Kind::OpenAiCompatible(upstream) => secrets.extend(upstream.header_secrets()),
        }
        secrets
    }
}
