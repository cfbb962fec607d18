//! Same dialect in and out: the body goes up with only the edits the
//! provider needs, and the answer comes back byte for byte, one slice per
//! upstream chunk, while a [`Tap`] reads usage on the side.
//!
//! Events are only forwarded whole, so the one event a client did not ask
//! for (Chat Completions' usage chunk) can be held back. When the upstream
//! fails after the first byte, the client gets its dialect's error event and
//! the stream ends; a stream never stops silently.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::HeaderMap;
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use subgate_core::FailureClass;
use subgate_http::{ResponseBody, TransportError};
use subgate_protocol::dispatch::{self, ClientStream};
use subgate_protocol::error::ErrorKind;
use subgate_protocol::gemini::ArrayFraming;
use subgate_protocol::openai_chat::TapVerdict;
use subgate_protocol::passthrough::{Tap, response_usage};
use subgate_protocol::sse::{SseDecoder, SseError};
use subgate_providers::Call;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::generate::{Plan, is_event_stream, send, stream_headers};
use crate::usage::Meter;
use crate::{Engine, GatewayError, Reply, ReplyBody};

impl Engine {
    pub(crate) async fn pass_through(
        &self,
        plan: Plan<'_>,
        meter: &mut Meter,
    ) -> Result<Reply, GatewayError> {
        let request = plan.request;
        let dialect = request.dialect;
        let body = plan
            .head
            .upstream_body(dialect, plan.upstream_model, plan.provider.stream_usage())
            .map_or_else(|| request.body.clone(), Bytes::from);
        let call = Call {
            wire: plan.upstream,
            model: plan.upstream_model,
            stream: plan.head.stream,
            body,
            client_headers: Some(&request.headers),
        };
        let response = send(&plan, call).await?;
        if plan.head.stream && is_event_stream(&response.headers) {
            let client_stream = ClientStream {
                include_usage: plan.head.include_usage,
                sse: request.sse,
            };
            let array = dispatch::streams_as_array(dialect, client_stream);
            let stream = PassThrough::new(
                response.body,
                plan.provider.max_event_bytes(),
                Tap::new(dialect, plan.head.include_usage),
                meter.take(),
                self.inner.stop_requests.clone(),
                array,
            );
            return Ok(Reply {
                status: response.status,
                headers: stream_headers(dispatch::stream_content_type(dialect, client_stream)),
                body: ReplyBody::Stream(Box::pin(stream)),
            });
        }
        let content_type = response.headers.get(CONTENT_TYPE).cloned();
        let status = response.status;
        let whole = response
            .body
            .collect(plan.provider.max_event_bytes())
            .await
            .map_err(|error| GatewayError::transport(plan.provider.name(), &error))?;
        meter.first_byte();
        meter.finish(status.as_u16(), response_usage(dialect, &whole), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            content_type.unwrap_or(HeaderValue::from_static("application/json")),
        );
        Ok(Reply {
            status,
            headers,
            body: ReplyBody::Full(whole),
        })
    }
}

/// An upstream stream on its way to a client of the same dialect.
pub(crate) struct PassThrough {
    body: ResponseBody,
    decoder: SseDecoder,
    tap: Tap,
    meter: Meter,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    /// For a Gemini client that wants a JSON array: events become elements.
    array: Option<ArrayFraming>,
    finished: bool,
}

impl PassThrough {
    pub(crate) fn new(
        body: ResponseBody,
        max_event_bytes: usize,
        tap: Tap,
        meter: Meter,
        stop: CancellationToken,
        array: bool,
    ) -> Self {
        Self {
            body,
            decoder: SseDecoder::new(max_event_bytes),
            tap,
            meter,
            stop: Box::pin(stop.cancelled_owned()),
            array: array.then(ArrayFraming::default),
            finished: false,
        }
    }

