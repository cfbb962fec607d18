//! The Responses SSE stream ↔ canonical events.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subgate_core::Usage;

use super::pack_reasoning;
use super::response::{Incomplete, block_to_item};
use super::wire::{ResponseObject, WireUsage, status_to_wire, stop_from_wire, usage_to_wire};
use crate::canonical::{
    Block, BlockKind, Delta, Event, ReplyMeta, Signature, StopReason, StreamError, Text, Thinking,
    ToolUse,
};
use crate::codec::{DecodeError, StreamDecoder, StreamEncoder, feed_sse};
use crate::error::ErrorKind;
use crate::sse::SseDecoder;

/// Upstream Responses SSE → canonical events.
#[derive(Debug)]
pub struct ResponsesStreamDecoder {
    sse: SseDecoder,
    state: DecodeState,
}

#[derive(Debug, Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent facts about the stream so far"
)]
struct DecodeState {
    origin: String,
    started: bool,
    /// The open block: its canonical index, the upstream output index, and
    /// what it is.
    open: Option<(usize, u64, OpenKind)>,
    next_index: usize,
    called: bool,
    refused: bool,
    ended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenKind {
    Text,
    /// Reasoning; `true` once summary text has been written.
    Thinking(bool),
    /// A function call; `true` once arguments have been written.
    Tool(bool),
}

#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Envelope {
    response: EnvelopeResponse,
}

#[derive(Deserialize)]
struct EnvelopeResponse {
    id: Option<String>,
    model: Option<String>,
    status: Option<String>,
    incomplete_details: Option<Incomplete>,
    error: Option<WireError>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireError {
    code: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct ItemEvent {
    output_index: u64,
    item: Value,
}

#[derive(Deserialize)]
struct TextDelta<'a> {
    output_index: u64,
    #[serde(borrow)]
    delta: Cow<'a, str>,
    #[serde(default)]
    summary_index: u64,
}

#[derive(Deserialize)]
struct ArgumentsDone<'a> {
    output_index: u64,
    #[serde(borrow)]
    arguments: Cow<'a, str>,
}

#[derive(Deserialize)]
struct StandaloneError {
    code: Option<String>,
    message: Option<String>,
}

impl ResponsesStreamDecoder {
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

fn parse<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, DecodeError> {
    serde_json::from_str(data).map_err(|error| {
        DecodeError(format!(
            "the upstream sent an event that is not valid: {error}"
        ))
    })
}

impl DecodeState {
    fn close(&mut self, emit: &mut dyn FnMut(Event<'_>)) {
        if let Some((index, _, _)) = self.open.take() {
            emit(Event::BlockStop { index });
        }
    }

    fn begin(
        &mut self,
        output_index: u64,
        kind: OpenKind,
        block: BlockKind<'_>,
        emit: &mut dyn FnMut(Event<'_>),
    ) -> usize {
        self.close(emit);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, output_index, kind));
        emit(Event::BlockStart { index, kind: block });
        index
    }

