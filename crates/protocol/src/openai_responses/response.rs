//! Responses non-streamed answers ↔ canonical.

use serde::Deserialize;
use serde_json::{Value, json};

use super::pack_reasoning;
use super::wire::{ResponseObject, WireUsage, status_to_wire, stop_from_wire, usage_to_wire};
use crate::canonical::{
    Block, Dropped, Invalid, ReplyMeta, Response, Signature, Text, Thinking, ToolUse,
};

#[derive(Deserialize)]
struct WireResponse {
    id: Option<String>,
    model: Option<String>,
    status: Option<String>,
    incomplete_details: Option<Incomplete>,
    /// Required: an answer without it is not a response.
    output: Vec<Value>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
pub(crate) struct Incomplete {
    pub(crate) reason: Option<String>,
}

/// Output items → canonical blocks; returns whether a tool was called and
/// whether the model refused.
pub(crate) fn output_to_blocks(
    output: &[Value],
    origin: &str,
    dropped: &mut Vec<Dropped>,
) -> (Vec<Block>, bool, bool) {
    let mut blocks = Vec::new();
    let (mut called, mut refused) = (false, false);
    for item in output {
        match item["type"].as_str() {
            Some("message") => {
                for part in item["content"].as_array().into_iter().flatten() {
                    let text = match part["type"].as_str() {
                        Some("output_text") => part["text"].as_str(),
                        Some("refusal") => {
                            refused = true;
                            part["refusal"].as_str()
                        }
                        _ => None,
                    };
                    if let Some(text) = text {
                        blocks.push(Block::Text(Text {
                            text: text.to_owned(),
                            cache: None,
                        }));
                    }
                }
            }
            Some("function_call") => {
                called = true;
                blocks.push(Block::ToolUse(ToolUse {
                    id: item["call_id"].as_str().unwrap_or_default().to_owned(),
                    name: item["name"].as_str().unwrap_or_default().to_owned(),
                    input: item["arguments"].as_str().unwrap_or_default().to_owned(),
                }));
            }
            Some("reasoning") => {
                let texts: Vec<&str> = item["summary"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(item["content"].as_array().into_iter().flatten())
                    .filter_map(|part| part["text"].as_str())
                    .collect();
                let signature = item["encrypted_content"].as_str().map(|encrypted| {
                    Signature::from_upstream(
                        pack_reasoning(item["id"].as_str().unwrap_or("rs_0"), encrypted),
                        origin,
                    )
                });
                blocks.push(Block::Thinking(Thinking {
                    text: texts.join("\n\n"),
                    signature,
                }));
            }
            other => dropped.push(Dropped(format!(
                "an output item of type `{}`",
                other.unwrap_or("?")
            ))),
        }
    }
    (blocks, called, refused)
}

/// Reads an upstream's non-streamed answer.
pub fn decode_response(
    body: &[u8],
    origin: &str,
    dropped: &mut Vec<Dropped>,
) -> Result<Response, Invalid> {
    let wire: WireResponse = crate::parse_json(body)?;
    let (content, called, refused) = output_to_blocks(&wire.output, origin, dropped);
    let mut stop_reason = stop_from_wire(
        wire.status.as_deref(),
        wire.incomplete_details
            .as_ref()
            .and_then(|details| details.reason.as_deref()),
        called,
    );
    if refused {
        stop_reason = crate::canonical::StopReason::ContentFilter;
    }
    Ok(Response {
        id: wire.id,
        model: wire.model,
        content,
        stop_reason,
        stop_sequence: None,
        usage: wire.usage.as_ref().map(Into::into),
    })
}

/// The output item for one canonical block; `n` numbers the item ids.
pub(crate) fn block_to_item(block: &Block, base: &str, n: usize) -> Option<Value> {
    match block {
        Block::Text(text) => Some(json!({
            "type": "message",
            "id": format!("msg_{base}_{n}"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text.text, "annotations": []}],
        })),
        Block::Thinking(thinking) => {
            let id = format!("rs_{base}_{n}");
            let summary: Vec<Value> = if thinking.text.is_empty() {
                Vec::new()
            } else {
                vec![json!({"type": "summary_text", "text": thinking.text})]
            };
            let mut item = json!({"type": "reasoning", "id": id, "summary": summary});
            if let Some(signature) = &thinking.signature {
                item["encrypted_content"] = signature.to_client().into();
            }
            Some(item)
        }
        Block::RedactedThinking(signature) => Some(json!({
            "type": "reasoning",
            "id": format!("rs_{base}_{n}"),
            "summary": [],
            "encrypted_content": signature.to_client(),
        })),
        Block::ToolUse(tool) => Some(json!({
            "type": "function_call",
            "id": format!("fc_{base}_{n}"),
            "call_id": tool.id,
            "name": tool.name,
            "arguments": tool.input,
            "status": "completed",
        })),
        Block::Image(_) | Block::Document(_) | Block::ToolResult(_) => None,
    }
}

/// Writes a canonical answer as a Responses client expects it.
pub fn encode_response(
    response: &Response,
    meta: &ReplyMeta,
    dropped: &mut Vec<Dropped>,
) -> Vec<u8> {
    let mut output = Vec::with_capacity(response.content.len());
    for (n, block) in response.content.iter().enumerate() {
        match block_to_item(block, &meta.id, n) {
            Some(item) => output.push(item),
            None => dropped.push(Dropped(
                "an answer block the Responses API cannot show".to_owned(),
            )),
        }
    }
    let (status, incomplete) = status_to_wire(response.stop_reason);
    let usage = response.usage.as_ref().map_or(Value::Null, usage_to_wire);
    let body = ResponseObject {
        id: &format!("resp_{}", meta.id),
        created: meta.created,
        model: &meta.model,
        status,
        output: Value::Array(output),
        usage,
        incomplete,
        error: Value::Null,
    }
    .into_value();
    serde_json::to_vec(&body).unwrap_or_default()
}
