//! Real HTTP client libraries against a proxy that refuses their POSTs:
//! Python's `http.client` and `requests` (tests/clients/post_bodies.py) and
//! curl, each on its keep-alive connection, with JSON bodies from a few bytes
//! to several MB. Every POST must get the whole 503 page, with no exception,
//! reset or broken pipe, and the connection must be reused unless the answer
//! said `Connection: close`.
//!
//! Needs `python3` with `requests` and `curl` on PATH (Debian packages
//! python3, python3-requests and curl; scripts/test installs them).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{release, RunningProxy, TestBackend};
use runway_proxy::{Maintenance, ReadOnly};
use serde_json::Value;
use tokio::process::Command;

const MB: usize = 1_000_000;
/// Bodies every library sends in one session: a few bytes to a few MB.
const SIZES: [usize; 6] = [2, 100, 64 * 1024, 500_000, MB, 3 * MB];
const ROUNDS: usize = 3;

async fn in_maintenance() -> (RunningProxy, TestBackend) {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    proxy.proxy.set_maintenance(Some(Maintenance {
        message: "Upgrading".into(),
        retry_after: Duration::from_secs(5),
        allow: Vec::new(),
    }));
    (proxy, a)
}

/// Debian's interpreter (the one python3-requests installs for) when there,
/// else whatever `python3` is on PATH.
fn interpreter() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/post_bodies.py")
}

/// Runs the Python client `library` and returns its summary.
async fn python(library: &str, url: &str, rounds: usize, sizes: &[usize]) -> Value {
    let mut command = Command::new(interpreter());
    command
        .arg(script())
        .arg(library)
        .arg(url)
        .arg(rounds.to_string())
        .args(sizes.iter().map(ToString::to_string))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the Python client finished within 120 s")
        .expect(
            "python3 (Debian packages python3 and python3-requests, installed by scripts/test)",
        );
    assert!(
        output.status.success(),
        "{library}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{library}: {error}: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Every request got an intact 503 page and no exception; returns the summary.
fn assert_all_refused(library: &str, summary: &Value, requests: usize) {
    eprintln!("{library}: {summary}");
    assert_eq!(summary["errors"], Value::Array(Vec::new()), "{library}");
    assert_eq!(summary["requests"], requests, "{library}");
    assert_eq!(summary["status"]["503"], requests, "{library}: {summary}");
    assert_eq!(summary["bad_pages"], 0, "{library}: {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_http_client_gets_the_page_on_one_connection() {
    let (proxy, _a) = in_maintenance().await;
    let url = proxy.url("/api/orders");
    let summary = python("http.client", &url, ROUNDS, &SIZES).await;
    assert_all_refused("http.client", &summary, SIZES.len() * ROUNDS);
    assert_eq!(summary["closes"], 0, "{summary}");
    assert_eq!(summary["connections"], 1, "{summary}");

    // Over the drain limit: told to close, then a fresh connection, no error.
    let summary = python("http.client", &url, 2, &[12 * MB, 10]).await;
    assert_all_refused("http.client, 12 MB", &summary, 4);
    assert_eq!(summary["closes"], 2, "{summary}");
    assert_eq!(summary["connections"], 3, "{summary}");
    assert_eq!(
        proxy.proxy.refused().maintenance,
        (SIZES.len() * ROUNDS + 4) as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_requests_gets_the_page_on_one_connection() {
    let (proxy, _a) = in_maintenance().await;
    let url = proxy.url("/api/orders");
    let summary = python("requests", &url, ROUNDS, &SIZES).await;
    assert_all_refused("requests", &summary, SIZES.len() * ROUNDS);
    assert_eq!(summary["closes"], 0, "{summary}");
    assert_eq!(summary["connections"], 1, "{summary}");

    // Read-only refuses the same way.
    proxy.proxy.set_maintenance(None);
    proxy.proxy.set_read_only(Some(ReadOnly {
        message: "no writes".into(),
        retry_after: Duration::from_secs(5),
    }));
    let summary = python("requests", &url, ROUNDS, &SIZES).await;
    assert_all_refused("requests, read-only", &summary, SIZES.len() * ROUNDS);
    assert_eq!(summary["connections"], 1, "{summary}");
    assert_eq!(
        proxy.proxy.refused().read_only,
        (SIZES.len() * ROUNDS) as u64
    );
}

/// One curl invocation POSTing `size` bytes to `count` URLs (curl reuses its
/// connection between them); per transfer, the status and the number of
/// connections curl opened for it.
async fn curl(url: &str, size: usize, count: usize, extra: &[&str]) -> Vec<(u16, u32)> {
    let file = std::env::temp_dir().join(format!(
        "runway-proxy-curl-{}-{size}.json",
        std::process::id()
    ));
    let mut body = vec![b' '; size.max(2)];
    body[0] = b'{';
    body[size.max(2) - 1] = b'}';
    std::fs::write(&file, &body).unwrap();
    let mut command = Command::new("curl");
    command
        .args(["-sS", "--http1.1", "--max-time", "30"])
        .args(["-H", "Content-Type: application/json"])
        .args(["-H", "Accept: application/json"])
        .args(extra)
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .args(["-w", "%{http_code} %{num_connects}\\n"]);
    for i in 0..count {
        command
            .args(["-o", "/dev/null"])
            .arg(format!("{url}?n={i}"));
    }
    command.stdin(Stdio::null()).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("curl finished within 120 s")
        .expect("curl (Debian package curl, installed by scripts/test)");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "curl {size} B: {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let (code, connects) = line.split_once(' ').expect("code and connects");
            (code.parse().unwrap(), connects.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_the_page_and_reuses_its_connection() {
    let (proxy, _a) = in_maintenance().await;
    let url = proxy.url("/api/orders");
    const COUNT: usize = 4;
    let reused = [(503, 1), (503, 0), (503, 0), (503, 0)];
    for size in [2, 100, 64 * 1024, 500_000, MB] {
        let seen = curl(&url, size, COUNT, &[]).await;
        eprintln!("curl {size} B: {seen:?}");
        assert_eq!(seen, reused, "{size} B");
    }
    // Above 1 MiB curl asks `Expect: 100-continue`; the proxy answers at
    // once without taking the body and closes, curl reconnects, no error.
    let seen = curl(&url, 3 * MB, COUNT, &[]).await;
    eprintln!("curl 3 MB with Expect: {seen:?}");
    assert_eq!(seen, [(503, 1); COUNT]);
    // Without Expect the body is drained and the connection kept.
    let seen = curl(&url, 3 * MB, COUNT, &["-H", "Expect:"]).await;
    eprintln!("curl 3 MB without Expect: {seen:?}");
    assert_eq!(seen, reused);
    assert_eq!(proxy.proxy.refused().maintenance, 7 * COUNT as u64);
}
