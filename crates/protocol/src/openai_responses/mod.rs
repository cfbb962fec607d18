//! OpenAI Responses: `POST /v1/responses` and its stream.
//!
//! Facts: `reference/protocols.md` §7.2. Reasoning items travel as thinking
//! blocks; their signature is the pair the upstream needs back, written
//! `<item id>#<encrypted_content>`, so both reach the upstream that made
//! them.

mod request;
mod response;
mod stream;
mod tap;
mod wire;

#[cfg(test)]
mod tests;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{ResponsesStreamDecoder, ResponsesStreamEncoder};
pub use tap::{ResponsesTap, response_usage};

/// Packs a reasoning item's id and encrypted content into one signature
/// value.
pub(crate) fn pack_reasoning(id: &str, encrypted: &str) -> String {
    format!("{id}#{encrypted}")
}

/// Unpacks [`pack_reasoning`]; a value without an id gets `fallback_id`.
pub(crate) fn unpack_reasoning<'a>(value: &'a str, fallback_id: &'a str) -> (&'a str, &'a str) {
    match value.split_once('#') {
        Some((id, encrypted)) if id.starts_with("rs_") => (id, encrypted),
        _ => (fallback_id, value),
    }
}
