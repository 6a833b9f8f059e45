//! Analysis conditions ("> 0.05", "> stable + 0.01", "> 2x stable"): never a panic, and an
//! accepted one reads back from its own rendering as the same condition.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(condition) = runway_analysis::Condition::parse(text) {
        let rendered = condition.to_string();
        let again = runway_analysis::Condition::parse(&rendered)
            .unwrap_or_else(|e| panic!("{text:?} rendered as {rendered:?}, which fails: {e}"));
        assert_eq!(again, condition, "{text:?} -> {rendered:?}");
    }
});
