//! Kiro's CodeWhisperer dialect (`GenerateAssistantResponse`), upstream
//! only: requests are written and streams are read; no client speaks it.
//!
//! Facts: `reference/protocols.md` §5.3 (the request body and the quirks
//! that make Kiro answer `400 Improperly formed request.`), §5.4 (the AWS
//! event stream and its event payloads), §5.5 (errors) and §5.7 (the
//! proxies' fake reasoning, thinking tags and truncation recovery).
//!
//! Kiro has no system role, no sampling parameters and no thinking control.
//! System text goes in front of the first user message; thinking, when the
//! client asks for it, is requested with tags in the prompt (§5.7 "fake
//! reasoning") and split back out of the streamed text with
//! [`crate::thinking_tags`]. Kiro sometimes cuts an answer short without
//! saying so: the stream decoder reports each cut as a [`Truncation`] that
//! the caller remembers, and the next request built from the same
//! conversation turns it into a notice to the model.

mod request;
mod schema;
mod stream;

#[cfg(test)]
mod tests;

pub use request::{EncodeOptions, Encoded, encode_request};
pub use schema::clean_schema;
pub use stream::{DecodeOptions, KiroStreamDecoder};

/// The longest tool name Kiro (like the Claude and OpenAI APIs) accepts.
pub const MAX_TOOL_NAME_CHARS: usize = 64;

/// The thinking budget asked for when the client leaves it to the model.
pub const DEFAULT_THINKING_BUDGET: u64 = 4_000;

/// The largest thinking budget the fake-reasoning prompt asks for.
pub const MAX_THINKING_BUDGET: u64 = 10_000;

/// An answer Kiro cut short, remembered until the conversation's next
/// request (one-shot: the caller forgets a truncation once
/// [`Encoded::used`] reports it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Truncation {
    /// A tool call whose input was cut; it reached the client with `{}` as
    /// arguments.
    ToolInput {
        /// The call's id.
        tool_use_id: String,
    },
    /// An answer that ended without its closing events; `fingerprint` of
    /// its text (see [`fingerprint`]).
    Text {
        /// The fingerprint of the text the client saw, thinking excluded.
        fingerprint: u64,
    },
}

/// FNV-1a's 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a's 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Folds `bytes` into an FNV-1a hash.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// A fingerprint of an answer's text: FNV-1a over the text without its
/// leading and trailing whitespace, so the copy a client sends back matches
/// the streamed one however its ends were trimmed. Stable across runs and
/// builds.
pub fn fingerprint(text: &str) -> u64 {
    fnv1a(FNV_OFFSET, text.trim().as_bytes())
}

/// [`fingerprint`] computed on text that arrives in pieces, holding back
/// only a run of whitespace that may turn out to be trailing.
#[derive(Debug, Clone)]
struct Fingerprinter {
    hash: u64,
    /// Some text other than whitespace has been seen.
    started: bool,
    /// Whitespace after the last other character.
    pending: String,
}

impl Default for Fingerprinter {
    fn default() -> Self {
        Self {
            hash: FNV_OFFSET,
            started: false,
            pending: String::new(),
        }
    }
}

impl Fingerprinter {
    fn push(&mut self, text: &str) {
        let mut rest = text;
        while !rest.is_empty() {
            let content = rest.trim_start();
            let whitespace = &rest[..rest.len() - content.len()];
            if self.started {
                self.pending.push_str(whitespace);
            }
            let end = content.find(char::is_whitespace).unwrap_or(content.len());
            if end > 0 {
                self.hash = fnv1a(self.hash, self.pending.as_bytes());
                self.pending.clear();
                self.hash = fnv1a(self.hash, &content.as_bytes()[..end]);
                self.started = true;
            }
            rest = &content[end..];
        }
    }

    /// Whether any text other than whitespace was seen.
    fn is_empty(&self) -> bool {
        !self.started
    }

    fn value(&self) -> u64 {
        self.hash
    }
}
