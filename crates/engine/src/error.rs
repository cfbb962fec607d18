//! What the engine tells a client when it cannot answer, before it is
//! written in the client's dialect.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use subgate_core::{Dialect, FailureClass};
use subgate_http::{TimeoutPhase, TransportError};
use subgate_protocol::error::{ErrorKind, ErrorReport};
use subgate_providers::Failure;

/// A request the gateway could not answer with success. Boxed, so the
/// `Result`s it travels in stay small; its fields read through `Deref`.
#[derive(Debug, Clone)]
pub struct GatewayError(Box<ErrorDetails>);

impl std::ops::Deref for GatewayError {
    type Target = ErrorDetails;

    fn deref(&self) -> &ErrorDetails {
        &self.0
    }
}

impl std::ops::DerefMut for GatewayError {
    fn deref_mut(&mut self) -> &mut ErrorDetails {
        &mut self.0
    }
}

/// What a [`GatewayError`] says.
#[derive(Debug, Clone)]
pub struct ErrorDetails {
    /// What went wrong, in terms every dialect has a word for.
    pub kind: ErrorKind,
    /// The status the client gets.
    pub status: StatusCode,
    /// A sentence for a human; never holds a secret.
    pub message: String,
    /// A machine-readable code, where one helps.
    pub code: Option<String>,
    /// The request field at fault.
    pub param: Option<String>,
    /// How long the client should wait before trying again.
    pub retry_after: Option<Duration>,
    /// A body already written in the client's dialect: an upstream's own
    /// error, passed on (scrubbed of secrets).
    pub body: Option<Bytes>,
    /// The class recorded with the request.
    pub class: FailureClass,
    /// Headers the response carries (request id, provider, account).
    pub headers: HeaderMap,
    /// What the failure means for routing, when an upstream failed: which
    /// account or model rests, and whether another one may answer.
    pub failure: Option<Failure>,
}

impl GatewayError {
    fn new(kind: ErrorKind, status: StatusCode, class: FailureClass, message: String) -> Self {
        Self(Box::new(ErrorDetails {
            kind,
            status,
            message,
            code: None,
            param: None,
            retry_after: None,
            body: None,
            class,
            headers: HeaderMap::new(),
            failure: None,
        }))
    }

    /// The client sent something that cannot work.
    pub fn bad_request(message: impl Into<String>, param: Option<String>) -> Self {
        let mut error = Self::new(
            ErrorKind::InvalidRequest,
            StatusCode::BAD_REQUEST,
            FailureClass::BadRequest,
            message.into(),
        );
        error.param = param;
        error
    }

