//! The TCP connection under each request, so that a scenario can reset it
//! (an RST, as a crashed upstream or a dropping proxy gives) instead of
//! closing it cleanly, which is all an HTTP handler can do on its own.
//!
//! The mock's listener wraps every accepted stream with a reset switch;
//! a middleware makes the switch of the request's connection reachable from
//! the handler (and from the streams it builds) through a task-local.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

tokio::task_local! {
    static CONNECTION: Connection;
}

/// The reset switch of one connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connection {
    reset: Arc<AtomicBool>,
}

impl Connection {
    /// The connection of the request being handled, when called from a
    /// handler (or from code it calls before it returns).
    pub(crate) fn current() -> Option<Self> {
        CONNECTION.try_with(Clone::clone).ok()
    }

    /// From now on the connection fails every read and write, and closes
    /// with an RST.
    pub(crate) fn reset(&self) {
        self.reset.store(true, Ordering::Release);
    }
}

impl Connected<IncomingStream<'_, ResettableListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, ResettableListener>) -> Self {
        stream.io().connection.clone()
    }
}

/// Runs the rest of the request with its connection reachable through
/// [`Connection::current`].
pub(crate) async fn scope(
    ConnectInfo(connection): ConnectInfo<Connection>,
    request: Request,
    next: Next,
) -> Response {
    CONNECTION.scope(connection, next.run(request)).await
}

/// A TCP listener whose connections can be reset.
pub(crate) struct ResettableListener(pub(crate) TcpListener);

impl Listener for ResettableListener {
    type Io = ResettableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, address)) => {
                    let _ = stream.set_nodelay(true);
                    let io = ResettableStream {
                        inner: stream,
                        connection: Connection::default(),
                    };
                    return (io, address);
                }
                // Out of file descriptors, say: wait and try again, as
                // axum's own listener does.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A TCP stream with a reset switch.
pub(crate) struct ResettableStream {
    inner: TcpStream,
    connection: Connection,
}

impl ResettableStream {
    /// `Err` once the switch is on: the socket is then set to close with an
    /// RST, and every read and write fails so the server drops it.
    fn check(&self) -> io::Result<()> {
        if self.connection.reset.load(Ordering::Acquire) {
            let _ = self.inner.set_zero_linger();
            return Err(io::Error::from(io::ErrorKind::ConnectionReset));
        }
        Ok(())
    }
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.connection.reset.load(Ordering::Acquire) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
