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

/// [`fingerprint`] computed on text that arrives in pieces, in constant
/// memory: the hash runs over everything after the leading whitespace, and
/// the value is the hash as it stood after the last character that is not
/// whitespace.
#[derive(Debug, Clone, Copy)]
struct Fingerprinter {
    /// The hash of all the text after its leading whitespace.
    running: u64,
    /// The hash up to the last character that is not whitespace.
    trimmed: u64,
    /// Some text other than whitespace has been seen.
    started: bool,
}

impl Default for Fingerprinter {
    fn default() -> Self {
        Self {
            running: FNV_OFFSET,
            trimmed: FNV_OFFSET,
            started: false,
        }
    }
}

impl Fingerprinter {
    fn push(&mut self, text: &str) {
        let text = if self.started {
            text
        } else {
            text.trim_start()
        };
        if text.is_empty() {
            return;
        }
        self.started = true;
        let (content, trailing) = text.split_at(text.trim_end().len());
        if !content.is_empty() {
            self.running = fnv1a(self.running, content.as_bytes());
            self.trimmed = self.running;
        }
        self.running = fnv1a(self.running, trailing.as_bytes());
    }

    /// Whether any text other than whitespace was seen.
    fn is_empty(&self) -> bool {
        !self.started
    }

    fn value(&self) -> u64 {
        self.trimmed
    }
}
