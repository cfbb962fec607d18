//! A Google account as Gemini CLI uses it (`reference/protocols.md` §4.1,
//! §4.2): Gemini through the Code Assist API.
//!
//! Requests go to `{base}/v1internal:generateContent` and
//! `:streamGenerateContent?alt=sse` (base
//! `https://cloudcode-pa.googleapis.com`) with the login's bearer token; the
//! Gemini body is wrapped as `{"model","project","user_prompt_id",
//! "request":…}` with its tool schemas reduced to what Gemini accepts, and
//! every answer (each stream event, or the whole body) comes back wrapped as
//! `{"response":…,"traceId"}`, which [`Unwrap`] takes off. The project is
//! Code Assist's, found (and, for a new account, provisioned) once after
//! login ([`setup`]). There is no catalog endpoint: the models are built in.

pub(crate) mod cli_file;
mod login;
pub(crate) mod setup;
mod unwrap;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Map, Value, json};
use subgate_config::{ProviderConfig, Url};
use subgate_core::SecretString;
use subgate_http::OutboundRequest;

pub(crate) use login::{CALLBACK, Endpoints, read_tokens, read_userinfo};
pub(crate) use unwrap::Unwrap;

use crate::common::{base_headers, join};
use crate::verdict::{Quota, QuotaWindow, parse_instant};
use crate::{Account, Credential};

/// The identity Gemini CLI's requests carry; each overridable in `headers`.
const IDENTITY: [(&str, &str); 2] = [
    ("user-agent", "GeminiCLI/0.21.0 (linux; x64; terminal)"),
    (
        "x-goog-api-client",
        "google-genai-sdk/1.41.0 gl-node/v22.19.0",
    ),
];

/// The models Code Assist serves (it has no catalog endpoint).
pub(crate) const MODELS: &[&str] = &[
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
];

#[derive(Debug)]
pub(crate) struct GeminiCli {
    base_url: Url,
    headers: Vec<(String, SecretString)>,
    pub(crate) endpoints: Endpoints,
}

impl GeminiCli {
    pub(crate) fn new(config: &ProviderConfig) -> Self {
        Self {
            base_url: config.base_url.clone(),
            headers: config.headers.clone(),
            endpoints: Endpoints::new(config.auth_url.as_ref()),
        }
    }

    /// Code Assist's headers, with `bearer` when given.
    pub(crate) fn code_assist_headers(&self, bearer: Option<&str>, json_body: bool) -> HeaderMap {
        let mut headers = base_headers(&self.headers, json_body);
        for (name, value) in IDENTITY {
            if !headers.contains_key(name) {
                headers.insert(name, HeaderValue::from_static(value));
            }
        }
        if let Some(bearer) = bearer
            && let Ok(value) = HeaderValue::try_from(format!("Bearer {bearer}"))
        {
            headers.insert(http::header::AUTHORIZATION, value);
        }
        headers
    }

    /// `POST {base}/v1internal:<method>`.
    pub(crate) fn method_url(&self, method: &str) -> Url {
        join(&self.base_url, &format!("v1internal:{method}"))
    }

    fn account_headers(&self, account: &Account, json_body: bool) -> (HeaderMap, Option<String>) {
        match &account.credential {
            Credential::Login(session) => {
                let tokens = session.tokens();
                (
                    self.code_assist_headers(Some(tokens.bearer()), json_body),
                    tokens.login.project.clone(),
                )
            }
            Credential::None | Credential::ApiKey(_) => {
                (self.code_assist_headers(None, json_body), None)
            }
        }
    }

    pub(crate) fn generate_request(
        &self,
        account: &Account,
        model: &str,
        stream: bool,
        body: &[u8],
    ) -> OutboundRequest {
        let (mut headers, project) = self.account_headers(account, true);
        let url = if stream {
            headers.insert(
                http::header::ACCEPT,
                HeaderValue::from_static("text/event-stream"),
            );
            let mut url = self.method_url("streamGenerateContent");
            url.set_query(Some("alt=sse"));
            url
        } else {
            self.method_url("generateContent")
        };
        OutboundRequest {
            method: Method::POST,
            url,
            headers,
            body: Bytes::from(wrap(model, project.as_deref(), body)),
        }
    }

    /// `countTokens`: `{"request":{"model":"models/<m>","contents"}}`.
    pub(crate) fn count_request(
        &self,
        account: &Account,
        model: &str,
        body: &[u8],
    ) -> OutboundRequest {
        let (headers, _) = self.account_headers(account, true);
        let contents = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|mut body| body.get_mut("contents").map(Value::take))
            .unwrap_or_else(|| Value::Array(Vec::new()));
        let body = json!({"request": {"model": format!("models/{model}"), "contents": contents}});
        OutboundRequest {
            method: Method::POST,
            url: self.method_url("countTokens"),
            headers,
            body: Bytes::from(body.to_string()),
        }
    }

    /// `retrieveUserQuota` for the login's project (none before setup
    /// found one).
    pub(crate) fn usage_request(&self, account: &Account) -> Option<OutboundRequest> {
        let (headers, project) = self.account_headers(account, true);
        Some(OutboundRequest {
            method: Method::POST,
            url: self.method_url("retrieveUserQuota"),
            headers,
            body: Bytes::from(json!({ "project": project? }).to_string()),
        })
    }

    pub(crate) fn header_secrets(&self) -> impl Iterator<Item = &str> {
        crate::common::header_secrets(&self.headers)
    }
}

/// Reads `retrieveUserQuota` (§4.2): one window per model and kind of
/// count, as the percentage left, resting only that model when it is used
/// up.
pub(crate) fn parse_usage(body: &[u8]) -> Result<Quota, serde_json::Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Quotas {
        #[serde(default)]
        buckets: Vec<Bucket>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Bucket {
        model_id: Option<String>,
        token_type: Option<String>,
        remaining_fraction: Option<f64>,
        reset_time: Option<String>,
    }
    let quotas: Quotas = serde_json::from_slice(body)?;
    let windows = quotas
        .buckets
        .into_iter()
        .filter_map(|bucket| {
            let model = bucket.model_id?;
            let kind = bucket
                .token_type
                .map_or_else(|| "requests".to_owned(), |kind| kind.to_ascii_lowercase());
            Some(QuotaWindow {
                name: format!("{model} {kind}"),
                limit: 100.0,
                remaining: (bucket.remaining_fraction? * 100.0).clamp(0.0, 100.0),
                resets_at: bucket.reset_time.as_deref().and_then(parse_instant),
                model: Some(model),
            })
        })
        .collect();
    Ok(Quota { windows })
}

/// The Code Assist request around a Gemini body: the model, the project,
/// a prompt id, and the body with its tool schemas sanitized (a
/// pass-through client's schemas were never translated).
fn wrap(model: &str, project: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut request = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(request)) => request,
        _ => Map::new(),
    };
    request.remove("model");
    if let Some(Value::Array(tools)) = request.get_mut("tools") {
        for tool in tools {
            let Some(Value::Array(declarations)) = tool.get_mut("functionDeclarations") else {
                continue;
            };
            for declaration in declarations {
                for key in ["parameters", "parametersJsonSchema"] {
                    if let Some(schema) = declaration.get_mut(key) {
                        *schema = subgate_protocol::gemini::sanitize_schema(schema);
                    }
                }
            }
        }
    }
    let wrapped = json!({
        "model": model,
        "project": project,
        "user_prompt_id": uuid::Uuid::now_v7().to_string(),
        "request": request,
    });
    serde_json::to_vec(&wrapped).unwrap_or_default()
}

#[cfg(test)]
mod tests;
