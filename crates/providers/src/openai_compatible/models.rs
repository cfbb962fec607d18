//! The upstream's model catalog.

/// Model ids from `GET {base_url}/models`.
pub(crate) fn parse_models(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    subgate_protocol::openai_chat::model_ids(body)
}
