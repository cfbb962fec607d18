//! Outbound HTTP for every upstream.
//!
//! One factory builds the clients ([`Transport::new`]) so every upstream
//! connection gets the same treatment: `TCP_NODELAY`, a connect timeout, no
//! redirects (a redirect would carry credentials somewhere unplanned), a
//! first-byte timeout around the response head and an idle timeout between
//! body chunks. Errors never carry a URL with its query, a header value or a
//! body, so nothing secret leaks through them.
//!
//! The client is HTTP/1.1 with keep-alive, on hyper's connection API, and
//! the task that reads an answer also drives its connection (see `pool`):
//! no task hop per chunk. TLS is rustls with the platform's verifier; ALPN
//! offers HTTP/1.1 only, so a busy provider opens more connections rather
//! than queueing behind one HTTP/2 connection's stream limit.
//!
//! What a request means is not this crate's business: providers build
//! [`OutboundRequest`]s and read [`InboundResponse`]s.

mod body;
mod connect;
mod pool;
mod redact;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE, HOST, PROXY_AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::Full;
use hyper_util::client::proxy::matcher::Matcher;
use url::Position;
pub use url::Url;

use crate::body::Upstream;
use crate::connect::Route;
use crate::pool::{Conn, Pool, SendError};

pub use body::{ChunkTransform, ResponseBody};
pub use redact::redacted_url;

/// Headers whose values are credentials; they are marked sensitive so they
/// never show in `Debug` output or HTTP/2 header tables.
const SENSITIVE_HEADERS: [HeaderName; 5] = [
    AUTHORIZATION,
    PROXY_AUTHORIZATION,
    COOKIE,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("x-goog-api-key"),
];

/// How a [`Transport`] talks to its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportOptions {
    /// How long a TCP (and TLS) connect may take.
    pub connect_timeout: Duration,
    /// How long the upstream may take to send the response head.
    pub first_byte_timeout: Duration,
    /// The longest silence allowed between two body chunks.
    pub idle_timeout: Duration,
}

/// One request to an upstream.
#[derive(Debug)]
pub struct OutboundRequest {
    /// The method.
    pub method: Method,
    /// The full URL.
    pub url: Url,
    /// Headers, credentials included.
    pub headers: HeaderMap,
    /// The body (empty for GET).
    pub body: Bytes,
}

/// An upstream's answer: its head, and its body still to be read.
#[derive(Debug)]
pub struct InboundResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, read chunk by chunk with the idle timeout applied.
    pub body: ResponseBody,
}

/// Which part of an exchange ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Opening the connection.
    Connect,
    /// Waiting for the response head.
    FirstByte,
    /// Waiting for the next body chunk.
    Idle,
    /// Waiting for the first chunk of a successful answer (the caller's
    /// limit, for upstreams that accept a request and then stay silent).
    FirstToken,
}

