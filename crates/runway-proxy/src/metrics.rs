//! Per-release request metrics and their Prometheus rendering.
//!
//! Canary analysis compares releases on these numbers, so they must be exact
//! and mutually consistent, and only the release's own behaviour may count
//! against it. Definitions:
//!
//! * A request is **counted when it completes**, exactly once, in the release
//!   that served it (after a retry on another release: that release):
//!   - with a response from a backend, when the response body has been fully
//!     handed to the client connection, or when the body is dropped earlier
//!     (client went away, HEAD, upgrade): class by status (`2xx`..`5xx`;
//!     `1xx` such as 101 only counts in `requests`);
//!   - as `failed` when the proxy itself answered 502/504 because no backend
//!     produced a response head, or when a backend's response body broke off
//!     mid-stream. Failed requests are not also counted as `5xx`.
//!   - Requests the client abandons before any response head are not counted.
//! * **The client's own failures are not the release's**: a request body that
//!   cannot be read (malformed chunked encoding, a body cut short because the
//!   client aborted its upload or closed the connection) is answered `400`
//!   (`Connection: close`) by the proxy, or not at all when the client is
//!   gone, and counted only in the service's [`ClientErrorCounts`]
//!   (`runway_client_errors_total`), in no release's `requests`, `failed`,
//!   error rate or latency, whether the body was buffered before a release
//!   was chosen or streamed to a backend that then could not answer. When a
//!   backend already sent its response head and the response then breaks off
//!   because the client's upload failed, the request counts by status, like
//!   any response whose client went away.
//! * **Latency** is the release's time: from the moment the request's body
//!   has been received (buffered bodies: read completely; bodies streamed to
//!   the backend: their last byte passed the proxy, when that is later than
//!   the start of the attempt; bodiless requests: the head parsed) to that
//!   completion. It includes retries and streaming the response body, not a
//!   slow client's upload.
//! * **In flight** counts requests from the choice of a release to completion.
//!
//! Each release has one small mutex around its counters and histograms; it is
//! held for a few counter increments per request, and gives snapshots in which
//! `requests`, the classes and the histogram count always agree. Quantiles
//! come from an HDR histogram (3 significant digits) over all requests since
//! the proxy started; the Prometheus buckets are exact counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http::StatusCode;
use rand::Rng;
pub use runway_wire::metrics::{ClientErrorCounts, ReleaseMetrics, WindowSnapshot};

/// Upper bounds (seconds, inclusive) of the Prometheus latency buckets.
const BUCKETS: [(f64, &str); 13] = [
    (0.001, "0.001"),
    (0.0025, "0.0025"),
    (0.005, "0.005"),
    (0.01, "0.01"),
    (0.025, "0.025"),
    (0.05, "0.05"),
    (0.1, "0.1"),
    (0.25, "0.25"),
    (0.5, "0.5"),
    (1.0, "1"),
    (2.5, "2.5"),
    (5.0, "5"),
    (10.0, "10"),
];

/// Largest latency the quantile histogram resolves (larger ones saturate).
const HISTOGRAM_MAX_MICROS: u64 = 3_600 * 1_000_000;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A backend response was delivered with this status.
    Status(StatusCode),
    /// The proxy could not deliver a backend response.
    Failed,
}

/// Why a client failed its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientError {
    BadRequestBody,
    ClientAborted,
}

impl ClientError {
    /// Classifies an error of the client's request body: malformed data, or
    /// the body ended early (EOF, reset, connection gone).
    pub(crate) fn of_body_error(error: &(dyn std::error::Error + 'static)) -> ClientError {
        let mut source = Some(error);
        while let Some(error) = source {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                return match io.kind() {
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                        ClientError::BadRequestBody
                    }
                    _ => ClientError::ClientAborted,
                };
            }
            source = error.source();
        }
        ClientError::ClientAborted
    }
}

/// The per-service counters behind [`ClientErrorCounts`].
#[derive(Default)]
pub(crate) struct ClientErrors {
    bad_request_body: AtomicU64,
    client_aborted: AtomicU64,
}

