//! runway on Kubernetes: a release is the pod template of a Deployment, and the cluster's own
//! Deployment controller rolls it out. runway writes the release into the Deployment, follows
//! the rollout the way `kubectl rollout status` does, and reads the Deployment's history the way
//! `kubectl rollout history` and `undo` do (a revision is a ReplicaSet), so that what runway
//! reports and what kubectl shows never disagree.
//!
//! - [`rollout`]: where a rollout stands (kubectl's rules, on fixture objects in its tests);
//! - [`revision`]: revisions, the template equality the controller uses, undo's choice;
//! - [`template`]: what a release writes into a Deployment, keeping what it did not write;
//! - [`deployment`]: the API calls (read, replace with conflict retry, watch with 410 relist);
//! - [`pods`]: a Deployment's pods as `runway status` shows them;
//! - [`job`]: hooks as Jobs of the release's pod template ([`KubernetesTasks`]);
//! - [`backups`]: backups on a PersistentVolumeClaim, mounted into the Jobs that use them;
//! - [`KubernetesCluster`]: the engine's [`Cluster`] over them, one client per kubeconfig
//!   context.
//!
//! What is tested where (no API server can run on runway's CI machines): the pure logic on
//! fixture objects; the exact requests against a scripted API server (tests/requests.rs); and
//! whole deployments against the stateful fake API server in runway-testkit, which simulates
//! the Deployment controller, with Debian's kubectl pointed at the same fake. A real cluster
//! is what the ignored suite in crates/runway/tests/e2e/kubernetes.rs runs against.

pub mod backups;
pub mod deployment;
pub mod job;
pub mod lease;
pub mod pods;
pub mod revision;
pub mod rollout;
pub mod route;
pub mod router;
pub mod services;
pub mod template;

use std::collections::BTreeMap;
use std::sync::Mutex;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use runway_engine::cluster::{Cluster, Revision, Rolled};
use runway_engine::platform::{LogChunk, LogRead, Progress};
use runway_engine::router::BoxFuture;
use runway_engine::Release;
use runway_wire::api::PodView;
use runway_wire::id::DeploymentId;

use deployment::Target;

/// What went wrong on the cluster, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No client for the configured context (no kubeconfig, an unknown context).
    #[error("cannot reach the cluster: {0}")]
    Connect(String),
    /// The API server refused or failed a request.
    #[error("{what}: {detail}")]
    Api { what: String, detail: String },
    /// The release cannot be written into the Deployment as it is.
    #[error("{0}")]
    Template(String),
    /// The rollout will not finish.
    #[error("{0}")]
    Rollout(String),
}

impl Error {
    /// An API error while doing `what`: the server's status (`403 Forbidden: deployments.apps
    /// "api" is forbidden: ...`), which names what is missing.
    pub fn api(what: String, e: kube::Error) -> Error {
        let detail = match &e {
            kube::Error::Api(status) => {
                let reason = if status.reason.is_empty() {
                    String::new()
                } else {
                    format!(" {}", status.reason)
                };
                format!("{}{reason}: {}", status.code, status.message)
            }
            other => other.to_string(),
        };
        Error::Api { what, detail }
    }
}

/// The engine's [`Cluster`] on Kubernetes: clients made on first use, one per kubeconfig
/// context (`None`: the current context, or the in-cluster config inside a pod).
#[derive(Default)]
pub struct KubernetesCluster {
    clients: Mutex<BTreeMap<Option<String>, Client>>,
}

impl KubernetesCluster {
    /// A client for `context`, as kubectl would connect: `KUBECONFIG` or `~/.kube/config`, or
    /// the service account's own config inside a pod.
    pub async fn client(&self, context: Option<&str>) -> Result<Client, Error> {
        let key = context.map(str::to_owned);
        if let Some(client) = self.lock().get(&key) {
            return Ok(client.clone());
        }
        let config = match context {
            Some(context) => {
                let kubeconfig = Kubeconfig::read().map_err(|e| {
                    Error::Connect(format!(
                        "reading the kubeconfig for context `{context}`: {e}"
                    ))
                })?;
                let options = KubeConfigOptions {
                    context: Some(context.to_owned()),
                    ..Default::default()
                };
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| Error::Connect(format!("context `{context}`: {e}")))?
            }
            None => Config::infer().await.map_err(|e| {
                Error::Connect(format!(
                    "no kubeconfig (KUBECONFIG or ~/.kube/config) and not in a pod: {e}"
                ))
            })?,
        };
        let client = Client::try_from(config).map_err(|e| Error::Connect(e.to_string()))?;
        self.lock().insert(key, client.clone());
        Ok(client)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Option<String>, Client>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn target(&self, release: &Release) -> Result<Target, Error> {
        self.target_in(release, None).await
    }

    /// The service's own Deployment, or blue-green `slot`'s.
    async fn target_in(&self, release: &Release, slot: Option<&str>) -> Result<Target, Error> {
        let k8s = template::section(release).map_err(Error::Template)?;
        let client = self.client(k8s.context.as_deref()).await?;
        Ok(match slot {
            Some(slot) => Target::slot(client, k8s, slot),
            None => Target::new(client, k8s),
        })
    }

