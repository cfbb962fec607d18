//! Chat Completions' SSE stream ↔ canonical events.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use subgate_core::Usage;

use super::wire::{WireUsage, stop_from_wire, stop_to_wire, usage_to_wire};
use crate::canonical::{BlockKind, Delta, Event, ReplyMeta, Signature, StopReason, StreamError};
use crate::codec::{DecodeError, StreamDecoder, StreamEncoder, feed_sse};
use crate::error::{ErrorKind, ErrorReport};
use crate::sse::SseDecoder;

/// Upstream Chat Completions SSE → canonical events.
#[derive(Debug)]
pub struct ChatStreamDecoder {
    sse: SseDecoder,
    state: DecodeState,
}

#[derive(Debug, Default)]
struct DecodeState {
    origin: String,
    started: bool,
    /// The block being written and what it is.
    open: Option<(usize, Open)>,
    next_index: usize,
    /// Upstream tool-call index → canonical block index.
    tools: Vec<(u64, usize)>,
    finish: Option<StopReason>,
    ended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    Tool(u64),
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Vec<ChunkChoice<'a>>,
    usage: Option<WireUsage>,
    error: Option<ChunkError>,
}

#[derive(Deserialize)]
struct ChunkError {
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: u64,
    #[serde(borrow)]
    delta: Option<ChunkDelta<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChunkDelta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Vec<ChunkToolCall<'a>>,
    /// OpenRouter's structured reasoning, which carries signatures.
    #[serde(default, borrow)]
    reasoning_details: Vec<ChunkDetail<'a>>,
}

#[derive(Deserialize)]
struct ChunkDetail<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChunkToolCall<'a> {
    #[serde(default)]
    index: u64,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    function: Option<ChunkFunction<'a>>,
}

#[derive(Deserialize)]
struct ChunkFunction<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<Cow<'a, str>>,
}

impl ChatStreamDecoder {
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

impl DecodeState {
    fn close(&mut self, emit: &mut dyn FnMut(Event<'_>)) {
        if let Some((index, _)) = self.open.take() {
            emit(Event::BlockStop { index });
        }
    }

    /// Opens a block of `kind` unless it is the one open; returns its index.
    fn open(&mut self, kind: Open, block: BlockKind<'_>, emit: &mut dyn FnMut(Event<'_>)) -> usize {
        if let Some((index, open)) = self.open
            && open == kind
        {
            return index;
        }
        self.close(emit);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, kind));
        emit(Event::BlockStart { index, kind: block });
        index
    }

    fn on_data(&mut self, data: &str, emit: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        if data == "[DONE]" {
            self.end(emit);
            return Ok(());
        }
        let chunk: Chunk<'_> = serde_json::from_str(data).map_err(|error| {
            DecodeError(format!(
                "the upstream sent a chunk that is not valid: {error}"
            ))
        })?;
        if let Some(error) = chunk.error {
            emit(Event::Error(StreamError {
                kind: match error.kind.as_deref() {
                    Some("rate_limit_exceeded" | "rate_limit_error") => ErrorKind::RateLimited,
                    _ => ErrorKind::Upstream,
                },
                message: error.message.unwrap_or_default(),
            }));
            self.ended = true;
            return Ok(());
        }
        if !self.started {
            self.started = true;
            emit(Event::Start {
                id: chunk.id,
                model: chunk.model,
            });
        }
        for choice in chunk.choices.into_iter().filter(|choice| choice.index == 0) {
            if let Some(delta) = choice.delta {
                self.on_delta(delta, emit);
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(stop_from_wire(&reason));
            }
        }
        if let Some(usage) = chunk.usage {
            emit(Event::Usage(Usage::from(usage)));
        }
        Ok(())
    }

    fn on_delta(&mut self, delta: ChunkDelta<'_>, emit: &mut dyn FnMut(Event<'_>)) {
        if delta.reasoning_details.is_empty() {
            if let Some(text) = delta
                .reasoning_content
                .or(delta.reasoning)
                .filter(|text| !text.is_empty())
            {
                let index = self.open(Open::Thinking, BlockKind::Thinking, emit);
                emit(Event::Delta {
                    index,
                    delta: Delta::Thinking(text),
                });
            }
        } else {
            // The same reasoning, with its signature: read only this form.
            for detail in delta.reasoning_details {
                self.on_detail(detail, emit);
            }
        }
        if let Some(text) = delta
            .content
            .or(delta.refusal)
            .filter(|text| !text.is_empty())
        {
            let index = self.open(Open::Text, BlockKind::Text, emit);
            emit(Event::Delta {
                index,
                delta: Delta::Text(text),
            });
        }
        for call in delta.tool_calls {
            let (name, arguments) = call
                .function
                .map_or((None, None), |function| (function.name, function.arguments));
            let index = match self
                .tools
                .iter()
                .find(|(upstream, _)| *upstream == call.index)
            {
                Some((_, index)) => *index,
                None => {
                    let id = call
                        .id
                        .unwrap_or_else(|| Cow::Owned(format!("call_{}", self.tools.len())));
                    let index = self.open(
                        Open::Tool(call.index),
                        BlockKind::ToolUse {
                            id,
                            name: name.unwrap_or_default(),
                        },
                        emit,
                    );
                    self.tools.push((call.index, index));
                    index
                }
            };
            if let Some(arguments) = arguments.filter(|arguments| !arguments.is_empty())
                && self.open.is_some_and(|(open, _)| open == index)
            {
                {
                    emit(Event::Delta {
                        index,
                        delta: Delta::ToolInput(arguments),
                    });
                }
                // Fragments of a call that is no longer the latest would
                // break block order; upstreams send calls one after another.
            }
        }
    }

    fn on_detail(&mut self, detail: ChunkDetail<'_>, emit: &mut dyn FnMut(Event<'_>)) {
        match detail.kind.as_ref() {
            "reasoning.encrypted" => {
                let data = detail.data.unwrap_or_default();
                let signature = Signature::from_upstream(data.as_ref(), &self.origin);
                self.close(emit);
                let index = self.next_index;
                self.next_index += 1;
                emit(Event::BlockStart {
                    index,
                    kind: BlockKind::RedactedThinking(signature),
                });
                emit(Event::BlockStop { index });
            }
            _ => {
                let index = self.open(Open::Thinking, BlockKind::Thinking, emit);
                if let Some(text) = detail.text.filter(|text| !text.is_empty()) {
                    emit(Event::Delta {
                        index,
                        delta: Delta::Thinking(text),
                    });
                }
                if let Some(signature) = detail.signature.filter(|signature| !signature.is_empty())
                {
                    emit(Event::Delta {
                        index,
                        delta: Delta::Signature(Signature::from_upstream(
                            signature.as_ref(),
                            &self.origin,
                        )),
                    });
                }
            }
        }
    }

    fn end(&mut self, emit: &mut dyn FnMut(Event<'_>)) {
        if self.ended {
            return;
        }
        self.close(emit);
        let mut reason = self.finish.unwrap_or(StopReason::EndTurn);
        if reason == StopReason::EndTurn && !self.tools.is_empty() {
            reason = StopReason::ToolUse;
        }
        emit(Event::Stop {
            reason,
            sequence: None,
        });
        emit(Event::End);
        self.ended = true;
    }
}

