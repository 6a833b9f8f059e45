//! The property the `condition` fuzz target (fuzz/ at the workspace root) checks, here so
//! that the normal test suite replays its corpus (tests/fuzz_corpus.rs). Not an API.
// A property that does not hold is a panic: that is what the fuzzer catches.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

/// A condition as any bytes: never a panic; one accepted reads back from its rendering as
/// the same condition.
pub fn condition(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(condition) = crate::Condition::parse(text) {
        let rendered = condition.to_string();
        let again = crate::Condition::parse(&rendered)
            .unwrap_or_else(|e| panic!("{text:?} rendered as {rendered:?}, which fails: {e}"));
        assert_eq!(again, condition, "{text:?} -> {rendered:?}");
    }
}
