//! HTTP-level behaviour: forwarding headers, request ids, hop-by-hop
//! stripping, upgrades, h2c clients, graceful shutdown.

mod common;

use bytes::Bytes;
use common::{bounded, client, eventually, get, release, send, RunningProxy, TestBackend};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Parses the `/headers` answer into (name, value) pairs.
fn seen_headers(body: &str) -> Vec<(String, String)> {
    body.lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

fn header<'a>(seen: &'a [(String, String)], name: &str) -> Option<&'a str> {
    seen.iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value.as_str())
}

#[tokio::test]
async fn forwarding_headers_and_request_id_reach_the_backend() {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    let client = client();

    let answer = get(&client, &proxy.url("/headers")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let seen = seen_headers(&answer.body);
    assert_eq!(header(&seen, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(header(&seen, "x-forwarded-proto"), Some("http"));
    assert_eq!(
        header(&seen, "x-forwarded-host"),
        Some(proxy.addr.to_string().as_str())
    );
    let id = header(&seen, "x-request-id").expect("x-request-id at the backend");
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(answer.headers["x-request-id"], id);

    // Existing values are kept (request id) or extended (forwarded-for);
    // hop-by-hop headers, including ones named in Connection, are dropped.
    let req = Request::get(proxy.url("/headers"))
        .header("host", "app.example")
        .header("x-request-id", "req-123")
        .header("x-forwarded-for", "10.1.2.3")
        .header("connection", "x-hop")
        .header("x-hop", "secret")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("x-kept", "yes")
        .body(Full::default())
        .unwrap();
    let answer = send(&client, req).await;
    let seen = seen_headers(&answer.body);
    assert_eq!(header(&seen, "x-request-id"), Some("req-123"));
    assert_eq!(answer.headers["x-request-id"], "req-123");
    assert_eq!(
        header(&seen, "x-forwarded-for"),
        Some("10.1.2.3, 127.0.0.1")
    );
    assert_eq!(header(&seen, "x-forwarded-host"), Some("app.example"));
    assert_eq!(header(&seen, "host"), Some("app.example"));
    assert_eq!(header(&seen, "x-kept"), Some("yes"));
    assert_eq!(header(&seen, "x-hop"), None);
    assert_eq!(header(&seen, "proxy-authorization"), None);
}

#[tokio::test]
async fn upgrade_tunnels_bytes_both_ways() {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);

    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            bounded(stream.read(&mut byte)).await.unwrap(),
            1,
            "head cut off"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");

    for message in [&b"ping-1"[..], b"a longer second message"] {
        stream.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        bounded(stream.read_exact(&mut echoed)).await.unwrap();
        assert_eq!(echoed, message);
    }
    // The open tunnel keeps its backend busy (a drain waits for it) ...
    assert_eq!(proxy.proxy.in_flight("a"), 1);
    drop(stream);
    // ... until it closes.
    eventually("tunnel closed", || proxy.proxy.in_flight("a") == 0).await;
    common::settled(&proxy.proxy).await;
    let metrics = &proxy.proxy.metrics()[0];
    assert_eq!((metrics.requests, metrics.failed), (1, 0));
}

#[tokio::test]
async fn http2_prior_knowledge_clients_are_served() {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    let h2 = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();

    let response = h2.get(proxy.url("/").parse().unwrap()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"a");

    let req = Request::post(proxy.url("/echo"))
        .body(Full::new(Bytes::from_static(b"over h2")))
        .unwrap();
    let response = h2.request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"over h2");

    // The :authority pseudo-header becomes Host / X-Forwarded-Host.
    let response = h2
        .get(proxy.url("/headers").parse().unwrap())
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let seen = seen_headers(std::str::from_utf8(&body).unwrap());
    let authority = proxy.addr.to_string();
    assert_eq!(header(&seen, "host"), Some(authority.as_str()));
    assert_eq!(header(&seen, "x-forwarded-host"), Some(authority.as_str()));
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let a = TestBackend::start("a").await;
    let mut proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    let client = client();
    let slow = tokio::spawn({
        let (client, url) = (client.clone(), proxy.url("/gate"));
        async move { get(&client, &url).await }
    });
    eventually("slow request in flight", || proxy.proxy.in_flight("a") == 1).await;

    proxy.shutdown();
    a.gate.add_permits(1);
    let answer = bounded(slow).await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "a"));
    bounded(&mut proxy.task).await.unwrap().unwrap();
    assert!(TcpStream::connect(proxy.addr).await.is_err());
}

