//! subgate's wire dialects.
//!
//! Pure code only: codecs that take bytes and values and return bytes and
//! values. No I/O, no async runtime, no clock and no randomness; whoever
//! needs an id or a timestamp passes it in. Provider quirks do not belong
//! here either; they live with their provider in `subgate-providers`.

pub mod error;
pub mod json_edit;
pub mod openai_chat;
pub mod sse;
