//! Graceful shutdown: stop accepting, finish in-flight requests, bounded.

mod common;

use std::time::{Duration, Instant};

use common::{client, get_with, TestServer, TEST_TIMEOUT};
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    let mut server = TestServer::start(&[]).await;
    let url = server.url("/slow?ms=500");
    let in_flight = tokio::spawn(async move { get_with(&client(), &url).await });
    // Let the request reach the server before shutting down.
    tokio::time::sleep(Duration::from_millis(150)).await;

    let started = Instant::now();
    server.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The listener is closed while the request is still running.
    assert!(TcpStream::connect(server.addr).await.is_err());

    let reply = in_flight.await.unwrap();
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "slept 500 ms\n")
    );
    server.shutdown().await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "returned after {took:?}"
    );
    assert!(took < TEST_TIMEOUT);
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let server = TestServer::start(&[]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    // The connection is idle but open: the drain must not wait for it.
    let started = Instant::now();
    server.shutdown().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let closed = tokio::time::timeout(TEST_TIMEOUT, stream.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
}

#[tokio::test]
async fn drain_is_bounded_by_the_shutdown_timeout() {
    let mut server = TestServer::start(&["--shutdown-timeout-ms", "200"]).await;
    let url = server.url("/slow?ms=30000");
    let in_flight = tokio::spawn(async move { get_with(&client(), &url).await });
    tokio::time::sleep(Duration::from_millis(150)).await;

    let started = Instant::now();
    server.begin_shutdown();
    server.shutdown().await.unwrap();
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(200)..Duration::from_secs(3)).contains(&took),
        "returned after {took:?}"
    );
    in_flight.abort();
}
