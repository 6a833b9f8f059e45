//! One service's Deployment, driven through the API: writing a release into it, following its
//! rollout, reading its history.
//!
//! Writes are a read and a `replace` carrying the read's `resourceVersion`, so a change made by
//! someone else in between is a 409 Conflict, never silently overwritten: runway reads again
//! and writes its release into what is there now. The rollout is followed by a watch on the
//! one Deployment, from the version it wrote; a watch that ends (the server's timeout) or
//! expires (410 Gone: the version is too old to resume from) is picked up from a fresh read,
//! as kube-runtime's watcher and `kubectl rollout status` do.

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use runway_engine::platform::Progress;
use runway_engine::Release;
use runway_spec::KubernetesSpec;

use crate::revision::{self, Revision};
use crate::rollout::{self, Rollout};
use crate::{template, Error};

/// How many times a write is tried again after a conflict before runway gives up.
const CONFLICT_RETRIES: usize = 5;

/// The longest a single watch request asks the server to stay open (the API server's own
/// limit is about 5 minutes; it may end one sooner).
const WATCH_TIMEOUT: u32 = 290;

/// Beyond the progress deadline, how long runway waits without any change before it decides
/// nobody is rolling the Deployment (no controller would report the deadline as passed).
const SILENCE_MARGIN: Duration = Duration::from_secs(30);

/// A service's Deployment on its cluster: the API handles and names a rollout needs.
pub struct Target {
    deployments: Api<Deployment>,
    secrets: Api<Secret>,
    replica_sets: Api<ReplicaSet>,
    pods: Api<Pod>,
    name: String,
    namespace: String,
    /// The container that runs the release (the one whose log `runway logs` reads).
    container: String,
    progress_deadline: Duration,
    /// The blue-green slot this Deployment is, and the service's own Deployment it starts
    /// from; `None` for the service's own Deployment.
    slot: Option<(String, String)>,
}

impl Target {
    pub fn new(client: Client, k8s: &KubernetesSpec) -> Target {
        Target {
            deployments: Api::namespaced(client.clone(), &k8s.namespace),
            secrets: Api::namespaced(client.clone(), &k8s.namespace),
            replica_sets: Api::namespaced(client.clone(), &k8s.namespace),
            pods: Api::namespaced(client, &k8s.namespace),
            name: k8s.deployment.clone(),
            namespace: k8s.namespace.clone(),
            container: k8s.container.clone(),
            progress_deadline: k8s.progress_deadline.0,
            slot: None,
        }
    }

    /// The Deployment of blue-green slot `slot` (see [`template::slot_deployment`]).
    pub fn slot(client: Client, k8s: &KubernetesSpec, slot: &str) -> Target {
        Target {
            name: template::slot_name(k8s, slot),
            slot: Some((slot.to_string(), k8s.deployment.clone())),
            ..Target::new(client, k8s)
        }
    }

