//! Why a request did not succeed, in a closed list fit for metrics labels.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The class of a failed request, stored with its usage record and used as a
/// metrics label. The list is closed so label cardinality stays bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The client sent something we could not accept.
    BadRequest,
    /// The client's key was missing, unknown, expired or revoked.
    Unauthorized,
    /// The client's key does not allow what was asked.
    Forbidden,
    /// The client's key reached one of its limits.
    KeyLimited,
    /// No configured provider serves the requested model.
    UnknownModel,
    /// The upstream rejected our credential.
    UpstreamAuth,
    /// The upstream asked us to slow down.
    UpstreamRateLimited,
    /// The upstream refused the request (another 4xx).
    UpstreamRejected,
    /// The upstream failed (5xx).
    UpstreamFault,
    /// The upstream could not be reached.
    UpstreamUnreachable,
    /// The upstream did not answer in time (connect, first byte or idle gap).
    UpstreamTimeout,
    /// The upstream's stream ended before its terminal event, or broke.
    StreamBroken,
    /// The client went away before the answer was complete.
    ClientCancelled,
    /// A bug or resource problem on our side.
    Internal,
}

impl FailureClass {
    /// The stable name used in storage, logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::KeyLimited => "key_limited",
            Self::UnknownModel => "unknown_model",
            Self::UpstreamAuth => "upstream_auth",
            Self::UpstreamRateLimited => "upstream_rate_limited",
            Self::UpstreamRejected => "upstream_rejected",
            Self::UpstreamFault => "upstream_fault",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::StreamBroken => "stream_broken",
            Self::ClientCancelled => "client_cancelled",
            Self::Internal => "internal",
        }
    }

    /// The class an upstream HTTP error status belongs to.
    pub const fn from_upstream_status(status: u16) -> Self {
        match status {
            401 | 403 => Self::UpstreamAuth,
            429 => Self::UpstreamRateLimited,
            500..=599 => Self::UpstreamFault,
            _ => Self::UpstreamRejected,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(
            FailureClass::from_upstream_status(401),
            FailureClass::UpstreamAuth
        );
        assert_eq!(
            FailureClass::from_upstream_status(429),
            FailureClass::UpstreamRateLimited
        );
        assert_eq!(
            FailureClass::from_upstream_status(503),
            FailureClass::UpstreamFault
        );
        assert_eq!(
            FailureClass::from_upstream_status(404),
            FailureClass::UpstreamRejected
        );
    }
}
