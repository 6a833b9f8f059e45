//! runway's built-in reverse proxy.
//!
//! runway runs every release of a service as local processes ("replicas") and
//! puts this proxy in front of them. The deploy engine owns *which* replicas
//! receive traffic ([`Proxy::set_routes`]); the proxy owns *how* each request
//! gets there and measures what happened, because canary analysis judges
//! releases on exactly these numbers.
//!
//! Design constraints, and where they are met:
//!
//! * **Per-request weighted routing** (`routes`): a canary at weight 10 gets
//!   ~10% of *requests*, not of connections. The route table is an immutable
//!   snapshot behind an `ArcSwap`, so the hot path never takes a lock to read
//!   it and a route change takes effect for the very next request.
//! * **Zero-loss rollouts** (`forward`): connect failures are retried on
//!   another replica, idempotent requests are also retried when a replica dies
//!   before answering, so removing or losing a replica costs no request.
//! * **Drain** (`routes`): every backend counts the requests it is serving;
//!   the engine removes a replica from the routes, waits on
//!   [`Proxy::wait_drained`] and only then stops the process.
//! * **Exact per-release metrics** (`metrics`): a request is counted once,
//!   when its response body has finished streaming, in exactly one class;
//!   a client's own failure (malformed or aborted request body) is counted
//!   apart, never against a release.
//! * **Keep-alive clients survive the proxy's own answers** (`local`,
//!   `linger`): the request body is read before any of them, or the answer
//!   says `Connection: close`; connections the proxy ends close with FIN,
//!   never with a reset that would destroy the answer.
//! * **Speed** (`server`, `forward`): hyper on both sides, pooled
//!   keep-alive upstream connections, no global lock per request.

mod admission;
mod body;
mod drain;
mod forward;
mod headers;
mod linger;
mod local;
mod metrics;
mod modes;
mod routes;
mod server;
mod streamed;
mod timeouts;
mod upgrade;
mod upstream;
mod worker;

/// Entry points for the fuzz targets (fuzz/ at the workspace root); not an API.
#[doc(hidden)]
pub mod fuzzing {
    /// Feeds `bytes`, a replica's response, to the fast path's parser as a connection
    /// would (the head in two reads split at `split`, the body in reads of `step` bytes);
    /// panics when the parser breaks one of its invariants.
    pub fn upstream_response(bytes: &[u8], head_request: bool, split: usize, step: usize) {
        crate::upstream::exercise(bytes, head_request, split, step);
    }

    /// The fuzz target's input: its first three bytes choose how the response arrives
    /// (HEAD or not, where the head is split, the body's read size), the rest is it.
    pub fn upstream_response_input(data: &[u8]) {
        let [flags, split, step, rest @ ..] = data else {
            return;
        };
        upstream_response(
            rest,
            flags & 1 == 1,
            usize::from(*split) * 2,
            usize::from(*step % 64) + 1,
        );
    }
}

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use admission::{
    connection_limit, limit_for_open_files, open_connections, refused_connections,
    set_connection_limit, RESERVED_FILES,
};
pub use metrics::{ClientErrorCounts, ReleaseMetrics, WindowSnapshot};
pub use modes::{Maintenance, ReadOnly, RefusedCounts};
pub use routes::{Backend, ReleaseRoute};

use metrics::{ClientErrors, MetricsRegistry};
use modes::Modes;
use routes::Router;

