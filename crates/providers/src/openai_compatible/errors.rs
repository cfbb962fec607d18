//! What an OpenAI-style upstream's error statuses mean.

use http::{HeaderMap, StatusCode};
use subgate_core::FailureClass;

use crate::Failure;
use crate::common::retry_after;

pub(crate) fn classify_failure(status: StatusCode, headers: &HeaderMap) -> Failure {
    Failure {
        class: FailureClass::from_upstream_status(status.as_u16()),
        retry_after: retry_after(headers),
    }
}