    /// The client's key is missing, unknown, expired or revoked.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::Authentication,
            StatusCode::UNAUTHORIZED,
            FailureClass::Unauthorized,
            message.into(),
        )
    }

    /// The client's key does not allow what was asked.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::PermissionDenied,
            StatusCode::FORBIDDEN,
            FailureClass::Forbidden,
            message.into(),
        )
    }

    /// The client's key reached a limit; it may try again after `wait`.
    pub(crate) fn key_limited(message: String, wait: Duration) -> Self {
        let mut error = Self::new(
            ErrorKind::RateLimited,
            StatusCode::TOO_MANY_REQUESTS,
            FailureClass::KeyLimited,
            message,
        );
        error.retry_after = Some(wait);
        error
    }

    /// A request the dialect's reader refused.
    pub fn invalid(invalid: subgate_protocol::canonical::Invalid) -> Self {
        Self::bad_request(invalid.message, invalid.param)
    }

    /// The upstream answered with something that could not be read.
    pub(crate) fn unreadable(provider: &str, message: &str) -> Self {
        Self::new(
            ErrorKind::Upstream,
            StatusCode::BAD_GATEWAY,
            FailureClass::StreamBroken,
            format!("provider `{provider}` sent an answer that could not be read: {message}"),
        )
    }

    /// The upstream's stream reported a failure before anything reached
    /// the client.
    pub(crate) fn stream_failed(
        provider: &str,
        error: &subgate_protocol::canonical::StreamError,
    ) -> Self {
        let (status, class) = match error.kind {
            ErrorKind::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                FailureClass::UpstreamRateLimited,
            ),
            ErrorKind::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, FailureClass::UpstreamFault),
            ErrorKind::InvalidRequest => (StatusCode::BAD_REQUEST, FailureClass::UpstreamRejected),
            ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, FailureClass::UpstreamTimeout),
            _ => (StatusCode::BAD_GATEWAY, FailureClass::UpstreamFault),
        };
        Self::new(
            error.kind,
            status,
            class,
            format!("provider `{provider}` failed: {}", error.message),
        )
    }

    /// The client did not send its whole body within `server.read_timeout`.
    pub fn body_too_slow(timeout: Duration) -> Self {
        Self::new(
            ErrorKind::InvalidRequest,
            StatusCode::REQUEST_TIMEOUT,
            FailureClass::BadRequest,
            format!(
                "the request body did not arrive within {}s; raise `server.read_timeout` for slow links",
                timeout.as_secs_f32()
            ),
        )
    }

    /// The body is over the configured limit.
    pub fn payload_too_large(limit: usize) -> Self {
        let mut error = Self::new(
            ErrorKind::RequestTooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            FailureClass::BadRequest,
            format!(
                "the request body is larger than {limit} bytes; raise `server.max_body_size` to accept it"
            ),
        );
        error.code = Some("request_too_large".to_owned());
        error
    }

    /// No route matches the path.
    pub fn no_route(method: &str, path: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            StatusCode::NOT_FOUND,
            FailureClass::BadRequest,
            format!("there is no route for {method} {path}"),
        )
    }

    /// The route exists but not with this method.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            ErrorKind::InvalidRequest,
            StatusCode::METHOD_NOT_ALLOWED,
            FailureClass::BadRequest,
            format!("{path} does not accept {method}"),
        )
    }

    /// No provider serves the model.
    pub fn unknown_model(model: &str, available: &[&str]) -> Self {
        const SHOWN: usize = 30;
        let mut message = format!("the model `{model}` is not served here");
        if available.is_empty() {
            message.push_str("; no models are available (check the providers in the config)");
        } else {
            message.push_str("; available models: ");
            message.push_str(&available[..available.len().min(SHOWN)].join(", "));
            if available.len() > SHOWN {
                let _ = write!(
                    message,
                    " and {} more (GET /v1/models lists them)",
                    available.len() - SHOWN
                );
            }
        }
        let mut error = Self::new(
            ErrorKind::NotFound,
            StatusCode::NOT_FOUND,
            FailureClass::UnknownModel,
            message,
        );
        error.code = Some("model_not_found".to_owned());
        error.param = Some("model".to_owned());
        error
    }

    /// Talking to the upstream failed before it answered. Anything but a
    /// body over the limit or a setup fault lets another account try.
    pub(crate) fn transport(provider: &str, error: &TransportError) -> Self {
        let mut gateway = Self::from_transport(provider, error);
        if !matches!(
            error,
            TransportError::TooLarge { .. } | TransportError::Setup(_)
        ) {
            gateway.failure = Some(Failure::unreachable(gateway.class));
        }
        gateway
    }

    fn from_transport(provider: &str, error: &TransportError) -> Self {
        match error {
            TransportError::Timeout { phase, .. } => {
                let mut timeout = Self::new(
                    ErrorKind::Timeout,
                    StatusCode::GATEWAY_TIMEOUT,
                    FailureClass::UpstreamTimeout,
                    format!("provider `{provider}` did not answer in time: {error}"),
                );
                timeout.code = Some(
                    match phase {
                        TimeoutPhase::Connect => "connect_timeout",
                        TimeoutPhase::FirstByte => "first_byte_timeout",
                        TimeoutPhase::Idle => "idle_timeout",
                        TimeoutPhase::FirstToken => "first_token_timeout",
                    }
                    .to_owned(),
                );
                timeout
            }
            TransportError::Connect { .. } => Self::new(
                ErrorKind::Upstream,
                StatusCode::BAD_GATEWAY,
                FailureClass::UpstreamUnreachable,
                format!("provider `{provider}` could not be reached: {error}"),
            ),
            TransportError::Broken { .. } | TransportError::TooLarge { .. } => Self::new(
                ErrorKind::Upstream,
                StatusCode::BAD_GATEWAY,
                FailureClass::UpstreamFault,
                format!("provider `{provider}` failed: {error}"),
            ),
            TransportError::Setup(_) => Self::internal(format!("provider `{provider}`: {error}")),
        }
    }

    /// The upstream answered with an error status; `body` is already in the
    /// client's dialect when `Some`.
    pub(crate) fn upstream(
        status: StatusCode,
        class: FailureClass,
        message: String,
        body: Option<Bytes>,
        retry_after: Option<Duration>,
    ) -> Self {
        let kind = match status.as_u16() {
            400 | 422 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::RequestTooLarge,
            429 => ErrorKind::RateLimited,
            503 | 529 => ErrorKind::Overloaded,
            504 => ErrorKind::Timeout,
            _ => ErrorKind::Upstream,
        };
        let mut error = Self::new(kind, status, class, message);
        error.body = body;
        error.retry_after = retry_after;
        error
    }

    /// Every account that could serve the request is resting.
    pub(crate) fn all_resting(model: &str, resting: usize, wait: Option<Duration>) -> Self {
        let mut message = format!(
            "every account that serves `{model}` is resting ({resting} cooling down, out of quota or failing)"
        );
        if let Some(wait) = wait {
            let _ = write!(message, "; the first is back in {}s", wait.as_secs().max(1));
        }
        let mut error = Self::new(
            ErrorKind::RateLimited,
            StatusCode::TOO_MANY_REQUESTS,
            FailureClass::UpstreamRateLimited,
            message,
        );
        error.code = Some("all_accounts_resting".to_owned());
        error.retry_after = wait;
        error
    }

    /// Every account that could serve the request stayed at its
    /// concurrency cap until the failover deadline.
    pub(crate) fn no_free_account(model: &str, waited: Duration) -> Self {
        let mut error = Self::new(
            ErrorKind::Overloaded,
            StatusCode::SERVICE_UNAVAILABLE,
            FailureClass::UpstreamRateLimited,
            format!(
                "no account that serves `{model}` had room for another request within {}s (concurrency caps)",
                waited.as_secs()
            ),
        );
        error.code = Some("accounts_busy".to_owned());
        error
    }

    /// The gateway is stopping and did not finish this request.
    pub(crate) fn shutting_down() -> Self {
        Self::new(
            ErrorKind::Overloaded,
            StatusCode::SERVICE_UNAVAILABLE,
            FailureClass::Internal,
            "the gateway is shutting down; retry the request".to_owned(),
        )
    }

    /// A fault on our side.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::Internal,
            StatusCode::INTERNAL_SERVER_ERROR,
            FailureClass::Internal,
            message.into(),
        )
    }

    /// The error as a report, for dialect writers.
    pub fn report(&self) -> ErrorReport<'_> {
        ErrorReport {
            kind: self.kind,
            status: self.status.as_u16(),
            message: &self.message,
            code: self.code.as_deref(),
            param: self.param.as_deref(),
        }
    }

    /// The response body in `dialect`.
    pub fn body(&self, dialect: Dialect) -> Bytes {
        match &self.body {
            Some(body) => body.clone(),
            None => Bytes::from(self.report().to_body(dialect)),
        }
    }

    /// The `retry-after` header value (whole seconds, rounded up), if any.
    pub fn retry_after_header(&self) -> Option<HeaderValue> {
        let after = self.retry_after?;
        let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        Some(HeaderValue::from(seconds))
    }
}
