use std::fmt::Write as _;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::request::{PLACEHOLDER, conversation_id};
use super::*;
use crate::canonical::{
    Block, Dropped, Effort, Image, Message, Reasoning, Request, Role, Source, Tool, ToolResult,
    ToolUse,
};
use crate::testing::fixture;

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