    async fn services(&self, release: &Release) -> Result<services::Services, Error> {
        let k8s = template::section(release).map_err(Error::Template)?;
        let client = self.client(k8s.context.as_deref()).await?;
        Ok(services::Services::new(
            client,
            k8s,
            &release.spec.service.name,
        ))
    }
}

impl Cluster for KubernetesCluster {
    fn roll<'a>(
        &'a self,
        release: &'a Release,
        slot: Option<&'a str>,
        progress: &'a Progress<'a>,
    ) -> BoxFuture<'a, Result<Rolled, String>> {
        Box::pin(async move {
            let roll = async {
                let target = self.target_in(release, slot).await?;
                let applied = target.apply(release).await?;
                progress(format!(
                    "Deployment {} runs {} (generation {})",
                    target.path(),
                    template::image(release).map_err(Error::Template)?,
                    applied.metadata.generation.unwrap_or(0)
                ));
                let (done, message) = target.follow(applied, progress).await?;
                Ok::<_, Error>(Rolled {
                    revision: rollout::revision(&done),
                    message,
                })
            };
            roll.await.map_err(|e| e.to_string())
        })
    }

    fn stop<'a>(
        &'a self,
        release: &'a Release,
        slot: Option<&'a str>,
        progress: &'a Progress<'a>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let stop = async {
                let target = self.target_in(release, slot).await?;
                target.stop(progress).await
            };
            stop.await.map_err(|e| e.to_string())
        })
    }

    fn set_weights<'a>(
        &'a self,
        release: &'a Release,
        canary: u32,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let set = async {
                let k8s = template::section(release).map_err(Error::Template)?;
                let client = self.client(k8s.context.as_deref()).await?;
                route::set_weights(client, k8s, &release.spec.service.name, canary).await
            };
            set.await.map_err(|e| e.to_string())
        })
    }

    fn live_slot<'a>(
        &'a self,
        release: &'a Release,
    ) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            let services = self.services(release).await.map_err(|e| e.to_string())?;
            services.live_slot().await.map_err(|e| e.to_string())
        })
    }

    fn select<'a>(
        &'a self,
        release: &'a Release,
        preview: bool,
        slot: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let services = self.services(release).await.map_err(|e| e.to_string())?;
            let role = if preview {
                services::Role::Preview
            } else {
                services::Role::Main
            };
            services.select(role, slot).await.map_err(|e| e.to_string())
        })
    }

    fn pods<'a>(&'a self, release: &'a Release) -> BoxFuture<'a, Result<Vec<PodView>, String>> {
        Box::pin(async move {
            let target = self.target(release).await.map_err(|e| e.to_string())?;
            let pods = target.pods().await.map_err(|e| e.to_string())?;
            Ok(pods.iter().map(pods::view).collect())
        })
    }

    fn delete_pod<'a>(
        &'a self,
        release: &'a Release,
        pod: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let target = self.target(release).await.map_err(|e| e.to_string())?;
            target.delete_pod(pod).await.map_err(|e| e.to_string())
        })
    }

    fn pod_log<'a>(
        &'a self,
        release: &'a Release,
        pod: &'a str,
        read: LogRead,
    ) -> BoxFuture<'a, Result<LogChunk, String>> {
        Box::pin(async move {
            let target = self.target(release).await.map_err(|e| e.to_string())?;
            let (tail, since) = match read {
                LogRead::Tail(n) => (Some(n), None),
                LogRead::Since(after) => (None, Some(after)),
            };
            let raw = target
                .pod_log(pod, tail, since)
                .await
                .map_err(|e| e.to_string())?;
            let (lines, cursor) = pods::log_lines(&raw, since.unwrap_or(0));
            Ok(LogChunk { lines, cursor })
        })
    }

    fn revisions<'a>(
        &'a self,
        release: &'a Release,
    ) -> BoxFuture<'a, Result<Vec<Revision>, String>> {
        Box::pin(async move {
            let target = self.target(release).await.map_err(|e| e.to_string())?;
            let history = target.history().await.map_err(|e| e.to_string())?;
            Ok(history
                .into_iter()
                .map(|r| Revision {
                    number: r.number,
                    deployment: r.deployment_id.map(|id| DeploymentId(id as i64)),
                })
                .collect())
        })
    }
}

/// Hooks as Jobs ([`job`]), on the clients of a [`KubernetesCluster`].
pub struct KubernetesTasks {
    pub cluster: std::sync::Arc<KubernetesCluster>,
}

impl runway_engine::tasks::TaskRunner for KubernetesTasks {
    fn run<'a>(
        &'a self,
        task: runway_engine::tasks::Task<'a>,
    ) -> BoxFuture<'a, (runway_engine::tasks::Outcome, String, String)> {
        Box::pin(async move {
            let run = async {
                let k8s = template::section(task.release).map_err(Error::Template)?;
                let client = self.cluster.client(k8s.context.as_deref()).await?;
                job::run(client, task).await
            };
            run.await.unwrap_or_else(|e| {
                (
                    runway_engine::tasks::Outcome::Failed,
                    e.to_string(),
                    String::new(),
                )
            })
        })
    }
}
