//! A response body read chunk by chunk, with the idle timeout applied.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http_body::Body as _;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::pool::{Conn, Pool};
use crate::{TimeoutPhase, TransportError, root_cause};

/// An upstream body still being received. Dropping it before its end
/// closes the connection, which is how a client that went away cancels the
/// upstream request; read to its end, the connection goes back to rest.
pub struct ResponseBody {
    upstream: Upstream,
    /// Fires at the idle deadline as it was last armed; see `poll_next`.
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    last_chunk_at: Instant,
    url: String,
    done: bool,
    /// The first chunk, read early by [`ResponseBody::first_chunk`].
    peeked: Option<Bytes>,
    /// Rewrites the bytes as they arrive (a provider's edits to answers).
    transform: Option<Box<dyn ChunkTransform>>,
}

/// An edit applied to a body as it streams: each chunk in, the bytes to
/// pass on out (possibly fewer, when an edit needs more of the body).
pub trait ChunkTransform: Send {
    /// Takes a chunk; returns what can be passed on now.
    fn chunk(&mut self, chunk: &[u8]) -> Bytes;
    /// The body ended; returns whatever was held back.
    fn finish(&mut self) -> Bytes;
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("url", &self.url)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ResponseBody {
    pub(crate) fn new(upstream: Upstream, url: String, idle_timeout: Duration) -> Self {
        Self {
            upstream,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            last_chunk_at: Instant::now(),
            url,
            done: false,
            peeked: None,
            transform: None,
        }
    }

    /// Rewrites the rest of the body through `transform`. Set it before
    /// the first chunk is read.
    pub fn set_transform(&mut self, transform: Box<dyn ChunkTransform>) {
        self.transform = Some(transform);
    }

    /// Waits for the body's first chunk and keeps it to be read first. A
    /// failure before any byte arrived (a reset, the idle timeout) comes
    /// out here, while the caller has sent nothing on and can still try
    /// another upstream.
    pub async fn first_chunk(&mut self) -> Result<(), TransportError> {
        use futures_util::StreamExt;

        if self.peeked.is_some() || self.done {
            return Ok(());
        }
        match self.next().await {
            Some(Ok(chunk)) => {
                self.peeked = Some(chunk);
                Ok(())
            }
            Some(Err(error)) => Err(error),
            None => Ok(()),
        }
    }

    /// Reads the whole body, refusing more than `limit` bytes. A body that
    /// came in one chunk is returned as it is, without a copy.
    pub async fn collect(mut self, limit: usize) -> Result<Bytes, TransportError> {
        use futures_util::StreamExt;

        let mut only: Option<Bytes> = None;
        let mut whole = BytesMut::new();
        while let Some(chunk) = self.next().await {
            let chunk = chunk?;
            let read = only.as_ref().map_or(whole.len(), Bytes::len);
            if read + chunk.len() > limit {
                return Err(TransportError::TooLarge {
                    url: self.url.clone(),
                    limit,
                });
            }
            match only.take() {
                None if whole.is_empty() => only = Some(chunk),
                None => whole.extend_from_slice(&chunk),
                Some(first) => {
                    whole.reserve(first.len() + chunk.len());
                    whole.extend_from_slice(&first);
                    whole.extend_from_slice(&chunk);
                }
            }
        }
        Ok(only.unwrap_or_else(|| whole.freeze()))
    }
}

impl Stream for ResponseBody {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(chunk) = this.peeked.take() {
            return Poll::Ready(Some(Ok(chunk)));
        }
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            let polled = this.poll_raw(cx);
            let Some(transform) = &mut this.transform else {
                return polled;
            };
            match polled {
                Poll::Ready(Some(Ok(chunk))) => {
                    let out = transform.chunk(&chunk);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(None) => {
                    let rest = transform.finish();
                    this.transform = None;
                    return Poll::Ready((!rest.is_empty()).then_some(Ok(rest)));
                }
                other => return other,
            }
        }
    }
}

impl ResponseBody {
    fn poll_raw(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, TransportError>>> {
        let this = self;
        if this.done {
            return Poll::Ready(None);
        }
        match this.upstream.poll_chunk(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                // Only note the time: re-arming the timer on every chunk costs
                // more than the chunk. The timer is moved when it fires.
                this.last_chunk_at = Instant::now();
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(reason))) => {
                this.done = true;
                Poll::Ready(Some(Err(TransportError::Broken {
                    url: this.url.clone(),
                    reason,
                })))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => loop {
                ready!(this.idle.as_mut().poll(cx));
                let deadline = this.last_chunk_at + this.idle_timeout;
                if deadline > Instant::now() {
                    // Chunks came since the timer was armed: re-arm it for
                    // the real deadline and poll it so it wakes us.
                    this.idle.as_mut().reset(deadline);
                    continue;
                }
                this.done = true;
                return Poll::Ready(Some(Err(TransportError::Timeout {
                    url: this.url.clone(),
                    phase: TimeoutPhase::Idle,
                    after: this.idle_timeout,
                })));
            },
        }
    }
}

/// An answer's body on its connection, which goes back to its pool once
/// the body has been read to its end.
pub(crate) struct Upstream {
    incoming: Incoming,
    /// `None` once the connection went back to rest or broke.
    conn: Option<Conn>,
    pool: Arc<Pool>,
    key: Box<str>,
}

impl Upstream {
    pub(crate) fn new(incoming: Incoming, conn: Conn, pool: Arc<Pool>, key: Box<str>) -> Self {
        Self {
            incoming,
            conn: Some(conn),
            pool,
            key,
        }
    }

    /// The next chunk: what the connection already read, or else what it
    /// reads now, in this task (see the `pool` module).
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, String>>> {
        let mut drove = false;
        let mut closed = false;
        loop {
            match Pin::new(&mut self.incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers and empty chunks carry nothing to pass on.
                    match frame.into_data() {
                        Ok(data) if !data.is_empty() => return Poll::Ready(Some(Ok(data))),
                        _ => continue,
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(root_cause(&error))));
                }
                Poll::Ready(None) => {
                    if let Some(conn) = self.conn.take() {
                        tracing::trace!(origin = &*self.key, "Body read; the connection rests.");
                        self.pool.put(&self.key, conn);
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => {}
            }
            let Some(conn) = &mut self.conn else {
                return Poll::Pending;
            };
            if drove {
                if closed {
                    // The connection ended and left the body waiting.
                    self.conn = None;
                    return Poll::Ready(Some(Err(
                        "the connection closed before the body ended".to_owned()
                    )));
                }
                return Poll::Pending;
            }
            drove = true;
            closed = conn.poll_drive(cx).is_ready();
        }
    }
}
