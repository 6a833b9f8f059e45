//! Measuring an analysis interval from the two metric sources of `[analysis]`: the router's
//! per-release window (`source = "proxy"`) and instant queries (`source = "prometheus"`), each
//! behind a trait ([`AnalysisWindow`], [`QuerySource`]) so that the measuring is tested against
//! fakes and another source (a cluster's metrics) is another implementation.
//!
//! Both releases are measured over the same window, so a relative condition compares like with
//! like. A source that fails is reported as an error for that metric (the judge counts it as
//! inconclusive), never as a value.

use std::time::Duration;

use runway_analysis::{Counts, IntervalInput, MetricInput, MetricWindow};
use runway_wire::metrics::WindowSnapshot;

use super::router::{AnalysisWindow, BoxFuture};
use runway_spec::ProxyMetric;

/// Where a metric's numbers come from.
#[derive(Debug, Clone)]
pub enum Measurement {
    Proxy(ProxyMetric),
    /// A PromQL query with `{service}`, `{version}` and `{stable_version}` to fill in.
    Prometheus(String),
}

/// Where the values of `source = "prometheus"` metrics come from: an instant query's value,
/// `None` when it has no data.
pub trait QuerySource: Send + Sync {
    fn query<'a>(&'a self, query: &'a str) -> BoxFuture<'a, Result<Option<f64>, String>>;
}

/// Makes the query source of an `[analysis] prometheus` URL (crates/runway-prometheus; a
/// table of answers in the engine's tests).
pub trait QuerySources: Send + Sync {
    fn prometheus(&self, base_url: &str) -> std::sync::Arc<dyn QuerySource>;
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
            Measurement::Proxy(metric) => proxy_input(name, *metric, c, s, elapsed),
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

/// One proxy metric of the judge's input: `c` against `s` (the new release against the stable
/// one; for a flag rollout, the service now against its baseline).
pub fn proxy_input(
    name: &str,
    metric: ProxyMetric,
    c: &WindowSnapshot,
    s: &WindowSnapshot,
    elapsed: Duration,
) -> MetricInput {
    let name = name.to_string();
    match metric {
        ProxyMetric::Latency => MetricInput::ok(
            name,
            MetricWindow::samples(c.latencies.clone(), s.latencies.clone()),
        ),
        // Counts and samples rather than bare numbers: the judge accumulates them over the
        // step and judges them with their uncertainty.
        ProxyMetric::ErrorRate => MetricInput::ok(
            name,
            MetricWindow::rate(
                Counts::new(c.errors, c.requests),
                Counts::new(s.errors, s.requests),
            ),
        ),
        ProxyMetric::LatencyP50 | ProxyMetric::LatencyP95 | ProxyMetric::LatencyP99 => {
            let q = match metric {
                ProxyMetric::LatencyP50 => 0.5,
                ProxyMetric::LatencyP95 => 0.95,
                _ => 0.99,
            };
            MetricInput::ok(
                name,
                MetricWindow::quantile(q, c.latencies.clone(), s.latencies.clone()),
            )
        }
        metric => MetricInput::ok(
            name,
            MetricWindow::values(
                proxy_value(c, metric, elapsed),
                proxy_value(s, metric, elapsed),
            ),
        ),
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

/// The new release's requests in the last interval by `query` (`[analysis] requests`), for the
/// judge's `min_requests` where runway's proxy does not count them; `None` when the query
/// gave nothing to count (an error is logged: the interval is then inconclusive).
pub async fn requests_by_query(
    queries: &dyn QuerySource,
    query: &str,
    service: &str,
    version: &str,
) -> Option<u64> {
    let query = query
        .replace("{service}", service)
        .replace("{version}", version);
    match queries.query(&query).await {
        Ok(Some(n)) if n.is_finite() && n >= 0.0 => Some(n.round() as u64),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(%query, "the requests query failed: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    //! `interval` against in-memory sources: no proxy, no Prometheus, no clock.

    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use runway_spec::ProxyMetric;
    use runway_wire::metrics::WindowSnapshot;

    use super::{interval, BoxFuture, Measurement, QuerySource};
    use crate::router::AnalysisWindow;

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
