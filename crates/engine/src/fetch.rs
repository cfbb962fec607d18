//! Side requests to an upstream (its model catalog, an account's quota):
//! send, check the status, read a bounded body and parse it, all within a
//! time limit. Failures come back as a sentence for the caller to log.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use subgate_http::OutboundRequest;
use subgate_providers::Provider;

/// The largest answer a side request reads (token and login answers).
pub(crate) const MAX_SIDE_BYTES: usize = 256 * 1024;

/// Sends `request` and reads the whole answer, whatever its status, within
/// `timeout`: for token endpoints, whose refusals carry what went wrong.
pub(crate) async fn answer(
    provider: &Provider,
    request: OutboundRequest,
    (max_bytes, timeout): (usize, Duration),
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let exchange = async {
        let response = provider
            .transport()
            .send(request)
            .await
            .map_err(|error| error.to_string())?;
        let body = response
            .body
            .collect(max_bytes)
            .await
            .map_err(|error| error.to_string())?;
        Ok((response.status, response.headers, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_elapsed| format!("it did not answer within {}s", timeout.as_secs()))?
}

/// Sends `request` with `provider`'s transport and parses a success with
/// `parse`; `what` names the expected answer in errors.
pub(crate) async fn fetch<T, E: std::fmt::Display>(
    provider: &Provider,
    request: OutboundRequest,
    limits: (usize, Duration),
    what: &str,
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<T, String> {
    let (status, _, body) = answer(provider, request, limits).await?;
    if !status.is_success() {
        return Err(format!("it answered {status}"));
    }
    parse(&body).map_err(|error| format!("its answer is not {what}: {error}"))
}