    /// The open block for `output_index`, opening a text block when a
    /// message's text starts.
    fn text_block(&mut self, output_index: u64, emit: &mut dyn FnMut(Event<'_>)) -> usize {
        match self.open {
            Some((index, open, OpenKind::Text)) if open == output_index => index,
            _ => self.begin(output_index, OpenKind::Text, BlockKind::Text, emit),
        }
    }

    fn on_event(
        &mut self,
        name: Option<&str>,
        data: &str,
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let kind: Cow<'_, str> = match name {
            Some(name) => Cow::Borrowed(name),
            None => parse::<TypeOnly<'_>>(data)?.kind,
        };
        match kind.as_ref() {
            "response.created" | "response.in_progress" if !self.started => {
                self.started = true;
                let envelope: Envelope = parse(data)?;
                emit(Event::Start {
                    id: envelope.response.id.map(Cow::Owned),
                    model: envelope.response.model.map(Cow::Owned),
                });
            }
            "response.output_item.added" => self.item_added(&parse(data)?, emit),
            "response.output_text.delta" => self.text_delta(parse(data)?, emit),
            "response.refusal.delta" => {
                self.refused = true;
                self.text_delta(parse(data)?, emit);
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                self.reasoning_delta(parse(data)?, emit);
            }
            "response.function_call_arguments.delta" => {
                let delta: TextDelta<'_> = parse(data)?;
                if let Some((index, open, OpenKind::Tool(_))) = self.open
                    && open == delta.output_index
                {
                    self.open = Some((index, open, OpenKind::Tool(true)));
                    if !delta.delta.is_empty() {
                        emit(Event::Delta {
                            index,
                            delta: Delta::ToolInput(delta.delta),
                        });
                    }
                }
            }
            "response.function_call_arguments.done" => {
                let done: ArgumentsDone<'_> = parse(data)?;
                // Arguments that were never streamed arrive whole here.
                if let Some((index, open, OpenKind::Tool(false))) = self.open
                    && open == done.output_index
                {
                    self.open = Some((index, open, OpenKind::Tool(true)));
                    emit(Event::Delta {
                        index,
                        delta: Delta::ToolInput(done.arguments),
                    });
                }
            }
            "response.output_item.done" => self.item_done(&parse(data)?, emit),
            "response.completed" | "response.incomplete" | "response.failed" => {
                let envelope: Envelope = parse(data)?;
                self.finish(envelope.response, emit);
            }
            "error" => {
                let error: StandaloneError = parse(data)?;
                emit(Event::Error(StreamError {
                    kind: error_kind(error.code.as_deref()),
                    message: error.message.unwrap_or_default(),
                }));
                self.ended = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn item_added(&mut self, event: &ItemEvent, emit: &mut dyn FnMut(Event<'_>)) {
        match event.item["type"].as_str() {
            Some("function_call") => {
                self.called = true;
                let id = event.item["call_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let name = event.item["name"].as_str().unwrap_or_default().to_owned();
                let block = BlockKind::ToolUse {
                    id: Cow::Owned(id),
                    name: Cow::Owned(name),
                };
                self.begin(event.output_index, OpenKind::Tool(false), block, emit);
            }
            Some("reasoning") => {
                self.begin(
                    event.output_index,
                    OpenKind::Thinking(false),
                    BlockKind::Thinking,
                    emit,
                );
            }
            // Messages open a block with their first text.
            _ => self.close(emit),
        }
    }

    fn text_delta(&mut self, delta: TextDelta<'_>, emit: &mut dyn FnMut(Event<'_>)) {
        let index = self.text_block(delta.output_index, emit);
        emit(Event::Delta {
            index,
            delta: Delta::Text(delta.delta),
        });
    }

    fn reasoning_delta(&mut self, delta: TextDelta<'_>, emit: &mut dyn FnMut(Event<'_>)) {
        let Some((index, open, OpenKind::Thinking(written))) = self.open else {
            return;
        };
        if open != delta.output_index {
            return;
        }
        if written && delta.summary_index > 0 {
            // A new summary part: keep the parts apart.
            emit(Event::Delta {
                index,
                delta: Delta::Thinking(Cow::Borrowed("\n\n")),
            });
        }
        self.open = Some((index, open, OpenKind::Thinking(true)));
        emit(Event::Delta {
            index,
            delta: Delta::Thinking(delta.delta),
        });
    }

    fn item_done(&mut self, event: &ItemEvent, emit: &mut dyn FnMut(Event<'_>)) {
        if let Some((index, open, _)) = self.open
            && open == event.output_index
            && event.item["type"] == "reasoning"
            && let Some(encrypted) = event.item["encrypted_content"].as_str()
        {
            let value = pack_reasoning(event.item["id"].as_str().unwrap_or("rs_0"), encrypted);
            let signature = Signature::from_upstream(value, &self.origin);
            emit(Event::Delta {
                index,
                delta: Delta::Signature(signature),
            });
        }
        if self
            .open
            .is_some_and(|(_, open, _)| open == event.output_index)
        {
            self.close(emit);
        }
    }

    fn finish(&mut self, response: EnvelopeResponse, emit: &mut dyn FnMut(Event<'_>)) {
        self.close(emit);
        if let Some(usage) = &response.usage {
            emit(Event::Usage(Usage::from(usage)));
        }
        self.ended = true;
        if response.status.as_deref() == Some("failed") {
            let error = response.error.unwrap_or(WireError {
                code: None,
                message: None,
            });
            emit(Event::Error(StreamError {
                kind: error_kind(error.code.as_deref()),
                message: error
                    .message
                    .unwrap_or_else(|| "the upstream failed the response".to_owned()),
            }));
            return;
        }
        let mut reason = stop_from_wire(
            response.status.as_deref(),
            response
                .incomplete_details
                .as_ref()
                .and_then(|details| details.reason.as_deref()),
            self.called,
        );
        if self.refused {
            reason = StopReason::ContentFilter;
        }
        emit(Event::Stop {
            reason,
            sequence: None,
        });
        emit(Event::End);
    }
}

fn error_kind(code: Option<&str>) -> ErrorKind {
    match code {
        Some("rate_limit_exceeded" | "usage_limit_reached" | "insufficient_quota") => {
            ErrorKind::RateLimited
        }
        Some("server_is_overloaded" | "server_overloaded") => ErrorKind::Overloaded,
        Some("invalid_prompt" | "context_length_exceeded") => ErrorKind::InvalidRequest,
        _ => ErrorKind::Upstream,
    }
}

impl StreamDecoder for ResponsesStreamDecoder {
    fn feed(&mut self, chunk: &[u8], emit: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        let state = &mut self.state;
        feed_sse(&mut self.sse, chunk, |event, data| {
            state.on_event(event, data, emit)
        })
    }

    fn finish(&mut self, _emit: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        if self.state.ended {
            Ok(())
        } else {
            Err(DecodeError(
                "the upstream stream ended before its terminal event".to_owned(),
            ))
        }
    }
}

/// Canonical events → Responses SSE for a client.
#[derive(Debug)]
pub struct ResponsesStreamEncoder {
    meta: ReplyMeta,
    response_id: String,
    sequence: u64,
    started: bool,
    finished: bool,
    /// The item being written.
    current: Option<Current>,
    /// Items done, for the final response object.
    output: Vec<Value>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
}

/// The output item being written.
#[derive(Debug)]
struct Current {
    output_index: usize,
    id: String,
    /// What has been written so far.
    block: Block,
    /// A reasoning item whose summary part was announced.
    summary_open: bool,
}

#[derive(Serialize)]
struct Sequenced<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    sequence_number: u64,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
struct OutTextDelta<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: u32,
    delta: &'a str,
    logprobs: [(); 0],
}

#[derive(Serialize)]
struct OutSummaryDelta<'a> {
    item_id: &'a str,
    output_index: usize,
    summary_index: u32,
    delta: &'a str,
}

#[derive(Serialize)]
struct OutArgumentsDelta<'a> {
    item_id: &'a str,
    output_index: usize,
    delta: &'a str,
}

impl ResponsesStreamEncoder {
    /// An encoder for the answer described by `meta`.
    pub fn new(meta: ReplyMeta) -> Self {
        Self {
            response_id: format!("resp_{}", meta.id),
            meta,
            sequence: 0,
            started: false,
            finished: false,
            current: None,
            output: Vec::new(),
            stop: None,
            usage: None,
        }
    }

    fn write<T: Serialize>(&mut self, out: &mut Vec<u8>, kind: &str, body: T) {
        let event = Sequenced {
            kind,
            sequence_number: self.sequence,
            body,
        };
        self.sequence += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // Serializing plain structs into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &event);
        out.extend_from_slice(b"\n\n");
    }

    fn response(&self, status: &str, incomplete: Value, error: Value) -> Value {
        ResponseObject {
            id: &self.response_id,
            created: self.meta.created,
            model: &self.meta.model,
            status,
            output: Value::Array(self.output.clone()),
            usage: self.usage.as_ref().map_or(Value::Null, usage_to_wire),
            incomplete,
            error,
        }
        .into_value()
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response("in_progress", Value::Null, Value::Null);
        self.write(out, "response.created", json!({"response": response}));
        let response = self.response("in_progress", Value::Null, Value::Null);
        self.write(out, "response.in_progress", json!({"response": response}));
    }

    fn begin(&mut self, kind: &BlockKind<'_>, out: &mut Vec<u8>) {
        let output_index = self.output.len();
        let base = &self.meta.id;
        let (id, block, added) = match kind {
            BlockKind::Text => {
                let id = format!("msg_{base}_{output_index}");
                let item = json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []});
                (id, Block::Text(Text::default()), item)
            }
            BlockKind::Thinking | BlockKind::RedactedThinking(_) => {
                let id = format!("rs_{base}_{output_index}");
                let item = json!({"type": "reasoning", "id": id, "summary": []});
                let signature = match kind {
                    BlockKind::RedactedThinking(signature) => Some(signature.clone()),
                    _ => None,
                };
                (
                    id,
                    Block::Thinking(Thinking {
                        text: String::new(),
                        signature,
                    }),
                    item,
                )
            }
            BlockKind::ToolUse { id: call_id, name } => {
                let id = format!("fc_{base}_{output_index}");
                let item = json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": "", "status": "in_progress"});
                let block = Block::ToolUse(ToolUse {
                    id: call_id.to_string(),
                    name: name.to_string(),
                    input: String::new(),
                });
                (id, block, item)
            }
        };
        self.write(
            out,
            "response.output_item.added",
            json!({"output_index": output_index, "item": added}),
        );
        match kind {
            BlockKind::Text => self.write(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
            ),
            BlockKind::Thinking => self.write(
                out,
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": output_index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
            ),
            BlockKind::RedactedThinking(_) | BlockKind::ToolUse { .. } => {}
        }
        self.current = Some(Current {
            output_index,
            id,
            block,
            summary_open: matches!(kind, BlockKind::Thinking),
        });
    }

