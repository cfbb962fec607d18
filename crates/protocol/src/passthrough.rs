//! The pass-through path, for every dialect: the request fields routing
//! needs, the few edits an upstream needs (spliced in, the rest of the body
//! untouched), and metering of the answer on the side while its bytes go by
//! unchanged.

use subgate_core::{Dialect, Usage, Wire};

use crate::canonical::Invalid;
use crate::dispatch::RequestLine;
use crate::error::ErrorKind;
use crate::json_edit::TopLevel;
use crate::openai_chat::{StreamTap, TapVerdict};
use crate::{anthropic, gemini, openai_chat, openai_responses};

/// A client body, read just enough to route it.
#[derive(Debug)]
pub struct BodyHead<'a> {
    top: TopLevel<'a>,
    /// The model the client asked for.
    pub model: String,
    /// Whether it asked for a stream.
    pub stream: bool,
    /// Chat Completions' `stream_options.include_usage`.
    pub include_usage: bool,
}

#[derive(serde::Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

fn field<'de, T: serde::Deserialize<'de>>(
    raw: &'de serde_json::value::RawValue,
    name: &str,
    expected: &str,
) -> Result<T, Invalid> {
    serde_json::from_str(raw.get())
        .map_err(|_| Invalid::field(name, format!("`{name}` must be {expected}")))
}

impl<'a> BodyHead<'a> {
    /// Reads the head of a body in `dialect`; Gemini's model and streaming
    /// come from the request line.
    pub fn parse(dialect: Dialect, body: &'a [u8], line: RequestLine<'_>) -> Result<Self, Invalid> {
        let text = std::str::from_utf8(body)
            .map_err(|_| Invalid::body("the request body is not valid UTF-8"))?;
        let top = TopLevel::parse(text).map_err(|error| {
            Invalid::body(format!("the request body is not a JSON object: {error}"))
        })?;
        let (model, stream) = match dialect {
            Dialect::Gemini => (line.model.unwrap_or_default().to_owned(), line.stream),
            Dialect::OpenAiChat | Dialect::OpenAiResponses | Dialect::Anthropic => {
                let model = match top.get("model") {
                    None => String::new(),
                    Some(raw) => field::<String>(raw, "model", "a string")?,
                };
                let stream = match top.get("stream") {
                    None => false,
                    Some(raw) => {
                        field::<Option<bool>>(raw, "stream", "a boolean")?.unwrap_or(false)
                    }
                };
                (model, stream)
            }
        };
        if model.is_empty() {
            return Err(Invalid::field(
                "model",
                "you must provide a model parameter",
            ));
        }
        let include_usage = match (dialect, top.get("stream_options")) {
            (Dialect::OpenAiChat, Some(raw)) => {
                field::<Option<StreamOptions>>(raw, "stream_options", "an object")?
                    .and_then(|options| options.include_usage)
                    .unwrap_or(false)
            }
            _ => false,
        };
        Ok(Self {
            top,
            model,
            stream,
            include_usage,
        })
    }

