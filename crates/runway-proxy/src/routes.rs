//! The route table and per-backend state.
//!
//! Requests read the table on every request, while the deploy engine changes it
//! a few times per deploy. So the table is an immutable snapshot behind an
//! [`ArcSwap`]: readers never lock, and [`Router::set_routes`] builds a new
//! snapshot and swaps it in.
//!
//! Backend state (in-flight counter, drain notification, connection pool) must
//! outlive a single snapshot: a request sent through an old snapshot still has
//! to be counted when the engine waits for the backend to drain. It therefore
//! lives in [`BackendState`], shared by all snapshots that contain the backend
//! and by every request in flight to it, and indexed by id in a registry that
//! only `set_routes` and the drain queries touch.
//!
//! Removing a backend races with requests that loaded the previous snapshot
//! just before the swap. [`BackendState::acquire`] closes that race: a request
//! first increments the in-flight counter and then checks the `removed` flag,
//! which `set_routes` raises after the swap (both sequentially consistent).
//! Either the request sees the flag and backs off, or its increment is visible
//! to anyone who waits for the drain after `set_routes` returned.
//!
//! Between a replica dying and the engine removing it, the proxy avoids it on
//! its own: after a failed connect a backend is *ejected* for
//! [`EJECTION_PERIOD`], i.e. the backend choice prefers any other candidate,
//! so a dead replica costs one failed connect per period instead of one per
//! request (the request itself is retried elsewhere either way).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};
use http::uri::Authority;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rand::Rng;
use tokio::sync::Notify;

use crate::body::UpstreamBody;
use crate::metrics::{MetricsRegistry, ReleaseStats};
use crate::upstream::Pool;

/// How long an idle pooled upstream connection is kept open.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a backend is avoided after a connect to it failed.
const EJECTION_PERIOD: Duration = Duration::from_secs(1);

/// Monotonic nanoseconds since the first call, for compact atomic deadlines.
fn now_nanos() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    // `max(1)`: 0 means "not ejected".
    u64::try_from(epoch.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// One replica: an HTTP server on a loopback port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backend {
    /// Replica id, unique across the proxy.
    pub id: String,
    /// Address the replica listens on.
    pub addr: SocketAddr,
}

/// The replicas of one release and the share of traffic they get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRoute {
    /// Release name; metrics are kept per release.
    pub release: String,
    /// Relative weight; a release gets `weight / sum(weights)` of requests.
    /// Releases with weight 0 get none.
    pub weight: u32,
    /// Replicas that passed their health check.
    pub backends: Vec<Backend>,
}

/// The HTTP/1.1 client with its own connection pool used for one backend.
pub(crate) type UpstreamClient = Client<HttpConnector, UpstreamBody>;

/// Shared, long-lived state of one backend.
pub(crate) struct BackendState {
    pub(crate) id: String,
    pub(crate) addr: SocketAddr,
    /// `ip:port`, pre-built so request URIs are assembled without formatting.
    pub(crate) authority: Authority,
    /// hyper's client, for requests the fast path does not handle (upgrades,
    /// streamed bodies). One pool per backend: no cross-backend contention
    /// on the pool lock, and idle connections go away with the backend.
    pub(crate) client: UpstreamClient,
    /// Idle connections of the fast path (see `upstream`).
    pub(crate) pool: Pool,
    pub(crate) connect_timeout: Duration,
    in_flight: AtomicU64,
    removed: AtomicBool,
    drained: Notify,
    /// `now_nanos()` until which the backend is avoided; 0 when healthy.
    ejected_until: AtomicU64,
}

impl BackendState {
    fn new(backend: &Backend, connect_timeout: Duration) -> BackendState {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        let authority = Authority::try_from(backend.addr.to_string())
            .expect("a socket address is a valid URI authority");
        BackendState {
            id: backend.id.clone(),
            addr: backend.addr,
            authority,
            client,
            pool: Pool::new(),
            connect_timeout,
            in_flight: AtomicU64::new(0),
            removed: AtomicBool::new(false),
            drained: Notify::new(),
            ejected_until: AtomicU64::new(0),
        }
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Registers a request to this backend; `None` when the backend has been
    /// removed from the routes in the meantime (pick again from a fresh table).
    pub(crate) fn acquire(self: &Arc<Self>) -> Option<BackendGuard> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = BackendGuard(Arc::clone(self));
        if self.removed.load(Ordering::SeqCst) {
            return None; // dropping the guard undoes the increment
        }
        Some(guard)
    }

