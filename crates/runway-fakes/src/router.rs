//! A traffic router that routes nothing: it keeps the splits, modes and previews the engine
//! sets (and every split it was ever given, for tests of what traffic saw), and its analysis
//! windows report the traffic a test scripts for each release.
//!
//! Requests in flight are scripted per endpoint ([`FakeRouter::hold`]: so many requests that
//! finish at a virtual time), and every drain the engine waits for is recorded with whether the
//! endpoint was still routed then. Not modelled: per-request weights (a scripted release's
//! numbers do not depend on its weight; a test that wants "the canary got 10%" scripts 10% of
//! the requests).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use runway_engine::router::{
    AnalysisWindow, BoxFuture, Granularity, MaintenancePage, Preview, ReadOnlyPage, Routers, Split,
    TrafficRouter,
};
use runway_spec::Spec;
use runway_wire::metrics::{ClientErrorCounts, RefusedCounts, ReleaseMetrics, WindowSnapshot};

/// What a release serves while it has a weight: `requests` requests a second, `errors` of them
/// failed, each taking `latency`. A window sees as many as the (virtual) time since that
/// window's last take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic {
    pub requests: u64,
    pub errors: u64,
    pub latency: Duration,
}

impl Traffic {
    /// `requests` a second, `errors` of them failed.
    pub fn new(requests: u64, errors: u64, latency: Duration) -> Traffic {
        Traffic {
            requests,
            errors,
            latency,
        }
    }
}

#[derive(Default)]
struct State {
    open: bool,
    closed: bool,
    splits: Vec<Split>,
    history: Vec<Vec<Split>>,
    sticky: bool,
    maintenance: Option<MaintenancePage>,
    read_only: Option<ReadOnlyPage>,
    traffic: BTreeMap<String, Traffic>,
    previews: usize,
    /// `None`: per request, as the built-in proxy.
    granularity: Option<Granularity>,
    /// Requests in flight to an endpoint and when they finish.
    in_flight: BTreeMap<String, (u64, tokio::time::Instant)>,
    /// An endpoint without a hold of its own that starts draining has one request that
    /// finishes this long after.
    every_drain: Option<Duration>,
    drains: Vec<Drain>,
}

/// A drain the engine waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drain {
    pub endpoint: String,
    /// Whether the endpoint was still in a split when the engine began waiting (it must not
    /// be: a routed endpoint keeps getting requests and never drains).
    pub still_routed: bool,
    /// Requests in flight when it began.
    pub in_flight: u64,
}

/// The router of one service.
#[derive(Default)]
pub struct FakeRouter {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeRouter {
    /// Each analysis window from now on sees `traffic` for release `version` (while it has a
    /// weight).
    pub fn script(&self, version: &str, traffic: Traffic) {
        lock(&self.state)
            .traffic
            .insert(version.to_string(), traffic);
    }

    /// From now on the router splits this finely (a cluster's router that can only switch).
    pub fn set_granularity(&self, granularity: Granularity) {
        lock(&self.state).granularity = Some(granularity);
    }

    /// `requests` requests are in flight to `endpoint` (a replica's name) from now, all
    /// finishing after `for_` of (virtual) time.
    pub fn hold(&self, endpoint: &str, requests: u64, for_: Duration) {
        lock(&self.state).in_flight.insert(
            endpoint.to_string(),
            (requests, tokio::time::Instant::now() + for_),
        );
    }

    /// From now on each endpoint that begins to drain without a [`hold`](Self::hold) of its
    /// own has a request in flight for `for_` more (a slow retirement, to crash in the
    /// middle of).
    pub fn hold_every_drain(&self, for_: Duration) {
        lock(&self.state).every_drain = Some(for_);
    }

    /// Every drain the engine waited for, in order.
    pub fn drains(&self) -> Vec<Drain> {
        lock(&self.state).drains.clone()
    }

    /// The current splits.
    pub fn splits(&self) -> Vec<Split> {
        lock(&self.state).splits.clone()
    }

    /// Every set of splits the engine set, in order.
    pub fn history(&self) -> Vec<Vec<Split>> {
        lock(&self.state).history.clone()
    }

    /// Each release's weight now (releases without endpoints left out).
    pub fn weights(&self) -> BTreeMap<String, u32> {
        lock(&self.state)
            .splits
            .iter()
            .filter(|s| !s.endpoints.is_empty())
            .map(|s| (s.release.clone(), s.weight))
            .collect()
    }

    /// Each release's number of endpoints now.
    pub fn endpoints(&self) -> BTreeMap<String, usize> {
        lock(&self.state)
            .splits
            .iter()
            .map(|s| (s.release.clone(), s.endpoints.len()))
            .collect()
    }

    pub fn is_open(&self) -> bool {
        lock(&self.state).open
    }

    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    pub fn maintenance(&self) -> Option<MaintenancePage> {
        lock(&self.state).maintenance.clone()
    }

    pub fn read_only(&self) -> Option<ReadOnlyPage> {
        lock(&self.state).read_only.clone()
    }

    pub fn sticky(&self) -> bool {
        lock(&self.state).sticky
    }

    /// Previews open now.
    pub fn previews(&self) -> usize {
        lock(&self.state).previews
    }
}

impl FakeRouter {
    fn in_flight_locked(&self, state: &State, endpoint: &str) -> u64 {
        match state.in_flight.get(endpoint) {
            Some((requests, until)) if tokio::time::Instant::now() < *until => *requests,
            _ => 0,
        }
    }
}

impl TrafficRouter for FakeRouter {
    fn granularity(&self) -> Granularity {
        lock(&self.state)
            .granularity
            .unwrap_or(Granularity::PerRequest)
    }

