//! Kiro's event stream → canonical events.
//!
//! The body is an AWS binary event stream (§5.4) whose messages carry JSON
//! events, bare or wrapped under their event type. Text comes in
//! `assistantResponseEvent`s; tool calls come in `toolUseEvent` fragments,
//! collected per call and emitted whole when the call stops; the closing
//! `meteringEvent`, `contextUsageEvent` and `metadataEvent` say the answer
//! is complete and what it cost. A stream that ends with text but without
//! any of them was cut by Kiro (§5.7): it stops with `MaxTokens` and the
//! decoder reports a [`Truncation`].
//!
//! Nothing is buffered beyond one event-stream message, the previous text
//! chunk, the arguments of the tool calls not yet complete (and of those
//! emitted, to recognise a repeat) and what the thinking-tag parser holds
//! back while a tag may be starting.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use subgate_core::Usage;

use super::{Fingerprinter, Truncation};
use crate::aws_eventstream::{Decoder, Message};
use crate::canonical::{BlockKind, Delta, Event, Signature, StopReason, StreamError};
use crate::codec::{DecodeError, StreamDecoder};
use crate::error::ErrorKind;
use crate::thinking_tags::{Piece, ThinkingTags};

/// How a Kiro stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Split a leading `<thinking>…</thinking>` off the text as thinking
    /// (set when the request asked for it with tags).
    pub thinking_tags: bool,
    /// The model's context size, for the input estimate from
    /// `contextUsageEvent`.
    pub max_input_tokens: u64,
    /// The largest event-stream message accepted.
    pub max_event_bytes: usize,
}

/// Upstream Kiro event stream → canonical events.
pub struct KiroStreamDecoder {
    frames: Decoder,
    state: State,
}

impl fmt::Debug for KiroStreamDecoder {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("KiroStreamDecoder")
            .field("frames", &self.frames)
            .field("state", &self.state)
            .finish()
    }
}

/// How far the stream got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No message yet.
    Empty,
    /// Messages arrived, none worth a `Start` yet.
    Receiving,
    /// `Start` was emitted.
    Started,
    /// `End` or `Error` was emitted: nothing more is.
    Ended,
}

/// What kind of block is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
}

/// A tool call whose arguments are still arriving.
#[derive(Debug)]
struct PendingTool {
    id: String,
    name: String,
    /// The arguments of the sequence being received.
    current: String,
    /// The longest arguments of an earlier sequence for the same id.
    best: String,
}

impl PendingTool {
    /// Kiro sometimes sends a call's fragments twice: a fragment that opens
    /// an object after arguments that are already complete starts over.
    fn push_fragment(&mut self, fragment: &str) {
        if fragment.is_empty() {
            return;
        }
        if !self.current.is_empty()
            && fragment.trim_start().starts_with('{')
            && is_json(&self.current)
        {
            self.restart();
        }
        self.current.push_str(fragment);
    }

    /// Arguments given whole.
    fn push_whole(&mut self, arguments: &str) {
        if !self.current.is_empty() {
            self.restart();
        }
        self.current.push_str(arguments);
    }

    fn restart(&mut self) {
        let previous = std::mem::take(&mut self.current);
        if previous.len() > self.best.len() {
            self.best = previous;
        }
    }

    /// The longest arguments received.
    fn arguments(self) -> String {
        if self.best.len() > self.current.len() {
            self.best
        } else {
            self.current
        }
    }
}

/// Token counts from `metadataEvent`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenUsage {
    uncached_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_write_input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

struct State {
    origin: String,
    model: String,
    options: DecodeOptions,
    hook: Option<Box<dyn FnMut(Truncation) + Send>>,
    phase: Phase,
    /// Why the stream could not be read, once it could not.
    failed: Option<String>,
    open: Option<(usize, Open)>,
    next_index: usize,
    tags: Option<ThinkingTags>,
    /// The previous `assistantResponseEvent`'s content.
    last_content: Option<String>,
    pending: Vec<PendingTool>,
    emitted_ids: HashSet<String>,
    emitted_calls: HashSet<(String, String)>,
    tool_calls: usize,
    /// A tool call's arguments were cut.
    tool_cut: bool,
    /// A metering, context-usage or metadata event arrived.
    closing: bool,
    context_percent: Option<f64>,
    tokens: Option<TokenUsage>,
    /// The text the client saw.
    text: Fingerprinter,
    output_chars: u64,
    thinking_chars: u64,
}

