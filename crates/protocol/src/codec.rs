//! The two stream state machines every dialect implements, and the options
//! conversions take.

use crate::canonical::Event;
use crate::sse::SseDecoder;

/// Why an upstream stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Upstream bytes → canonical events, fed chunk by chunk. The events do not
/// depend on where the chunks were cut.
pub trait StreamDecoder: Send {
    /// Takes the next chunk of the upstream body and emits the events it
    /// completes.
    fn feed(&mut self, chunk: &[u8], emit: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError>;

    /// The upstream body ended. Fails when the stream was not complete.
    fn finish(&mut self, emit: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError>;
}

/// The loop every SSE-based stream decoder runs: feeds `chunk` to `sse`,
/// hands each event it completes (`event:` name, data) to `on_event`, then
/// lets the decoded bytes go (a decoder keeps no raw bytes).
pub(crate) fn feed_sse(
    sse: &mut SseDecoder,
    chunk: &[u8],
    mut on_event: impl FnMut(Option<&str>, &str) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    sse.push(chunk);
    while let Some(event) = sse
        .next_event()
        .map_err(|error| DecodeError(error.to_string()))?
    {
        on_event(event.event, event.data)?;
    }
    sse.discard(sse.decoded_len());
    Ok(())
}

/// Canonical events → client bytes, appended to `out`.
pub trait StreamEncoder: Send {
    /// Writes what `event` means in the client's dialect.
    fn encode(&mut self, event: &Event<'_>, out: &mut Vec<u8>);
}

/// Where a request is going, for the conversions that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The provider's name: signatures issued by another provider are not
    /// sent to it.
    pub provider: &'a str,
    /// The model name the upstream knows.
    pub model: &'a str,
}
