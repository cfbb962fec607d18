//! An upstream's stream in this dialect, cut anywhere: decoded, encoded for
//! every client dialect, aggregated and metered without panicking, and the
//! same whatever the cuts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    subgate_fuzz::stream(subgate_core::Dialect::Anthropic, data);
});
