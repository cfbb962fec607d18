//! What a mock does with one request.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;

use super::KiroScript;

/// How a streamed answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every event, then the terminator (`[DONE]` for OpenAI).
    Complete,
    /// After this many content events the body ends cleanly, without the
    /// finish and terminating events: a truncated stream.
    Cut {
        /// Content events sent before the cut.
        after: usize,
    },
    /// After this many content events the TCP connection is reset (an
    /// RST, not a clean close) mid-body.
    Reset {
        /// Content events sent before the reset.
        after: usize,
    },
    /// After this many content events the upstream reports a failure in
    /// the stream, as its API does (Anthropic's `event: error` with
    /// `overloaded_error`, Responses' `response.failed`, an error object in
    /// a Chat or Gemini chunk), and ends the body.
    Error {
        /// Content events sent before the error.
        after: usize,
        /// The error's message.
        message: &'static str,
    },
}

/// One thing a mock's answer contains, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Reasoning, with the signature an upstream that signs gives it.
    Thinking {
        /// The reasoning text.
        text: String,
        /// Its signature (Anthropic's `signature`, Gemini's
        /// `thoughtSignature`, Responses' `encrypted_content`).
        signature: Option<String>,
    },
    /// Text.
    Text(String),
    /// A tool call.
    ToolCall {
        /// Its id (Gemini's mock sends none; the others do).
        id: String,
        /// The tool.
        name: String,
        /// The arguments, as JSON text.
        arguments: String,
    },
}

/// Why a mock's answer ends, when it is not simply done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The token limit was hit.
    MaxTokens,
    /// A stop sequence was generated.
    StopSequence(String),
}

/// The behaviour of one request. The default answers
/// "Hello from the mock upstream." in four pieces, at once.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub(crate) reply: String,
    pub(crate) outputs: Vec<Output>,
    pub(crate) stop: Option<Stop>,
    pub(crate) pieces: usize,
    pub(crate) error: Option<(StatusCode, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) first_byte_delay: Duration,
    pub(crate) chunk_delay: Duration,
    pub(crate) body_delay: Duration,
    pub(crate) end: StreamEnd,
    pub(crate) malformed_at: Option<usize>,
    pub(crate) raw_events: Vec<(usize, Bytes)>,
    pub(crate) endless_at: Option<usize>,
    pub(crate) raw_answer: Option<Bytes>,
    pub(crate) reset_before_head: bool,
    pub(crate) kiro: Option<KiroScript>,
    /// Prompt tokens read from and written to the cache (Anthropic).
    pub(crate) cache_tokens: (u64, u64),
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            reply: "Hello from the mock upstream.".to_owned(),
            outputs: Vec::new(),
            stop: None,
            pieces: 4,
            error: None,
            headers: Vec::new(),
            first_byte_delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            body_delay: Duration::ZERO,
            end: StreamEnd::Complete,
            malformed_at: None,
            raw_events: Vec::new(),
            endless_at: None,
            raw_answer: None,
            reset_before_head: false,
            kiro: None,
            cache_tokens: (0, 0),
        }
    }
}

impl Scenario {
    /// Answers with `text`.
    pub fn reply(text: &str) -> Self {
        Self {
            reply: text.to_owned(),
            ..Self::default()
        }
    }

    /// Answers with these outputs, in order.
    pub fn outputs(outputs: Vec<Output>) -> Self {
        Self {
            outputs,
            ..Self::default()
        }
    }

    /// Reports this many prompt tokens read from the prompt cache and
    /// written to it, besides the uncached ones (Anthropic's
    /// `cache_read_input_tokens` and `cache_creation_input_tokens`).
    #[must_use]
    pub fn cache_tokens(mut self, read: u64, written: u64) -> Self {
        self.cache_tokens = (read, written);
        self
    }

    /// Ends the answer for this reason.
    #[must_use]
    pub fn stop(mut self, stop: Stop) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Answers with an error status and this body, in the upstream's own
    /// shape. `{authorization}` in the body is replaced by the request's
    /// `Authorization` header, as a careless upstream would echo it.
    pub fn error(status: u16, body: &str) -> Self {
        Self {
            error: Some((
                StatusCode::from_u16(status).expect("a valid status"),
                body.to_owned(),
            )),
            ..Self::default()
        }
    }

    /// Splits a streamed reply into this many content events.
    #[must_use]
    pub fn pieces(mut self, pieces: usize) -> Self {
        self.pieces = pieces.max(1);
        self
    }

    /// Adds a response header (`retry-after`, say).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Waits this long before sending the response head.
    #[must_use]
    pub fn first_byte_delay(mut self, delay: Duration) -> Self {
        self.first_byte_delay = delay;
        self
    }

    /// Sends the response head of a stream, then waits this long before
    /// its first event (an upstream that stalls after saying yes).
    #[must_use]
    pub fn body_delay(mut self, delay: Duration) -> Self {
        self.body_delay = delay;
        self
    }

    /// Waits this long before each streamed event after the first.
    #[must_use]
    pub fn chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    /// Ends the stream this way.
    #[must_use]
    pub fn end(mut self, end: StreamEnd) -> Self {
        self.end = end;
        self
    }

    /// Sends a malformed event in place of content event `index`.
    #[must_use]
    pub fn malformed_chunk_at(mut self, index: usize) -> Self {
        self.malformed_at = Some(index);
        self
    }

    /// Sends `bytes` as they are in place of content event `index`: a
    /// garbage line, an event without `data:`, JSON that does not parse,
    /// bytes that are not UTF-8. Several may be given, one per index.
    #[must_use]
    pub fn raw_event_at(mut self, index: usize, bytes: impl Into<Bytes>) -> Self {
        self.raw_events.push((index, bytes.into()));
        self
    }

    /// In place of content event `index`, starts an event that never ends:
    /// `data: ` and then 64 KiB pieces of `x`, with no line end, for as long
    /// as the caller reads. A reader without a limit on one event grows
    /// until it runs out of memory.
    #[must_use]
    pub fn endless_event_at(mut self, index: usize) -> Self {
        self.endless_at = Some(index);
        self
    }

    /// Answers 200 with `body` as it is (`application/json`), whatever the
    /// request asked, once the API's own checks pass: a body that is not
    /// JSON, or not UTF-8, where a well-formed answer was due.
    pub fn raw_answer(body: impl Into<Bytes>) -> Self {
        Self {
            raw_answer: Some(body.into()),
            ..Self::default()
        }
    }

    /// Resets the TCP connection (an RST) once the request is read, before
    /// any byte of the response head goes out: an upstream that crashed, or
    /// a proxy in front of it that dropped the connection.
    pub fn reset_before_head() -> Self {
        Self {
            reset_before_head: true,
            ..Self::default()
        }
    }

    /// Kiro's stream quirks for this answer (duplicate tool uses, a
    /// repeated chunk, truncation, in-stream failures…); only the Kiro mock
    /// reads them.
    #[must_use]
    pub fn kiro(mut self, script: KiroScript) -> Self {
        self.kiro = Some(script);
        self
    }

    /// The answer's outputs: the configured ones, or the reply as text.
    pub(crate) fn answer(&self) -> Vec<Output> {
        if self.outputs.is_empty() {
            vec![Output::Text(self.reply.clone())]
        } else {
            self.outputs.clone()
        }
    }

    /// `text` split into this scenario's number of pieces, on character
    /// boundaries.
    pub(crate) fn split(&self, text: &str) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        let size = chars.len().div_ceil(self.pieces).max(1);
        chars
            .chunks(size)
            .map(|piece| piece.iter().collect())
            .collect()
    }
}
