//! Test helpers: a tiny scriptable backend, a running proxy, an HTTP client.
//!
//! The backend answers with its own name (body and `x-backend` header) and
//! interprets the path:
//!
//! * `/status/NNN` answers with status NNN;
//! * `/gate` waits for a permit on [`TestBackend::gate`] (a slow request the
//!   test controls without sleeping);
//! * `/headers` answers with the request headers, one `name: value` per line;
//! * `/echo` answers with the request body;
//! * `/close` drops the connection without answering;
//! * `/ws` upgrades (101, `Upgrade: echo`) and echoes raw bytes.
//!
//! A backend started with [`TestBackend::start_closing`] drops every
//! connection after reading a request head, like a replica dying mid-request.
#![allow(dead_code)] // each test binary uses a different subset

pub mod raw;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use runway_proxy::{Backend, Proxy, ProxyConfig, ReleaseRoute};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub struct TestBackend {
    pub name: String,
    pub addr: SocketAddr,
    /// Permits released to `/gate` requests.
    pub gate: Arc<Semaphore>,
    abort: AbortHandle,
}

struct State {
    name: String,
    gate: Arc<Semaphore>,
    close_all: bool,
}

impl TestBackend {
    pub async fn start(name: &str) -> TestBackend {
        Self::spawn(name, false).await
    }

    pub async fn start_closing(name: &str) -> TestBackend {
        Self::spawn(name, true).await
    }

    async fn spawn(name: &str, close_all: bool) -> TestBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let gate = Arc::new(Semaphore::new(0));
        let state = Arc::new(State {
            name: name.to_owned(),
            gate: Arc::clone(&gate),
            close_all,
        });
        let task = tokio::spawn(async move {
            // Connections live in this task's JoinSet, so aborting the task
            // kills the listener and every open connection at once.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let state = Arc::clone(&state);
                        connections.spawn(async move {
                            let service = service_fn(move |req| handle(Arc::clone(&state), req));
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .with_upgrades()
                                .await;
                        });
                    }
                    Some(_) = connections.join_next() => {}
                }
            }
        });
        TestBackend {
            name: name.to_owned(),
            addr,
            gate,
            abort: task.abort_handle(),
        }
    }

    /// Kills the backend: closes its listener and all its connections.
    pub fn kill(&self) {
        self.abort.abort();
    }

    pub fn backend(&self) -> Backend {
        Backend {
            id: self.name.clone(),
            addr: self.addr,
        }
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

async fn handle(
    state: Arc<State>,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let closed = || Err(std::io::Error::other("closing without a response"));
    if state.close_all {
        return closed();
    }
    let path = req.uri().path().to_owned();
    let mut status = StatusCode::OK;
    let mut body = Bytes::from(state.name.clone());
    match path.as_str() {
        "/gate" => state.gate.acquire().await.unwrap().forget(),
        "/headers" => {
            let mut text = String::new();
            for (name, value) in req.headers() {
                text.push_str(&format!("{}: {}\n", name, value.to_str().unwrap_or("?")));
            }
            body = Bytes::from(text);
        }
        "/echo" => body = req.into_body().collect().await.unwrap().to_bytes(),
        "/close" => return closed(),
        "/ws" => {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let mut io = TokioIo::new(upgrade.await.unwrap());
                let mut buf = [0u8; 1024];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => io.write_all(&buf[..n]).await.unwrap(),
                    }
                }
            });
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            response
                .headers_mut()
                .insert("upgrade", "echo".parse().unwrap());
            response
                .headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
            return Ok(response);
        }
        _ => {
            if let Some(code) = path.strip_prefix("/status/") {
                status = StatusCode::from_u16(code.parse().unwrap()).unwrap();
            } else if let Some(size) = path.strip_prefix("/bytes/") {
                body = Bytes::from(vec![b'x'; size.parse().unwrap()]);
            }
        }
    }
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("x-backend", state.name.parse().unwrap());
    Ok(response)
}

/// A proxy serving on a loopback port until [`RunningProxy::shutdown`].
pub struct RunningProxy {
    pub proxy: Proxy,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl RunningProxy {
    pub async fn start(service: &str) -> RunningProxy {
        Self::start_with(service, ProxyConfig::default()).await
    }

    pub async fn start_with(service: &str, config: ProxyConfig) -> RunningProxy {
        let proxy = Proxy::new(service, config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let serving = proxy.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await
        });
        RunningProxy {
            proxy,
            addr,
            shutdown: Some(tx),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Starts the graceful shutdown; await `task` for it to finish.
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn release(name: &str, weight: u32, backends: &[&TestBackend]) -> ReleaseRoute {
    ReleaseRoute {
        release: name.to_owned(),
        weight,
        backends: backends.iter().map(|b| b.backend()).collect(),
    }
}

/// A keep-alive HTTP/1.1 client.
pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

pub async fn send(client: &TestClient, req: Request<Full<Bytes>>) -> Answer {
    let response = client.request(req).await.expect("request through proxy");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn get(client: &TestClient, url: &str) -> Answer {
    send(client, Request::get(url).body(Full::default()).unwrap()).await
}

/// Polls `condition` until it holds; panics after 10 s. For waiting on
/// effects of concurrent work, never for asserting timing.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Awaits `future`, failing the test instead of hanging after 20 s.
pub async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .expect("operation did not finish within 20 s")
}

/// An address on which nothing listens.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Waits until no request is in flight in any release of `proxy`, so that
/// every completed request has been counted.
pub async fn settled(proxy: &Proxy) {
    eventually("all requests counted", || {
        proxy.metrics().iter().all(|m| m.in_flight == 0)
    })
    .await;
}
