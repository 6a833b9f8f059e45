//! The `condition` fuzzer's corpus (fuzz/corpus/condition) replayed through its checks:
//! every input it found interesting, and every crash it ever found, stays a regression test.

#[test]
fn the_condition_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/condition");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| runway_analysis::fuzzing::condition(&data));
        assert!(outcome.is_ok(), "{} fails its check", path.display());
        inputs += 1;
    }
    assert!(inputs > 10, "only {inputs} inputs");
}
