//! runway.toml, read and validated (the checks: runway_spec::fuzzing::reader).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| runway_spec::fuzzing::reader(data));
