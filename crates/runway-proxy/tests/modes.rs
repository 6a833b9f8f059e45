//! Traffic modes: maintenance and read-only answers, allowed paths, switching
//! on open connections, refused counters.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{
    bounded, client, get, release, send, settled, Answer, RunningProxy, TestBackend, TestClient,
};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use runway_proxy::{render_prometheus, Maintenance, ReadOnly, RefusedCounts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MESSAGE: &str = "Upgrading <script>alert(1)</script> & back soon";
const ESCAPED: &str = "Upgrading &lt;script&gt;alert(1)&lt;/script&gt; &amp; back soon";

fn maintenance(allow: &[&str]) -> Maintenance {
    Maintenance {
        message: MESSAGE.to_owned(),
        retry_after: Duration::from_millis(1500),
        allow: allow.iter().map(|&entry| entry.to_owned()).collect(),
    }
}

fn read_only() -> ReadOnly {
    ReadOnly {
        message: "Database migration in progress".to_owned(),
        retry_after: Duration::from_secs(30),
    }
}

async fn started() -> (RunningProxy, TestBackend) {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    (proxy, a)
}

fn request(method: Method, url: &str, accept: Option<&str>) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(url);
    if let Some(accept) = accept {
        builder = builder.header("accept", accept);
    }
    builder.body(Full::default()).unwrap()
}

async fn get_json(client: &TestClient, url: &str) -> Answer {
    send(client, request(Method::GET, url, Some("application/json"))).await
}

/// Checks the headers every refusal carries; returns the parsed JSON body.
fn refused_json(answer: &Answer, error: &str, retry_after: u64) -> serde_json::Value {
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(
        answer.headers["retry-after"],
        retry_after.to_string().as_str()
    );
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert!(answer.headers.get("x-backend").is_none());
    let json: serde_json::Value = serde_json::from_str(&answer.body).expect("a JSON body");
    assert_eq!(json["error"], error);
    assert_eq!(json["retry_after"], retry_after);
    json
}

fn assert_proxied(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.headers["x-backend"], "a");
    assert!(answer.headers.get("retry-after").is_none());
}

#[tokio::test]
async fn maintenance_answers_503_with_retry_after_and_an_escaped_html_page() {
    let (proxy, _a) = started().await;
    proxy.proxy.set_maintenance(Some(maintenance(&[])));
    assert_eq!(proxy.proxy.maintenance(), Some(maintenance(&[])));
    let client = client();

    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    for accept in [
        None,
        Some(browser),
        Some("*/*"),
        Some("text/html, application/json"),
    ] {
        let answer = send(&client, request(Method::GET, &proxy.url("/"), accept)).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{accept:?}");
        assert_eq!(answer.headers["retry-after"], "2", "1.5 s rounds up");
        assert_eq!(answer.headers["cache-control"], "no-store");
        assert_eq!(answer.headers["content-type"], "text/html; charset=utf-8");
        let id = answer.headers["x-request-id"].to_str().unwrap();
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(
            answer.body.starts_with("<!DOCTYPE html>"),
            "{}",
            answer.body
        );
        assert!(answer.body.contains(ESCAPED), "{}", answer.body);
        assert!(!answer.body.contains("<script>"), "{}", answer.body);
    }

    // The client's request id is echoed; the query does not matter.
    let req = Request::post(proxy.url("/orders?id=1"))
        .header("x-request-id", "req-42")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let answer = send(&client, req).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers["x-request-id"], "req-42");

    // HEAD: the same answer without a body.
    let answer = send(&client, request(Method::HEAD, &proxy.url("/"), None)).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers["retry-after"], "2");
    assert_eq!(answer.body, "");
}

#[tokio::test]
async fn maintenance_answers_json_to_json_clients() {
    let (proxy, _a) = started().await;
    proxy.proxy.set_maintenance(Some(maintenance(&[])));
    let client = client();

    for accept in [
        "application/json",
        "application/problem+json",
        "application/json, text/plain, */*",
        "text/html;q=0.5, application/json",
    ] {
        let answer = send(
            &client,
            request(Method::GET, &proxy.url("/x"), Some(accept)),
        )
        .await;
        let json = refused_json(&answer, "maintenance", 2);
        assert_eq!(json["message"], MESSAGE, "sent as is, not HTML-escaped");
        assert_eq!(json.as_object().unwrap().len(), 3, "{json}");
    }
    let req = Request::put(proxy.url("/items/1"))
        .header("accept", "application/json")
        .header("x-request-id", "req-7")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let answer = send(&client, req).await;
    refused_json(&answer, "maintenance", 2);
    assert_eq!(answer.headers["x-request-id"], "req-7");
}

