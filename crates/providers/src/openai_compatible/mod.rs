//! Any service that speaks OpenAI Chat Completions with a bearer key:
//! OpenRouter, DeepSeek, Groq, Ollama, vLLM, LM Studio and OpenAI itself.
//!
//! The plainest provider there is: `Authorization: Bearer <key>` (or nothing
//! for a local server), `{base_url}/chat/completions` and
//! `{base_url}/models`, OpenAI's error statuses.

mod errors;
mod models;
mod request;

#[cfg(test)]
mod tests;

pub(crate) use errors::classify_failure;
pub(crate) use models::parse_models;
use subgate_config::{ProviderConfig, Url};
use subgate_core::{SecretString, expose};

#[derive(Debug)]
pub(crate) struct OpenAiCompatible {
    base_url: Url,
    headers: Vec<(String, SecretString)>,
}

impl OpenAiCompatible {
    pub(crate) fn new(config: &ProviderConfig) -> Self {
        Self {
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
        }
    }

    /// Values of configured headers that carry credentials, judged by
    /// their names (a title or referer header is not a secret, and masking
    /// it would mangle error text).
    pub(crate) fn header_secrets(&self) -> impl Iterator<Item = &str> {
        const CREDENTIAL_WORDS: [&str; 5] = ["auth", "key", "token", "secret", "cookie"];
        self.headers
            .iter()
            .filter(|(name, _)| CREDENTIAL_WORDS.iter().any(|word| name.contains(word)))
            .map(|(_, value)| expose(value))
    }
}
