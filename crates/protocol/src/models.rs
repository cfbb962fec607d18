//! Model listings in each client dialect's shape.

use serde_json::{Value, json};

/// How a listing is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListShape {
    /// OpenAI's `{"object":"list","data":[…]}`.
    OpenAi,
    /// Anthropic's `{"data":[…],"has_more":false,…}`.
    Anthropic,
    /// Gemini's `{"models":[…]}`.
    Gemini,
}

fn entry(shape: ListShape, id: &str, owner: &str) -> Value {
    match shape {
        ListShape::OpenAi => json!({"id": id, "object": "model", "created": 0, "owned_by": owner}),
        ListShape::Anthropic => {
            json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"})
        }
        ListShape::Gemini => json!({
            "name": format!("models/{id}"),
            "displayName": id,
            "description": format!("served by {owner}"),
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
        }),
    }
}

/// A listing of `(id, owner)` pairs.
pub fn list<'a>(shape: ListShape, models: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let entries: Vec<Value> = models
        .into_iter()
        .map(|(id, owner)| entry(shape, id, owner))
        .collect();
    let body = match shape {
        ListShape::OpenAi => json!({"object": "list", "data": entries}),
        ListShape::Anthropic => {
            let first = entries
                .first()
                .map_or(Value::Null, |entry| entry["id"].clone());
            let last = entries
                .last()
                .map_or(Value::Null, |entry| entry["id"].clone());
            json!({"data": entries, "has_more": false, "first_id": first, "last_id": last})
        }
        ListShape::Gemini => json!({"models": entries}),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// One model.
pub fn one(shape: ListShape, id: &str, owner: &str) -> Vec<u8> {
    serde_json::to_vec(&entry(shape, id, owner)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let models = [("m1", "p"), ("m2", "q")];
        let openai: Value = serde_json::from_slice(&list(ListShape::OpenAi, models)).unwrap();
        assert_eq!(openai["data"][1]["owned_by"], "q");
        let anthropic: Value = serde_json::from_slice(&list(ListShape::Anthropic, models)).unwrap();
        assert_eq!(
            (
                anthropic["first_id"].as_str(),
                anthropic["last_id"].as_str()
            ),
            (Some("m1"), Some("m2"))
        );
        let gemini: Value = serde_json::from_slice(&list(ListShape::Gemini, models)).unwrap();
        assert_eq!(gemini["models"][0]["name"], "models/m1");
    }
}
