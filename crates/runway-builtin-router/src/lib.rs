//! runway's built-in proxy (crates/runway-proxy) as the engine's [`TrafficRouter`]: it owns
//! the service's listen address, splits per request, and measures every request per release.
//! The router of local processes and of Docker containers, both reached on loopback ports.

pub mod listeners;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use runway_proxy::{
    Backend, ClientErrorCounts, MetricsWindow, Proxy, ProxyConfig, RefusedCounts, ReleaseMetrics,
    ReleaseRoute, WindowSnapshot,
};
use tokio_util::sync::CancellationToken;

use runway_engine::router::{
    AnalysisWindow, BoxFuture, Granularity, MaintenancePage, Preview, ReadOnlyPage, Routers, Split,
    TrafficRouter,
};
use runway_spec::Spec;

/// Binds a [`BuiltinRouter`] on each service's `[service] listen`.
pub struct BuiltinRouters;

impl Routers for BuiltinRouters {
    fn bind<'a>(
        &'a self,
        service: &'a str,
        spec: &'a Spec,
    ) -> BoxFuture<'a, Result<Arc<dyn TrafficRouter>, String>> {
        Box::pin(async move {
            let router = BuiltinRouter::bind(service, spec.service.listen)
                .await
                .map_err(|e| format!("{e}; choose a free address in [service] listen"))?;
            Ok(Arc::new(router) as Arc<dyn TrafficRouter>)
        })
    }
}

pub struct BuiltinRouter {
    proxy: Proxy,
    /// Whether the proxy accepts connections yet (see [`TrafficRouter::open`]).
    gate: tokio::sync::watch::Sender<bool>,
    /// Cancelled by [`TrafficRouter::close`]: the proxy stops listening.
    closed: CancellationToken,
    /// True once the proxy's task has dropped the listener.
    released: tokio::sync::watch::Receiver<bool>,
}

/// How long `hand_over` waits for the proxy's connections to finish.
const HAND_OVER_WAIT: Duration = Duration::from_secs(12);

/// How long `close` waits for the proxy to let go of its address.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

impl BuiltinRouter {
    /// The proxy, for the server's Prometheus endpoint (every service's metrics together).
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// Binds `listen` for `service` and serves it once opened.
    /// A listener handed over (systemd, the previous server) for that address is taken
    /// instead of binding (see [`listeners`]).
    pub async fn bind(service: &str, listen: SocketAddr) -> Result<BuiltinRouter, String> {
        let listener = match listeners::take_adopted(listen) {
            Some(adopted) => adopted
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(adopted)),
            None => tokio::net::TcpListener::bind(listen).await,
        }
        .map_err(|e| format!("cannot listen on {listen} for service `{service}`: {e}"))?;
        listeners::set_live(service, &listener);
        let (released, released_rx) = tokio::sync::watch::channel(false);
        let router = BuiltinRouter {
            proxy: Proxy::new(service, ProxyConfig::default()),
            gate: tokio::sync::watch::Sender::new(false),
            closed: CancellationToken::new(),
            released: released_rx,
        };
        let proxy = router.proxy.clone();
        let mut gate = router.gate.subscribe();
        let closed = router.closed.clone();
        tokio::spawn(async move {
            // Closed before it ever opened (a service removed while recovering): the listener
            // goes now.
            let opened = tokio::select! {
                opened = gate.wait_for(|open| *open) => opened.is_ok(),
                () = closed.cancelled() => false,
            };
            if opened {
                if let Err(e) = proxy.serve(listener, closed.cancelled_owned()).await {
                    tracing::error!("proxy stopped: {e}");
                }
            } else {
                drop(listener);
            }
            // `serve` has returned (or never ran): the listener is dropped, the address free.
            released.send_replace(true);
        });
        Ok(router)
    }
}

fn routes(splits: Vec<Split>) -> Vec<ReleaseRoute> {
    splits
        .into_iter()
        .map(|split| ReleaseRoute {
            release: split.release,
            weight: split.weight,
            backends: split
                .endpoints
                .into_iter()
                .map(|e| Backend {
                    id: e.id,
                    addr: e.addr,
                })
                .collect(),
        })
        .collect()
}

