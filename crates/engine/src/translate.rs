//! Different dialects in and out: the request is read into the canonical
//! model and written for the upstream; the answer (whole or streamed) comes
//! back the same way.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use subgate_core::{FailureClass, Usage};
use subgate_http::ResponseBody;
use subgate_protocol::canonical::{Aggregator, Event, StreamError};
use subgate_protocol::codec::{StreamDecoder, StreamEncoder};
use subgate_protocol::dispatch::{self, ClientStream};
use subgate_protocol::error::ErrorKind;
use subgate_providers::Call;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::generate::{Plan, log_dropped, send, stream_headers};
use crate::passthrough::mid_stream;
use crate::usage::Meter;
use crate::{Engine, GatewayError, Reply, ReplyBody};

impl Engine {
    pub(crate) async fn translate(
        &self,
        plan: Plan<'_>,
        meter: &mut Meter,
    ) -> Result<Reply, GatewayError> {
        let request = plan.request;
        let client = request.dialect;
        let provider = plan.provider;
        let mut dropped = Vec::new();
        let mut canonical =
            dispatch::decode_request(client, &request.body, request.line(), &mut dropped)
                .map_err(GatewayError::invalid)?;
        let wants_stream = canonical.stream;
        canonical.stream = wants_stream || provider.always_stream();
        let body = provider
            .encode_request(
                plan.account(),
                plan.upstream,
                &canonical,
                plan.upstream_model,
                &mut dropped,
            )
            .map_err(GatewayError::invalid)?;
        log_dropped(provider.name(), &dropped);
        let call = Call {
            wire: plan.upstream,
            model: plan.upstream_model,
            stream: canonical.stream,
            body,
            client_headers: None,
        };
        let response = send(&plan, call).await?;
        let decoder_for = || provider.stream_decoder(plan.upstream, plan.upstream_model);

        if canonical.stream && wants_stream {
            let options = ClientStream {
                include_usage: canonical.include_usage,
                sse: request.sse,
            };
            let stream = Translated {
                body: response.body,
                decoder: decoder_for(),
                encoder: dispatch::stream_encoder(client, plan.meta, options),
                meter: meter.take(),
                stop: Box::pin(self.inner.stop_requests.clone().cancelled_owned()),
                usage: None,
                upstream_error: false,
                ended: false,
                finished: false,
            };
            return Ok(Reply {
                status: StatusCode::OK,
                headers: stream_headers(dispatch::stream_content_type(client, options)),
                body: ReplyBody::Stream(Box::pin(stream)),
            });
        }

        let answer = if canonical.stream {
            aggregate(response.body, decoder_for(), provider.name()).await?
        } else {
            let whole = response
                .body
                .collect(provider.max_event_bytes())
                .await
                .map_err(|error| GatewayError::transport(provider.name(), &error))?;
            provider
                .decode_response(plan.upstream, plan.upstream_model, &whole, &mut dropped)
                .map_err(|error| GatewayError::unreadable(provider.name(), &error.message))?
        };
        let mut dropped = Vec::new();
        let body = dispatch::encode_response(client, &answer, &plan.meta, &mut dropped);
        log_dropped(provider.name(), &dropped);
        meter.first_byte();
        meter.finish(200, answer.usage, None);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(Reply {
            status: StatusCode::OK,
            headers,
            body: ReplyBody::Full(Bytes::from(body)),
        })
    }
}

/// Reads a whole stream into one answer, for a client that did not ask for
/// a stream from an upstream that had to send one.
async fn aggregate(
    mut body: ResponseBody,
    mut decoder: Box<dyn StreamDecoder>,
    provider: &str,
) -> Result<subgate_protocol::canonical::Response, GatewayError> {
    let mut aggregator = Aggregator::default();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| GatewayError::transport(provider, &error))?;
        decoder
            .feed(&chunk, &mut |event| aggregator.push(event))
            .map_err(|error| GatewayError::unreadable(provider, &error.0))?;
    }
    decoder
        .finish(&mut |event| aggregator.push(event))
        .map_err(|error| GatewayError::unreadable(provider, &error.0))?;
    aggregator
        .finish()
        .map_err(|error| GatewayError::stream_failed(provider, &error))
}

