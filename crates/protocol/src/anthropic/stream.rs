//! Anthropic's SSE stream ↔ canonical events.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use subgate_core::Usage;

use super::response::{stop_from_wire, stop_to_wire};
use super::wire::WireUsage;
use super::{tool_id, usage_from_wire};
use crate::canonical::{BlockKind, Delta, Event, ReplyMeta, Signature, StopReason, StreamError};
use crate::codec::{DecodeError, StreamDecoder, StreamEncoder, feed_sse};
use crate::error::ErrorKind;
use crate::sse::{SseDecoder, write_event};

/// Upstream Anthropic SSE → canonical events.
#[derive(Debug)]
pub struct AnthropicStreamDecoder {
    sse: SseDecoder,
    state: DecodeState,
}

#[derive(Debug)]
struct DecodeState {
    origin: String,
    usage: WireUsage,
    /// The upstream block being read, and its canonical index (`None` for
    /// a block the other dialects cannot carry, which is skipped).
    current: Option<(usize, Option<usize>)>,
    next_index: usize,
    ended: bool,
}

impl AnthropicStreamDecoder {
    /// A decoder for a stream from provider `origin`.
    pub fn new(origin: &str, max_event_bytes: usize) -> Self {
        Self {
            sse: SseDecoder::new(max_event_bytes),
            state: DecodeState {
                origin: origin.to_owned(),
                usage: WireUsage::default(),
                current: None,
                next_index: 0,
                ended: false,
            },
        }
    }
}

#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct MessageStart<'a> {
    #[serde(borrow)]
    message: StartMessage<'a>,
}

#[derive(Deserialize)]
struct StartMessage<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct BlockStart<'a> {
    index: usize,
    #[serde(borrow)]
    content_block: StartBlock<'a>,
}

#[derive(Deserialize)]
struct StartBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BlockDelta<'a> {
    index: usize,
    #[serde(borrow)]
    delta: DeltaBody<'a>,
}

#[derive(Deserialize)]
struct DeltaBody<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow)]
    signature: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BlockStop {
    index: usize,
}