#[tokio::test]
async fn allowed_paths_still_reach_the_replicas() {
    let (proxy, a) = started().await;
    proxy
        .proxy
        .set_maintenance(Some(maintenance(&["/headers", "/health/*"])));
    let client = client();

    for path in ["/headers", "/headers?verbose=1", "/health/", "/health/live"] {
        assert_proxied(&get_json(&client, &proxy.url(path)).await);
    }
    // Writes to an allowed path pass too (maintenance looks at paths only).
    let answer = send(
        &client,
        request(Method::POST, &proxy.url("/health/x"), None),
    )
    .await;
    assert_proxied(&answer);

    for path in [
        "/",
        "/headers/more",
        "/health",
        "/healthy",
        "/health/../admin",
        "/health/%2E%2e/admin",
    ] {
        let answer = get_json(&client, &proxy.url(path)).await;
        refused_json(&answer, "maintenance", 2);
    }

    // Without a routable replica, an allowed path gets the usual 503.
    proxy.proxy.set_routes(vec![release("v1", 1, &[])]);
    let answer = get(&client, &proxy.url("/health/live")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body, "no healthy replica");
    assert!(answer.headers.get("retry-after").is_none());
    drop(a);
}

/// Sends `method path` on one connection (panics if it was closed) and reads
/// the whole answer.
async fn exchange(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    method: Method,
    path: &str,
    body: &'static [u8],
) -> (StatusCode, String) {
    bounded(sender.ready())
        .await
        .expect("connection still open");
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "test")
        .header("accept", "application/json")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    let response = bounded(sender.send_request(req))
        .await
        .expect("answer on the same connection");
    let status = response.status();
    let body = bounded(response.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn switching_modes_applies_to_the_next_request_on_an_open_connection() {
    let (proxy, _a) = started().await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let ok = (StatusCode::OK, "a".to_owned());
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;

    assert_eq!(exchange(&mut sender, Method::GET, "/", b"").await, ok);

    proxy.proxy.set_maintenance(Some(maintenance(&[])));
    let (status, body) = exchange(&mut sender, Method::GET, "/", b"").await;
    assert_eq!(status, unavailable);
    assert!(body.contains("\"maintenance\""), "{body}");
    // A refused request with a small body leaves the connection usable.
    let (status, _) = exchange(&mut sender, Method::POST, "/echo", b"small").await;
    assert_eq!(status, unavailable);

    proxy.proxy.set_maintenance(None);
    assert_eq!(proxy.proxy.maintenance(), None);
    assert_eq!(exchange(&mut sender, Method::GET, "/", b"").await, ok);

    proxy.proxy.set_read_only(Some(read_only()));
    assert_eq!(exchange(&mut sender, Method::GET, "/", b"").await, ok);
    let (status, body) = exchange(&mut sender, Method::POST, "/echo", b"data").await;
    assert_eq!(status, unavailable);
    assert!(body.contains("\"read_only\""), "{body}");

    proxy.proxy.set_read_only(None);
    let answer = exchange(&mut sender, Method::POST, "/echo", b"data").await;
    assert_eq!(answer, (StatusCode::OK, "data".to_owned()));

    assert_eq!(
        proxy.proxy.refused(),
        RefusedCounts {
            maintenance: 2,
            read_only: 1
        }
    );
    drop(sender);
    bounded(connection).await.unwrap().unwrap();
}

#[tokio::test]
async fn read_only_refuses_writes_and_passes_reads() {
    let (proxy, _a) = started().await;
    proxy.proxy.set_read_only(Some(read_only()));
    assert_eq!(proxy.proxy.read_only(), Some(read_only()));
    let client = client();

    for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
        let answer = send(&client, request(method.clone(), &proxy.url("/"), None)).await;
        assert_proxied(&answer);
        let expected = if method == Method::HEAD { "" } else { "a" };
        assert_eq!(answer.body, expected, "{method}");
    }
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let req = Request::builder()
            .method(method.clone())
            .uri(proxy.url("/echo"))
            .header("accept", "application/json")
            .body(Full::new(Bytes::from_static(b"change")))
            .unwrap();
        let answer = send(&client, req).await;
        let json = refused_json(&answer, "read_only", 30);
        assert_eq!(
            json["message"], "Database migration in progress",
            "{method}"
        );
    }
    // Browsers get the page.
    let answer = send(&client, request(Method::POST, &proxy.url("/form"), None)).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(answer.headers["retry-after"], "30");
    assert!(answer.body.contains("Database migration in progress"));
}

