//! The canonical model every dialect converts to and from.
//!
//! It is a superset of the four client dialects, so a request read from any
//! of them keeps everything the others could express. Each dialect module
//! owns two directions per shape (wire → canonical, canonical → wire); no
//! dialect ever converts straight into another.
//!
//! Text that may be large (message text, tool arguments, signatures) is owned
//! here; stream events ([`Event`]) borrow instead, so a translated stream
//! does not allocate per chunk for text that needs no unescaping.

mod aggregate;
mod event;
mod reasoning;
mod signature;

use serde_json::Value;
use subgate_core::Usage;

pub use aggregate::Aggregator;
pub use event::{BlockKind, Delta, Event, StreamError};
pub use reasoning::{Effort, Reasoning};
pub use signature::{Signature, body_has_tagged_signature};

/// A generation request, whatever dialect it came in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The model as the client named it (the engine rewrites it for the
    /// upstream).
    pub model: String,
    /// System (and developer) instructions, in order.
    pub system: Vec<SystemPart>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call.
    pub tool_choice: Option<ToolChoice>,
    /// Whether several tools may be called in one turn.
    pub parallel_tool_calls: Option<bool>,
    /// Most tokens to generate.
    pub max_tokens: Option<u64>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling.
    pub top_k: Option<u64>,
    /// Sequences that stop generation.
    pub stop: Vec<String>,
    /// Sampling seed.
    pub seed: Option<i64>,
    /// Whether the client wants a stream.
    pub stream: bool,
    /// Chat Completions' `stream_options.include_usage`.
    pub include_usage: bool,
    /// Thinking or reasoning control.
    pub reasoning: Option<Reasoning>,
    /// Structured output.
    pub output_format: Option<OutputFormat>,
    /// An id for the end user, for abuse monitoring and cache routing.
    pub user: Option<String>,
}

/// One system instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPart {
    /// Its text.
    pub text: String,
    /// A prompt-cache breakpoint after it.
    pub cache: Option<CacheControl>,
}

/// A prompt-cache breakpoint (Anthropic's `cache_control`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CacheControl {
    /// `"5m"` or `"1h"`; `None` for the default.
    pub ttl: Option<String>,
}

/// Who said a message. System text lives in [`Request::system`]; tool
/// results travel in user messages, as Anthropic and Gemini carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The person or the calling program.
    User,
    /// The model.
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said, in order.
    pub content: Vec<Block>,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Text.
    Text(Text),
    /// An image.
    Image(Image),
    /// A document (a PDF, say).
    Document(Document),
    /// A call of a tool by the model.
    ToolUse(ToolUse),
    /// What a tool call returned.
    ToolResult(ToolResult),
    /// The model's reasoning, possibly signed.
    Thinking(Thinking),
    /// Reasoning the upstream keeps encrypted.
    RedactedThinking(Signature),
}

/// Text, with an optional cache breakpoint after it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text {
    /// The text.
    pub text: String,
    /// A prompt-cache breakpoint after it.
    pub cache: Option<CacheControl>,
}

/// Where an image or a document's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Inline, base64-encoded.
    Base64 {
        /// Its media type (`image/png`, `application/pdf`).
        media_type: String,
        /// The base64 text.
        data: String,
    },
    /// At a URL (`https://`, or a provider file URI).
    Url {
        /// The URL.
        url: String,
        /// Its media type, when the dialect says it.
        media_type: Option<String>,
    },
}

/// An image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Its bytes.
    pub source: Source,
    /// OpenAI's `detail` (`low`, `high`, `auto`).
    pub detail: Option<String>,
}

/// A document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Its bytes.
    pub source: Source,
    /// A file name or title, when the client gave one.
    pub title: Option<String>,
}

/// A tool call made by the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolUse {
    /// The call's id, which its result refers to.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON text, exactly as the model wrote them (it may
    /// not even be valid JSON).
    pub input: String,
}

