//! Converging a service to a release: the rolling update, step by step.

use runway_wire::id::{DeploymentId, ReplicaId};
use runway_wire::Event;
use std::sync::Arc;

use runway_spec::StrategySpec;

use super::plan::{self, RollingState, Step};
use super::{Engine, Release, Service};
use crate::replica::{Launch, NewReplica, Replica};

impl Engine {
    /// Makes the service serve exactly `target.spec.run.replicas` healthy replicas of `target`,
    /// replacing everything else under the strategy's surge and availability limits.
    /// With `verify`, new replicas pass the release's `verify` checks before they get traffic.
    pub(super) async fn converge(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        target: &Release,
        verify: bool,
    ) -> Result<(), String> {
        if target.spec.kubernetes.is_some() {
            return self.roll_on_cluster(id, target).await;
        }
        let fingerprint = target.fingerprint();
        // A rolling release rolls by its own rules. Any other converge (a first deploy, a
        // rollback or a revert to a canary or blue-green release) starts the whole new set
        // beside the old one and then switches: the quickest way that never drops below strength.
        let (max_surge, max_unavailable) = match &target.spec.strategy {
            StrategySpec::Rolling(r) => (r.max_surge, r.max_unavailable),
            _ => (target.spec.run.replicas, 0),
        };
        loop {
            let replicas = svc.replicas();
            // Replicas that serve no traffic cost nothing to remove and only confuse the count:
            // a replica that failed its health check, or one left half-started by a crash.
            let strays: Vec<_> = replicas
                .iter()
                .filter(|r| !r.in_rotation())
                .cloned()
                .collect();
            if !strays.is_empty() {
                self.retire(svc, id, strays).await;
                continue;
            }
            let (current, old): (Vec<_>, Vec<_>) = replicas
                .into_iter()
                .partition(|r| r.fingerprint == fingerprint);
            let state = RollingState {
                target: target.spec.run.replicas,
                max_surge,
                max_unavailable,
                old: old.len() as u32,
                new: current.len() as u32,
            };
            match plan::next_step(state) {
                Step::Done => return Ok(()),
                Step::Stuck => {
                    return Err(format!(
                        "the rolling update cannot progress with max_surge = {} and max_unavailable = {}",
                        max_surge, max_unavailable
                    ))
                }
                Step::StartNew(k) => self.start_replicas(svc, id, target, k, verify).await?,
                Step::RetireOld(k) => {
                    // Unhealthy ones first: they serve nothing anyway.
                    let mut old = old;
                    old.sort_by_key(|r| (r.routable(), r.id));
                    self.retire(svc, id, old.into_iter().take(k as usize).collect()).await;
                }
                Step::RetireNew(k) => {
                    let mut current = current;
                    current.sort_by_key(|r| (r.routable(), std::cmp::Reverse(r.id)));
                    self.retire(svc, id, current.into_iter().take(k as usize).collect()).await;
                }
            }
        }
    }

    /// Converging on a cluster: the cluster rolls the release's Deployment by its own rules
    /// (the release's `[strategy]` does not apply: the Deployment's does), and the journal gets
    /// each change of the rollout's state as `kubectl rollout status` words it.
    async fn roll_on_cluster(&self, id: DeploymentId, target: &Release) -> Result<(), String> {
        let progress = move |message: String| self.journal(id, Event::RolloutProgress { message });
        let release = self.as_template(target);
        // A blue-green service's releases run in slots: the one its Service selects is the one
        // to converge (a revert after a failed switch finds the old release there, unchanged).
        let slot = match &target.spec.strategy {
            runway_spec::StrategySpec::BlueGreen(_) => self
                .cluster
                .live_slot(&release)
                .await?
                .filter(|slot| slot != "main"),
            _ => None,
        };
        let rolled = self
            .cluster
            .roll(&release, slot.as_deref(), &progress)
            .await?;
        self.journal(
            id,
            Event::RolledOut {
                revision: rolled.revision,
                message: rolled.message,
            },
        );
        Ok(())
    }

    /// `release` with the id of the first deployment of its service whose pods ran the same
    /// (its [`Release::pod_fingerprint`]: version, image, env, grace period). On a cluster a
    /// release is one pod template, marked with this id: a rollback, a scale, a redeploy of the same
    /// release or a change of runway.toml that does not reach the pods (a check, the canary's
    /// steps) writes the very template it had, so the Deployment goes back to that revision (as
    /// `kubectl rollout undo` does) or only scales, instead of restarting every pod.
    pub(super) fn as_template(&self, release: &Release) -> Release {
        let fingerprint = release.pod_fingerprint();
        let first = self
            .store
            .history(Some(&release.spec.service.name), 10_000)
            .unwrap_or_default()
            .iter()
            .rev()
            .filter(|d| d.id <= release.id && d.kind != runway_wire::record::Kind::Flag)
            .filter_map(|d| Release::from_deployment(d, &self.secrets_of).ok())
            .find(|r| r.pod_fingerprint() == fingerprint)
            .map_or(release.id, |r| r.id);
        Release {
            id: first,
            ..release.clone()
        }
    }

