//! The proxy's own answers and keep-alive clients: every refusal (maintenance,
//! read-only, no healthy replica) to a request with a body, from a few bytes
//! to several MiB, with a length or chunked, reaches the client intact and
//! either leaves the connection usable for the next request or says
//! `Connection: close` and ends it with FIN, never with a reset.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::raw::{request, Framing, RawAnswer, RawConn};
use common::{bounded, client, release, RunningProxy, TestBackend};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use runway_proxy::{Maintenance, ReadOnly};
use tokio::net::TcpStream;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// Body sizes a keep-alive client may send with a refused request.
const SIZES: [usize; 4] = [10, 64 * KIB, MIB, 4 * MIB];
/// Requests in a row per size and framing on one connection.
const IN_A_ROW: usize = 3;

#[derive(Debug, Clone, Copy)]
enum Refusal {
    Maintenance,
    ReadOnly,
    NoHealthyReplica,
}

impl Refusal {
    /// What the answer's body must contain (JSON is asked for).
    fn marker(self) -> &'static str {
        match self {
            Refusal::Maintenance => "\"error\":\"maintenance\"",
            Refusal::ReadOnly => "\"error\":\"read_only\"",
            Refusal::NoHealthyReplica => "no healthy replica",
        }
    }
}

/// A proxy that refuses every POST the way `refusal` says.
async fn refusing(refusal: Refusal) -> (RunningProxy, Option<TestBackend>) {
    let proxy = RunningProxy::start("svc").await;
    if let Refusal::NoHealthyReplica = refusal {
        return (proxy, None);
    }
    let a = TestBackend::start("a").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    match refusal {
        Refusal::Maintenance => proxy.proxy.set_maintenance(Some(Maintenance {
            message: "back soon".into(),
            retry_after: Duration::from_secs(5),
            allow: Vec::new(),
        })),
        Refusal::ReadOnly => proxy.proxy.set_read_only(Some(ReadOnly {
            message: "no writes".into(),
            retry_after: Duration::from_secs(5),
        })),
        Refusal::NoHealthyReplica => {}
    }
    (proxy, Some(a))
}

fn assert_refused(refusal: Refusal, answer: &RawAnswer, what: &str) {
    assert_eq!(answer.status, 503, "{what}: {}", answer.text());
    assert!(
        answer.text().contains(refusal.marker()),
        "{what}: {}",
        answer.text()
    );
    let length: usize = answer.header("content-length").unwrap().parse().unwrap();
    assert_eq!(answer.body.len(), length, "{what}: the page arrived intact");
}

/// Every size and framing, several in a row, on one connection; returns how
/// many answers said `Connection: close`.
async fn refused_in_a_row(refusal: Refusal) -> usize {
    let (proxy, _backend) = refusing(refusal).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    let mut closes = 0;
    let mut answered = 0;
    for size in SIZES {
        for framing in [Framing::Length, Framing::Chunked] {
            let req = request(
                "POST",
                "/submit",
                &[("Accept", "application/json")],
                size,
                framing,
            );
            for round in 0..IN_A_ROW {
                let what = format!("{refusal:?} {size} B {framing:?} #{round}");
                let answer = conn
                    .exchange(&req)
                    .await
                    .unwrap_or_else(|error| panic!("{what}: {error}"));
                assert_refused(refusal, &answer, &what);
                answered += 1;
                if answer.closes() {
                    closes += 1;
                    conn.expect_fin()
                        .await
                        .unwrap_or_else(|error| panic!("{what}: not a clean FIN: {error}"));
                    conn = RawConn::connect(proxy.addr).await;
                }
            }
        }
    }
    assert_eq!(answered, SIZES.len() * 2 * IN_A_ROW);
    closes
}

#[tokio::test]
async fn maintenance_answers_every_body_size_on_one_keep_alive_connection() {
    let closes = refused_in_a_row(Refusal::Maintenance).await;
    assert_eq!(
        closes, 0,
        "bodies up to 4 MiB are drained, the connection stays"
    );
}

#[tokio::test]
async fn read_only_answers_every_body_size_on_one_keep_alive_connection() {
    let closes = refused_in_a_row(Refusal::ReadOnly).await;
    assert_eq!(
        closes, 0,
        "bodies up to 4 MiB are drained, the connection stays"
    );
}

#[tokio::test]
async fn no_healthy_replica_answers_every_body_size_on_one_keep_alive_connection() {
    let closes = refused_in_a_row(Refusal::NoHealthyReplica).await;
    assert_eq!(
        closes, 0,
        "bodies up to 4 MiB are drained, the connection stays"
    );
}

