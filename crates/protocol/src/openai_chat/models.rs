//! `GET /models` in Chat Completions' shape.

use serde::Deserialize;

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

/// The model ids in a `GET /models` response.
pub fn model_ids(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    Ok(serde_json::from_slice::<ModelList>(body)?
        .data
        .into_iter()
        .map(|entry| entry.id)
        .collect())
}

/// A `GET /v1/models` response listing `(id, owned_by)` pairs.
pub fn model_list<'a>(models: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let data: Vec<serde_json::Value> = models
        .into_iter()
        .map(|(id, owner)| {
            serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": owner})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"object": "list", "data": data})).unwrap_or_default()
}