#[derive(Deserialize)]
struct MessageDelta<'a> {
    #[serde(borrow)]
    delta: MessageDeltaBody<'a>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct MessageDeltaBody<'a> {
    #[serde(borrow)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    stop_sequence: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorEvent {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

fn parse<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, DecodeError> {
    serde_json::from_str(data).map_err(|error| {
        DecodeError(format!(
            "the upstream sent an event that is not valid: {error}"
        ))
    })
}

/// Anthropic's error types → the canonical kinds.
pub(crate) fn error_kind(kind: &str) -> ErrorKind {
    match kind {
        "invalid_request_error" => ErrorKind::InvalidRequest,
        "authentication_error" => ErrorKind::Authentication,
        "permission_error" => ErrorKind::PermissionDenied,
        "not_found_error" => ErrorKind::NotFound,
        "request_too_large" => ErrorKind::RequestTooLarge,
        "rate_limit_error" => ErrorKind::RateLimited,
        "overloaded_error" => ErrorKind::Overloaded,
        "timeout_error" => ErrorKind::Timeout,
        _ => ErrorKind::Upstream,
    }
}

fn merge_usage(into: &mut WireUsage, from: &WireUsage) {
    if from.input_tokens.is_some() {
        into.input_tokens = from.input_tokens;
    }
    if from.output_tokens.is_some() {
        into.output_tokens = from.output_tokens;
    }
    if from.cache_read_input_tokens.is_some() {
        into.cache_read_input_tokens = from.cache_read_input_tokens;
    }
    if from.cache_creation_input_tokens.is_some() {
        into.cache_creation_input_tokens = from.cache_creation_input_tokens;
    }
}

impl DecodeState {
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
            "message_start" => {
                let start: MessageStart<'_> = parse(data)?;
                emit(Event::Start {
                    id: start.message.id,
                    model: start.message.model,
                });
                if let Some(usage) = start.message.usage {
                    merge_usage(&mut self.usage, &usage);
                    emit(Event::Usage(usage_from_wire(&self.usage)));
                }
            }
            "content_block_start" => self.on_block_start(parse(data)?, emit),
            "content_block_delta" => self.on_block_delta(parse(data)?, emit),
            "content_block_stop" => {
                let stop: BlockStop = parse(data)?;
                if let Some(index) = self.index_of(stop.index) {
                    emit(Event::BlockStop { index });
                }
                self.current = None;
            }
            "message_delta" => {
                let delta: MessageDelta<'_> = parse(data)?;
                if let Some(usage) = delta.usage {
                    merge_usage(&mut self.usage, &usage);
                    emit(Event::Usage(usage_from_wire(&self.usage)));
                }
                if let Some(reason) = delta.delta.stop_reason {
                    emit(Event::Stop {
                        reason: stop_from_wire(Some(&reason)),
                        sequence: delta.delta.stop_sequence,
                    });
                }
            }
            "message_stop" => {
                self.ended = true;
                emit(Event::End);
            }
            "error" => {
                let error: ErrorEvent = parse(data)?;
                emit(Event::Error(StreamError {
                    kind: error_kind(error.error.kind.as_deref().unwrap_or_default()),
                    message: error.error.message.unwrap_or_default(),
                }));
                self.ended = true;
            }
            // `ping` and event types added after this was written.
            _ => {}
        }
        Ok(())
    }

    fn on_block_start(&mut self, start: BlockStart<'_>, emit: &mut dyn FnMut(Event<'_>)) {
        let block = start.content_block;
        let kind = match block.kind.as_ref() {
            "text" => Some(BlockKind::Text),
            "thinking" => Some(BlockKind::Thinking),
            "redacted_thinking" => Some(BlockKind::RedactedThinking(Signature::from_upstream(
                block.data.as_deref().unwrap_or_default(),
                &self.origin,
            ))),
            "tool_use" => Some(BlockKind::ToolUse {
                id: block.id.clone().unwrap_or_default(),
                name: block.name.clone().unwrap_or_default(),
            }),
            // Server tool calls and their results stay with Anthropic.
            _ => None,
        };
        let Some(kind) = kind else {
            self.current = Some((start.index, None));
            return;
        };
        let index = self.next_index;
        self.next_index += 1;
        self.current = Some((start.index, Some(index)));
        emit(Event::BlockStart { index, kind });
        let initial = match block.kind.as_ref() {
            "text" => block.text.filter(|text| !text.is_empty()).map(Delta::Text),
            "thinking" => block
                .thinking
                .filter(|text| !text.is_empty())
                .map(Delta::Thinking),
            "tool_use" => block
                .input
                .map(RawValue::get)
                .filter(|input| !matches!(input.trim(), "{}" | ""))
                .map(|input| Delta::ToolInput(Cow::Borrowed(input))),
            _ => None,
        };
        if let Some(delta) = initial {
            emit(Event::Delta { index, delta });
        }
        if let Some(signature) = block.signature.filter(|signature| !signature.is_empty()) {
            emit(Event::Delta {
                index,
                delta: Delta::Signature(Signature::from_upstream(signature.as_ref(), &self.origin)),
            });
        }
    }

    fn on_block_delta(&mut self, delta: BlockDelta<'_>, emit: &mut dyn FnMut(Event<'_>)) {
        let Some(index) = self.index_of(delta.index) else {
            return;
        };
        let body = delta.delta;
        let delta = match body.kind.as_ref() {
            "text_delta" => body.text.map(Delta::Text),
            "input_json_delta" => body
                .partial_json
                .filter(|json| !json.is_empty())
                .map(Delta::ToolInput),
            "thinking_delta" => body.thinking.map(Delta::Thinking),
            "signature_delta" => body.signature.map(|signature| {
                Delta::Signature(Signature::from_upstream(signature.as_ref(), &self.origin))
            }),
            // citations_delta and future kinds.
            _ => None,
        };
        if let Some(delta) = delta {
            emit(Event::Delta { index, delta });
        }
    }

    fn index_of(&self, upstream: usize) -> Option<usize> {
        match self.current {
            Some((current, ours)) if current == upstream => ours,
            _ => None,
        }
    }
}

impl StreamDecoder for AnthropicStreamDecoder {
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
                "the upstream stream ended before it was complete".to_owned(),
            ))
        }
    }
}

/// Canonical events → Anthropic SSE for a client.
#[derive(Debug)]
pub struct AnthropicStreamEncoder {
    meta: ReplyMeta,
    started: bool,
    usage: Usage,
    stop: Option<(StopReason, Option<String>)>,
    finished: bool,
}

