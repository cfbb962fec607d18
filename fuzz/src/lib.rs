//! What the fuzz targets check, shared so each target is one line.
//!
//! Every target takes arbitrary bytes. Stream inputs start with two bytes
//! that choose where the rest is cut into chunks, because the network may
//! cut anywhere and the decoders promise the same events whatever the cuts.
//! Beyond "no panic", each check asserts a property that must hold for every
//! input: the same events however the bytes were cut, raw bytes that add up
//! to the input, and encoded requests that are JSON.

use std::sync::{Arc, Mutex, PoisonError};

use subgate_core::Dialect;
use subgate_protocol::aws_eventstream::{Decoder, FrameError, Message};
use subgate_protocol::canonical::{Aggregator, BlockKind, Delta, Event, ReplyMeta};
use subgate_protocol::codec::{StreamDecoder, StreamEncoder, Target};
use subgate_protocol::dispatch::{self, ClientStream, DIALECTS, RequestLine};
use subgate_protocol::gemini::ArrayFraming;
use subgate_protocol::kiro::{DecodeOptions, KiroStreamDecoder, Truncation};
use subgate_protocol::openai_chat::ChatUpstream;
use subgate_protocol::passthrough::{BodyHead, Tap};
use subgate_protocol::sse::{SseDecoder, SseError};
use subgate_protocol::thinking_tags::{Piece, ThinkingTags};

/// Larger than any input the fuzzer makes, so no limit is hit and cut
/// invariance holds exactly.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// Splits a fuzz input into a cutting pattern and the stream itself.
fn chunks(data: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let (pattern, body) = match data {
        [a, b, rest @ ..] => ([*a, *b], rest),
        _ => ([1, 1], data),
    };
    let mut pieces = Vec::new();
    let mut rest = body;
    let mut turn = 0;
    while !rest.is_empty() {
        // Chunk lengths cycle through the two pattern bytes (1..=256).
        let len = (usize::from(pattern[turn % 2]) + 1).min(rest.len());
        let (piece, tail) = rest.split_at(len);
        pieces.push(piece);
        rest = tail;
        turn += 1;
    }
    (pieces, body)
}

/// What the SSE decoder made of a stream.
#[derive(Debug, PartialEq, Eq)]
struct SseOutcome {
    events: Vec<(Option<String>, String)>,
    error: Option<SseError>,
}

fn decode_sse(pieces: &[&[u8]], body: &[u8]) -> SseOutcome {
    let mut decoder = SseDecoder::new(MAX_EVENT_BYTES);
    let mut events = Vec::new();
    let mut raw = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => {
                    events.push((event.event.map(str::to_owned), event.data.to_owned()));
                }
                Ok(None) => break,
                Err(error) => {
                    return SseOutcome {
                        events,
                        error: Some(error),
                    };
                }
            }
            raw.extend_from_slice(&decoder.take_decoded());
        }
        raw.extend_from_slice(&decoder.take_decoded());
    }
    // Every byte is either in a taken event block or still pending.
    assert_eq!(raw.len() + decoder.pending_len(), body.len());
    assert_eq!(raw, body[..raw.len()]);
    SseOutcome {
        events,
        error: None,
    }
}

/// The SSE decoder: the same events and errors whatever the cuts, and raw
/// bytes that add up to the input.
///
/// # Panics
///
/// When either does not hold: that is the finding.
pub fn sse(data: &[u8]) {
    let (pieces, body) = chunks(data);
    let cut = decode_sse(&pieces, body);
    let whole = decode_sse(&[body], body);
    assert_eq!(cut, whole);
}

/// A client request: decoded, read for pass-through, and written for every
/// upstream dialect as JSON.
///
/// # Panics
///
/// When an encoded request is not JSON: that is the finding.
pub fn request(dialect: Dialect, data: &[u8]) {
    let line = RequestLine {
        model: Some("fuzz-model"),
        stream: data.len().is_multiple_of(2),
        sse: true,
    };
    if let Ok(head) = BodyHead::parse(dialect, data, line) {
        for meter in [false, true] {
            if let Some(body) = head.upstream_body(dialect, "upstream-model", meter) {
                assert_spliced_json(&body);
            }
        }
    }
    let mut dropped = Vec::new();
    let Ok(request) = dispatch::decode_request(dialect, data, line, &mut dropped) else {
        return;
    };
    let target = Target {
        provider: "fuzz",
        model: "upstream-model",
    };
    for upstream in DIALECTS {
        for max_completion_tokens in [false, true] {
            let chat = ChatUpstream {
                max_completion_tokens,
            };
            let body = dispatch::encode_request(upstream, &request, target, chat, &mut dropped);
            assert_json(&body);
        }
    }
}

