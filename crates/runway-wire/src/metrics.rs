//! The numbers a router reports about a service's releases: what `status` shows and what a
//! canary's analysis compares. The built-in proxy fills them in per request; another router
//! (a platform's own load balancer) fills in what it can.

use serde::{Deserialize, Serialize};

/// A point-in-time view of one release's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReleaseMetrics {
    /// Release name.
    pub release: String,
    /// Completed requests (all classes, including `failed`).
    pub requests: u64,
    /// Completed with a 2xx response from a backend.
    pub status_2xx: u64,
    /// Completed with a 3xx response from a backend.
    pub status_3xx: u64,
    /// Completed with a 4xx response from a backend.
    pub status_4xx: u64,
    /// Completed with a 5xx response from a backend.
    pub status_5xx: u64,
    /// No backend produced a response (the proxy answered 502/504 itself), or
    /// the response body broke off mid-stream.
    pub failed: u64,
    /// Requests currently being handled.
    pub in_flight: u64,
    /// `(status_5xx + failed) / requests`, 0 without requests.
    pub error_rate: f64,
    /// Median latency in seconds (0 without requests).
    pub latency_p50: f64,
    /// 95th percentile latency in seconds (0 without requests).
    pub latency_p95: f64,
    /// 99th percentile latency in seconds (0 without requests).
    pub latency_p99: f64,
}

/// Requests whose client failed them, since the router started: answered
/// by the proxy itself (`400`, or nothing for a client that is gone) and in
/// no release's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClientErrorCounts {
    /// The request body was malformed (e.g. an invalid chunk size).
    pub bad_request_body: u64,
    /// The client stopped sending its request body (connection closed or
    /// reset mid-upload).
    pub client_aborted: u64,
}

/// Requests the proxy answered `503` itself because of a traffic mode, since
/// the proxy was created. They reached no release and are in no release's
/// metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RefusedCounts {
    /// Refused because the service was in maintenance.
    pub maintenance: u64,
    /// Writes refused because the service was read-only.
    pub read_only: u64,
}

/// What one release did in one analysis window since its last take: the numbers canary
/// analysis compares, for the canary and the stable release over the same window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WindowSnapshot {
    pub release: String,
    /// Completed requests.
    pub requests: u64,
    /// 5xx answers plus requests the proxy answered itself (`failed`).
    pub errors: u64,
    /// Per-request latencies in seconds (all of them, or a uniform sample of
    /// a cap (the proxy keeps 20,000) when there were more).
    pub latencies: Vec<f64>,
}
