//! End-to-end tests: the real server on an ephemeral loopback port in front
//! of testkit's mock upstreams, and the real binary as a process.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure should fail loudly"
)]

mod accounts;
mod api;
mod bad_input;
mod cli;
mod clients;
mod codex;
mod copilot;
mod costs;
mod errors;
mod faults;
mod gemini_cli;
mod keys;
mod kiro;
mod matrix;
mod passthrough;
mod postgres;
mod process;
mod routing;
mod sdk;
mod secrets;
mod shutdown;
mod streams;
mod subscriptions;
mod support;