    fn delta(&mut self, delta: &Delta<'_>, out: &mut Vec<u8>) {
        let Some(Current {
            output_index,
            id,
            block,
            ..
        }) = &mut self.current
        else {
            return;
        };
        let (output_index, id) = (*output_index, id.clone());
        match (block, delta) {
            (Block::Text(text), Delta::Text(more)) => {
                text.text.push_str(more);
                self.write(
                    out,
                    "response.output_text.delta",
                    OutTextDelta {
                        item_id: &id,
                        output_index,
                        content_index: 0,
                        delta: more,
                        logprobs: [],
                    },
                );
            }
            (Block::Thinking(thinking), Delta::Thinking(more)) => {
                thinking.text.push_str(more);
                self.write(
                    out,
                    "response.reasoning_summary_text.delta",
                    OutSummaryDelta {
                        item_id: &id,
                        output_index,
                        summary_index: 0,
                        delta: more,
                    },
                );
            }
            (Block::Thinking(thinking), Delta::Signature(signature)) => {
                thinking.signature = Some(signature.clone());
            }
            (Block::ToolUse(tool), Delta::ToolInput(more)) => {
                tool.input.push_str(more);
                self.write(
                    out,
                    "response.function_call_arguments.delta",
                    OutArgumentsDelta {
                        item_id: &id,
                        output_index,
                        delta: more,
                    },
                );
            }
            _ => {}
        }
    }

