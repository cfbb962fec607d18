//! Keep-alive HTTP/1.1 connections, driven by the task that uses them.
//!
//! hyper's client connection comes in two halves: [`SendRequest`], which
//! takes requests, and the connection future, which reads and writes the
//! socket. The usual way is to spawn that future as a task of its own, and
//! then every chunk of an answer crosses from that task to the reader's: a
//! wake-up, a hop through the scheduler and a channel per chunk, and the
//! reader only ever finds one chunk waiting. Here the task that sends a
//! request and reads its answer polls the connection future itself
//! whenever it waits ([`Conn::poll_drive`]). A chunk goes from the socket to
//! the client in one poll, and chunks that arrived together are read
//! together, so they leave together too.
//!
//! A connection is with one exchange at a time; between exchanges it rests
//! in the [`Pool`], where nothing polls it. It is checked when taken back
//! out: a connection the upstream closed meanwhile is dropped then.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::connect::Io;

/// A request body as the connection sends it.
pub(crate) type Body = Full<Bytes>;
type Driver = http1::Connection<TokioIo<Io>, Body>;

/// How long a connection may rest unused before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How many resting connections are kept per origin; a burst beyond it
/// closes the rest as they come back.
const MAX_IDLE_PER_ORIGIN: usize = 128;

/// One open connection to an upstream.
pub(crate) struct Conn {
    sender: SendRequest<Body>,
    driver: Pin<Box<Driver>>,
    /// The driver finished: the connection is closed.
    closed: bool,
    idle_since: Instant,
}

/// Why a request got no answer head.
pub(crate) enum SendError {
    /// The connection was closed before the request was written; the
    /// request comes back to be sent on another.
    Unsent(Box<http::Request<Body>>),
    /// The exchange failed.
    Failed(hyper::Error),
    /// The connection ended with the request unanswered.
    Closed,
}

impl Conn {
    /// Starts HTTP/1.1 on an open stream.
    pub(crate) async fn handshake(io: TokioIo<Io>) -> hyper::Result<Self> {
        let (sender, driver) = http1::Builder::new().handshake(io).await?;
        Ok(Self {
            sender,
            driver: Box::pin(driver),
            closed: false,
            idle_since: Instant::now(),
        })
    }

    /// Lets the connection read and write; `Ready` once it has closed.
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.closed && self.driver.as_mut().poll(cx).is_ready() {
            self.closed = true;
        }
        if self.closed {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Whether the connection takes a request now. It may first need to
    /// finish with the last exchange, so it is driven once; one that is
    /// still not ready is not waited for.
    fn ready_now(&mut self, cx: &mut Context<'_>) -> bool {
        for _ in 0..2 {
            match self.sender.poll_ready(cx) {
                Poll::Ready(Ok(())) => return true,
                Poll::Ready(Err(_)) => return false,
                Poll::Pending => {}
            }
            if self.poll_drive(cx).is_ready() {
                return false;
            }
        }
        false
    }

    /// Sends `request` and drives the connection until the answer's head
    /// is in.
    pub(crate) async fn send(
        &mut self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, SendError> {
        let Self {
            sender,
            driver,
            closed,
            ..
        } = self;
        let mut pending = pin!(sender.try_send_request(request));
        let failed = |mut error: hyper::client::conn::TrySendError<_>| match error.take_message() {
            Some(request) => SendError::Unsent(Box::new(request)),
            None => SendError::Failed(error.into_error()),
        };
        poll_fn(|cx| {
            if let Poll::Ready(answer) = pending.as_mut().poll(cx) {
                return Poll::Ready(answer.map_err(failed));
            }
            if !*closed && driver.as_mut().poll(cx).is_ready() {
                *closed = true;
            }
            match pending.as_mut().poll(cx) {
                Poll::Ready(answer) => Poll::Ready(answer.map_err(failed)),
                // A driver that ends answers its request with an error
                // first; should it not, the request must not wait forever.
                Poll::Pending if *closed => Poll::Ready(Err(SendError::Closed)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// Resting connections by origin (or by proxy, for forwarded requests).
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<HashMap<Box<str>, Vec<Conn>>>,
}

impl Pool {
    /// A resting connection to `key` that takes a request now, the most
    /// recently used first.
    pub(crate) async fn take(&self, key: &str) -> Option<Conn> {
        loop {
            let mut conn = self.pop(key)?;
            if poll_fn(|cx| Poll::Ready(conn.ready_now(cx))).await {
                return Some(conn);
            }
        }
    }

    fn pop(&self, key: &str) -> Option<Conn> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let resting = idle.get_mut(key)?;
        let now = Instant::now();
        resting.retain(|conn| now.duration_since(conn.idle_since) < IDLE_TIMEOUT);
        resting.pop()
    }

    /// Puts a connection whose exchange ended back to rest.
    pub(crate) fn put(&self, key: &str, mut conn: Conn) {
        if conn.closed || conn.sender.is_closed() {
            return;
        }
        let now = Instant::now();
        conn.idle_since = now;
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let resting = match idle.get_mut(key) {
            Some(resting) => resting,
            None => idle.entry(key.into()).or_default(),
        };
        resting.retain(|conn| now.duration_since(conn.idle_since) < IDLE_TIMEOUT);
        if resting.len() >= MAX_IDLE_PER_ORIGIN {
            resting.remove(0);
        }
        resting.push(conn);
    }
}
