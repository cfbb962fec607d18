//! Test support for subgate (dev-only).
//!
//! - [`mock`]: mock upstreams that any test starts on a loopback port and
//!   steers request by request (errors, rate limits, delays, broken
//!   streams), recording everything they receive.
//! - [`TestGateway`]: the real server on an ephemeral port with a temporary
//!   data directory and a given config.
//! - [`TcpRelay`]: a loopback TCP forwarder that a test can cut, to take a
//!   dependency (the database, an upstream) away mid-test.
//!
//! Nothing here reaches beyond 127.0.0.1.

#![expect(
    clippy::expect_used,
    clippy::missing_panics_doc,
    reason = "test support: a setup that fails must fail the test loudly"
)]

mod gateway;
pub mod mock;
mod relay;

pub use gateway::{TestGateway, http_client};
pub use relay::TcpRelay;
