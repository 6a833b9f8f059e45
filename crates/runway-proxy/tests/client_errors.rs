//! Only the release's own failures count against it: a client that sends a
//! malformed body or aborts its upload gets `400` (or nothing, being gone),
//! is counted in the client-error counters, and leaves every release's
//! metrics and analysis window as they were; a slow upload is not the
//! release's latency.

mod common;

use std::time::Duration;

use common::raw::{request, Framing, RawConn};
use common::{client, eventually, get, release, settled, RunningProxy, TestBackend};
use http::StatusCode;
use runway_proxy::{ClientErrorCounts, MetricsWindow, ReleaseMetrics, WindowSnapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const MIB: usize = 1024 * 1024;

async fn started() -> (RunningProxy, TestBackend, MetricsWindow) {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    // An analysis window, as a canary's analysis opens one.
    let window = proxy.proxy.open_window();
    (proxy, a, window)
}

fn v1(proxy: &RunningProxy) -> ReleaseMetrics {
    proxy
        .proxy
        .metrics()
        .into_iter()
        .find(|m| m.release == "v1")
        .expect("v1 metrics")
}

fn window(window: &MetricsWindow) -> WindowSnapshot {
    window
        .take()
        .into_iter()
        .find(|w| w.release == "v1")
        .expect("v1 window")
}

/// A chunked body whose second chunk size is not hex.
fn bad_chunks(path: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn an_invalid_chunk_size_is_a_400_and_not_the_releases_error() {
    let (proxy, _a, analysis) = started().await;
    let client = client();
    // The mix: one bad POST in every ten requests.
    for _ in 0..10 {
        for _ in 0..9 {
            assert_eq!(get(&client, &proxy.url("/")).await.status, StatusCode::OK);
        }
        let mut conn = RawConn::connect(proxy.addr).await;
        match conn.exchange_bytes(bad_chunks("/echo")).await {
            Ok(answer) => {
                assert_eq!(answer.status, 400, "{}", answer.text());
                assert!(answer.closes(), "{:?}", answer.headers);
                assert_eq!(answer.text(), "bad request body");
                conn.expect_fin().await.unwrap();
            }
            // The proxy may not have read the rest before closing; it
            // still must not count it against the release (below).
            Err(error) => panic!("no 400 for a malformed body: {error}"),
        }
    }
    settled(&proxy.proxy).await;
    let m = v1(&proxy);
    assert_eq!(
        (
            m.requests,
            m.status_2xx,
            m.status_5xx,
            m.failed,
            m.error_rate
        ),
        (90, 90, 0, 0, 0.0)
    );
    let w = window(&analysis);
    assert_eq!((w.requests, w.errors), (90, 0));
    assert_eq!(
        proxy.proxy.client_errors(),
        ClientErrorCounts {
            bad_request_body: 10,
            client_aborted: 0
        }
    );
    let text = runway_proxy::render_prometheus(std::slice::from_ref(&proxy.proxy));
    assert!(
        text.contains("runway_client_errors_total{service=\"svc\",reason=\"bad_request_body\"} 10"),
        "{text}"
    );
}

#[tokio::test]
async fn an_aborted_streamed_upload_is_not_the_releases_error() {
    let (proxy, _a, analysis) = started().await;
    let req = request("POST", "/echo", &[], 4 * MIB, Framing::Length);

    // Stops sending (half-close) after a quarter: answered 400.
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.write(&req.head).await.unwrap();
    conn.write(&req.body[..MIB]).await.unwrap();
    conn.shutdown_write().await;
    let answer = conn.read_answer().await.unwrap();
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.closes());
    conn.expect_fin().await.unwrap();

    // Goes away entirely mid-upload: nothing to answer, still counted.
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.write(&req.head).await.unwrap();
    conn.write(&req.body[..MIB]).await.unwrap();
    drop(conn);
    eventually("the abort counted", || {
        proxy.proxy.client_errors().client_aborted == 2
    })
    .await;

    // Chunked, cut short: also the client's.
    let req = request("POST", "/echo", &[], 2 * MIB, Framing::Chunked);
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.write(&req.head).await.unwrap();
    conn.write(&req.body[..MIB]).await.unwrap();
    conn.shutdown_write().await;
    let answer = conn.read_answer().await.unwrap();
    assert_eq!(answer.status, 400, "{}", answer.text());

    settled(&proxy.proxy).await;
    let m = v1(&proxy);
    assert_eq!((m.requests, m.failed, m.status_5xx), (0, 0, 0));
    let w = window(&analysis);
    assert_eq!((w.requests, w.errors), (0, 0));
    assert_eq!(
        proxy.proxy.client_errors(),
        ClientErrorCounts {
            bad_request_body: 0,
            client_aborted: 3
        }
    );
    // The release still serves.
    assert_eq!(get(&client(), &proxy.url("/")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_aborted_buffered_upload_is_a_400_before_any_release() {
    let (proxy, _a, _analysis) = started().await;
    let req = request("POST", "/echo", &[], 1000, Framing::Length);
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.write(&req.head).await.unwrap();
    conn.write(&req.body[..10]).await.unwrap();
    conn.shutdown_write().await;
    let answer = conn.read_answer().await.unwrap();
    assert_eq!(answer.status, 400);
    assert!(answer.closes());
    conn.expect_fin().await.unwrap();
    assert_eq!(proxy.proxy.client_errors().client_aborted, 1);
    let m = v1(&proxy);
    assert_eq!((m.requests, m.in_flight), (0, 0));
}

/// A backend that answers a request's head at once with the start of a body,
/// then keeps reading until its client goes away.
async fn early_answering_backend() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_client_gone_after_the_response_head_counts_by_status() {
    let backend = early_answering_backend().await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![runway_proxy::ReleaseRoute {
        release: "v1".into(),
        weight: 1,
        backends: vec![runway_proxy::Backend {
            id: "early".into(),
            addr: backend,
        }],
    }]);
    let analysis = proxy.proxy.open_window();
    let req = request("POST", "/upload", &[], 4 * MIB, Framing::Length);
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.write(&req.head).await.unwrap();
    conn.write(&req.body[..MIB]).await.unwrap();
    // Wait for the backend's head to come through, then vanish mid-upload.
    let head = tokio::time::timeout(Duration::from_secs(20), conn.read_bytes(12))
        .await
        .expect("the backend's head within 20 s")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    drop(conn);
    settled(&proxy.proxy).await;
    eventually("the request counted", || v1(&proxy).requests == 1).await;
    let m = v1(&proxy);
    assert_eq!((m.status_2xx, m.failed, m.status_5xx), (1, 0, 0));
    let w = window(&analysis);
    assert_eq!((w.requests, w.errors), (1, 0));
}

#[tokio::test]
async fn a_slow_upload_is_not_the_releases_latency() {
    const PAUSE: Duration = Duration::from_millis(400);
    let (proxy, _a, analysis) = started().await;

    // Buffered (known length): the clock starts once the body is in.
    let req = request("POST", "/echo", &[], 20, Framing::Length);
    let mut conn = RawConn::connect(proxy.addr).await;
    conn.write(&req.head).await.unwrap();
    conn.write(&req.body[..10]).await.unwrap();
    tokio::time::sleep(PAUSE).await;
    conn.write(&req.body[10..]).await.unwrap();
    let answer = conn.read_answer().await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, req.body);

    // Streamed (chunked): the clock starts when its last byte passed.
    let req = request("POST", "/echo", &[], 20, Framing::Chunked);
    conn.write(&req.head).await.unwrap();
    let (first, last) = req.body.split_at(req.body.len() - 5); // "0\r\n\r\n"
    conn.write(first).await.unwrap();
    tokio::time::sleep(PAUSE).await;
    conn.write(last).await.unwrap();
    let answer = conn.read_answer().await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body.len(), 20);

    settled(&proxy.proxy).await;
    let w = window(&analysis);
    assert_eq!(w.requests, 2);
    assert_eq!(w.latencies.len(), 2);
    for latency in &w.latencies {
        assert!(
            *latency < PAUSE.as_secs_f64() / 2.0,
            "the upload's pause counted: {latency} s"
        );
    }
    assert!(v1(&proxy).latency_p99 < PAUSE.as_secs_f64() / 2.0);
}
