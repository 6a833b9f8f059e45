//! A cluster that rolls instantly: each service's Deployment is a list of revisions, kept the
//! way the Deployment controller keeps them (a release it already has a revision of moves to a
//! new revision number, as a template it already has a ReplicaSet for does). A version can be
//! scripted to fail its rollout, as a release whose pods never become ready fails at its
//! progress deadline.

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
    /// By service: (revision, the deployment whose release it runs), oldest first.
    revisions: Mutex<BTreeMap<String, Vec<(u64, DeploymentId)>>>,
    /// Versions whose rollout fails, with the cluster's words.
    failing: Mutex<BTreeMap<String, String>>,
    /// Every rollout asked for: (service, version).
    rolled: Mutex<Vec<(String, String)>>,
    /// Every service whose Deployment was scaled to zero, in order.
    stopped: Mutex<Vec<String>>,
    /// Every pod deleted, in order.
    deleted: Mutex<Vec<String>>,
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

    /// Every service whose Deployment was scaled to zero (recreate), in order.
    pub fn stopped(&self) -> Vec<String> {
        lock(&self.stopped).clone()
    }

    /// Every pod deleted (`nodes restart`), in order.
    pub fn deleted(&self) -> Vec<String> {
        lock(&self.deleted).clone()
    }

    /// The deployment whose release `service`'s Deployment runs now.
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
        progress: &'a Progress<'a>,
    ) -> BoxFuture<'a, Result<Rolled, String>> {
        Box::pin(async move {
            let service = release.spec.service.name.clone();
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

    fn stop<'a>(
        &'a self,
        release: &'a Release,
        progress: &'a Progress<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let service = release.spec.service.name.clone();
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
