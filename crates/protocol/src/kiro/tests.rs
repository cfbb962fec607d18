use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::request::{PLACEHOLDER, conversation_id};
use super::stream::looks_cut;
use super::*;
use crate::aws_eventstream::{HeaderValue, Message as Frame};
use crate::canonical::{
    Block, Delta, Dropped, Effort, Event, Image, Message, Reasoning, Request, Role, Signature,
    Source, StopReason, Tool, ToolResult, ToolUse,
};
use crate::codec::StreamDecoder;
use crate::error::ErrorKind;
use crate::testing::{aggregate, cuts, decode, decode_in_pieces, fixture};

const MODEL: &str = "claude-sonnet-4.5";
const ARN: &str = "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK";

fn options() -> EncodeOptions<'static> {
    EncodeOptions {
        origin: "AI_EDITOR",
        profile_arn: None,
        thinking_tags: true,
        max_description_chars: 10_000,
        truncations: &[],
    }
}

/// A request read from an Anthropic Messages fixture.
fn anthropic(path: &str) -> Request {
    crate::anthropic::decode_request(fixture(path).as_bytes(), &mut Vec::new()).unwrap()
}

fn encode_with(request: &Request, options: &EncodeOptions<'_>) -> (Value, Vec<Dropped>, Encoded) {
    let mut dropped = Vec::new();
    let encoded = encode_request(request, MODEL, options, &mut dropped).unwrap();
    let body = serde_json::from_slice(&encoded.body).unwrap();
    (body, dropped, encoded)
}

/// The body as pretty JSON, then what was dropped: one snapshot.
fn report(body: &Value, dropped: &[Dropped]) -> String {
    let mut out = serde_json::to_string_pretty(body).unwrap();
    out.push_str("\n\ndropped:\n");
    for Dropped(what) in dropped {
        writeln!(out, "- {what}").unwrap();
    }
    out
}

fn state(body: &Value) -> &Value {
    &body["conversationState"]
}

fn current(body: &Value) -> &Value {
    &body["conversationState"]["currentMessage"]["userInputMessage"]
}

