//! Requests as an OpenAI-compatible upstream expects them.

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Method};
use subgate_core::expose;
use subgate_http::OutboundRequest;

use super::OpenAiCompatible;
use crate::common::{base_headers, join};
use crate::{Account, Credential};

/// Adds `Authorization: Bearer <key>` for an account with a key.
fn bearer(headers: &mut HeaderMap, account: &Account) {
    match &account.credential {
        Credential::None => {}
        Credential::ApiKey(key) => {
            if let Ok(value) = HeaderValue::try_from(format!("Bearer {}", expose(key))) {
                headers.insert(AUTHORIZATION, value);
            }
        }
        Credential::Login(session) => {
            if let Ok(value) =
                HeaderValue::try_from(format!("Bearer {}", session.tokens().bearer()))
            {
                headers.insert(AUTHORIZATION, value);
            }
        }
    }
}

impl OpenAiCompatible {
    /// `POST {base}/{path}` with the account's key.
    pub(crate) fn post(&self, account: &Account, path: &str, body: Bytes) -> OutboundRequest {
        let mut headers = base_headers(&self.headers, true);
        bearer(&mut headers, account);
        OutboundRequest {
            method: Method::POST,
            url: join(&self.base_url, path),
            headers,
            body,
        }
    }

    pub(crate) fn models_request(&self, account: &Account) -> OutboundRequest {
        let mut headers = base_headers(&self.headers, false);
        bearer(&mut headers, account);
        OutboundRequest {
            method: Method::GET,
            url: join(&self.base_url, "models"),
            headers,
            body: Bytes::new(),
        }
    }
}
