//! Analysis conditions (the checks: runway_analysis::fuzzing::condition).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| runway_analysis::fuzzing::condition(data));
