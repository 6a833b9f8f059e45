//! A cluster that rolls instantly: each service's Deployment is a list of revisions, kept the
//! way the Deployment controller keeps them (a release it already has a revision of moves to a
//! new revision number, as a template it already has a ReplicaSet for does). A version can be
//! scripted to fail its rollout, as a release whose pods never become ready fails at its
//! progress deadline. Blue-green slots are Deployments of their own (`web-blue`), and the
//! Services' selectors a table.

use std::collections::BTreeMap;
use std::sync::Mutex;

use runway_engine::cluster::{Cluster, Revision, Rolled};
use runway_engine::platform::{LogChunk, LogRead, Progress};
use runway_engine::router::BoxFuture;
use runway_engine::Release;
use runway_wire::api::PodView;
use runway_wire::id::DeploymentId;

#[derive(Default)]
pub struct FakeCluster {
    /// By Deployment (`web`, or a slot's `web-blue`): (revision, the deployment whose release
    /// it runs), oldest first.
    revisions: Mutex<BTreeMap<String, Vec<(u64, DeploymentId)>>>,
    /// The slot each Service selects, by Service (`web`, `web-preview`).
    selected: Mutex<BTreeMap<String, String>>,
    /// Versions whose rollout fails, with the cluster's words.
    failing: Mutex<BTreeMap<String, String>>,
    /// Every rollout asked for: (service, version).
    rolled: Mutex<Vec<(String, String)>>,
    /// Every Deployment scaled to zero, in order.
    stopped: Mutex<Vec<String>>,
    /// Every pod deleted, in order.
    deleted: Mutex<Vec<String>>,
    /// Every canary weight a route was given: (service, weight).
    weights: Mutex<Vec<(String, u32)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeCluster {
    /// From now on, rollouts of `version` fail with `message`.
    pub fn fail(&self, version: &str, message: &str) {
        lock(&self.failing).insert(version.into(), message.into());
    }

    /// Every rollout asked for, as (service, version), in order.
    pub fn rolled(&self) -> Vec<(String, String)> {
        lock(&self.rolled).clone()
    }

    /// Every Deployment scaled to zero (recreate, blue-green's scale-down), in order.
    pub fn stopped(&self) -> Vec<String> {
        lock(&self.stopped).clone()
    }

    /// Every canary weight a Gateway API route was given, as (service, weight), in order.
    pub fn weights(&self) -> Vec<(String, u32)> {
        lock(&self.weights).clone()
    }

    /// Every pod deleted (`nodes restart`), in order.
    pub fn deleted(&self) -> Vec<String> {
        lock(&self.deleted).clone()
    }

    /// The slot Service `service` (`web`, `web-preview`) selects.
    pub fn selected(&self, service: &str) -> Option<String> {
        lock(&self.selected).get(service).cloned()
    }

    /// The deployment whose release Deployment `service` (or a slot's, `web-blue`) runs now.
    pub fn running(&self, service: &str) -> Option<DeploymentId> {
        lock(&self.revisions)
            .get(service)
            .and_then(|r| r.last())
            .map(|&(_, id)| id)
    }
}

impl Cluster for FakeCluster {
    fn roll<'a>(
        &'a self,
        release: &'a Release,
        slot: Option<&'a str>,
        progress: &'a Progress<'a>,
    ) -> BoxFuture<'a, Result<Rolled, String>> {
        Box::pin(async move {
            let service = deployment_of(release, slot);
            lock(&self.rolled).push((service.clone(), release.version.clone()));
            let revision = {
                let mut all = lock(&self.revisions);
                let revisions = all.entry(service.clone()).or_default();
                let newest = revisions.last().map_or(0, |&(n, _)| n);
                if revisions.last().map(|&(_, id)| id) == Some(release.id) {
                    newest
                } else {
                    revisions.retain(|&(_, id)| id != release.id);
                    revisions.push((newest + 1, release.id));
                    newest + 1
                }
            };
            let replicas = release.spec.run.replicas;
            progress(format!(
                "Waiting for deployment \"{service}\" rollout to finish: 0 of {replicas} updated \
                 replicas are available..."
            ));
            if let Some(message) = lock(&self.failing).get(&release.version) {
                return Err(message.clone());
            }
            Ok(Rolled {
                revision,
                message: format!("deployment \"{service}\" successfully rolled out"),
            })
        })
    }

    fn set_weights<'a>(
        &'a self,
        release: &'a Release,
        canary: u32,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            lock(&self.weights).push((release.spec.service.name.clone(), canary));
            Ok(())
        })
    }

    fn live_slot<'a>(
        &'a self,
        release: &'a Release,
    ) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move { Ok(self.selected(&release.spec.service.name)) })
    }

    fn select<'a>(
        &'a self,
        release: &'a Release,
        preview: bool,
        slot: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let service = &release.spec.service.name;
            let name = if preview {
                format!("{service}-preview")
            } else {
                service.clone()
            };
            lock(&self.selected).insert(name, slot.to_string());
            Ok(())
        })
    }

    fn stop<'a>(
        &'a self,
        release: &'a Release,
        slot: Option<&'a str>,
        progress: &'a Progress<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let service = deployment_of(release, slot);
            lock(&self.stopped).push(service.clone());
            progress(format!("Deployment \"{service}\" scaled to 0"));
            Ok(())
        })
    }

    fn delete_pod<'a>(
        &'a self,
        release: &'a Release,
        pod: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let known = (0..release.spec.run.replicas)
                .any(|i| format!("{}-{i}", release.spec.service.name) == pod);
            if !known {
                return Err(format!("pods \"{pod}\" not found"));
            }
            lock(&self.deleted).push(pod.to_string());
            Ok(())
        })
    }

    /// Each pod says its name and version, once.
    fn pod_log<'a>(
        &'a self,
        release: &'a Release,
        pod: &'a str,
        read: LogRead,
    ) -> BoxFuture<'a, Result<LogChunk, String>> {
        Box::pin(async move {
            let lines = match read {
                LogRead::Tail(_) => vec![format!("{pod} serving {}", release.version)],
                LogRead::Since(_) => Vec::new(),
            };
            Ok(LogChunk { lines, cursor: 1 })
        })
    }

    /// One ready pod per replica of the release the Deployment runs.
    fn pods<'a>(&'a self, release: &'a Release) -> BoxFuture<'a, Result<Vec<PodView>, String>> {
        Box::pin(async move {
            let service = &release.spec.service.name;
            Ok((0..release.spec.run.replicas)
                .map(|i| PodView {
                    name: format!("{service}-{i}"),
                    version: Some(release.version.clone()),
                    node: Some("node-1".into()),
                    phase: "Running".into(),
                    ready: true,
                    restarts: 0,
                    waiting: None,
                })
                .collect())
        })
    }

    fn revisions<'a>(
        &'a self,
        release: &'a Release,
    ) -> BoxFuture<'a, Result<Vec<Revision>, String>> {
        Box::pin(async move {
            Ok(lock(&self.revisions)
                .get(&release.spec.service.name)
                .into_iter()
                .flatten()
                .map(|&(number, id)| Revision {
                    number,
                    deployment: Some(id),
                })
                .collect())
        })
    }
}

/// The Deployment a release of `release`'s service runs in: the service's, or a slot's.
fn deployment_of(release: &Release, slot: Option<&str>) -> String {
    let service = &release.spec.service.name;
    match slot {
        Some(slot) => format!("{service}-{slot}"),
        None => service.clone(),
    }
}
