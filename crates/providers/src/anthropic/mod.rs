//! Anthropic's API with an API key.
//!
//! `x-api-key`, `anthropic-version: 2023-06-01`, and the client's
//! `anthropic-beta` passed along when the client speaks Anthropic too.
//! `{base}/v1/messages`, `{base}/v1/messages/count_tokens`, `{base}/v1/models`.
//! Facts: `reference/protocols.md` §1.4–1.5.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use subgate_config::{ProviderConfig, Url};
use subgate_core::{FailureClass, SecretString, expose};
use subgate_http::OutboundRequest;
use subgate_protocol::anthropic::VERSION;

use crate::common::{base_headers, join, retry_after};
use crate::{Account, Credential, Failure};

const API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");

#[derive(Debug)]
pub(crate) struct Anthropic {
    base_url: Url,
    headers: Vec<(String, SecretString)>,
}

impl Anthropic {
    pub(crate) fn new(config: &ProviderConfig) -> Self {
        Self {
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
        }
    }

    fn headers(&self, account: &Account, json_body: bool, client: Option<&HeaderMap>) -> HeaderMap {
        let mut headers = base_headers(&self.headers, json_body);
        headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static(VERSION));
        if let Credential::ApiKey(key) = &account.credential
            && let Ok(value) = HeaderValue::try_from(expose(key))
        {
            headers.insert(API_KEY, value);
        }
        // The client's betas (an Anthropic client's, on a pass-through).
        if let Some(beta) = client.and_then(|client| client.get(ANTHROPIC_BETA)) {
            headers.insert(ANTHROPIC_BETA, beta.clone());
        }
        headers
    }

    pub(crate) fn messages_request(
        &self,
        account: &Account,
        body: Bytes,
        client: Option<&HeaderMap>,
    ) -> OutboundRequest {
        OutboundRequest {
            method: Method::POST,
            url: join(&self.base_url, "v1/messages"),
            headers: self.headers(account, true, client),
            body,
        }
    }

    pub(crate) fn count_request(
        &self,
        account: &Account,
        body: Bytes,
        client: Option<&HeaderMap>,
    ) -> OutboundRequest {
        OutboundRequest {
            method: Method::POST,
            url: join(&self.base_url, "v1/messages/count_tokens"),
            headers: self.headers(account, true, client),
            body,
        }
    }

    pub(crate) fn models_request(&self, account: &Account) -> OutboundRequest {
        let mut url = join(&self.base_url, "v1/models");
        url.set_query(Some("limit=1000"));
        OutboundRequest {
            method: Method::GET,
            url,
            headers: self.headers(account, false, None),
            body: Bytes::new(),
        }
    }

    pub(crate) fn header_secrets(&self) -> impl Iterator<Item = &str> {
        crate::common::header_secrets(&self.headers)
    }
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

pub(crate) fn parse_models(body: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    Ok(serde_json::from_slice::<ModelList>(body)?
        .data
        .into_iter()
        .map(|entry| entry.id)
        .collect())
}

pub(crate) fn classify_failure(status: StatusCode, headers: &HeaderMap) -> Failure {
    let class = match status.as_u16() {
        // 529: Anthropic is overloaded, not this account.
        529 => FailureClass::UpstreamFault,
        other => FailureClass::from_upstream_status(other),
    };
    Failure {
        class,
        retry_after: retry_after(headers),
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn requests_carry_key_version_and_client_betas() {
        let anthropic = Anthropic {
            base_url: Url::parse("http://127.0.0.1:9/").unwrap(),
            headers: Vec::new(),
        };
        let account = Account {
            id: "a".into(),
            name: "a#1".into(),
            credential: Credential::ApiKey(SecretString::from("sk-ant-1")),
        };
        let mut client = HeaderMap::new();
        client.insert(
            ANTHROPIC_BETA,
            HeaderValue::from_static("interleaved-thinking-2025-05-14"),
        );
        let request =
            anthropic.messages_request(&account, Bytes::from_static(b"{}"), Some(&client));
        assert_eq!(request.url.as_str(), "http://127.0.0.1:9/v1/messages");
        assert_eq!(request.headers["x-api-key"], "sk-ant-1");
        assert_eq!(request.headers["anthropic-version"], "2023-06-01");
        assert_eq!(
            request.headers["anthropic-beta"],
            "interleaved-thinking-2025-05-14"
        );
        assert!(request.headers.get("authorization").is_none());
        assert_eq!(
            anthropic.models_request(&account).url.as_str(),
            "http://127.0.0.1:9/v1/models?limit=1000"
        );
        assert_eq!(
            classify_failure(StatusCode::from_u16(529).unwrap(), &HeaderMap::new()).class,
            FailureClass::UpstreamFault
        );
        assert_eq!(
            parse_models(
                br#"{"data":[{"type":"model","id":"claude-sonnet-4-5"}],"has_more":false}"#
            )
            .unwrap(),
            ["claude-sonnet-4-5"]
        );
    }
}
