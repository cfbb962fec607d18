//! What an OpenAI-compatible upstream's error statuses mean.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use subgate_core::FailureClass;

use crate::Failure;

pub(crate) fn classify_failure(status: StatusCode, headers: &HeaderMap) -> Failure {
    Failure {
        class: FailureClass::from_upstream_status(status.as_u16()),
        retry_after: retry_after(headers),
    }
}

/// `retry-after-ms` (OpenAI's) or `retry-after` in seconds. The HTTP-date
/// form is not used by these APIs.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let read = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|value| value.is_finite() && *value >= 0.0)
    };
    if let Some(millis) = read("retry-after-ms") {
        return Duration::try_from_secs_f64(millis / 1000.0).ok();
    }
    read("retry-after").and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
}