    /// Records a failed connect: avoid this backend for a while.
    pub(crate) fn eject(&self) {
        let until = now_nanos().saturating_add(EJECTION_PERIOD.as_nanos() as u64);
        self.ejected_until.store(until, Ordering::Relaxed);
    }

    /// Records a response: the backend is reachable again.
    pub(crate) fn readmit(&self) {
        if self.ejected_until.load(Ordering::Relaxed) != 0 {
            self.ejected_until.store(0, Ordering::Relaxed);
        }
    }

    fn is_ejected(&self) -> bool {
        // Reads the clock only for backends that failed recently.
        match self.ejected_until.load(Ordering::Relaxed) {
            0 => false,
            until => now_nanos() < until,
        }
    }

    /// Waits until no request is in flight, for at most `timeout`.
    pub(crate) async fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before checking, so a decrement to 0 between
            // the check and the await cannot be missed.
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }
}

/// One request's claim on a backend; releases it (and wakes drain waiters
/// when it was the last one) on drop.
pub(crate) struct BackendGuard(Arc<BackendState>);

impl BackendGuard {
    /// The backend, kept after the guard is gone (to remember it was tried).
    pub(crate) fn state(&self) -> &Arc<BackendState> {
        &self.0
    }
}

impl std::ops::Deref for BackendGuard {
    type Target = BackendState;

    fn deref(&self) -> &BackendState {
        &self.0
    }
}

impl Drop for BackendGuard {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

/// A routable release inside a [`RouteTable`].
pub(crate) struct RoutedRelease {
    /// Exclusive upper bound of this release's slice of the cumulative weights.
    upper: u64,
    pub(crate) stats: Arc<ReleaseStats>,
    backends: Vec<Arc<BackendState>>,
}

/// An immutable routing snapshot.
pub(crate) struct RouteTable {
    /// The routes as given, for [`Router::routes`].
    routes: Vec<ReleaseRoute>,
    /// Releases with weight > 0 and at least one backend.
    releases: Vec<RoutedRelease>,
    /// Releases with weight 0 but a backend: reachable only through the force header.
    unweighted: Vec<RoutedRelease>,
    total_weight: u64,
}

impl RouteTable {
    fn empty() -> RouteTable {
        RouteTable {
            routes: Vec::new(),
            releases: Vec::new(),
            unweighted: Vec::new(),
            total_weight: 0,
        }
    }

    /// First choice for a request: a release by weight, then a backend in it.
    pub(crate) fn pick(&self, rng: &mut impl Rng) -> Option<(&RoutedRelease, &Arc<BackendState>)> {
        if self.total_weight == 0 {
            return None;
        }
        let point = rng.gen_range(0..self.total_weight);
        let release = self.releases.iter().find(|r| point < r.upper)?;
        Some((release, power_of_two_choices(&release.backends, rng)))
    }

    /// A backend of the release named `release`: among weighted releases, or with
    /// `any_weight` (the force header) also among releases of weight 0.
    pub(crate) fn pick_release(
        &self,
        rng: &mut impl Rng,
        release: &str,
        any_weight: bool,
    ) -> Option<(&RoutedRelease, &Arc<BackendState>)> {
        let weighted = self.releases.iter();
        let found = if any_weight {
            weighted
                .chain(self.unweighted.iter())
                .find(|r| r.stats.release == release)
        } else {
            weighted.clone().find(|r| r.stats.release == release)
        }?;
        Some((found, power_of_two_choices(&found.backends, rng)))
    }

    /// Choice for a retry: a backend not in `tried`, preferably of the release
    /// the request was attributed to, else of any routable release.
    pub(crate) fn pick_retry(
        &self,
        rng: &mut impl Rng,
        prefer: &Arc<ReleaseStats>,
        tried: &[Arc<BackendState>],
    ) -> Option<(&RoutedRelease, &Arc<BackendState>)> {
        if let Some(release) = self.releases.iter().find(|r| Arc::ptr_eq(&r.stats, prefer)) {
            if let Some(backend) = untried_backend(release, tried, rng) {
                return Some((release, backend));
            }
        }
        let len = self.releases.len();
        let start = rng_index(rng, len);
        (0..len)
            .map(|offset| &self.releases[(start + offset) % len])
            .find_map(|release| untried_backend(release, tried, rng).map(|b| (release, b)))
    }
}

/// A backend of `release` not in `tried`, starting the scan at a random one.
fn untried_backend<'a>(
    release: &'a RoutedRelease,
    tried: &[Arc<BackendState>],
    rng: &mut impl Rng,
) -> Option<&'a Arc<BackendState>> {
    let backends = &release.backends;
    let start = rng_index(rng, backends.len());
    (0..backends.len())
        .map(|offset| &backends[(start + offset) % backends.len()])
        .find(|b| !tried.iter().any(|t| Arc::ptr_eq(t, b)))
}

