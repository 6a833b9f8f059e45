//! runway is never the outage: faults of the host around a running server.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::harness::{text, App, Harness};

/// server.json deleted (or overwritten) under a running server would lock the CLI out: the
/// server writes it again within a second or two, and the CLI works on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_server_file_is_written_again_and_the_cli_works_on() {
    let h = Harness::start().await;
    let out = h
        .deploy(
            "v1",
            &App {
                replicas: 1,
                ..App::default()
            },
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let before = h.server_file();
    let file = h.state_path().join("server.json");

    std::fs::remove_file(&file).unwrap();
    let started = Instant::now();
    while !file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "server.json was not written again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("server.json back after {:?}", started.elapsed());
    let after = h.server_file();
    assert_eq!(before, after, "the same server, the same token");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let status = h.status().await;
    assert_eq!(status["services"][0]["serving"][0]["version"], "v1", "{status}");

    // Overwritten with something else (a stale copy from another server): set right too.
    std::fs::write(
        &file,
        r#"{"api":"127.0.0.1:1","metrics":"127.0.0.1:1","token":"stale","pid":1}"#,
    )
    .unwrap();
    let started = Instant::now();
    while h.server_file() != before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a stale server.json was left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = h.runway(&["history"]).await;
    assert!(out.status.success(), "{}", text(&out));
}
