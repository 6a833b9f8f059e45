//! The traffic of a service on Kubernetes goes through the cluster's Service to the ready pods
//! of its Deployment: the cluster routes it, and a rolling update moves it pod by pod as the
//! controller replaces them. runway's proxy is not in the path, so there is nothing here for
//! runway to split, count or page: this router says so to the engine (every request goes
//! where the cluster sends it; no request is counted here, a cluster's metrics come from
//! Prometheus) and refuses what only a proxy in the path could do (a preview listener).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use runway_engine::router::{
    AnalysisWindow, BoxFuture, Granularity, MaintenancePage, Preview, ReadOnlyPage, Routers, Split,
    TrafficRouter,
};
use runway_spec::Spec;
use runway_wire::metrics::{ClientErrorCounts, RefusedCounts, ReleaseMetrics, WindowSnapshot};

/// The router of a `[kubernetes]` service (see the module documentation).
#[derive(Debug, Default)]
pub struct ClusterRouter;

/// Makes a [`ClusterRouter`] for each `[kubernetes]` service.
#[derive(Debug, Default)]
pub struct ClusterRouters;

impl Routers for ClusterRouters {
    fn bind<'a>(
        &'a self,
        _service: &'a str,
        _spec: &'a Spec,
    ) -> BoxFuture<'a, Result<Arc<dyn TrafficRouter>, String>> {
        Box::pin(async { Ok(Arc::new(ClusterRouter) as Arc<dyn TrafficRouter>) })
    }
}

struct NoWindow;

impl AnalysisWindow for NoWindow {
    fn take(&self) -> Vec<WindowSnapshot> {
        Vec::new()
    }
}

impl TrafficRouter for ClusterRouter {
    /// The Service spreads requests over the ready pods: a release's share is its share of them.
    fn granularity(&self) -> Granularity {
        Granularity::ReplicaRatio
    }

    fn open(&self) {}

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn set_splits(&self, _splits: Vec<Split>) {}

    fn set_sticky(&self, _sticky: bool) {}

    fn set_maintenance(&self, _page: Option<MaintenancePage>) {}

    fn set_read_only(&self, _page: Option<ReadOnlyPage>) {}

    /// Requests in flight are the pods' to finish (their termination grace period).
    fn in_flight(&self, _endpoint: &str) -> u64 {
        0
    }

    fn wait_drained<'a>(&'a self, _endpoint: &'a str, _within: Duration) -> BoxFuture<'a, bool> {
        Box::pin(async { true })
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
        Box::new(NoWindow)
    }

    fn preview<'a>(
        &'a self,
        _addr: SocketAddr,
        _split: Split,
    ) -> BoxFuture<'a, Result<Box<dyn Preview>, String>> {
        Box::pin(async {
            Err(
                "runway's proxy is not in front of a Kubernetes service: no preview listener"
                    .into(),
            )
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
