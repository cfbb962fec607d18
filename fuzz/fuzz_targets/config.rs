//! A config file, parsed and validated: never a panic, errors that say
//! something, and what passes is valid.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| subgate_fuzz::config(data));
