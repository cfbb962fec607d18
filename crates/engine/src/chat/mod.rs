//! `POST /v1/chat/completions`, served by an upstream that speaks Chat
//! Completions: a pass-through. The body goes up with only the model name
//! (and, to meter streams, `stream_options.include_usage`) changed; the
//! answer comes back byte for byte, read on the side for usage.

mod stream;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use subgate_core::{Dialect, RequestId, mask};
use subgate_http::InboundResponse;
use subgate_protocol::openai_chat::{self, ChatRequest};
use subgate_providers::{Account, Provider};

use crate::usage::Meter;
use crate::{Engine, GatewayError, Reply, ReplyBody};

/// The largest upstream error body read and passed on.
const MAX_ERROR_BODY: usize = 1 << 20;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const PROVIDER: HeaderName = HeaderName::from_static("x-subgate-provider");
const ACCOUNT: HeaderName = HeaderName::from_static("x-subgate-account");

impl Engine {
    /// Serves a Chat Completions request.
    pub async fn chat_completions(&self, body: Bytes) -> Result<Reply, GatewayError> {
        let id = RequestId::from(uuid::Uuid::now_v7());
        let mut meter = Meter::new(&self.inner.usage, id, Dialect::OpenAiChat);
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::try_from(id.to_string()) {
            headers.insert(REQUEST_ID, value);
        }
        let stop = self.inner.stop_requests.clone();
        let outcome = tokio::select! {
            outcome = self.pass_through(body, &mut meter, &mut headers) => outcome,
            () = stop.cancelled() => Err(GatewayError::shutting_down()),
        };
        match outcome {
            Ok(mut reply) => {
                for (name, value) in &headers {
                    reply.headers.insert(name, value.clone());
                }
                Ok(reply)
            }
            Err(mut error) => {
                meter.finish(error.status.as_u16(), None, Some(error.class));
                error.headers.extend(headers);
                Err(error)
            }
        }
    }

    async fn pass_through(
        &self,
        body: Bytes,
        meter: &mut Meter,
        headers: &mut HeaderMap,
    ) -> Result<Reply, GatewayError> {
        let text = std::str::from_utf8(&body)
            .map_err(|_| GatewayError::bad_request("the request body is not valid UTF-8", None))?;
        let request = ChatRequest::parse(text)
            .map_err(|error| GatewayError::bad_request(error.to_string(), error.param()))?;
        let head = &request.head;
        meter.request(&head.model, head.stream);

        let target = self.resolve_model(&head.model).await?;
        let provider = &self.inner.providers[target.provider];
        let account = self.next_account(target.provider);
        meter.route(
            provider.name(),
            &account.id,
            &account.name,
            &target.upstream_model,
            provider.dialect(),
        );
        if let Ok(value) = HeaderValue::try_from(provider.name()) {
            headers.insert(PROVIDER, value);
        }
        if let Ok(value) = HeaderValue::try_from(account.name.as_str()) {
            headers.insert(ACCOUNT, value);
        }

        let upstream_body = request
            .upstream_body(&target.upstream_model, provider.stream_usage())
            .map_or_else(|| body.clone(), Bytes::from);
        let response = provider
            .transport()
            .send(provider.chat_request(account, upstream_body))
            .await
            .map_err(|error| GatewayError::transport(provider.name(), &error))?;
        if !response.status.is_success() {
            return Err(upstream_error(provider, account, response).await);
        }

        let is_event_stream = response
            .headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        if head.stream && is_event_stream {
            let mut reply_headers = HeaderMap::new();
            reply_headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            reply_headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            let stream = stream::ChatPassThrough::new(
                response.body,
                provider.max_event_bytes(),
                head.include_usage,
                meter.take(),
                self.inner.stop_requests.clone(),
            );
            return Ok(Reply {
                status: response.status,
                headers: reply_headers,
                body: ReplyBody::Stream(Box::pin(stream)),
            });
        }

        let content_type = response.headers.get(CONTENT_TYPE).cloned();
        let status = response.status;
        let whole = response
            .body
            .collect(provider.max_event_bytes())
            .await
            .map_err(|error| GatewayError::transport(provider.name(), &error))?;
        meter.first_byte();
        meter.finish(status.as_u16(), openai_chat::response_usage(&whole), None);
        let mut reply_headers = HeaderMap::new();
        reply_headers.insert(
            CONTENT_TYPE,
            content_type.unwrap_or(HeaderValue::from_static("application/json")),
        );
        Ok(Reply {
            status,
            headers: reply_headers,
            body: ReplyBody::Full(whole),
        })
    }
}

/// Turns an upstream's error answer into the client's error: same status,
/// the upstream's own error object when it is a well-formed one (scrubbed
/// of our secrets), else one written for it.
async fn upstream_error(
    provider: &Provider,
    account: &Account,
    response: InboundResponse,
) -> GatewayError {
    let failure = provider.classify_failure(response.status, &response.headers);
    let status = response.status;
    let raw = response
        .body
        .collect(MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let text = scrub(&String::from_utf8_lossy(&raw), &provider.secrets(account));
    tracing::debug!(
        provider = provider.name(),
        account = %account.name,
        status = status.as_u16(),
        "Upstream refused the request."
    );
    let value = serde_json::from_str::<serde_json::Value>(&text).ok();
    let well_formed = value
        .as_ref()
        .and_then(|value| value.get("error"))
        .and_then(|error| error.get("message"))
        .is_some_and(serde_json::Value::is_string);
    if well_formed {
        let message = value
            .as_ref()
            .and_then(|value| value["error"]["message"].as_str())
            .unwrap_or_default()
            .to_owned();
        return GatewayError::upstream(
            status,
            failure.class,
            message,
            Some(Bytes::from(text)),
            failure.retry_after,
        );
    }
    let detail = value
        .as_ref()
        .and_then(|value| {
            ["message", "error", "detail"]
                .iter()
                .find_map(|key| value.get(*key).and_then(serde_json::Value::as_str))
        })
        .map_or_else(
            || text.trim().chars().take(1000).collect::<String>(),
            str::to_owned,
        );
    let message = if detail.is_empty() {
        format!("provider `{}` answered {status}", provider.name())
    } else {
        format!("provider `{}` answered {status}: {detail}", provider.name())
    };
    let mut error =
        GatewayError::upstream(status, failure.class, message, None, failure.retry_after);
    if status == StatusCode::TOO_MANY_REQUESTS {
        error.code = Some("rate_limit_exceeded".to_owned());
    }
    error
}

/// Replaces every secret found in `text` with its masked form.
fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut clean = text.to_owned();
    for secret in secrets.iter().filter(|secret| secret.len() >= 4) {
        if clean.contains(secret) {
            clean = clean.replace(secret, &mask(secret));
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn scrub_masks_every_secret() {
        assert_eq!(
            scrub(
                "bad key sk-live-0123456789 (sk-live-0123456789)",
                &["sk-live-0123456789", "abc"]
            ),
            "bad key sk-l…[redacted] (sk-l…[redacted])"
        );
    }
}
