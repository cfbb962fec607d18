//! Gemini's stream ↔ canonical events.
//!
//! Upstream, the gateway always asks for SSE (`alt=sse`): every event is a
//! whole `GenerateContentResponse` with the next parts, and there is no
//! terminal event, so the stream is complete when it ends after a chunk with
//! a `finishReason`. Clients that do not ask for SSE get the same chunks as
//! one JSON array.

use std::borrow::Cow;

use serde_json::{Value, json};
use subgate_core::Usage;

use super::{stop_from_wire, stop_to_wire, usage_from_wire, usage_to_wire};
use crate::canonical::{BlockKind, Delta, Event, ReplyMeta, Signature, StopReason, StreamError};
use crate::codec::{DecodeError, StreamDecoder, StreamEncoder, feed_sse};
use crate::error::{ErrorKind, ErrorReport};
use crate::sse::SseDecoder;

/// Upstream Gemini SSE → canonical events.
#[derive(Debug)]
pub struct GeminiStreamDecoder {
    sse: SseDecoder,
    state: DecodeState,
}

#[derive(Debug, Default)]
struct DecodeState {
    origin: String,
    started: bool,
    /// The open block and whether it is a thought.
    open: Option<(usize, bool)>,
    next_index: usize,
    calls: usize,
    finish: Option<String>,
    ended: bool,
}

impl GeminiStreamDecoder {
    /// A decoder for a stream from provider `origin`.
    pub fn new(origin: &str, max_event_bytes: usize) -> Self {
        Self {
            sse: SseDecoder::new(max_event_bytes),
            state: DecodeState {
                origin: origin.to_owned(),
                ..DecodeState::default()
            },
        }
    }
}

/// A Google RPC status → the canonical kinds.
pub(crate) fn error_kind(status: &str) -> ErrorKind {
    match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => ErrorKind::InvalidRequest,
        "UNAUTHENTICATED" => ErrorKind::Authentication,
        "PERMISSION_DENIED" => ErrorKind::PermissionDenied,
        "NOT_FOUND" => ErrorKind::NotFound,
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited,
        "UNAVAILABLE" => ErrorKind::Overloaded,
        "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
        _ => ErrorKind::Upstream,
    }
}

impl DecodeState {
    fn close(&mut self, emit: &mut dyn FnMut(Event<'_>)) {
        if let Some((index, _)) = self.open.take() {
            emit(Event::BlockStop { index });
        }
    }

    fn open(&mut self, thought: bool, emit: &mut dyn FnMut(Event<'_>)) -> usize {
        if let Some((index, open)) = self.open
            && open == thought
        {
            return index;
        }
        self.close(emit);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, thought));
        emit(Event::BlockStart {
            index,
            kind: if thought {
                BlockKind::Thinking
            } else {
                BlockKind::Text
            },
        });
        index
    }