    /// The body to send upstream, or `None` when the client's bytes can go
    /// as they are.
    ///
    /// `model` becomes `upstream_model` (Gemini carries no model in its
    /// body). On a Chat Completions stream whose client did not ask for
    /// usage, `meter_streams` turns `stream_options.include_usage` on so the
    /// gateway can meter it; the usage chunk is then held back from the
    /// client by the tap.
    pub fn upstream_body(
        &self,
        dialect: Dialect,
        upstream_model: &str,
        meter_streams: bool,
    ) -> Option<String> {
        let model_json;
        let options_json;
        let mut edits: Vec<(&str, &str)> = Vec::with_capacity(2);
        if dialect != Dialect::Gemini && upstream_model != self.model {
            model_json = serde_json::to_string(upstream_model).unwrap_or_default();
            edits.push(("model", &model_json));
        }
        if dialect == Dialect::OpenAiChat && meter_streams && self.stream && !self.include_usage {
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

/// Client headers that name a conversation: Claude Code's, Codex's, and a
/// generic one.
pub const SESSION_HEADERS: [&str; 4] = [
    "x-claude-code-session-id",
    "session_id",
    "conversation_id",
    "x-session-id",
];

impl BodyHead<'_> {
    /// A key that stays the same across the turns of one conversation, for
    /// keeping it on one account: the client's session header
    /// ([`SESSION_HEADERS`], read through `header`), its own cache or user
    /// key (`prompt_cache_key`, Anthropic's `metadata.user_id`), else a
    /// hash of how the conversation starts (its system prompt and first
    /// messages, which every turn sends again unchanged).
    pub fn conversation_key<'h>(
        &self,
        dialect: Dialect,
        header: impl Fn(&str) -> Option<&'h [u8]>,
    ) -> Option<u64> {
        use std::hash::{Hash, Hasher};

        for name in SESSION_HEADERS {
            if let Some(value) = header(name).filter(|value| !value.is_empty()) {
                let mut hasher = std::hash::DefaultHasher::new();
                (name, value).hash(&mut hasher);
                return Some(hasher.finish());
            }
        }
        let mut hasher = std::hash::DefaultHasher::new();
        let explicit = match dialect {
            Dialect::OpenAiChat | Dialect::OpenAiResponses => self
                .top
                .get("prompt_cache_key")
                .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok()),
            Dialect::Anthropic => self
                .top
                .get("metadata")
                .and_then(|raw| serde_json::from_str::<UserMetadata>(raw.get()).ok())
                .and_then(|metadata| metadata.user_id),
            Dialect::Gemini => None,
        };
        if let Some(key) = explicit.filter(|key| !key.is_empty()) {
            (0u8, key).hash(&mut hasher);
            return Some(hasher.finish());
        }
        // Chat Completions keeps the system prompt among the messages, and
        // one tool sends the same one in every conversation: take two.
        let (system, messages, count) = match dialect {
            Dialect::OpenAiChat => (None, "messages", 2),
            Dialect::OpenAiResponses => (Some("instructions"), "input", 1),
            Dialect::Anthropic => (Some("system"), "messages", 1),
            Dialect::Gemini => (Some("systemInstruction"), "contents", 1),
        };
        let first = self.top.get(messages)?;
        1u8.hash(&mut hasher);
        if let Some(system) = system.and_then(|name| self.top.get(name)) {
            system.get().hash(&mut hasher);
        }
        match serde_json::from_str::<LeadingItems<'_>>(first.get()) {
            Ok(LeadingItems(items)) if !items.is_empty() => {
                for item in items.iter().take(count) {
                    item.get().hash(&mut hasher);
                }
            }
            // Responses' input may be one string.
            _ => first.get().hash(&mut hasher),
        }
        Some(hasher.finish())
    }
}

#[derive(serde::Deserialize)]
struct UserMetadata {
    user_id: Option<String>,
}

/// The first two items of a JSON array, the rest skipped unread.
struct LeadingItems<'a>(Vec<&'a serde_json::value::RawValue>);

impl<'de> serde::Deserialize<'de> for LeadingItems<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = LeadingItems<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(2);
                while items.len() < 2 {
                    match seq.next_element::<&'de serde_json::value::RawValue>()? {
                        Some(item) => items.push(item),
                        None => return Ok(LeadingItems(items)),
                    }
                }
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(LeadingItems(items))
            }
        }
        deserializer.deserialize_seq(Visitor)
    }
}

/// Meters a passing stream, whatever its dialect.
#[derive(Debug)]
pub enum Tap {
    /// Chat Completions.
    Chat(StreamTap),
    /// Responses.
    Responses(openai_responses::ResponsesTap),
    /// Anthropic.
    Anthropic(anthropic::AnthropicTap),
    /// Gemini.
    Gemini(gemini::GeminiTap),
}

impl Tap {
    /// A tap for a stream in `dialect`; `client_wants_usage` is Chat
    /// Completions' `include_usage`.
    pub fn new(dialect: Dialect, client_wants_usage: bool) -> Self {
        match dialect {
            Dialect::OpenAiChat => Self::Chat(StreamTap::new(client_wants_usage)),
            Dialect::OpenAiResponses => Self::Responses(openai_responses::ResponsesTap::default()),
            Dialect::Anthropic => Self::Anthropic(anthropic::AnthropicTap::default()),
            Dialect::Gemini => Self::Gemini(gemini::GeminiTap::default()),
        }
    }