#[tokio::test]
async fn with_both_modes_maintenance_wins() {
    let (proxy, _a) = started().await;
    proxy.proxy.set_read_only(Some(read_only()));
    proxy
        .proxy
        .set_maintenance(Some(maintenance(&["/health/*"])));
    let client = client();

    for method in [Method::GET, Method::POST] {
        let answer = send(
            &client,
            request(method, &proxy.url("/"), Some("application/json")),
        );
        refused_json(&answer.await, "maintenance", 2);
    }
    // An allowed path passes maintenance; read-only still refuses writes.
    assert_proxied(&get_json(&client, &proxy.url("/health/live")).await);
    let answer = send(
        &client,
        request(
            Method::POST,
            &proxy.url("/health/live"),
            Some("application/json"),
        ),
    )
    .await;
    refused_json(&answer, "read_only", 30);

    // Ending maintenance leaves read-only on.
    proxy.proxy.set_maintenance(None);
    assert_proxied(&get_json(&client, &proxy.url("/")).await);
    let answer = send(
        &client,
        request(Method::POST, &proxy.url("/"), Some("application/json")),
    );
    refused_json(&answer.await, "read_only", 30);
    assert_eq!(
        proxy.proxy.refused(),
        RefusedCounts {
            maintenance: 2,
            read_only: 2
        }
    );
}

#[tokio::test]
async fn websocket_upgrades_get_the_maintenance_answer() {
    let (proxy, _a) = started().await;
    proxy.proxy.set_maintenance(Some(maintenance(&[])));

    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\
              Accept: application/json\r\n\r\n",
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
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("retry-after: 2\r\n"), "{head}");
    assert!(!head.contains("upgrade"), "{head}");
    assert_eq!(proxy.proxy.in_flight("a"), 0);
    assert_eq!(proxy.proxy.refused().maintenance, 1);
}

