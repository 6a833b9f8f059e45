//! The properties the fuzz targets (fuzz/ at the workspace root) check, here so that the
//! normal test suite replays the fuzzers' corpora through the very same checks
//! (tests/fuzz_corpus.rs). Not an API.
// A property that does not hold is a panic: that is what the fuzzer catches.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

/// runway.toml as any bytes: a spec or located errors, never a panic; an accepted spec
/// validates (or says why not), and reads back from its JSON form unchanged; errors render
/// with their place.
pub fn reader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::parse_str(text, "runway.toml") {
        Ok(spec) => {
            let _ = spec.validate();
            let json = serde_json::to_value(&spec).expect("a spec serializes");
            let back: crate::Spec =
                serde_json::from_value(json).expect("a spec's JSON form reads back");
            assert_eq!(back, spec, "the JSON form changed the spec");
        }
        Err(errors) => {
            let rendered = errors.to_string();
            assert!(rendered.contains("runway.toml:"), "{rendered}");
        }
    }
}

/// A duration as any bytes: never a panic; one accepted reads back from its rendering as
/// the same duration, and is a duration for both parsers.
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let plain = crate::parse_duration(text);
    if let Ok(dur) = text.parse::<crate::Dur>() {
        let rendered = dur.to_string();
        let again: crate::Dur = rendered
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} rendered as {rendered:?}, which fails: {e}"));
        assert_eq!(again, dur, "{text:?} -> {rendered:?}");
        assert!(plain.is_ok(), "{text:?}: a Dur but not a duration");
    }
}
