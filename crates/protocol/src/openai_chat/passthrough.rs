//! The pass-through path: the few request fields routing needs, the edits
//! an upstream needs, and usage read from a response or a stream on the
//! side while the bytes go by unchanged.

use memchr::memmem;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use subgate_core::Usage;

use super::wire::WireUsage;
use crate::json_edit::TopLevel;

/// The request fields routing and metering need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The model the client asked for, as written.
    pub model: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether the client asked for the usage chunk at the end of a stream.
    pub include_usage: bool,
}

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is not a JSON object.
    #[error("the request body is not a JSON object: {0}")]
    NotAnObject(String),
    /// The body has no `model`.
    #[error("you must provide a model parameter")]
    MissingModel,
    /// A field has the wrong type.
    #[error("`{field}` must be {expected}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// What it should have been, in words.
        expected: &'static str,
    },
}

impl RequestError {
    /// The request field at fault, if one is.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            Self::NotAnObject(_) => None,
            Self::MissingModel => Some("model"),
            Self::InvalidField { field, .. } => Some(field),
        }
    }
}

/// A parsed request: its head plus what is needed to edit the body.
#[derive(Debug)]
pub struct ChatRequest<'a> {
    top: TopLevel<'a>,
    /// The fields routing needs.
    pub head: RequestHead,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

impl<'a> ChatRequest<'a> {
    /// Reads a request body.
    pub fn parse(body: &'a str) -> Result<Self, RequestError> {
        let top =
            TopLevel::parse(body).map_err(|error| RequestError::NotAnObject(error.to_string()))?;
        let model = match top.get("model") {
            None => return Err(RequestError::MissingModel),
            Some(raw) => field::<String>(raw, "model", "a string")?,
        };
        if model.is_empty() {
            return Err(RequestError::MissingModel);
        }
        let stream = match top.get("stream") {
            None => false,
            Some(raw) => field::<Option<bool>>(raw, "stream", "a boolean")?.unwrap_or(false),
        };
        let include_usage = match top.get("stream_options") {
            None => false,
            Some(raw) => field::<Option<StreamOptions>>(raw, "stream_options", "an object")?
                .and_then(|options| options.include_usage)
                .unwrap_or(false),
        };
        Ok(Self {
            top,
            head: RequestHead {
                model,
                stream,
                include_usage,
            },
        })
    }

    /// The body to send upstream, or `None` when the client's bytes can go
    /// as they are.
    ///
    /// Two edits are possible: `model` becomes `upstream_model`, and when
    /// `ask_for_usage` is set on a stream whose client did not ask for usage,
    /// `stream_options.include_usage` is turned on so the gateway can meter
    /// the stream (the extra usage chunk is then held back from the client by
    /// [`StreamTap`]).
    pub fn upstream_body(&self, upstream_model: &str, ask_for_usage: bool) -> Option<String> {
        let model_json;
        let options_json;
        let mut edits: Vec<(&str, &str)> = Vec::with_capacity(2);
        if upstream_model != self.head.model {
            model_json = serde_json::to_string(upstream_model).unwrap_or_default();
            edits.push(("model", &model_json));
        }
        if ask_for_usage && self.head.stream && !self.head.include_usage {
            let mut options = self
                .top
                .get("stream_options")
                .and_then(|raw| {
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw.get())
                        .ok()
                })
                .unwrap_or_default();
            options.insert("include_usage".to_owned(), serde_json::Value::Bool(true));
            options_json = serde_json::to_string(&options).unwrap_or_default();
            edits.push(("stream_options", &options_json));
        }
        (!edits.is_empty()).then(|| self.top.with_members(&edits))
    }
}

fn field<'de, T: Deserialize<'de>>(
    raw: &'de RawValue,
    field: &'static str,
    expected: &'static str,
) -> Result<T, RequestError> {
    serde_json::from_str(raw.get()).map_err(|_| RequestError::InvalidField { field, expected })
}

#[derive(Deserialize)]
struct WithUsage {
    usage: Option<WireUsage>,
    choices: Option<Vec<IgnoredAny>>,
}

/// The usage of a non-streamed response, if it reports one.
pub fn response_usage(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<WithUsage>(body)
        .ok()?
        .usage
        .map(Usage::from)
}

/// What a pass-through should do with one stream event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapVerdict {
    /// Send it to the client unchanged.
    Forward,
    /// Hold it back: it is the usage chunk the client did not ask for.
    Drop,
}

/// Watches a Chat Completions stream go by and remembers what the gateway
/// needs: the usage, whether `[DONE]` arrived, and an in-stream error.
///
/// Only events that can carry usage or an error are parsed, so the cost per
/// content chunk is one substring search.
#[derive(Debug, Default)]
pub struct StreamTap {
    client_wants_usage: bool,
    usage: Option<Usage>,
    done: bool,
    finished: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
struct StreamErrorEvent {
    error: StreamErrorBody,
}

#[derive(Deserialize)]
struct StreamErrorBody {
    message: Option<String>,
}

impl StreamTap {
    /// A tap for a client that did (or did not) ask for the usage chunk.
    pub fn new(client_wants_usage: bool) -> Self {
        Self {
            client_wants_usage,
            ..Self::default()
        }
    }

    /// Looks at the `data` of one event.
    pub fn observe(&mut self, data: &str) -> TapVerdict {
        if data == "[DONE]" {
            self.done = true;
            return TapVerdict::Forward;
        }
        if data.starts_with("{\"error\"") {
            if let Ok(event) = serde_json::from_str::<StreamErrorEvent>(data) {
                self.error = Some(event.error.message.unwrap_or_default());
            }
            return TapVerdict::Forward;
        }
        if !self.finished && has_member_starting(data, b"\"finish_reason\"", b'"') {
            self.finished = true;
        }
        if !has_member_starting(data, b"\"usage\"", b'{') {
            return TapVerdict::Forward;
        }
        let Ok(chunk) = serde_json::from_str::<WithUsage>(data) else {
            return TapVerdict::Forward;
        };
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
            if !self.client_wants_usage && chunk.choices.is_none_or(|choices| choices.is_empty()) {
                return TapVerdict::Drop;
            }
        }
        TapVerdict::Forward
    }

    /// The usage the stream reported, if it did.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether the terminating `[DONE]` arrived.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the answer is complete: `[DONE]` arrived, or at least a
    /// finish reason did (some servers close without `[DONE]`).
    pub fn is_complete(&self) -> bool {
        self.done || self.finished
    }

    /// The message of an error event the upstream sent, if it sent one.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// Whether `data` has a member named `key` (quotes included) whose value
/// starts with `first`: `{` for an object, `"` for a string. Inside JSON
/// strings quotes are escaped, so a match is a real member, not text.
fn has_member_starting(data: &str, key: &[u8], first: u8) -> bool {
    let bytes = data.as_bytes();
    memmem::find_iter(bytes, key).any(|at| {
        let mut rest = bytes[at + key.len()..]
            .iter()
            .copied()
            .filter(|byte| !byte.is_ascii_whitespace());
        rest.next() == Some(b':') && rest.next() == Some(first)
    })
}