/// Tuning knobs of a [`Proxy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// How long to wait for a TCP connection to a replica before trying
    /// another one (the attempt then counts as a connect failure).
    pub connect_timeout: Duration,
    /// How many additional backends a request may be tried on after its first
    /// attempt failed (see [`Proxy`] for which failures are retried).
    pub max_retries: u32,
    /// How long a client has to send a whole request head, from its connection's accept
    /// or its first byte on a keep-alive connection; then `408` and the connection ends.
    pub header_timeout: Duration,
    /// How long a keep-alive connection stays open with no request; then it closes.
    pub idle_timeout: Duration,
    /// How long the proxy waits for the next bytes of an HTTP/1 request body; then `408`
    /// (when no answer has begun) and the connection ends.
    pub body_timeout: Duration,
    /// How long a client may take no byte of its answer; then the connection ends.
    pub send_timeout: Duration,
    /// Forward `Upgrade: h2c` to the replicas. Off: the header is dropped and the request
    /// is served as plain HTTP/1.1 (as nginx does), so a client cannot switch a
    /// connection to a protocol nobody checks past the proxy.
    pub h2c_upgrade: bool,
}

impl ProxyConfig {
    /// `header_timeout` when not configured (nginx's `client_header_timeout` is 60 s;
    /// a request head is one packet for every real client).
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(15);
    /// `idle_timeout` when not configured (nginx's `keepalive_timeout` is 75 s).
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
    /// `body_timeout` when not configured (nginx's `client_body_timeout`).
    pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
    /// `send_timeout` when not configured (nginx's `send_timeout`).
    pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            connect_timeout: Duration::from_secs(2),
            max_retries: 2,
            header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            send_timeout: Self::DEFAULT_SEND_TIMEOUT,
            h2c_upgrade: false,
        }
    }
}

/// [`ProxyConfig`]'s settings for clients, which [`Proxy::set_client_limits`] changes while
/// the proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub send_timeout: Duration,
    pub h2c_upgrade: bool,
}

impl ClientSettings {
    /// The client settings of `config`.
    pub fn of(config: &ProxyConfig) -> ClientSettings {
        ClientSettings {
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            body_timeout: config.body_timeout,
            send_timeout: config.send_timeout,
            h2c_upgrade: config.h2c_upgrade,
        }
    }
}

/// A reverse proxy for one service.
///
/// Cheap to clone: clones share routes, connection pools and metrics.
///
/// # Request handling
///
/// * Traffic modes are checked first, per request (one atomic load while
///   neither is on; a change applies from the next request, also on open
///   keep-alive connections):
///   - **maintenance** ([`Proxy::set_maintenance`]): every request whose path
///     (without the query) is not in [`Maintenance::allow`], upgrades
///     included, is answered `503`;
///   - **read-only** ([`Proxy::set_read_only`]): every request with a method
///     other than GET, HEAD and OPTIONS is answered `503`.
///
///   Maintenance is checked first (a request both refuse gets its answer; a
///   write to an allowed path is still refused by read-only). The `503`
///   carries `Retry-After` (whole seconds, at least 1), `Cache-Control:
///   no-store`, `Vary: Accept` and the `X-Request-Id`; its body is JSON
///   (`{"error":"maintenance"|"read_only","message":…,"retry_after":N}`)
///   when `Accept` names `application/json` or a `+json` type and does not
///   prefer `text/html`, else a small HTML page with the message. These
///   answers reach no release: they are in no release's metrics, only in
///   [`Proxy::refused`] (and `runway_requests_refused_total`).
/// * **The proxy's own answers** (the `503`s above, `503 no healthy
///   replica`, `400 bad request body`, `502`/`504`) keep an HTTP/1
///   keep-alive connection usable: the rest of the request body is read and
///   discarded first (up to 8 MiB within 2 s); when that is not possible
///   (larger, slower, malformed, or the client waits for `100 Continue`,
///   which the proxy then does not send) the answer carries `Connection:
///   close`. Whenever the proxy ends a connection it sends FIN and keeps
///   reading what the client still sends until the client closes (at most
///   10 s), so no answer is lost to a reset.
/// * A release is chosen per request at random, weighted by
///   [`ReleaseRoute::weight`], among releases with a positive weight and at
///   least one backend; within it the backend with fewer in-flight requests of
///   two random picks ("power of two choices"), avoiding for 1 s a backend
///   that just refused a connection. Without any routable backend the proxy
///   answers `503 no healthy replica` (not attributed to a release).
/// * `X-Forwarded-For` is appended, `X-Forwarded-Proto`/`X-Forwarded-Host` are
///   set, an `X-Request-Id` is generated when absent and echoed in the
///   response, hop-by-hop headers are stripped (except for upgrades).
/// * Retries (at most [`ProxyConfig::max_retries`], each on a backend not tried
///   yet, preferring the same release): always when connecting failed, and
///   for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) also when the
///   backend failed without sending a response head. Only requests whose body
///   could be buffered (known length up to 1 MiB) can be retried.
/// * When no backend produced a response head the proxy answers `502` (or
///   `504` when the last failure was a connect timeout), counted as `failed`.
/// * When the client's request body fails (malformed chunked encoding, the
///   client stops sending mid-upload), while buffered or while streamed to a
///   backend, the proxy answers `400` with `Connection: close` (which a
///   client that is gone never reads) and counts it in
///   [`Proxy::client_errors`], in no release's metrics.
/// * HTTP/1.1 upgrades (WebSocket) are tunnelled once the backend answers 101.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

