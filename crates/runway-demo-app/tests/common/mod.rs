//! Shared helpers for the integration tests: an in-process server on a free
//! loopback port and a small HTTP client.

#![allow(dead_code)] // Each test crate uses a different subset.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use runway_demo_app::Args;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Upper bound for anything a test waits on, so a bug fails instead of hangs.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(disable_version_flag = true)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

/// Parses demo-app flags as the CLI would.
pub fn args(flags: &[&str]) -> Args {
    Cli::try_parse_from(std::iter::once("demo-app").chain(flags.iter().copied()))
        .expect("valid flags")
        .args
}

/// A demo app served in-process by [`runway_demo_app::run_on`].
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Starts the app with `flags` on a free port of 127.0.0.1.
    pub async fn start(flags: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(runway_demo_app::run_on(listener, args(flags), async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Triggers the graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and waits (bounded) for `run_on` to return.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.begin_shutdown();
        tokio::time::timeout(TEST_TIMEOUT, self.task)
            .await
            .expect("server stops in time")
            .expect("server task does not panic")
    }
}

/// A keep-alive HTTP/1.1 client.
pub fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A response as the tests look at it.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// Sends a body-less `method` request to `url` with `client`, bounded by
/// [`TEST_TIMEOUT`].
pub async fn send(
    client: &Client<HttpConnector, Empty<Bytes>>,
    method: Method,
    url: &str,
) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .body(Empty::new())
        .unwrap();
    tokio::time::timeout(TEST_TIMEOUT, async {
        let resp = client.request(req).await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
        }
    })
    .await
    .expect("response in time")
}

/// GETs `url` with `client`.
pub async fn get_with(client: &Client<HttpConnector, Empty<Bytes>>, url: &str) -> Reply {
    send(client, Method::GET, url).await
}

/// GETs `url` on a fresh client.
pub async fn get(url: &str) -> Reply {
    get_with(&client(), url).await
}