/// Over the drain limit the answer says `Connection: close`; the client can
/// still write its whole body and read the whole answer, then gets FIN.
#[tokio::test]
async fn bodies_over_the_drain_limit_get_the_answer_then_a_clean_close() {
    for refusal in [Refusal::Maintenance, Refusal::NoHealthyReplica] {
        let (proxy, _backend) = refusing(refusal).await;
        for framing in [Framing::Length, Framing::Chunked] {
            let what = format!("{refusal:?} 12 MiB {framing:?}");
            let req = request(
                "POST",
                "/",
                &[("Accept", "application/json")],
                12 * MIB,
                framing,
            );
            let mut conn = RawConn::connect(proxy.addr).await;
            let answer = conn
                .exchange(&req)
                .await
                .unwrap_or_else(|error| panic!("{what}: {error}"));
            assert_refused(refusal, &answer, &what);
            assert!(answer.closes(), "{what}: {:?}", answer.headers);
            conn.expect_fin()
                .await
                .unwrap_or_else(|error| panic!("{what}: {error}"));
        }
    }
}

/// A client that waits for `100 Continue` is not asked for its body: it gets
/// the answer at once, with `Connection: close`, and a clean close.
#[tokio::test]
async fn expect_continue_gets_the_answer_without_sending_the_body() {
    let (proxy, _backend) = refusing(Refusal::Maintenance).await;
    let mut conn = RawConn::connect(proxy.addr).await;
    let req = request(
        "POST",
        "/",
        &[("Accept", "application/json"), ("Expect", "100-continue")],
        2 * MIB,
        Framing::Length,
    );
    // The head only: the body would follow a 100 Continue.
    let answer = conn.exchange_bytes(req.head.clone()).await.unwrap();
    assert_refused(Refusal::Maintenance, &answer, "expect");
    assert!(answer.closes(), "{:?}", answer.headers);
    conn.expect_fin().await.unwrap();

    // A client that sends the body anyway (without waiting) is fine too.
    let mut conn = RawConn::connect(proxy.addr).await;
    let answer = conn.exchange(&req).await.unwrap();
    assert_refused(Refusal::Maintenance, &answer, "expect, body sent anyway");
    if answer.closes() {
        conn.expect_fin().await.unwrap();
    }
}

/// hyper's own answer to a malformed head, with a body behind it, arrives
/// and the connection ends with FIN, not a reset.
#[tokio::test]
async fn a_malformed_head_with_a_body_gets_its_400_and_a_clean_close() {
    let a = TestBackend::start("a").await;
    let proxy = RunningProxy::start("svc").await;
    proxy.proxy.set_routes(vec![release("v1", 1, &[&a])]);
    let mut bytes = b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 12x\r\n\r\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'z', 8 * MIB));
    let mut conn = RawConn::connect(proxy.addr).await;
    let answer = conn.exchange_bytes(bytes).await.unwrap();
    assert_eq!(answer.status, 400);
    conn.expect_fin().await.unwrap();
    assert!(proxy.proxy.metrics().iter().all(|m| m.requests == 0));
}

/// A Rust client on one explicit keep-alive connection: every refused POST is
/// answered and the connection stays open for the next one.
#[tokio::test]
async fn a_hyper_client_keeps_its_connection_through_refusals() {
    for refusal in [
        Refusal::Maintenance,
        Refusal::ReadOnly,
        Refusal::NoHealthyReplica,
    ] {
        let (proxy, _backend) = refusing(refusal).await;
        let stream = TcpStream::connect(proxy.addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let connection = tokio::spawn(connection);
        for size in SIZES {
            for _ in 0..IN_A_ROW {
                bounded(sender.ready())
                    .await
                    .unwrap_or_else(|error| panic!("{refusal:?} {size}: closed: {error}"));
                let req = Request::post("/")
                    .header("host", "test")
                    .header("accept", "application/json")
                    .body(Full::new(Bytes::from(vec![b'x'; size])))
                    .unwrap();
                let response = bounded(sender.send_request(req))
                    .await
                    .unwrap_or_else(|error| panic!("{refusal:?} {size}: {error}"));
                assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
                assert!(response.headers().get("connection").is_none());
                let body = bounded(response.into_body().collect())
                    .await
                    .unwrap()
                    .to_bytes();
                assert!(String::from_utf8_lossy(&body).contains(refusal.marker()));
            }
        }
        drop(sender);
        bounded(connection).await.unwrap().unwrap();
    }
}

/// hyper-util's pooled client (what most Rust HTTP clients build on): no
/// request fails, whatever the body size.
#[tokio::test]
async fn a_pooled_client_sees_only_the_page() {
    let (proxy, _backend) = refusing(Refusal::Maintenance).await;
    let client = client();
    for size in SIZES {
        for _ in 0..IN_A_ROW {
            let req = Request::builder()
                .method(Method::POST)
                .uri(proxy.url("/api"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(vec![b' '; size])))
                .unwrap();
            let response = bounded(client.request(req))
                .await
                .unwrap_or_else(|error| panic!("{size}: {error}"));
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            bounded(response.into_body().collect()).await.unwrap();
        }
    }
    assert_eq!(
        proxy.proxy.refused().maintenance,
        (SIZES.len() * IN_A_ROW) as u64
    );
}
