//! The thinking-tag parser: any text, cut anywhere, never panic, and the
//! same pieces whatever the cuts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| subgate_fuzz::thinking_tags(data));
