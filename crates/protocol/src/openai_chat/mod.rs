//! OpenAI Chat Completions: `POST /v1/chat/completions` and its stream.
//!
//! Facts: `reference/protocols.md` §7.1. Besides the conversions to and from
//! the canonical model, [`StreamTap`] meters a stream that passes through.

mod models;
mod passthrough;
mod request;
mod response;
mod stream;
mod wire;

#[cfg(test)]
mod tests;

pub use models::{model_ids, model_list};
pub use passthrough::{StreamTap, TapVerdict, response_usage};
pub use request::{ChatUpstream, decode_request, encode_request};
pub(crate) use request::{source_from_url, source_to_url};
pub use response::{decode_response, encode_response};
pub use stream::{ChatStreamDecoder, ChatStreamEncoder};
use subgate_core::Dialect;

use crate::error::ErrorReport;
use crate::sse;

/// The event that reports a failure in the middle of a stream: Chat
/// Completions has no error event type, so clients look for an `error`
/// object in a data line.
pub fn stream_error_event(report: &ErrorReport<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    let body = report.to_value(Dialect::OpenAiChat).to_string();
    sse::write_event(&mut out, None, &body);
    out
}