    /// Looks at one event; says whether to forward it.
    pub fn observe(&mut self, event: Option<&str>, data: &str) -> TapVerdict {
        match self {
            Self::Chat(tap) => return tap.observe(data),
            Self::Responses(tap) => tap.observe(event, data),
            Self::Anthropic(tap) => tap.observe(event, data),
            Self::Gemini(tap) => tap.observe(data),
        }
        TapVerdict::Forward
    }

    /// The usage reported so far.
    pub fn usage(&self) -> Option<Usage> {
        match self {
            Self::Chat(tap) => tap.usage(),
            Self::Responses(tap) => tap.usage(),
            Self::Anthropic(tap) => tap.usage(),
            Self::Gemini(tap) => tap.usage(),
        }
    }

    /// Whether the stream reached its proper end.
    pub fn is_complete(&self) -> bool {
        match self {
            Self::Chat(tap) => tap.is_complete(),
            Self::Responses(tap) => tap.is_complete(),
            Self::Anthropic(tap) => tap.is_complete(),
            Self::Gemini(tap) => tap.is_complete(),
        }
    }

    /// The upstream's own in-stream error, if it sent one.
    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Chat(tap) => tap.error(),
            Self::Responses(tap) => tap.error(),
            Self::Anthropic(tap) => tap.error(),
            Self::Gemini(tap) => tap.error(),
        }
    }

    /// The bytes that end the client's stream with a failure, in its
    /// dialect's own error event.
    pub fn failure(&self, kind: ErrorKind, message: &str) -> Vec<u8> {
        match self {
            Self::Chat(_) => openai_chat::stream_error_event(&crate::error::ErrorReport {
                kind,
                status: 0,
                message,
                code: None,
                param: None,
            }),
            Self::Responses(tap) => tap.failure(kind, message),
            Self::Anthropic(_) => anthropic::AnthropicTap::failure(kind, message),
            Self::Gemini(_) => gemini::GeminiTap::failure(kind, message),
        }
    }
}

/// The usage of a non-streamed answer in `dialect`.
pub fn response_usage(dialect: Dialect, body: &[u8]) -> Option<Usage> {
    match dialect {
        Dialect::OpenAiChat => openai_chat::response_usage(body),
        Dialect::OpenAiResponses => openai_responses::response_usage(body),
        Dialect::Anthropic => anthropic::response_usage(body),
        Dialect::Gemini => gemini::response_usage(body),
    }
}

/// What an upstream's error body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// Its message, or the body's text when it has none.
    pub message: String,
    /// Whether the body is a proper error object of its dialect, fit to be
    /// passed on as it is.
    pub well_formed: bool,
}

