//! Responses wire shapes shared by the conversions.

use serde::Deserialize;
use serde_json::{Value, json};
use subgate_core::Usage;

use crate::canonical::StopReason;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireUsage {
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) input_tokens_details: Option<InputDetails>,
    pub(crate) output_tokens_details: Option<OutputDetails>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct InputDetails {
    pub(crate) cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct OutputDetails {
    pub(crate) reasoning_tokens: Option<u64>,
}

impl From<&WireUsage> for Usage {
    fn from(wire: &WireUsage) -> Self {
        Self {
            input_tokens: wire.input_tokens.unwrap_or(0),
            output_tokens: wire.output_tokens.unwrap_or(0),
            cache_read_tokens: wire
                .input_tokens_details
                .as_ref()
                .and_then(|details| details.cached_tokens)
                .unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: wire
                .output_tokens_details
                .as_ref()
                .and_then(|details| details.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

pub(crate) fn usage_to_wire(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens(),
    })
}

/// A response's `status` and `incomplete_details.reason` → canonical.
pub(crate) fn stop_from_wire(
    status: Option<&str>,
    incomplete: Option<&str>,
    called: bool,
) -> StopReason {
    match (status, incomplete) {
        (Some("incomplete"), Some("content_filter")) => StopReason::ContentFilter,
        (Some("incomplete"), _) => StopReason::MaxTokens,
        _ if called => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

/// Canonical → `status` and `incomplete_details`.
pub(crate) fn status_to_wire(reason: StopReason) -> (&'static str, Value) {
    match reason {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::ToolUse => {
            ("completed", Value::Null)
        }
        StopReason::MaxTokens => ("incomplete", json!({"reason": "max_output_tokens"})),
        StopReason::ContentFilter => ("incomplete", json!({"reason": "content_filter"})),
    }
}

/// A response object: what `POST /v1/responses` returns and what the
/// stream's lifecycle events carry.
pub(crate) struct ResponseObject<'a> {
    pub(crate) id: &'a str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) status: &'a str,
    pub(crate) output: Value,
    pub(crate) usage: Value,
    pub(crate) incomplete: Value,
    pub(crate) error: Value,
}

impl ResponseObject<'_> {
    /// The object, with the fields SDKs read besides the output.
    pub(crate) fn into_value(self) -> Value {
        let mut object = json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": self.status,
        });
        let fields = [
            ("error", self.error),
            ("incomplete_details", self.incomplete),
            ("instructions", Value::Null),
            ("max_output_tokens", Value::Null),
            ("model", self.model.into()),
            ("output", self.output),
            ("parallel_tool_calls", true.into()),
            ("previous_response_id", Value::Null),
            ("reasoning", json!({"effort": null, "summary": null})),
            ("store", false.into()),
            ("temperature", Value::Null),
            ("text", json!({"format": {"type": "text"}})),
            ("tool_choice", "auto".into()),
            ("tools", json!([])),
            ("top_p", Value::Null),
            ("truncation", "disabled".into()),
            ("usage", self.usage),
            ("metadata", json!({})),
        ];
        if let Value::Object(map) = &mut object {
            for (key, value) in fields {
                map.insert(key.to_owned(), value);
            }
        }
        object
    }
}