fn rng_index(rng: &mut impl Rng, len: usize) -> usize {
    if len <= 1 {
        0
    } else {
        rng.gen_range(0..len)
    }
}

/// Of two distinct random backends, the one not ejected, else the one with
/// fewer requests in flight: nearly as good as least-loaded, without scanning
/// or shared cursors.
fn power_of_two_choices<'a>(
    backends: &'a [Arc<BackendState>],
    rng: &mut impl Rng,
) -> &'a Arc<BackendState> {
    let n = backends.len();
    if n == 1 {
        return &backends[0];
    }
    let i = rng.gen_range(0..n);
    let mut j = rng.gen_range(0..n - 1);
    if j >= i {
        j += 1;
    }
    let (a, b) = (&backends[i], &backends[j]);
    match (a.is_ejected(), b.is_ejected()) {
        (true, false) => return b,
        (false, true) => return a,
        _ => {}
    }
    if b.in_flight.load(Ordering::Relaxed) < a.in_flight.load(Ordering::Relaxed) {
        b
    } else {
        a
    }
}

/// Owns the current [`RouteTable`] and the backend registry.
pub(crate) struct Router {
    table: ArcSwap<RouteTable>,
    /// Backends by id: those in the current routes plus removed ones that
    /// still have requests in flight. The lock also serialises `set_routes`.
    backends: Mutex<HashMap<String, Arc<BackendState>>>,
    connect_timeout: Duration,
}

impl Router {
    pub(crate) fn new(connect_timeout: Duration) -> Router {
        Router {
            table: ArcSwap::from_pointee(RouteTable::empty()),
            backends: Mutex::new(HashMap::new()),
            connect_timeout,
        }
    }

    /// The current table; hold it only briefly (never across an await).
    pub(crate) fn load(&self) -> Guard<Arc<RouteTable>> {
        self.table.load()
    }

    pub(crate) fn routes(&self) -> Vec<ReleaseRoute> {
        self.table.load().routes.clone()
    }