fn history(body: &Value) -> Vec<Value> {
    body["conversationState"]["history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Checks the rules Kiro refuses a body for breaking.
fn assert_well_formed(body: &Value) {
    let history = history(body);
    for (at, entry) in history.iter().enumerate() {
        let key = if at % 2 == 0 {
            "userInputMessage"
        } else {
            "assistantResponseMessage"
        };
        let message = entry
            .get(key)
            .unwrap_or_else(|| panic!("history[{at}] is not a {key}: {entry}"));
        let content = message["content"].as_str().unwrap();
        assert!(!content.is_empty(), "history[{at}] is empty");
    }
    if let Some(last) = history.last() {
        assert!(last.get("assistantResponseMessage").is_some());
    }
    assert!(!current(body)["content"].as_str().unwrap().is_empty());
    let text = body.to_string();
    assert!(!text.contains("additionalProperties\":false"));
    assert!(!text.contains("\"required\":[]"));
}

#[test]
fn request_encodes_for_kiro() {
    let request = anthropic("kiro/request.json");
    let options = EncodeOptions {
        profile_arn: Some(ARN),
        ..options()
    };
    let (body, dropped, encoded) = encode_with(&request, &options);
    assert_well_formed(&body);
    assert_eq!(encoded.used, vec![]);
    assert_eq!(body["profileArn"], ARN);
    let content = current(&body)["content"].as_str().unwrap();
    assert!(content.starts_with(
        "<thinking_mode>enabled</thinking_mode>\n<max_thinking_length>10000</max_thinking_length>\n<thinking_instruction>"
    ));
    assert!(content.ends_with("\n\nAnd tomorrow? Here is another picture."));
    let first = history(&body)[0]["userInputMessage"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        first.starts_with("You are a careful assistant.\n\nAnswer briefly.\n\n# Extended thinking")
    );
    insta::assert_snapshot!(report(&body, &dropped));
}

#[test]
fn history_alternates_and_nothing_is_empty() {
    let request = anthropic("kiro/request_alternation.json");
    let (body, dropped, _) = encode_with(&request, &options());
    assert_well_formed(&body);
    let history = history(&body);
    // The conversation opened with the assistant: a user message comes first,
    // carrying the system text.
    assert_eq!(
        history[0]["userInputMessage"]["content"], "Be helpful.",
        "{history:#?}"
    );
    // The trailing assistant message is history; the current message is a
    // placeholder.
    assert_eq!(
        history.last().unwrap()["assistantResponseMessage"]["content"],
        "The answer the client wants continued:"
    );
    assert_eq!(current(&body)["content"], PLACEHOLDER);
    insta::assert_snapshot!(report(&body, &dropped));
}

#[test]
fn tool_traffic_without_tools_goes_as_text() {
    let request = anthropic("kiro/request_no_tools.json");
    let (body, dropped, _) = encode_with(&request, &options());
    assert_well_formed(&body);
    let text = body.to_string();
    assert!(!text.contains("toolUses"));
    assert!(!text.contains("toolResults"));
    assert!(!text.contains("userInputMessageContext"));
    // Thinking is asked for, but not when tool results went as text.
    assert!(!text.contains("<thinking_mode>"));
    assert!(
        dropped
            .iter()
            .any(|Dropped(what)| what.starts_with("thinking: not asked for"))
    );
    insta::assert_snapshot!(report(&body, &dropped));
}

#[test]
fn remembered_truncations_become_notices_once() {
    let request = anthropic("kiro/request_truncation.json");
    let cut_text = Truncation::Text {
        fingerprint: fingerprint("  Then here it is instead: once upon a time,\n"),
    };
    let cut_tool = Truncation::ToolInput {
        tool_use_id: "tooluse_cut".to_owned(),
    };
    let unrelated = Truncation::ToolInput {
        tool_use_id: "tooluse_other".to_owned(),
    };
    let truncations = [unrelated, cut_text.clone(), cut_tool.clone()];
    let options = EncodeOptions {
        truncations: &truncations,
        ..options()
    };
    let (body, dropped, encoded) = encode_with(&request, &options);
    assert_well_formed(&body);
    assert_eq!(encoded.used, vec![cut_tool, cut_text]);
    let history = history(&body);
    let result = &history[2]["userInputMessage"]["userInputMessageContext"]["toolResults"][0];
    assert_eq!(result["status"], "error");
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("[API Limitation]")
    );
    assert!(
        current(&body)["content"]
            .as_str()
            .unwrap()
            .starts_with("[System Notice]")
    );
    insta::assert_snapshot!(report(&body, &dropped));

    let (_, _, without) = encode_with(&request, &self::options());
    assert_eq!(without.used, vec![]);
}

fn tool(name: &str, description: Option<&str>) -> Tool {
    Tool {
        name: name.to_owned(),
        description: description.map(str::to_owned),
        parameters: json!({"type": "object", "properties": {}}),
        strict: None,
    }
}

fn user(text: &str) -> Message {
    Message {
        role: Role::User,
        content: vec![Block::text(text)],
    }
}

fn assistant(content: Vec<Block>) -> Message {
    Message {
        role: Role::Assistant,
        content,
    }
}

#[test]
fn long_descriptions_move_to_the_system_prompt() {
    let long = "Reads a file. ".repeat(4);
    let request = Request {
        messages: vec![user("Read a.txt")],
        tools: vec![
            tool("read_file", Some(&long)),
            tool("short", Some("Short.")),
            tool("blank", None),
        ],
        ..Request::default()
    };
    let options = EncodeOptions {
        max_description_chars: 20,
        ..options()
    };
    let (body, _, _) = encode_with(&request, &options);
    let content = current(&body)["content"].as_str().unwrap();
    assert!(content.starts_with("# Tool documentation\n\n"));
    assert!(content.contains(&format!("## Tool: read_file\n\n{long}")));
    assert!(content.ends_with("\n\nRead a.txt"));
    let tools = &current(&body)["userInputMessageContext"]["tools"];
    let descriptions: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["toolSpecification"]["description"].as_str().unwrap())
        .collect();
    assert_eq!(
        descriptions,
        vec![
            "[Full documentation in the system prompt under '## Tool: read_file']",
            "Short.",
            "Tool: blank",
        ]
    );

    let unlimited = EncodeOptions {
        max_description_chars: 0,
        ..options
    };
    let (body, _, _) = encode_with(&request, &unlimited);
    assert_eq!(current(&body)["content"], "Read a.txt");
}

