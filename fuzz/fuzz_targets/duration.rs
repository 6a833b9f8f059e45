//! Durations as runway.toml writes them ("1m30s", "500ms"): never a panic, and an accepted
//! one reads back from its own rendering as the same duration.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let plain = runway_spec::parse_duration(text);
    if let Ok(dur) = text.parse::<runway_spec::Dur>() {
        let rendered = dur.to_string();
        let again: runway_spec::Dur = rendered
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} rendered as {rendered:?}, which fails: {e}"));
        assert_eq!(again, dur, "{text:?} -> {rendered:?}");
        assert!(plain.is_ok(), "{text:?}: a Dur but not a duration");
    }
});