    /// Feeds one upstream chunk through; returns the bytes to forward.
    fn forward(&mut self, chunk: &[u8]) -> Result<Bytes, SseError> {
        self.decoder.push(chunk);
        if let Some(array) = &mut self.array {
            let mut out = Vec::new();
            while let Some(event) = self.decoder.next_event()? {
                self.tap.observe(event.event, event.data);
                array.element(event.data, &mut out);
            }
            let decoded = self.decoder.decoded_len();
            self.decoder.discard(decoded);
            return Ok(Bytes::from(out));
        }
        let mut kept: Option<BytesMut> = None;
        while let Some(event) = self.decoder.next_event()? {
            if self.tap.observe(event.event, event.data) == TapVerdict::Drop {
                let (start, len) = (event.raw_start, event.raw_len);
                let before = self.decoder.take(start);
                self.decoder.discard(len);
                kept.get_or_insert_with(BytesMut::new)
                    .extend_from_slice(&before);
            }
        }
        let rest = self.decoder.take_decoded();
        Ok(match kept {
            None => rest,
            Some(mut kept) => {
                kept.extend_from_slice(&rest);
                kept.freeze()
            }
        })
    }

    /// Ends the stream with the dialect's error event after `pending` bytes.
    fn fail(
        &mut self,
        pending: &[u8],
        kind: ErrorKind,
        class: FailureClass,
        message: &str,
    ) -> Bytes {
        self.finished = true;
        self.meter.finish(200, self.tap.usage(), Some(class));
        let mut out = BytesMut::with_capacity(pending.len() + 256);
        out.extend_from_slice(pending);
        match &mut self.array {
            Some(array) => {
                let mut tail = Vec::new();
                array.fail(kind, message, &mut tail);
                out.extend_from_slice(&tail);
            }
            None => out.extend_from_slice(&self.tap.failure(kind, message)),
        }
        out.freeze()
    }

    /// The upstream closed the stream.
    fn end(&mut self) -> Option<Bytes> {
        if self.tap.is_complete() || self.tap.error().is_some() {
            self.finished = true;
            let failure = self.tap.error().map(|_| FailureClass::UpstreamFault);
            self.meter.finish(200, self.tap.usage(), failure);
            let mut tail = Vec::new();
            if let Some(array) = &mut self.array {
                array.close(&mut tail);
            }
            return (!tail.is_empty()).then(|| Bytes::from(tail));
        }
        // A partial event left over is dropped: a client would discard it
        // anyway, and it must not glue onto the error event.
        Some(self.fail(
            &[],
            ErrorKind::Upstream,
            FailureClass::StreamBroken,
            "the upstream stream ended before it was complete",
        ))
    }
}

impl Drop for PassThrough {
    fn drop(&mut self) {
        // Dropped before its end: the client went away. What the upstream
        // reported until then (the input, at least) was spent; record it
        // rather than the nothing the meter alone would.
        if !self.finished {
            self.finished = true;
            self.meter
                .finish(499, self.tap.usage(), Some(FailureClass::ClientCancelled));
        }
    }
}

/// Maps a transport failure in the middle of a body.
pub(crate) fn mid_stream(error: &TransportError) -> (ErrorKind, FailureClass) {
    match error {
        TransportError::Timeout { .. } => (ErrorKind::Timeout, FailureClass::UpstreamTimeout),
        TransportError::Connect { .. }
        | TransportError::Broken { .. }
        | TransportError::TooLarge { .. }
        | TransportError::Setup(_) => (ErrorKind::Upstream, FailureClass::StreamBroken),
    }
}

impl Stream for PassThrough {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.body).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => match this.forward(&chunk) {
                    Ok(out) if out.is_empty() => {}
                    Ok(out) => {
                        this.meter.first_byte();
                        return Poll::Ready(Some(out));
                    }
                    Err(error) => {
                        let pending = this.decoder.take_decoded();
                        let message = format!("the upstream stream is malformed: {error}");
                        return Poll::Ready(Some(this.fail(
                            &pending,
                            ErrorKind::Upstream,
                            FailureClass::StreamBroken,
                            &message,
                        )));
                    }
                },
                Poll::Ready(Some(Err(error))) => {
                    let (kind, class) = mid_stream(&error);
                    return Poll::Ready(Some(this.fail(&[], kind, class, &error.to_string())));
                }
                Poll::Ready(None) => return Poll::Ready(this.end()),
                Poll::Pending => {
                    if this.stop.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Some(this.fail(
                            &[],
                            ErrorKind::Overloaded,
                            FailureClass::Internal,
                            "the gateway is shutting down; the answer is incomplete",
                        )));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
