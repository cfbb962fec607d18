//! Token-count requests and answers: Anthropic's `POST
//! /v1/messages/count_tokens` and Gemini's `:countTokens`. The other
//! dialects have no count endpoint; a count for their clients is answered
//! in Anthropic's shape.

use serde_json::{Value, json};
use subgate_core::Dialect;

use crate::canonical::{Dropped, Invalid, Request};
use crate::dispatch::{self, RequestLine};

/// A client's count request read as the generation request it describes.
/// Gemini's may wrap it in `generateContentRequest`.
pub fn decode_request(
    client: Dialect,
    body: &[u8],
    model: &str,
    dropped: &mut Vec<Dropped>,
) -> Result<Request, Invalid> {
    let line = RequestLine {
        model: Some(model),
        stream: false,
        sse: false,
    };
    if client == Dialect::Gemini
        && let Ok(value) = serde_json::from_slice::<Value>(body)
        && let Some(inner) = value.get("generateContentRequest")
    {
        let inner = serde_json::to_vec(inner).unwrap_or_default();
        return dispatch::decode_request(client, &inner, line, dropped);
    }
    dispatch::decode_request(client, body, line, dropped)
}

/// A generation body in `upstream`'s dialect → its count request body.
pub fn upstream_body(upstream: Dialect, model: &str, generate: &[u8]) -> Vec<u8> {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(generate) else {
        return generate.to_vec();
    };
    match upstream {
        Dialect::Anthropic => {
            // count_tokens takes what shapes the prompt, nothing about output.
            for key in [
                "max_tokens",
                "stream",
                "temperature",
                "top_p",
                "top_k",
                "stop_sequences",
                "metadata",
            ] {
                body.remove(key);
            }
            serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
        }
        Dialect::Gemini => {
            body.insert("model".to_owned(), format!("models/{model}").into());
            serde_json::to_vec(&json!({"generateContentRequest": body})).unwrap_or_default()
        }
        Dialect::OpenAiChat | Dialect::OpenAiResponses => generate.to_vec(),
    }
}

/// The count in an upstream's count answer.
pub fn read_count(upstream: Dialect, body: &[u8]) -> Option<u64> {
    let value: Value = serde_json::from_slice(body).ok()?;
    match upstream {
        Dialect::Anthropic => value["input_tokens"].as_u64(),
        Dialect::Gemini => value["totalTokens"].as_u64(),
        Dialect::OpenAiChat | Dialect::OpenAiResponses => None,
    }
}

/// A count answer in the client's dialect.
pub fn encode_reply(client: Dialect, tokens: u64) -> Vec<u8> {
    let value = match client {
        Dialect::Gemini => json!({"totalTokens": tokens}),
        Dialect::Anthropic | Dialect::OpenAiChat | Dialect::OpenAiResponses => {
            json!({"input_tokens": tokens})
        }
    };
    value.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn count_bodies_take_each_upstream_shape() {
        let anthropic = upstream_body(
            Dialect::Anthropic,
            "claude",
            br#"{"model":"claude","max_tokens":10,"messages":[],"stream":true}"#,
        );
        assert_eq!(anthropic, br#"{"model":"claude","messages":[]}"#);
        let gemini = upstream_body(Dialect::Gemini, "gemini-2.5-pro", br#"{"contents":[]}"#);
        assert_eq!(
            gemini,
            br#"{"generateContentRequest":{"contents":[],"model":"models/gemini-2.5-pro"}}"#
        );
        assert_eq!(
            read_count(Dialect::Gemini, br#"{"totalTokens":31}"#),
            Some(31)
        );
        assert_eq!(
            encode_reply(Dialect::Anthropic, 31),
            br#"{"input_tokens":31}"#
        );
    }

    #[test]
    fn gemini_count_requests_may_wrap_the_generation_request() {
        let wrapped = br#"{"generateContentRequest":{"model":"models/m","contents":[{"role":"user","parts":[{"text":"hi"}]}]}}"#;
        let bare = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
        let read = |body: &[u8]| decode_request(Dialect::Gemini, body, "m", &mut Vec::new());
        assert_eq!(
            read(wrapped).unwrap().messages,
            read(bare).unwrap().messages
        );
    }
}
