//! The SSE decoder: any bytes, cut anywhere, never panic, and the events do
//! not depend on the cuts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| subgate_fuzz::sse(data));
