//! Login building blocks, the same for every subscription: PKCE and random
//! state, the loopback callback a browser login returns to, device-code
//! polling, and reading a JWT's claims. What each provider sends and reads
//! lives with that provider; this crate knows no provider. Also the
//! secrets of subgate's own client keys ([`client_key`]).

mod callback;
pub mod client_key;
mod device;
mod jwt;
mod pkce;

pub use callback::{Callback, CallbackError, CallbackServer};
pub use device::{DeviceError, DevicePoll, poll_device};
pub use jwt::claims;
pub use pkce::{Pkce, random_token};