impl AnthropicStreamEncoder {
    /// An encoder for the answer described by `meta`.
    pub fn new(meta: ReplyMeta) -> Self {
        Self {
            meta,
            started: false,
            usage: Usage::default(),
            stop: None,
            finished: false,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let mut usage = super::usage_to_wire(&self.usage);
        usage["output_tokens"] = 0.into();
        let start = serde_json::json!({
            "type": "message_start",
            "message": {
                "id": format!("msg_{}", self.meta.id),
                "type": "message",
                "role": "assistant",
                "model": self.meta.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": usage,
            }
        });
        write_json_event(out, "message_start", &start);
    }
}

#[derive(Serialize)]
struct OutBlockStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    content_block: OutBlock<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutBlock<'a> {
    Text {
        text: &'static str,
    },
    Thinking {
        thinking: &'static str,
        signature: &'static str,
    },
    RedactedThinking {
        data: Cow<'a, str>,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: &'a str,
        input: Empty,
    },
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct OutBlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    delta: OutDelta<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[expect(
    clippy::enum_variant_names,
    reason = "the names are Anthropic's delta types"
)]
enum OutDelta<'a> {
    TextDelta { text: &'a str },
    ThinkingDelta { thinking: &'a str },
    SignatureDelta { signature: Cow<'a, str> },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct OutBlockStop {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
}

fn write_json_event<T: Serialize>(out: &mut Vec<u8>, name: &str, value: &T) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Serializing plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

impl StreamEncoder for AnthropicStreamEncoder {
    fn encode(&mut self, event: &Event<'_>, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        match event {
            Event::Start { .. } => self.start(out),
            Event::BlockStart { index, kind } => {
                self.start(out);
                let content_block = match kind {
                    BlockKind::Text => OutBlock::Text { text: "" },
                    BlockKind::Thinking => OutBlock::Thinking {
                        thinking: "",
                        signature: "",
                    },
                    BlockKind::RedactedThinking(signature) => OutBlock::RedactedThinking {
                        data: signature.to_client(),
                    },
                    BlockKind::ToolUse { id, name } => OutBlock::ToolUse {
                        id: tool_id(id),
                        name,
                        input: Empty {},
                    },
                };
                write_json_event(
                    out,
                    "content_block_start",
                    &OutBlockStart {
                        kind: "content_block_start",
                        index: *index,
                        content_block,
                    },
                );
            }
            Event::Delta { index, delta } => {
                let delta = match delta {
                    Delta::Text(text) => OutDelta::TextDelta { text },
                    Delta::Thinking(text) => OutDelta::ThinkingDelta { thinking: text },
                    Delta::Signature(signature) => OutDelta::SignatureDelta {
                        signature: signature.to_client(),
                    },
                    Delta::ToolInput(json) => OutDelta::InputJsonDelta { partial_json: json },
                };
                write_json_event(
                    out,
                    "content_block_delta",
                    &OutBlockDelta {
                        kind: "content_block_delta",
                        index: *index,
                        delta,
                    },
                );
            }
            Event::BlockStop { index } => write_json_event(
                out,
                "content_block_stop",
                &OutBlockStop {
                    kind: "content_block_stop",
                    index: *index,
                },
            ),
            Event::Stop { reason, sequence } => {
                self.stop = Some((*reason, sequence.as_ref().map(ToString::to_string)));
            }
            Event::Usage(usage) => self.usage = *usage,
            Event::End => {
                self.start(out);
                self.finished = true;
                let (reason, sequence) = self.stop.take().unwrap_or((StopReason::EndTurn, None));
                let delta = serde_json::json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_to_wire(reason), "stop_sequence": sequence},
                    "usage": super::usage_to_wire(&self.usage),
                });
                write_json_event(out, "message_delta", &delta);
                write_event(out, Some("message_stop"), r#"{"type":"message_stop"}"#);
            }
            Event::Error(error) => {
                self.finished = true;
                let body = crate::error::ErrorReport {
                    kind: error.kind,
                    status: 0,
                    message: &error.message,
                    code: None,
                    param: None,
                }
                .to_value(subgate_core::Dialect::Anthropic);
                write_json_event(out, "error", &body);
            }
        }
    }
}
