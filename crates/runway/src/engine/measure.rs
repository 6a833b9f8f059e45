//! Measuring an analysis interval: the proxy's per-release window, and Prometheus queries.
//!
//! Both releases are measured over the same window, so a relative condition compares like with
//! like. A source that fails is reported as an error for that metric (the judge counts it as
//! inconclusive), never as a value.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use runway_analysis::{Counts, IntervalInput, MetricInput, MetricWindow};
use runway_proxy::WindowSnapshot;

use super::router::AnalysisWindow;
use runway_spec::ProxyMetric;

/// Where a metric's numbers come from.
#[derive(Debug, Clone)]
pub enum Measurement {
    Proxy(ProxyMetric),
    /// A PromQL query with `{service}`, `{version}` and `{stable_version}` to fill in.
    Prometheus(String),
}

const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(5);

/// One interval's input for the judge. `elapsed` is the window's length; `at` the judge's clock.
#[allow(clippy::too_many_arguments)]
pub async fn interval(
    proxy_window: &dyn AnalysisWindow,
    sources: &[(String, Measurement)],
    prometheus: Option<&str>,
    service: &str,
    canary: &str,
    stable: &str,
    elapsed: Duration,
    at: Duration,
) -> IntervalInput {
    let windows = proxy_window.take();
    let empty = WindowSnapshot::default();
    let window = |release: &str| {
        windows
            .iter()
            .find(|w| w.release == release)
            .unwrap_or(&empty)
    };
    let (c, s) = (window(canary), window(stable));
    let mut metrics = Vec::new();
    for (name, source) in sources {
        let input = match source {
            Measurement::Proxy(ProxyMetric::Latency) => MetricInput::ok(
                name.clone(),
                MetricWindow::samples(c.latencies.clone(), s.latencies.clone()),
            ),
            // Counts and samples rather than bare numbers: the judge accumulates them over
            // the step and judges them with their uncertainty.
            Measurement::Proxy(ProxyMetric::ErrorRate) => MetricInput::ok(
                name.clone(),
                MetricWindow::rate(
                    Counts::new(c.errors, c.requests),
                    Counts::new(s.errors, s.requests),
                ),
            ),
            Measurement::Proxy(
                metric @ (ProxyMetric::LatencyP50
                | ProxyMetric::LatencyP95
                | ProxyMetric::LatencyP99),
            ) => {
                let q = match metric {
                    ProxyMetric::LatencyP50 => 0.5,
                    ProxyMetric::LatencyP95 => 0.95,
                    _ => 0.99,
                };
                MetricInput::ok(
                    name.clone(),
                    MetricWindow::quantile(q, c.latencies.clone(), s.latencies.clone()),
                )
            }
            Measurement::Proxy(metric) => MetricInput::ok(
                name.clone(),
                MetricWindow::values(
                    proxy_value(c, *metric, elapsed),
                    proxy_value(s, *metric, elapsed),
                ),
            ),
            Measurement::Prometheus(query) => match prometheus {
                None => MetricInput::error(name.clone(), "no [analysis] prometheus address"),
                Some(base) => {
                    let fill = |version: &str| {
                        query
                            .replace("{service}", service)
                            .replace("{version}", version)
                            .replace("{stable_version}", stable)
                    };
                    let (canary_query, stable_query) = (fill(canary), fill(stable));
                    let (cv, sv) = tokio::join!(
                        query_prometheus(base, &canary_query),
                        query_prometheus(base, &stable_query)
                    );
                    match (cv, sv) {
                        (Ok(cv), Ok(sv)) => {
                            MetricInput::ok(name.clone(), MetricWindow::values(cv, sv))
                        }
                        (Err(e), _) | (_, Err(e)) => MetricInput::error(name.clone(), e),
                    }
                }
            },
        };
        metrics.push(input);
    }
    IntervalInput {
        at,
        canary_requests: c.requests,
        metrics,
    }
}

/// A proxy metric over one release's window; None when the window saw no request.
fn proxy_value(w: &WindowSnapshot, metric: ProxyMetric, elapsed: Duration) -> Option<f64> {
    let quantile = |q| runway_analysis::stats::quantile(&w.latencies, q);
    match metric {
        ProxyMetric::RequestRate => Some(w.requests as f64 / elapsed.as_secs_f64().max(1e-3)),
        _ if w.requests == 0 => None,
        ProxyMetric::ErrorRate => Some(w.errors as f64 / w.requests as f64),
        ProxyMetric::LatencyP50 => quantile(0.5),
        ProxyMetric::LatencyP95 => quantile(0.95),
        ProxyMetric::LatencyP99 => quantile(0.99),
        ProxyMetric::Latency => None,
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
        .map_err(|e| {
            format!(
                "Prometheus at {base}: {}",
                crate::platform::health::error_chain(&e)
            )
        })?;
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
