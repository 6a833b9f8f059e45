//! Picking up after a server restart, clean or `kill -9`: re-adopt the replicas that still run,
//! restart the ones that served and died, and resume the deployments that were under way.

use runway_wire::id::DeploymentId;
use runway_wire::Event;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::{service::Operation, Engine, Release};
use crate::replica::{NewReplica, Replica};

/// How long adopted replicas get to pass a health check before the proxy accepts traffic again.
/// Connections made meanwhile wait in the listen backlog instead of being refused.
const ADOPTION_GRACE: Duration = Duration::from_secs(5);

impl Engine {
    fn restore_canary_weight(
        &self,
        svc: &super::Service,
        d: &runway_wire::record::Deployment,
    ) -> anyhow::Result<()> {
        let is_canary = matches!(
            d.spec.as_ref().map(|s| &s.strategy),
            Some(runway_spec::StrategySpec::Canary(_))
        );
        let weight = d.progress.as_ref().and_then(|p| p["weight"].as_u64());
        let stable = match d.previous_release_id {
            Some(id) => self.store.deployment(id)?,
            None => None,
        };
        if let (true, Some(weight), Some(stable)) = (is_canary, weight, stable) {
            super::canary::set_canary_weight(svc, &stable.version, &d.version, weight as u32);
        }
        Ok(())
    }

    pub async fn recover(self: &Arc<Self>) -> anyhow::Result<()> {
        let interrupted = self.store.mark_interrupted_hook_runs()?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "hooks were running when the server stopped");
        }
        // A flag rollout runs no release: it resumes once the services are back.
        let (flag_rollouts, running): (Vec<_>, Vec<_>) = self
            .store
            .running_deployments()?
            .into_iter()
            .partition(|d| d.kind == runway_wire::record::Kind::Flag);
        let mut names: BTreeSet<String> =
            self.store.services()?.into_iter().map(|(n, _)| n).collect();
        names.extend(running.iter().map(|d| d.service.clone()));

        for name in &names {
            let release = match self.serving(name)? {
                Some(r) => r,
                None => match running.iter().find(|d| &d.service == name) {
                    Some(d) => Release::from_deployment(d, &self.secrets_of)?,
                    None => continue,
                },
            };
            let svc = match self.service_for(name, &release.spec, false).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(service = %name, "cannot bring the service back: {e}");
                    continue;
                }
            };
            let mut adopted = Vec::new();
            // A platform whose instances do not outlive the server adopts none: its replicas
            // that served are started again.
            let can_adopt = self.platform.capabilities().adopt;
            for row in self.store.live_replicas(name)? {
                let replica = format!("{name}-{}", row.id);
                let found = match &row.handle {
                    Some(handle) => self.platform.adopt(&replica, handle).await,
                    None => None,
                };
                let found = found.map(|(instance, port)| (instance.filter(|_| can_adopt), port));
                let Some((process, port)) = found else {
                    tracing::warn!(
                        replica = %row.id,
                        "no handle of this platform recorded: not adopted"
                    );
                    self.store.set_replica_state(row.id, "stopped")?;
                    continue;
                };
                if process.is_none() && !row.in_rotation {
                    // It served nothing and its process is gone: nothing to bring back.
                    self.store.set_replica_state(row.id, "stopped")?;
                    continue;
                }
                let Some(d) = self.store.deployment(row.release_id)? else {
                    continue;
                };
                let release = Release::from_deployment(&d, &self.secrets_of)?;
                let replica_name = format!("{name}-{}", row.id);
                tracing::info!(
                    replica = %replica_name,
                    "{}",
                    if process.is_some() { "re-adopting running replica" } else { "restarting replica that died with the server" }
                );
                let replica = Replica::start(
                    NewReplica {
                        id: row.id,
                        name: replica_name.clone(),
                        release_id: row.release_id,
                        version: row.version.clone(),
                        fingerprint: release.fingerprint(),
                        port,
                        launch: self.launch_for(&svc, &release, &replica_name),
                        in_rotation: row.in_rotation,
                        restarts: row.restarts,
                        adopt: process,
                    },
                    self.store.clone(),
                    svc.changed.clone(),
                );
                svc.add_replica(replica.clone());
                if row.in_rotation {
                    adopted.push(replica);
                }
            }
            // Instances of this service that no live replica owns (their records are gone, or
            // they were left by a release that no longer exists) are removed.
            let known: Vec<String> = svc.replicas().iter().map(|r| r.name.clone()).collect();
            self.platform.sweep(name, &known).await;
            let waits = adopted.iter().map(|r| r.wait_healthy(ADOPTION_GRACE));
            futures_util::future::join_all(waits).await;
            // A canary in progress keeps its traffic split from the first request on.
            if let Some(d) = running.iter().find(|d| &d.service == name) {
                self.restore_canary_weight(&svc, d)?;
            }
            // A frozen service keeps the split it froze with.
            if let Some(weights) = self.frozen(name).and_then(|f| f.weights) {
                svc.set_weights(Some(weights));
            }
            svc.sync_routes();
            svc.router.open();
            self.schedule_checks(name);
        }

        // A service whose release should serve but has too few replicas (after a clean shutdown
        // stopped them all, or a replica that cannot be adopted) is brought back to strength.
        for svc in self.services() {
            // A frozen service stays exactly as it froze, both releases included, until a
            // human decides.
            if running.iter().any(|d| d.service == svc.name) || self.frozen(&svc.name).is_some() {
                continue;
            }
            // A cluster's pods did not stop with the server, and what it runs now may have been
            // changed by its owners meanwhile: runway writes to it only for an operation.
            let on_cluster = |r: &Release| r.spec.kubernetes.is_some();
            if let Some(release) = self.serving(&svc.name)?.filter(|r| !on_cluster(r)) {
                let (guard, ()) = svc.begin(
                    || {
                        Ok::<_, anyhow::Error>((
                            Operation {
                                deployment_id: DeploymentId::NONE,
                                description: format!("restoring {} after restart", release.version),
                            },
                            (),
                        ))
                    },
                    |op| anyhow::anyhow!("{} is already running", op.description),
                )?;
                let engine = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = engine
                        .converge(&svc, DeploymentId::NONE, &release, false)
                        .await
                    {
                        tracing::error!(service = %svc.name, "cannot restore {}: {e}", release.version);
                    }
                    drop(guard);
                });
            }
        }

        for d in running {
            let svc = self.service(&d.service)?;
            let target = Release::from_deployment(&d, &self.secrets_of)?;
            let previous = match d.previous_release_id {
                Some(p) => self
                    .store
                    .deployment(p)?
                    .map(|d| Release::from_deployment(&d, &self.secrets_of))
                    .transpose()?,
                None => None,
            };
            let (guard, ()) = svc.begin(
                || {
                    Ok::<_, anyhow::Error>((
                        Operation {
                            deployment_id: d.id,
                            description: format!("deployment #{} of {}", d.id, d.version),
                        },
                        (),
                    ))
                },
                |op| anyhow::anyhow!("{} is already running", op.description),
            )?;
            self.journal(
                d.id,
                Event::Resumed {
                    after: "server restart".into(),
                },
            );
            let engine = self.clone();
            tokio::spawn(async move {
                engine
                    .run_guarded(
                        svc,
                        d.id,
                        target,
                        previous,
                        d.kind,
                        super::Preflight::NotApplicable,
                    )
                    .await;
                drop(guard);
            });
        }
        for d in flag_rollouts {
            if let Err(e) = self.resume_flag_rollout(&d) {
                tracing::error!(deployment = %d.id, "cannot resume the flag rollout: {e:#}");
            }
        }
        Ok(())
    }
}
