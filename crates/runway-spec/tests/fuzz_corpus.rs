//! The fuzzers' corpora (fuzz/corpus/, kept in the repository) replayed through the fuzz
//! targets' own checks: every input a fuzzer found interesting, and every crash it ever
//! found (added to the corpus when fixed), stays a regression test.

fn replay(target: &str, check: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its check", path.display());
        inputs += 1;
    }
    assert!(
        inputs > 10,
        "{target}: only {inputs} inputs in {}",
        dir.display()
    );
}

#[test]
fn the_spec_reader_corpus_replays() {
    replay("spec_reader", runway_spec::fuzzing::reader);
}

#[test]
fn the_duration_corpus_replays() {
    replay("duration", runway_spec::fuzzing::duration);
}