/// A pass-through body is the client's text with values spliced in: it
/// must stay JSON by the grammar the body was read with, which (like
/// RFC 8259) allows lone surrogate escapes that a strict parse into
/// strings refuses.
fn assert_spliced_json(body: &str) {
    if let Err(error) = serde_json::from_str::<&serde_json::value::RawValue>(body) {
        panic!("a spliced body is not JSON ({error}): {body}");
    }
}

fn assert_json(body: &[u8]) {
    if let Err(error) = serde_json::from_slice::<serde_json::Value>(body) {
        panic!(
            "an encoded request is not JSON ({error}): {}",
            String::from_utf8_lossy(body)
        );
    }
}

/// What decoding a stream produced.
struct Decoded {
    events: Vec<Event<'static>>,
    complete: bool,
}

/// Decodes an upstream stream cut into `pieces`, writing every event for
/// each client dialect and aggregating it as it goes.
fn decode_stream(dialect: Dialect, pieces: &[&[u8]]) -> Decoded {
    let meta = ReplyMeta {
        id: "fuzz".to_owned(),
        created: 0,
        model: "fuzz-model".to_owned(),
    };
    let mut encoders: Vec<Box<dyn StreamEncoder>> = Vec::new();
    for client in DIALECTS {
        for (include_usage, sse) in [(false, false), (true, true)] {
            let options = ClientStream { include_usage, sse };
            encoders.push(dispatch::stream_encoder(client, meta.clone(), options));
        }
    }
    let mut decoder = dispatch::stream_decoder(dialect, "fuzz", MAX_EVENT_BYTES);
    let mut events = Vec::new();
    let mut aggregator = Aggregator::default();
    let mut out = Vec::new();
    let mut emit = |event: Event<'_>| {
        for encoder in &mut encoders {
            encoder.encode(&event, &mut out);
        }
        out.clear();
        let event = event.into_owned();
        aggregator.push(event.clone());
        events.push(event);
    };
    let mut complete = true;
    for piece in pieces {
        if decoder.feed(piece, &mut emit).is_err() {
            complete = false;
            break;
        }
    }
    if complete && decoder.finish(&mut emit).is_err() {
        complete = false;
    }
    let _ = aggregator.finish();
    Decoded { events, complete }
}

/// Meters the stream as a pass-through would, re-framing Gemini as an
/// array.
fn tap(dialect: Dialect, pieces: &[&[u8]]) {
    let mut decoder = SseDecoder::new(MAX_EVENT_BYTES);
    let mut tap = Tap::new(dialect, false);
    let mut framing = ArrayFraming::default();
    let mut out = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        while let Ok(Some(event)) = decoder.next_event() {
            let _ = tap.observe(event.event, event.data);
            framing.element(event.data, &mut out);
        }
        let _ = decoder.take_decoded();
    }
    framing.close(&mut out);
    let _ = (tap.usage(), tap.is_complete(), tap.error());
}

/// An upstream stream: decoded, re-encoded, aggregated and metered without
/// panicking, and the same events whatever the cuts when it decodes at all.
///
/// # Panics
///
/// When the events depend on the cuts: that is the finding.
pub fn stream(dialect: Dialect, data: &[u8]) {
    let (pieces, body) = chunks(data);
    let cut = decode_stream(dialect, &pieces);
    let whole = decode_stream(dialect, &[body]);
    if cut.complete && whole.complete {
        assert_eq!(cut.events, whole.events);
    }
    tap(dialect, &pieces);
}

/// Smaller than the largest input, so the size limit is reached too.
const MAX_FRAME_BYTES: usize = 8192;

/// What the event-stream decoder made of a stream: the messages, then the
/// first error or how the stream ended.
#[derive(Debug, PartialEq, Eq)]
struct FrameOutcome {
    messages: Vec<Message>,
    end: Result<(), FrameError>,
}

fn decode_frames(pieces: &[&[u8]]) -> FrameOutcome {
    let mut decoder = Decoder::new(MAX_FRAME_BYTES);
    let mut messages = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(error) => {
                    // A failed decoder stays quiet whatever comes next.
                    decoder.push(piece);
                    assert_eq!(decoder.next_message(), Ok(None));
                    assert_eq!(decoder.finish(), Ok(()));
                    return FrameOutcome {
                        messages,
                        end: Err(error),
                    };
                }
            }
        }
    }
    let end = decoder.finish();
    FrameOutcome { messages, end }
}

/// Writes correct CRCs into every frame the lengths mark out, so the fuzzer
/// reaches the headers instead of stopping at a checksum.
fn repair_crcs(body: &mut [u8]) {
    let mut at = 0;
    while let Some(prelude) = body.get(at..at + 12) {
        let crc = crc32fast::hash(&prelude[..8]).to_be_bytes();
        let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]) as usize;
        body[at + 8..at + 12].copy_from_slice(&crc);
        let Some(end) = at
            .checked_add(total)
            .filter(|end| total >= 16 && *end <= body.len())
        else {
            return;
        };
        let crc = crc32fast::hash(&body[at..end - 4]).to_be_bytes();
        body[end - 4..end].copy_from_slice(&crc);
        at = end;
    }
}