impl fmt::Debug for State {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("State")
            .field("origin", &self.origin)
            .field("model", &self.model)
            .field("options", &self.options)
            .field("phase", &self.phase)
            .field("open", &self.open)
            .field("pending", &self.pending)
            .field("tool_calls", &self.tool_calls)
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl KiroStreamDecoder {
    /// A decoder for a stream from provider `origin` (signatures are tagged
    /// with it) answering with `model`.
    pub fn new(origin: &str, model: &str, options: DecodeOptions) -> Self {
        Self {
            frames: Decoder::new(options.max_event_bytes),
            state: State {
                origin: origin.to_owned(),
                model: model.to_owned(),
                options,
                hook: None,
                phase: Phase::Empty,
                failed: None,
                open: None,
                next_index: 0,
                tags: options.thinking_tags.then(ThinkingTags::new),
                last_content: None,
                pending: Vec::new(),
                emitted_ids: HashSet::new(),
                emitted_calls: HashSet::new(),
                tool_calls: 0,
                tool_cut: false,
                closing: false,
                context_percent: None,
                tokens: None,
                text: Fingerprinter::default(),
                output_chars: 0,
                thinking_chars: 0,
            },
        }
    }

    /// Called once per truncation the stream shows (for the caller's
    /// memory).
    #[must_use]
    pub fn on_truncation(mut self, hook: Box<dyn FnMut(Truncation) + Send>) -> Self {
        self.state.hook = Some(hook);
        self
    }
}

#[derive(Deserialize)]
struct AssistantResponse<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningContent<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow)]
    redacted_content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseEvent<'a> {
    #[serde(borrow)]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    stop: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContextUsage {
    context_usage_percentage: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    token_usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(alias = "Message")]
    message: Option<String>,
    reason: Option<String>,
}

/// Whether `text` is one whole JSON value.
fn is_json(text: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

/// Whether arguments that are not JSON look cut off rather than merely
/// wrong (§5.7): an object that does not end, brackets that do not balance,
/// a string that does not close.
pub(crate) fn looks_cut(arguments: &str) -> bool {
    let text = arguments.trim();
    if text.starts_with('{') && !text.ends_with('}') {
        return true;
    }
    let (mut depth, mut in_string, mut escaped, mut quotes) = (0_i64, false, false, 0_u64);
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    in_string = false;
                    quotes += 1;
                }
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                quotes += 1;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            _ => {}
        }
    }
    depth != 0 || quotes % 2 == 1
}

/// The JSON of an event: the payload, or the object under the event-type
/// key when the payload wraps it.
fn event_json<'a>(payload: &'a [u8], event_type: &str) -> Result<&'a str, DecodeError> {
    let text = std::str::from_utf8(payload).map_err(|_| {
        DecodeError(format!(
            "the upstream sent a `{event_type}` that is not UTF-8"
        ))
    })?;
    if text.trim().is_empty() {
        return Ok("{}");
    }
    let wrapped = text
        .trim_start()
        .strip_prefix('{')
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix('"'))
        .and_then(|rest| rest.strip_prefix(event_type))
        .is_some_and(|rest| rest.starts_with('"'));
    if wrapped
        && let Ok(wrapper) = serde_json::from_str::<BTreeMap<Cow<'_, str>, &RawValue>>(text)
        && wrapper.len() == 1
        && let Some(inner) = wrapper.get(event_type)
    {
        return Ok(inner.get());
    }
    Ok(text)
}

fn parse<'a, T: Deserialize<'a>>(json: &'a str, event_type: &str) -> Result<T, DecodeError> {
    serde_json::from_str(json).map_err(|error| {
        DecodeError(format!(
            "the upstream sent a `{event_type}` that is not valid: {error}"
        ))
    })
}

/// An AWS exception or error code → the canonical kinds.
fn error_kind(name: &str) -> ErrorKind {
    let name = name.rsplit(['#', ':']).next().unwrap_or(name);
    match name {
        "ThrottlingException" => ErrorKind::RateLimited,
        "ValidationException" => ErrorKind::InvalidRequest,
        "AccessDeniedException" => ErrorKind::PermissionDenied,
        "ServiceUnavailableException" => ErrorKind::Overloaded,
        _ if name.contains("Quota") => ErrorKind::RateLimited,
        _ => ErrorKind::Upstream,
    }
}

/// The message of an error payload: its `message`, or its text.
fn error_message(payload: &[u8], fallback: &str) -> String {
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(payload)
        && let Some(message) = body.message.or(body.reason)
        && !message.trim().is_empty()
    {
        return message;
    }
    let text = String::from_utf8_lossy(payload);
    let text = text.trim();
    if text.is_empty() || text == "{}" {
        fallback.to_owned()
    } else {
        text.to_owned()
    }
}

