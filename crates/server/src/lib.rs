//! subgate's HTTP surface.
//!
//! Thin on purpose: handlers read the request, hand it to the engine and
//! write what comes back, errors included, in the client's dialect. This
//! crate never names a provider. [`start`] binds the listener and runs the
//! server until [`Running::shutdown`].

mod admin;
mod config_view;
mod respond;
mod routes;
mod serve;

pub use routes::router;
pub use serve::{Running, ServeError, StopHandle, start};