#[test]
fn tool_names_over_64_characters_are_refused() {
    let fits = "t".repeat(MAX_TOOL_NAME_CHARS);
    let long = format!("{fits}x");
    let mut request = Request {
        messages: vec![user("hi")],
        tools: vec![tool("ok", None), tool(&fits, None)],
        ..Request::default()
    };
    encode_request(&request, MODEL, &options(), &mut Vec::new()).unwrap();
    request.tools.push(tool(&long, None));
    let error = encode_request(&request, MODEL, &options(), &mut Vec::new()).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("tools[2].name"));
    assert!(error.message.contains(&long), "{}", error.message);
    assert!(error.message.contains("65 characters"), "{}", error.message);
    assert!(error.message.contains("at most 64"), "{}", error.message);
}

fn image(source: Source) -> Block {
    Block::Image(Image {
        source,
        detail: None,
    })
}

#[test]
fn images_must_be_inline_and_of_a_known_format() {
    let with = |source: Source| Request {
        messages: vec![Message {
            role: Role::User,
            content: vec![Block::text("Look"), image(source)],
        }],
        ..Request::default()
    };
    let url = with(Source::Url {
        url: "https://example.com/a.png".to_owned(),
        media_type: None,
    });
    let error = encode_request(&url, MODEL, &options(), &mut Vec::new()).unwrap_err();
    assert!(error.message.contains("inline"), "{}", error.message);
    let bmp = with(Source::Base64 {
        media_type: "image/bmp".to_owned(),
        data: "Qk0=".to_owned(),
    });
    let error = encode_request(&bmp, MODEL, &options(), &mut Vec::new()).unwrap_err();
    assert!(error.message.contains("image/bmp"), "{}", error.message);
    let prefixed = with(Source::Base64 {
        media_type: "image/webp".to_owned(),
        data: "data:image/webp;base64,UklGRg==".to_owned(),
    });
    let (body, _, _) = encode_with(&prefixed, &options());
    assert_eq!(
        current(&body)["images"],
        json!([{"format": "webp", "source": {"bytes": "UklGRg=="}}])
    );
}

/// The thinking prefix of the current message, if any.
fn thinking_length(request: &Request, options: &EncodeOptions<'_>) -> Option<String> {
    let (body, _, _) = encode_with(request, options);
    let content = current(&body)["content"].as_str().unwrap().to_owned();
    let has_section = state(&body).to_string().contains("# Extended thinking");
    let length = content
        .strip_prefix("<thinking_mode>enabled</thinking_mode>\n<max_thinking_length>")
        .and_then(|rest| rest.split_once('<'))
        .map(|(length, _)| length.to_owned());
    assert_eq!(length.is_some(), has_section, "{content}");
    length
}

#[test]
fn fake_reasoning_follows_the_request() {
    let with = |reasoning: Option<Reasoning>| Request {
        messages: vec![user("Why is the sky blue?")],
        reasoning,
        ..Request::default()
    };
    let on = options();
    let cases = [
        (None, None),
        (Some(Reasoning::Off), None),
        (Some(Reasoning::Adaptive), Some("4000")),
        (Some(Reasoning::Budget(500)), Some("500")),
        (Some(Reasoning::Effort(Effort::Low)), Some("4096")),
        (Some(Reasoning::Effort(Effort::XHigh)), Some("10000")),
    ];
    for (reasoning, expected) in cases {
        assert_eq!(
            thinking_length(&with(reasoning), &on).as_deref(),
            expected,
            "{reasoning:?}"
        );
    }
    let off = EncodeOptions {
        thinking_tags: false,
        ..on
    };
    let request = with(Some(Reasoning::Budget(2_000)));
    assert_eq!(thinking_length(&request, &off), None);
    let mut dropped = Vec::new();
    encode_request(&request, MODEL, &off, &mut dropped).unwrap();
    assert_eq!(
        dropped,
        vec![Dropped(
            "thinking: Kiro has no thinking control and thinking tags are off".to_owned()
        )]
    );
}

#[test]
fn thinking_tags_may_stand_alone_before_tool_results() {
    let request = Request {
        messages: vec![
            user("Read a.txt"),
            assistant(vec![Block::ToolUse(ToolUse {
                id: "tooluse_1".to_owned(),
                name: "read_file".to_owned(),
                input: r#"{"path":"a.txt"}"#.to_owned(),
            })]),
            Message {
                role: Role::User,
                content: vec![Block::ToolResult(ToolResult {
                    tool_use_id: "tooluse_1".to_owned(),
                    name: None,
                    content: vec![Block::text("hello")],
                    is_error: false,
                })],
            },
        ],
        tools: vec![tool("read_file", Some("Reads"))],
        reasoning: Some(Reasoning::Budget(1_000)),
        ..Request::default()
    };
    let (body, _, _) = encode_with(&request, &options());
    assert_well_formed(&body);
    let content = current(&body)["content"].as_str().unwrap();
    assert!(
        content.starts_with("<thinking_mode>enabled</thinking_mode>\n<max_thinking_length>1000<")
    );
    assert!(content.ends_with("</thinking_instruction>"), "{content}");
    assert_eq!(
        current(&body)["userInputMessageContext"]["toolResults"],
        json!([{"toolUseId": "tooluse_1", "status": "success", "content": [{"text": "hello"}]}])
    );
}

