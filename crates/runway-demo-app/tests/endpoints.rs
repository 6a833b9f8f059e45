//! The endpoints and simulated behaviours, against an in-process server.

mod common;

use std::time::{Duration, Instant};

use common::{client, get, get_with, send, TestServer, TEST_TIMEOUT};
use hyper::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn root_says_hello_with_the_version() {
    let server = TestServer::start(&["--version", "v2"]).await;
    let reply = get(&server.url("/")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "hello from v2\n");
    assert_eq!(reply.headers["x-version"], "v2");
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));

    // Any method on `/` gets the same answer.
    let reply = send(&client(), Method::POST, &server.url("/")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "hello from v2\n")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn error_rate_is_roughly_the_share_of_500s() {
    let server = TestServer::start(&["--version", "v3", "--error-rate", "0.3"]).await;
    let client = client();
    let mut errors = 0;
    for _ in 0..1000 {
        let reply = get_with(&client, &server.url("/")).await;
        match reply.status {
            StatusCode::OK => assert_eq!(reply.body, "hello from v3\n"),
            StatusCode::INTERNAL_SERVER_ERROR => errors += 1,
            other => panic!("unexpected status {other}"),
        }
        assert_eq!(reply.headers["x-version"], "v3");
    }
    // Expected 300, standard deviation about 14.5: ±100 is far outside chance.
    assert!((200..=400).contains(&errors), "{errors} errors in 1000");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn error_rate_extremes() {
    let never = TestServer::start(&["--error-rate", "0"]).await;
    let always = TestServer::start(&["--error-rate", "1"]).await;
    let client = client();
    for _ in 0..50 {
        assert_eq!(
            get_with(&client, &never.url("/")).await.status,
            StatusCode::OK
        );
        assert_eq!(
            get_with(&client, &always.url("/")).await.status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    never.shutdown().await.unwrap();
    always.shutdown().await.unwrap();
}

#[tokio::test]
async fn latency_delays_root() {
    let server = TestServer::start(&["--latency-ms", "150", "--latency-jitter-ms", "50"]).await;
    let client = client();
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(
            get_with(&client, &server.url("/")).await.status,
            StatusCode::OK
        );
        assert!(started.elapsed() >= Duration::from_millis(150));
    }
    // Other endpoints are not delayed.
    let started = Instant::now();
    get_with(&client, &server.url("/health/live")).await;
    assert!(started.elapsed() < Duration::from_millis(150));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn ready_after_slow_start() {
    let started = Instant::now();
    let server = TestServer::start(&["--version", "v2", "--slow-start-ms", "400"]).await;

    let reply = get(&server.url("/health/ready")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["status"], "starting");
    // Liveness and traffic are served from the start.
    assert_eq!(
        get(&server.url("/health/live")).await.status,
        StatusCode::OK
    );
    assert_eq!(get(&server.url("/")).await.status, StatusCode::OK);

    let client = client();
    let reply = loop {
        let reply = get_with(&client, &server.url("/health/ready")).await;
        if reply.status == StatusCode::OK || started.elapsed() > TEST_TIMEOUT {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(reply.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "healthy", "version": "v2", "checks": {"database": "healthy"}})
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn fail_health_is_never_ready() {
    let server = TestServer::start(&["--fail-health"]).await;
    for _ in 0..3 {
        let reply = get(&server.url("/health/ready")).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.json()["status"], "unhealthy");
        assert_eq!(reply.json()["checks"]["database"], "unhealthy");
    }
    let live = get(&server.url("/health/live")).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.json(), serde_json::json!({"status": "alive"}));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn version_reports_version_pid_and_port() {
    let server = TestServer::start(&["--version", "v7"]).await;
    let reply = get(&server.url("/version")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        serde_json::json!({"version": "v7", "pid": std::process::id(), "port": server.addr.port()})
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn slow_waits_the_requested_time() {
    let server = TestServer::start(&[]).await;
    let started = Instant::now();
    let reply = get(&server.url("/slow?ms=200")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "slept 200 ms\n")
    );
    assert!(started.elapsed() >= Duration::from_millis(200));

    let reply = get(&server.url("/slow?ms=soon")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let server = TestServer::start(&["--version", "v1"]).await;
    let reply = get(&server.url("/nope")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.headers["x-version"], "v1");

    let reply = send(&client(), Method::POST, &server.url("/version")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    server.shutdown().await.unwrap();
}

/// Reads from `stream` until the end of the response head; returns it.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert_eq!(n, 1, "connection closed inside the response head");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn websocket_upgrade_then_echo() {
    let server = TestServer::start(&["--version", "v2"]).await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        // The key and accept value are the example of RFC 6455 §1.3.
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive, Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            server.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let head = read_head(&mut stream).await.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101 "), "{head}");
        assert!(head.contains("upgrade: websocket\r\n"), "{head}");
        assert!(head.contains("x-version: v2\r\n"), "{head}");
        assert!(
            head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
            "{head}"
        );

        for message in [&b"hello"[..], &[0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0]] {
            stream.write_all(message).await.unwrap();
            let mut echoed = vec![0u8; message.len()];
            stream.read_exact(&mut echoed).await.unwrap();
            assert_eq!(echoed, message);
        }
    })
    .await
    .expect("echo in time");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn websocket_without_upgrade_is_refused() {
    let server = TestServer::start(&[]).await;
    let reply = get(&server.url("/ws")).await;
    assert_eq!(reply.status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(reply.headers["upgrade"], "websocket");
    server.shutdown().await.unwrap();
}
