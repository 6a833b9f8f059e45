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
