use pretty_assertions::assert_eq;
use subgate_core::Usage;

use super::*;
use crate::error::ErrorKind;

#[test]
fn reads_usage_from_a_response() {
    let body = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":50,"completion_tokens":12,"total_tokens":62,
        "prompt_tokens_details":{"cached_tokens":20},"completion_tokens_details":{"reasoning_tokens":5}}}"#;
    assert_eq!(
        response_usage(body),
        Some(Usage {
            input_tokens: 50,
            output_tokens: 12,
            cache_read_tokens: 20,
            cache_write_tokens: 0,
            reasoning_tokens: 5
        })
    );
    assert_eq!(response_usage(br#"{"choices":[]}"#), None);
    assert_eq!(response_usage(b"garbage"), None);
}

#[test]
fn tap_meters_the_stream_and_drops_the_unasked_usage_chunk() {
    let role = r#"{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#;
    let text = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"the \"usage\": {x}"}}],"usage":null}"#;
    let usage = r#"{"id":"c","choices":[],"usage": {"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

    let mut tap = StreamTap::new(false);
    assert_eq!(tap.observe(role), TapVerdict::Forward);
    assert_eq!(tap.observe(text), TapVerdict::Forward);
    assert_eq!(tap.usage(), None);
    assert!(!tap.is_complete(), "a null finish_reason does not finish");
    assert_eq!(tap.observe(usage), TapVerdict::Drop);
    assert!(!tap.is_done());
    assert_eq!(tap.observe("[DONE]"), TapVerdict::Forward);
    assert!(tap.is_done());
    assert_eq!(tap.usage().map(|usage| usage.total_tokens()), Some(5));

    let mut asked = StreamTap::new(true);
    assert_eq!(asked.observe(usage), TapVerdict::Forward);
    assert_eq!(asked.usage().map(|usage| usage.input_tokens), Some(3));
}

#[test]
fn tap_keeps_usage_that_rides_on_a_content_chunk() {
    // Some servers put usage on the finish chunk instead of a separate one.
    let finish = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#;
    let mut tap = StreamTap::new(false);
    assert!(!tap.is_complete());
    assert_eq!(tap.observe(finish), TapVerdict::Forward);
    assert_eq!(tap.usage().map(|usage| usage.output_tokens), Some(1));
    assert!(tap.is_complete());
    assert!(!tap.is_done());
}

