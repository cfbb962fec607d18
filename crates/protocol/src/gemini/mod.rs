//! Gemini `generateContent`: `POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent` (SSE with `alt=sse`, a JSON array without), and
//! its errors.
//!
//! Facts: `reference/protocols.md` §7.4 and §4.3. Gemini names no tool-call
//! ids in older models: calls get `call_<turn>_<n>` ids, and a function
//! response is paired with the call of the same name in the turn before.
//! A `thoughtSignature` may sit on any part; canonically it travels in a
//! thinking block (with empty text when the part was not a thought) right
//! before that part, and goes back onto the part that follows it.

mod request;
mod response;
mod schema;
mod stream;
mod tap;

#[cfg(test)]
mod tests;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use schema::sanitize_schema;
pub use stream::{Framing, GeminiStreamDecoder, GeminiStreamEncoder};
pub use tap::{ArrayFraming, GeminiTap, response_usage};

use serde_json::{Value, json};
use subgate_core::Usage;

use crate::canonical::StopReason;

/// The largest thinking budget Gemini models accept.
pub const MAX_THINKING_BUDGET: u64 = 32_768;

pub(crate) fn usage_from_wire(metadata: &Value) -> Usage {
    let count = |key: &str| metadata[key].as_u64().unwrap_or(0);
    let thoughts = count("thoughtsTokenCount");
    Usage {
        input_tokens: count("promptTokenCount"),
        output_tokens: count("candidatesTokenCount") + thoughts,
        cache_read_tokens: count("cachedContentTokenCount"),
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
    }
}

pub(crate) fn usage_to_wire(usage: &Usage) -> Value {
    json!({
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens.saturating_sub(usage.reasoning_tokens),
        "thoughtsTokenCount": usage.reasoning_tokens,
        "totalTokenCount": usage.total_tokens(),
        "cachedContentTokenCount": usage.cache_read_tokens,
    })
}

pub(crate) fn stop_from_wire(reason: &str, called: bool) -> StopReason {
    match reason {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            StopReason::ContentFilter
        }
        _ if called => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

pub(crate) fn stop_to_wire(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::ToolUse => "STOP",
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
    }
}