/// State shared by all clones of a [`Proxy`] and all of its connections.
pub(crate) struct Inner {
    pub(crate) service: String,
    pub(crate) config: ProxyConfig,
    pub(crate) router: Router,
    pub(crate) metrics: MetricsRegistry,
    /// Canary stickiness: a cookie keeps a client on the release it first got.
    pub(crate) sticky: std::sync::atomic::AtomicBool,
    /// Maintenance and read-only modes.
    pub(crate) modes: Modes,
    /// Requests the client failed (see [`Proxy::client_errors`]).
    pub(crate) client_errors: ClientErrors,
    /// The client timeouts and the h2c switch, changeable while serving.
    pub(crate) client_limits: ClientLimits,
}

/// [`ProxyConfig`]'s client-facing settings, changeable while serving
/// ([`Proxy::set_client_limits`]): a new connection takes the timeouts of its accept,
/// a request the h2c switch of its arrival.
#[derive(Default)]
pub(crate) struct ClientLimits {
    header_timeout_ms: std::sync::atomic::AtomicU64,
    idle_timeout_ms: std::sync::atomic::AtomicU64,
    body_timeout_ms: std::sync::atomic::AtomicU64,
    send_timeout_ms: std::sync::atomic::AtomicU64,
    h2c_upgrade: std::sync::atomic::AtomicBool,
}

impl ClientLimits {
    fn new(config: &ProxyConfig) -> ClientLimits {
        let limits = ClientLimits::default();
        limits.set(&ClientSettings::of(config));
        limits
    }

    fn set(&self, settings: &ClientSettings) {
        use std::sync::atomic::Ordering::Relaxed;
        let ms = |d: Duration| (d.as_millis() as u64).max(1);
        self.header_timeout_ms
            .store(ms(settings.header_timeout), Relaxed);
        self.idle_timeout_ms
            .store(ms(settings.idle_timeout), Relaxed);
        self.body_timeout_ms
            .store(ms(settings.body_timeout), Relaxed);
        self.send_timeout_ms
            .store(ms(settings.send_timeout), Relaxed);
        self.h2c_upgrade.store(settings.h2c_upgrade, Relaxed);
    }

    pub(crate) fn timeouts(&self) -> timeouts::Limits {
        use std::sync::atomic::Ordering::Relaxed;
        let load = |ms: &std::sync::atomic::AtomicU64| Duration::from_millis(ms.load(Relaxed));
        timeouts::Limits {
            header: load(&self.header_timeout_ms),
            idle: load(&self.idle_timeout_ms),
            body: load(&self.body_timeout_ms),
            send: load(&self.send_timeout_ms),
        }
    }

