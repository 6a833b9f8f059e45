//! Test servers: real PostgreSQL and Redis processes in temp dirs on free loopback
//! ports, and small in-process HTTP, TLS and TCP servers whose misbehaviour the tests
//! choose (slow, hanging, malformed, flaky, Prometheus-like).
//!
//! A missing server binary fails the test with the install command: a check that was
//! never exercised must not look like one that passed.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use runway_checks::{CheckKind, CheckSpec, Context};
use tokio::net::TcpListener;

/// A check with a short timeout, so failing tests fail fast.
pub fn spec(name: &str, kind: CheckKind) -> CheckSpec {
    CheckSpec {
        timeout: Duration::from_secs(3),
        ..CheckSpec::new(name, kind)
    }
}

pub fn ctx() -> Context {
    Context {
        workdir: std::env::temp_dir(),
        ..Context::default()
    }
}

pub fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// HTTP

/// An HTTP/1.1 server on a free loopback port, answering from `handler`.
pub async fn http_server<F>(handler: F) -> SocketAddr
where
    F: Fn(Request<hyper::body::Incoming>) -> (u16, String) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move {
                        let delay = req
                            .uri()
                            .query()
                            .and_then(|q| q.strip_prefix("delay_ms="))
                            .and_then(|v| v.parse().ok());
                        if let Some(ms) = delay {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                        }
                        let (status, body) = handler(req);
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The application under test: a health endpoint and friends.
pub async fn app_server() -> SocketAddr {
    let flaky = Arc::new(AtomicU32::new(0));
    http_server(move |req| {
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        match req.uri().path() {
            "/health" => (
                200,
                r#"{"status":"healthy","checks":{"database":"healthy","cache":"degraded"},
                    "count":3,"ratio":0.5,"items":[{"id":1},{"id":2}]}"#
                    .into(),
            ),
            "/down" => (503, r#"{"status":"unhealthy"}"#.into()),
            "/malformed" => (200, r#"{"status": "healthy""#.into()),
            "/flaky" => {
                if flaky.fetch_add(1, Ordering::SeqCst) < 2 {
                    (500, r#"{"status":"starting"}"#.into())
                } else {
                    (200, r#"{"status":"healthy"}"#.into())
                }
            }
            "/auth" if auth == "Bearer tok-abc123" => (200, "{}".into()),
            "/auth" => (401, format!(r#"{{"error":"bad token","got":"{auth}"}}"#)),
            "/echo-method" => (200, format!(r#"{{"method":"{}"}}"#, req.method())),
            _ => (404, r#"{"error":"not found"}"#.into()),
        }
    })
    .await
}

/// Imitates Prometheus's `/api/v1/query` for a few fixed queries.
pub async fn prometheus_server() -> SocketAddr {
    http_server(|req| {
        let query = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("query="))
            .unwrap_or("")
            .to_string();
        let vector = |samples: &[(&str, &str)]| {
            let result: Vec<String> = samples
                .iter()
                .map(|(labels, v)| {
                    format!(r#"{{"metric":{{{labels}}},"value":[1700000000.123,"{v}"]}}"#)
                })
                .collect();
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
                result.join(",")
            )
        };
        match query.as_str() {
            "up" => (
                200,
                vector(&[(r#""job":"api""#, "1"), (r#""job":"db""#, "1")]),
            ),
            "mixed_up" => (
                200,
                vector(&[(r#""job":"api""#, "1"), (r#""job":"db""#, "0")]),
            ),
            "error_rate" => (200, vector(&[("", "0.05")])),
            "absent" => (200, vector(&[])),
            "scalar%281%29" => (
                200,
                r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}"#
                    .into(),
            ),
            _ => (
                400,
                r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#
                    .into(),
            ),
        }
    })
    .await
}

/// Accepts connections and never answers (held open until the test ends).
pub async fn hanging_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------
// TLS

pub struct TestCert {
    pub pem: String,
    pub der: rustls_pki_types::CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

/// A self-signed certificate for `localhost` valid from yesterday for `days` days.
pub fn cert_valid_for(days: i64) -> TestCert {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days) + time::Duration::hours(1);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "runway test");
    let cert = params.self_signed(&key).unwrap();
    TestCert {
        pem: cert.pem(),
        der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

/// A TLS server presenting `cert`; it completes handshakes and closes.
pub async fn tls_server(cert: &TestCert) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der.clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(s).await;
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------
// Real servers

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use runway_testkit::{free_port, Postgres, Redis};
