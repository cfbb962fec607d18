//! The Responses body the Codex backend accepts (`reference/protocols.md`
//! §2.3): always streamed and never stored, encrypted reasoning included so
//! it can be replayed, `instructions` present, and the parameters it
//! refuses left out (the client's output limit and sampling settings).

use serde_json::{Map, Value};

/// Parameters the backend answers 400 "Unsupported parameter" to.
const UNSUPPORTED: [&str; 6] = [
    "max_output_tokens",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "context_management",
];
const ENCRYPTED_REASONING: &str = "reasoning.encrypted_content";

/// The body edited for the backend; `None` when it is not a JSON object
/// (sent as is, for the backend to refuse in its own words).
pub(crate) fn prepare(body: &[u8]) -> Option<Vec<u8>> {
    let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    edit(&mut request);
    serde_json::to_vec(&request).ok()
}

fn edit(request: &mut Map<String, Value>) {
    request.insert("stream".to_owned(), Value::Bool(true));
    request.insert("store".to_owned(), Value::Bool(false));
    for name in UNSUPPORTED {
        request.remove(name);
    }
    match request.get("instructions") {
        Some(Value::String(_)) => {}
        _ => {
            request.insert("instructions".to_owned(), Value::String(String::new()));
        }
    }
    let include = request
        .entry("include")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !include.is_array() {
        *include = Value::Array(Vec::new());
    }
    if let Value::Array(items) = include
        && !items.iter().any(|item| item == ENCRYPTED_REASONING)
    {
        items.push(Value::String(ENCRYPTED_REASONING.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    #[test]
    fn the_body_follows_the_backends_rules() {
        let body = json!({
            "model": "gpt-5.2-codex",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "stream": false, "store": true, "max_output_tokens": 100, "temperature": 0.2, "top_p": 1,
            "context_management": [{"type": "compaction"}], "reasoning": {"effort": "high"},
        });
        let edited: Value =
            serde_json::from_slice(&prepare(body.to_string().as_bytes()).unwrap()).unwrap();
        assert_eq!(
            edited,
            json!({
                "model": "gpt-5.2-codex",
                "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
                "stream": true, "store": false, "instructions": "", "reasoning": {"effort": "high"},
                "include": ["reasoning.encrypted_content"],
            })
        );
        let kept =
            json!({"instructions": "be brief", "include": ["reasoning.encrypted_content", "x"]});
        let edited: Value =
            serde_json::from_slice(&prepare(kept.to_string().as_bytes()).unwrap()).unwrap();
        assert_eq!(edited["instructions"], "be brief");
        assert_eq!(
            edited["include"],
            json!(["reasoning.encrypted_content", "x"])
        );
        assert!(prepare(b"[1]").is_none());
    }
}
