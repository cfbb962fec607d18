//! Kiro's event stream, cut anywhere: decoded to a valid event sequence
//! without panicking, and to the same events and truncation reports
//! whatever the cuts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| subgate_fuzz::kiro_stream(data));
