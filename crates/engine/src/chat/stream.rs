//! A Chat Completions stream passed through: upstream bytes go to the
//! client as they came, one slice per upstream chunk, while the
//! [`StreamTap`] reads usage on the side.
//!
//! Events are only forwarded whole, so the one event the client did not ask
//! for (the usage chunk) can be held back. When the upstream fails after the
//! first byte, the client gets an error event and the stream ends; a stream
//! never stops silently.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use subgate_core::FailureClass;
use subgate_http::{ResponseBody, TransportError};
use subgate_protocol::error::{ErrorKind, ErrorReport};
use subgate_protocol::openai_chat::{StreamTap, TapVerdict, stream_error_event};
use subgate_protocol::sse::{SseDecoder, SseError};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::usage::Meter;

pub(crate) struct ChatPassThrough {
    body: ResponseBody,
    decoder: SseDecoder,
    tap: StreamTap,
    meter: Meter,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    finished: bool,
}

impl ChatPassThrough {
    pub(crate) fn new(
        body: ResponseBody,
        max_event_bytes: usize,
        client_wants_usage: bool,
        meter: Meter,
        stop: CancellationToken,
    ) -> Self {
        Self {
            body,
            decoder: SseDecoder::new(max_event_bytes),
            tap: StreamTap::new(client_wants_usage),
            meter,
            stop: Box::pin(stop.cancelled_owned()),
            finished: false,
        }
    }

    /// Feeds one upstream chunk through; returns the bytes to forward.
    fn forward(&mut self, chunk: &[u8]) -> Result<Bytes, SseError> {
        self.decoder.push(chunk);
        let mut kept: Option<BytesMut> = None;
        while let Some(event) = self.decoder.next_event()? {
            if self.tap.observe(event.data) == TapVerdict::Drop {
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

    /// Ends the stream with an error event after `pending` bytes.
    fn fail(
        &mut self,
        pending: &[u8],
        kind: ErrorKind,
        class: FailureClass,
        message: &str,
    ) -> Bytes {
        self.finished = true;
        self.meter.finish(200, self.tap.usage(), Some(class));
        let event = stream_error_event(&ErrorReport {
            kind,
            status: 502,
            message,
            code: None,
            param: None,
        });
        let mut out = BytesMut::with_capacity(pending.len() + event.len());
        out.extend_from_slice(pending);
        out.extend_from_slice(&event);
        out.freeze()
    }

    /// The upstream closed the stream.
    fn end(&mut self) -> Option<Bytes> {
        self.finished = true;
        if self.tap.is_complete() {
            let failure = self.tap.error().map(|_| FailureClass::UpstreamFault);
            self.meter.finish(200, self.tap.usage(), failure);
            return None;
        }
        if self.tap.error().is_some() {
            // The upstream reported its own failure in the stream; the
            // client has it already.
            self.meter
                .finish(200, self.tap.usage(), Some(FailureClass::UpstreamFault));
            return None;
        }
        // Whatever partial event is left is dropped: a client would discard
        // it anyway, and it must not glue onto the error event.
        Some(self.fail(
            &[],
            ErrorKind::Upstream,
            FailureClass::StreamBroken,
            "the upstream stream ended before it was complete",
        ))
    }
}

impl Stream for ChatPassThrough {
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
                    let (kind, class) = match error {
                        TransportError::Timeout { .. } => {
                            (ErrorKind::Timeout, FailureClass::UpstreamTimeout)
                        }
                        TransportError::Connect { .. }
                        | TransportError::Broken { .. }
                        | TransportError::TooLarge { .. }
                        | TransportError::Setup(_) => {
                            (ErrorKind::Upstream, FailureClass::StreamBroken)
                        }
                    };
                    let message = error.to_string();
                    return Poll::Ready(Some(this.fail(&[], kind, class, &message)));
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