    /// Starts `count` replicas of `release`, waits until each passes its health check (and, with
    /// `verify`, the release's `verify` checks against them), and only then puts them into
    /// rotation. Any failure fails the whole step; the replicas that did start stay out of
    /// rotation for the caller to clean up.
    pub(super) async fn start_replicas(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        release: &Release,
        count: u32,
        verify: bool,
    ) -> Result<(), String> {
        let mut started = Vec::new();
        for _ in 0..count {
            let replica = self
                .launch_replica(svc, id, release, None, false)
                .map_err(|e| e.to_string())?;
            started.push(replica);
        }
        let deadline = release.spec.health.deadline.0;
        let waits = started.iter().map(|r| {
            r.wait_healthy_reporting(deadline, |error, waited| {
                self.journal(
                    id,
                    Event::ReplicaUnhealthy {
                        replica: r.name.clone(),
                        version: r.version.clone(),
                        error: error.to_string(),
                        waited_s: waited.as_secs(),
                        deadline_s: deadline.as_secs(),
                    },
                )
            })
        });
        let results = futures_util::future::join_all(waits).await;
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            return Err(e);
        }
        if verify {
            let addrs = started.iter().map(|r| r.endpoint().to_string()).collect();
            self.checks_gate(id, release, "verify", addrs).await?;
        }
        for r in &started {
            self.journal(
                id,
                Event::ReplicaRouted {
                    replica: r.name.clone(),
                    version: r.version.clone(),
                },
            );
            r.set_in_rotation(true);
        }
        svc.sync_routes();
        Ok(())
    }

    /// Creates the record of a new replica, journals it, and starts its process. With
    /// `reuse_id`, a stopped replica record comes back instead of a new one.
    pub(super) fn launch_replica(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        release: &Release,
        reuse_id: Option<ReplicaId>,
        in_rotation: bool,
    ) -> anyhow::Result<Arc<Replica>> {
        let (port, handle) = self.platform.allocate().map_err(|e| anyhow::anyhow!(e))?;
        let replica_id = match reuse_id {
            Some(rid) => {
                self.store.set_replica_handle(rid, &handle)?;
                self.store.set_replica_state(rid, "starting")?;
                rid
            }
            None => self
                .store
                .insert_replica(&svc.name, release.id, &release.version, &handle)?,
        };
        let name = format!("{}-{replica_id}", svc.name);
        self.journal(
            id,
            Event::ReplicaStarting {
                replica: name.clone(),
                version: release.version.clone(),
                port,
            },
        );
        let replica = Replica::start(
            NewReplica {
                id: replica_id,
                name: name.clone(),
                release_id: release.id,
                version: release.version.clone(),
                fingerprint: release.fingerprint(),
                port,
                launch: self.launch_for(svc, release, &name),
                in_rotation,
                restarts: 0,
                adopt: None,
            },
            self.store.clone(),
            svc.changed.clone(),
        );
        svc.add_replica(replica.clone());
        Ok(replica)
    }

    /// Runs `release`'s checks of `phase` ({replica} = `replicas`) and journals the results.
    pub(super) async fn checks_gate(
        &self,
        id: DeploymentId,
        release: &Release,
        phase: &str,
        replicas: Vec<String>,
    ) -> Result<(), String> {
        let (results, outcome) = crate::checks::gate(
            &*self.checks,
            &release.spec,
            phase,
            &release.base_dir,
            &release.secrets,
            replicas,
        )
        .await;
        if !results.is_empty() {
            self.journal(
                id,
                Event::Checks {
                    phase: phase.to_string(),
                    passed: outcome.is_ok(),
                    results: serde_json::to_value(&results).unwrap_or_default(),
                },
            );
        }
        outcome
    }

    /// The addresses of the release's replicas now in rotation.
    pub(super) fn release_addrs(&self, svc: &Service, release: &Release) -> Vec<String> {
        let fingerprint = release.fingerprint();
        svc.replicas()
            .iter()
            .filter(|r| r.fingerprint == fingerprint && r.in_rotation())
            .map(|r| r.endpoint().to_string())
            .collect()
    }

    pub(super) fn launch_for(
        &self,
        svc: &Service,
        release: &Release,
        replica_name: &str,
    ) -> Launch {
        let spec = &release.spec;
        Launch {
            workload: self.platform.workload(&svc.name, release, replica_name),
            health_interval: spec.health.interval.0,
            stop_timeout: spec.run.stop_timeout.0,
            drain_timeout: spec.run.drain_timeout.0,
        }
    }

    /// Takes replicas out of rotation, lets their in-flight requests finish (up to the drain
    /// timeout), then stops them. Runs them concurrently.
    pub(super) async fn retire(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        replicas: Vec<Arc<Replica>>,
    ) {
        for r in &replicas {
            self.journal(
                id,
                Event::ReplicaRetiring {
                    replica: r.name.clone(),
                    version: r.version.clone(),
                    in_flight: svc.router.in_flight(&r.name),
                },
            );
            r.set_in_rotation(false);
        }
        svc.sync_routes();
        let retirements = replicas.iter().map(|r| async move {
            let drained = svc
                .router
                .wait_drained(&r.name, r.launch.drain_timeout)
                .await;
            r.stop().await;
            svc.remove_replica(r.id);
            (r, drained)
        });
        for (r, drained) in futures_util::future::join_all(retirements).await {
            self.journal(
                id,
                Event::ReplicaStopped {
                    replica: r.name.clone(),
                    version: r.version.clone(),
                    drained,
                },
            );
        }
    }
}
