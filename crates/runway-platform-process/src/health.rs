//! HTTP health probes against a replica's loopback port.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

#[derive(Debug)]
pub struct Prober {
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl Prober {
    pub fn new(timeout: Duration) -> Prober {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        // No pooling: each probe must prove the replica still accepts connections.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Prober { client, timeout }
    }

    /// Ok when the replica answers 2xx within the timeout; otherwise one line saying why not,
    /// naming the URL (a wrong `[health] path` is the usual cause, and the URL shows it).
    pub async fn probe(&self, port: u16, path: &str) -> Result<(), String> {
        let url = format!("http://127.0.0.1:{port}{path}");
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("bad health URL {url}: {e}"))?;
        match tokio::time::timeout(self.timeout, self.client.get(uri)).await {
            Err(_) => Err(format!(
                "health check GET {url} timed out after {}",
                runway_spec::Dur(self.timeout)
            )),
            Ok(Err(e)) => Err(format!(
                "health check GET {url} failed: {}",
                error_chain(&e)
            )),
            Ok(Ok(resp)) if resp.status().is_success() => Ok(()),
            Ok(Ok(resp)) => Err(format!("health check GET {url} answered {}", resp.status())),
        }
    }
}

/// hyper's errors say little at the top level ("client error (Connect)"); the cause says more.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