impl StreamDecoder for ChatStreamDecoder {
    fn feed(&mut self, chunk: &[u8], emit: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        let state = &mut self.state;
        feed_sse(&mut self.sse, chunk, |_, data| state.on_data(data, emit))
    }

    fn finish(&mut self, emit: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        if self.state.ended {
            return Ok(());
        }
        // Some servers close without `[DONE]`; a finish reason is enough.
        if self.state.finish.is_some() {
            self.state.end(emit);
            return Ok(());
        }
        Err(DecodeError(
            "the upstream stream ended before it was complete".to_owned(),
        ))
    }
}

/// Canonical events → Chat Completions SSE for a client.
#[derive(Debug)]
pub struct ChatStreamEncoder {
    id: String,
    meta: ReplyMeta,
    include_usage: bool,
    started: bool,
    /// Canonical block index → tool-call index, for tool blocks.
    tools: Vec<(usize, usize)>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
    finished: bool,
}

impl ChatStreamEncoder {
    /// An encoder for the answer described by `meta`; `include_usage` is the
    /// client's `stream_options.include_usage`.
    pub fn new(meta: ReplyMeta, include_usage: bool) -> Self {
        Self {
            id: format!("chatcmpl-{}", meta.id),
            meta,
            include_usage,
            started: false,
            tools: Vec::new(),
            stop: None,
            usage: None,
            finished: false,
        }
    }

    fn chunk<D: Serialize>(&self, delta: &D, finish_reason: Option<&str>, out: &mut Vec<u8>) {
        let chunk = OutChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.meta.created,
            model: &self.meta.model,
            system_fingerprint: None,
            choices: [OutChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage: if self.include_usage {
                UsageField::Null
            } else {
                UsageField::Absent
            },
        };
        write_data(out, &chunk);
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.finished = true;
        let reason = stop_to_wire(self.stop.unwrap_or(StopReason::EndTurn));
        self.chunk(&Empty {}, Some(reason), out);
        if self.include_usage {
            let usage = usage_to_wire(&self.usage.unwrap_or_default());
            let last = serde_json::json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.meta.created,
                "model": self.meta.model, "system_fingerprint": null, "choices": [], "usage": usage,
            });
            write_data(out, &last);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            self.chunk(
                &RoleDelta {
                    role: "assistant",
                    content: "",
                },
                None,
                out,
            );
        }
    }
}