struct Window(MetricsWindow);

impl AnalysisWindow for Window {
    fn take(&self) -> Vec<WindowSnapshot> {
        self.0.take()
    }
}

/// A preview proxy; dropping it stops it.
struct ProxyPreview {
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Preview for ProxyPreview {}

impl TrafficRouter for BuiltinRouter {
    fn granularity(&self) -> Granularity {
        Granularity::PerRequest
    }

    fn open(&self) {
        self.gate.send_replace(true);
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        listeners::unset_live(self.proxy.service());
        self.closed.cancel();
        let mut released = self.released.clone();
        Box::pin(async move {
            // A proxy that does not let go within this long is logged, not waited for.
            let wait = released.wait_for(|free| *free);
            if tokio::time::timeout(CLOSE_WAIT, wait).await.is_err() {
                tracing::warn!(service = %self.proxy.service(), "the proxy still holds its address");
            }
        })
    }

    fn hand_over(&self) -> BoxFuture<'_, ()> {
        listeners::unset_live(self.proxy.service());
        self.closed.cancel();
        let mut released = self.released.clone();
        Box::pin(async move {
            // The proxy drains for at most 10 s (runway-proxy's SHUTDOWN_GRACE).
            let wait = released.wait_for(|free| *free);
            if tokio::time::timeout(HAND_OVER_WAIT, wait).await.is_err() {
                tracing::warn!(service = %self.proxy.service(), "connections still open at the handover");
            }
        })
    }

    fn set_splits(&self, splits: Vec<Split>) {
        self.proxy.set_routes(routes(splits));
    }

    fn set_sticky(&self, sticky: bool) {
        self.proxy.set_sticky(sticky);
    }

    fn set_client_limits(&self, limits: &runway_spec::ProxySpec) {
        self.proxy.set_client_limits(&runway_proxy::ClientSettings {
            header_timeout: limits.header_timeout.into(),
            idle_timeout: limits.idle_timeout.into(),
            body_timeout: limits.body_timeout.into(),
            send_timeout: limits.send_timeout.into(),
            h2c_upgrade: limits.h2c_upgrade,
        });
    }

    fn set_maintenance(&self, page: Option<MaintenancePage>) {
        self.proxy
            .set_maintenance(page.map(|p| runway_proxy::Maintenance {
                message: p.message,
                retry_after: p.retry_after,
                allow: p.allow,
            }));
    }

    fn set_read_only(&self, page: Option<ReadOnlyPage>) {
        self.proxy
            .set_read_only(page.map(|p| runway_proxy::ReadOnly {
                message: p.message,
                retry_after: p.retry_after,
            }));
    }

    fn in_flight(&self, endpoint: &str) -> u64 {
        self.proxy.in_flight(endpoint)
    }

    fn wait_drained<'a>(&'a self, endpoint: &'a str, within: Duration) -> BoxFuture<'a, bool> {
        Box::pin(self.proxy.wait_drained(endpoint, within))
    }

    fn metrics(&self) -> Vec<ReleaseMetrics> {
        self.proxy.metrics()
    }

    fn refused(&self) -> RefusedCounts {
        self.proxy.refused()
    }

    fn client_errors(&self) -> ClientErrorCounts {
        self.proxy.client_errors()
    }

    fn open_window(&self) -> Box<dyn AnalysisWindow> {
        Box::new(Window(self.proxy.open_window()))
    }

    fn preview<'a>(
        &'a self,
        addr: SocketAddr,
        split: Split,
    ) -> BoxFuture<'a, Result<Box<dyn Preview>, String>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on the preview address {addr}: {e}"))?;
            let name = format!("{}-preview", self.proxy.service());
            let preview = Proxy::new(&name, ProxyConfig::default());
            preview.set_routes(routes(vec![split]));
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                let _ = preview
                    .serve(listener, async {
                        let _ = stopped.await;
                    })
                    .await;
            });
            Ok(Box::new(ProxyPreview { _stop: stop }) as Box<dyn Preview>)
        })
    }

    fn force_header(&self) -> Option<&'static str> {
        Some(runway_proxy::FORCE_HEADER)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
