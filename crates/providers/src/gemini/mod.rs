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

/// The prefix of this vendor's model names.
pub(crate) const FAMILY: &str = "gemini-";

/// Gemini models, for when the catalog cannot be fetched.
pub(crate) const MODELS: &[&str] = &[
    "gemini-3-pro-preview",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
];
use subgate_http::OutboundRequest;

use crate::common::{base_headers, join};
use crate::verdict::{Failure, Rest, Scope, parse_span};
use crate::{Account, Credential};

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

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GoogleError,
}

#[derive(Deserialize)]
struct GoogleError {
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDetail {
    #[serde(rename = "@type", default)]
    kind: String,
    retry_delay: Option<String>,
    reason: Option<String>,
    #[serde(default)]
    violations: Vec<Violation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Violation {
    quota_id: Option<String>,
}

/// Google's error details say more than the status: `RetryInfo` names the
/// wait, `ErrorInfo` says `QUOTA_EXHAUSTED` (a daily quota, not a burst)
/// or `API_KEY_INVALID` (sent with a 400), `QuotaFailure` names per-day
/// quotas.
pub(crate) fn classify_failure(status: StatusCode, headers: &HeaderMap, body: &str) -> Failure {
    let mut failure = Failure::from_status(status, headers);
    let Ok(envelope) = serde_json::from_str::<ErrorEnvelope>(body) else {
        return failure;
    };
    for detail in &envelope.error.details {
        if detail.kind.ends_with("google.rpc.RetryInfo")
            && failure.retry_after.is_none()
            && let Some(delay) = detail.retry_delay.as_deref()
        {
            failure.retry_after = parse_span(delay);
        }
        match detail.reason.as_deref() {
            // A bad key; or (Code Assist) the user must verify the account
            // on a page it links: only they can.
            Some("API_KEY_INVALID" | "VALIDATION_REQUIRED") => {
                failure.class = FailureClass::UpstreamAuth;
                failure.rest = Some(Rest::CredentialInvalid);
                failure.scope = Scope::Account;
            }
            Some("QUOTA_EXHAUSTED") => failure.rest = Some(Rest::QuotaExhausted),
            _ => {}
        }
        let daily = detail.violations.iter().any(|violation| {
            violation
                .quota_id
                .as_deref()
                .is_some_and(|id| id.contains("PerDay"))
        });
        if daily {
            failure.rest = Some(Rest::QuotaExhausted);
        }
    }
    // A wait this long is a used-up quota, not a passing limit (as Gemini
    // CLI reads it).
    if failure.rest == Some(Rest::RateLimited)
        && failure
            .retry_after
            .is_some_and(|wait| wait > std::time::Duration::from_mins(5))
    {
        failure.rest = Some(Rest::QuotaExhausted);
    }
    failure
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
            priority: 0,
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

    #[test]
    fn google_error_details_name_the_rest_and_the_wait() {
        let body = r#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel"}]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"31s"}]}}"#;
        let failure = classify_failure(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body);
        assert_eq!(failure.rest, Some(Rest::RateLimited));
        assert_eq!(
            failure.retry_after,
            Some(std::time::Duration::from_secs(31))
        );
        let daily = body.replace("PerMinute", "PerDay");
        let failure = classify_failure(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), &daily);
        assert_eq!(failure.rest, Some(Rest::QuotaExhausted));
        let bad_key = r#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
        let failure = classify_failure(StatusCode::BAD_REQUEST, &HeaderMap::new(), bad_key);
        assert_eq!(failure.rest, Some(Rest::CredentialInvalid));
        assert_eq!(failure.class, FailureClass::UpstreamAuth);
    }
}
