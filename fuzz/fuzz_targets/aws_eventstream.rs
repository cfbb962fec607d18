//! The AWS event-stream decoder: any bytes, cut anywhere, never panic, the
//! same messages and errors whatever the cuts, and every message encodes
//! back to its bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| subgate_fuzz::aws_eventstream(data));