impl ClientErrors {
    pub(crate) fn count(&self, error: ClientError) {
        let counter = match error {
            ClientError::BadRequestBody => &self.bad_request_body,
            ClientError::ClientAborted => &self.client_aborted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn counts(&self) -> ClientErrorCounts {
        ClientErrorCounts {
            bad_request_body: self.bad_request_body.load(Ordering::Relaxed),
            client_aborted: self.client_aborted.load(Ordering::Relaxed),
        }
    }
}

/// Live metrics of one release.
pub(crate) struct ReleaseStats {
    pub(crate) release: String,
    in_flight: AtomicU64,
    recorded: Mutex<Recorded>,
}

/// Most latency samples one analysis window keeps per release; beyond it, reservoir
/// sampling keeps a uniform sample of the whole window.
const WINDOW_SAMPLES: usize = 20_000;

trait WindowSnapshotExt {
    fn empty(release: &str) -> WindowSnapshot;
    fn add(&mut self, error: bool, seconds: f64);
}

impl WindowSnapshotExt for WindowSnapshot {
    fn empty(release: &str) -> WindowSnapshot {
        WindowSnapshot {
            release: release.to_owned(),
            ..WindowSnapshot::default()
        }
    }

    fn add(&mut self, error: bool, seconds: f64) {
        self.requests += 1;
        if error {
            self.errors += 1;
        }
        if self.latencies.len() < WINDOW_SAMPLES {
            self.latencies.push(seconds);
        } else {
            // Algorithm R: the n-th sample replaces a kept one with probability cap/n.
            let slot = rand::thread_rng().gen_range(0..self.requests) as usize;
            if let Some(kept) = self.latencies.get_mut(slot) {
                *kept = seconds;
            }
        }
    }
}

/// Everything updated on completion, under one lock for consistent snapshots.
struct Recorded {
    requests: u64,
    classes: [u64; 4],
    failed: u64,
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [u64; BUCKETS.len() + 1],
    sum: Duration,
    latency_micros: Histogram<u64>,
    /// One window per open [`MetricsWindow`], by its id: each reader has its own, so two
    /// readers (a canary's analysis and a baseline capture) never take each other's samples.
    /// Empty when no analysis runs, which is when the hot path pays nothing for windows.
    windows: Vec<(u64, WindowSnapshot)>,
}

impl ReleaseStats {
    fn new(release: &str, open_windows: &[u64]) -> ReleaseStats {
        let latency_micros = Histogram::new_with_bounds(1, HISTOGRAM_MAX_MICROS, 3)
            .expect("static histogram bounds are valid");
        ReleaseStats {
            release: release.to_owned(),
            in_flight: AtomicU64::new(0),
            recorded: Mutex::new(Recorded {
                requests: 0,
                classes: [0; 4],
                failed: 0,
                buckets: [0; BUCKETS.len() + 1],
                sum: Duration::ZERO,
                latency_micros,
                windows: open_windows
                    .iter()
                    .map(|&id| (id, WindowSnapshot::empty(release)))
                    .collect(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, outcome: Outcome, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&(bound, _)| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);

        let mut recorded = self.lock();
        recorded.requests += 1;
        let error = match outcome {
            Outcome::Failed => {
                recorded.failed += 1;
                true
            }
            Outcome::Status(status) => {
                if let Some(class) = (status.as_u16() / 100).checked_sub(2) {
                    if let Some(count) = recorded.classes.get_mut(usize::from(class)) {
                        *count += 1;
                    }
                }
                status.is_server_error()
            }
        };
        for (_, window) in &mut recorded.windows {
            window.add(error, seconds);
        }
        recorded.buckets[bucket] += 1;
        recorded.sum += latency;
        recorded.latency_micros.saturating_record(micros);
        // Under the lock, so no snapshot sees the request both completed and
        // in flight.
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Window `id` so far; starts its next one.
    fn take_window(&self, id: u64) -> WindowSnapshot {
        let mut recorded = self.lock();
        match recorded.windows.iter_mut().find(|(open, _)| *open == id) {
            Some((_, window)) => std::mem::replace(window, WindowSnapshot::empty(&self.release)),
            None => WindowSnapshot::empty(&self.release),
        }
    }

    fn open_window(&self, id: u64) {
        let fresh = WindowSnapshot::empty(&self.release);
        self.lock().windows.push((id, fresh));
    }

    fn close_window(&self, id: u64) {
        self.lock().windows.retain(|(open, _)| *open != id);
    }

    fn snapshot(&self) -> Snapshot {
        let recorded = self.lock();
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let quantile = |q: f64| {
            if recorded.latency_micros.is_empty() {
                0.0
            } else {
                recorded.latency_micros.value_at_quantile(q) as f64 / 1e6
            }
        };
        let error_rate = if recorded.requests == 0 {
            0.0
        } else {
            (recorded.classes[3] + recorded.failed) as f64 / recorded.requests as f64
        };
        let mut cumulative = [0u64; BUCKETS.len() + 1];
        let mut running = 0;
        for (slot, count) in cumulative.iter_mut().zip(recorded.buckets) {
            running += count;
            *slot = running;
        }
        Snapshot {
            metrics: ReleaseMetrics {
                release: self.release.clone(),
                requests: recorded.requests,
                status_2xx: recorded.classes[0],
                status_3xx: recorded.classes[1],
                status_4xx: recorded.classes[2],
                status_5xx: recorded.classes[3],
                failed: recorded.failed,
                in_flight,
                error_rate,
                latency_p50: quantile(0.5),
                latency_p95: quantile(0.95),
                latency_p99: quantile(0.99),
            },
            cumulative_buckets: cumulative,
            sum_seconds: recorded.sum.as_secs_f64(),
        }
    }
}

/// One request's presence in a release's metrics: in flight from
/// [`RequestRecord::begin`] until [`RequestRecord::finish`]; dropping it
/// unfinished (client abandoned the request) only ends the in-flight count.
pub(crate) struct RequestRecord {
    stats: Arc<ReleaseStats>,
    started: Instant,
    finished: bool,
}

impl RequestRecord {
    pub(crate) fn begin(stats: Arc<ReleaseStats>, started: Instant) -> RequestRecord {
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestRecord {
            stats,
            started,
            finished: false,
        }
    }

    /// The release the request is currently attributed to.
    pub(crate) fn stats(&self) -> &Arc<ReleaseStats> {
        &self.stats
    }

    /// Moves the request to another release (a retry went there).
    pub(crate) fn attribute_to(&mut self, stats: &Arc<ReleaseStats>) {
        if !Arc::ptr_eq(&self.stats, stats) {
            stats.in_flight.fetch_add(1, Ordering::Relaxed);
            let previous = std::mem::replace(&mut self.stats, Arc::clone(stats));
            previous.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Starts the request's latency clock at `instant` if that is later than
    /// its start (the client's streamed body ended then).
    pub(crate) fn start_not_before(&mut self, instant: Instant) {
        self.started = self.started.max(instant);
    }

    /// Counts the completed request.
    pub(crate) fn finish(self, outcome: Outcome) {
        self.finish_at(outcome, Instant::now());
    }

    /// Counts the request as completed at `now` (for callers that read the
    /// clock anyway).
    pub(crate) fn finish_at(mut self, outcome: Outcome, now: Instant) {
        self.finished = true;
        self.stats
            .record(outcome, now.saturating_duration_since(self.started));
    }
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        if !self.finished {
            self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// All releases a proxy has ever routed to, kept for its whole lifetime, and the analysis
/// windows open on them.
#[derive(Default)]
pub(crate) struct MetricsRegistry {
    /// Under one lock with the releases, so that a release created while a window opens gets
    /// that window too.
    state: Mutex<RegistryState>,
    next_window: AtomicU64,
}

#[derive(Default)]
struct RegistryState {
    releases: BTreeMap<String, Arc<ReleaseStats>>,
    open_windows: Vec<u64>,
}

impl MetricsRegistry {
    fn state(&self) -> MutexGuard<'_, RegistryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stats of `release`, created on first use.
    pub(crate) fn release(&self, release: &str) -> Arc<ReleaseStats> {
        let mut state = self.state();
        if let Some(stats) = state.releases.get(release) {
            return Arc::clone(stats);
        }
        let stats = Arc::new(ReleaseStats::new(release, &state.open_windows));
        state
            .releases
            .insert(release.to_owned(), Arc::clone(&stats));
        stats
    }

    fn all(&self) -> Vec<Arc<ReleaseStats>> {
        self.state().releases.values().cloned().collect()
    }

    /// Opens a window on every release (and on those to come); returns its id.
    pub(crate) fn open_window(&self) -> u64 {
        let id = self.next_window.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        state.open_windows.push(id);
        for stats in state.releases.values() {
            stats.open_window(id);
        }
        id
    }

    /// Every release's window `id` since it opened or was last taken; starts the next.
    pub(crate) fn take_window(&self, id: u64) -> Vec<WindowSnapshot> {
        self.all()
            .iter()
            .map(|stats| stats.take_window(id))
            .collect()
    }

    pub(crate) fn close_window(&self, id: u64) {
        let mut state = self.state();
        state.open_windows.retain(|&open| open != id);
        for stats in state.releases.values() {
            stats.close_window(id);
        }
    }

    /// Snapshots of all releases, sorted by release name.
    pub(crate) fn snapshots(&self) -> Vec<Snapshot> {
        self.all().iter().map(|stats| stats.snapshot()).collect()
    }
}

/// A release's metrics plus the histogram data only Prometheus needs.
pub(crate) struct Snapshot {
    pub(crate) metrics: ReleaseMetrics,
    /// Cumulative bucket counts matching `BUCKETS`, then `+Inf`.
    cumulative_buckets: [u64; BUCKETS.len() + 1],
    sum_seconds: f64,
}

/// What one proxy contributes to the Prometheus text.
pub(crate) struct ServiceSnapshot<'a> {
    pub(crate) service: &'a str,
    pub(crate) releases: Vec<Snapshot>,
    /// Requests refused by a traffic mode (attributed to no release).
    pub(crate) refused: crate::RefusedCounts,
    /// Requests the client failed (attributed to no release).
    pub(crate) client_errors: ClientErrorCounts,
}

/// Renders the Prometheus text exposition for these services.
pub(crate) fn render(services: &[ServiceSnapshot<'_>]) -> String {
    let mut out = String::with_capacity(4096);
    write_families(&mut out, services).expect("writing to a String cannot fail");
    out
}

fn write_families(out: &mut String, services: &[ServiceSnapshot<'_>]) -> std::fmt::Result {
    let series = || {
        services.iter().flat_map(|service| {
            service.releases.iter().map(move |snapshot| {
                let labels = format!(
                    "service=\"{}\",release=\"{}\"",
                    escape(service.service),
                    escape(&snapshot.metrics.release)
                );
                (labels, snapshot)
            })
        })
    };
    family(
        out,
        "runway_requests_total",
        "Completed requests by outcome class; failed = no backend response.",
        "counter",
    )?;
    for (labels, s) in series() {
        let m = &s.metrics;
        for (class, value) in [
            ("2xx", m.status_2xx),
            ("3xx", m.status_3xx),
            ("4xx", m.status_4xx),
            ("5xx", m.status_5xx),
            ("failed", m.failed),
        ] {
            writeln!(
                out,
                "runway_requests_total{{{labels},class=\"{class}\"}} {value}"
            )?;
        }
    }

    family(
        out,
        "runway_request_duration_seconds",
        "Time from request received to response body completed.",
        "histogram",
    )?;
    for (labels, s) in series() {
        let bounds = BUCKETS.iter().map(|&(_, le)| le).chain(["+Inf"]);
        for (le, count) in bounds.zip(s.cumulative_buckets) {
            writeln!(
                out,
                "runway_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {count}"
            )?;
        }
        writeln!(
            out,
            "runway_request_duration_seconds_sum{{{labels}}} {}",
            s.sum_seconds
        )?;
        writeln!(
            out,
            "runway_request_duration_seconds_count{{{labels}}} {}",
            s.metrics.requests
        )?;
    }

    family(
        out,
        "runway_requests_in_flight",
        "Requests currently being proxied.",
        "gauge",
    )?;
    for (labels, s) in series() {
        writeln!(
            out,
            "runway_requests_in_flight{{{labels}}} {}",
            s.metrics.in_flight
        )?;
    }

    family(
        out,
        "runway_request_latency_quantile_seconds",
        "Request latency quantiles since the proxy started.",
        "gauge",
    )?;
    for (labels, s) in series() {
        let m = &s.metrics;
        for (quantile, value) in [
            ("0.5", m.latency_p50),
            ("0.95", m.latency_p95),
            ("0.99", m.latency_p99),
        ] {
            writeln!(
                    out,
                    "runway_request_latency_quantile_seconds{{{labels},quantile=\"{quantile}\"}} {value}"
                )?;
        }
    }

    family(
        out,
        "runway_requests_refused_total",
        "Requests the proxy answered 503 itself because of maintenance or read-only mode; in no release's counts.",
        "counter",
    )?;
    for service in services {
        let name = escape(service.service);
        for (reason, value) in [
            ("maintenance", service.refused.maintenance),
            ("read_only", service.refused.read_only),
        ] {
            writeln!(
                out,
                "runway_requests_refused_total{{service=\"{name}\",reason=\"{reason}\"}} {value}"
            )?;
        }
    }

    family(
        out,
        "runway_client_errors_total",
        "Requests whose client failed them (malformed or aborted request body), answered 400 or not at all by the proxy; in no release's counts.",
        "counter",
    )?;
    for service in services {
        let name = escape(service.service);
        for (reason, value) in [
            ("bad_request_body", service.client_errors.bad_request_body),
            ("client_aborted", service.client_errors.client_aborted),
        ] {
            writeln!(
                out,
                "runway_client_errors_total{{service=\"{name}\",reason=\"{reason}\"}} {value}"
            )?;
        }
    }
    Ok(())
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    let mut escaped = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finish(stats: &Arc<ReleaseStats>, outcome: Outcome, latency: Duration) {
        let mut record = RequestRecord::begin(Arc::clone(stats), Instant::now());
        // Deterministic latency: bypass the clock.
        record.finished = true;
        stats.record(outcome, latency);
    }

    #[test]
    fn classes_failed_error_rate_and_buckets_are_exact() {
        let registry = MetricsRegistry::default();
        let stats = registry.release("v1");
        let ms = Duration::from_millis;
        finish(&stats, Outcome::Status(StatusCode::OK), ms(1));
        finish(&stats, Outcome::Status(StatusCode::FOUND), ms(3));
        finish(&stats, Outcome::Status(StatusCode::NOT_FOUND), ms(20));
        finish(&stats, Outcome::Status(StatusCode::BAD_GATEWAY), ms(20));
        finish(
            &stats,
            Outcome::Status(StatusCode::SWITCHING_PROTOCOLS),
            ms(2),
        );
        finish(&stats, Outcome::Failed, Duration::from_secs(11));

        let snapshot = &registry.snapshots()[0];
        let m = &snapshot.metrics;
        assert_eq!(m.requests, 6);
        assert_eq!(
            (
                m.status_2xx,
                m.status_3xx,
                m.status_4xx,
                m.status_5xx,
                m.failed
            ),
            (1, 1, 1, 1, 1)
        );
        assert_eq!(m.in_flight, 0);
        assert!((m.error_rate - 2.0 / 6.0).abs() < 1e-12);
        assert!(m.latency_p50 > 0.0 && m.latency_p50 <= m.latency_p95);
        assert!(m.latency_p95 <= m.latency_p99);
        // le=0.001 holds the 1 ms request (inclusive bound); +Inf holds all.
        assert_eq!(snapshot.cumulative_buckets[0], 1);
        assert_eq!(snapshot.cumulative_buckets[BUCKETS.len() - 1], 5);
        assert_eq!(snapshot.cumulative_buckets[BUCKETS.len()], 6);
    }

    #[test]
    fn abandoned_request_leaves_no_count() {
        let registry = MetricsRegistry::default();
        let a = registry.release("a");
        let b = registry.release("b");
        let mut record = RequestRecord::begin(Arc::clone(&a), Instant::now());
        record.attribute_to(&b);
        assert_eq!(a.snapshot().metrics.in_flight, 0);
        assert_eq!(b.snapshot().metrics.in_flight, 1);
        drop(record);
        let m = b.snapshot().metrics;
        assert_eq!((m.in_flight, m.requests, m.error_rate), (0, 0, 0.0));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
