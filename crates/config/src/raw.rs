//! The config file as written: every field optional, unknown keys refused.
//!
//! [`crate::validate`] turns this into [`crate::Config`], applying defaults and
//! checking what serde cannot.

use std::collections::BTreeMap;

use serde::Deserialize;
use subgate_core::ProviderKind;

use crate::{Preset, Strategy};

use crate::units::{ConfigDuration, ConfigSize};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) server: RawServer,
    #[serde(default)]
    pub(crate) storage: RawStorage,
    #[serde(default)]
    pub(crate) log: RawLog,
    #[serde(default)]
    pub(crate) upstream: RawTimeouts,
    #[serde(default)]
    pub(crate) routing: RawRouting,
    #[serde(default)]
    pub(crate) aliases: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    pub(crate) providers: Vec<RawProvider>,
    #[serde(default)]
    pub(crate) pricing: RawPricing,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPricing {
    pub(crate) file: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) refresh: Option<ConfigDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouting {
    pub(crate) strategy: Option<Strategy>,
    pub(crate) session_affinity: Option<bool>,
    pub(crate) affinity_ttl: Option<ConfigDuration>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) failover_deadline: Option<ConfigDuration>,
    pub(crate) backoff_base: Option<ConfigDuration>,
    pub(crate) backoff_cap: Option<ConfigDuration>,
    pub(crate) auth_cooldown: Option<ConfigDuration>,
}

/// One account of a provider, with a name people choose.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccount {
    pub(crate) name: String,
    pub(crate) api_key: Option<String>,
    pub(crate) api_key_env: Option<String>,
    pub(crate) priority: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) max_body_size: Option<ConfigSize>,
    pub(crate) shutdown_timeout: Option<ConfigDuration>,
    pub(crate) read_timeout: Option<ConfigDuration>,
    pub(crate) require_keys: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorage {
    pub(crate) data_dir: Option<String>,
    pub(crate) database_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub(crate) format: Option<RawLogFormat>,
    pub(crate) level: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawLogFormat {
    Pretty,
    Json,
}

/// One of OpenAI's generation APIs.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawApi {
    Chat,
    Responses,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    pub(crate) connect_timeout: Option<ConfigDuration>,
    pub(crate) first_byte_timeout: Option<ConfigDuration>,
    pub(crate) first_token_timeout: Option<ConfigDuration>,
    pub(crate) idle_timeout: Option<ConfigDuration>,
    pub(crate) max_event_size: Option<ConfigSize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub(crate) kind: ProviderKind,
    /// Defaults to the kind's name.
    pub(crate) name: Option<String>,
    pub(crate) preset: Option<Preset>,
    pub(crate) base_url: Option<String>,
    pub(crate) auth_url: Option<String>,
    #[serde(default)]
    pub(crate) api_keys: Vec<String>,
    pub(crate) api_key_env: Option<OneOrMany>,
    #[serde(default)]
    pub(crate) accounts: Vec<RawAccount>,
    pub(crate) strategy: Option<Strategy>,
    pub(crate) max_concurrency: Option<u32>,
    pub(crate) min_interval: Option<ConfigDuration>,
    pub(crate) models: Option<Vec<String>>,
    pub(crate) stream_usage: Option<bool>,
    pub(crate) apis: Option<Vec<RawApi>>,
    pub(crate) always_stream: Option<bool>,
    pub(crate) thinking_tags: Option<bool>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    // The `[upstream]` settings, per provider. Spelled out rather than
    // flattened: serde cannot refuse unknown keys through `flatten`.
    pub(crate) connect_timeout: Option<ConfigDuration>,
    pub(crate) first_byte_timeout: Option<ConfigDuration>,
    pub(crate) first_token_timeout: Option<ConfigDuration>,
    pub(crate) idle_timeout: Option<ConfigDuration>,
    pub(crate) max_event_size: Option<ConfigSize>,
}

impl RawProvider {
    /// The entry a subscription kind gets when the file has none: every
    /// setting at its default, so logins work without editing the config.
    pub(crate) fn implicit(kind: ProviderKind) -> Self {
        Self {
            kind,
            name: None,
            preset: None,
            base_url: None,
            auth_url: None,
            api_keys: Vec::new(),
            api_key_env: None,
            accounts: Vec::new(),
            strategy: None,
            max_concurrency: None,
            min_interval: None,
            models: None,
            stream_usage: None,
            apis: None,
            always_stream: None,
            thinking_tags: None,
            headers: BTreeMap::new(),
            connect_timeout: None,
            first_byte_timeout: None,
            first_token_timeout: None,
            idle_timeout: None,
            max_event_size: None,
        }
    }

    pub(crate) fn timeouts(&self) -> RawTimeouts {
        RawTimeouts {
            connect_timeout: self.connect_timeout,
            first_byte_timeout: self.first_byte_timeout,
            first_token_timeout: self.first_token_timeout,
            idle_timeout: self.idle_timeout,
            max_event_size: self.max_event_size,
        }
    }
}

/// One string or a list of strings.
#[derive(Debug)]
pub(crate) struct OneOrMany(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;
        impl<'de> serde::de::Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(OneOrMany(vec![value.to_owned()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(OneOrMany(names))
            }
        }
        deserializer.deserialize_any(OneOrManyVisitor)
    }
}
