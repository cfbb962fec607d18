//! Anthropic Messages: `POST /v1/messages`, its SSE stream, its errors.
//!
//! Facts: `reference/protocols.md` §7.3 and §1.5. Usage differs from the
//! canonical convention: Anthropic's `input_tokens` excludes cache reads and
//! writes, so canonical input = `input_tokens + cache_read_input_tokens +
//! cache_creation_input_tokens`.

mod request;
mod response;
mod stream;
mod tap;
mod wire;

#[cfg(test)]
mod tests;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{AnthropicStreamDecoder, AnthropicStreamEncoder};
pub use tap::{AnthropicTap, response_usage};

use subgate_core::Usage;

/// The `anthropic-version` every request carries.
pub const VERSION: &str = "2023-06-01";

/// `max_tokens` is required by Anthropic; this is used when the client did
/// not say.
pub const DEFAULT_MAX_TOKENS: u64 = 8_192;

/// Anthropic's usage object → canonical.
pub(crate) fn usage_from_wire(usage: &wire::WireUsage) -> Usage {
    let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
    let cache_write = usage.cache_creation_input_tokens.unwrap_or(0);
    Usage {
        input_tokens: usage.input_tokens.unwrap_or(0) + cache_read + cache_write,
        output_tokens: usage.output_tokens.unwrap_or(0),
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        reasoning_tokens: 0,
    }
}

/// Canonical usage → Anthropic's usage object.
pub(crate) fn usage_to_wire(usage: &Usage) -> serde_json::Value {
    serde_json::json!({
        "input_tokens": usage
            .input_tokens
            .saturating_sub(usage.cache_read_tokens + usage.cache_write_tokens),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    })
}

/// An id Anthropic accepts for a tool call: letters, digits, `_` and `-`.
/// Other upstreams use `.` or `:` in theirs (`functions.get_weather:0`).
pub(crate) fn tool_id(id: &str) -> std::borrow::Cow<'_, str> {
    if id
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    {
        std::borrow::Cow::Borrowed(id)
    } else {
        std::borrow::Cow::Owned(
            id.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
        )
    }
}
