use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::*;
use crate::canonical::{Block, Dropped, Event, ReplyMeta, Request, StopReason};
use crate::codec::Target;
use crate::testing::{aggregate, cuts, decode, decode_in_pieces, encode, fixture, pretty};

fn meta() -> ReplyMeta {
    ReplyMeta {
        id: "0192abcd".to_owned(),
        created: 1_735_689_600,
        model: "client-model".to_owned(),
    }
}

fn request() -> (Request, Vec<Dropped>) {
    let mut dropped = Vec::new();
    let request =
        decode_request(fixture("anthropic/request.json").as_bytes(), &mut dropped).unwrap();
    (request, dropped)
}

#[test]
fn request_decodes_to_canonical() {
    let (request, dropped) = request();
    insta::assert_debug_snapshot!((request, dropped));
}

#[test]
fn request_encodes_for_the_upstream_that_signed_its_thinking() {
    let (request, _) = request();
    let mut dropped = Vec::new();
    let body = encode_request(
        &request,
        Target {
            provider: "claude",
            model: "claude-sonnet-4-5-20250929",
        },
        &mut dropped,
    );
    insta::assert_snapshot!(pretty(&body));
    assert_eq!(
        dropped,
        [
            Dropped("a thinking block this upstream did not sign".to_owned()),
            Dropped("redacted thinking from another upstream".to_owned()),
            Dropped(
                "temperature, top_p and top_k: Anthropic ignores them while thinking".to_owned()
            ),
        ]
    );
}

#[test]
fn encoding_respects_anthropic_rules() {
    let (mut request, _) = request();
    // A forced tool call and thinking cannot go together.
    request.tool_choice = Some(crate::canonical::ToolChoice::Tool("get_weather".to_owned()));
    request.max_tokens = None;
    request.temperature = Some(1.7);
    let mut dropped = Vec::new();
    let body: serde_json::Value = serde_json::from_slice(&encode_request(
        &request,
        Target {
            provider: "p",
            model: "m",
        },
        &mut dropped,
    ))
    .unwrap();
    assert_eq!(body["thinking"], serde_json::Value::Null);
    assert_eq!(
        body["tool_choice"],
        serde_json::json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true})
    );
    assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
    assert_eq!(body["temperature"], 1.0);

    // A budget over max_tokens is kept below it.
    let (mut request, _) = request_with_tools_only();
    request.max_tokens = Some(4_000);
    request.reasoning = Some(crate::canonical::Reasoning::Budget(10_000));
    let body: serde_json::Value = serde_json::from_slice(&encode_request(
        &request,
        Target {
            provider: "claude",
            model: "m",
        },
        &mut dropped,
    ))
    .unwrap();
    assert_eq!(
        body["thinking"],
        serde_json::json!({"type": "enabled", "budget_tokens": 3_999})
    );
    assert_eq!(body["tool_choice"], serde_json::Value::Null);
}

#[test]
fn thinking_is_off_when_the_answered_tool_call_lost_its_signed_thinking() {
    let (request, _) = request();
    let mut dropped = Vec::new();
    // The fixture's assistant turn is signed by `claude`: another provider
    // would get no thinking block, so it cannot think.
    let body: serde_json::Value = serde_json::from_slice(&encode_request(
        &request,
        Target {
            provider: "elsewhere",
            model: "m",
        },
        &mut dropped,
    ))
    .unwrap();
    assert_eq!(body["thinking"], serde_json::Value::Null);
    assert!(
        dropped
            .iter()
            .any(|Dropped(what)| what.starts_with("thinking: the tool call"))
    );
}

fn request_with_tools_only() -> (Request, Vec<Dropped>) {
    let (mut request, dropped) = request();
    request.tool_choice = None;
    request.parallel_tool_calls = None;
    (request, dropped)
}

#[test]
fn tool_ids_from_other_upstreams_are_made_acceptable() {
    assert_eq!(tool_id("toolu_01-x"), "toolu_01-x");
    assert_eq!(
        tool_id("functions.get_weather:0"),
        "functions_get_weather_0"
    );
}

#[test]
fn response_decodes_and_encodes() {
    let mut dropped = Vec::new();
    let response = decode_response(
        fixture("anthropic/response.json").as_bytes(),
        "claude",
        &mut dropped,
    )
    .unwrap();
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    let usage = response.usage.unwrap();
    assert_eq!(
        (
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens
        ),
        (2150, 2000, 100)
    );
    assert_eq!(dropped.len(), 1, "the server tool call stays behind");
    insta::assert_snapshot!(pretty(&encode_response(&response, &meta(), &mut dropped)));
}

#[test]
fn stream_decodes_to_events() {
    let events = decode(
        &mut AnthropicStreamDecoder::new("claude", 1 << 20),
        fixture("anthropic/stream.sse").as_bytes(),
    );
    insta::assert_debug_snapshot!(events);
    let response = aggregate(&events);
    assert_eq!(
        response.content.len(),
        3,
        "thinking, text, tool use; the server tool is skipped"
    );
    match &response.content[2] {
        Block::ToolUse(tool) => assert_eq!(tool.input, r#"{"city": "Paris"}"#),
        other => panic!("expected a tool use, got {other:?}"),
    }
}

#[test]
fn stream_encodes_in_anthropic_order() {
    let events = decode(
        &mut AnthropicStreamDecoder::new("claude", 1 << 20),
        fixture("anthropic/stream.sse").as_bytes(),
    );
    let bytes = encode(&mut AnthropicStreamEncoder::new(meta()), &events);
    insta::assert_snapshot!(String::from_utf8(bytes.clone()).unwrap());
    // What was written reads back as the same answer.
    let again = decode(&mut AnthropicStreamDecoder::new("claude", 1 << 20), &bytes);
    let (first, second) = (aggregate(&events), aggregate(&again));
    assert_eq!(first.content.len(), second.content.len());
    assert_eq!(first.stop_reason, second.stop_reason);
    assert_eq!(first.usage, second.usage);
}

#[test]
fn a_stream_without_message_stop_is_incomplete() {
    let text = fixture("anthropic/stream.sse");
    let cut = text.find("event: message_stop").unwrap();
    let (_, finished) = decode_in_pieces(
        &mut AnthropicStreamDecoder::new("claude", 1 << 20),
        &text.as_bytes()[..cut],
        &[],
    );
    assert!(finished.is_err());
}

#[test]
fn error_events_end_the_stream() {
    let body = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let events = decode(
        &mut AnthropicStreamDecoder::new("claude", 1 << 20),
        body.as_bytes(),
    );
    assert_eq!(
        events,
        [Event::Error(crate::canonical::StreamError {
            kind: crate::error::ErrorKind::Overloaded,
            message: "Overloaded".to_owned()
        })]
    );
    let out = String::from_utf8(encode(&mut AnthropicStreamEncoder::new(meta()), &events)).unwrap();
    assert_eq!(
        out,
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
    );
}

proptest! {
    #[test]
    fn chunk_boundaries_do_not_change_the_events(cuts in cuts()) {
        let text = fixture("anthropic/stream.sse");
        let whole = decode(&mut AnthropicStreamDecoder::new("claude", 1 << 20), text.as_bytes());
        let (pieces, finished) = decode_in_pieces(&mut AnthropicStreamDecoder::new("claude", 1 << 20), text.as_bytes(), &cuts);
        prop_assert!(finished.is_ok());
        // Deltas may be split differently only if the upstream split them; the
        // SSE layer hands over whole events, so the lists are equal.
        prop_assert_eq!(whole, pieces);
    }
}