    pub(crate) fn h2c_upgrade(&self) -> bool {
        self.h2c_upgrade.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The cookie that keeps a client on a release while stickiness is on.
pub const STICKY_COOKIE: &str = "runway-release";
/// A request header that sends the request to the named release, whatever its weight (as long
/// as it has a routable replica): smoke tests of a canary or a blue-green preview.
pub const FORCE_HEADER: &str = "x-runway-release";

impl Proxy {
    /// Creates a proxy for `service` with no routes (every request gets 503
    /// until [`Proxy::set_routes`] is called).
    pub fn new(service: &str, config: ProxyConfig) -> Proxy {
        let router = Router::new(config.connect_timeout);
        let client_limits = ClientLimits::new(&config);
        Proxy {
            inner: Arc::new(Inner {
                client_limits,
                service: service.to_owned(),
                config,
                router,
                metrics: MetricsRegistry::default(),
                sticky: std::sync::atomic::AtomicBool::new(false),
                modes: Modes::default(),
                client_errors: ClientErrors::default(),
            }),
        }
    }

    /// Changes the client timeouts (for connections accepted from now on) and whether
    /// `Upgrade: h2c` is forwarded (from the next request on); see [`ProxyConfig`].
    pub fn set_client_limits(&self, settings: &ClientSettings) {
        self.inner.client_limits.set(settings);
    }

    /// The service name this proxy was created for (the `service` label).
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// Atomically replaces the route table; the next request uses it.
    ///
    /// Requests already sent to a backend that is no longer routed finish
    /// normally (see [`Proxy::wait_drained`]). Once this returns, no new
    /// request is sent to a backend missing from `routes`. Backends keep their
    /// pooled connections across calls as long as their id and address stay.
    pub fn set_routes(&self, routes: Vec<ReleaseRoute>) {
        self.inner.router.set_routes(routes, &self.inner.metrics);
    }

    /// Turns cookie stickiness on or off: while on, a client that got a release keeps getting
    /// it (as long as that release has weight), so a user does not flip between versions.
    pub fn set_sticky(&self, on: bool) {
        self.inner
            .sticky
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Puts the service in maintenance (`Some`) or ends it (`None`), from
    /// the next request on: requests to paths not in [`Maintenance::allow`]
    /// are answered `503` by the proxy (see [`Proxy`], "Request handling").
    /// Replaces the previous settings.
    pub fn set_maintenance(&self, maintenance: Option<Maintenance>) {
        self.inner.modes.set_maintenance(maintenance);
    }

    /// The maintenance settings in force, if any.
    pub fn maintenance(&self) -> Option<Maintenance> {
        self.inner.modes.maintenance()
    }

    /// Read-only: writes (any method but GET, HEAD, OPTIONS) are answered
    /// 503; reads pass. `retry_after` and `message` for the answer. `None`
    /// ends it. Takes effect from the next request on; replaces the previous
    /// settings.
    pub fn set_read_only(&self, read_only: Option<ReadOnly>) {
        self.inner.modes.set_read_only(read_only);
    }

    /// The read-only settings in force, if any.
    pub fn read_only(&self) -> Option<ReadOnly> {
        self.inner.modes.read_only()
    }

    /// Requests refused by maintenance or read-only mode since the proxy was
    /// created (they are in no release's [`Proxy::metrics`]).
    pub fn refused(&self) -> RefusedCounts {
        self.inner.modes.refused()
    }

    /// Requests whose client failed them (a malformed or aborted request
    /// body) since the proxy was created: answered `400` by the proxy (or
    /// not at all, the client being gone) and in no release's
    /// [`Proxy::metrics`] or [`MetricsWindow`].
    pub fn client_errors(&self) -> ClientErrorCounts {
        self.inner.client_errors.counts()
    }

    /// Opens an analysis window: from now on, every release's completed requests, errors and
    /// latency samples also go to this window, until it is dropped. Each reader opens its own
    /// (a canary's analysis, a baseline capture), so no reader takes another's samples; with
    /// no window open, requests pay nothing for them.
    pub fn open_window(&self) -> MetricsWindow {
        MetricsWindow {
            id: self.inner.metrics.open_window(),
            inner: Arc::clone(&self.inner),
        }
    }

    /// The routes as last set (empty before the first [`Proxy::set_routes`]).
    pub fn routes(&self) -> Vec<ReleaseRoute> {
        self.inner.router.routes()
    }

    /// Requests currently being proxied to the backend with this id: from the
    /// moment one is chosen for a request until its response body has been
    /// streamed (or, for upgraded connections, until the tunnel closes).
    /// 0 for unknown ids.
    pub fn in_flight(&self, backend_id: &str) -> u64 {
        self.inner
            .router
            .backend(backend_id)
            .map_or(0, |backend| backend.in_flight())
    }

    /// Waits until the backend has no request in flight; `true` when that
    /// happened within `timeout` (immediately for unknown ids).
    pub async fn wait_drained(&self, backend_id: &str, timeout: Duration) -> bool {
        match self.inner.router.backend(backend_id) {
            Some(backend) => backend.wait_drained(timeout).await,
            None => true,
        }
    }

    /// Metrics of every release that has ever been part of this proxy's
    /// routes (so every release that ever served through it), sorted by
    /// release name. Releases are kept after they leave the routes.
    pub fn metrics(&self) -> Vec<ReleaseMetrics> {
        self.inner
            .metrics
            .snapshots()
            .into_iter()
            .map(|snapshot| snapshot.metrics)
            .collect()
    }

    /// Serves HTTP/1.1 (keep-alive) and HTTP/2 prior-knowledge (h2c) clients
    /// accepted on `listener` until `shutdown` completes, then shuts down
    /// gracefully: stops accepting, lets in-flight requests finish (at most
    /// 10 s) and returns.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        server::serve(Arc::clone(&self.inner), listener, shutdown).await
    }
}

/// One reader's analysis window on a proxy (see [`Proxy::open_window`]); closed when dropped.
pub struct MetricsWindow {
    id: u64,
    inner: Arc<Inner>,
}

impl MetricsWindow {
    /// What every release did since the window opened or was last taken; starts the next
    /// interval of this window (and of no other).
    pub fn take(&self) -> Vec<WindowSnapshot> {
        self.inner.metrics.take_window(self.id)
    }
}

impl Drop for MetricsWindow {
    fn drop(&mut self) {
        self.inner.metrics.close_window(self.id);
    }
}

impl fmt::Debug for MetricsWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsWindow")
            .field("id", &self.id)
            .finish()
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("service", &self.inner.service)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Renders the metrics of all `proxies` in the Prometheus text exposition
/// format (version 0.0.4). Each metric family's `HELP`/`TYPE` appears once;
/// series carry `service` and `release` labels:
///
/// * `runway_requests_total{class="2xx|3xx|4xx|5xx|failed"}` (counter)
/// * `runway_request_duration_seconds` (histogram, 1 ms .. 10 s buckets)
/// * `runway_requests_in_flight` (gauge)
/// * `runway_request_latency_quantile_seconds{quantile="0.5|0.95|0.99"}`
///   (gauge, computed over all requests since the proxy started)
///
/// and, with only a `service` label, as they reached no release:
///
/// * `runway_requests_refused_total{reason="maintenance|read_only"}`
///   (counter, [`Proxy::refused`])
/// * `runway_client_errors_total{reason="bad_request_body|client_aborted"}`
///   (counter, [`Proxy::client_errors`])
pub fn render_prometheus(proxies: &[Proxy]) -> String {
    let services: Vec<metrics::ServiceSnapshot<'_>> = proxies
        .iter()
        .map(|proxy| metrics::ServiceSnapshot {
            service: proxy.service(),
            releases: proxy.inner.metrics.snapshots(),
            refused: proxy.refused(),
            client_errors: proxy.client_errors(),
        })
        .collect();
    metrics::render(&services)
}