/// Room made for a frame to the client at first: most events fit.
const FRAME_START: usize = 512;
/// A frame grows to about this before it is sent, even if more is ready.
const FRAME_LIMIT: usize = 16 * 1024;

/// An upstream stream translated for a client of another dialect.
struct Translated {
    body: ResponseBody,
    decoder: Box<dyn StreamDecoder>,
    encoder: Box<dyn StreamEncoder>,
    meter: Meter,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    usage: Option<Usage>,
    upstream_error: bool,
    ended: bool,
    finished: bool,
}

impl Translated {
    /// Runs `feed` with an emitter that writes every event for the client
    /// to `out` and notes what the meter needs.
    fn pump(
        &mut self,
        out: &mut Vec<u8>,
        feed: impl FnOnce(&mut dyn StreamDecoder, &mut dyn FnMut(Event<'_>)) -> Result<(), String>,
    ) {
        let Self {
            decoder,
            encoder,
            usage,
            upstream_error,
            ended,
            ..
        } = self;
        let before = out.len();
        let mut emit = |event: Event<'_>| {
            match &event {
                Event::Usage(now) => *usage = Some(*now),
                Event::Error(_) => *upstream_error = true,
                Event::End => *ended = true,
                _ => {}
            }
            encoder.encode(&event, out);
        };
        let failed = feed(&mut **decoder, &mut emit).err();
        if let Some(message) = &failed {
            emit(Event::Error(StreamError {
                kind: ErrorKind::Upstream,
                message: format!("the upstream stream could not be read: {message}"),
            }));
        }
        // Before the meter is finished: a short answer can start and end
        // in one read.
        if out.len() > before {
            self.meter.first_byte();
        }
        if failed.is_some() {
            self.finish(Some(FailureClass::StreamBroken));
        } else if self.ended || self.upstream_error {
            let failure = self.upstream_error.then_some(FailureClass::UpstreamFault);
            self.finish(failure);
        }
    }

    fn finish(&mut self, failure: Option<FailureClass>) {
        if !self.finished {
            self.finished = true;
            self.meter.finish(200, self.usage, failure);
        }
    }

    /// Ends the client's stream with an error event, written to `out`.
    fn fail(&mut self, out: &mut Vec<u8>, kind: ErrorKind, class: FailureClass, message: String) {
        self.encoder
            .encode(&Event::Error(StreamError { kind, message }), out);
        self.finish(Some(class));
    }
}

impl Drop for Translated {
    fn drop(&mut self) {
        // Dropped before its end: the client went away. What the upstream
        // reported until then (the input, at least) was spent; record it
        // rather than the nothing the meter alone would.
        if !self.finished {
            self.finished = true;
            self.meter
                .finish(499, self.usage, Some(FailureClass::ClientCancelled));
        }
    }
}

impl Stream for Translated {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        // Everything the upstream already sent goes out as one frame: in a
        // burst, one write for many events instead of one each.
        let mut out = Vec::new();
        loop {
            match Pin::new(&mut this.body).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if out.capacity() == 0 {
                        out.reserve(chunk.len().max(FRAME_START));
                    }
                    this.pump(&mut out, |decoder, emit| {
                        decoder.feed(&chunk, emit).map_err(|error| error.0)
                    });
                    if this.finished || out.len() >= FRAME_LIMIT {
                        break;
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    let (kind, class) = mid_stream(&error);
                    this.fail(&mut out, kind, class, error.to_string());
                    break;
                }
                Poll::Ready(None) => {
                    this.pump(&mut out, |decoder, emit| {
                        decoder.finish(emit).map_err(|error| error.0)
                    });
                    // A stream that ended properly has finished the meter.
                    this.finish(None);
                    break;
                }
                Poll::Pending => {
                    if !out.is_empty() {
                        break;
                    }
                    if this.stop.as_mut().poll(cx).is_ready() {
                        this.fail(
                            &mut out,
                            ErrorKind::Overloaded,
                            FailureClass::Internal,
                            "the gateway is shutting down; the answer is incomplete".to_owned(),
                        );
                        break;
                    }
                    return Poll::Pending;
                }
            }
        }
        if out.is_empty() {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Bytes::from(out)))
    }
}
