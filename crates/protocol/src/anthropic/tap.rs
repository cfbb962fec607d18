//! Metering an Anthropic stream that passes through.

use serde::Deserialize;
use subgate_core::Usage;

use super::usage_from_wire;
use super::wire::WireUsage;
use crate::error::ErrorKind;
use crate::sse::write_event;

/// Watches an Anthropic stream go by: usage from `message_start` and
/// `message_delta`, completion at `message_stop`. Content deltas are not
/// parsed.
#[derive(Debug, Default)]
pub struct AnthropicTap {
    usage: WireUsage,
    seen_usage: bool,
    complete: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Start {
    message: StartMessage,
}

#[derive(Deserialize)]
struct StartMessage {
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Delta {
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ErrorEvent {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

impl AnthropicTap {
    /// Looks at one event.
    pub fn observe(&mut self, event: Option<&str>, data: &str) {
        let usage = match event {
            Some("message_start") => serde_json::from_str::<Start>(data)
                .ok()
                .and_then(|start| start.message.usage),
            Some("message_delta") => serde_json::from_str::<Delta>(data)
                .ok()
                .and_then(|delta| delta.usage),
            Some("message_stop") => {
                self.complete = true;
                None
            }
            Some("error") => {
                let message = serde_json::from_str::<ErrorEvent>(data)
                    .ok()
                    .and_then(|event| event.error.message);
                self.error = Some(message.unwrap_or_default());
                None
            }
            _ => None,
        };
        if let Some(usage) = usage {
            self.seen_usage = true;
            if usage.input_tokens.is_some() {
                self.usage.input_tokens = usage.input_tokens;
            }
            if usage.output_tokens.is_some() {
                self.usage.output_tokens = usage.output_tokens;
            }
            if usage.cache_read_input_tokens.is_some() {
                self.usage.cache_read_input_tokens = usage.cache_read_input_tokens;
            }
            if usage.cache_creation_input_tokens.is_some() {
                self.usage.cache_creation_input_tokens = usage.cache_creation_input_tokens;
            }
        }
    }

    /// The usage reported so far.
    pub fn usage(&self) -> Option<Usage> {
        self.seen_usage.then(|| usage_from_wire(&self.usage))
    }

    /// Whether `message_stop` arrived.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The upstream's own error event, if it sent one.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The event that ends the client's stream with a failure.
    pub fn failure(kind: ErrorKind, message: &str) -> Vec<u8> {
        let body = crate::error::ErrorReport {
            kind,
            status: 0,
            message,
            code: None,
            param: None,
        }
        .to_value(subgate_core::Dialect::Anthropic);
        let mut out = Vec::new();
        write_event(&mut out, Some("error"), &body.to_string());
        out
    }
}

/// The usage of a non-streamed Anthropic answer.
pub fn response_usage(body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct WithUsage {
        usage: Option<WireUsage>,
    }
    serde_json::from_slice::<WithUsage>(body)
        .ok()?
        .usage
        .as_ref()
        .map(usage_from_wire)
}
