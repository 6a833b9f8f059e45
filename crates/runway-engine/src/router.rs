//! How traffic is split between releases: the boundary between the engine and a traffic
//! router.
//!
//! The engine decides *what* share of requests each release gets (a rolling update: one per
//! routable replica; a canary: its step's weight; blue-green: all or nothing), which endpoints
//! serve them, when an endpoint drains, and when the service answers with its maintenance page
//! or refuses writes. A router carries that out. runway's built-in proxy is one router
//! (crates/runway-builtin-router): it owns the service's listen address, splits per request,
//! and measures every request per release. The cluster's own (a Kubernetes Service, a Gateway
//! API route) is another, with another granularity; an in-memory one serves the engine's tests
//! (crates/runway-fakes).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use runway_spec::Spec;
use runway_wire::metrics::{ClientErrorCounts, RefusedCounts, ReleaseMetrics, WindowSnapshot};

/// One endpoint of a release: a replica's address, named by the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub addr: SocketAddr,
}

/// A release's share of the requests and the endpoints that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub release: String,
    /// Relative to the other splits' weights; 0 takes no new request.
    pub weight: u32,
    pub endpoints: Vec<Endpoint>,
}

/// How finely a router can split: the engine plans canary steps with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// Each request goes to a release with the release's weight (the built-in proxy).
    PerRequest,
    /// Requests go to endpoints evenly: a release's share is its share of the endpoints.
    ReplicaRatio,
    /// All requests go to one release at a time.
    SwitchOnly,
}

/// The maintenance page: every request but the allowed paths gets a 503 with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenancePage {
    pub message: String,
    pub retry_after: Duration,
    /// Path prefixes that still pass (the health path, `[maintenance] allow`).
    pub allow: Vec<String>,
}

/// Read-only mode: writes (anything but GET, HEAD, OPTIONS) get a 503 with `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyPage {
    pub message: String,
    pub retry_after: Duration,
}

/// One reader's analysis window (see [`TrafficRouter::open_window`]); closed when dropped.
pub trait AnalysisWindow: Send + Sync {
    /// What every release did since the window opened or was last taken.
    fn take(&self) -> Vec<WindowSnapshot>;
}

/// A preview of a release without traffic (blue-green), until dropped.
pub trait Preview: Send + Sync {}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a service's requests go. Every method takes effect at once and does not block.
pub trait TrafficRouter: Send + Sync {
    fn granularity(&self) -> Granularity;

    /// Starts taking connections. A recovering server re-checks its replicas first; until
    /// then connections wait (the built-in proxy leaves them in the listen backlog).
    fn open(&self);

    /// Stops taking connections (the service is being removed); requests in flight finish.
    /// Resolves when the service's address is free again, so that a service deployed under
    /// the same name right after can take it.
    fn close(&self) -> BoxFuture<'_, ()>;
    /// Stops accepting and waits (boundedly) until the connections being served have
    /// finished, for a successor server that took the listener over; the replicas are
    /// left running. By default the same as [`TrafficRouter::close`].
    fn hand_over(&self) -> BoxFuture<'_, ()> {
        self.close()
    }

    /// The releases' shares and endpoints, replacing the previous ones.
    fn set_splits(&self, splits: Vec<Split>);

    /// Whether a client that went to a release keeps going there (a canary's `sticky`).
    fn set_sticky(&self, sticky: bool);
    /// Applies `[proxy]` (header and idle timeouts, h2c) to the router's client side; a
    /// router without one (a cluster's) ignores it.
    fn set_client_limits(&self, _limits: &runway_spec::ProxySpec) {}

    fn set_maintenance(&self, page: Option<MaintenancePage>);

    fn set_read_only(&self, page: Option<ReadOnlyPage>);

    /// Requests in flight to an endpoint.
    fn in_flight(&self, endpoint: &str) -> u64;

    /// Waits until no request is in flight to `endpoint` (it left the splits), at most
    /// `within`; whether it drained.
    fn wait_drained<'a>(&'a self, endpoint: &'a str, within: Duration) -> BoxFuture<'a, bool>;

    /// Each release's request counts and latencies since the router started.
    fn metrics(&self) -> Vec<ReleaseMetrics>;

    /// Requests the maintenance page or read-only mode answered.
    fn refused(&self) -> RefusedCounts;

    /// Requests whose client failed them (in no release's numbers).
    fn client_errors(&self) -> ClientErrorCounts;

    /// Opens an analysis window of this reader's own on every release's requests.
    fn open_window(&self) -> Box<dyn AnalysisWindow>;

    /// The request header that sends a request to a named release whatever the weights (a
    /// blue-green preview through the service's own address), when the router has one.
    fn force_header(&self) -> Option<&'static str> {
        None
    }

    /// Serves `split` alone on `addr` (a blue-green preview) until the preview is dropped.
    fn preview<'a>(
        &'a self,
        addr: SocketAddr,
        split: Split,
    ) -> BoxFuture<'a, Result<Box<dyn Preview>, String>>;

    /// The router as itself, for the code that made it (the server's Prometheus endpoint
    /// renders every built-in proxy's metrics together).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Makes each service's router when the service first deploys.
pub trait Routers: Send + Sync {
    /// The router of `service` as `spec` configures it (for the built-in proxy: listening on
    /// `[service] listen`, accepting nothing until [`TrafficRouter::open`]). An error says what
    /// to change (an address in use, say).
    fn bind<'a>(
        &'a self,
        service: &'a str,
        spec: &'a Spec,
    ) -> BoxFuture<'a, Result<std::sync::Arc<dyn TrafficRouter>, String>>;
}
