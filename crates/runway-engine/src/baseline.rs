//! Baselines (runbook 001): a snapshot of the serving release's request metrics, taken over a
//! window, and the Metric | Baseline | Current | Delta | Status comparison against it.
//!
//! The statuses follow the runbooks' rollback criteria: an error rate above 5% is FAIL and
//! above 1% WARN; a latency above 3x its baseline is FAIL and above 2x WARN.

use std::sync::Arc;
use std::time::Duration;

pub use runway_wire::api::{Baseline, BaselineMetrics, Comparison, ComparisonRow};
use runway_wire::id::BaselineId;

use super::{Engine, EngineError, Service};

impl Engine {
    /// Measures the serving release over `window` with the proxy's analysis windows.
    pub async fn measure_serving(
        &self,
        service: &str,
        window: Duration,
    ) -> Result<(Arc<Service>, BaselineMetrics), EngineError> {
        if window.is_zero() || window > Duration::from_secs(600) {
            return Err(EngineError::BadRequest(
                "the window must be between 1s and 10m".into(),
            ));
        }
        let svc = self.service(service)?;
        let version = self
            .serving(service)?
            .ok_or_else(|| {
                EngineError::Conflict(format!("service `{service}` serves no release yet"))
            })?
            .version;
        if let Some(op) = svc.operation() {
            return Err(EngineError::Busy(format!(
                "service `{service}` is busy with {}; measure a baseline when it is done",
                op.description
            )));
        }
        // A window of its own: a canary starting meanwhile keeps all of its samples.
        let measured = svc.router.open_window();
        tokio::time::sleep(window).await;
        let windows = measured.take();
        drop(measured);
        let w = windows
            .into_iter()
            .find(|w| w.release == version)
            .unwrap_or_default();
        let quantile = |q| runway_analysis::stats::quantile(&w.latencies, q);
        let metrics = BaselineMetrics {
            version,
            window_seconds: window.as_secs_f64(),
            requests: w.requests,
            request_rate: w.requests as f64 / window.as_secs_f64(),
            error_rate: (w.requests > 0).then(|| w.errors as f64 / w.requests as f64),
            latency_p50: quantile(0.5),
            latency_p95: quantile(0.95),
            latency_p99: quantile(0.99),
        };
        Ok((svc, metrics))
    }

    pub async fn capture_baseline(
        &self,
        service: &str,
        window: Duration,
    ) -> Result<Baseline, EngineError> {
        let (_, metrics) = self.measure_serving(service, window).await?;
        let id = self.store.insert_baseline(
            service,
            &serde_json::to_value(&metrics).map_err(anyhow::Error::from)?,
        )?;
        self.baseline(service, Some(id))
    }

    pub fn baseline(&self, service: &str, id: Option<BaselineId>) -> Result<Baseline, EngineError> {
        let (id, captured_at, metrics) = self.store.baseline(service, id)?.ok_or_else(|| {
            EngineError::NotFound(format!(
                "no baseline for `{service}`; capture one with `runway baseline capture`"
            ))
        })?;
        let metrics = serde_json::from_value(metrics).map_err(anyhow::Error::from)?;
        Ok(Baseline {
            id,
            service: service.to_string(),
            captured_at,
            metrics,
        })
    }

    pub async fn compare_baseline(
        &self,
        service: &str,
        id: Option<BaselineId>,
        window: Duration,
    ) -> Result<Comparison, EngineError> {
        let baseline = self.baseline(service, id)?;
        let (_, current) = self.measure_serving(service, window).await?;
        let rows = compare(&baseline.metrics, &current);
        Ok(Comparison {
            baseline,
            current,
            rows,
        })
    }
}

pub fn compare(base: &BaselineMetrics, now: &BaselineMetrics) -> Vec<ComparisonRow> {
    let row = |metric: &str,
               b: Option<f64>,
               c: Option<f64>,
               status: fn(f64, f64) -> &'static str| ComparisonRow {
        metric: metric.to_string(),
        baseline: b,
        current: c,
        delta: b.zip(c).map(|(b, c)| c - b),
        status: match (b, c) {
            (Some(b), Some(c)) => status(b, c).to_string(),
            _ => "NO DATA".to_string(),
        },
    };
    let error_status = |_: f64, c: f64| match c {
        c if c > 0.05 => "FAIL",
        c if c > 0.01 => "WARN",
        _ => "OK",
    };
    let latency_status = |b: f64, c: f64| match c {
        c if b > 0.0 && c > 3.0 * b => "FAIL",
        c if b > 0.0 && c > 2.0 * b => "WARN",
        _ => "OK",
    };
    vec![
        row("error_rate", base.error_rate, now.error_rate, error_status),
        row(
            "latency_p50",
            base.latency_p50,
            now.latency_p50,
            latency_status,
        ),
        row(
            "latency_p95",
            base.latency_p95,
            now.latency_p95,
            latency_status,
        ),
        row(
            "latency_p99",
            base.latency_p99,
            now.latency_p99,
            latency_status,
        ),
        row(
            "request_rate",
            Some(base.request_rate),
            Some(now.request_rate),
            |_, _| "OK",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(error_rate: f64, p99: f64) -> BaselineMetrics {
        BaselineMetrics {
            version: "v1".into(),
            window_seconds: 10.0,
            requests: 1000,
            request_rate: 100.0,
            error_rate: Some(error_rate),
            latency_p50: Some(0.01),
            latency_p95: Some(0.02),
            latency_p99: Some(p99),
        }
    }

    #[test]
    fn statuses_follow_the_runbooks_rollback_criteria() {
        let base = metrics(0.001, 0.1);
        let status = |now: BaselineMetrics, metric: &str| {
            compare(&base, &now)
                .into_iter()
                .find(|r| r.metric == metric)
                .unwrap()
                .status
        };
        assert_eq!(status(metrics(0.005, 0.1), "error_rate"), "OK");
        assert_eq!(status(metrics(0.02, 0.1), "error_rate"), "WARN");
        assert_eq!(status(metrics(0.06, 0.1), "error_rate"), "FAIL");
        assert_eq!(status(metrics(0.0, 0.15), "latency_p99"), "OK");
        assert_eq!(status(metrics(0.0, 0.25), "latency_p99"), "WARN");
        assert_eq!(status(metrics(0.0, 0.31), "latency_p99"), "FAIL");
        let row = compare(&base, &metrics(0.0, 0.25))
            .into_iter()
            .find(|r| r.metric == "latency_p99")
            .unwrap();
        assert!((row.delta.unwrap() - 0.15).abs() < 1e-12);
        let mut none = metrics(0.0, 0.1);
        none.error_rate = None;
        assert_eq!(status(none, "error_rate"), "NO DATA");
    }
}