/// When the proxy shuts down, a keep-alive connection ends after its next answer, which says
/// `Connection: close`; a silent one after a short grace; a busy one after its request
/// (`drain`). The proxy's task ends as soon as they have, not after its long grace.
#[tokio::test]
async fn shutdown_answers_each_keep_alive_connections_next_request_then_closes_it() {
    let a = TestBackend::start("a").await;
    let mut proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    let mut idle = Vec::new();
    for _ in 0..5 {
        let mut conn = TcpStream::connect(proxy.addr).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        idle.push(conn);
    }
    let mut silent = idle.pop().unwrap();
    let slow = tokio::spawn({
        let (client, url) = (client(), proxy.url("/gate"));
        async move { get(&client, &url).await }
    });
    eventually("slow request in flight", || proxy.proxy.in_flight("a") == 1).await;

    let started = std::time::Instant::now();
    proxy.shutdown();
    // A client that sends on its idle connection as the drain runs is answered, told
    // `Connection: close`, and the connection ends right after that answer (not at the
    // grace): no request is lost to a connection closed under it. A WebSocket upgrade is
    // refused (its tunnel would be cut as the server exits), and an HTTP/1.0 keep-alive
    // client is answered in 1.0, without a `keep-alive` contradicting the `close`.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let requests: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n",
    ];
    let mut answers = Vec::new();
    for (mut conn, request) in idle.into_iter().zip(requests) {
        conn.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        bounded(conn.read_to_end(&mut answer)).await.unwrap();
        answers.push(String::from_utf8_lossy(&answer).to_lowercase());
    }
    let ended_after = started.elapsed();
    assert!(
        ended_after < std::time::Duration::from_millis(1500),
        "the answered connections ended {ended_after:?} after the drain began: at the grace, \
         not after their answers"
    );
    for answer in &answers[..2] {
        assert!(answer.starts_with("http/1.1 200"), "{answer}");
        assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
        assert!(
            answer.ends_with("\r\n\r\na"),
            "one answer, then the end: {answer}"
        );
    }
    let upgrade = &answers[2];
    assert!(upgrade.starts_with("http/1.1 503"), "{upgrade}");
    assert!(upgrade.contains("\r\nretry-after: 1\r\n"), "{upgrade}");
    assert!(upgrade.contains("\r\nconnection: close\r\n"), "{upgrade}");
    let http10 = &answers[3];
    assert!(http10.starts_with("http/1.0 200"), "{http10}");
    assert!(http10.contains("\r\nconnection: close\r\n"), "{http10}");
    assert!(!http10.contains("keep-alive"), "{http10}");
    // A connection that stays silent is closed, without a word, after the grace.
    let mut buf = [0u8; 64];
    let n = bounded(silent.read(&mut buf)).await.unwrap_or(0);
    assert_eq!(n, 0, "a silent connection closed without a word");
    let closed_after = started.elapsed();
    assert!(
        closed_after >= std::time::Duration::from_millis(1500),
        "closed after {closed_after:?}, before its grace"
    );
    a.gate.add_permits(1);
    let answer = bounded(slow).await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "a"));
    bounded(&mut proxy.task).await.unwrap().unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the drain took {:?}",
        started.elapsed()
    );
}

/// A backend speaking raw HTTP/1.1 with canned answers, to check every way a
/// response body can be delimited. Counts the connections it accepted.
async fn raw_backend() -> (
    runway_proxy::Backend,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One request head (these requests have no body).
                    let end = loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end + 4;
                        }
                        let mut chunk = [0u8; 1024];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end);
                    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    let (answer, close): (&[u8], bool) = match path.as_str() {
                        "/chunked" => (
                            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n\
                              5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: t\r\n\r\n",
                            false,
                        ),
                        "/eof" => (
                            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
                            true,
                        ),
                        "/empty" => (b"HTTP/1.1 204 No Content\r\nX-Empty: 1\r\n\r\n", false),
                        "/head" => (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false),
                        "/interim" => (
                            b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
                              HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                            false,
                        ),
                        _ => (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false),
                    };
                    if stream.write_all(answer).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    let backend = runway_proxy::Backend {
        id: "raw".to_owned(),
        addr,
    };
    (backend, accepted)
}

#[tokio::test]
async fn every_response_framing_is_relayed_and_connections_are_reused() {
    use std::sync::atomic::Ordering;
    let (backend, accepted) = raw_backend().await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![runway_proxy::ReleaseRoute {
        release: "v1".to_owned(),
        weight: 1,
        backends: vec![backend],
    }]);
    let client = client();

    // Chunked (with an extension and trailers, and a stale Content-Length
    // that must not reach the client), three times over one upstream
    // connection.
    for _ in 0..3 {
        let answer = get(&client, &proxy.url("/chunked")).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "hello world")
        );
        assert!(!answer.headers.contains_key("content-length"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    // Interim responses are skipped; the final one arrives.
    let answer = get(&client, &proxy.url("/interim")).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "ok")
    );

    // No body for 204, nor for HEAD (the length is kept).
    let answer = get(&client, &proxy.url("/empty")).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
    assert_eq!(answer.headers["x-empty"], "1");
    let head = Request::head(proxy.url("/head"))
        .body(Full::default())
        .unwrap();
    let answer = send(&client, head).await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, ""));
    assert_eq!(answer.headers["content-length"], "5");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    // A body delimited by closing the connection; the next request needs a
    // new one.
    let answer = get(&client, &proxy.url("/eof")).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "until the end")
    );
    let answer = get(&client, &proxy.url("/chunked")).await;
    assert_eq!(answer.body, "hello world");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);

    common::settled(&proxy.proxy).await;
    let metrics = &proxy.proxy.metrics()[0];
    assert_eq!(
        (metrics.requests, metrics.status_2xx, metrics.failed),
        (8, 8, 0)
    );
}
