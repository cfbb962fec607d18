//! One entry point per conversion, chosen by dialect: what the engine calls
//! so that it never matches on dialects itself.

use subgate_core::Dialect;

use crate::canonical::{Dropped, Invalid, ReplyMeta, Request, Response};
use crate::codec::{StreamDecoder, StreamEncoder, Target};
use crate::openai_chat::ChatUpstream;
use crate::{anthropic, gemini, openai_chat, openai_responses};

/// What a client's request line says besides its body (Gemini carries the
/// model and streaming in the URL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// The model from the path, for dialects that put it there.
    pub model: Option<&'a str>,
    /// Streaming, for dialects that say it in the path.
    pub stream: bool,
    /// Gemini's `alt=sse`.
    pub sse: bool,
}

/// How a streamed answer is written for the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStream {
    /// Chat Completions' `stream_options.include_usage`.
    pub include_usage: bool,
    /// Gemini: SSE (`alt=sse`) rather than one JSON array.
    pub sse: bool,
}

/// Reads a client's request body.
pub fn decode_request(
    dialect: Dialect,
    body: &[u8],
    line: RequestLine<'_>,
    dropped: &mut Vec<Dropped>,
) -> Result<Request, Invalid> {
    match dialect {
        Dialect::OpenAiChat => openai_chat::decode_request(body, dropped),
        Dialect::OpenAiResponses => openai_responses::decode_request(body, dropped),
        Dialect::Anthropic => anthropic::decode_request(body, dropped),
        Dialect::Gemini => {
            gemini::decode_request(body, line.model.unwrap_or_default(), line.stream, dropped)
        }
    }
}

/// Writes a request for an upstream.
pub fn encode_request(
    dialect: Dialect,
    request: &Request,
    target: Target<'_>,
    chat: ChatUpstream,
    dropped: &mut Vec<Dropped>,
) -> Vec<u8> {
    match dialect {
        Dialect::OpenAiChat => openai_chat::encode_request(request, target, chat, dropped),
        Dialect::OpenAiResponses => openai_responses::encode_request(request, target, dropped),
        Dialect::Anthropic => anthropic::encode_request(request, target, dropped),
        Dialect::Gemini => gemini::encode_request(request, target, dropped),
    }
}

/// Reads an upstream's non-streamed answer.
pub fn decode_response(
    dialect: Dialect,
    body: &[u8],
    origin: &str,
    dropped: &mut Vec<Dropped>,
) -> Result<Response, Invalid> {
    match dialect {
        Dialect::OpenAiChat => openai_chat::decode_response(body, origin, dropped),
        Dialect::OpenAiResponses => openai_responses::decode_response(body, origin, dropped),
        Dialect::Anthropic => anthropic::decode_response(body, origin, dropped),
        Dialect::Gemini => gemini::decode_response(body, origin, dropped),
    }
}

/// Writes a non-streamed answer for a client.
pub fn encode_response(
    dialect: Dialect,
    response: &Response,
    meta: &ReplyMeta,
    dropped: &mut Vec<Dropped>,
) -> Vec<u8> {
    match dialect {
        Dialect::OpenAiChat => openai_chat::encode_response(response, meta, dropped),
        Dialect::OpenAiResponses => openai_responses::encode_response(response, meta, dropped),
        Dialect::Anthropic => anthropic::encode_response(response, meta, dropped),
        Dialect::Gemini => gemini::encode_response(response, meta, dropped),
    }
}

/// A decoder for an upstream's stream.
pub fn stream_decoder(
    dialect: Dialect,
    origin: &str,
    max_event_bytes: usize,
) -> Box<dyn StreamDecoder> {
    match dialect {
        Dialect::OpenAiChat => {
            Box::new(openai_chat::ChatStreamDecoder::new(origin, max_event_bytes))
        }
        Dialect::OpenAiResponses => Box::new(openai_responses::ResponsesStreamDecoder::new(
            origin,
            max_event_bytes,
        )),
        Dialect::Anthropic => Box::new(anthropic::AnthropicStreamDecoder::new(
            origin,
            max_event_bytes,
        )),
        Dialect::Gemini => Box::new(gemini::GeminiStreamDecoder::new(origin, max_event_bytes)),
    }
}

/// An encoder for a client's stream.
pub fn stream_encoder(
    dialect: Dialect,
    meta: ReplyMeta,
    options: ClientStream,
) -> Box<dyn StreamEncoder> {
    match dialect {
        Dialect::OpenAiChat => Box::new(openai_chat::ChatStreamEncoder::new(
            meta,
            options.include_usage,
        )),
        Dialect::OpenAiResponses => Box::new(openai_responses::ResponsesStreamEncoder::new(meta)),
        Dialect::Anthropic => Box::new(anthropic::AnthropicStreamEncoder::new(meta)),
        Dialect::Gemini => Box::new(gemini::GeminiStreamEncoder::new(
            meta,
            if options.sse {
                gemini::Framing::Sse
            } else {
                gemini::Framing::Array
            },
        )),
    }
}

/// Whether a client's stream is one JSON array rather than SSE (Gemini
/// without `alt=sse`).
pub fn streams_as_array(dialect: Dialect, options: ClientStream) -> bool {
    dialect == Dialect::Gemini && !options.sse
}

/// The content type of a client's stream.
pub fn stream_content_type(dialect: Dialect, options: ClientStream) -> &'static str {
    if streams_as_array(dialect, options) {
        "application/json"
    } else {
        "text/event-stream"
    }
}

/// Every dialect, for tests and listings.
pub const DIALECTS: [Dialect; 4] = [
    Dialect::OpenAiChat,
    Dialect::OpenAiResponses,
    Dialect::Anthropic,
    Dialect::Gemini,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::StopReason;

    /// An empty object or an error object sent with a 200 is not an
    /// answer in any dialect: it must not become an empty reply.
    #[test]
    fn what_is_not_an_answer_is_refused_in_every_dialect() {
        for dialect in [
            Dialect::OpenAiChat,
            Dialect::OpenAiResponses,
            Dialect::Anthropic,
            Dialect::Gemini,
        ] {
            for body in [
                "{}",
                r#"{"error": {"message": "overloaded", "type": "overloaded_error"}}"#,
            ] {
                let answer = decode_response(dialect, body.as_bytes(), "up", &mut Vec::new());
                assert!(answer.is_err(), "{dialect:?} took {body}");
            }
        }
        // A Gemini answer without candidates because the prompt was
        // blocked is an answer.
        let blocked = r#"{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}"#;
        let answer = decode_response(Dialect::Gemini, blocked.as_bytes(), "up", &mut Vec::new());
        assert_eq!(answer.unwrap().stop_reason, StopReason::ContentFilter);
    }
}
