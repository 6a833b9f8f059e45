//! The `upstream_response` fuzzer's corpus (fuzz/corpus/upstream_response) replayed through
//! its checks: every response it found interesting, and every crash it ever found, stays a
//! regression test of the proxy's own HTTP/1.1 parser.

#[test]
fn the_upstream_response_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/upstream_response");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome =
            std::panic::catch_unwind(|| runway_proxy::fuzzing::upstream_response_input(&data));
        assert!(outcome.is_ok(), "{} fails its check", path.display());
        inputs += 1;
    }
    assert!(inputs > 10, "only {inputs} inputs");
}
