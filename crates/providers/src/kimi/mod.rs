//! Kimi For Coding (Moonshot) with an API key.
//!
//! The coding endpoint (`https://api.kimi.com/coding/v1`) speaks Chat
//! Completions with `reasoning_content` deltas, but serves only coding
//! agents it recognises: requests carry a Kimi CLI identity (`User-Agent`
//! and the `X-Msh-*` headers; each can be overridden with the entry's
//! `headers`, because these strings drift). The account's quota comes from
//! `GET {base}/usages`, numbers written as strings. A 403
//! `access_terminated_error` means either an unrecognised client or a used
//! up weekly quota, told apart by its message. Facts: `reference/protocols.md` §6.

mod errors;
mod usage;

use bytes::Bytes;
use http::header::{AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use subgate_config::{ProviderConfig, Url};
use subgate_core::{SecretString, expose, fingerprint};
use subgate_http::OutboundRequest;

pub(crate) use errors::classify_failure;
pub(crate) use usage::parse_usage;

use crate::common::{base_headers, join};
use crate::{Account, Credential};

/// The prefix of this vendor's model names.
pub(crate) const FAMILY: &str = "kimi-";

/// The models the coding plan serves.
pub(crate) const MODELS: &[&str] = &["kimi-for-coding", "kimi-for-coding-highspeed"];

/// The Kimi CLI version the identity claims.
const CLI_VERSION: &str = "1.10.6";

#[derive(Debug)]
pub(crate) struct Kimi {
    base_url: Url,
    headers: Vec<(String, SecretString)>,
}

impl Kimi {
    pub(crate) fn new(config: &ProviderConfig) -> Self {
        Self {
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
        }
    }

    /// The configured headers, then the identity where the config did not
    /// set it, then the bearer key.
    fn headers(&self, account: &Account, json_body: bool) -> HeaderMap {
        let mut headers = base_headers(&self.headers, json_body);
        let device_id = match &account.credential {
            Credential::ApiKey(key) => fingerprint(key),
            Credential::None => "000000000000".to_owned(),
            Credential::Login(_) => fingerprint(&SecretString::from(account.id.clone())),
        };
        let identity = [
            (USER_AGENT, format!("KimiCLI/{CLI_VERSION}")),
            (
                HeaderName::from_static("x-msh-platform"),
                "kimi_cli".to_owned(),
            ),
            (
                HeaderName::from_static("x-msh-version"),
                CLI_VERSION.to_owned(),
            ),
            (
                HeaderName::from_static("x-msh-device-name"),
                "subgate".to_owned(),
            ),
            (
                HeaderName::from_static("x-msh-device-model"),
                std::env::consts::ARCH.to_owned(),
            ),
            (
                HeaderName::from_static("x-msh-os-version"),
                std::env::consts::OS.to_owned(),
            ),
            (HeaderName::from_static("x-msh-device-id"), device_id),
        ];
        for (name, value) in identity {
            if !headers.contains_key(&name)
                && let Ok(value) = HeaderValue::try_from(value)
            {
                headers.insert(name, value);
            }
        }
        if let Credential::ApiKey(key) = &account.credential
            && let Ok(value) = HeaderValue::try_from(format!("Bearer {}", expose(key)))
        {
            headers.insert(AUTHORIZATION, value);
        }
        headers
    }

    fn request(
        &self,
        account: &Account,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> OutboundRequest {
        OutboundRequest {
            headers: self.headers(account, method == Method::POST),
            method,
            url: join(&self.base_url, path),
            body,
        }
    }

    pub(crate) fn chat_request(&self, account: &Account, body: Bytes) -> OutboundRequest {
        self.request(account, Method::POST, "chat/completions", body)
    }

    pub(crate) fn models_request(&self, account: &Account) -> OutboundRequest {
        self.request(account, Method::GET, "models", Bytes::new())
    }

    pub(crate) fn usage_request(&self, account: &Account) -> OutboundRequest {
        self.request(account, Method::GET, "usages", Bytes::new())
    }

    pub(crate) fn header_secrets(&self) -> impl Iterator<Item = &str> {
        crate::common::header_secrets(&self.headers)
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use subgate_core::ProviderKind;

    use super::*;
    use crate::Provider;
    use crate::common::test_config;

    fn provider(headers: Vec<(String, SecretString)>) -> Provider {
        let config = test_config(
            ProviderKind::Kimi,
            "http://127.0.0.1:9/coding/v1",
            &["sk-kimi-test"],
            headers,
        );
        Provider::from_config(&config).unwrap()
    }
    #[test]
    fn requests_carry_the_cli_identity_and_the_key() {
        let provider = provider(Vec::new());
        let account = &provider.accounts()[0];
        let request = provider.quota_request(account).unwrap();
        assert_eq!(request.url.as_str(), "http://127.0.0.1:9/coding/v1/usages");
        assert_eq!(request.method, Method::GET);
        assert_eq!(request.headers[USER_AGENT], "KimiCLI/1.10.6");
        assert_eq!(request.headers["x-msh-platform"], "kimi_cli");
        assert_eq!(request.headers[AUTHORIZATION], "Bearer sk-kimi-test");
        assert_eq!(request.headers["x-msh-device-id"].len(), 12);
    }

    #[test]
    fn configured_headers_replace_the_identity() {
        let provider = provider(vec![(
            "user-agent".to_owned(),
            SecretString::from("kimi-code-cli/0.9.0"),
        )]);
        let call = crate::Call {
            wire: subgate_core::Dialect::OpenAiChat.into(),
            model: "kimi-for-coding",
            stream: true,
            body: Bytes::from_static(b"{}"),
            client_headers: None,
        };
        let request = provider
            .generate_request(&provider.accounts()[0], call)
            .request;
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:9/coding/v1/chat/completions"
        );
        assert_eq!(request.headers[USER_AGENT], "kimi-code-cli/0.9.0");
        assert_eq!(request.headers["x-msh-version"], "1.10.6");
    }
}