    fn open(&self) {
        lock(&self.state).open = true;
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        let mut state = lock(&self.state);
        state.open = false;
        state.closed = true;
        Box::pin(async {})
    }

    fn set_splits(&self, splits: Vec<Split>) {
        let mut state = lock(&self.state);
        state.history.push(splits.clone());
        state.splits = splits;
    }

    fn set_sticky(&self, sticky: bool) {
        lock(&self.state).sticky = sticky;
    }

    fn set_maintenance(&self, page: Option<MaintenancePage>) {
        lock(&self.state).maintenance = page;
    }

    fn set_read_only(&self, page: Option<ReadOnlyPage>) {
        lock(&self.state).read_only = page;
    }

    fn in_flight(&self, endpoint: &str) -> u64 {
        self.in_flight_locked(&lock(&self.state), endpoint)
    }

    fn wait_drained<'a>(&'a self, endpoint: &'a str, within: Duration) -> BoxFuture<'a, bool> {
        let until = {
            let mut state = lock(&self.state);
            if let Some(for_) = state.every_drain {
                if !state.in_flight.contains_key(endpoint) {
                    let until = tokio::time::Instant::now() + for_;
                    state.in_flight.insert(endpoint.to_string(), (1, until));
                }
            }
            let still_routed = state
                .splits
                .iter()
                .any(|s| s.endpoints.iter().any(|e| e.id == endpoint));
            let in_flight = self.in_flight_locked(&state, endpoint);
            state.drains.push(Drain {
                endpoint: endpoint.to_string(),
                still_routed,
                in_flight,
            });
            state.in_flight.get(endpoint).map(|(_, until)| *until)
        };
        Box::pin(async move {
            let now = tokio::time::Instant::now();
            let Some(until) = until.filter(|u| *u > now) else {
                return true;
            };
            let deadline = now + within;
            tokio::time::sleep_until(until.min(deadline)).await;
            until <= deadline
        })
    }

    fn metrics(&self) -> Vec<ReleaseMetrics> {
        Vec::new()
    }

    fn refused(&self) -> RefusedCounts {
        RefusedCounts::default()
    }

    fn client_errors(&self) -> ClientErrorCounts {
        ClientErrorCounts::default()
    }

    fn open_window(&self) -> Box<dyn AnalysisWindow> {
        Box::new(FakeWindow {
            state: self.state.clone(),
            since: Mutex::new(tokio::time::Instant::now()),
        })
    }

    fn force_header(&self) -> Option<&'static str> {
        Some("x-fake-release")
    }

    fn preview<'a>(
        &'a self,
        _addr: SocketAddr,
        _split: Split,
    ) -> BoxFuture<'a, Result<Box<dyn Preview>, String>> {
        lock(&self.state).previews += 1;
        let state = self.state.clone();
        Box::pin(async move { Ok(Box::new(FakePreview { state }) as Box<dyn Preview>) })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// One reader's window: what each weighted release served since this reader's last take (or
/// since it opened), at the scripted rates. Two readers never see each other's takes.
struct FakeWindow {
    state: Arc<Mutex<State>>,
    since: Mutex<tokio::time::Instant>,
}

/// Most latencies a window keeps per release, as the proxy's does.
const WINDOW_SAMPLES: u64 = 20_000;

impl AnalysisWindow for FakeWindow {
    fn take(&self) -> Vec<WindowSnapshot> {
        let now = tokio::time::Instant::now();
        let seconds = {
            let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
            let seconds = now.duration_since(*since).as_secs_f64();
            *since = now;
            seconds
        };
        let state = lock(&self.state);
        state
            .splits
            .iter()
            .filter(|s| s.weight > 0 && !s.endpoints.is_empty())
            .map(|s| {
                let traffic = state.traffic.get(&s.release).copied();
                let traffic = traffic.unwrap_or(Traffic::new(0, 0, Duration::ZERO));
                let requests = (traffic.requests as f64 * seconds).round() as u64;
                let errors = (traffic.errors as f64 * seconds).round() as u64;
                let samples = requests.min(WINDOW_SAMPLES) as usize;
                WindowSnapshot {
                    release: s.release.clone(),
                    requests,
                    errors: errors.min(requests),
                    latencies: vec![traffic.latency.as_secs_f64(); samples],
                }
            })
            .collect()
    }
}

struct FakePreview {
    state: Arc<Mutex<State>>,
}

impl Preview for FakePreview {}

impl Drop for FakePreview {
    fn drop(&mut self) {
        lock(&self.state).previews -= 1;
    }
}

/// Makes one [`FakeRouter`] per service, and hands the same one out again after a "restart"
/// (a new engine on the same fakes), as a listener taken over would be.
#[derive(Default)]
pub struct FakeRouters {
    routers: Mutex<BTreeMap<String, Arc<FakeRouter>>>,
}

impl FakeRouters {
    /// The router of `service`, once the engine has made it.
    pub fn of(&self, service: &str) -> Option<Arc<FakeRouter>> {
        self.routers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(service)
            .cloned()
    }
}

impl Routers for FakeRouters {
    fn bind<'a>(
        &'a self,
        service: &'a str,
        _spec: &'a Spec,
    ) -> BoxFuture<'a, Result<Arc<dyn TrafficRouter>, String>> {
        let router = self
            .routers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(service.to_string())
            .or_default()
            .clone();
        // A new server's router starts closed and routes nothing, as a freshly bound listener
        // does; the traffic a test scripted stays.
        {
            let mut state = lock(&router.state);
            state.open = false;
            state.closed = false;
            state.splits.clear();
            state.maintenance = None;
            state.read_only = None;
        }
        Box::pin(async move { Ok(router as Arc<dyn TrafficRouter>) })
    }
}
