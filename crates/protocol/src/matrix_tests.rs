//! Every client dialect against every upstream dialect, at the protocol
//! level: a stream an upstream of dialect U sends, decoded and written for a
//! client of dialect C, reads back as the same answer; a request a client of
//! dialect C sends, written for an upstream of dialect U, asks the same.

use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::{Value, json};
use subgate_core::{Dialect, Usage};

use crate::canonical::{
    Block, BlockKind, Delta, Dropped, Event, Message, Reasoning, ReplyMeta, Request, Response,
    Role, Signature, Source, StopReason, SystemPart, Thinking, Tool, ToolChoice, ToolResult,
    ToolUse,
};
use crate::codec::Target;
use crate::dispatch::{self, ClientStream, DIALECTS, RequestLine};
use crate::openai_chat::ChatUpstream;
use crate::testing::{aggregate, decode_in_pieces, encode};

fn meta() -> ReplyMeta {
    ReplyMeta {
        id: "0192abcd".to_owned(),
        created: 1_735_689_600,
        model: "client-model".to_owned(),
    }
}

/// An answer with everything: signed thinking, text with quotes and
/// multi-byte characters, two tool calls with arguments in fragments.
fn scenario() -> Vec<Event<'static>> {
    let text = |s: &'static str| Delta::Text(s.into());
    vec![
        Event::Start {
            id: Some("up-1".into()),
            model: Some("up-model".into()),
        },
        Event::BlockStart {
            index: 0,
            kind: BlockKind::Thinking,
        },
        Event::Delta {
            index: 0,
            delta: Delta::Thinking("Paris? ".into()),
        },
        Event::Delta {
            index: 0,
            delta: Delta::Thinking("Check the weather.".into()),
        },
        Event::Delta {
            index: 0,
            delta: Delta::Signature(Signature::from_upstream("SIG", "up")),
        },
        Event::BlockStop { index: 0 },
        Event::BlockStart {
            index: 1,
            kind: BlockKind::Text,
        },
        Event::Delta {
            index: 1,
            delta: text("Il fait \"beau\" à "),
        },
        Event::Delta {
            index: 1,
            delta: text("Paris ☀️."),
        },
        Event::BlockStop { index: 1 },
        Event::BlockStart {
            index: 2,
            kind: BlockKind::ToolUse {
                id: "call_a".into(),
                name: "get_weather".into(),
            },
        },
        Event::Delta {
            index: 2,
            delta: Delta::ToolInput("{\"city\":".into()),
        },
        Event::Delta {
            index: 2,
            delta: Delta::ToolInput(" \"Paris\"}".into()),
        },
        Event::BlockStop { index: 2 },
        Event::BlockStart {
            index: 3,
            kind: BlockKind::ToolUse {
                id: "call_b".into(),
                name: "get_time".into(),
            },
        },
        Event::Delta {
            index: 3,
            delta: Delta::ToolInput("{}".into()),
        },
        Event::BlockStop { index: 3 },
        Event::Usage(Usage {
            input_tokens: 120,
            output_tokens: 45,
            cache_read_tokens: 100,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
        }),
        Event::Stop {
            reason: StopReason::ToolUse,
            sequence: None,
        },
        Event::End,
    ]
}

/// What must survive any pair: thinking text, text, tool calls with their
/// arguments as JSON, the stop reason, and token counts.
#[derive(Debug, PartialEq)]
struct Essence {
    thinking: String,
    text: String,
    tools: Vec<(String, Value)>,
    stop: StopReason,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
}

fn essence(response: &Response) -> Essence {
    let mut essence = Essence {
        thinking: String::new(),
        text: String::new(),
        tools: Vec::new(),
        stop: response.stop_reason,
        input_tokens: 0,
        output_tokens: 0,
        cache_read_tokens: 0,
    };
    for block in &response.content {
        match block {
            Block::Thinking(thinking) => essence.thinking.push_str(&thinking.text),
            Block::Text(text) => essence.text.push_str(&text.text),
            Block::ToolUse(tool) => essence.tools.push((
                tool.name.clone(),
                serde_json::from_str(&tool.input).unwrap(),
            )),
            _ => {}
        }
    }
    if let Some(usage) = response.usage {
        essence.input_tokens = usage.input_tokens;
        essence.output_tokens = usage.output_tokens;
        essence.cache_read_tokens = usage.cache_read_tokens;
    }
    essence
}

