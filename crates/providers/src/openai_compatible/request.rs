//! Requests as an OpenAI-compatible upstream expects them.

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use subgate_config::Url;
use subgate_core::expose;
use subgate_http::OutboundRequest;

use super::OpenAiCompatible;
use crate::{Account, Credential};

impl OpenAiCompatible {
    pub(crate) fn chat_request(&self, account: &Account, body: Bytes) -> OutboundRequest {
        let mut headers = self.headers(account);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        OutboundRequest {
            method: Method::POST,
            url: self.url("chat/completions"),
            headers,
            body,
        }
    }

    pub(crate) fn models_request(&self, account: &Account) -> OutboundRequest {
        OutboundRequest {
            method: Method::GET,
            url: self.url("models"),
            headers: self.headers(account),
            body: Bytes::new(),
        }
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base_url.clone();
        let joined = format!("{}/{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        url
    }

    fn headers(&self, account: &Account) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(self.headers.len() + 2);
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        // Validated when the config was loaded, so these parse.
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(expose(value)),
            ) {
                headers.insert(name, value);
            }
        }
        match &account.credential {
            Credential::None => {}
            Credential::ApiKey(key) => {
                if let Ok(value) = HeaderValue::try_from(format!("Bearer {}", expose(key))) {
                    headers.insert(AUTHORIZATION, value);
                }
            }
        }
        headers
    }
}
