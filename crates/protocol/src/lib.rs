//! subgate's wire dialects.
//!
//! Pure code only: codecs that take bytes and values and return bytes and
//! values. No I/O, no async runtime, no clock and no randomness; whoever
//! needs an id or a timestamp passes it in. Provider quirks do not belong
//! here either; they live with their provider in `subgate-providers`.
//!
//! Each dialect module converts between its wire and the [`canonical`]
//! model: requests both ways, responses both ways, and a stream decoder and
//! encoder. Translating dialect A to B always goes A → canonical → B.

pub mod anthropic;
pub mod aws_eventstream;
pub mod canonical;
pub mod codec;
pub mod count;
pub mod dispatch;
pub mod error;
pub mod gemini;
pub mod json_edit;
pub mod kiro;
pub mod models;
pub mod openai_chat;
pub mod openai_responses;
pub mod passthrough;
pub mod sse;
pub mod thinking_tags;

use serde::de::DeserializeOwned;

use crate::canonical::Invalid;

/// Parses a JSON body, naming the field at fault when it does not fit.
///
/// Bodies that fit are read once, plainly; only one that does not is read
/// again with its path tracked, for the message. Tracking the path costs
/// an allocation per field, a large share of a translated request's CPU.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Invalid> {
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        if path == "." {
            Invalid::body(format!("the request body is not valid: {message}"))
        } else {
            Invalid::field(path.clone(), format!("`{path}`: {message}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|error| Invalid::body(format!("the request body is not valid: {error}")))?;
    Ok(value)
}

/// Base64 as the dialects use it (standard alphabet, padded).
pub(crate) mod base64 {
    use ::base64::Engine as _;
    use ::base64::engine::general_purpose::STANDARD;

    /// Encodes bytes.
    pub(crate) fn encode(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }
}

#[cfg(test)]
mod matrix_tests;
#[cfg(test)]
mod testing;
