//! Outbound HTTP for every upstream.
//!
//! One factory builds the clients ([`Transport::new`]) so every upstream
//! connection gets the same treatment: `TCP_NODELAY`, a connect timeout, no
//! redirects (a redirect would carry credentials somewhere unplanned), a
//! first-byte timeout around the response head and an idle timeout between
//! body chunks. Errors never carry a URL with its query, a header value or a
//! body, so nothing secret leaks through them.
//!
//! What a request means is not this crate's business: providers build
//! [`OutboundRequest`]s and read [`InboundResponse`]s.

mod body;
mod redact;

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderName, Method, StatusCode};
pub use url::Url;

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

/// A client for one upstream, with its timeouts.
#[derive(Debug, Clone)]
pub struct Transport {
    client: reqwest::Client,
    options: TransportOptions,
}

impl Transport {
    /// Builds a client. This is the only place subgate builds one. Each
    /// provider has its own: HTTP/2 puts every request to a host on one
    /// connection, whose stream limit (about 100) a shared client would
    /// make every provider on that host share. (Sharing one was tried and
    /// saved no memory measurably.)
    pub fn new(options: TransportOptions) -> Result<Self, TransportError> {
        #[expect(
            clippy::disallowed_methods,
            reason = "the one client factory the ban points everyone else to"
        )]
        let builder = reqwest::Client::builder();
        let client = builder
            .tcp_nodelay(true)
            .connect_timeout(options.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("subgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| TransportError::Setup(root_cause(&error.without_url())))?;
        Ok(Self { client, options })
    }

    /// Sends a request and waits for the response head (bounded by the
    /// connect and first-byte timeouts). The body is left to the caller.
    pub async fn send(&self, request: OutboundRequest) -> Result<InboundResponse, TransportError> {
        let url = redacted_url(&request.url);
        let mut headers = request.headers;
        for name in &SENSITIVE_HEADERS {
            if let Some(value) = headers.get_mut(name) {
                value.set_sensitive(true);
            }
        }
        let pending = self
            .client
            .request(request.method, request.url)
            .headers(headers)
            .body(request.body)
            .send();
        let first_byte = self.options.first_byte_timeout;
        let response = match tokio::time::timeout(first_byte, pending).await {
            Err(_elapsed) => {
                return Err(TransportError::Timeout {
                    url,
                    phase: TimeoutPhase::FirstByte,
                    after: first_byte,
                });
            }
            Ok(Err(error)) => return Err(self.classify(error, url)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let headers = response.headers().clone();
        Ok(InboundResponse {
            status,
            headers,
            body: ResponseBody::new(response, url, self.options.idle_timeout),
        })
    }

    fn classify(&self, error: reqwest::Error, url: String) -> TransportError {
        if error.is_connect() && error.is_timeout() {
            TransportError::Timeout {
                url,
                phase: TimeoutPhase::Connect,
                after: self.options.connect_timeout,
            }
        } else if error.is_connect() {
            TransportError::Connect {
                url,
                reason: root_cause(&error.without_url()),
            }
        } else {
            TransportError::Broken {
                url,
                reason: root_cause(&error.without_url()),
            }
        }
    }
}

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
