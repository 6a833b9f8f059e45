//! Measuring an analysis interval from the two metric sources of `[analysis]`: the router's
//! per-release window (`source = "proxy"`) and instant queries (`source = "prometheus"`), each
//! behind a trait ([`AnalysisWindow`], [`QuerySource`]) so that the measuring is tested against
//! fakes and another source (a cluster's metrics) is another implementation.
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

use super::router::{AnalysisWindow, BoxFuture};
use runway_spec::ProxyMetric;

/// Where a metric's numbers come from.
#[derive(Debug, Clone)]
pub enum Measurement {
    Proxy(ProxyMetric),
    /// A PromQL query with `{service}`, `{version}` and `{stable_version}` to fill in.
    Prometheus(String),
}

const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the values of `source = "prometheus"` metrics come from: an instant query's value,
/// `None` when it has no data.
pub trait QuerySource: Send + Sync {
    fn query<'a>(&'a self, query: &'a str) -> BoxFuture<'a, Result<Option<f64>, String>>;
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

/// One interval's input for the judge. `elapsed` is the window's length; `at` the judge's clock.
#[allow(clippy::too_many_arguments)]
pub async fn interval(
    proxy_window: &dyn AnalysisWindow,
    sources: &[(String, Measurement)],
    queries: Option<&dyn QuerySource>,
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
            Measurement::Prometheus(query) => match queries {
                None => MetricInput::error(name.clone(), "no [analysis] prometheus address"),
                Some(queries) => {
                    let fill = |version: &str| {
                        query
                            .replace("{service}", service)
                            .replace("{version}", version)
                            .replace("{stable_version}", stable)
                    };
                    let (canary_query, stable_query) = (fill(canary), fill(stable));
                    let (cv, sv) =
                        tokio::join!(queries.query(&canary_query), queries.query(&stable_query));
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

#[cfg(test)]
mod tests {
    //! `interval` against in-memory sources: no proxy, no Prometheus, no clock.

    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use runway_proxy::WindowSnapshot;
    use runway_spec::ProxyMetric;

    use super::{interval, BoxFuture, Measurement, QuerySource};
    use crate::engine::router::AnalysisWindow;

    /// A window that returns what it was given, as a router's would.
    struct FixedWindow(Vec<WindowSnapshot>);

    impl AnalysisWindow for FixedWindow {
        fn take(&self) -> Vec<WindowSnapshot> {
            self.0.clone()
        }
    }

    /// Answers queries from a table and keeps the queries it was asked.
    struct FakeQueries {
        answers: BTreeMap<String, Result<Option<f64>, String>>,
        asked: Mutex<Vec<String>>,
    }

    impl QuerySource for FakeQueries {
        fn query<'a>(&'a self, query: &'a str) -> BoxFuture<'a, Result<Option<f64>, String>> {
            self.asked.lock().unwrap().push(query.to_string());
            let answer = self
                .answers
                .get(query)
                .cloned()
                .unwrap_or_else(|| Err(format!("unexpected query {query}")));
            Box::pin(async move { answer })
        }
    }

    fn window(release: &str, requests: u64, errors: u64, latencies: &[f64]) -> WindowSnapshot {
        WindowSnapshot {
            release: release.into(),
            requests,
            errors,
            latencies: latencies.to_vec(),
        }
    }

    #[tokio::test]
    async fn proxy_metrics_come_from_each_releases_window() {
        let proxy = FixedWindow(vec![
            window("v2", 200, 16, &[0.01, 0.02, 0.03]),
            window("v1", 1800, 18, &[0.01, 0.01]),
        ]);
        let sources = vec![
            (
                "errors".to_string(),
                Measurement::Proxy(ProxyMetric::ErrorRate),
            ),
            (
                "rate".to_string(),
                Measurement::Proxy(ProxyMetric::RequestRate),
            ),
        ];
        let input = interval(
            &proxy,
            &sources,
            None,
            "web",
            "v2",
            "v1",
            Duration::from_secs(10),
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(input.canary_requests, 200);
        assert_eq!(input.at, Duration::from_secs(30));
        let errors = input.metrics[0].window.as_ref().unwrap();
        // A rate keeps its counts: the judge accumulates them over the step.
        assert_eq!(
            (errors.canary_counts, errors.stable_counts),
            (
                Some(runway_analysis::Counts::new(16, 200)),
                Some(runway_analysis::Counts::new(18, 1800))
            )
        );
        let rate = input.metrics[1].window.as_ref().unwrap();
        assert_eq!((rate.canary, rate.stable), (Some(20.0), Some(180.0)));
    }

    #[tokio::test]
    async fn queries_are_filled_in_per_release_and_their_failures_are_errors_not_values() {
        let queries = FakeQueries {
            answers: BTreeMap::from([
                (
                    "errors{service=\"web\",version=\"v2\"}".to_string(),
                    Ok(Some(0.5)),
                ),
                (
                    "errors{service=\"web\",version=\"v1\"}".to_string(),
                    Ok(Some(0.1)),
                ),
                (
                    "down{version=\"v2\"}".to_string(),
                    Err("connection refused".to_string()),
                ),
                ("down{version=\"v1\"}".to_string(), Ok(None)),
            ]),
            asked: Mutex::new(Vec::new()),
        };
        let sources = vec![
            (
                "q".to_string(),
                Measurement::Prometheus(
                    "errors{service=\"{service}\",version=\"{version}\"}".into(),
                ),
            ),
            (
                "broken".to_string(),
                Measurement::Prometheus("down{version=\"{version}\"}".into()),
            ),
        ];
        let empty = FixedWindow(Vec::new());
        let input = interval(
            &empty,
            &sources,
            Some(&queries),
            "web",
            "v2",
            "v1",
            Duration::from_secs(10),
            Duration::ZERO,
        )
        .await;
        let q = input.metrics[0].window.as_ref().unwrap();
        assert_eq!((q.canary, q.stable), (Some(0.5), Some(0.1)));
        assert_eq!(
            input.metrics[1].window,
            Err("connection refused".to_string())
        );
        assert_eq!(queries.asked.lock().unwrap().len(), 4);

        // Without a Prometheus address, a query metric is an error for the judge, never 0.
        let input = interval(
            &empty,
            &sources[..1],
            None,
            "web",
            "v2",
            "v1",
            Duration::from_secs(10),
            Duration::ZERO,
        )
        .await;
        assert!(input.metrics[0].window.is_err());
    }
}