/// The result of a tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// The id of the call it answers.
    pub tool_use_id: String,
    /// The tool's name, where the dialect carries it (Gemini needs it).
    pub name: Option<String>,
    /// What it returned: text and images.
    pub content: Vec<Block>,
    /// Whether the tool failed.
    pub is_error: bool,
}

/// The model's reasoning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Thinking {
    /// The reasoning text (a summary, for upstreams that only show that).
    pub text: String,
    /// Proof the text came from the upstream, to be sent back to it.
    pub signature: Option<Signature>,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// A JSON schema of its arguments.
    pub parameters: Value,
    /// OpenAI's strict schema adherence.
    pub strict: Option<bool>,
}

/// Whether the model must call a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// It decides.
    Auto,
    /// It must not.
    None,
    /// It must call one.
    Required,
    /// It must call this one.
    Tool(String),
}

/// The shape the answer must take.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    /// Plain text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// The schema's name.
        name: String,
        /// The schema.
        schema: Value,
        /// Strict adherence.
        strict: Option<bool>,
    },
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model finished.
    EndTurn,
    /// The token limit was hit.
    MaxTokens,
    /// A stop sequence was generated.
    StopSequence,
    /// The model called a tool.
    ToolUse,
    /// A safety filter or the model refused.
    ContentFilter,
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The upstream's id for it, if it gave one.
    pub id: Option<String>,
    /// The model that answered, as the upstream named it.
    pub model: Option<String>,
    /// What the model produced.
    pub content: Vec<Block>,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Which stop sequence, when that was why.
    pub stop_sequence: Option<String>,
    /// Tokens used; `None` when the upstream reported nothing.
    pub usage: Option<Usage>,
}

/// What the gateway knows about the answer it is writing, passed in because
/// the protocol crate reads no clock and draws no random numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyMeta {
    /// A unique id for this answer (the request id); dialects derive their
    /// own ids from it (`chatcmpl-…`, `msg_…`, `resp_…`).
    pub id: String,
    /// Unix seconds, for `created` fields.
    pub created: u64,
    /// The model name to show the client: the one it asked for.
    pub model: String,
}

/// Something a conversion could not carry and left out on purpose, for the
/// caller to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped(pub String);

/// A request or body that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// What is wrong, for the client.
    pub message: String,
    /// The field at fault, when one is.
    pub param: Option<String>,
}

impl Invalid {
    /// An error about `param`.
    pub fn field(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// An error about the body as a whole.
    pub fn body(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: None,
        }
    }
}

impl ToolUse {
    /// The arguments as a JSON object, for dialects that carry objects
    /// (Anthropic, Gemini). Arguments that are not a JSON object (a model
    /// can write anything) are kept under `"input"`.
    pub fn input_object(&self, dropped: &mut Vec<Dropped>) -> Value {
        if self.input.trim().is_empty() {
            return Value::Object(serde_json::Map::new());
        }
        match serde_json::from_str::<Value>(&self.input) {
            Ok(Value::Object(object)) => Value::Object(object),
            Ok(other) => serde_json::json!({ "input": other }),
            Err(_) => {
                dropped.push(Dropped(
                    "tool arguments that are not JSON, kept as text".to_owned(),
                ));
                serde_json::json!({ "input": self.input })
            }
        }
    }
}

impl Block {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(Text {
            text: text.into(),
            cache: None,
        })
    }
}

impl Message {
    /// Appends `block`, merging it into a message with the same role at the
    /// end of `messages` (dialects that allow consecutive turns of one role
    /// get them merged; Anthropic and Gemini require alternation).
    pub fn push_block(messages: &mut Vec<Self>, role: Role, block: Block) {
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.push(block),
            _ => messages.push(Self {
                role,
                content: vec![block],
            }),
        }
    }
}

/// The text of `blocks`' text blocks, joined.
pub fn joined_text(blocks: &[Block]) -> String {
    let mut text = String::new();
    for block in blocks {
        if let Block::Text(part) = block {
            text.push_str(&part.text);
        }
    }
    text
}
