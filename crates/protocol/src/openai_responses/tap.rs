//! Metering a Responses stream that passes through.

use memchr::memmem;
use serde::Deserialize;
use serde_json::json;
use subgate_core::Usage;

use super::wire::{ResponseObject, WireUsage};
use crate::error::ErrorKind;

/// Watches a Responses stream go by: the response id, the last sequence
/// number (a failure event must continue the count), usage and the
/// terminal event.
#[derive(Debug, Default)]
pub struct ResponsesTap {
    response_id: Option<String>,
    last_sequence: Option<u64>,
    usage: Option<Usage>,
    complete: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    response: Body,
}

#[derive(Deserialize)]
struct Body {
    id: Option<String>,
    usage: Option<WireUsage>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// The number after `"sequence_number":` in `data`, found without parsing
/// the event.
fn sequence_number(data: &str) -> Option<u64> {
    const KEY: &[u8] = b"\"sequence_number\":";
    let at = memmem::find(data.as_bytes(), KEY)? + KEY.len();
    let digits: String = data[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

impl ResponsesTap {
    /// Looks at one event.
    pub fn observe(&mut self, event: Option<&str>, data: &str) {
        if let Some(number) = sequence_number(data) {
            self.last_sequence = Some(number);
        }
        match event {
            Some("response.created") if self.response_id.is_none() => {
                self.response_id = serde_json::from_str::<Envelope>(data)
                    .ok()
                    .and_then(|envelope| envelope.response.id);
            }
            Some("response.completed" | "response.incomplete" | "response.failed") => {
                self.complete = true;
                if let Ok(envelope) = serde_json::from_str::<Envelope>(data) {
                    self.usage = envelope.response.usage.as_ref().map(Into::into);
                    if event == Some("response.failed") {
                        self.error = Some(
                            envelope
                                .response
                                .error
                                .and_then(|error| error.message)
                                .unwrap_or_default(),
                        );
                    }
                }
            }
            Some("error") => {
                self.complete = true;
                self.error = Some(String::new());
            }
            _ => {}
        }
    }

    /// The usage the terminal event reported.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether a terminal event arrived.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The upstream's own failure, if it reported one.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// A `response.failed` event that continues the stream's numbering.
    pub fn failure(&self, kind: ErrorKind, message: &str) -> Vec<u8> {
        let code = match kind {
            ErrorKind::RateLimited => "rate_limit_exceeded",
            ErrorKind::Overloaded => "server_is_overloaded",
            _ => "server_error",
        };
        let response = ResponseObject {
            id: self.response_id.as_deref().unwrap_or("resp_unknown"),
            created: 0,
            model: "",
            status: "failed",
            output: json!([]),
            usage: serde_json::Value::Null,
            incomplete: serde_json::Value::Null,
            error: json!({"code": code, "message": message}),
        }
        .into_value();
        let sequence = self.last_sequence.map_or(0, |last| last + 1);
        let data =
            json!({"type": "response.failed", "sequence_number": sequence, "response": response});
        let mut out = Vec::new();
        crate::sse::write_event(&mut out, Some("response.failed"), &data.to_string());
        out
    }
}

/// The usage of a non-streamed Responses answer.
pub fn response_usage(body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct WithUsage {
        usage: Option<WireUsage>,
    }
    serde_json::from_slice::<WithUsage>(body)
        .ok()?
        .usage
        .as_ref()
        .map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_read_without_parsing() {
        assert_eq!(
            sequence_number(
                r#"{"type":"x","sequence_number": 41,"delta":"\"sequence_number\":9"}"#
            ),
            Some(41)
        );
        assert_eq!(sequence_number(r#"{"type":"x"}"#), None);
    }
}