#[test]
fn tool_results_without_their_call_go_as_text() {
    let request = Request {
        messages: vec![
            user("Start"),
            assistant(vec![Block::text("No call here.")]),
            Message {
                role: Role::User,
                content: vec![Block::ToolResult(ToolResult {
                    tool_use_id: "tooluse_lost".to_owned(),
                    name: None,
                    content: vec![],
                    is_error: false,
                })],
            },
        ],
        tools: vec![tool("read_file", Some("Reads"))],
        reasoning: Some(Reasoning::Adaptive),
        ..Request::default()
    };
    let (body, _, _) = encode_with(&request, &options());
    assert_well_formed(&body);
    assert_eq!(
        current(&body)["content"],
        "[Tool result for tooluse_lost]\n(empty result)"
    );
    assert!(current(&body)["userInputMessageContext"]["toolResults"].is_null());
    assert!(current(&body)["userInputMessageContext"]["tools"].is_array());
}

#[test]
fn the_conversation_id_is_stable_per_conversation() {
    let call = Block::ToolUse(ToolUse {
        id: "tooluse_1".to_owned(),
        name: "read_file".to_owned(),
        input: "{}".to_owned(),
    });
    let conversation = vec![
        user("Hello"),
        assistant(vec![Block::text("Hi"), call]),
        user("Read it"),
        assistant(vec![Block::text("Done")]),
        user("Thanks"),
    ];
    let id = conversation_id(&conversation);
    assert_eq!(conversation_id(&conversation), id);
    let shape: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(shape, vec![8, 4, 4, 4, 12], "{id}");
    assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    assert_eq!(&id[14..15], "8", "version 8: {id}");

    // The messages between the first three and the last do not count, and
    // neither does thinking a client may drop.
    let mut middle = conversation.clone();
    middle[3] = assistant(vec![
        Block::Thinking(crate::canonical::Thinking {
            text: "hmm".to_owned(),
            signature: None,
        }),
        Block::text("Done differently"),
    ]);
    assert_eq!(conversation_id(&middle), id);
    let mut first = conversation.clone();
    first[0] = user("Hello there");
    assert_ne!(conversation_id(&first), id);
    let mut last = conversation;
    last[4] = user("Thank you");
    assert_ne!(conversation_id(&last), id);

    let request = Request {
        messages: vec![user("Hello")],
        ..Request::default()
    };
    let (one, _, _) = encode_with(&request, &options());
    let (two, _, _) = encode_with(&request, &options());
    assert_eq!(state(&one)["conversationId"], state(&two)["conversationId"]);
    assert_eq!(
        state(&one)["conversationId"],
        conversation_id(&request.messages)
    );
}

#[test]
fn settings_kiro_cannot_carry_are_noted() {
    let request = anthropic("kiro/request.json");
    let mut dropped = Vec::new();
    encode_request(&request, MODEL, &options(), &mut dropped).unwrap();
    let notes: Vec<&str> = dropped.iter().map(|Dropped(what)| what.as_str()).collect();
    for expected in [
        "max_tokens: Kiro has no such setting",
        "temperature: Kiro has no such setting",
        "stop sequences: Kiro has no such setting",
        "prompt-cache breakpoints: Kiro has no such setting",
        "thinking in the conversation: Kiro has no place for it",
    ] {
        assert!(notes.contains(&expected), "{expected}: {notes:#?}");
    }
    assert!(!notes.iter().any(|note| note.starts_with("tool_choice")));
}

#[test]
fn schemas_lose_what_kiro_refuses() {
    let schema = json!({
        "$schema": "x",
        "type": "object",
        "additionalProperties": false,
        "required": [],
        "properties": {
            "additionalProperties": {"type": "string", "required": []},
            "list": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "string"}}},
            "choice": {"enum": [{"additionalProperties": 1}]},
        },
        "$defs": {"thing": {"type": "object", "additionalProperties": false, "required": ["a"]}},
    });
    assert_eq!(
        clean_schema(&schema),
        json!({
            "type": "object",
            "properties": {
                "additionalProperties": {"type": "string"},
                "list": {"type": "array", "items": {"type": "object"}},
                "choice": {"enum": [{"additionalProperties": 1}]},
            },
            "$defs": {"thing": {"type": "object", "required": ["a"]}},
        })
    );
    assert_eq!(
        clean_schema(&Value::Null),
        json!({"type": "object", "properties": {}})
    );
}