/// The upstream's bytes → the client's bytes → read back.
fn through(upstream: Dialect, client: Dialect, cuts: &[usize]) -> Response {
    through_with(upstream, client, &scenario(), cuts)
}

/// [`through`] for any answer.
fn through_with(
    upstream: Dialect,
    client: Dialect,
    answer: &[Event<'_>],
    cuts: &[usize],
) -> Response {
    let client_options = ClientStream {
        include_usage: true,
        sse: true,
    };
    // The upstream writes the answer in its dialect...
    let wire = encode(
        &mut *dispatch::stream_encoder(upstream, meta(), client_options),
        answer,
    );
    // ...the gateway reads it, cut anywhere, and writes it for the client...
    let (events, finished) = decode_in_pieces(
        &mut *dispatch::stream_decoder(upstream, "up", 1 << 20),
        &wire,
        cuts,
    );
    finished.unwrap_or_else(|error| panic!("{upstream} → {client}: {error}"));
    let client_bytes = encode(
        &mut *dispatch::stream_encoder(client, meta(), client_options),
        &events,
    );
    // ...and the client reads the answer.
    let (read, finished) = decode_in_pieces(
        &mut *dispatch::stream_decoder(client, "client", 1 << 20),
        &client_bytes,
        &[],
    );
    finished.unwrap_or_else(|error| {
        panic!(
            "{upstream} → {client}: {error}\n{}",
            String::from_utf8_lossy(&client_bytes)
        )
    });
    aggregate(&read)
}

#[test]
fn every_pair_streams_the_same_answer() {
    let expected = essence(&aggregate(&scenario()));
    for upstream in DIALECTS {
        for client in DIALECTS {
            let got = essence(&through(upstream, client, &[]));
            assert_eq!(got, expected, "{upstream} → {client}");
        }
    }
}

#[test]
fn signatures_reach_every_client_that_can_carry_them() {
    for upstream in DIALECTS {
        for client in DIALECTS {
            let response = through(upstream, client, &[]);
            let signed = response.content.iter().any(|block| match block {
                Block::Thinking(thinking) => thinking
                    .signature
                    .as_ref()
                    .is_some_and(|signature| signature.value.contains("SIG")),
                _ => false,
            });
            assert!(signed, "{upstream} → {client}: the signature was lost");
        }
    }
}

proptest! {
    #[test]
    fn every_pair_is_chunk_boundary_proof(cuts in proptest::collection::vec(any::<usize>(), 0..16), pair in 0usize..16) {
        let (upstream, client) = (DIALECTS[pair / 4], DIALECTS[pair % 4]);
        prop_assert_eq!(essence(&through(upstream, client, &cuts)), essence(&aggregate(&scenario())));
    }
}

/// A conversation every dialect can express.
fn conversation() -> Request {
    Request {
        model: "any".to_owned(),
        system: vec![SystemPart {
            text: "Be brief.".to_owned(),
            cache: None,
        }],
        messages: vec![
            Message {
                role: Role::User,
                content: vec![
                    Block::text("What is this?"),
                    Block::Image(crate::canonical::Image {
                        source: Source::Base64 {
                            media_type: "image/png".to_owned(),
                            data: "iVBORw0KGgo=".to_owned(),
                        },
                        detail: None,
                    }),
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    Block::text("Let me look it up."),
                    Block::ToolUse(ToolUse {
                        id: "call_1".to_owned(),
                        name: "lookup".to_owned(),
                        input: r#"{"q":"png"}"#.to_owned(),
                    }),
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    Block::ToolResult(ToolResult {
                        tool_use_id: "call_1".to_owned(),
                        name: None,
                        content: vec![Block::text("a 1x1 image")],
                        is_error: false,
                    }),
                    Block::text("Thanks."),
                ],
            },
        ],
        tools: vec![Tool {
            name: "lookup".to_owned(),
            description: Some("Looks things up".to_owned()),
            parameters: json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}),
            strict: None,
        }],
        tool_choice: Some(ToolChoice::Auto),
        max_tokens: Some(8_000),
        temperature: Some(0.5),
        reasoning: Some(Reasoning::Budget(2_000)),
        stream: true,
        ..Request::default()
    }
}

