//! runway.toml, read and validated: any bytes give a spec or located errors, never a panic;
//! an accepted spec validates, renders its errors, and survives its JSON form.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match runway_spec::parse_str(text, "runway.toml") {
        Ok(spec) => {
            let _ = spec.validate();
            let json = serde_json::to_value(&spec).expect("a spec serializes");
            let back: runway_spec::Spec =
                serde_json::from_value(json).expect("a spec's JSON form reads back");
            assert_eq!(back, spec, "the JSON form changed the spec");
        }
        Err(errors) => {
            // Rendering points at line:col with the source line underlined.
            let rendered = errors.to_string();
            assert!(rendered.contains("runway.toml:"), "{rendered}");
        }
    }
});