proptest! {
    #[test]
    fn fingerprints_do_not_depend_on_the_cuts(text in "[ a\\n\\té\u{3000}]{0,24}", cuts in cuts()) {
        let mut positions: Vec<usize> = cuts
            .iter()
            .map(|cut| cut % (text.len() + 1))
            .filter(|cut| text.is_char_boundary(*cut))
            .collect();
        positions.sort_unstable();
        let mut fingerprinter = Fingerprinter::default();
        let mut from = 0;
        for position in positions.into_iter().chain([text.len()]) {
            fingerprinter.push(&text[from..position]);
            from = position;
        }
        prop_assert_eq!(fingerprinter.value(), fingerprint(&text));
        prop_assert_eq!(fingerprinter.is_empty(), text.trim().is_empty());
    }
}

// ---- the stream ----

fn frame(headers: &[(&str, &str)], payload: impl Into<Vec<u8>>) -> Vec<u8> {
    Frame {
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), HeaderValue::String((*value).to_owned())))
            .collect(),
        payload: Bytes::from(payload.into()),
    }
    .encode()
    .unwrap()
}

fn event(event_type: &str, payload: &Value) -> Vec<u8> {
    frame(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", "application/json"),
        ],
        payload.to_string(),
    )
}

fn exception(name: &str, payload: &str) -> Vec<u8> {
    frame(
        &[
            (":message-type", "exception"),
            (":exception-type", name),
            (":content-type", "application/json"),
        ],
        payload,
    )
}

fn error_frame(code: &str, payload: &str) -> Vec<u8> {
    frame(
        &[(":message-type", "error"), (":error-code", code)],
        payload,
    )
}

fn text(content: &str) -> Vec<u8> {
    event("assistantResponseEvent", &json!({"content": content}))
}

fn tool_event(id: &str, name: &str, input: &Value, stop: bool) -> Vec<u8> {
    event(
        "toolUseEvent",
        &json!({"toolUseId": id, "name": name, "input": input, "stop": stop}),
    )
}

fn metering() -> Vec<u8> {
    event("meteringEvent", &json!({"unit": "credit", "usage": 0.01}))
}

/// A stream fixture: frames described in JSON, written with the encoder.
fn stream_fixture(path: &str) -> Vec<u8> {
    let frames: Vec<Value> = serde_json::from_str(&fixture(path)).unwrap();
    let mut bytes = Vec::new();
    for description in frames {
        if let Some(event_type) = description["event"].as_str() {
            let mut payload = description["payload"].clone();
            if description["wrap"] == true {
                payload = json!({ event_type: payload });
            }
            bytes.extend(event(event_type, &payload));
        } else if let Some(name) = description["exception"].as_str() {
            bytes.extend(exception(name, description["payload"].as_str().unwrap()));
        } else {
            panic!("unknown frame {description}");
        }
    }
    bytes
}

fn decoder(thinking_tags: bool) -> KiroStreamDecoder {
    KiroStreamDecoder::new(
        "kiro",
        MODEL,
        DecodeOptions {
            thinking_tags,
            max_input_tokens: 200_000,
            max_event_bytes: 1 << 20,
        },
    )
}

/// A decoder that records the truncations it reports.
fn recording(thinking_tags: bool) -> (KiroStreamDecoder, Arc<Mutex<Vec<Truncation>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let decoder = decoder(thinking_tags).on_truncation(Box::new(move |truncation| {
        sink.lock().unwrap().push(truncation);
    }));
    (decoder, seen)
}

