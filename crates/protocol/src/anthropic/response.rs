//! Anthropic non-streamed responses ↔ canonical.

use serde_json::{Value, json};

use super::wire::{WireBlock, WireResponse};
use super::{tool_id, usage_from_wire, usage_to_wire};
use crate::canonical::{
    Block, Dropped, Invalid, ReplyMeta, Response, Signature, StopReason, Text, Thinking, ToolUse,
};

pub(crate) fn stop_from_wire(reason: Option<&str>) -> StopReason {
    match reason {
        Some("max_tokens") => StopReason::MaxTokens,
        Some("stop_sequence") => StopReason::StopSequence,
        Some("tool_use") => StopReason::ToolUse,
        Some("refusal") => StopReason::ContentFilter,
        // `end_turn`, `pause_turn` (a server tool paused) and anything new.
        _ => StopReason::EndTurn,
    }
}

pub(crate) fn stop_to_wire(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter => "refusal",
    }
}

/// Reads an upstream's non-streamed answer; `origin` is the provider's
/// name, recorded with its signatures.
pub fn decode_response(
    body: &[u8],
    origin: &str,
    dropped: &mut Vec<Dropped>,
) -> Result<Response, Invalid> {
    let wire: WireResponse = crate::parse_json(body)?;
    let mut content = Vec::with_capacity(wire.content.len());
    for block in wire.content {
        match block {
            WireBlock::Text { text, .. } => content.push(Block::Text(Text { text, cache: None })),
            WireBlock::ToolUse { id, name, input } => content.push(Block::ToolUse(ToolUse {
                id,
                name,
                input: input.to_string(),
            })),
            WireBlock::Thinking {
                thinking,
                signature,
            } => content.push(Block::Thinking(Thinking {
                text: thinking,
                signature: (!signature.is_empty())
                    .then(|| Signature::from_upstream(signature, origin)),
            })),
            WireBlock::RedactedThinking { data } => {
                content.push(Block::RedactedThinking(Signature::from_upstream(
                    data, origin,
                )));
            }
            WireBlock::Image { .. }
            | WireBlock::Document { .. }
            | WireBlock::ToolResult { .. }
            | WireBlock::Unknown => {
                dropped.push(Dropped(
                    "an answer block only Anthropic knows (a server tool's)".to_owned(),
                ));
            }
        }
    }
    Ok(Response {
        id: wire.id,
        model: wire.model,
        content,
        stop_reason: stop_from_wire(wire.stop_reason.as_deref()),
        stop_sequence: wire.stop_sequence,
        usage: wire.usage.as_ref().map(usage_from_wire),
    })
}

/// Writes a canonical answer as an Anthropic client expects it.
pub fn encode_response(
    response: &Response,
    meta: &ReplyMeta,
    dropped: &mut Vec<Dropped>,
) -> Vec<u8> {
    let content: Vec<Value> = response
        .content
        .iter()
        .filter_map(|block| match block {
            Block::Text(text) => Some(json!({"type": "text", "text": text.text})),
            Block::ToolUse(tool) => Some(json!({
                "type": "tool_use",
                "id": tool_id(&tool.id),
                "name": tool.name,
                "input": tool.input_object(dropped),
            })),
            Block::Thinking(thinking) => Some(json!({
                "type": "thinking",
                "thinking": thinking.text,
                "signature": thinking.signature.as_ref().map(|signature| signature.to_client()).unwrap_or_default(),
            })),
            Block::RedactedThinking(signature) => {
                Some(json!({"type": "redacted_thinking", "data": signature.to_client()}))
            }
            Block::Image(_) | Block::Document(_) | Block::ToolResult(_) => {
                dropped.push(Dropped("an answer block Anthropic cannot show".to_owned()));
                None
            }
        })
        .collect();
    let usage = response.usage.unwrap_or_default();
    let body = json!({
        "id": format!("msg_{}", meta.id),
        "type": "message",
        "role": "assistant",
        "model": meta.model,
        "content": content,
        "stop_reason": stop_to_wire(response.stop_reason),
        "stop_sequence": response.stop_sequence,
        "usage": usage_to_wire(&usage),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}