fn write_data<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    out.extend_from_slice(b"data: ");
    // Serializing plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

#[derive(Serialize)]
struct OutChunk<'a, D: Serialize> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: Option<()>,
    choices: [OutChoice<'a, D>; 1],
    #[serde(skip_serializing_if = "UsageField::is_absent")]
    usage: UsageField,
}

#[derive(Serialize)]
struct OutChoice<'a, D: Serialize> {
    index: u32,
    delta: &'a D,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

/// `"usage": null` on every chunk when the client asked for usage, absent
/// otherwise.
#[derive(Clone, Copy)]
enum UsageField {
    Absent,
    Null,
}

impl UsageField {
    #[expect(
        clippy::trivially_copy_pass_by_ref,
        reason = "`skip_serializing_if` passes a reference"
    )]
    fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }
}

impl Serialize for UsageField {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_none()
    }
}

#[derive(Serialize)]
struct RoleDelta {
    role: &'static str,
    content: &'static str,
}

#[derive(Serialize)]
struct ContentDelta<'a> {
    content: &'a str,
}

#[derive(Serialize)]
struct ReasoningDelta<'a> {
    reasoning_content: &'a str,
}

#[derive(Serialize)]
struct DetailsDelta {
    reasoning_details: [serde_json::Value; 1],
}

#[derive(Serialize)]
struct ToolDelta<'a> {
    tool_calls: [ToolCallDelta<'a>; 1],
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[derive(Serialize)]
struct Empty {}

impl StreamEncoder for ChatStreamEncoder {
    fn encode(&mut self, event: &Event<'_>, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        match event {
            Event::Start { .. } => self.start(out),
            Event::BlockStart { index, kind } => {
                self.start(out);
                match kind {
                    BlockKind::ToolUse { id, name } => {
                        let call = self.tools.len();
                        self.tools.push((*index, call));
                        let delta = ToolDelta {
                            tool_calls: [ToolCallDelta {
                                index: call,
                                id: Some(id),
                                kind: Some("function"),
                                function: FunctionDelta {
                                    name: Some(name),
                                    arguments: "",
                                },
                            }],
                        };
                        self.chunk(&delta, None, out);
                    }
                    BlockKind::RedactedThinking(signature) => {
                        let detail = serde_json::json!({"type": "reasoning.encrypted", "data": signature.to_client(), "format": "unknown", "index": index});
                        self.chunk(
                            &DetailsDelta {
                                reasoning_details: [detail],
                            },
                            None,
                            out,
                        );
                    }
                    BlockKind::Text | BlockKind::Thinking => {}
                }
            }
            Event::Delta { index, delta } => match delta {
                Delta::Text(text) => self.chunk(&ContentDelta { content: text }, None, out),
                Delta::Thinking(text) => self.chunk(
                    &ReasoningDelta {
                        reasoning_content: text,
                    },
                    None,
                    out,
                ),
                Delta::Signature(signature) => {
                    let detail = signature_detail(signature, *index);
                    self.chunk(
                        &DetailsDelta {
                            reasoning_details: [detail],
                        },
                        None,
                        out,
                    );
                }
                Delta::ToolInput(arguments) => {
                    let Some(&(_, call)) = self.tools.iter().find(|(block, _)| block == index)
                    else {
                        return;
                    };
                    let delta = ToolDelta {
                        tool_calls: [ToolCallDelta {
                            index: call,
                            id: None,
                            kind: None,
                            function: FunctionDelta {
                                name: None,
                                arguments,
                            },
                        }],
                    };
                    self.chunk(&delta, None, out);
                }
            },
            Event::BlockStop { .. } => {}
            Event::Stop { reason, .. } => self.stop = Some(*reason),
            Event::Usage(usage) => self.usage = Some(*usage),
            Event::End => self.end(out),
            Event::Error(error) => {
                self.finished = true;
                out.extend_from_slice(&super::stream_error_event(&ErrorReport {
                    kind: error.kind,
                    status: 0,
                    message: &error.message,
                    code: None,
                    param: None,
                }));
            }
        }
    }
}

fn signature_detail(signature: &Signature, index: usize) -> serde_json::Value {
    serde_json::json!({"type": "reasoning.text", "text": "", "signature": signature.to_client(), "format": "unknown", "index": index})
}
