//! Prometheus as a metric source: the instant queries of `source = "prometheus"` metrics in
//! `[analysis]`, against the server of `[analysis] prometheus`. Where per-release metrics come
//! from when runway's own proxy is not in the request path (a Kubernetes cluster), and for
//! what only the application knows (its own counters).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use runway_engine::measure::{QuerySource, QuerySources};
use runway_engine::router::BoxFuture;

const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes a [`Prometheus`] for each `[analysis] prometheus` URL.
pub struct PrometheusSources;

impl QuerySources for PrometheusSources {
    fn prometheus(&self, base_url: &str) -> Arc<dyn QuerySource> {
        Arc::new(Prometheus::new(base_url))
    }
}

/// The Prometheus server of `[analysis] prometheus`.
pub struct Prometheus {
    base: String,
}

impl Prometheus {
    pub fn new(base: &str) -> Prometheus {
        Prometheus {
            base: base.to_string(),
        }
    }
}

impl QuerySource for Prometheus {
    fn query<'a>(&'a self, query: &'a str) -> BoxFuture<'a, Result<Option<f64>, String>> {
        Box::pin(query_prometheus(&self.base, query))
    }
}

/// An instant query; the value of a one-element vector or a scalar. An empty result is "no
/// data" (None); anything else unexpected is an error.
pub async fn query_prometheus(base: &str, query: &str) -> Result<Option<f64>, String> {
    let url = format!(
        "{}/api/v1/query?query={}",
        base.trim_end_matches('/'),
        form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
    );
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("bad Prometheus URL {url}: {e}"))?;
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = tokio::time::timeout(PROMETHEUS_TIMEOUT, client.get(uri))
        .await
        .map_err(|_| {
            format!(
                "Prometheus at {base} did not answer within {}s",
                PROMETHEUS_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("Prometheus at {base}: {}", error_chain(&e)))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading Prometheus's answer: {e}"))?
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("Prometheus answered {status} with no JSON: {e}"))?;
    if json["status"] != "success" {
        return Err(format!(
            "Prometheus query failed ({status}): {}",
            json["error"].as_str().unwrap_or("no error message")
        ));
    }
    let data = &json["data"];
    let value = match data["resultType"].as_str() {
        Some("scalar") => &data["result"][1],
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([]) => return Ok(None),
            Some([one]) => &one["value"][1],
            Some(many) => {
                return Err(format!(
                    "the query returned {} series; aggregate it to one (e.g. sum(...))",
                    many.len()
                ))
            }
            None => return Err("malformed vector result".into()),
        },
        other => {
            return Err(format!(
                "unsupported result type {other:?}; use an instant vector or a scalar"
            ))
        }
    };
    let v: f64 = value
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("unreadable sample value {value}"))?;
    Ok(v.is_finite().then_some(v))
}

/// hyper's errors say little at the top level ("client error (Connect)"); the cause says more.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
