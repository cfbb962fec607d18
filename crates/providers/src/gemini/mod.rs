//! Google's Gemini API with an API key.
//!
//! `x-goog-api-key`; `{base}/v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse` (always SSE: the gateway re-frames for
//! clients that want the JSON array), `:countTokens`, `{base}/v1beta/models`.
//! Facts: `reference/protocols.md` §4.3.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use subgate_config::{ProviderConfig, Url};
use subgate_core::{FailureClass, SecretString, expose};
use subgate_http::OutboundRequest;

use crate::common::{base_headers, join, retry_after};
use crate::{Account, Credential, Failure};

const API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");

#[derive(Debug)]
pub(crate) struct Gemini {
    base_url: Url,
    headers: Vec<(String, SecretString)>,
}

impl Gemini {
    pub(crate) fn new(config: &ProviderConfig) -> Self {
        Self {
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
        }
    }

    fn headers(&self, account: &Account, json_body: bool) -> HeaderMap {
        let mut headers = base_headers(&self.headers, json_body);
        if let Credential::ApiKey(key) = &account.credential
            && let Ok(value) = HeaderValue::try_from(expose(key))
        {
            headers.insert(API_KEY, value);
        }
        headers
    }

    fn model_url(&self, model: &str, method: &str) -> Url {
        // A model name never holds `/` or `:` in Gemini's catalog; escape
        // anything a client sends so it stays one path segment.
        let model: String = model
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                    c.to_string()
                } else {
                    format!("%{:02X}", u32::from(c))
                }
            })
            .collect();
        join(&self.base_url, &format!("v1beta/models/{model}:{method}"))
    }

    pub(crate) fn generate_request(
        &self,
        account: &Account,
        model: &str,
        stream: bool,
        body: Bytes,
    ) -> OutboundRequest {
        let url = if stream {
            let mut url = self.model_url(model, "streamGenerateContent");
            url.set_query(Some("alt=sse"));
            url
        } else {
            self.model_url(model, "generateContent")
        };
        OutboundRequest {
            method: Method::POST,
            url,
            headers: self.headers(account, true),
            body,
        }
    }

    pub(crate) fn count_request(
        &self,
        account: &Account,
        model: &str,
        body: Bytes,
    ) -> OutboundRequest {
        OutboundRequest {
            method: Method::POST,
            url: self.model_url(model, "countTokens"),
            headers: self.headers(account, true),
            body,
        }
    }

    pub(crate) fn models_request(&self, account: &Account) -> OutboundRequest {
        let mut url = join(&self.base_url, "v1beta/models");
        url.set_query(Some("pageSize=1000"));
        OutboundRequest {
            method: Method::GET,
            url,
            headers: self.headers(account, false),
            body: Bytes::new(),
        }
    }

    pub(crate) fn header_secrets(&self) -> impl Iterator<Item = &str> {
        crate::common::header_secrets(&self.headers)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelList {
    #[serde(default)]
    models: Vec<ModelEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelEntry {
    name: String,
    #[serde(default)]
    supported_generation_methods: Vec<String>,
}

/// The models that can generate, without the `models/` prefix.
pub(crate) fn parse_models(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    Ok(serde_json::from_slice::<ModelList>(body)?
        .models
        .into_iter()
        .filter(|model| {
            model.supported_generation_methods.is_empty()
                || model
                    .supported_generation_methods
                    .iter()
                    .any(|method| method == "generateContent")
        })
        .map(|model| {
            model
                .name
                .strip_prefix("models/")
                .map_or(model.name.clone(), str::to_owned)
        })
        .collect())
}

pub(crate) fn classify_failure(status: StatusCode, headers: &HeaderMap) -> Failure {
    Failure {
        class: FailureClass::from_upstream_status(status.as_u16()),
        retry_after: retry_after(headers),
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn urls_and_key() {
        let gemini = Gemini {
            base_url: Url::parse("http://127.0.0.1:9").unwrap(),
            headers: Vec::new(),
        };
        let account = Account {
            id: "g".into(),
            name: "g#1".into(),
            credential: Credential::ApiKey(SecretString::from("AIza-1")),
        };
        let stream = gemini.generate_request(&account, "gemini-2.5-pro", true, Bytes::new());
        assert_eq!(
            stream.url.as_str(),
            "http://127.0.0.1:9/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert_eq!(stream.headers["x-goog-api-key"], "AIza-1");
        let plain = gemini.generate_request(&account, "evil/../x", false, Bytes::new());
        assert_eq!(
            plain.url.as_str(),
            "http://127.0.0.1:9/v1beta/models/evil%2F..%2Fx:generateContent"
        );
        assert_eq!(
            gemini.count_request(&account, "m", Bytes::new()).url.path(),
            "/v1beta/models/m:countTokens"
        );
        let models = br#"{"models":[{"name":"models/gemini-2.5-pro","supportedGenerationMethods":["generateContent","countTokens"]},{"name":"models/embedding-001","supportedGenerationMethods":["embedContent"]}]}"#;
        assert_eq!(parse_models(models).unwrap(), ["gemini-2.5-pro"]);
    }
}
