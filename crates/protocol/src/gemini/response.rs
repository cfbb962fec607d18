//! Gemini non-streamed answers ↔ canonical.

use serde::Deserialize;
use serde_json::{Value, json};

use super::request::WireContent;
use super::{stop_from_wire, stop_to_wire, usage_from_wire, usage_to_wire};
use crate::canonical::{
    Block, Dropped, Invalid, ReplyMeta, Response, Signature, StopReason, Text, Thinking, ToolUse,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse {
    #[serde(default)]
    candidates: Vec<WireCandidate>,
    usage_metadata: Option<Value>,
    model_version: Option<String>,
    response_id: Option<String>,
    prompt_feedback: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCandidate {
    content: Option<WireContent>,
    finish_reason: Option<String>,
}

/// Reads an upstream's non-streamed answer.
pub fn decode_response(
    body: &[u8],
    origin: &str,
    dropped: &mut Vec<Dropped>,
) -> Result<Response, Invalid> {
    let wire: WireResponse = crate::parse_json(body)?;
    let usage = wire.usage_metadata.as_ref().map(usage_from_wire);
    let Some(candidate) = wire.candidates.into_iter().next() else {
        // No candidate: the prompt itself was blocked, or this is not an
        // answer at all (an error object sent with a 200, say).
        let blocked = wire
            .prompt_feedback
            .as_ref()
            .and_then(|feedback| feedback["blockReason"].as_str())
            .is_some();
        if !blocked && usage.is_none() {
            return Err(Invalid::body(
                "the upstream answered without a candidate or a reason",
            ));
        }
        return Ok(Response {
            id: wire.response_id,
            model: wire.model_version,
            content: Vec::new(),
            stop_reason: if blocked {
                StopReason::ContentFilter
            } else {
                StopReason::EndTurn
            },
            stop_sequence: None,
            usage,
        });
    };
    let mut content = Vec::new();
    let mut calls = 0;
    for part in candidate
        .content
        .map(|content| content.parts)
        .unwrap_or_default()
    {
        let signature = part
            .thought_signature
            .map(|value| Signature::from_upstream(value, origin));
        if part.thought {
            match content.last_mut() {
                // Consecutive thought parts are one thought.
                Some(Block::Thinking(thinking))
                    if thinking.signature.is_none() && !thinking.text.is_empty() =>
                {
                    thinking
                        .text
                        .push_str(part.text.as_deref().unwrap_or_default());
                    thinking.signature = signature;
                }
                _ => content.push(Block::Thinking(Thinking {
                    text: part.text.unwrap_or_default(),
                    signature,
                })),
            }
            continue;
        }
        if let Some(signature) = signature {
            content.push(Block::Thinking(Thinking {
                text: String::new(),
                signature: Some(signature),
            }));
        }
        if let Some(text) = part.text {
            match content.last_mut() {
                Some(Block::Text(last)) => last.text.push_str(&text),
                _ => content.push(Block::Text(Text { text, cache: None })),
            }
        } else if let Some(call) = part.function_call {
            content.push(Block::ToolUse(ToolUse {
                id: call.id.unwrap_or_else(|| format!("call_{calls}")),
                name: call.name,
                input: if call.args.is_null() {
                    "{}".to_owned()
                } else {
                    call.args.to_string()
                },
            }));
            calls += 1;
        } else {
            dropped.push(Dropped(
                "an answer part of a kind only Gemini knows".to_owned(),
            ));
        }
    }
    Ok(Response {
        id: wire.response_id,
        model: wire.model_version,
        stop_reason: stop_from_wire(
            candidate.finish_reason.as_deref().unwrap_or("STOP"),
            calls > 0,
        ),
        content,
        stop_sequence: None,
        usage,
    })
}

/// Canonical blocks → Gemini parts; a thinking block without text lends its
/// signature to the part after it.
pub(crate) fn blocks_to_parts(blocks: &[Block], dropped: &mut Vec<Dropped>) -> Vec<Value> {
    let mut parts = Vec::with_capacity(blocks.len());
    let mut signature: Option<String> = None;
    for block in blocks {
        let mut part = match block {
            Block::Thinking(thinking) if thinking.text.is_empty() => {
                signature = thinking
                    .signature
                    .as_ref()
                    .map(|signature| signature.to_client().into_owned());
                continue;
            }
            Block::Thinking(thinking) => {
                let mut part = json!({"text": thinking.text, "thought": true});
                if let Some(signature) = &thinking.signature {
                    part["thoughtSignature"] = signature.to_client().into();
                }
                part
            }
            Block::RedactedThinking(redacted) => {
                signature = Some(redacted.to_client().into_owned());
                continue;
            }
            Block::Text(text) => json!({"text": text.text}),
            Block::ToolUse(tool) => {
                json!({"functionCall": {"id": tool.id, "name": tool.name, "args": tool.input_object(dropped)}})
            }
            Block::Image(_) | Block::Document(_) | Block::ToolResult(_) => {
                dropped.push(Dropped("an answer block Gemini cannot show".to_owned()));
                continue;
            }
        };
        if let Some(signature) = signature.take() {
            part["thoughtSignature"] = signature.into();
        }
        parts.push(part);
    }
    if let Some(signature) = signature {
        parts.push(json!({"text": "", "thoughtSignature": signature}));
    }
    parts
}

/// Writes a canonical answer as a Gemini client expects it.
pub fn encode_response(
    response: &Response,
    meta: &ReplyMeta,
    dropped: &mut Vec<Dropped>,
) -> Vec<u8> {
    let mut body = json!({
        "candidates": [{
            "content": {"role": "model", "parts": blocks_to_parts(&response.content, dropped)},
            "finishReason": stop_to_wire(response.stop_reason),
            "index": 0,
        }],
        "modelVersion": meta.model,
        "responseId": meta.id,
    });
    if let Some(usage) = &response.usage {
        body["usageMetadata"] = usage_to_wire(usage);
    }
    serde_json::to_vec(&body).unwrap_or_default()
}
