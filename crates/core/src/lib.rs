//! The vocabulary every subgate crate shares.
//!
//! Plain data and small pure helpers only: no I/O, no async, no clock. What a
//! request is called on the wire lives in `subgate-protocol`; how an upstream
//! is reached lives in `subgate-providers`.

mod dialect;
mod failure;
mod ids;
mod provider;
mod secret;
mod usage;

pub use dialect::{Dialect, Wire};
pub use failure::FailureClass;
pub use ids::RequestId;
pub use provider::ProviderKind;
pub use secret::{SecretString, expose, fingerprint, mask};
pub use usage::Usage;