/// `body` with its frames' CRCs repaired.
fn with_crcs_repaired(pieces: &[&[u8]], body: &[u8]) -> Vec<u8> {
    debug_assert_eq!(
        pieces.iter().map(|piece| piece.len()).sum::<usize>(),
        body.len()
    );
    let mut repaired = body.to_vec();
    repair_crcs(&mut repaired);
    repaired
}

/// `bytes` cut into pieces as long as `pieces`.
fn recut<'a>(pieces: &[&[u8]], bytes: &'a [u8]) -> Vec<&'a [u8]> {
    let mut cut = Vec::with_capacity(pieces.len());
    let mut rest = bytes;
    for piece in pieces {
        let (head, tail) = rest.split_at(piece.len());
        cut.push(head);
        rest = tail;
    }
    cut
}

/// The AWS event-stream decoder: the same messages and errors whatever the
/// cuts, and every message encodes back to the bytes it came from.
///
/// The first byte's low bit asks for the CRCs to be repaired first; the next
/// two choose the cuts.
///
/// # Panics
///
/// When either does not hold: that is the finding.
pub fn aws_eventstream(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (pieces, body) = chunks(rest);
    let repaired;
    let (pieces, body) = if flags & 1 == 1 {
        repaired = with_crcs_repaired(&pieces, body);
        (recut(&pieces, &repaired), &repaired[..])
    } else {
        (pieces, body)
    };
    let cut = decode_frames(&pieces);
    let whole = decode_frames(&[body]);
    assert_eq!(cut, whole);
    let mut encoded = Vec::new();
    for message in &whole.messages {
        match message.encode() {
            Ok(bytes) => encoded.extend_from_slice(&bytes),
            Err(error) => panic!("a decoded message does not encode: {error}"),
        }
    }
    assert_eq!(encoded, body[..encoded.len().min(body.len())]);
    if whole.end.is_ok() {
        assert_eq!(encoded.len(), body.len());
    }
}

/// Feeds `chunks` to a thinking-tag parser and joins neighbouring pieces of
/// the same kind.
fn parse_thinking(chunks: &[&str]) -> (Vec<Piece>, bool) {
    let mut parser = ThinkingTags::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut add = |new: Vec<Piece>| {
        for piece in new {
            match (pieces.last_mut(), piece) {
                (_, Piece::Thinking(part) | Piece::Text(part)) if part.is_empty() => {
                    panic!("an empty piece");
                }
                (Some(Piece::Thinking(last)), Piece::Thinking(next))
                | (Some(Piece::Text(last)), Piece::Text(next)) => last.push_str(&next),
                (_, piece) => pieces.push(piece),
            }
        }
    };
    for chunk in chunks {
        add(parser.push(chunk));
    }
    add(parser.finish());
    (pieces, parser.found_thinking())
}

/// The thinking-tag parser: the same pieces whatever the cuts, and text
/// without a leading tag passes through unchanged.
///
/// # Panics
///
/// When either does not hold: that is the finding.
pub fn thinking_tags(data: &[u8]) {
    let (pieces, body) = chunks(data);
    let text = String::from_utf8_lossy(body);
    // The same cut lengths, each moved forward to a char boundary.
    let mut cuts = Vec::new();
    let mut at = 0;
    for piece in &pieces {
        let start = at;
        at = (at + piece.len()).min(text.len());
        while !text.is_char_boundary(at) {
            at += 1;
        }
        if start < at {
            cuts.push(&text[start..at]);
        }
    }
    if at < text.len() {
        cuts.push(&text[at..]);
    }
    let cut = parse_thinking(&cuts);
    let whole = parse_thinking(&[&text]);
    assert_eq!(cut, whole);
    if !whole.1 {
        let expected: Vec<Piece> = if text.is_empty() {
            Vec::new()
        } else {
            vec![Piece::Text(text.into_owned())]
        };
        assert_eq!(whole.0, expected);
    }
}