/// Checks the sequence `canonical::Event` documents.
fn assert_sequence(events: &[Event<'_>]) {
    let mut open: Option<usize> = None;
    let mut next = 0;
    let mut stopped = false;
    for (at, event) in events.iter().enumerate() {
        assert!(
            at == 0 || !matches!(events[at - 1], Event::End | Event::Error(_)),
            "{event:?} after the end"
        );
        match event {
            Event::Start { .. } => assert_eq!(at, 0, "Start is first"),
            Event::BlockStart { index, .. } => {
                assert!(open.is_none() && !stopped && *index == next, "{events:#?}");
                open = Some(*index);
                next += 1;
            }
            Event::Delta { index, .. } => assert_eq!(open, Some(*index), "{events:#?}"),
            Event::BlockStop { index } => assert_eq!(open.take(), Some(*index)),
            Event::Stop { .. } => {
                assert!(open.is_none() && !stopped);
                stopped = true;
            }
            Event::Usage(_) | Event::Error(_) => {}
            Event::End => assert!(stopped && open.is_none()),
        }
    }
}

fn decode_all(decoder: &mut KiroStreamDecoder, bytes: &[u8]) -> Vec<Event<'static>> {
    let events = decode(decoder, bytes);
    assert_sequence(&events);
    events
}

#[test]
fn stream_decodes_to_events() {
    let (mut decoder, truncations) = recording(true);
    let events = decode_all(&mut decoder, &stream_fixture("kiro/stream.json"));
    assert_eq!(*truncations.lock().unwrap(), vec![]);
    let response = aggregate(&events);
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(response.model.as_deref(), Some(MODEL));
    match &response.content[..] {
        [
            Block::Thinking(thinking),
            Block::Text(text),
            Block::ToolUse(read),
            Block::ToolUse(weather),
        ] => {
            assert_eq!(thinking.text, "The user wants a file. I should read it.");
            assert_eq!(text.text, "Let me read it. Reading now.");
            assert_eq!(
                (read.id.as_str(), read.name.as_str(), read.input.as_str()),
                ("tooluse_a", "read_file", r#"{"path": "a.txt"}"#)
            );
            assert_eq!(weather.id, "tooluse_b");
            assert_eq!(
                serde_json::from_str::<Value>(&weather.input).unwrap(),
                json!({"city": "Paris", "days": [1, 2]})
            );
        }
        other => panic!("unexpected blocks {other:#?}"),
    }
    let usage = response.usage.unwrap();
    assert_eq!(usage.input_tokens, 25_000);
    insta::assert_debug_snapshot!(events);
}

proptest! {
    #[test]
    fn chunk_boundaries_do_not_change_the_events(cuts in cuts()) {
        let bytes = stream_fixture("kiro/stream.json");
        let whole = decode(&mut decoder(true), &bytes);
        let (pieces, finished) = decode_in_pieces(&mut decoder(true), &bytes, &cuts);
        prop_assert!(finished.is_ok());
        prop_assert_eq!(whole, pieces);
    }
}

#[test]
fn payloads_may_be_wrapped_under_their_event_type() {
    let bare = [
        text("Hi"),
        tool_event("tooluse_1", "ls", &json!("{}"), true),
        event("contextUsageEvent", &json!({"contextUsagePercentage": 1.0})),
    ]
    .concat();
    let wrapped = [
        event(
            "assistantResponseEvent",
            &json!({"assistantResponseEvent": {"content": "Hi"}}),
        ),
        event(
            "toolUseEvent",
            &json!({"toolUseEvent": {"toolUseId": "tooluse_1", "name": "ls", "input": "{}", "stop": true}}),
        ),
        event(
            "contextUsageEvent",
            &json!({"contextUsageEvent": {"contextUsagePercentage": 1.0}}),
        ),
    ]
    .concat();
    let events = decode_all(&mut decoder(false), &bare);
    assert_eq!(decode_all(&mut decoder(false), &wrapped), events);
    assert_eq!(aggregate(&events).usage.unwrap().input_tokens, 2_000);
}

#[test]
fn a_repeated_chunk_is_dropped_and_tags_stay_text_without_the_option() {
    let bytes = [
        text("<thinking>a</thinking>"),
        text("b"),
        text("b"),
        text("c"),
        text("b"),
        metering(),
    ]
    .concat();
    let response = aggregate(&decode_all(&mut decoder(false), &bytes));
    assert_eq!(
        response.content,
        vec![Block::text("<thinking>a</thinking>bcb")]
    );
    assert_eq!(response.stop_reason, StopReason::EndTurn);
}

#[test]
fn native_reasoning_keeps_its_signature() {
    let bytes = [
        event(
            "reasoningContentEvent",
            &json!({"redactedContent": "c2VjcmV0"}),
        ),
        event("reasoningContentEvent", &json!({"text": "Step one. "})),
        event(
            "reasoningContentEvent",
            &json!({"text": "Step two.", "signature": "sig-1"}),
        ),
        text("Answer."),
        metering(),
    ]
    .concat();
    let events = decode_all(&mut decoder(true), &bytes);
    let response = aggregate(&events);
    assert_eq!(
        response.content,
        vec![
            Block::RedactedThinking(Signature::from_upstream("c2VjcmV0", "kiro")),
            Block::Thinking(crate::canonical::Thinking {
                text: "Step one. Step two.".to_owned(),
                signature: Some(Signature::from_upstream("sig-1", "kiro")),
            }),
            Block::text("Answer."),
        ]
    );
    assert!(events.contains(&Event::Delta {
        index: 1,
        delta: Delta::Signature(Signature::from_upstream("sig-1", "kiro")),
    }));
}

#[test]
fn metadata_gives_exact_usage() {
    let bytes = [
        text("Hello"),
        metering(),
        event("contextUsageEvent", &json!({"contextUsagePercentage": 50})),
        event(
            "metadataEvent",
            &json!({"tokenUsage": {"uncachedInputTokens": 120, "cacheReadInputTokens": 30,
                                   "cacheWriteInputTokens": 7, "outputTokens": 11, "totalTokens": 168}}),
        ),
    ]
    .concat();
    let usage = aggregate(&decode_all(&mut decoder(false), &bytes))
        .usage
        .unwrap();
    assert_eq!(
        (
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.output_tokens,
            usage.total_tokens(),
        ),
        (157, 30, 7, 11, 168)
    );
}

#[test]
fn without_metadata_usage_is_estimated() {
    let bytes = [
        text("<thinking>12345678</thinking>"),
        text("1234"),
        event(
            "contextUsageEvent",
            &json!({"contextUsagePercentage": 0.25}),
        ),
    ]
    .concat();
    let usage = aggregate(&decode_all(&mut decoder(true), &bytes))
        .usage
        .unwrap();
    // 0.25 % of 200 000; twelve characters of output, eight of them thinking.
    assert_eq!(
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.reasoning_tokens
        ),
        (500, 3, 2)
    );
}

