//! Error bodies in each client dialect.
//!
//! The engine decides what went wrong ([`ErrorKind`], a status and a message);
//! this module decides how each dialect writes it down.

use serde_json::{Value, json};
use subgate_core::Dialect;

/// What went wrong, in the terms every dialect has a word for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or names something that cannot work.
    InvalidRequest,
    /// The caller's credential is missing or wrong.
    Authentication,
    /// The caller may not do this.
    PermissionDenied,
    /// The model or route does not exist.
    NotFound,
    /// The request body is over the size limit.
    RequestTooLarge,
    /// Too many requests, or a quota is used up.
    RateLimited,
    /// The service is overloaded.
    Overloaded,
    /// An upstream failed or could not be reached.
    Upstream,
    /// An upstream did not answer in time.
    Timeout,
    /// A fault inside the gateway.
    Internal,
}

/// One error, ready to be written in a dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorReport<'a> {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The HTTP status the response carries.
    pub status: u16,
    /// A sentence for a human.
    pub message: &'a str,
    /// A machine-readable code, where the dialect has a place for it.
    pub code: Option<&'a str>,
    /// The request field at fault, where the dialect has a place for it.
    pub param: Option<&'a str>,
}

impl ErrorReport<'_> {
    /// The body of an error response in `dialect`.
    pub fn to_body(&self, dialect: Dialect) -> Vec<u8> {
        serde_json::to_vec(&self.to_value(dialect)).unwrap_or_default()
    }

    /// The error as a JSON value in `dialect`.
    pub fn to_value(&self, dialect: Dialect) -> Value {
        match dialect {
            Dialect::OpenAiChat | Dialect::OpenAiResponses => json!({
                "error": {
                    "message": self.message,
                    "type": openai_type(self.kind),
                    "param": self.param,
                    "code": self.code,
                }
            }),
            Dialect::Anthropic => json!({
                "type": "error",
                "error": { "type": anthropic_type(self.kind), "message": self.message },
            }),
            Dialect::Gemini => json!({
                "error": {
                    "code": self.status,
                    "message": self.message,
                    "status": gemini_status(self.kind, self.status),
                }
            }),
        }
    }
}

/// The status a client of `dialect` gets for an upstream's `status`:
/// Anthropic's own 529 "overloaded" is 503 to every other client.
pub fn client_status(dialect: Dialect, status: u16) -> u16 {
    if status == 529 && dialect != Dialect::Anthropic {
        503
    } else {
        status
    }
}

fn openai_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::RequestTooLarge => {
            "invalid_request_error"
        }
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Overloaded | ErrorKind::Internal => "server_error",
        ErrorKind::Upstream => "upstream_error",
        ErrorKind::Timeout => "timeout_error",
    }
}

fn anthropic_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::RequestTooLarge => "request_too_large",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Upstream | ErrorKind::Timeout | ErrorKind::Internal => "api_error",
    }
}

fn gemini_status(kind: ErrorKind, status: u16) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::RequestTooLarge => "INVALID_ARGUMENT",
        ErrorKind::Authentication => "UNAUTHENTICATED",
        ErrorKind::PermissionDenied => "PERMISSION_DENIED",
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::RateLimited => "RESOURCE_EXHAUSTED",
        ErrorKind::Overloaded => "UNAVAILABLE",
        ErrorKind::Timeout => "DEADLINE_EXCEEDED",
        ErrorKind::Upstream if status == 503 || status == 502 => "UNAVAILABLE",
        ErrorKind::Upstream | ErrorKind::Internal => "INTERNAL",
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    const REPORT: ErrorReport<'static> = ErrorReport {
        kind: ErrorKind::NotFound,
        status: 404,
        message: "model `x` is not served here",
        code: Some("model_not_found"),
        param: Some("model"),
    };

    #[test]
    fn openai_shape() {
        assert_eq!(
            REPORT.to_value(Dialect::OpenAiChat),
            json!({"error": {"message": "model `x` is not served here", "type": "invalid_request_error",
                             "param": "model", "code": "model_not_found"}})
        );
    }

    #[test]
    fn anthropic_shape() {
        assert_eq!(
            REPORT.to_value(Dialect::Anthropic),
            json!({"type": "error", "error": {"type": "not_found_error", "message": "model `x` is not served here"}})
        );
    }

    #[test]
    fn only_anthropic_clients_see_529() {
        assert_eq!(client_status(Dialect::Anthropic, 529), 529);
        for dialect in [
            Dialect::OpenAiChat,
            Dialect::OpenAiResponses,
            Dialect::Gemini,
        ] {
            assert_eq!(client_status(dialect, 529), 503);
            assert_eq!(client_status(dialect, 429), 429);
        }
    }

    #[test]
    fn gemini_shape() {
        assert_eq!(
            REPORT.to_value(Dialect::Gemini),
            json!({"error": {"code": 404, "message": "model `x` is not served here", "status": "NOT_FOUND"}})
        );
    }
}
