//! A client's request body in this dialect: decoded, read for pass-through,
//! and re-encoded for every upstream dialect without panicking.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    subgate_fuzz::request(subgate_core::Dialect::Gemini, data);
});
