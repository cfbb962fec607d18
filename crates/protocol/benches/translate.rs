//! What translating a stream costs per upstream chunk, for every pair of
//! dialects, next to what a pass-through costs for the same chunks.
//!
//! `cargo bench -p subgate-protocol --bench translate`
//!
//! Each upstream stream is written by that dialect's own encoder from one
//! canonical answer (a 200-delta text block, then a tool call whose
//! arguments arrive in 20 fragments) and cut into one network chunk per
//! event, the way upstreams flush. Translating a chunk is what the engine
//! does with it: the upstream dialect's decoder, then the client dialect's
//! encoder into a reused buffer. Pass-through is what the engine does when
//! dialects match: SSE framing plus the metering tap, bytes forwarded as
//! they are. Times are wall-clock per chunk on one thread; this is a
//! micro-benchmark of the codecs, not the gateway's overhead (that is
//! `bench/`).
#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]
#![expect(clippy::unwrap_used, reason = "a benchmark fails loudly")]

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};

use subgate_core::{Dialect, Usage};
use subgate_protocol::canonical::{BlockKind, Delta, Event, ReplyMeta, StopReason};
use subgate_protocol::dispatch::{self, ClientStream, DIALECTS};
use subgate_protocol::passthrough::Tap;
use subgate_protocol::sse::SseDecoder;

/// How long each pair is measured.
const MEASURE: Duration = Duration::from_millis(400);

fn meta() -> ReplyMeta {
    ReplyMeta {
        id: "req_0123456789".to_owned(),
        created: 1_763_700_000,
        model: "bench-model".to_owned(),
    }
}

/// The canonical answer every upstream stream carries.
fn answer() -> Vec<Event<'static>> {
    let mut events = vec![
        Event::Start {
            id: Some(Cow::Borrowed("up_0123456789")),
            model: Some(Cow::Borrowed("bench-model")),
        },
        Event::BlockStart {
            index: 0,
            kind: BlockKind::Text,
        },
    ];
    let words = [
        "Hello",
        " there",
        ", this",
        " is",
        " a",
        " streamed",
        " answer",
        " — ok",
    ];
    for n in 0..200 {
        events.push(Event::Delta {
            index: 0,
            delta: Delta::Text(Cow::Borrowed(words[n % words.len()])),
        });
    }
    events.push(Event::BlockStop { index: 0 });
    events.push(Event::BlockStart {
        index: 1,
        kind: BlockKind::ToolUse {
            id: Cow::Borrowed("call_0123456789"),
            name: Cow::Borrowed("get_weather"),
        },
    });
    events.push(Event::Delta {
        index: 1,
        delta: Delta::ToolInput(Cow::Borrowed("{\"city\": \"")),
    });
    for _ in 0..18 {
        events.push(Event::Delta {
            index: 1,
            delta: Delta::ToolInput(Cow::Borrowed("Paris")),
        });
    }
    events.push(Event::Delta {
        index: 1,
        delta: Delta::ToolInput(Cow::Borrowed("\"}")),
    });
    events.push(Event::BlockStop { index: 1 });
    events.push(Event::Stop {
        reason: StopReason::ToolUse,
        sequence: None,
    });
    events.push(Event::Usage(Usage {
        input_tokens: 1200,
        output_tokens: 260,
        cache_read_tokens: 1000,
        cache_write_tokens: 0,
        reasoning_tokens: 0,
    }));
    events.push(Event::End);
    events
}

/// The answer as `dialect`'s upstream streams it, one chunk per event.
fn upstream_chunks(dialect: Dialect) -> Vec<Vec<u8>> {
    let options = ClientStream {
        include_usage: true,
        sse: true,
    };
    let mut encoder = dispatch::stream_encoder(dialect, meta(), options);
    let mut body = Vec::new();
    for event in answer() {
        encoder.encode(&event, &mut body);
    }
    let mut framing = SseDecoder::new(usize::MAX);
    framing.push(&body);
    let mut chunks = Vec::new();
    while let Some(event) = framing.next_event().unwrap() {
        let end = event.raw_start + event.raw_len;
        chunks.push(framing.take(end).to_vec());
    }
    assert_eq!(framing.pending_len(), 0, "every event is complete");
    chunks
}

/// Decodes `chunks` in `upstream`'s dialect and writes them in `client`'s,
/// as the engine's translating stream does.
fn translate(upstream: Dialect, client: Dialect, chunks: &[Vec<u8>], out: &mut Vec<u8>) -> usize {
    let mut decoder = dispatch::stream_decoder(upstream, "bench", usize::MAX);
    let mut encoder = dispatch::stream_encoder(client, meta(), ClientStream::default());
    let mut written = 0;
    for chunk in chunks {
        out.clear();
        decoder
            .feed(chunk, &mut |event| encoder.encode(&event, out))
            .unwrap();
        written += black_box(&*out).len();
    }
    out.clear();
    decoder
        .finish(&mut |event| encoder.encode(&event, out))
        .unwrap();
    written + out.len()
}

/// Frames and meters `chunks` as the engine's pass-through does.
fn pass_through(dialect: Dialect, chunks: &[Vec<u8>]) -> usize {
    let mut decoder = SseDecoder::new(usize::MAX);
    let mut tap = Tap::new(dialect, true);
    let mut forwarded = 0;
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(event) = decoder.next_event().unwrap() {
            black_box(tap.observe(event.event, event.data));
        }
        forwarded += black_box(decoder.take_decoded()).len();
    }
    assert!(tap.is_complete() && tap.usage().is_some());
    forwarded
}

/// Nanoseconds per chunk of `run` over `chunks` chunks, after a warm-up.
fn per_chunk(chunks: usize, mut run: impl FnMut() -> usize) -> f64 {
    for _ in 0..20 {
        black_box(run());
    }
    let start = Instant::now();
    let mut rounds = 0_u32;
    while start.elapsed() < MEASURE {
        black_box(run());
        rounds += 1;
    }
    let total = start.elapsed().as_secs_f64() * 1e9;
    total / f64::from(rounds) / f64::from(u32::try_from(chunks).unwrap())
}

fn main() {
    let names = DIALECTS.map(|dialect| match dialect {
        Dialect::OpenAiChat => "chat",
        Dialect::OpenAiResponses => "responses",
        Dialect::Anthropic => "anthropic",
        Dialect::Gemini => "gemini",
    });
    println!("ns per upstream chunk (one event per chunk); rows: upstream, columns: client");
    print!("{:<12}{:>10} |", "upstream", "pass");
    for name in names {
        print!("{name:>11}");
    }
    println!();
    let mut out = Vec::with_capacity(4096);
    for (upstream, upstream_name) in DIALECTS.into_iter().zip(names) {
        let chunks = upstream_chunks(upstream);
        let pass = per_chunk(chunks.len(), || pass_through(upstream, &chunks));
        print!("{upstream_name:<12}{pass:>10.0} |");
        for client in DIALECTS {
            let cost = per_chunk(chunks.len(), || {
                translate(upstream, client, &chunks, &mut out)
            });
            print!("{cost:>11.0}");
        }
        println!("   ({} chunks)", chunks.len());
    }
}