#[test]
fn tap_notices_error_events() {
    let mut tap = StreamTap::new(false);
    tap.observe(r#"{"error":{"message":"overloaded","type":"server_error"}}"#);
    assert_eq!(tap.error(), Some("overloaded"));
}

#[test]
fn error_event_is_a_data_line() {
    let report = ErrorReport {
        kind: ErrorKind::Timeout,
        status: 504,
        message: "upstream went quiet",
        code: None,
        param: None,
    };
    assert_eq!(
        String::from_utf8(stream_error_event(&report)).unwrap(),
        "data: {\"error\":{\"message\":\"upstream went quiet\",\"type\":\"timeout_error\",\"param\":null,\"code\":null}}\n\n"
    );
}

#[test]
fn model_lists_round_trip() {
    let body = model_list([("llama3", "local"), ("qwen", "local")]);
    assert_eq!(model_ids(&body).unwrap(), vec!["llama3", "qwen"]);
}

mod conversions {
    use pretty_assertions::assert_eq;
    use proptest::prelude::*;

    use super::super::*;
    use crate::canonical::{Block, Dropped, ReplyMeta, StopReason};
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
        let request =
            decode_request(fixture("openai_chat/request.json").as_bytes(), &mut dropped).unwrap();
        insta::assert_debug_snapshot!((request, dropped));
    }

    #[test]
    fn request_encodes_for_an_upstream() {
        let mut dropped = Vec::new();
        let request =
            decode_request(fixture("openai_chat/request.json").as_bytes(), &mut dropped).unwrap();
        let upstream = ChatUpstream {
            max_completion_tokens: true,
        };
        let body = encode_request(
            &request,
            Target {
                provider: "openai",
                model: "gpt-4.1-mini",
            },
            upstream,
            &mut dropped,
        );
        insta::assert_snapshot!(pretty(&body));
    }

    #[test]
    fn anthropic_request_encodes_as_chat() {
        let mut dropped = Vec::new();
        let request = crate::anthropic::decode_request(
            fixture("anthropic/request.json").as_bytes(),
            &mut dropped,
        )
        .unwrap();
        dropped.clear();
        let body = encode_request(
            &request,
            Target {
                provider: "local",
                model: "llama3",
            },
            ChatUpstream::default(),
            &mut dropped,
        );
        insta::assert_snapshot!(pretty(&body));
        assert_eq!(
            dropped,
            [Dropped(
                "redacted thinking: Chat Completions cannot carry it".to_owned()
            )]
        );
    }

    #[test]
    fn n_above_one_cannot_be_translated() {
        let body = br#"{"model":"m","messages":[],"n":2}"#;
        assert_eq!(
            decode_request(body, &mut Vec::new())
                .unwrap_err()
                .param
                .as_deref(),
            Some("n")
        );
    }

    #[test]
    fn response_decodes_and_encodes() {
        let mut dropped = Vec::new();
        let response = decode_response(
            fixture("openai_chat/response.json").as_bytes(),
            "openai",
            &mut dropped,
        )
        .unwrap();
        assert_eq!(response.stop_reason, StopReason::ToolUse);
        assert_eq!(response.content.len(), 4);
        let usage = response.usage.unwrap();
        assert_eq!(
            (
                usage.input_tokens,
                usage.cache_read_tokens,
                usage.reasoning_tokens
            ),
            (2150, 2000, 5)
        );
        insta::assert_snapshot!(pretty(&encode_response(&response, &meta(), &mut dropped)));
    }

    #[test]
    fn stream_decodes_to_events() {
        let events = decode(
            &mut ChatStreamDecoder::new("openai", 1 << 20),
            fixture("openai_chat/stream.sse").as_bytes(),
        );
        insta::assert_debug_snapshot!(events);
        let response = aggregate(&events);
        assert_eq!(response.stop_reason, StopReason::ToolUse);
        let tools: Vec<(&str, &str)> = response
            .content
            .iter()
            .filter_map(|block| match block {
                Block::ToolUse(tool) => Some((tool.name.as_str(), tool.input.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            tools,
            [("get_weather", r#"{"city": "Paris"}"#), ("get_time", "{}")]
        );
    }

    #[test]
    fn stream_encodes_in_openai_order() {
        let events = decode(
            &mut crate::anthropic::AnthropicStreamDecoder::new("claude", 1 << 20),
            fixture("anthropic/stream.sse").as_bytes(),
        );
        let bytes = encode(&mut ChatStreamEncoder::new(meta(), true), &events);
        insta::assert_snapshot!(String::from_utf8(bytes.clone()).unwrap());
        let again = aggregate(&decode(&mut ChatStreamDecoder::new("x", 1 << 20), &bytes));
        let original = aggregate(&events);
        assert_eq!(again.stop_reason, original.stop_reason);
        assert_eq!(again.usage, original.usage);
        assert_eq!(again.content.len(), original.content.len());
    }

    #[test]
    fn without_include_usage_there_is_no_usage_chunk() {
        let events = decode(
            &mut ChatStreamDecoder::new("openai", 1 << 20),
            fixture("openai_chat/stream.sse").as_bytes(),
        );
        let text =
            String::from_utf8(encode(&mut ChatStreamEncoder::new(meta(), false), &events)).unwrap();
        assert!(!text.contains("\"usage\""));
        assert!(text.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn a_stream_that_stops_without_done_but_with_a_finish_reason_is_complete() {
        let text = fixture("openai_chat/stream.sse");
        let cut = text.find("data: [DONE]").unwrap();
        let (events, finished) = decode_in_pieces(
            &mut ChatStreamDecoder::new("o", 1 << 20),
            &text.as_bytes()[..cut],
            &[],
        );
        assert!(finished.is_ok());
        assert_eq!(aggregate(&events).stop_reason, StopReason::ToolUse);
        let cut = text.find("\"finish_reason\":\"tool_calls\"").unwrap();
        let cut = text[..cut].rfind("data:").unwrap();
        let (_, finished) = decode_in_pieces(
            &mut ChatStreamDecoder::new("o", 1 << 20),
            &text.as_bytes()[..cut],
            &[],
        );
        assert!(finished.is_err());
    }

    proptest! {
        #[test]
        fn chunk_boundaries_do_not_change_the_events(cuts in cuts()) {
            let text = fixture("openai_chat/stream.sse");
            let whole = decode(&mut ChatStreamDecoder::new("o", 1 << 20), text.as_bytes());
            let (pieces, finished) = decode_in_pieces(&mut ChatStreamDecoder::new("o", 1 << 20), text.as_bytes(), &cuts);
            prop_assert!(finished.is_ok());
            prop_assert_eq!(whole, pieces);
        }
    }
}