    fn end_block(&mut self, out: &mut Vec<u8>) {
        let Some(Current {
            output_index,
            id,
            block,
            summary_open,
        }) = self.current.take()
        else {
            return;
        };
        match &block {
            Block::Text(text) => {
                self.write(out, "response.output_text.done", json!({"item_id": id, "output_index": output_index, "content_index": 0, "text": text.text, "logprobs": []}));
                let part = json!({"type": "output_text", "text": text.text, "annotations": []});
                self.write(out, "response.content_part.done", json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": part}));
            }
            Block::Thinking(thinking) if summary_open => {
                self.write(out, "response.reasoning_summary_text.done", json!({"item_id": id, "output_index": output_index, "summary_index": 0, "text": thinking.text}));
                let part = json!({"type": "summary_text", "text": thinking.text});
                self.write(out, "response.reasoning_summary_part.done", json!({"item_id": id, "output_index": output_index, "summary_index": 0, "part": part}));
            }
            Block::ToolUse(tool) => {
                self.write(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": output_index, "arguments": tool.input}),
                );
            }
            _ => {}
        }
        let item = block_to_item(&block, &self.meta.id, output_index).unwrap_or(Value::Null);
        self.write(
            out,
            "response.output_item.done",
            json!({"output_index": output_index, "item": item}),
        );
        self.output.push(item);
    }
}

impl StreamEncoder for ResponsesStreamEncoder {
    fn encode(&mut self, event: &Event<'_>, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        match event {
            Event::Start { .. } => self.start(out),
            Event::BlockStart { kind, .. } => {
                self.start(out);
                self.end_block(out);
                self.begin(kind, out);
            }
            Event::Delta { delta, .. } => self.delta(delta, out),
            Event::BlockStop { .. } => self.end_block(out),
            Event::Stop { reason, .. } => self.stop = Some(*reason),
            Event::Usage(usage) => self.usage = Some(*usage),
            Event::End => {
                self.start(out);
                self.end_block(out);
                self.finished = true;
                let (status, incomplete) = status_to_wire(self.stop.unwrap_or(StopReason::EndTurn));
                let kind = if status == "completed" {
                    "response.completed"
                } else {
                    "response.incomplete"
                };
                let response = self.response(status, incomplete, Value::Null);
                self.write(out, kind, json!({"response": response}));
            }
            Event::Error(error) => {
                self.start(out);
                self.finished = true;
                let code = match error.kind {
                    ErrorKind::RateLimited => "rate_limit_exceeded",
                    ErrorKind::Overloaded => "server_is_overloaded",
                    ErrorKind::InvalidRequest => "invalid_prompt",
                    _ => "server_error",
                };
                let response = self.response(
                    "failed",
                    Value::Null,
                    json!({"code": code, "message": error.message}),
                );
                self.write(out, "response.failed", json!({"response": response}));
            }
        }
    }
}