/// What every dialect keeps of a request.
fn request_essence(request: &Request) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|message| {
            let blocks: Vec<Value> = message
                .content
                .iter()
                .filter_map(|block| match block {
                    Block::Text(text) => Some(json!({"text": text.text})),
                    Block::Image(_) => Some(json!("image")),
                    Block::ToolUse(tool) => Some(json!({"call": tool.name, "args": serde_json::from_str::<Value>(&tool.input).unwrap()})),
                    Block::ToolResult(result) => Some(json!({"result": crate::canonical::joined_text(&result.content)})),
                    _ => None,
                })
                .collect();
            json!({"role": format!("{:?}", message.role), "blocks": blocks})
        })
        .collect();
    let system: Vec<&str> = request
        .system
        .iter()
        .map(|part| part.text.as_str())
        .collect();
    json!({
        "system": system.join("\n\n"),
        "messages": messages,
        "tools": request.tools.iter().map(|tool| tool.name.clone()).collect::<Vec<_>>(),
        "tool_choice": format!("{:?}", request.tool_choice),
        "max_tokens": request.max_tokens,
        // Temperature is not compared: Anthropic must drop it while thinking.
        // Thinking is not compared: Anthropic turns it off when the answered
        // tool call lost its signed thinking (as a Chat Completions client's does).
        "stream": request.stream,
    })
}

/// One hop of a request: `request` written in `dialect` and read back, as
/// a client sends it to the gateway or the gateway to an upstream. Returns
/// what was read, the bytes that travelled, and what the writer dropped.
fn hop(dialect: Dialect, request: &Request) -> (Request, Vec<u8>, Vec<Dropped>) {
    let line = RequestLine {
        model: Some("any"),
        stream: request.stream,
        sse: request.stream,
    };
    let target = Target {
        provider: "up",
        model: "any",
    };
    let mut dropped = Vec::new();
    let bytes = dispatch::encode_request(
        dialect,
        request,
        target,
        ChatUpstream::default(),
        &mut dropped,
    );
    let read = dispatch::decode_request(dialect, &bytes, line, &mut Vec::new())
        .unwrap_or_else(|error| panic!("{dialect}: {error}\n{}", String::from_utf8_lossy(&bytes)));
    (read, bytes, dropped)
}

#[test]
fn every_pair_asks_the_same_question() {
    let expected = request_essence(&conversation());
    for client in DIALECTS {
        // The client sends the conversation in its dialect; the gateway
        // writes what it read for the upstream, which reads it.
        let (read, _, _) = hop(client, &conversation());
        for upstream in DIALECTS {
            let (received, _, _) = hop(upstream, &read);
            assert_eq!(
                request_essence(&received),
                expected,
                "{client} → {upstream}"
            );
        }
    }
}

#[test]
fn thinking_goes_back_only_to_the_upstream_that_signed_it() {
    let mut request = conversation();
    request.messages[1].content.insert(
        0,
        Block::Thinking(Thinking {
            text: "Hmm.".to_owned(),
            signature: Some(Signature::from_upstream("SIG", "up")),
        }),
    );
    for upstream in [
        Dialect::Anthropic,
        Dialect::OpenAiResponses,
        Dialect::Gemini,
    ] {
        let to_signer = dispatch::encode_request(
            upstream,
            &request,
            Target {
                provider: "up",
                model: "m",
            },
            ChatUpstream::default(),
            &mut Vec::new(),
        );
        assert!(
            String::from_utf8_lossy(&to_signer).contains("SIG"),
            "{upstream}: the signer must get its signature back"
        );
        let mut dropped = Vec::new();
        let to_other = dispatch::encode_request(
            upstream,
            &request,
            Target {
                provider: "other",
                model: "m",
            },
            ChatUpstream::default(),
            &mut dropped,
        );
        assert!(
            !String::from_utf8_lossy(&to_other).contains("SIG"),
            "{upstream}: another provider must not get it"
        );
        assert!(!dropped.is_empty(), "{upstream}: dropping it is reported");
    }
}

