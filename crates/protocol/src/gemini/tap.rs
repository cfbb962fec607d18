//! Metering a Gemini stream that passes through, and re-framing it as the
//! JSON array a client without `alt=sse` expects.

use memchr::memmem;
use serde::Deserialize;
use serde_json::Value;
use subgate_core::Usage;

use super::usage_from_wire;
use crate::error::{ErrorKind, ErrorReport};

/// Watches a Gemini SSE stream go by: usage from `usageMetadata`, completion
/// at the chunk with a `finishReason`.
#[derive(Debug, Default)]
pub struct GeminiTap {
    usage: Option<Usage>,
    complete: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WithUsage {
    usage_metadata: Option<Value>,
    error: Option<Value>,
}

impl GeminiTap {
    /// Looks at one event's data.
    pub fn observe(&mut self, data: &str) {
        let bytes = data.as_bytes();
        if memmem::find(bytes, b"\"finishReason\"").is_some() {
            self.complete = true;
        }
        if (memmem::find(bytes, b"\"usageMetadata\"").is_some() || data.starts_with("{\"error\""))
            && let Ok(chunk) = serde_json::from_str::<WithUsage>(data)
        {
            if let Some(metadata) = chunk.usage_metadata {
                self.usage = Some(usage_from_wire(&metadata));
            }
            if let Some(error) = chunk.error {
                self.error = Some(error["message"].as_str().unwrap_or_default().to_owned());
            }
        }
    }

    /// The latest usage reported.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether a finish reason arrived.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The upstream's own error, if it sent one.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The error that ends the client's stream (as an SSE event; the array
    /// re-framer wraps it).
    pub fn failure(kind: ErrorKind, message: &str) -> Vec<u8> {
        let body = ErrorReport {
            kind,
            status: 500,
            message,
            code: None,
            param: None,
        }
        .to_value(subgate_core::Dialect::Gemini);
        let mut out = Vec::new();
        crate::sse::write_event(&mut out, None, &body.to_string());
        out
    }
}

/// Turns SSE events into the elements of one JSON array, for Gemini clients
/// that did not ask for `alt=sse` (the upstream is always asked for SSE).
#[derive(Debug, Default)]
pub struct ArrayFraming {
    written: usize,
}

impl ArrayFraming {
    /// Appends one element.
    pub fn element(&mut self, data: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(if self.written == 0 { b"[" } else { b",\r\n" });
        out.extend_from_slice(data.as_bytes());
        self.written += 1;
    }

    /// Ends the array with an error element: the stream failed.
    pub fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
        let error = ErrorReport {
            kind,
            status: 500,
            message,
            code: None,
            param: None,
        }
        .to_value(subgate_core::Dialect::Gemini);
        self.element(&error.to_string(), out);
        self.close(out);
    }

    /// Closes the array (an empty stream becomes `[]`).
    pub fn close(&mut self, out: &mut Vec<u8>) {
        if self.written == 0 {
            out.push(b'[');
        }
        out.push(b']');
    }
}

/// The usage of a non-streamed Gemini answer.
pub fn response_usage(body: &[u8]) -> Option<Usage> {
    let chunk: WithUsage = serde_json::from_slice(body).ok()?;
    chunk.usage_metadata.as_ref().map(usage_from_wire)
}
