//! Token usage of one request, in one shape for every dialect.

use serde::{Deserialize, Serialize};

/// Tokens one request consumed, as the upstream reported them.
///
/// `input_tokens` counts every prompt token, cached ones included (OpenAI's
/// convention); `cache_read_tokens` and `cache_write_tokens` say how many of
/// them hit or filled a prompt cache. `reasoning_tokens` are part of
/// `output_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Generated tokens, reasoning included.
    pub output_tokens: u64,
    /// Prompt tokens served from a cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to a cache.
    pub cache_write_tokens: u64,
    /// Generated tokens spent on reasoning.
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Input plus output tokens.
    pub const fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}