/// A request with the features only some dialects have: a URL image,
/// parallel tool calls, an error result, a named tool choice, stop
/// sequences and a JSON schema for the answer.
fn features() -> Request {
    let call = |id: &str, name: &str, input: &str| {
        Block::ToolUse(ToolUse {
            id: id.to_owned(),
            name: name.to_owned(),
            input: input.to_owned(),
        })
    };
    let result = |id: &str, text: &str, is_error: bool| {
        Block::ToolResult(ToolResult {
            tool_use_id: id.to_owned(),
            name: None,
            content: vec![Block::text(text)],
            is_error,
        })
    };
    let tool = |name: &str| Tool {
        name: name.to_owned(),
        description: None,
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        strict: None,
    };
    Request {
        model: "any".to_owned(),
        system: vec![SystemPart {
            text: "Answer in French.".to_owned(),
            cache: None,
        }],
        messages: vec![
            Message {
                role: Role::User,
                content: vec![
                    Block::text("Weather and time where this was taken?"),
                    Block::Image(crate::canonical::Image {
                        source: Source::Url {
                            url: "https://example.com/paris.jpg".to_owned(),
                            media_type: None,
                        },
                        detail: None,
                    }),
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    call("call_1", "get_weather", r#"{"city":"Paris"}"#),
                    call("call_2", "get_time", r#"{"city":"Paris"}"#),
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    result("call_1", "18 degrees", false),
                    result("call_2", "clock unavailable", true),
                ],
            },
        ],
        tools: vec![tool("get_weather"), tool("get_time")],
        tool_choice: Some(ToolChoice::Tool("get_weather".to_owned())),
        max_tokens: Some(1_000),
        stop: vec!["END".to_owned()],
        output_format: Some(crate::canonical::OutputFormat::JsonSchema {
            name: "report".to_owned(),
            schema: json!({"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}),
            strict: Some(true),
        }),
        ..Request::default()
    }
}

/// Which of the features a dialect can say.
struct Says {
    error_results: bool,
    stop_sequences: bool,
    output_schema: bool,
}

fn says(dialect: Dialect) -> Says {
    Says {
        // Chat Completions and Responses tool outputs have no error flag.
        error_results: matches!(dialect, Dialect::Anthropic | Dialect::Gemini),
        // The Responses API has no stop sequences.
        stop_sequences: dialect != Dialect::OpenAiResponses,
        // Anthropic's Messages API has no structured-output mode here.
        output_schema: dialect != Dialect::Anthropic,
    }
}

/// The features as a request carries them, each only where both sides of
/// the pair can say it.
fn feature_essence(request: &Request, both: &Says) -> Value {
    let mut images = Vec::new();
    let mut calls = Vec::new();
    let mut results = Vec::new();
    for block in request.messages.iter().flat_map(|message| &message.content) {
        match block {
            Block::Image(image) => images.push(match &image.source {
                Source::Url { url, .. } => url.clone(),
                Source::Base64 { .. } => "base64".to_owned(),
            }),
            Block::ToolUse(tool) => calls.push(json!([
                tool.name,
                serde_json::from_str::<Value>(&tool.input).unwrap()
            ])),
            Block::ToolResult(result) => {
                let text = crate::canonical::joined_text(&result.content);
                // Without a flag on one side, the failure is said in the text.
                results.push(if both.error_results || !result.is_error {
                    json!([text, result.is_error])
                } else {
                    json!([format!("Error: {text}"), false])
                });
            }
            _ => {}
        }
    }
    let schema = match &request.output_format {
        Some(crate::canonical::OutputFormat::JsonSchema { schema, .. }) if both.output_schema => {
            schema.clone()
        }
        _ => Value::Null,
    };
    json!({
        "images": images,
        "calls": calls,
        "results": results,
        "tool_choice": format!("{:?}", request.tool_choice),
        "stop": if both.stop_sequences { request.stop.clone() } else { Vec::new() },
        "schema": schema,
    })
}

#[test]
fn every_pair_carries_what_both_sides_can_say() {
    for client in DIALECTS {
        let (read, _, _) = hop(client, &features());
        for upstream in DIALECTS {
            let (from, to) = (says(client), says(upstream));
            let both = Says {
                error_results: from.error_results && to.error_results,
                stop_sequences: from.stop_sequences && to.stop_sequences,
                output_schema: from.output_schema && to.output_schema,
            };
            let (received, forwarded, dropped) = hop(upstream, &read);
            assert_eq!(
                feature_essence(&received, &both),
                feature_essence(&features(), &both),
                "{client} → {upstream}\n{}",
                String::from_utf8_lossy(&forwarded)
            );
            // What the upstream cannot say was dropped on purpose, and said so.
            if from.stop_sequences && !to.stop_sequences || from.output_schema && !to.output_schema
            {
                assert!(
                    !dropped.is_empty(),
                    "{client} → {upstream}: nothing reported"
                );
            }
        }
    }
}

#[test]
fn every_pair_keeps_the_reasoning_effort() {
    use crate::canonical::Effort;
    for effort in [Effort::Low, Effort::Medium, Effort::High] {
        let request = Request {
            model: "any".to_owned(),
            messages: vec![Message {
                role: Role::User,
                content: vec![Block::text("Think about it.")],
            }],
            max_tokens: Some(64_000),
            reasoning: Some(Reasoning::Effort(effort)),
            ..Request::default()
        };
        for client in DIALECTS {
            let (read, _, _) = hop(client, &request);
            for upstream in DIALECTS {
                let (received, forwarded, _) = hop(upstream, &read);
                let level = match received.reasoning {
                    Some(Reasoning::Effort(level)) => Some(level),
                    Some(Reasoning::Budget(budget)) => Some(Effort::from_budget(budget)),
                    _ => None,
                };
                assert_eq!(
                    level,
                    Some(effort),
                    "{client} → {upstream}: {}",
                    String::from_utf8_lossy(&forwarded)
                );
            }
        }
    }
}

#[test]
fn every_pair_reports_stops_and_token_details_both_sides_have() {
    // A text answer that ends on a stop sequence, with cached and
    // reasoning tokens in its usage.
    let answer = vec![
        Event::Start {
            id: Some("up-2".into()),
            model: Some("up-model".into()),
        },
        Event::BlockStart {
            index: 0,
            kind: BlockKind::Text,
        },
        Event::Delta {
            index: 0,
            delta: Delta::Text("Done".into()),
        },
        Event::BlockStop { index: 0 },
        Event::Stop {
            reason: StopReason::StopSequence,
            sequence: Some("END".into()),
        },
        Event::Usage(Usage {
            input_tokens: 300,
            output_tokens: 90,
            cache_read_tokens: 200,
            cache_write_tokens: 0,
            reasoning_tokens: 60,
        }),
        Event::End,
    ];
    // Only Anthropic tells a stop sequence from a natural end; Anthropic has
    // no count of reasoning tokens.
    let reasons_tokens = |dialect: Dialect| dialect != Dialect::Anthropic;
    for upstream in DIALECTS {
        for client in DIALECTS {
            let got = through_with(upstream, client, &answer, &[]);
            let label = format!("{upstream} → {client}");
            let anthropic_both = upstream == Dialect::Anthropic && client == Dialect::Anthropic;
            if anthropic_both {
                assert_eq!(got.stop_reason, StopReason::StopSequence, "{label}");
                assert_eq!(got.stop_sequence.as_deref(), Some("END"), "{label}");
            } else {
                assert_eq!(got.stop_reason, StopReason::EndTurn, "{label}");
            }
            let usage = got.usage.unwrap_or_else(|| panic!("{label}: no usage"));
            assert_eq!(
                (
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cache_read_tokens
                ),
                (300, 90, 200),
                "{label}"
            );
            let reasoning = if reasons_tokens(upstream) && reasons_tokens(client) {
                60
            } else {
                0
            };
            assert_eq!(usage.reasoning_tokens, reasoning, "{label}");
        }
    }
}