/// Reads an upstream's error body in its wire format.
pub fn upstream_error(wire: impl Into<Wire>, body: &str) -> UpstreamError {
    let value = serde_json::from_str::<serde_json::Value>(body).ok();
    let dialect = wire.into().dialect();
    // Every client dialect nests its message under `error`; Kiro's is flat
    // (`{"message","reason"}`), read below with the other flat shapes.
    let message = value
        .as_ref()
        .filter(|_| dialect.is_some())
        .and_then(|value| value["error"]["message"].as_str());
    let well_formed = message.is_some()
        && value.as_ref().is_some_and(|value| match dialect {
            Some(Dialect::Anthropic) => value["type"] == "error",
            Some(Dialect::Gemini) => value["error"]["code"].is_number(),
            Some(Dialect::OpenAiChat | Dialect::OpenAiResponses) => true,
            None => false,
        });
    let message = message.map(str::to_owned).or_else(|| {
        // Other shapes: vLLM's flat `message`, FastAPI's `detail`, a bare string.
        let value = value.as_ref()?;
        ["message", "detail", "error"]
            .iter()
            .find_map(|key| value.get(*key).and_then(serde_json::Value::as_str))
            .map(str::to_owned)
    });
    UpstreamError {
        message: message.unwrap_or_else(|| body.trim().chars().take(1000).collect()),
        well_formed,
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use subgate_core::Dialect;

    use super::*;

    fn chat(body: &str) -> Result<BodyHead<'_>, Invalid> {
        BodyHead::parse(Dialect::OpenAiChat, body.as_bytes(), RequestLine::default())
    }

    #[test]
    fn reads_the_request_head() {
        let body = r#"{"model":"local/llama3","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
        let head = chat(body).unwrap();
        assert_eq!(
            (head.model.as_str(), head.stream, head.include_usage),
            ("local/llama3", true, true)
        );
        let plain = chat(r#"{"model":"m","stream":null,"messages":[]}"#).unwrap();
        assert!(!plain.stream);
        assert!(!plain.include_usage);
    }

    #[test]
    fn a_conversation_keeps_its_key_across_turns() {
        let key = |dialect, body: &str| {
            BodyHead::parse(
                dialect,
                body.as_bytes(),
                RequestLine {
                    model: Some("m"),
                    ..RequestLine::default()
                },
            )
            .unwrap()
            .conversation_key(dialect, |_| None)
        };
        let turn1 = r#"{"model":"m","messages":[{"role":"system","content":"tool"},{"role":"user","content":"fix the bug"}]}"#;
        let turn2 = r#"{"model":"m","messages":[{"role":"system","content":"tool"},{"role":"user","content":"fix the bug"},{"role":"assistant","content":"done"},{"role":"user","content":"thanks"}]}"#;
        let other = r#"{"model":"m","messages":[{"role":"system","content":"tool"},{"role":"user","content":"write docs"}]}"#;
        assert_eq!(
            key(Dialect::OpenAiChat, turn1),
            key(Dialect::OpenAiChat, turn2)
        );
        assert_ne!(
            key(Dialect::OpenAiChat, turn1),
            key(Dialect::OpenAiChat, other)
        );
        assert!(key(Dialect::OpenAiChat, turn1).is_some());

        let cached_a = r#"{"model":"m","prompt_cache_key":"s-1","input":"a"}"#;
        let cached_b = r#"{"model":"m","prompt_cache_key":"s-1","input":"b"}"#;
        assert_eq!(
            key(Dialect::OpenAiResponses, cached_a),
            key(Dialect::OpenAiResponses, cached_b)
        );
        assert_ne!(
            key(Dialect::OpenAiResponses, cached_a),
            key(Dialect::OpenAiResponses, r#"{"model":"m","input":"a"}"#)
        );

        let claude = |user: &str, text: &str| {
            format!(
                r#"{{"model":"m","metadata":{{"user_id":"{user}"}},"messages":[{{"role":"user","content":"{text}"}}]}}"#
            )
        };
        assert_eq!(
            key(Dialect::Anthropic, &claude("u_1", "a")),
            key(Dialect::Anthropic, &claude("u_1", "b"))
        );
        assert_ne!(
            key(Dialect::Anthropic, &claude("u_1", "a")),
            key(Dialect::Anthropic, &claude("u_2", "a"))
        );
        let gemini = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
        assert!(key(Dialect::Gemini, gemini).is_some());
        assert_eq!(key(Dialect::Anthropic, r#"{"model":"m"}"#), None);

        // A session header outweighs what the body says.
        let session = |body: &str| {
            BodyHead::parse(Dialect::Anthropic, body.as_bytes(), RequestLine::default())
                .unwrap()
                .conversation_key(Dialect::Anthropic, |name| {
                    (name == "x-claude-code-session-id").then_some(b"3f2a".as_slice())
                })
        };
        assert_eq!(session(&claude("u_1", "a")), session(&claude("u_2", "b")));
        assert_ne!(
            session(&claude("u_1", "a")),
            key(Dialect::Anthropic, &claude("u_1", "a"))
        );
    }

    #[test]
    fn refuses_bad_requests_with_the_field_at_fault() {
        let cases = [
            ("not json", None),
            ("[]", None),
            (r#"{"messages":[]}"#, Some("model")),
            (r#"{"model":""}"#, Some("model")),
            (r#"{"model":42}"#, Some("model")),
            (r#"{"model":"m","stream":"yes"}"#, Some("stream")),
            (
                r#"{"model":"m","stream_options":[1]}"#,
                Some("stream_options"),
            ),
        ];
        for (body, param) in cases {
            let error = chat(body).unwrap_err();
            assert_eq!(error.param.as_deref(), param, "{body}");
        }
    }

    #[test]
    fn upstream_body_edits_only_what_it_must() {
        let body = r#"{"model":"local/llama3", "messages":[{"role":"user","content":"hi"}],"stream":true,"x_vendor":{"a":1}}"#;
        let request = chat(body).unwrap();
        assert_eq!(
            request.upstream_body(Dialect::OpenAiChat, "local/llama3", false),
            None
        );
        assert_eq!(
            request
                .upstream_body(Dialect::OpenAiChat, "llama3", false)
                .unwrap(),
            r#"{"model":"llama3", "messages":[{"role":"user","content":"hi"}],"stream":true,"x_vendor":{"a":1}}"#
        );
        assert_eq!(
            request
                .upstream_body(Dialect::OpenAiChat, "llama3", true)
                .unwrap(),
            r#"{"stream_options":{"include_usage":true},"model":"llama3", "messages":[{"role":"user","content":"hi"}],"stream":true,"x_vendor":{"a":1}}"#
        );
    }

    #[test]
    fn upstream_body_keeps_other_stream_options() {
        let body = r#"{"model":"m","stream":true,"stream_options":{"include_obfuscation":false}}"#;
        let request = chat(body).unwrap();
        assert_eq!(
            request
                .upstream_body(Dialect::OpenAiChat, "m", true)
                .unwrap(),
            r#"{"model":"m","stream":true,"stream_options":{"include_obfuscation":false,"include_usage":true}}"#
        );
        // A client that asked for usage itself needs no edit.
        let asked = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#;
        assert_eq!(
            chat(asked)
                .unwrap()
                .upstream_body(Dialect::OpenAiChat, "m", true),
            None
        );
        // Nor does a request that does not stream.
        assert_eq!(
            chat(r#"{"model":"m"}"#)
                .unwrap()
                .upstream_body(Dialect::OpenAiChat, "m", true),
            None
        );
    }

    #[test]
    fn gemini_takes_model_and_stream_from_the_line_and_keeps_its_body() {
        let line = RequestLine {
            model: Some("gemini-2.5-pro"),
            stream: true,
            sse: true,
        };
        let head = BodyHead::parse(Dialect::Gemini, br#"{"contents":[]}"#, line).unwrap();
        assert_eq!((head.model.as_str(), head.stream), ("gemini-2.5-pro", true));
        assert_eq!(head.upstream_body(Dialect::Gemini, "other", true), None);
        let head = BodyHead::parse(
            Dialect::Anthropic,
            br#"{"model":"a/claude","stream":true}"#,
            line,
        )
        .unwrap();
        assert_eq!(
            head.upstream_body(Dialect::Anthropic, "claude", true)
                .unwrap(),
            r#"{"model":"claude","stream":true}"#,
            "only Chat Completions gets stream_options"
        );
    }

    #[test]
    fn upstream_errors_are_read_per_dialect() {
        let anthropic = upstream_error(
            Dialect::Anthropic,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(
            anthropic,
            UpstreamError {
                message: "Overloaded".to_owned(),
                well_formed: true
            }
        );
        let gemini = upstream_error(
            Dialect::Gemini,
            r#"{"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert!(gemini.well_formed);
        let flat = upstream_error(
            Dialect::OpenAiChat,
            r#"{"object":"error","message":"too long"}"#,
        );
        assert_eq!(
            flat,
            UpstreamError {
                message: "too long".to_owned(),
                well_formed: false
            }
        );
        assert_eq!(
            upstream_error(Dialect::Anthropic, "Bad Gateway").message,
            "Bad Gateway"
        );
    }
}