/// The characters in `text`.
fn chars(text: &str) -> u64 {
    u64::try_from(text.chars().count()).unwrap_or(u64::MAX)
}

/// Tokens in `chars` characters, roughly (4 characters a token).
fn estimate_tokens(chars: u64) -> u64 {
    chars.div_ceil(4)
}

/// `percent` of `total`, rounded.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    reason = "a percentage of a context size: clamped to 0..=100 and far below 2^52"
)]
fn percent_of(percent: f64, total: u64) -> u64 {
    let percent = if percent.is_finite() {
        percent.clamp(0.0, 100.0)
    } else {
        0.0
    };
    (percent / 100.0 * total as f64).round() as u64
}

impl State {
    fn report(&mut self, truncation: Truncation) {
        if let Some(hook) = &mut self.hook {
            hook(truncation);
        }
    }

    fn start(&mut self, emit: &mut dyn FnMut(Event<'_>)) {
        if matches!(self.phase, Phase::Empty | Phase::Receiving) {
            self.phase = Phase::Started;
            emit(Event::Start {
                id: None,
                model: Some(Cow::Borrowed(&self.model)),
            });
        }
    }

    fn close(&mut self, emit: &mut dyn FnMut(Event<'_>)) {
        if let Some((index, _)) = self.open.take() {
            emit(Event::BlockStop { index });
        }
    }

    /// The index of an open block of `kind`, opening one if needed.
    fn open(&mut self, kind: Open, emit: &mut dyn FnMut(Event<'_>)) -> usize {
        if let Some((index, open)) = self.open
            && open == kind
        {
            return index;
        }
        self.start(emit);
        self.close(emit);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, kind));
        emit(Event::BlockStart {
            index,
            kind: match kind {
                Open::Text => BlockKind::Text,
                Open::Thinking => BlockKind::Thinking,
            },
        });
        index
    }

    fn text(&mut self, text: Cow<'_, str>, emit: &mut dyn FnMut(Event<'_>)) {
        if text.is_empty() {
            return;
        }
        let index = self.open(Open::Text, emit);
        self.text.push(&text);
        self.output_chars += chars(&text);
        emit(Event::Delta {
            index,
            delta: Delta::Text(text),
        });
    }

