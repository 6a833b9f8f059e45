//! Durations as runway.toml writes them (the checks: runway_spec::fuzzing::duration).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| runway_spec::fuzzing::duration(data));
