//! Side requests to an upstream (its model catalog, an account's quota):
//! send, check the status, read a bounded body and parse it, all within a
//! time limit. Failures come back as a sentence for the caller to log.

use std::time::Duration;

use subgate_http::OutboundRequest;
use subgate_providers::Provider;

/// The largest answer a side request reads (token and login answers).
pub(crate) const MAX_SIDE_BYTES: usize = 256 * 1024;

/// Sends `request` with `provider`'s transport and parses a success with
/// `parse`; `what` names the expected answer in errors.
pub(crate) async fn fetch<T, E: std::fmt::Display>(
    provider: &Provider,
    request: OutboundRequest,
    limits: (usize, Duration),
    what: &str,
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<T, String> {
    let (max_bytes, timeout) = limits;
    let exchange = async {
        let response = provider
            .transport()
            .send(request)
            .await
            .map_err(|error| error.to_string())?;
        if !response.status.is_success() {
            return Err(format!("it answered {}", response.status));
        }
        let body = response
            .body
            .collect(max_bytes)
            .await
            .map_err(|error| error.to_string())?;
        parse(&body).map_err(|error| format!("its answer is not {what}: {error}"))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_elapsed| format!("it did not answer within {}s", timeout.as_secs()))?
}
