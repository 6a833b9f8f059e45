//! A service at run time: its traffic router, its live replicas, and the one operation allowed
//! at a time.

use runway_wire::id::{DeploymentId, ReplicaId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::router::{Endpoint, Split, TrafficRouter};
use tokio::sync::Notify;

use crate::replica::Replica;

/// What holds a service's operation lock, for the message that refuses a second one.
#[derive(Debug, Clone)]
pub struct Operation {
    pub deployment_id: DeploymentId,
    pub description: String,
}

pub struct Service {
    pub name: String,
    pub listen: SocketAddr,
    /// Where its requests go (the built-in proxy, which owns the listen address).
    pub router: Arc<dyn TrafficRouter>,
    replicas: Mutex<Vec<Arc<Replica>>>,
    /// Notified whenever a replica's routability may have changed.
    pub changed: Arc<Notify>,
    operation: Mutex<Option<Operation>>,
    /// Traffic weights by release during a canary or a blue-green switch. None: each release
    /// weighs as many as its routable replicas (rolling).
    weights: Mutex<Option<BTreeMap<String, u32>>>,
    /// The maintenance page's settings and the health path it lets through, from the newest
    /// config seen (see `Engine::apply_traffic_modes`).
    page: Mutex<(runway_spec::MaintenanceSpec, String)>,
}

/// Releases the operation lock when dropped, whatever way the operation ended.
pub struct OperationGuard(Arc<Service>);

impl Drop for OperationGuard {
    fn drop(&mut self) {
        *lock(&self.0.operation) = None;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Service {
    pub fn new(name: &str, listen: SocketAddr, router: Arc<dyn TrafficRouter>) -> Arc<Service> {
        let service = Arc::new(Service {
            name: name.to_string(),
            listen,
            router,
            replicas: Mutex::new(Vec::new()),
            changed: Arc::new(Notify::new()),
            operation: Mutex::new(None),
            weights: Mutex::new(None),
            page: Mutex::new(super::traffic::default_page()),
        });
        // Health changes arrive from replica tasks; keep the routes in step with them.
        let weak = Arc::downgrade(&service);
        let changed = service.changed.clone();
        tokio::spawn(async move {
            loop {
                changed.notified().await;
                match weak.upgrade() {
                    Some(s) => s.sync_routes(),
                    None => return,
                }
            }
        });
        service
    }

    /// Takes the service's operation lock, or says which operation holds it. `start` runs under
    /// the lock, so recording the operation and taking the lock are one step.
    pub fn begin<T, E>(
        self: &Arc<Self>,
        start: impl FnOnce() -> Result<(Operation, T), E>,
        busy: impl FnOnce(&Operation) -> E,
    ) -> Result<(OperationGuard, T), E> {
        let mut slot = lock(&self.operation);
        if let Some(op) = slot.as_ref() {
            return Err(busy(op));
        }
        let (op, value) = start()?;
        *slot = Some(op);
        Ok((OperationGuard(self.clone()), value))
    }

    pub fn set_page(&self, page: runway_spec::MaintenanceSpec, health_path: String) {
        *lock(&self.page) = (page, health_path);
    }

    pub fn page(&self) -> (runway_spec::MaintenanceSpec, String) {
        lock(&self.page).clone()
    }

    pub fn operation(&self) -> Option<Operation> {
        lock(&self.operation).clone()
    }

    pub fn replicas(&self) -> Vec<Arc<Replica>> {
        lock(&self.replicas).clone()
    }

    pub fn add_replica(&self, replica: Arc<Replica>) {
        lock(&self.replicas).push(replica);
    }

    pub fn remove_replica(&self, id: ReplicaId) {
        lock(&self.replicas).retain(|r| r.id != id);
    }

    /// Sets (or with None, clears) explicit per-release weights, and applies them at once.
    pub fn set_weights(&self, weights: Option<BTreeMap<String, u32>>) {
        let mut current = lock(&self.weights);
        *current = weights;
        self.route(&current);
    }

    pub fn weights(&self) -> Option<BTreeMap<String, u32>> {
        lock(&self.weights).clone()
    }

    /// Routes every routable replica (see [`splits`]).
    pub fn sync_routes(&self) {
        let weights = lock(&self.weights);
        self.route(&weights);
    }

    /// Sets the routes from the replicas and `weights`, whose lock the caller holds until
    /// the routes are set: two syncs at once (a health change's and a canary step's) then
    /// set them one after the other, each from what is current, and the older routes can
    /// never land last (a canary step's weight overwritten by routes computed just before
    /// it, for good: its canary got no request).
    fn route(&self, weights: &Option<BTreeMap<String, u32>>) {
        let routable: Vec<(String, Endpoint)> = self
            .replicas()
            .iter()
            .filter(|r| r.routable())
            .map(|r| {
                let endpoint = Endpoint {
                    id: r.name.clone(),
                    addr: r.endpoint(),
                };
                (r.version.clone(), endpoint)
            })
            .collect();
        self.router.set_splits(splits(routable, weights.as_ref()));
    }
}

/// The splits for the routable endpoints (by release). Without explicit weights each release
/// weighs as many as its routable endpoints, so a rolling update spreads requests evenly over
/// replicas whatever their version; with them (canary, blue-green), a release missing from the
/// map gets none.
pub fn splits(
    routable: Vec<(String, Endpoint)>,
    weights: Option<&BTreeMap<String, u32>>,
) -> Vec<Split> {
    let mut by_release: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
    for (release, endpoint) in routable {
        by_release.entry(release).or_default().push(endpoint);
    }
    by_release
        .into_iter()
        .map(|(release, endpoints)| Split {
            weight: match weights {
                Some(w) => w.get(&release).copied().unwrap_or(0),
                None => endpoints.len() as u32,
            },
            release,
            endpoints,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{splits, Endpoint};

    fn at(release: &str, name: &str, port: u16) -> (String, Endpoint) {
        let endpoint = Endpoint {
            id: name.into(),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        };
        (release.into(), endpoint)
    }

    fn weights_of(splits: &[super::Split]) -> Vec<(&str, u32, usize)> {
        splits
            .iter()
            .map(|s| (s.release.as_str(), s.weight, s.endpoints.len()))
            .collect()
    }

    #[test]
    fn rolling_weighs_each_release_by_its_routable_replicas() {
        let routable = vec![
            at("v1", "web-1", 1),
            at("v2", "web-4", 4),
            at("v1", "web-2", 2),
        ];
        assert_eq!(
            weights_of(&splits(routable, None)),
            vec![("v1", 2, 2), ("v2", 1, 1)]
        );
        assert!(splits(Vec::new(), None).is_empty());
    }

    #[test]
    fn explicit_weights_decide_and_a_release_not_named_gets_none() {
        let routable = vec![
            at("v1", "web-1", 1),
            at("v2", "web-4", 4),
            at("v3", "web-7", 7),
        ];
        let weights = BTreeMap::from([("v1".to_string(), 90), ("v2".to_string(), 10)]);
        assert_eq!(
            weights_of(&splits(routable, Some(&weights))),
            vec![("v1", 90, 1), ("v2", 10, 1), ("v3", 0, 1)]
        );
    }
}
