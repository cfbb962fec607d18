//! Chat Completions non-streamed responses ↔ canonical.

use serde::Deserialize;
use serde_json::{Value, json};

use super::request::WireReasoningDetail;
use super::wire::{WireUsage, stop_from_wire, stop_to_wire, usage_to_wire};
use crate::canonical::{
    Block, Dropped, Invalid, ReplyMeta, Response, Signature, StopReason, Text, Thinking, ToolUse,
};

#[derive(Deserialize)]
struct WireResponse {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Option<String>,
    refusal: Option<String>,
    reasoning_content: Option<String>,
    reasoning: Option<String>,
    #[serde(default)]
    reasoning_details: Vec<WireReasoningDetail>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: Option<String>,
    function: WireCall,
}

#[derive(Deserialize)]
struct WireCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

/// Reads an upstream's non-streamed answer.
pub fn decode_response(
    body: &[u8],
    origin: &str,
    dropped: &mut Vec<Dropped>,
) -> Result<Response, Invalid> {
    let wire: WireResponse = crate::parse_json(body)?;
    let Some(choice) = wire.choices.into_iter().next() else {
        return Err(Invalid::body("the upstream answered without a choice"));
    };
    let message = choice.message;
    let mut content = Vec::new();
    for detail in message.reasoning_details {
        match detail.kind.as_str() {
            "reasoning.text" | "reasoning.summary" => content.push(Block::Thinking(Thinking {
                text: detail.text.or(detail.summary).unwrap_or_default(),
                signature: detail
                    .signature
                    .filter(|s| !s.is_empty())
                    .map(|s| Signature::from_upstream(s, origin)),
            })),
            "reasoning.encrypted" => {
                if let Some(data) = detail.data {
                    content.push(Block::RedactedThinking(Signature::from_upstream(
                        data, origin,
                    )));
                }
            }
            other => dropped.push(Dropped(format!("a reasoning detail of type `{other}`"))),
        }
    }
    if content.is_empty()
        && let Some(text) = message
            .reasoning_content
            .or(message.reasoning)
            .filter(|text| !text.is_empty())
    {
        content.push(Block::Thinking(Thinking {
            text,
            signature: None,
        }));
    }
    let refused = message.refusal.is_some();
    if let Some(text) = message
        .content
        .or(message.refusal)
        .filter(|text| !text.is_empty())
    {
        content.push(Block::Text(Text { text, cache: None }));
    }
    let called = !message.tool_calls.is_empty();
    for (index, call) in message.tool_calls.into_iter().enumerate() {
        content.push(Block::ToolUse(ToolUse {
            id: call.id.unwrap_or_else(|| format!("call_{index}")),
            name: call.function.name,
            input: call.function.arguments,
        }));
    }
    let mut stop_reason = choice
        .finish_reason
        .as_deref()
        .map_or(StopReason::EndTurn, stop_from_wire);
    if called && stop_reason == StopReason::EndTurn {
        // Some servers say `stop` after calling tools.
        stop_reason = StopReason::ToolUse;
    }
    if refused {
        stop_reason = StopReason::ContentFilter;
    }
    Ok(Response {
        id: wire.id,
        model: wire.model,
        content,
        stop_reason,
        stop_sequence: None,
        usage: wire.usage.map(Into::into),
    })
}

/// The `reasoning_details` entry for a signed thinking block or a redacted one.
pub(crate) fn reasoning_detail(block: &Block, index: usize) -> Option<Value> {
    match block {
        Block::Thinking(thinking) => thinking.signature.as_ref().map(|signature| {
            json!({"type": "reasoning.text", "text": thinking.text, "signature": signature.to_client(), "format": "unknown", "index": index})
        }),
        Block::RedactedThinking(signature) => Some(
            json!({"type": "reasoning.encrypted", "data": signature.to_client(), "format": "unknown", "index": index}),
        ),
        _ => None,
    }
}

/// Writes a canonical answer as a Chat Completions client expects it.
pub fn encode_response(
    response: &Response,
    meta: &ReplyMeta,
    dropped: &mut Vec<Dropped>,
) -> Vec<u8> {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut details = Vec::new();
    let mut tool_calls = Vec::new();
    for block in &response.content {
        match block {
            Block::Text(part) => text.push_str(&part.text),
            Block::Thinking(thinking) => {
                reasoning.push_str(&thinking.text);
                details.extend(reasoning_detail(block, details.len()));
            }
            Block::RedactedThinking(_) => details.extend(reasoning_detail(block, details.len())),
            Block::ToolUse(tool) => tool_calls.push(json!({
                "id": tool.id,
                "type": "function",
                "function": {"name": tool.name, "arguments": tool.input},
            })),
            Block::Image(_) | Block::Document(_) | Block::ToolResult(_) => {
                dropped.push(Dropped(
                    "an answer block Chat Completions cannot show".to_owned(),
                ));
            }
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { text.into() },
        "refusal": null,
    });
    if !reasoning.is_empty() {
        message["reasoning_content"] = reasoning.into();
    }
    if !details.is_empty() {
        message["reasoning_details"] = Value::Array(details);
    }
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    let mut body = json!({
        "id": format!("chatcmpl-{}", meta.id),
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": stop_to_wire(response.stop_reason),
        }],
    });
    if let Some(usage) = &response.usage {
        body["usage"] = usage_to_wire(usage);
    }
    serde_json::to_vec(&body).unwrap_or_default()
}
