//! Binding, serving, and stopping gracefully.
//!
//! Stopping goes in three steps. [`Running::shutdown`] stops accepting
//! connections and lets requests in flight (streams included) finish. When
//! they have, or when the grace period runs out (or [`Running::hurry`] is
//! called), the engine ends whatever still runs with an error in its
//! dialect, stores every usage record, and closes the store.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use subgate_config::Config;
use subgate_engine::{Engine, StartError};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::router;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The engine (store, providers) could not start.
    #[error(transparent)]
    Engine(#[from] StartError),
    /// A network address without client keys: anyone who reaches it could
    /// spend the accounts.
    #[error(
        "refusing to serve {address} without client keys: anyone who can reach it could use every account. Create a key (`subgate keys create --name NAME`; keys are required from then on), or set `server.require_keys = true`, or listen on 127.0.0.1"
    )]
    Open {
        /// The address.
        address: SocketAddr,
    },
    /// The admin token could not be read or made.
    #[error(
        "the admin token (`admin-token` in the data directory) cannot be read or made: {source}"
    )]
    AdminToken {
        /// The cause.
        source: std::io::Error,
    },
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A server that is serving.
#[derive(Debug)]
pub struct Running {
    address: SocketAddr,
    engine: Engine,
    stop_accepting: CancellationToken,
    hurry: CancellationToken,
    tasks: TaskTracker,
}

/// Starts the engine, binds `server.host:server.port` and serves in the
/// background until [`Running::shutdown`].
pub async fn start(config: &Config) -> Result<Running, ServeError> {
    let address = SocketAddr::new(config.server.host, config.server.port);
    // Bind before starting the engine: a taken port is the likeliest
    // failure, and it should not leave a half-started engine behind.
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind { address, source })?;
    let address = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { address, source })?;
    let engine = Engine::start(config).await?;
    if !address.ip().is_loopback() && !engine.keys_required() {
        engine.shutdown().await;
        return Err(ServeError::Open { address });
    }

    let admin_token = match subgate_engine::admin_token(&config.storage.data_dir) {
        Ok(token) => token,
        Err(source) => {
            engine.shutdown().await;
            return Err(ServeError::AdminToken { source });
        }
    };
    let app = router(engine.clone(), config, &admin_token);
    let stop_accepting = CancellationToken::new();
    let hurry = CancellationToken::new();
    let tasks = TaskTracker::new();
    let grace = config.server.shutdown_timeout;
    let read_timeout = config.server.read_timeout;
    {
        let stop_accepting = stop_accepting.clone();
        let hurry = hurry.clone();
        tasks.spawn(async move {
            let server = serve_connections(listener, app, read_timeout, stop_accepting.clone());
            let deadline = async {
                stop_accepting.cancelled().await;
                tokio::select! {
                    () = tokio::time::sleep(grace) => {
                        tracing::warn!(grace_seconds = grace.as_secs_f32(), "Shutdown grace period over; ending requests still running.");
                    }
                    () = hurry.cancelled() => {
                        tracing::warn!("Shutdown hurried; ending requests still running.");
                    }
                }
            };
            tokio::select! {
                () = server => {}
                () = deadline => {}
            }
        });
    }
    tasks.close();
    Ok(Running {
        address,
        engine,
        stop_accepting,
        hurry,
        tasks,
    })
}

/// Serves `app` on `listener` until `stop`, then lets each connection
/// finish the request it is on (idle ones close at once) and returns when
/// all have closed.
///
/// A request's head must arrive within `read_timeout` (a slow client must
/// not hold a connection open forever).
async fn serve_connections(
    listener: TcpListener,
    app: Router,
    read_timeout: Duration,
    stop: CancellationToken,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    // Not the server's tracker: connections end through `graceful`, and
    // streams still open at the deadline are ended by the engine.
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                accept_failed(&error).await;
                continue;
            }
        };
        configure_connection(&stream);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "A client connection ended with an error.");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// After a failed `accept`: a connection that went away before it was
/// taken is nothing; anything else (out of file descriptors) is logged
/// and waited out, so the loop does not spin.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(%error, "Accepting a connection failed; trying again in a second.");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Applied to every accepted connection.
fn configure_connection(stream: &TcpStream) {
    // Streams are many small writes; Nagle's algorithm would hold each one
    // back waiting for the previous one's ACK.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "Setting TCP_NODELAY on a client connection failed.");
    }
}

impl Running {
    /// The address the server listens on (with the real port when 0 was
    /// asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The engine, for callers that need to reach it directly.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A handle that can stop the server while something else awaits
    /// [`Running::stopped`].
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            stop_accepting: self.stop_accepting.clone(),
            hurry: self.hurry.clone(),
        }
    }

    /// Stops accepting connections; requests in flight go on for the grace
    /// period. Await [`Running::stopped`] to wait for the end.
    pub fn shutdown(&self) {
        self.stop_handle().shutdown();
    }

    /// Waits until the server has stopped and every usage record is stored.
    pub async fn stopped(self) {
        self.tasks.wait().await;
        self.engine.shutdown().await;
    }

    /// Stops within `grace` at most and waits for it.
    pub async fn stop_within(self, grace: Duration) {
        let handle = self.stop_handle();
        handle.shutdown();
        let stopping = self.stopped();
        tokio::pin!(stopping);
        tokio::select! {
            () = &mut stopping => return,
            () = tokio::time::sleep(grace) => handle.hurry(),
        }
        stopping.await;
    }
}

/// Stops a [`Running`] server from elsewhere.
#[derive(Debug, Clone)]
pub struct StopHandle {
    stop_accepting: CancellationToken,
    hurry: CancellationToken,
}

impl StopHandle {
    /// Stops accepting connections; requests in flight go on for the grace
    /// period.
    pub fn shutdown(&self) {
        self.stop_accepting.cancel();
    }

    /// Ends the grace period now (a second Ctrl-C).
    pub fn hurry(&self) {
        self.stop_accepting.cancel();
        self.hurry.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::configure_connection;

    #[tokio::test]
    async fn accepted_connections_get_tcp_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let ((accepted, _), _client) = tokio::try_join!(listener.accept(), client).unwrap();
        assert!(!accepted.nodelay().unwrap());
        configure_connection(&accepted);
        assert!(accepted.nodelay().unwrap());
    }
}