#[tokio::test]
async fn refused_requests_are_counted_by_reason_and_in_no_release() {
    let (proxy, _a) = started().await;
    let client = client();

    for _ in 0..3 {
        assert_proxied(&get(&client, &proxy.url("/")).await);
    }
    proxy
        .proxy
        .set_maintenance(Some(maintenance(&["/health/*"])));
    for _ in 0..5 {
        let answer = get(&client, &proxy.url("/")).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    for _ in 0..2 {
        assert_proxied(&get(&client, &proxy.url("/health/live")).await);
    }
    proxy.proxy.set_maintenance(None);
    proxy.proxy.set_read_only(Some(read_only()));
    for _ in 0..4 {
        let answer = send(&client, request(Method::DELETE, &proxy.url("/x"), None)).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_proxied(&get(&client, &proxy.url("/")).await);
    proxy.proxy.set_read_only(None);

    settled(&proxy.proxy).await;
    let refused = proxy.proxy.refused();
    assert_eq!(
        refused,
        RefusedCounts {
            maintenance: 5,
            read_only: 4
        }
    );
    // Only the 3 + 2 + 1 proxied requests are in the release's metrics.
    let metrics = proxy.proxy.metrics();
    assert_eq!(metrics.len(), 1);
    let v1 = &metrics[0];
    assert_eq!((v1.requests, v1.status_2xx, v1.status_5xx), (6, 6, 0));
    assert_eq!((v1.failed, v1.error_rate), (0, 0.0));

    let text = render_prometheus(std::slice::from_ref(&proxy.proxy));
    let refused_lines: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("runway_requests_refused_total"))
        .collect();
    assert_eq!(
        refused_lines,
        [
            r#"runway_requests_refused_total{service="svc",reason="maintenance"} 5"#,
            r#"runway_requests_refused_total{service="svc",reason="read_only"} 4"#,
        ]
    );
    assert!(text.contains("# TYPE runway_requests_refused_total counter\n"));
    assert!(text.contains(r#"runway_requests_total{service="svc",release="v1",class="5xx"} 0"#));
    assert!(text.contains(r#"runway_request_duration_seconds_count{service="svc",release="v1"} 6"#));
}

#[tokio::test]
async fn without_a_mode_requests_are_proxied_unchanged() {
    let (proxy, _a) = started().await;
    assert_eq!(proxy.proxy.maintenance(), None);
    assert_eq!(proxy.proxy.read_only(), None);
    let client = client();

    for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
        let req = Request::builder()
            .method(method.clone())
            .uri(proxy.url("/echo"))
            .header("accept", "application/json")
            .body(Full::new(Bytes::from_static(b"body")))
            .unwrap();
        let answer = send(&client, req).await;
        assert_proxied(&answer);
        assert_eq!(answer.body, "body", "{method}");
        assert!(answer.headers.get("cache-control").is_none());
    }
    let answer = get(&client, &proxy.url("/status/503")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers["x-backend"], "a", "the replica's own 503");

    settled(&proxy.proxy).await;
    assert_eq!(proxy.proxy.refused(), RefusedCounts::default());
    let v1 = &proxy.proxy.metrics()[0];
    assert_eq!((v1.requests, v1.status_2xx, v1.status_5xx), (5, 4, 1));
    let text = render_prometheus(std::slice::from_ref(&proxy.proxy));
    assert!(text.contains(r#"runway_requests_refused_total{service="svc",reason="maintenance"} 0"#));
}

/// A connection on which `req`'s head (with `Expect: 100-continue`) was sent and admitted:
/// hyper sends `100 Continue` once the proxy reads the body, so the request is past the
/// modes' check. Its body is the caller's to send.
async fn admitted(
    proxy: std::net::SocketAddr,
    req: &common::raw::RawRequest,
) -> common::raw::RawConn {
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut conn = common::raw::RawConn::connect(proxy).await;
    conn.write(&req.head).await.unwrap();
    let interim = bounded(conn.read_bytes(CONTINUE.len())).await.unwrap();
    assert_eq!(interim, CONTINUE);
    conn
}

/// A recreate turns the page on and then retires the old release. A request admitted just
/// before the page, whose body was still arriving when the old release left, finds no
/// replica: it gets the page (as every request after it), not "no healthy replica" in plain
/// text that a JSON client cannot read. (Seen with a Python `requests` client POSTing 64 KiB
/// during `runway deploy` of a recreate.)
#[tokio::test]
async fn a_request_admitted_before_the_page_whose_replicas_then_left_gets_the_page() {
    let (proxy, _a) = started().await;
    let req = common::raw::request(
        "POST",
        "/echo",
        &[("Accept", "application/json"), ("Expect", "100-continue")],
        64 * 1024,
        common::raw::Framing::Length,
    );
    let mut conn = admitted(proxy.addr, &req).await;

    // The page goes up, then the old release is retired.
    proxy.proxy.set_maintenance(Some(maintenance(&[])));
    proxy.proxy.set_routes(Vec::new());

    conn.write(&req.body).await.unwrap();
    let answer = bounded(conn.read_answer()).await.unwrap();
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("retry-after"), Some("2"));
    let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("a JSON body");
    assert_eq!(json["error"], "maintenance");
    assert_eq!(
        proxy.proxy.refused(),
        RefusedCounts {
            maintenance: 1,
            read_only: 0
        }
    );

    // The same when the retired release is still routed but refuses connections: the page,
    // not `502 upstream unavailable`, and no failure charged to that release.
    proxy.proxy.set_maintenance(None);
    proxy.proxy.set_routes(vec![release("v1", 1, &[&_a])]);
    let retired = TestBackend::start("retired").await;
    let mut conn = admitted(proxy.addr, &req).await;
    proxy.proxy.set_maintenance(Some(maintenance(&[])));
    proxy.proxy.set_routes(vec![release("v1", 1, &[&retired])]);
    retired.kill();
    conn.write(&req.body).await.unwrap();
    let answer = bounded(conn.read_answer()).await.unwrap();
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(proxy.proxy.refused().maintenance, 2);
    assert!(
        proxy.proxy.metrics().iter().all(|m| m.failed == 0),
        "{:?}",
        proxy.proxy.metrics()
    );

    // Without a mode, a request that finds no replica is still told so.
    proxy.proxy.set_maintenance(None);
    proxy.proxy.set_routes(Vec::new());
    let answer = bounded(conn.exchange(&common::raw::request(
        "GET",
        "/",
        &[("Accept", "application/json")],
        0,
        common::raw::Framing::Length,
    )))
    .await
    .unwrap();
    assert_eq!(answer.status, 503);
    assert_eq!(answer.text(), "no healthy replica");
}
