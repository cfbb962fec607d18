use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::canonical::{Block, ReplyMeta, StopReason, ToolChoice};
use crate::codec::Target;
use crate::testing::{aggregate, cuts, decode, decode_in_pieces, encode, fixture, pretty};

fn meta() -> ReplyMeta {
    ReplyMeta {
        id: "0192abcd".to_owned(),
        created: 1_735_689_600,
        model: "client-model".to_owned(),
    }
}

#[test]
fn request_decodes_to_canonical() {
    let mut dropped = Vec::new();
    let request = decode_request(
        fixture("gemini/request.json").as_bytes(),
        "gemini-2.5-pro",
        true,
        &mut dropped,
    )
    .unwrap();
    assert_eq!(
        request.tool_choice,
        Some(ToolChoice::Tool("get_weather".to_owned()))
    );
    insta::assert_debug_snapshot!((request, dropped));
}

#[test]
fn request_encodes_for_the_upstream_that_signed_its_thoughts() {
    let mut dropped = Vec::new();
    let request = decode_request(
        fixture("gemini/request.json").as_bytes(),
        "gemini-2.5-pro",
        false,
        &mut dropped,
    )
    .unwrap();
    dropped.clear();
    let body = encode_request(
        &request,
        Target {
            provider: "gemini",
            model: "gemini-2.5-pro",
        },
        &mut dropped,
    );
    insta::assert_snapshot!(pretty(&body));
}

#[test]
fn anthropic_request_encodes_as_gemini() {
    let mut dropped = Vec::new();
    let request = crate::anthropic::decode_request(
        fixture("anthropic/request.json").as_bytes(),
        &mut dropped,
    )
    .unwrap();
    let body = encode_request(
        &request,
        Target {
            provider: "gemini",
            model: "gemini-2.5-pro",
        },
        &mut dropped,
    );
    insta::assert_snapshot!(pretty(&body));
}

#[test]
fn response_decodes_and_encodes() {
    let mut dropped = Vec::new();
    let response = decode_response(
        fixture("gemini/response.json").as_bytes(),
        "gemini",
        &mut dropped,
    )
    .unwrap();
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    let usage = response.usage.unwrap();
    assert_eq!(
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.reasoning_tokens,
            usage.cache_read_tokens
        ),
        (2150, 12, 5, 2000)
    );
    match (&response.content[0], &response.content[2]) {
        (Block::Thinking(thought), Block::Thinking(lone)) => {
            assert_eq!(thought.text, "The user wants the weather.");
            assert_eq!(lone.text, "");
            assert_eq!(
                lone.signature.as_ref().unwrap().for_upstream("gemini"),
                Some("CiQBcall")
            );
        }
        other => panic!("unexpected blocks {other:?}"),
    }
    insta::assert_snapshot!(pretty(&encode_response(&response, &meta(), &mut dropped)));
}

#[test]
fn stream_decodes_to_events() {
    let events = decode(
        &mut GeminiStreamDecoder::new("gemini", 1 << 20),
        fixture("gemini/stream.sse").as_bytes(),
    );
    insta::assert_debug_snapshot!(events);
    let response = aggregate(&events);
    assert_eq!(response.stop_reason, StopReason::ToolUse);
}

#[test]
fn stream_encodes_as_sse_and_as_an_array() {
    let events = decode(
        &mut crate::anthropic::AnthropicStreamDecoder::new("claude", 1 << 20),
        fixture("anthropic/stream.sse").as_bytes(),
    );
    let sse = encode(&mut GeminiStreamEncoder::new(meta(), Framing::Sse), &events);
    insta::assert_snapshot!(String::from_utf8(sse.clone()).unwrap());
    let again = aggregate(&decode(&mut GeminiStreamDecoder::new("x", 1 << 20), &sse));
    let original = aggregate(&events);
    assert_eq!(again.stop_reason, original.stop_reason);
    assert_eq!(again.usage, original.usage);

    let array = encode(
        &mut GeminiStreamEncoder::new(meta(), Framing::Array),
        &events,
    );
    let parsed: Value = serde_json::from_slice(&array).unwrap();
    assert_eq!(
        parsed.as_array().unwrap().len(),
        crate::testing::sse_json(&sse).len()
    );
}

#[test]
fn a_stream_without_a_finish_reason_is_incomplete() {
    let text = fixture("gemini/stream.sse");
    let cut = text.find("\"finishReason\"").unwrap();
    let cut = text[..cut].rfind("data:").unwrap();
    let (_, finished) = decode_in_pieces(
        &mut GeminiStreamDecoder::new("g", 1 << 20),
        &text.as_bytes()[..cut],
        &[],
    );
    assert!(finished.is_err());
}

proptest! {
    #[test]
    fn chunk_boundaries_do_not_change_the_events(cuts in cuts()) {
        let text = fixture("gemini/stream.sse");
        let whole = decode(&mut GeminiStreamDecoder::new("g", 1 << 20), text.as_bytes());
        let (pieces, finished) = decode_in_pieces(&mut GeminiStreamDecoder::new("g", 1 << 20), text.as_bytes(), &cuts);
        prop_assert!(finished.is_ok());
        prop_assert_eq!(whole, pieces);
    }
}

#[test]
fn an_array_stream_that_fails_ends_with_an_error_element() {
    let mut framing = ArrayFraming::default();
    let mut out = Vec::new();
    framing.element(r#"{"candidates":[]}"#, &mut out);
    framing.fail(
        crate::error::ErrorKind::Upstream,
        "the upstream went away",
        &mut out,
    );
    let array: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        array,
        serde_json::json!([
            {"candidates": []},
            {"error": {"code": 500, "message": "the upstream went away", "status": "INTERNAL"}}
        ])
    );
}