#[test]
fn an_answer_without_its_closing_events_was_cut() {
    let (mut decoder, truncations) = recording(true);
    let bytes = [
        text("<thinking>plan</thinking>"),
        text("\n\nOnce upon a time, "),
        text("there was"),
    ]
    .concat();
    let response = aggregate(&decode_all(&mut decoder, &bytes));
    assert_eq!(response.stop_reason, StopReason::MaxTokens);
    assert_eq!(
        *truncations.lock().unwrap(),
        vec![Truncation::Text {
            fingerprint: fingerprint("Once upon a time, there was"),
        }]
    );
    // What the client sends back is recognised by the next request.
    let remembered = truncations.lock().unwrap().clone();
    let request = Request {
        messages: vec![
            user("Tell a story"),
            assistant(vec![Block::text("Once upon a time, there was")]),
        ],
        ..Request::default()
    };
    let options = EncodeOptions {
        truncations: &remembered,
        ..options()
    };
    let (body, _, encoded) = encode_with(&request, &options);
    assert_eq!(encoded.used, remembered);
    assert!(
        current(&body)["content"]
            .as_str()
            .unwrap()
            .starts_with("[System Notice]")
    );

    // Closing events, or a tool call, mean it was not cut.
    for ending in [
        metering(),
        event("contextUsageEvent", &json!({"contextUsagePercentage": 3})),
        tool_event("tooluse_1", "ls", &json!({}), true),
    ] {
        let (mut decoder, truncations) = recording(false);
        let bytes = [text("Complete."), ending].concat();
        let response = aggregate(&decode_all(&mut decoder, &bytes));
        assert_ne!(response.stop_reason, StopReason::MaxTokens);
        assert_eq!(*truncations.lock().unwrap(), vec![]);
    }
}

