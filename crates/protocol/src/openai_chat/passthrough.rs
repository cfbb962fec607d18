//! Metering a Chat Completions answer that passes through: usage read from
//! a response or a stream on the side while the bytes go by unchanged.

use memchr::memmem;
use serde::Deserialize;
use serde::de::IgnoredAny;
use subgate_core::Usage;

use super::wire::WireUsage;

#[derive(Deserialize)]
struct WithUsage {
    usage: Option<WireUsage>,
    choices: Option<Vec<IgnoredAny>>,
}

/// The usage of a non-streamed response, if it reports one.
pub fn response_usage(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<WithUsage>(body)
        .ok()?
        .usage
        .map(Usage::from)
}

/// What a pass-through should do with one stream event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapVerdict {
    /// Send it to the client unchanged.
    Forward,
    /// Hold it back: it is the usage chunk the client did not ask for.
    Drop,
}

/// Watches a Chat Completions stream go by and remembers what the gateway
/// needs: the usage, whether `[DONE]` arrived, and an in-stream error.
///
/// Only events that can carry usage or an error are parsed, so the cost per
/// content chunk is one substring search.
#[derive(Debug, Default)]
pub struct StreamTap {
    client_wants_usage: bool,
    usage: Option<Usage>,
    done: bool,
    finished: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
struct StreamErrorEvent {
    error: StreamErrorBody,
}

#[derive(Deserialize)]
struct StreamErrorBody {
    message: Option<String>,
}

impl StreamTap {
    /// A tap for a client that did (or did not) ask for the usage chunk.
    pub fn new(client_wants_usage: bool) -> Self {
        Self {
            client_wants_usage,
            ..Self::default()
        }
    }

    /// Looks at the `data` of one event.
    pub fn observe(&mut self, data: &str) -> TapVerdict {
        if data == "[DONE]" {
            self.done = true;
            return TapVerdict::Forward;
        }
        if data.starts_with("{\"error\"") {
            if let Ok(event) = serde_json::from_str::<StreamErrorEvent>(data) {
                self.error = Some(event.error.message.unwrap_or_default());
            }
            return TapVerdict::Forward;
        }
        if !self.finished && has_member_starting(data, b"\"finish_reason\"", b'"') {
            self.finished = true;
        }
        if !has_member_starting(data, b"\"usage\"", b'{') {
            return TapVerdict::Forward;
        }
        let Ok(chunk) = serde_json::from_str::<WithUsage>(data) else {
            return TapVerdict::Forward;
        };
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
            if !self.client_wants_usage && chunk.choices.is_none_or(|choices| choices.is_empty()) {
                return TapVerdict::Drop;
            }
        }
        TapVerdict::Forward
    }

    /// The usage the stream reported, if it did.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether the terminating `[DONE]` arrived.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the answer is complete: `[DONE]` arrived, or at least a
    /// finish reason did (some servers close without `[DONE]`).
    pub fn is_complete(&self) -> bool {
        self.done || self.finished
    }

    /// The message of an error event the upstream sent, if it sent one.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// Whether `data` has a member named `key` (quotes included) whose value
/// starts with `first`: `{` for an object, `"` for a string. Inside JSON
/// strings quotes are escaped, so a match is a real member, not text.
fn has_member_starting(data: &str, key: &[u8], first: u8) -> bool {
    let bytes = data.as_bytes();
    memmem::find_iter(bytes, key).any(|at| {
        let mut rest = bytes[at + key.len()..]
            .iter()
            .copied()
            .filter(|byte| !byte.is_ascii_whitespace());
        rest.next() == Some(b':') && rest.next() == Some(first)
    })
}