    pub(crate) fn backend(&self, id: &str) -> Option<Arc<BackendState>> {
        self.registry().get(id).cloned()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<BackendState>>> {
        self.backends.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_routes(&self, routes: Vec<ReleaseRoute>, metrics: &MetricsRegistry) {
        let mut registry = self.registry();

        let mut releases = Vec::new();
        let mut unweighted = Vec::new();
        let mut total_weight = 0u64;
        for route in &routes {
            // Registering the release here makes it show up in metrics (with
            // zeros) as soon as it is routed.
            let stats = metrics.release(&route.release);
            let backends: Vec<Arc<BackendState>> = route
                .backends
                .iter()
                .map(|backend| self.state_for(&mut registry, backend))
                .collect();
            if route.weight > 0 && !backends.is_empty() {
                total_weight += u64::from(route.weight);
                releases.push(RoutedRelease {
                    upper: total_weight,
                    stats,
                    backends,
                });
            } else if !backends.is_empty() {
                unweighted.push(RoutedRelease {
                    upper: 0,
                    stats,
                    backends,
                });
            }
        }

        let routed: HashSet<String> = routes
            .iter()
            .flat_map(|route| route.backends.iter().map(|b| b.id.clone()))
            .collect();
        self.table.store(Arc::new(RouteTable {
            routes,
            releases,
            unweighted,
            total_weight,
        }));

        // Only after the swap: from now on no request may start on these.
        for (id, state) in registry.iter() {
            if !routed.contains(id) {
                state.removed.store(true, Ordering::SeqCst);
            }
        }
        registry.retain(|id, state| routed.contains(id) || state.in_flight() > 0);
    }

    /// The state for `backend`, reusing the existing one (and its pool) when
    /// the id is known with the same address.
    fn state_for(
        &self,
        registry: &mut HashMap<String, Arc<BackendState>>,
        backend: &Backend,
    ) -> Arc<BackendState> {
        if let Some(state) = registry.get(&backend.id) {
            if state.addr == backend.addr {
                state.removed.store(false, Ordering::SeqCst);
                return Arc::clone(state);
            }
            // Same id, new address: the old state only serves requests
            // already in flight.
            state.removed.store(true, Ordering::SeqCst);
        }
        let state = Arc::new(BackendState::new(backend, self.connect_timeout));
        registry.insert(backend.id.clone(), Arc::clone(&state));
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn backend(id: &str, port: u16) -> Backend {
        Backend {
            id: id.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn route(release: &str, weight: u32, backends: Vec<Backend>) -> ReleaseRoute {
        ReleaseRoute {
            release: release.to_owned(),
            weight,
            backends,
        }
    }

    #[tokio::test]
    async fn weighted_pick_follows_weights_and_skips_unroutable() {
        let router = Router::new(Duration::from_secs(1));
        let metrics = MetricsRegistry::default();
        router.set_routes(
            vec![
                route("stable", 90, vec![backend("s1", 1001)]),
                route("canary", 10, vec![backend("c1", 1002)]),
                route("zero", 0, vec![backend("z1", 1003)]),
                route("empty", 50, vec![]),
            ],
            &metrics,
        );
        let table = router.load();
        let mut rng = StdRng::seed_from_u64(7);
        let mut canary = 0;
        for _ in 0..10_000 {
            let (release, backend) = table.pick(&mut rng).unwrap();
            assert!(backend.id == "s1" || backend.id == "c1");
            if release.stats.release == "canary" {
                canary += 1;
            }
        }
        assert!((850..=1150).contains(&canary), "canary got {canary}");
    }

    #[tokio::test]
    async fn retry_prefers_same_release_then_any_untried() {
        let router = Router::new(Duration::from_secs(1));
        let metrics = MetricsRegistry::default();
        router.set_routes(
            vec![
                route("a", 1, vec![backend("a1", 1001), backend("a2", 1002)]),
                route("b", 1, vec![backend("b1", 1003)]),
            ],
            &metrics,
        );
        let table = router.load();
        let mut rng = StdRng::seed_from_u64(1);
        let a = metrics.release("a");
        let a1 = router.backend("a1").unwrap();
        let a2 = router.backend("a2").unwrap();
        let (_, next) = table
            .pick_retry(&mut rng, &a, std::slice::from_ref(&a1))
            .unwrap();
        assert_eq!(next.id, "a2");
        let (release, next) = table.pick_retry(&mut rng, &a, &[a1.clone(), a2]).unwrap();
        assert_eq!(
            (release.stats.release.as_str(), next.id.as_str()),
            ("b", "b1")
        );
        let b1 = router.backend("b1").unwrap();
        let all = [a1, router.backend("a2").unwrap(), b1];
        assert!(table.pick_retry(&mut rng, &a, &all).is_none());
    }

    #[tokio::test]
    async fn removed_backend_refuses_new_requests_and_is_kept_while_busy() {
        let router = Router::new(Duration::from_secs(1));
        let metrics = MetricsRegistry::default();
        router.set_routes(vec![route("a", 1, vec![backend("a1", 1001)])], &metrics);
        let a1 = router.backend("a1").unwrap();
        let guard = a1.acquire().unwrap();
        router.set_routes(vec![route("a", 1, vec![backend("a2", 1002)])], &metrics);
        assert!(a1.acquire().is_none());
        assert_eq!(router.backend("a1").unwrap().in_flight(), 1);
        drop(guard);
        assert!(a1.wait_drained(Duration::from_secs(1)).await);
        router.set_routes(vec![route("a", 1, vec![backend("a2", 1002)])], &metrics);
        assert!(router.backend("a1").is_none());
    }

    #[tokio::test]
    async fn ejected_backend_is_avoided_until_readmitted() {
        let router = Router::new(Duration::from_secs(1));
        let metrics = MetricsRegistry::default();
        router.set_routes(
            vec![route(
                "a",
                1,
                vec![backend("a1", 1001), backend("a2", 1002)],
            )],
            &metrics,
        );
        let table = router.load();
        let mut rng = StdRng::seed_from_u64(3);
        router.backend("a1").unwrap().eject();
        for _ in 0..100 {
            assert_eq!(table.pick(&mut rng).unwrap().1.id, "a2");
        }
        router.backend("a1").unwrap().readmit();
        let picked_a1 = (0..100).any(|_| table.pick(&mut rng).unwrap().1.id == "a1");
        assert!(picked_a1);
    }
}
