//! A broken or malicious replica: any bytes as its response, read by the proxy's own
//! HTTP/1.1 parser the way a connection reads them (two reads for the head, the body in
//! reads of a few bytes). Never a panic, never more body than framed, never wedged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first bytes choose how the response arrives.
    let [flags, split, step, rest @ ..] = data else {
        return;
    };
    runway_proxy::fuzzing::upstream_response(
        rest,
        flags & 1 == 1,
        usize::from(*split) * 2,
        usize::from(*step % 64) + 1,
    );
});
