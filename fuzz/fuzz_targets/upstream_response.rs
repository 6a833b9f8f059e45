//! A broken or malicious replica: any bytes as its response, read by the proxy's own
//! HTTP/1.1 parser as a connection reads them (the checks: runway_proxy::fuzzing).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| runway_proxy::fuzzing::upstream_response_input(data));
