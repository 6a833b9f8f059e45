//! `runway nodes`: restart, stop or start one replica, without dropping a request.

use runway_wire::id::{DeploymentId, ReplicaId};
use std::sync::Arc;

pub use runway_wire::api::NodeAction;

use super::{service::Operation, Engine, EngineError, Release};

impl Engine {
    /// Runs a node action to its end. `node` is a replica id or name (`web-3`).
    pub async fn node_action(
        self: &Arc<Self>,
        service: &str,
        node: &str,
        action: NodeAction,
    ) -> Result<String, EngineError> {
        let svc = self.service(service)?;
        if let Some(release) = self
            .serving(service)?
            .filter(|r| r.spec.kubernetes.is_some())
        {
            return self.pod_action(service, &release, node, action).await;
        }
        if action == NodeAction::Restart && !self.platform.capabilities().restart_one {
            return Err(EngineError::BadRequest(format!(
                "the {} platform cannot restart one node on its own; deploy again instead",
                self.platform.name()
            )));
        }
        let id: ReplicaId = node
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .map(ReplicaId)
            .ok_or_else(|| {
                EngineError::BadRequest(format!(
                    "`{node}` is not a node id; see `runway nodes list`"
                ))
            })?;
        let row = self
            .store
            .replica(id)?
            .filter(|r| r.service == service)
            .ok_or_else(|| {
                EngineError::NotFound(format!("no node {node} in service `{service}`"))
            })?;
        let (_guard, ()) = svc.begin(
            || {
                Ok((
                    Operation {
                        deployment_id: DeploymentId::NONE,
                        description: format!("{action:?} of node {node}").to_lowercase(),
                    },
                    (),
                ))
            },
            |op| {
                EngineError::Busy(format!(
                    "service `{service}` is busy with {}; try again when it is done",
                    op.description
                ))
            },
        )?;
        let running = svc.replicas().into_iter().find(|r| r.id == id);
        let name = format!("{service}-{id}");
        match (action, running) {
            (NodeAction::Stop, Some(r)) => {
                self.retire(&svc, DeploymentId::NONE, vec![r]).await;
                Ok(format!("{name} stopped"))
            }
            (NodeAction::Restart, Some(r)) => {
                // Replace it: the new process serves before the old one stops.
                let d = self
                    .store
                    .deployment(r.release_id)?
                    .ok_or_else(|| anyhow::anyhow!("release missing"))?;
                let release = Release::from_deployment(&d, &self.secrets_of)?;
                self.start_replicas(&svc, DeploymentId::NONE, &release, 1, false)
                    .await
                    .map_err(EngineError::Failed)?;
                self.retire(&svc, DeploymentId::NONE, vec![r]).await;
                Ok(format!(
                    "{name} restarted (replaced by a new replica of {})",
                    release.version
                ))
            }
            (NodeAction::Start, None) => {
                // Only a node of the release that serves may come back, and with that release's
                // config: a node of a retired release would put an old version in rotation.
                let release = self.serving_for_node(service, &name, row.release_id)?;
                let r = self.launch_replica(&svc, DeploymentId::NONE, &release, Some(id), false)?;
                if let Err(e) = r.wait_healthy(release.spec.health.deadline.0).await {
                    self.retire(&svc, DeploymentId::NONE, vec![r]).await;
                    return Err(EngineError::Failed(e));
                }
                r.set_in_rotation(true);
                svc.sync_routes();
                Ok(format!("{name} started"))
            }
            (NodeAction::Start, Some(_)) => {
                Err(EngineError::Conflict(format!("{name} is already running")))
            }
            (_, None) => {
                self.serving_for_node(service, &name, row.release_id)?;
                Err(EngineError::Conflict(format!(
                    "{name} is not running; `runway nodes start {name}` starts it"
                )))
            }
        }
    }

    /// A node action on a cluster, where the nodes are pods and the Deployment keeps their
    /// count: a restart deletes the pod, and its ReplicaSet starts another.
    async fn pod_action(
        &self,
        service: &str,
        release: &Release,
        pod: &str,
        action: NodeAction,
    ) -> Result<String, EngineError> {
        if action != NodeAction::Restart {
            return Err(EngineError::BadRequest(format!(
                "`{service}` runs on Kubernetes, where its Deployment keeps the number of pods: \
                 `runway scale --count N` changes it, and `runway nodes restart POD` deletes a \
                 pod for its ReplicaSet to replace"
            )));
        }
        let pods = self
            .cluster
            .pods(release)
            .await
            .map_err(EngineError::Failed)?;
        if !pods.iter().any(|p| p.name == pod) {
            return Err(EngineError::NotFound(format!(
                "no pod `{pod}` in service `{service}`; `runway status` lists its pods"
            )));
        }
        self.cluster
            .delete_pod(release, pod)
            .await
            .map_err(EngineError::Failed)?;
        tracing::info!(service, pod, "pod deleted by the operator");
        Ok(format!(
            "pod {pod} deleted: its ReplicaSet starts a replacement"
        ))
    }

    /// The serving release, when the node `name` (of release `release_id`) ran its version;
    /// otherwise why the node cannot come back and what can be done instead.
    fn serving_for_node(
        &self,
        service: &str,
        name: &str,
        release_id: DeploymentId,
    ) -> Result<Release, EngineError> {
        let node_version = self
            .store
            .deployment(release_id)?
            .map(|d| d.version)
            .unwrap_or_else(|| "an unknown release".to_string());
        let Some(serving) = self.serving(service)? else {
            return Err(EngineError::Conflict(format!(
                "{name} ran {node_version}, and no release of `{service}` serves now: deploy \
                 one (`runway deploy VERSION`)"
            )));
        };
        if serving.version != node_version {
            return Err(EngineError::Conflict(format!(
                "{name} ran {node_version}, which no longer serves ({} does), so it cannot be \
                 started: `runway scale --count N` adds replicas of {}, and `runway rollback` \
                 brings back the previous release",
                serving.version, serving.version
            )));
        }
        Ok(serving)
    }
}