/// Checks the sequence `canonical::Event` documents: `Start` first, blocks
/// numbered in order and never interleaved, deltas that fit their block,
/// `Stop` after the last block, `End` last, nothing after `End` or `Error`;
/// and a stream that finished ends with `End` or `Error`.
fn assert_sequence(events: &[Event<'_>], finished: bool) {
    let mut open: Option<(usize, &BlockKind<'_>)> = None;
    let mut next = 0;
    let mut stopped = false;
    for (at, event) in events.iter().enumerate() {
        if at > 0 {
            assert!(
                !matches!(events[at - 1], Event::End | Event::Error(_)),
                "{event:?} after the end: {events:#?}"
            );
        }
        match event {
            Event::Start { .. } => assert_eq!(at, 0, "Start is not first: {events:#?}"),
            Event::BlockStart { index, kind } => {
                assert!(
                    open.is_none() && !stopped && *index == next,
                    "block {index} out of order: {events:#?}"
                );
                assert!(matches!(events.first(), Some(Event::Start { .. })));
                open = Some((*index, kind));
                next += 1;
            }
            Event::Delta { index, delta } => {
                let Some((current, kind)) = open else {
                    panic!("a delta outside a block: {events:#?}");
                };
                assert_eq!(current, *index, "a delta for another block: {events:#?}");
                let fits = matches!(
                    (kind, delta),
                    (BlockKind::Text, Delta::Text(_))
                        | (
                            BlockKind::Thinking,
                            Delta::Thinking(_) | Delta::Signature(_)
                        )
                        | (BlockKind::ToolUse { .. }, Delta::ToolInput(_))
                );
                assert!(fits, "{delta:?} in a {kind:?} block: {events:#?}");
            }
            Event::BlockStop { index } => {
                assert_eq!(open.take().map(|(index, _)| index), Some(*index));
            }
            Event::Stop { .. } => {
                assert!(open.is_none() && !stopped, "a misplaced Stop: {events:#?}");
                stopped = true;
            }
            Event::Usage(_) | Event::Error(_) => {}
            Event::End => assert!(stopped && open.is_none(), "End before Stop: {events:#?}"),
        }
    }
    if finished {
        assert!(
            matches!(events.last(), Some(Event::End | Event::Error(_))),
            "a finished stream without End: {events:#?}"
        );
    }
}

/// What the Kiro decoder made of a stream.
#[derive(Debug, PartialEq)]
struct KiroOutcome {
    events: Vec<Event<'static>>,
    truncations: Vec<Truncation>,
    end: Result<(), String>,
}

fn decode_kiro(thinking_tags: bool, pieces: &[&[u8]]) -> KiroOutcome {
    let truncations = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&truncations);
    let options = DecodeOptions {
        thinking_tags,
        max_input_tokens: 200_000,
        max_event_bytes: MAX_FRAME_BYTES,
    };
    let mut decoder = KiroStreamDecoder::new("fuzz", "fuzz-model", options).on_truncation(
        Box::new(move |truncation| {
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(truncation);
        }),
    );
    let mut events = Vec::new();
    let mut aggregator = Aggregator::default();
    let mut emit = |event: Event<'_>| {
        let event = event.into_owned();
        aggregator.push(event.clone());
        events.push(event);
    };
    let mut end = Ok(());
    for piece in pieces {
        if let Err(error) = decoder.feed(piece, &mut emit) {
            end = Err(error.0);
            break;
        }
    }
    if end.is_ok() {
        end = decoder.finish(&mut emit).map_err(|error| error.0);
    }
    let _ = aggregator.finish();
    assert_sequence(&events, end.is_ok());
    let truncations = truncations
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    KiroOutcome {
        events,
        truncations,
        end,
    }
}

/// The Kiro stream decoder: any bytes, cut anywhere, decode to a valid
/// event sequence, and to the same events, truncation reports and outcome
/// whatever the cuts.
///
/// The first byte's low bit asks for the CRCs to be repaired first (so the
/// fuzzer reaches the events) and its next bit turns the thinking tags on;
/// the next two choose the cuts.
///
/// # Panics
///
/// When either does not hold: that is the finding.
pub fn kiro_stream(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (pieces, body) = chunks(rest);
    let repaired;
    let (pieces, body) = if flags & 1 == 1 {
        repaired = with_crcs_repaired(&pieces, body);
        (recut(&pieces, &repaired), &repaired[..])
    } else {
        (pieces, body)
    };
    let thinking_tags = flags & 2 == 2;
    let cut = decode_kiro(thinking_tags, &pieces);
    let whole = decode_kiro(thinking_tags, &[body]);
    assert_eq!(cut, whole);
}

/// A config file: parsed and validated without panicking, whatever it
/// holds. Variables with an even-length name are set (so secrets read from
/// the environment are reached too), the others are not. An error always
/// says something; a configuration that passes keeps the promises
/// validation makes.
///
/// # Panics
///
/// When any of that does not hold: that is the finding.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| {
        name.len()
            .is_multiple_of(2)
            .then(|| format!("fuzz-value-{name}"))
    };
    match subgate_config::parse(text, &env) {
        Err(error) => assert!(!error.to_string().trim().is_empty()),
        Ok(config) => {
            assert!(config.server.max_body_bytes > 0);
            let mut names = std::collections::HashSet::new();
            for provider in &config.providers {
                assert!(
                    names.insert(provider.name.as_str()),
                    "two providers are named `{}`",
                    provider.name
                );
            }
        }
    }
}