    /// A signature on a part that is not a thought: a thinking block of its
    /// own, right before the part.
    fn lone_signature(&mut self, signature: Signature, emit: &mut dyn FnMut(Event<'_>)) {
        self.close(emit);
        let index = self.next_index;
        self.next_index += 1;
        emit(Event::BlockStart {
            index,
            kind: BlockKind::Thinking,
        });
        emit(Event::Delta {
            index,
            delta: Delta::Signature(signature),
        });
        emit(Event::BlockStop { index });
    }

    fn on_chunk(&mut self, chunk: &Value, emit: &mut dyn FnMut(Event<'_>)) {
        if let Some(error) = chunk.get("error") {
            emit(Event::Error(StreamError {
                kind: error_kind(error["status"].as_str().unwrap_or_default()),
                message: error["message"].as_str().unwrap_or_default().to_owned(),
            }));
            self.ended = true;
            return;
        }
        if !self.started {
            self.started = true;
            emit(Event::Start {
                id: chunk["responseId"]
                    .as_str()
                    .map(|id| Cow::Owned(id.to_owned())),
                model: chunk["modelVersion"]
                    .as_str()
                    .map(|model| Cow::Owned(model.to_owned())),
            });
        }
        let candidate = &chunk["candidates"][0];
        for part in candidate["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            self.on_part(part, emit);
        }
        if let Some(reason) = candidate["finishReason"].as_str() {
            self.finish = Some(reason.to_owned());
        }
        if chunk["candidates"].as_array().is_none_or(Vec::is_empty)
            && chunk["promptFeedback"]["blockReason"].is_string()
        {
            self.finish = Some("SAFETY".to_owned());
        }
        if let Some(metadata) = chunk.get("usageMetadata") {
            emit(Event::Usage(usage_from_wire(metadata)));
        }
    }

    fn on_part(&mut self, part: &Value, emit: &mut dyn FnMut(Event<'_>)) {
        let signature = part["thoughtSignature"]
            .as_str()
            .map(|value| Signature::from_upstream(value, &self.origin));
        if part["thought"].as_bool() == Some(true) {
            let index = self.open(true, emit);
            if let Some(text) = part["text"].as_str().filter(|text| !text.is_empty()) {
                emit(Event::Delta {
                    index,
                    delta: Delta::Thinking(Cow::Owned(text.to_owned())),
                });
            }
            if let Some(signature) = signature {
                emit(Event::Delta {
                    index,
                    delta: Delta::Signature(signature),
                });
            }
            return;
        }
        if let Some(signature) = signature {
            self.lone_signature(signature, emit);
        }
        if let Some(text) = part["text"].as_str() {
            if !text.is_empty() {
                let index = self.open(false, emit);
                emit(Event::Delta {
                    index,
                    delta: Delta::Text(Cow::Owned(text.to_owned())),
                });
            }
        } else if let Some(call) = part.get("functionCall") {
            self.close(emit);
            let index = self.next_index;
            self.next_index += 1;
            let id = call["id"]
                .as_str()
                .map_or_else(|| format!("call_{}", self.calls), str::to_owned);
            self.calls += 1;
            let name = call["name"].as_str().unwrap_or_default().to_owned();
            emit(Event::BlockStart {
                index,
                kind: BlockKind::ToolUse {
                    id: Cow::Owned(id),
                    name: Cow::Owned(name),
                },
            });
            let args = if call["args"].is_null() {
                "{}".to_owned()
            } else {
                call["args"].to_string()
            };
            emit(Event::Delta {
                index,
                delta: Delta::ToolInput(Cow::Owned(args)),
            });
            emit(Event::BlockStop { index });
        }
    }

    fn end(&mut self, emit: &mut dyn FnMut(Event<'_>)) {
        self.close(emit);
        let reason = stop_from_wire(self.finish.as_deref().unwrap_or("STOP"), self.calls > 0);
        emit(Event::Stop {
            reason,
            sequence: None,
        });
        emit(Event::End);
        self.ended = true;
    }
}

impl StreamDecoder for GeminiStreamDecoder {
    fn feed(&mut self, chunk: &[u8], emit: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        let state = &mut self.state;
        feed_sse(&mut self.sse, chunk, |_, data| {
            let value: Value = serde_json::from_str(data).map_err(|error| {
                DecodeError(format!(
                    "the upstream sent a chunk that is not valid: {error}"
                ))
            })?;
            state.on_chunk(&value, emit);
            Ok(())
        })
    }

    fn finish(&mut self, emit: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        if self.state.ended {
            return Ok(());
        }
        if self.state.finish.is_some() {
            self.state.end(emit);
            return Ok(());
        }
        Err(DecodeError(
            "the upstream stream ended before a finish reason".to_owned(),
        ))
    }
}

/// How a streamed answer is framed for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `alt=sse`: `data:` events.
    Sse,
    /// No `alt`: one JSON array, written element by element.
    Array,
}

/// Canonical events → a Gemini stream for a client.
#[derive(Debug)]
pub struct GeminiStreamEncoder {
    meta: ReplyMeta,
    framing: Framing,
    written: usize,
    /// A signature for the next part written.
    signature: Option<String>,
    /// A thinking block is open: its signature goes on a thought part.
    thinking: bool,
    /// The tool call being collected: id, name, arguments.
    tool: Option<(String, String, String)>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
    finished: bool,
}

impl GeminiStreamEncoder {
    /// An encoder for the answer described by `meta`.
    pub fn new(meta: ReplyMeta, framing: Framing) -> Self {
        Self {
            meta,
            framing,
            written: 0,
            signature: None,
            thinking: false,
            tool: None,
            stop: None,
            usage: None,
            finished: false,
        }
    }

    fn write(&mut self, value: &Value, out: &mut Vec<u8>) {
        match self.framing {
            Framing::Sse => out.extend_from_slice(b"data: "),
            Framing::Array => {
                out.extend_from_slice(if self.written == 0 { b"[" } else { b",\r\n" });
            }
        }
        // Serializing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
        if self.framing == Framing::Sse {
            out.extend_from_slice(b"\r\n\r\n");
        }
        self.written += 1;
    }

    fn part(&mut self, mut part: Value, out: &mut Vec<u8>) {
        if let Some(signature) = self.signature.take() {
            part["thoughtSignature"] = signature.into();
        }
        let chunk = json!({
            "candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}],
            "modelVersion": self.meta.model,
            "responseId": self.meta.id,
        });
        self.write(&chunk, out);
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        self.finished = true;
        let mut part = json!({"text": ""});
        if let Some(signature) = self.signature.take() {
            part["thoughtSignature"] = signature.into();
        }
        let mut chunk = json!({
            "candidates": [{
                "content": {"role": "model", "parts": [part]},
                "finishReason": stop_to_wire(self.stop.unwrap_or(StopReason::EndTurn)),
                "index": 0,
            }],
            "modelVersion": self.meta.model,
            "responseId": self.meta.id,
        });
        if let Some(usage) = &self.usage {
            chunk["usageMetadata"] = usage_to_wire(usage);
        }
        self.write(&chunk, out);
        if self.framing == Framing::Array {
            out.push(b']');
        }
    }
}

impl StreamEncoder for GeminiStreamEncoder {
    fn encode(&mut self, event: &Event<'_>, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        match event {
            Event::Start { .. } => {}
            Event::Stop { reason, .. } => self.stop = Some(*reason),
            Event::BlockStart { kind, .. } => match kind {
                BlockKind::ToolUse { id, name } => {
                    self.tool = Some((id.to_string(), name.to_string(), String::new()));
                }
                BlockKind::RedactedThinking(signature) => {
                    self.signature = Some(signature.to_client().into_owned());
                }
                BlockKind::Thinking => self.thinking = true,
                BlockKind::Text => {}
            },
            Event::Delta { delta, .. } => match delta {
                Delta::Text(text) => self.part(json!({"text": text}), out),
                Delta::Thinking(text) => self.part(json!({"text": text, "thought": true}), out),
                Delta::Signature(signature) if self.thinking => {
                    // It signs the thought just written: close it with an
                    // empty thought part that carries the signature.
                    let part = json!({"text": "", "thought": true, "thoughtSignature": signature.to_client()});
                    self.part(part, out);
                }
                Delta::Signature(signature) => {
                    self.signature = Some(signature.to_client().into_owned());
                }
                Delta::ToolInput(more) => {
                    if let Some((_, _, arguments)) = &mut self.tool {
                        arguments.push_str(more);
                    }
                }
            },
            Event::BlockStop { .. } => {
                self.thinking = false;
                if let Some((id, name, arguments)) = self.tool.take() {
                    let call = crate::canonical::ToolUse {
                        id,
                        name,
                        input: arguments,
                    };
                    let args = call.input_object(&mut Vec::new());
                    self.part(
                        json!({"functionCall": {"id": call.id, "name": call.name, "args": args}}),
                        out,
                    );
                }
            }
            Event::Usage(usage) => self.usage = Some(*usage),
            Event::End => self.end(out),
            Event::Error(error) => {
                self.finished = true;
                let report = ErrorReport {
                    kind: error.kind,
                    status: 500,
                    message: &error.message,
                    code: None,
                    param: None,
                };
                let value = report.to_value(subgate_core::Dialect::Gemini);
                self.write(&value, out);
                if self.framing == Framing::Array {
                    out.push(b']');
                }
            }
        }
    }
}