    fn thinking(&mut self, text: Cow<'_, str>, emit: &mut dyn FnMut(Event<'_>)) {
        if text.is_empty() {
            return;
        }
        let index = self.open(Open::Thinking, emit);
        let chars = chars(&text);
        self.output_chars += chars;
        self.thinking_chars += chars;
        emit(Event::Delta {
            index,
            delta: Delta::Thinking(text),
        });
    }

    fn pieces(&mut self, pieces: Vec<Piece>, emit: &mut dyn FnMut(Event<'_>)) {
        for piece in pieces {
            match piece {
                Piece::Thinking(text) => self.thinking(Cow::Owned(text), emit),
                Piece::Text(text) => self.text(Cow::Owned(text), emit),
            }
        }
    }

    /// Emits what the thinking-tag parser holds; later text is plain text.
    fn flush_tags(&mut self, emit: &mut dyn FnMut(Event<'_>)) {
        if let Some(tags) = &mut self.tags {
            let pieces = tags.finish();
            self.pieces(pieces, emit);
        }
    }

    fn on_content(&mut self, content: Cow<'_, str>, emit: &mut dyn FnMut(Event<'_>)) {
        if content.is_empty() {
            return;
        }
        // KG drops a chunk identical to the one before it: Kiro repeats some.
        match &mut self.last_content {
            Some(last) if *last == *content => return,
            Some(last) => {
                last.clear();
                last.push_str(&content);
            }
            None => self.last_content = Some(content.clone().into_owned()),
        }
        match &mut self.tags {
            Some(tags) => {
                let pieces = tags.push(&content);
                self.pieces(pieces, emit);
            }
            None => self.text(content, emit),
        }
    }

    fn on_reasoning(&mut self, event: ReasoningContent<'_>, emit: &mut dyn FnMut(Event<'_>)) {
        if let Some(redacted) = event.redacted_content {
            self.start(emit);
            self.close(emit);
            let index = self.next_index;
            self.next_index += 1;
            let signature = Signature::from_upstream(redacted.into_owned(), &self.origin);
            emit(Event::BlockStart {
                index,
                kind: BlockKind::RedactedThinking(signature),
            });
            emit(Event::BlockStop { index });
        }
        if let Some(text) = event.text {
            self.thinking(text, emit);
        }
        if let Some(signature) = event.signature.filter(|signature| !signature.is_empty()) {
            let index = self.open(Open::Thinking, emit);
            emit(Event::Delta {
                index,
                delta: Delta::Signature(Signature::from_upstream(
                    signature.into_owned(),
                    &self.origin,
                )),
            });
            // The signature seals the block: more reasoning is a new one.
            self.close(emit);
        }
    }

    fn on_tool(
        &mut self,
        event: ToolUseEvent<'_>,
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        let Some(id) = event.tool_use_id.filter(|id| !id.is_empty()) else {
            return Ok(());
        };
        if self.emitted_ids.contains(id.as_ref()) {
            return Ok(());
        }
        let at = match self.pending.iter().position(|tool| tool.id == id) {
            Some(at) => at,
            None => {
                self.pending.push(PendingTool {
                    id: id.into_owned(),
                    name: String::new(),
                    current: String::new(),
                    best: String::new(),
                });
                self.pending.len() - 1
            }
        };
        let Some(tool) = self.pending.get_mut(at) else {
            return Ok(());
        };
        if let Some(name) = event.name.filter(|name| !name.is_empty())
            && tool.name.is_empty()
        {
            tool.name = name.into_owned();
        }
        match event.input.map(RawValue::get) {
            Some(raw) if raw.starts_with('"') => {
                let fragment: Cow<'_, str> = parse(raw, "toolUseEvent")?;
                tool.push_fragment(&fragment);
            }
            Some("null") | None => {}
            Some(whole) => tool.push_whole(whole),
        }
        if event.stop == Some(true) {
            let tool = self.pending.remove(at);
            self.emit_tool(tool, emit);
        }
        Ok(())
    }

    /// Emits a complete tool call as one block, unless it repeats one.
    fn emit_tool(&mut self, tool: PendingTool, emit: &mut dyn FnMut(Event<'_>)) {
        let id = tool.id.clone();
        let name = tool.name.clone();
        let mut arguments = {
            let raw = tool.arguments();
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                "{}".to_owned()
            } else if trimmed.len() == raw.len() {
                raw
            } else {
                trimmed.to_owned()
            }
        };
        self.emitted_ids.insert(id.clone());
        // The same call again under another id.
        if !self.emitted_calls.insert((name.clone(), arguments.clone())) {
            return;
        }
        if !is_json(&arguments) && looks_cut(&arguments) {
            "{}".clone_into(&mut arguments);
            self.tool_cut = true;
            self.report(Truncation::ToolInput {
                tool_use_id: id.clone(),
            });
        }
        self.flush_tags(emit);
        self.start(emit);
        self.close(emit);
        let index = self.next_index;
        self.next_index += 1;
        self.tool_calls += 1;
        self.output_chars += chars(&arguments);
        emit(Event::BlockStart {
            index,
            kind: BlockKind::ToolUse {
                id: Cow::Owned(id),
                name: Cow::Owned(name),
            },
        });
        emit(Event::Delta {
            index,
            delta: Delta::ToolInput(Cow::Owned(arguments)),
        });
        emit(Event::BlockStop { index });
    }

    /// A failure the upstream reported: the stream ends with it.
    fn fail(&mut self, kind: ErrorKind, message: String, emit: &mut dyn FnMut(Event<'_>)) {
        self.phase = Phase::Ended;
        emit(Event::Error(StreamError { kind, message }));
    }

    fn on_message(
        &mut self,
        message: &Message,
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        if self.phase == Phase::Empty {
            self.phase = Phase::Receiving;
        }
        match message.message_type() {
            Some("exception") => {
                let name = message.exception_type().unwrap_or("exception");
                let text = error_message(&message.payload, name);
                self.fail(error_kind(name), text, emit);
                Ok(())
            }
            Some("error") => {
                let name = message.error_code().unwrap_or("error");
                let text = error_message(&message.payload, name);
                self.fail(error_kind(name), text, emit);
                Ok(())
            }
            _ => match message.event_type() {
                Some(event_type) => self.on_event(event_type, &message.payload, emit),
                None => Ok(()),
            },
        }
    }

    fn on_event(
        &mut self,
        event_type: &str,
        payload: &[u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), DecodeError> {
        match event_type {
            "assistantResponseEvent" => {
                let event: AssistantResponse<'_> =
                    parse(event_json(payload, event_type)?, event_type)?;
                if let Some(content) = event.content {
                    self.on_content(content, emit);
                }
            }
            "reasoningContentEvent" => {
                let event = parse(event_json(payload, event_type)?, event_type)?;
                self.on_reasoning(event, emit);
            }
            "toolUseEvent" => {
                let event = parse(event_json(payload, event_type)?, event_type)?;
                self.on_tool(event, emit)?;
            }
            "meteringEvent" => self.closing = true,
            "contextUsageEvent" => {
                let event: ContextUsage = parse(event_json(payload, event_type)?, event_type)?;
                self.closing = true;
                if event.context_usage_percentage.is_some() {
                    self.context_percent = event.context_usage_percentage;
                }
            }
            "metadataEvent" => {
                let event: Metadata = parse(event_json(payload, event_type)?, event_type)?;
                self.closing = true;
                if event.token_usage.is_some() {
                    self.tokens = event.token_usage;
                }
            }
            "invalidStateEvent" => {
                let json = event_json(payload, event_type)?;
                let text = error_message(json.as_bytes(), "the upstream is in an invalid state");
                self.fail(ErrorKind::Upstream, text, emit);
            }
            // messageMetadataEvent, codeEvent and events added later.
            _ => {}
        }
        Ok(())
    }

    fn usage(&self) -> Usage {
        let estimate = estimate_tokens(self.output_chars);
        let reasoning = estimate_tokens(self.thinking_chars);
        match self.tokens {
            Some(tokens) => {
                let read = tokens.cache_read_input_tokens.unwrap_or(0);
                let write = tokens.cache_write_input_tokens.unwrap_or(0);
                let output = tokens.output_tokens.unwrap_or(estimate);
                Usage {
                    input_tokens: tokens.uncached_input_tokens.unwrap_or(0) + read + write,
                    output_tokens: output,
                    cache_read_tokens: read,
                    cache_write_tokens: write,
                    reasoning_tokens: reasoning.min(output),
                }
            }
            None => Usage {
                input_tokens: self.context_percent.map_or(0, |percent| {
                    percent_of(percent, self.options.max_input_tokens)
                }),
                output_tokens: estimate,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                reasoning_tokens: reasoning,
            },
        }
    }

    /// The stream ended: complete what is pending and say why it stopped.
    fn end(&mut self, emit: &mut dyn FnMut(Event<'_>)) {
        self.start(emit);
        self.flush_tags(emit);
        for tool in std::mem::take(&mut self.pending) {
            self.emit_tool(tool, emit);
        }
        self.close(emit);
        let text_cut = !self.closing && !self.text.is_empty() && self.tool_calls == 0;
        if text_cut {
            self.report(Truncation::Text {
                fingerprint: self.text.value(),
            });
        }
        let reason = if self.tool_calls > 0 {
            StopReason::ToolUse
        } else if text_cut || self.tool_cut {
            StopReason::MaxTokens
        } else {
            StopReason::EndTurn
        };
        emit(Event::Stop {
            reason,
            sequence: None,
        });
        emit(Event::Usage(self.usage()));
        emit(Event::End);
        self.phase = Phase::Ended;
    }
}

impl StreamDecoder for KiroStreamDecoder {
    fn feed(&mut self, chunk: &[u8], emit: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        if let Some(error) = &self.state.failed {
            return Err(DecodeError(error.clone()));
        }
        if self.state.phase == Phase::Ended {
            return Ok(());
        }
        self.frames.push(chunk);
        loop {
            let message = match self.frames.next_message() {
                Ok(Some(message)) => message,
                Ok(None) => return Ok(()),
                Err(error) => {
                    let error = error.to_string();
                    self.state.failed = Some(error.clone());
                    return Err(DecodeError(error));
                }
            };
            if let Err(error) = self.state.on_message(&message, emit) {
                self.state.failed = Some(error.0.clone());
                return Err(error);
            }
            if self.state.phase == Phase::Ended {
                return Ok(());
            }
        }
    }

    fn finish(&mut self, emit: &mut dyn FnMut(Event<'_>)) -> Result<(), DecodeError> {
        if let Some(error) = &self.state.failed {
            return Err(DecodeError(error.clone()));
        }
        if self.state.phase == Phase::Ended {
            return Ok(());
        }
        if let Err(error) = self.frames.finish() {
            let error = error.to_string();
            self.state.failed = Some(error.clone());
            return Err(DecodeError(error));
        }
        if self.state.phase == Phase::Empty {
            let error = "the upstream stream ended before any event".to_owned();
            self.state.failed = Some(error.clone());
            return Err(DecodeError(error));
        }
        self.state.end(emit);
        Ok(())
    }
}
