//! What a mock does with one request.

use std::time::Duration;

use http::StatusCode;

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
    /// After this many content events the connection is aborted mid-body.
    Reset {
        /// Content events sent before the reset.
        after: usize,
    },
}

/// The behaviour of one request. The default answers
/// "Hello from the mock upstream." in four pieces, at once.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub(crate) reply: String,
    pub(crate) pieces: usize,
    pub(crate) error: Option<(StatusCode, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) first_byte_delay: Duration,
    pub(crate) chunk_delay: Duration,
    pub(crate) end: StreamEnd,
    pub(crate) malformed_at: Option<usize>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            reply: "Hello from the mock upstream.".to_owned(),
            pieces: 4,
            error: None,
            headers: Vec::new(),
            first_byte_delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            end: StreamEnd::Complete,
            malformed_at: None,
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

    /// The reply split into its streamed pieces, on character boundaries.
    pub(crate) fn split_reply(&self) -> Vec<String> {
        let chars: Vec<char> = self.reply.chars().collect();
        let size = chars.len().div_ceil(self.pieces).max(1);
        chars
            .chunks(size)
            .map(|piece| piece.iter().collect())
            .collect()
    }
}
