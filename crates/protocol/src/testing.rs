//! Helpers for the dialects' tests.

use proptest::prelude::*;

use crate::canonical::{Aggregator, Event, Response};
use crate::codec::{StreamDecoder, StreamEncoder};

/// A fixture file's text.
pub(crate) fn fixture(path: &str) -> String {
    let full = format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|error| panic!("reading {full}: {error}"))
}

/// Feeds `bytes` to `decoder` in pieces cut at `cuts`, and returns every
/// event (owned) and the result of `finish`.
pub(crate) fn decode_in_pieces(
    decoder: &mut dyn StreamDecoder,
    bytes: &[u8],
    cuts: &[usize],
) -> (Vec<Event<'static>>, Result<(), crate::codec::DecodeError>) {
    let mut events = Vec::new();
    let mut positions: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
    positions.sort_unstable();
    let mut from = 0;
    for position in positions.into_iter().chain([bytes.len()]) {
        if let Err(error) = decoder.feed(&bytes[from..position], &mut |event| {
            events.push(event.into_owned());
        }) {
            return (events, Err(error));
        }
        from = position;
    }
    let finished = decoder.finish(&mut |event| events.push(event.into_owned()));
    (events, finished)
}

/// Decodes `bytes` whole.
pub(crate) fn decode(decoder: &mut dyn StreamDecoder, bytes: &[u8]) -> Vec<Event<'static>> {
    let (events, finished) = decode_in_pieces(decoder, bytes, &[]);
    finished.unwrap();
    events
}

/// Encodes `events` and returns the client bytes.
pub(crate) fn encode(encoder: &mut dyn StreamEncoder, events: &[Event<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for event in events {
        encoder.encode(event, &mut out);
    }
    out
}

/// The answer `events` describe.
pub(crate) fn aggregate(events: &[Event<'_>]) -> Response {
    let mut aggregator = Aggregator::default();
    for event in events {
        aggregator.push(event.clone());
    }
    aggregator.finish().unwrap()
}

/// Cut positions for chunk-boundary properties.
pub(crate) fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(any::<usize>(), 0..24)
}

/// Pretty JSON of a body, for snapshots.
pub(crate) fn pretty(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap();
    serde_json::to_string_pretty(&value).unwrap()
}

/// The JSON `data` of every SSE event in `bytes`.
pub(crate) fn sse_json(bytes: &[u8]) -> Vec<serde_json::Value> {
    let mut decoder = crate::sse::SseDecoder::default();
    decoder.push(bytes);
    let mut values = Vec::new();
    while let Some(event) = decoder.next_event().unwrap() {
        if let Ok(value) = serde_json::from_str(event.data) {
            values.push(value);
        }
    }
    values
}
