//! The request pipeline for generation: route the model, pick the account
//! and the upstream dialect, then pass the request through (same dialect)
//! or translate it (different dialects), and hand back a [`Reply`].

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use subgate_core::{Dialect, RequestId, mask};
use subgate_http::InboundResponse;
use subgate_protocol::canonical::{Dropped, ReplyMeta};
use subgate_protocol::error::client_status;
use subgate_protocol::passthrough::{BodyHead, upstream_error};
use subgate_providers::{Account, Call, Provider};

use crate::usage::Meter;
use crate::{ClientRequest, Engine, GatewayError, Reply};

/// The largest upstream error body read and passed on.
const MAX_ERROR_BODY: usize = 1 << 20;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const PROVIDER: HeaderName = HeaderName::from_static("x-subgate-provider");
const ACCOUNT: HeaderName = HeaderName::from_static("x-subgate-account");

/// Everything decided about one request before it goes upstream.
pub(crate) struct Plan<'a> {
    pub(crate) request: &'a ClientRequest,
    pub(crate) head: &'a BodyHead<'a>,
    pub(crate) provider: &'a Provider,
    pub(crate) account: &'a Account,
    pub(crate) upstream: Dialect,
    pub(crate) upstream_model: &'a str,
    pub(crate) meta: ReplyMeta,
}

impl Engine {
    /// Serves a generation request in any client dialect.
    pub async fn generate(&self, request: ClientRequest) -> Result<Reply, GatewayError> {
        let id = RequestId::from(uuid::Uuid::now_v7());
        let mut meter = Meter::new(&self.inner.usage, id, request.dialect);
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::try_from(id.to_string()) {
            headers.insert(REQUEST_ID, value);
        }
        let stop = self.inner.stop_requests.clone();
        let outcome = tokio::select! {
            outcome = self.serve(&request, id, &mut meter, &mut headers) => outcome,
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

    async fn serve(
        &self,
        request: &ClientRequest,
        id: RequestId,
        meter: &mut Meter,
        headers: &mut HeaderMap,
    ) -> Result<Reply, GatewayError> {
        let head = BodyHead::parse(request.dialect, &request.body, request.line())
            .map_err(GatewayError::invalid)?;
        meter.request(&head.model, head.stream);
        let target = self.resolve_model(&head.model).await?;
        let provider = &self.inner.providers[target.provider];
        let account = self.next_account(target.provider);
        let upstream = provider.dialect_for(request.dialect);
        meter.route(
            provider.name(),
            &account.id,
            &account.name,
            &target.upstream_model,
            upstream,
        );
        if let Ok(value) = HeaderValue::try_from(provider.name()) {
            headers.insert(PROVIDER, value);
        }
        if let Ok(value) = HeaderValue::try_from(account.name.as_str()) {
            headers.insert(ACCOUNT, value);
        }
        let plan = Plan {
            request,
            head: &head,
            provider,
            account,
            upstream,
            upstream_model: &target.upstream_model,
            meta: ReplyMeta {
                id: id.to_string().replace('-', ""),
                created: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |since| since.as_secs()),
                model: head.model.clone(),
            },
        };
        // Same dialect on both sides: pass the bytes through, unless the
        // body carries signatures tagged for some provider (they must be
        // sorted out), or the upstream must stream for a client that does
        // not (the answer is then assembled).
        let pass_through = upstream == request.dialect
            && !subgate_protocol::canonical::body_has_tagged_signature(&request.body)
            && (head.stream || !provider.always_stream());
        if pass_through {
            self.pass_through(plan, meter).await
        } else {
            self.translate(plan, meter).await
        }
    }
}

/// Sends a generation request upstream; an error status becomes the
/// client's error.
pub(crate) async fn send(plan: &Plan<'_>, call: Call<'_>) -> Result<InboundResponse, GatewayError> {
    let provider = plan.provider;
    let response = provider
        .transport()
        .send(provider.generate_request(plan.account, call))
        .await
        .map_err(|error| GatewayError::transport(provider.name(), &error))?;
    if response.status.is_success() {
        Ok(response)
    } else {
        Err(refusal(
            plan.provider,
            plan.account,
            response,
            plan.upstream,
            plan.request.dialect,
        )
        .await)
    }
}

/// Turns an upstream's error answer into the client's error: same status,
/// and the upstream's own error object when it is a well-formed one of the
/// client's dialect (scrubbed of our secrets), else one written for it.
pub(crate) async fn refusal(
    provider: &Provider,
    account: &Account,
    response: InboundResponse,
    upstream: Dialect,
    client: Dialect,
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
    let read = upstream_error(upstream, &text);
    if upstream == client && read.well_formed {
        return GatewayError::upstream(
            status,
            failure.class,
            read.message,
            Some(Bytes::from(text)),
            failure.retry_after,
        );
    }
    let message = if read.message.is_empty() {
        format!("provider `{}` answered {status}", provider.name())
    } else {
        format!(
            "provider `{}` answered {status}: {}",
            provider.name(),
            read.message
        )
    };
    let status = StatusCode::from_u16(client_status(client, status.as_u16())).unwrap_or(status);
    let mut error =
        GatewayError::upstream(status, failure.class, message, None, failure.retry_after);
    if status == StatusCode::TOO_MANY_REQUESTS {
        error.code = Some("rate_limit_exceeded".to_owned());
    }
    error
}

/// Headers of a streamed reply.
pub(crate) fn stream_headers(content_type: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers
}

/// Whether an upstream answered with an event stream.
pub(crate) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"))
}

/// Logs what a translation left out.
pub(crate) fn log_dropped(provider: &str, dropped: &[Dropped]) {
    for Dropped(what) in dropped {
        tracing::debug!(provider, dropped = %what, "Left out in translation.");
    }
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