/// Why an exchange with an upstream failed. Messages name the host, never a
/// query string, header or body.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The upstream could not be reached (refused, unresolvable, TLS).
    #[error("could not connect to {url}: {reason}")]
    Connect {
        /// The URL, redacted.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The upstream did not answer in time.
    #[error("{url} sent nothing for {}s ({})", .after.as_secs_f32(), phase_name(*.phase))]
    Timeout {
        /// The URL, redacted.
        url: String,
        /// What we were waiting for.
        phase: TimeoutPhase,
        /// How long we waited.
        after: Duration,
    },
    /// The exchange broke after it started (reset, malformed HTTP).
    #[error("the exchange with {url} failed: {reason}")]
    Broken {
        /// The URL, redacted.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A body was larger than the caller allows.
    #[error("{url} sent a body larger than {limit} bytes")]
    TooLarge {
        /// The URL, redacted.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The client could not be built (bad TLS roots, for example).
    #[error("could not build an HTTP client: {0}")]
    Setup(String),
}

fn phase_name(phase: TimeoutPhase) -> &'static str {
    match phase {
        TimeoutPhase::Connect => "connecting",
        TimeoutPhase::FirstByte => "waiting for the response",
        TimeoutPhase::Idle => "between two chunks of the body",
        TimeoutPhase::FirstToken => "waiting for the first token",
    }
}

/// A client for one upstream, with its timeouts and its own keep-alive
/// connections. Clones share them.
#[derive(Clone)]
pub struct Transport {
    shared: Arc<Shared>,
}

struct Shared {
    options: TransportOptions,
    pool: Arc<Pool>,
    /// The proxies the environment names; `None` when it names none.
    proxies: Option<Matcher>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("options", &self.shared.options)
            .field("proxied", &self.shared.proxies.is_some())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Builds a client. This is the only place subgate builds one; proxies
    /// come from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
    /// `NO_PROXY`), as curl reads them.
    pub fn new(options: TransportOptions) -> Result<Self, TransportError> {
        connect::tls_config().map_err(|error| TransportError::Setup(error.to_string()))?;
        Ok(Self::with_proxies(options, connect::proxies_from_env()))
    }

    fn with_proxies(options: TransportOptions, proxies: Option<Matcher>) -> Self {
        Self {
            shared: Arc::new(Shared {
                options,
                pool: Arc::default(),
                proxies,
            }),
        }
    }

    /// Sends a request and waits for the response head (bounded by the
    /// connect and first-byte timeouts). The body is left to the caller.
    pub async fn send(&self, request: OutboundRequest) -> Result<InboundResponse, TransportError> {
        let url = redacted_url(&request.url);
        let route = Route::of(&request.url, self.shared.proxies.as_ref()).map_err(|reason| {
            TransportError::Connect {
                url: url.clone(),
                reason,
            }
        })?;
        let request = outbound(request, &route).map_err(|reason| TransportError::Connect {
            url: url.clone(),
            reason,
        })?;
        let first_byte = self.shared.options.first_byte_timeout;
        match tokio::time::timeout(first_byte, self.exchange(route, request, &url)).await {
            Err(_elapsed) => Err(TransportError::Timeout {
                url,
                phase: TimeoutPhase::FirstByte,
                after: first_byte,
            }),
            Ok(Err(error)) => Err(error),
            Ok(Ok((head, upstream))) => Ok(InboundResponse {
                status: head.status,
                headers: head.headers,
                body: ResponseBody::new(upstream, url, self.shared.options.idle_timeout),
            }),
        }
    }

    /// Sends on a resting connection if one is ready, else on a new one. A
    /// resting connection the upstream closed as the request went out
    /// gives the request back, and it goes out again on another.
    async fn exchange(
        &self,
        route: Route,
        mut request: http::Request<pool::Body>,
        url: &str,
    ) -> Result<(http::response::Parts, Upstream), TransportError> {
        let pool = &self.shared.pool;
        loop {
            let (mut conn, reused) = match pool.take(&route.key).await {
                Some(conn) => (conn, true),
                None => (self.connect(&route, url).await?, false),
            };
            tracing::trace!(url, method = %request.method(), reused, "Sending upstream request.");
            match conn.send(request).await {
                Ok(response) => {
                    let (head, incoming) = response.into_parts();
                    tracing::trace!(
                        url,
                        status = head.status.as_u16(),
                        "Upstream answer head in."
                    );
                    let upstream = Upstream::new(incoming, conn, Arc::clone(pool), route.key);
                    return Ok((head, upstream));
                }
                Err(SendError::Unsent(back)) if reused => {
                    tracing::trace!(url, "A resting connection had closed; sending again.");
                    request = *back;
                }
                Err(SendError::Unsent(_) | SendError::Closed) => {
                    return Err(broken(url, "the connection closed before the answer came"));
                }
                Err(SendError::Failed(error)) => return Err(broken(url, &root_cause(&error))),
            }
        }
    }

    async fn connect(&self, route: &Route, url: &str) -> Result<Conn, TransportError> {
        let limit = self.shared.options.connect_timeout;
        match tokio::time::timeout(limit, route.connect()).await {
            Err(_elapsed) => Err(TransportError::Timeout {
                url: url.to_owned(),
                phase: TimeoutPhase::Connect,
                after: limit,
            }),
            Ok(Err(error)) => Err(TransportError::Connect {
                url: url.to_owned(),
                reason: root_cause(&error),
            }),
            Ok(Ok(conn)) => {
                tracing::trace!(
                    origin = &*route.key,
                    proxied = route.proxy.is_some(),
                    "Connected."
                );
                Ok(conn)
            }
        }
    }
}

fn broken(url: &str, reason: &str) -> TransportError {
    TransportError::Broken {
        url: url.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The request as it goes on the wire: origin-form (absolute-form to a
/// proxy that forwards it), with `Host`, a `User-Agent` unless the
/// provider set one, and credentials marked sensitive.
fn outbound(request: OutboundRequest, route: &Route) -> Result<http::Request<pool::Body>, String> {
    let OutboundRequest {
        method,
        url,
        mut headers,
        body,
    } = request;
    let authority = &url[Position::BeforeHost..Position::AfterPort];
    let path = &url[Position::BeforePath..Position::AfterQuery];
    let target = match route.forwarded() {
        Some(proxy) => {
            if let Some(auth) = proxy.auth() {
                headers.insert(PROXY_AUTHORIZATION, auth.clone());
            }
            http::Uri::try_from(format!("{}://{authority}{path}", url.scheme()))
        }
        None => http::Uri::try_from(path),
    }
    .map_err(|error| format!("the URL is not a valid request target: {error}"))?;
    if !headers.contains_key(HOST) {
        let host = HeaderValue::from_str(authority)
            .map_err(|_| "the URL's host is not a valid header".to_owned())?;
        headers.insert(HOST, host);
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    }
    for name in &SENSITIVE_HEADERS {
        if let Some(value) = headers.get_mut(name) {
            value.set_sensitive(true);
        }
    }
    let mut request = http::Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = target;
    *request.headers_mut() = headers;
    Ok(request)
}

const USER_AGENT_VALUE: &str = concat!("subgate/", env!("CARGO_PKG_VERSION"));

/// What went wrong at the bottom of an error's chain: "Connection refused
/// (os error 111)" says more than the layers of client wording above it.
pub(crate) fn root_cause(error: &dyn std::error::Error) -> String {
    let mut root = error;
    while let Some(cause) = root.source() {
        root = cause;
    }
    root.to_string()
}

#[cfg(test)]
mod tests;
