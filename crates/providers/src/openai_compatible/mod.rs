//! Any service that speaks OpenAI Chat Completions with a bearer key:
//! OpenRouter, DeepSeek, Groq, Ollama, vLLM, LM Studio.
//!
//! `Authorization: Bearer <key>` (or nothing for a local server),
//! `{base_url}/chat/completions` and `{base_url}/models`, OpenAI's error
//! statuses. The `openai` provider reuses this module's requests.

mod errors;
mod models;
mod request;

#[cfg(test)]
mod tests;

pub(crate) use errors::{classify_failure, error_words, quota_from_headers};
pub(crate) use models::{OPENAI_MODELS, is_openai_family, parse_models, preset_models};
use subgate_config::{ProviderConfig, Url};
use subgate_core::SecretString;

#[derive(Debug)]
pub(crate) struct OpenAiCompatible {
    pub(crate) base_url: Url,
    pub(crate) headers: Vec<(String, SecretString)>,
}

impl OpenAiCompatible {
    pub(crate) fn new(config: &ProviderConfig) -> Self {
        Self {
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
        }
    }
}
