use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::*;
use crate::canonical::{Block, ReplyMeta, StopReason};
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
        fixture("openai_responses/request.json").as_bytes(),
        &mut dropped,
    )
    .unwrap();
    insta::assert_debug_snapshot!((request, dropped));
}

#[test]
fn request_encodes_for_the_upstream_that_made_its_reasoning() {
    let mut dropped = Vec::new();
    let request = decode_request(
        fixture("openai_responses/request.json").as_bytes(),
        &mut dropped,
    )
    .unwrap();
    dropped.clear();
    let body = encode_request(
        &request,
        Target {
            provider: "openai",
            model: "gpt-5.2",
        },
        &mut dropped,
    );
    insta::assert_snapshot!(pretty(&body));
    assert!(dropped.is_empty(), "{dropped:?}");
}

#[test]
fn previous_response_id_cannot_be_translated() {
    let error = decode_request(
        br#"{"model":"m","input":"hi","previous_response_id":"resp_1"}"#,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(error.param.as_deref(), Some("previous_response_id"));
}

#[test]
fn anthropic_request_encodes_as_responses() {
    let mut dropped = Vec::new();
    let request = crate::anthropic::decode_request(
        fixture("anthropic/request.json").as_bytes(),
        &mut dropped,
    )
    .unwrap();
    let body = encode_request(
        &request,
        Target {
            provider: "claude",
            model: "gpt-5.2",
        },
        &mut dropped,
    );
    insta::assert_snapshot!(pretty(&body));
}

#[test]
fn response_decodes_and_encodes() {
    let mut dropped = Vec::new();
    let response = decode_response(
        fixture("openai_responses/response.json").as_bytes(),
        "openai",
        &mut dropped,
    )
    .unwrap();
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(dropped.len(), 1, "the web search call stays behind");
    match &response.content[0] {
        Block::Thinking(thinking) => {
            let signature = thinking.signature.as_ref().unwrap();
            assert_eq!(signature.value, "rs_68af1#gAAAAABoq");
            assert_eq!(signature.for_upstream("openai"), Some("rs_68af1#gAAAAABoq"));
        }
        other => panic!("expected reasoning, got {other:?}"),
    }
    insta::assert_snapshot!(pretty(&encode_response(&response, &meta(), &mut dropped)));
}

#[test]
fn stream_decodes_to_events() {
    let events = decode(
        &mut ResponsesStreamDecoder::new("openai", 1 << 20),
        fixture("openai_responses/stream.sse").as_bytes(),
    );
    insta::assert_debug_snapshot!(events);
    let response = aggregate(&events);
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(response.usage.unwrap().reasoning_tokens, 20);
}

#[test]
fn stream_encodes_with_sequence_numbers_and_one_terminal_event() {
    let events = decode(
        &mut crate::anthropic::AnthropicStreamDecoder::new("claude", 1 << 20),
        fixture("anthropic/stream.sse").as_bytes(),
    );
    let bytes = encode(&mut ResponsesStreamEncoder::new(meta()), &events);
    let text = String::from_utf8(bytes.clone()).unwrap();
    insta::assert_snapshot!(text);
    let numbers: Vec<u64> = crate::testing::sse_json(&bytes)
        .iter()
        .map(|event| event["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..numbers.len() as u64).collect::<Vec<_>>());
    assert_eq!(text.matches("event: response.completed").count(), 1);
    // It reads back as the same answer.
    let again = aggregate(&decode(
        &mut ResponsesStreamDecoder::new("x", 1 << 20),
        &bytes,
    ));
    let original = aggregate(&events);
    assert_eq!(again.content.len(), original.content.len());
    assert_eq!(again.stop_reason, original.stop_reason);
}

#[test]
fn a_stream_without_its_terminal_event_is_incomplete() {
    let text = fixture("openai_responses/stream.sse");
    let cut = text.find("event: response.completed").unwrap();
    let (_, finished) = decode_in_pieces(
        &mut ResponsesStreamDecoder::new("o", 1 << 20),
        &text.as_bytes()[..cut],
        &[],
    );
    assert!(finished.is_err());
}

proptest! {
    #[test]
    fn chunk_boundaries_do_not_change_the_events(cuts in cuts()) {
        let text = fixture("openai_responses/stream.sse");
        let whole = decode(&mut ResponsesStreamDecoder::new("o", 1 << 20), text.as_bytes());
        let (pieces, finished) = decode_in_pieces(&mut ResponsesStreamDecoder::new("o", 1 << 20), text.as_bytes(), &cuts);
        prop_assert!(finished.is_ok());
        prop_assert_eq!(whole, pieces);
    }
}