    /// Creates the Secret object that holds `release`'s secret values (see
    /// [`template::secret`]) unless it is there: it is immutable and named by the release, so
    /// one that exists holds these very versions.
    async fn ensure_secret(&self, release: &Release) -> Result<(), Error> {
        let Some(secret) = template::secret(release).map_err(Error::Template)? else {
            return Ok(());
        };
        let name = secret.metadata.name.clone().unwrap_or_default();
        match self.secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(e) => Err(Error::api(
                format!("creating Secret {}/{name}", self.namespace),
                e,
            )),
        }
    }

    /// `namespace/name`, for messages.
    pub fn path(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Writes `release` into the Deployment (creating it when there is none) and returns it as
    /// the server stored it. A Deployment that already runs exactly the release is returned
    /// unchanged (a resumed deployment does not start a second rollout).
    pub async fn apply(&self, release: &Release) -> Result<Deployment, Error> {
        self.ensure_secret(release).await?;
        for _ in 0..CONFLICT_RETRIES {
            let current = self
                .deployments
                .get_opt(&self.name)
                .await
                .map_err(|e| Error::api(format!("reading Deployment {}", self.path()), e))?;
            let start = match (&current, &self.slot) {
                (None, Some((slot, main))) => {
                    let main = self.deployments.get_opt(main).await.map_err(|e| {
                        Error::api(format!("reading Deployment {}/{main}", self.namespace), e)
                    })?;
                    Some(
                        template::slot_deployment(main.as_ref(), release, slot)
                            .map_err(Error::Template)?,
                    )
                }
                _ => current.clone(),
            };
            let desired = template::desired(start.as_ref(), release).map_err(Error::Template)?;
            let written = match &current {
                Some(current)
                    if current.spec == desired.spec && current.metadata == desired.metadata =>
                {
                    return Ok(current.clone())
                }
                Some(_) => {
                    self.deployments
                        .replace(&self.name, &PostParams::default(), &desired)
                        .await
                }
                None => {
                    self.deployments
                        .create(&PostParams::default(), &desired)
                        .await
                }
            };
            match written {
                Ok(stored) => return Ok(stored),
                // Changed (or created) by someone else since the read: read again.
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => {
                    return Err(Error::api(
                        format!(
                            "writing release {} into Deployment {}",
                            release.version,
                            self.path()
                        ),
                        e,
                    ))
                }
            }
        }
        Err(Error::Rollout(format!(
            "Deployment {} kept changing under runway ({CONFLICT_RETRIES} conflicts in a row): \
             is another tool writing it?",
            self.path()
        )))
    }

    /// Follows the rollout of `applied` until it completes or fails, telling `progress` each
    /// new state. Returns the Deployment as it was when complete, and kubectl's words for it.
    pub async fn follow(
        &self,
        applied: Deployment,
        progress: &Progress<'_>,
    ) -> Result<(Deployment, String), Error> {
        let silence = self.progress_deadline + SILENCE_MARGIN;
        let ours = marks(&applied, &self.container);
        let mut current = applied;
        let mut last_said: Option<String> = None;
        let mut last_change = tokio::time::Instant::now();
        let mut pause = Duration::ZERO;
        loop {
            // What rolls out must still be what runway wrote: a `kubectl set image` or `rollout
            // undo` meanwhile is another rollout, whose success is not this release's.
            let now = marks(&current, &self.container);
            if now != ours {
                return Err(Error::Rollout(format!(
                    "Deployment {} was changed by someone else during the rollout (it now runs \
                     {}): runway does not count that rollout as this release's",
                    self.path(),
                    now.2
                        .unwrap_or_else(|| "a template runway did not write".into())
                )));
            }
            // Judge what we have, then watch for the next change from its version.
            match rollout::status(&current, None) {
                Rollout::Complete(message) => return Ok((current, message)),
                Rollout::Failed(message) => return Err(Error::Rollout(message)),
                Rollout::Waiting(line) => {
                    if last_said.as_ref() != Some(&line) {
                        progress(line.clone());
                        last_said = Some(line);
                        last_change = tokio::time::Instant::now();
                    }
                }
            }
            let left = silence.saturating_sub(last_change.elapsed());
            if left.is_zero() {
                return Err(Error::Rollout(format!(
                    "the rollout of Deployment {} showed no change for {}s (its progress deadline \
                     is {}s) and no controller reported it failed: is the cluster's controller \
                     manager running?",
                    self.path(),
                    silence.as_secs(),
                    self.progress_deadline.as_secs()
                )));
            }
            let version = current
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default();
            let params = WatchParams::default()
                .fields(&format!("metadata.name={}", self.name))
                .timeout(WATCH_TIMEOUT.min(left.as_secs().max(1) as u32));
            let started = tokio::time::Instant::now();
            let next = tokio::time::timeout(left, self.next_change(&params, &version)).await;
            current = match next {
                Ok(Ok(Some(changed))) => {
                    pause = Duration::ZERO;
                    changed
                }
                // The Deployment was deleted: nothing will roll out.
                Ok(Err(e @ Error::Rollout(_))) => return Err(e),
                // The watch ended or expired, or nothing came in time: read afresh. A watch
                // that keeps ending at once (a proxy that does not stream) is not retried in a
                // busy loop: the pause doubles up to 5 s.
                Ok(Ok(None)) | Err(_) | Ok(Err(_)) => {
                    if let Ok(Err(e)) = &next {
                        tracing::warn!(deployment = %self.path(), "watch failed: {e}");
                    }
                    if started.elapsed() < Duration::from_secs(1) {
                        pause =
                            (pause * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
                        tokio::time::sleep(pause).await;
                    }
                    match self.read().await {
                        Ok(read) => read,
                        // A passing API error (a 5xx, a reset connection) does not fail a
                        // rollout that is fine: the silence guard bounds how long it may last.
                        Err(e) => {
                            tracing::warn!(deployment = %self.path(), "cannot read: {e}");
                            current
                        }
                    }
                }
            };
        }
    }

    /// The next version of the Deployment after `version`; `None` when the watch ended without
    /// one or the version is too old to watch from (410 Gone).
    async fn next_change(
        &self,
        params: &WatchParams,
        version: &str,
    ) -> Result<Option<Deployment>, Error> {
        let stream = match self.deployments.watch(params, version).await {
            Ok(stream) => stream,
            Err(kube::Error::Api(status)) if status.code == 410 => return Ok(None),
            Err(e) => {
                return Err(Error::api(
                    format!("watching Deployment {}", self.path()),
                    e,
                ))
            }
        };
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(WatchEvent::Added(d) | WatchEvent::Modified(d)) => return Ok(Some(d)),
                Ok(WatchEvent::Deleted(_)) => {
                    return Err(Error::Rollout(format!(
                        "Deployment {} was deleted during its rollout",
                        self.path()
                    )))
                }
                Ok(WatchEvent::Bookmark(_)) => continue,
                Ok(WatchEvent::Error(status)) if status.code == 410 => return Ok(None),
                Ok(WatchEvent::Error(status)) => {
                    return Err(Error::api(
                        format!("watching Deployment {}", self.path()),
                        kube::Error::Api(status),
                    ))
                }
                // A broken stream is picked up again from a fresh read.
                Err(e) => {
                    tracing::debug!(deployment = %self.path(), "watch broke: {e}");
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    /// The Deployment as it is now.
    pub async fn read(&self) -> Result<Deployment, Error> {
        self.deployments
            .get_opt(&self.name)
            .await
            .map_err(|e| Error::api(format!("reading Deployment {}", self.path()), e))?
            .ok_or_else(|| {
                Error::Rollout(format!(
                    "Deployment {} does not exist (any more)",
                    self.path()
                ))
            })
    }

    /// The Deployment's revisions, oldest first.
    pub async fn history(&self) -> Result<Vec<Revision>, Error> {
        let deployment = self.read().await?;
        let selector = selector(&deployment);
        let sets = self
            .replica_sets
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| Error::api(format!("listing the ReplicaSets of {}", self.path()), e))?;
        Ok(revision::history(&deployment, &sets.items))
    }
}

impl Target {
    /// The pods the Deployment selects, of every revision, by name.
    pub async fn pods(&self) -> Result<Vec<Pod>, Error> {
        let deployment = self.read().await?;
        let mut pods = self
            .pods
            .list(&ListParams::default().labels(&selector(&deployment)))
            .await
            .map_err(|e| Error::api(format!("listing the pods of {}", self.path()), e))?
            .items;
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(pods)
    }
}

/// The Deployment's selector as a label selector query (`app=api,tier=web`).
fn selector(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

impl Target {
    /// Scales the Deployment to zero and waits until its pods are gone (recreate). A
    /// Deployment that does not exist has nothing to stop.
    pub async fn stop(&self, progress: &Progress<'_>) -> Result<(), Error> {
        let mut written = false;
        for _ in 0..CONFLICT_RETRIES {
            let Some(mut deployment) = self
                .deployments
                .get_opt(&self.name)
                .await
                .map_err(|e| Error::api(format!("reading Deployment {}", self.path()), e))?
            else {
                return Ok(());
            };
            let spec = deployment.spec.get_or_insert_with(Default::default);
            if spec.replicas == Some(0) {
                written = true;
                break;
            }
            spec.replicas = Some(0);
            match self
                .deployments
                .replace(&self.name, &PostParams::default(), &deployment)
                .await
            {
                Ok(_) => {
                    written = true;
                    break;
                }
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => {
                    return Err(Error::api(
                        format!("scaling Deployment {} to 0", self.path()),
                        e,
                    ))
                }
            }
        }
        if !written {
            return Err(Error::Rollout(format!(
                "Deployment {} kept changing under runway ({CONFLICT_RETRIES} conflicts in a \
                 row): is another tool writing it?",
                self.path()
            )));
        }
        let give_up = tokio::time::Instant::now() + self.progress_deadline + SILENCE_MARGIN;
        let mut last_said = None;
        loop {
            // The counts leave out pods already terminating; the pods themselves are gone
            // only once they are not listed (their grace period, their preStop hooks), which is
            // what recreate waits for before the migration, as the Deployment controller's own
            // Recreate strategy does.
            let left = match self.read().await {
                Ok(deployment) => {
                    let observed = deployment
                        .status
                        .as_ref()
                        .and_then(|s| s.observed_generation)
                        .unwrap_or(0)
                        >= deployment.metadata.generation.unwrap_or(0);
                    let counted = rollout::counts(&deployment).replicas;
                    if observed && counted == 0 {
                        self.own_pods(&deployment).await.unwrap_or(1) as i32
                    } else {
                        counted.max(1)
                    }
                }
                Err(e) => {
                    tracing::warn!(deployment = %self.path(), "cannot read: {e}");
                    -1
                }
            };
            if left == 0 {
                return Ok(());
            }
            let line = format!(
                "Waiting for deployment \"{}\" to scale to 0: {} pods left...",
                self.name,
                left.max(0)
            );
            if left >= 0 && last_said.as_ref() != Some(&line) {
                progress(line.clone());
                last_said = Some(line);
            }
            if tokio::time::Instant::now() > give_up {
                return Err(Error::Rollout(format!(
                    "Deployment {} still has {left} pods {}s after it was scaled to 0",
                    self.path(),
                    (self.progress_deadline + SILENCE_MARGIN).as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Target {
    /// How many pods of this Deployment are still listed, terminating ones included: those its
    /// selector picks that are of its slot (the service's own Deployment's selector also picks
    /// the slots' pods, which carry their own slot label).
    async fn own_pods(&self, deployment: &Deployment) -> Result<usize, Error> {
        let slot = self
            .slot
            .as_ref()
            .map_or(template::MAIN_SLOT, |(slot, _)| slot.as_str());
        let pods = self
            .pods
            .list(&ListParams::default().labels(&selector(deployment)))
            .await
            .map_err(|e| Error::api(format!("listing the pods of {}", self.path()), e))?;
        Ok(pods
            .items
            .iter()
            .filter(|p| {
                let label = p
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(template::SLOT));
                match label {
                    Some(label) => label == slot,
                    None => slot == template::MAIN_SLOT,
                }
            })
            .count())
    }

    /// Deletes pod `name` (its ReplicaSet replaces it).
    pub async fn delete_pod(&self, name: &str) -> Result<(), Error> {
        self.pods
            .delete(name, &Default::default())
            .await
            .map_err(|e| Error::api(format!("deleting pod {}/{name}", self.namespace), e))?;
        Ok(())
    }

    /// Pod `name`'s log, stamped (see [`crate::pods::log_lines`]): the last `tail` lines, or
    /// everything since `since` (nanoseconds since the epoch).
    pub async fn pod_log(
        &self,
        name: &str,
        tail: Option<usize>,
        since: Option<u64>,
    ) -> Result<String, Error> {
        let params = kube::api::LogParams {
            // A pod with a sidecar has more than one container: the release's.
            container: Some(self.container.clone()),
            timestamps: true,
            tail_lines: tail.map(|n| n.min(i64::MAX as usize) as i64),
            // To the second below: the API takes whole seconds (kube rounds to the nearest,
            // which could skip the lines of the second's second half); the lines up to the
            // cursor itself are left out by `log_lines`.
            since_time: since.and_then(|nanos| {
                k8s_openapi::jiff::Timestamp::from_second((nanos / 1_000_000_000) as i64).ok()
            }),
            ..Default::default()
        };
        self.pods.logs(name, &params).await.map_err(|e| {
            Error::api(
                format!("reading the log of pod {}/{name}", self.namespace),
                e,
            )
        })
    }
}

/// What makes `deployment`'s template the release runway wrote: its marks (the release's
/// deployment, its version) and the image of `container` (which `kubectl set image` changes
/// without touching the marks).
fn marks(
    deployment: &Deployment,
    container: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    let template = deployment.spec.as_ref().map(|s| &s.template);
    let annotations = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref());
    let get = |key: &str| annotations.and_then(|a| a.get(key)).cloned();
    let image = template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.iter().find(|c| c.name == container))
        .and_then(|c| c.image.clone());
    (
        get(crate::revision::DEPLOYMENT_ID),
        get(crate::revision::VERSION),
        image,
    )
}