#[test]
fn a_cut_tool_input_becomes_an_empty_object() {
    let (mut decoder, truncations) = recording(false);
    let bytes = [
        text("Writing."),
        tool_event("tooluse_w", "write_file", &json!(""), false),
        tool_event(
            "tooluse_w",
            "write_file",
            &json!("{\"path\": \"a.txt\", \"text\": \"a long te"),
            false,
        ),
        tool_event("tooluse_x", "write_file", &json!("{\"path\": [1, 2}"), true),
        tool_event("tooluse_y", "echo", &json!("not json"), true),
        metering(),
    ]
    .concat();
    let response = aggregate(&decode_all(&mut decoder, &bytes));
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    let calls: Vec<(&str, &str)> = response
        .content
        .iter()
        .filter_map(|block| match block {
            Block::ToolUse(call) => Some((call.id.as_str(), call.input.as_str())),
            _ => None,
        })
        .collect();
    // Completed in the order their stops arrived; the unfinished one at the end.
    assert_eq!(
        calls,
        vec![
            ("tooluse_x", "{}"),
            ("tooluse_y", "not json"),
            ("tooluse_w", "{}")
        ]
    );
    assert_eq!(
        *truncations.lock().unwrap(),
        vec![
            Truncation::ToolInput {
                tool_use_id: "tooluse_x".to_owned()
            },
            Truncation::ToolInput {
                tool_use_id: "tooluse_w".to_owned()
            },
        ]
    );
}

#[test]
fn cut_looking_arguments() {
    for cut in ["{\"a\": 1", "{\"a\": \"x}", "[1, 2", "{\"a\": [1}", "\"abc"] {
        assert!(looks_cut(cut), "{cut}");
    }
    for whole in ["not json", "{\"a\": \"}\"}", "[1]", "{\"a\": \"\\\"\"}"] {
        assert!(!looks_cut(whole), "{whole}");
    }
}

/// Decodes `bytes` and returns the error event it ends with.
fn error_of(bytes: &[u8]) -> crate::canonical::StreamError {
    let events = decode_all(&mut decoder(false), bytes);
    match events.last() {
        Some(Event::Error(error)) => error.clone(),
        other => panic!("no error at the end: {other:?}"),
    }
}

#[test]
fn exceptions_and_errors_end_the_stream() {
    let cases = [
        (
            exception("ThrottlingException", r#"{"message":"Too many requests"}"#),
            ErrorKind::RateLimited,
            "Too many requests",
        ),
        (
            exception("ValidationException", "Improperly formed request."),
            ErrorKind::InvalidRequest,
            "Improperly formed request.",
        ),
        (
            exception("ServiceQuotaExceededException", ""),
            ErrorKind::RateLimited,
            "ServiceQuotaExceededException",
        ),
        (
            exception("MonthlyQuotaExhausted", r#"{"Message":"quota"}"#),
            ErrorKind::RateLimited,
            "quota",
        ),
        (
            exception("InternalServerException", r#"{"message":"boom"}"#),
            ErrorKind::Upstream,
            "boom",
        ),
        (
            error_frame("ThrottlingException", "slow down"),
            ErrorKind::RateLimited,
            "slow down",
        ),
        (
            event(
                "invalidStateEvent",
                &json!({"reason": "INVALID", "message": "the conversation is invalid"}),
            ),
            ErrorKind::Upstream,
            "the conversation is invalid",
        ),
    ];
    for (frame, kind, message) in cases {
        let bytes = [text("Partial "), frame, text("ignored"), metering()].concat();
        let error = error_of(&bytes);
        assert_eq!((error.kind, error.message.as_str()), (kind, message));
        // Nothing follows the error, however the stream goes on.
        let events = decode_all(&mut decoder(false), &bytes);
        assert!(
            !events
                .iter()
                .any(|event| matches!(event, Event::Stop { .. } | Event::End))
        );
    }
    let error = error_of(&exception("ThrottlingException", "x"));
    assert_eq!(error.kind, ErrorKind::RateLimited);
}

#[test]
fn broken_framing_is_a_decode_error() {
    let mut bytes = [text("Hello"), metering()].concat();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x01;
    let (events, finished) = decode_in_pieces(&mut decoder(false), &bytes, &[]);
    assert!(finished.unwrap_err().0.contains("CRC"));
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, Event::End | Event::Stop { .. }))
    );

    let mut decoder = decoder(false);
    assert!(decoder.feed(&bytes, &mut |_| {}).is_err());
    assert!(decoder.finish(&mut |_| {}).is_err());

    let (_, finished) = decode_in_pieces(&mut self::decoder(false), &[], &[]);
    assert!(finished.unwrap_err().0.contains("before any event"));

    let whole = text("Hello");
    let (_, finished) = decode_in_pieces(&mut self::decoder(false), &whole[..whole.len() - 1], &[]);
    assert!(finished.unwrap_err().0.contains("inside a message"));

    let bad = event("assistantResponseEvent", &json!({"content": 5}));
    let (_, finished) = decode_in_pieces(&mut self::decoder(false), &bad, &[]);
    assert!(finished.unwrap_err().0.contains("assistantResponseEvent"));
}
