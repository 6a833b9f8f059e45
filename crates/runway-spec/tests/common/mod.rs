//! Helpers shared by the spec tests: parse a sample that must be valid, or get the error of
//! one that must not be, and check where that error points and what it says.

#![allow(dead_code)] // each test file uses its own subset

use runway_spec::{parse_str, Spec, SpecError, SpecErrors};

/// Parses `text`, which must be valid.
pub fn parse(text: &str) -> Spec {
    parse_str(text, "runway.toml").unwrap_or_else(|err| panic!("should parse:\n{err}\n\n{text}"))
}

/// The (first) error of `text`, which must be invalid.
pub fn error_of(text: &str) -> SpecError {
    errors_of(text).first().clone()
}

/// Every error of `text`, which must be invalid.
pub fn errors_of(text: &str) -> SpecErrors {
    match parse_str(text, "runway.toml") {
        Ok(spec) => panic!("should fail, parsed {spec:?} from:\n{text}"),
        Err(err) => err,
    }
}

/// Asserts where the error points, that its message contains `message`, and that its
/// hint contains `hint`.
#[track_caller]
pub fn assert_error(text: &str, (line, col): (usize, usize), message: &str, hint: &str) {
    let err = error_of(text);
    assert_eq!((err.line, err.col), (line, col), "wrong position:\n{err}");
    assert!(
        err.message.contains(message),
        "message should contain {message:?}:\n{err}"
    );
    let got = err
        .hint
        .as_deref()
        .unwrap_or_else(|| panic!("no hint:\n{err}"));
    assert!(got.contains(hint), "hint should contain {hint:?}:\n{err}");
}
