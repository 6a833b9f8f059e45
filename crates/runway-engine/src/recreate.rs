//! The recreate strategy (runbook 004's whole procedure), for releases that cannot run side by
//! side with the old one: maintenance page on, the old release drained (its in-flight requests
//! finish; new ones get the page) and stopped, backup, migration, the new release started,
//! then (in `run_deploy`) verified, and the page taken down.
//!
//! The proxy's listener stays open throughout, so a client always gets an answer (the page, or
//! the new release), never a refused connection. A failure anywhere goes back the strict way:
//! everything stopped, the schema taken back, the old release started, the page down only when
//! it serves.

use runway_wire::id::DeploymentId;
use runway_wire::Event;
use std::sync::Arc;

use super::hooks::HookContext;
use super::{Engine, Release, Service};

impl Engine {
    pub(super) async fn run_recreate(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        ctx: &HookContext,
        target: &Release,
    ) -> Result<(), String> {
        if target.spec.kubernetes.is_some() {
            return self.recreate_on_cluster(svc, id, ctx, target).await;
        }
        self.maintenance_for_operation(svc, id, &target.spec)
            .map_err(|e| format!("cannot turn maintenance on: {e:#}"))?;
        let fingerprint = target.fingerprint();
        let old: Vec<_> = svc
            .replicas()
            .into_iter()
            .filter(|r| r.fingerprint != fingerprint)
            .collect();
        if !old.is_empty() {
            self.journal(
                id,
                Event::RecreateStoppingOld {
                    replicas: old.len(),
                },
            );
            self.retire(svc, id, old).await;
        }
        self.take_backup(ctx, target).await?;
        self.migrate(ctx, target).await?;
        self.journal(
            id,
            Event::RecreateStartingNew {
                version: target.version.clone(),
            },
        );
        self.converge(svc, id, target, false).await
    }

    /// Recreate on a cluster: the Deployment scaled to zero (the cluster's Service then has no
    /// endpoint: its clients get the ingress's own error until the new release is up, as with
    /// `kubectl scale --replicas=0`; runway's page needs its proxy in front), then the backup
    /// and migration, then the new release rolled out.
    async fn recreate_on_cluster(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        ctx: &HookContext,
        target: &Release,
    ) -> Result<(), String> {
        if let Some(old) = self.serving(&svc.name).map_err(|e| e.to_string())? {
            self.journal(
                id,
                Event::RecreateStoppingOld {
                    replicas: old.spec.run.replicas as usize,
                },
            );
            let progress =
                move |message: String| self.journal(id, Event::RolloutProgress { message });
            self.cluster.stop(&old, None, &progress).await?;
        }
        self.take_backup(ctx, target).await?;
        self.migrate(ctx, target).await?;
        self.journal(
            id,
            Event::RecreateStartingNew {
                version: target.version.clone(),
            },
        );
        self.converge(svc, id, target, false).await
    }
}
