//! Driving one operation (deploy, rollback, scale, restore) from start to its recorded end,
//! with the runbook around the traffic shift: preflight, pre-deploy hooks, backup, migration,
//! the strategy, verification, post-deploy hooks; and on failure the on-failure hooks and the
//! way back that the migrations allow (undo, keep the schema, restore, or freeze).

use runway_wire::id::{BackupId, DeploymentId};
use runway_wire::Event;
use std::sync::Arc;

use runway_spec::{HookPhase, StrategySpec};

use super::hooks::HookContext;
use super::runbook::SchemaPlan;
use super::store_faults::HeldWrite;
use super::{Engine, Failure, Preflight, Release, Service};
use runway_wire::record::{Kind, Status};

/// How an operation ended.
pub(super) enum Ended {
    /// The target release serves all traffic.
    Served,
    /// The target serves, but a later step went wrong (an undo after a rollback): recorded
    /// as failed, with the reason, and the target stays.
    ServedBut(String),
    /// The operation failed or was rolled back; the way back has been taken already.
    NotServed(Failure),
}

/// The version a rollback or restore went back past, and the release it went back to.
pub(super) struct Replaced {
    version: String,
    after: DeploymentId,
}

/// What an operation stored about itself when it started (its `progress` at first).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OperationArgs {
    /// Rollback and restore: the release (deployment id) being brought back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_of: Option<DeploymentId>,
    /// Rollback: leave the migrations in effect (old code on the new schema).
    #[serde(default)]
    pub keep_schema: bool,
    /// Restore: the backup to restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<BackupId>,
}

impl Engine {
    /// Drives one operation to its end and records the outcome.
    pub(super) async fn run(
        self: Arc<Self>,
        svc: Arc<Service>,
        id: DeploymentId,
        target: Release,
        previous: Option<Release>,
        kind: Kind,
        preflight: Preflight,
    ) {
        let started = tokio::time::Instant::now();
        let ctx = HookContext::new(id, &target, previous.as_ref().map(|p| p.version.as_str()));
        // The page, if one goes up, is the newest config's.
        self.apply_traffic_modes(&svc, Some(&target.spec));
        let args: OperationArgs = self.progress(id);
        let ended = match kind {
            Kind::Deploy => {
                self.run_deploy(&svc, id, &ctx, &target, previous.as_ref(), preflight)
                    .await
            }
            Kind::Rollback => {
                self.run_rollback(&svc, id, &ctx, &target, previous.as_ref(), &args)
                    .await
            }
            Kind::Scale => match self.converge(&svc, id, &target, false).await {
                Ok(()) => Ended::Served,
                Err(e) => Ended::NotServed(
                    self.revert(&svc, id, previous.as_ref(), Failure::failed(e))
                        .await,
                ),
            },
            Kind::Restore => self.run_restore(&svc, id, &ctx, &target, &args).await,
            Kind::Secrets => {
                self.run_secrets(&svc, id, &ctx, &target, previous.as_ref())
                    .await
            }
            // A flag's changes and rollouts run in flags.rs, never as a release's operation.
            Kind::Flag => Ended::NotServed(Failure::failed(
                "a flag change is not an operation on a release".into(),
            )),
        };
        // A page this operation put up comes down once something healthy serves, unless the
        // operation froze the service or could not go back: then a human decides.
        let settled = match &ended {
            Ended::Served | Ended::ServedBut(_) => true,
            Ended::NotServed(_) => {
                self.frozen(&svc.name).is_none_or(|f| f.deployment_id != id)
                    && self
                        .last_journaled(id, |e| matches!(e, Event::RevertFailed { .. }))
                        .is_none()
            }
        };
        if settled {
            self.lift_maintenance_of(&svc, id);
        }
        // A rollback or restore that brings back another version (or the same one with other
        // secret versions) marks the one it replaced.
        let replaced = previous
            .as_ref()
            .filter(|p| {
                matches!(kind, Kind::Rollback | Kind::Restore)
                    && (p.version != target.version || p.secret_versions != target.secret_versions)
            })
            .map(|p| Replaced {
                version: p.version.clone(),
                after: args.release_of.unwrap_or(target.id),
            });
        self.record(&svc, id, ended, started, replaced);
    }

    /// [`Engine::run`], with a safety net: a panic anywhere in the operation (a bug) ends the
    /// deployment as failed after the way back, instead of leaving it `running` forever with
    /// its service's operation lock held.
    pub(super) async fn run_guarded(
        self: Arc<Self>,
        svc: Arc<Service>,
        id: DeploymentId,
        target: Release,
        previous: Option<Release>,
        kind: Kind,
        preflight: Preflight,
    ) {
        use futures_util::FutureExt;
        use std::panic::AssertUnwindSafe;
        let started = tokio::time::Instant::now();
        let run = Arc::clone(&self).run(
            Arc::clone(&svc),
            id,
            target,
            previous.clone(),
            kind,
            preflight,
        );
        let Err(panic) = AssertUnwindSafe(run).catch_unwind().await else {
            return;
        };
        let message = panic_message(panic.as_ref());
        tracing::error!(service = %svc.name, deployment = %id, "deployment task panicked: {message}");
        self.journal(
            id,
            Event::InternalError {
                panic: message.clone(),
            },
        );
        let failure = Failure::failed(format!(
            "internal error in runway ({message}); please report it. The way back ran"
        ));
        let way_back = AssertUnwindSafe(self.revert(&svc, id, previous.as_ref(), failure))
            .catch_unwind()
            .await;
        let failure = way_back.unwrap_or_else(|_| {
            Failure::failed(format!(
                "internal error in runway ({message}), and again on the way back: check the \
                 service, then roll back or redeploy"
            ))
        });
        self.record(&svc, id, Ended::NotServed(failure), started, None);
    }

    fn record(
        self: &Arc<Self>,
        svc: &Arc<Service>,
        id: DeploymentId,
        ended: Ended,
        started: tokio::time::Instant,
        replaced: Option<Replaced>,
    ) {
        let replaced_version = replaced.as_ref().map(|r| r.version.clone());
        let (status, reason, target_serves) = match ended {
            Ended::Served => (Status::Succeeded, None, true),
            Ended::ServedBut(why) => (Status::Failed, Some(why), true),
            Ended::NotServed(f) => (
                if f.rolled_back {
                    Status::RolledBack
                } else {
                    Status::Failed
                },
                Some(f.reason),
                false,
            ),
        };
        if target_serves {
            let seconds = started.elapsed().as_secs_f64();
            match &reason {
                None => self.journal(id, Event::Succeeded { seconds }),
                Some(why) => self.journal(
                    id,
                    Event::ServingWithAProblem {
                        seconds,
                        reason: why.to_string(),
                    },
                ),
            }
            // The target serves alone: no split or stickiness of a canary may outlive it.
            svc.set_weights(None);
            svc.router.set_sticky(false);
            self.write_or_hold(HeldWrite::Serving {
                service: svc.name.clone(),
                release: Some(id),
            });
            if let Some(r) = replaced {
                self.write_or_hold(HeldWrite::RolledBack {
                    service: svc.name.clone(),
                    version: r.version,
                    after: r.after,
                    by: id,
                });
            }
            self.unfreeze(&svc.name);
            self.schedule_checks(&svc.name);
        }
        // The server's own log says how each deployment ended, not only its journal (before
        // the record, so that whoever sees the outcome can also find it in the log).
        tracing::info!(
            deployment = %id,
            service = %svc.name,
            status = status.as_str(),
            reason = reason.as_deref().unwrap_or(""),
            "deployment ended"
        );
        self.write_or_hold(HeldWrite::Outcome {
            id,
            status,
            reason: reason.clone(),
            at: runway_wire::record::now(),
        });
        self.open_incidents_after(svc, id, status, reason.as_deref(), replaced_version);
        self.journal_tick.send_modify(|t| *t += 1);
    }

    /// The incident an outcome opens: a release taken back (by its own deployment, or by a
    /// rollback past it) or a deployment that failed after its release had traffic.
    fn open_incidents_after(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        status: Status,
        reason: Option<&str>,
        replaced_version: Option<String>,
    ) {
        use crate::incidents::Cause;
        let Ok(Some(d)) = self.store.deployment(id) else {
            return;
        };
        let reason = reason.unwrap_or("-");
        let had_traffic = || {
            svc.router
                .metrics()
                .iter()
                .any(|m| m.release == d.version && m.requests > 0)
        };
        match status {
            Status::RolledBack => self.open_incident(
                svc,
                id,
                Cause::RolledBack {
                    version: &d.version,
                    reason,
                },
            ),
            // A failed scale change or rollback leaves the release that served serving.
            Status::Failed if d.kind == Kind::Deploy && had_traffic() => self.open_incident(
                svc,
                id,
                Cause::Failed {
                    version: &d.version,
                    reason,
                },
            ),
            _ => {}
        }
        // `runway rollback` (or a restore) went back past the release that served: that
        // release's deployment is what the incident is about.
        if let (Status::Succeeded, Some(version), Some(serving)) =
            (status, replaced_version, d.previous_release_id)
        {
            let why = match &d.request_reason {
                Some(said) => format!("{} by deployment #{id}: {said}", d.kind.as_str()),
                None => format!("{} to {} by deployment #{id}", d.kind.as_str(), d.version),
            };
            self.open_incident(
                svc,
                serving,
                Cause::RolledBack {
                    version: &version,
                    reason: &why,
                },
            );
        }
    }

    /// A `secrets` operation: the serving version and config, rolled onto the new secret
    /// versions the way a config change goes (one replica at a time, each healthy before the
    /// next), then the `verify` checks and the monitoring period. A failure brings back the
    /// replicas of the versions before.
    async fn run_secrets(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        ctx: &HookContext,
        target: &Release,
        previous: Option<&Release>,
    ) -> Ended {
        let mut outcome = self.execute(svc, id, target, previous, false, false).await;
        if outcome.is_ok() {
            let addrs = self.release_addrs(svc, target);
            if let Err(e) = self.checks_gate(id, target, "verify", addrs).await {
                outcome = Err(Failure::rolled_back(format!("with the new secrets, {e}")));
            }
        }
        if outcome.is_ok() {
            if let Some(period) = self.monitoring_period(id, target) {
                outcome = self.monitor(svc, id, target, previous, period).await;
            }
        }
        // A rollout the store's refusal stopped says so, not "aborted by an operator".
        if let Some(why) = self.take_store_stop(&svc.name) {
            if let Err(failure) = &mut outcome {
                *failure = Failure::rolled_back(why);
            }
        }
        match outcome {
            Ok(()) => Ended::Served,
            Err(failure) => {
                let failure = self
                    .return_after_failure(svc, id, ctx, target, previous, failure, false)
                    .await;
                self.notify(ctx, target, HookPhase::OnFailure).await;
                Ended::NotServed(failure)
            }
        }
    }

    /// A new release: the whole runbook.
    async fn run_deploy(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        ctx: &HookContext,
        target: &Release,
        previous: Option<&Release>,
        preflight: Preflight,
    ) -> Ended {
        // A redeploy of the serving version (a config change) goes straight there; a new
        // version goes through its strategy's steps and checks.
        let progressive = target.version != previous.map_or("", |p| &p.version);
        let recreate = matches!(target.spec.strategy, StrategySpec::Recreate(_));
        // Resumed after a crash (recovery passes NotApplicable): a deployment that had already
        // failed does not go forward again; it stays failed, or finishes its way back.
        if preflight == Preflight::NotApplicable {
            if let Some(entry) = self.last_failure(id) {
                let (failure, before_change) = match entry {
                    Event::RollingBack { reason } => (Failure::rolled_back(reason), false),
                    Event::Failed {
                        reason,
                        before_change,
                    } => (Failure::failed(reason), before_change == Some(true)),
                    _ => (Failure::failed("failed".into()), false),
                };
                if before_change {
                    return Ended::NotServed(failure);
                }
                let failure = self
                    .return_after_failure(svc, id, ctx, target, previous, failure, recreate)
                    .await;
                self.notify(ctx, target, HookPhase::OnFailure).await;
                return Ended::NotServed(failure);
            }
        }
        let preflight = match preflight {
            // A crash before the preflight finished: it runs again.
            Preflight::NotApplicable
                if !self.stage_done(id, "preflight")
                    && self
                        .last_journaled(id, |e| matches!(e, Event::PreflightSkipped { .. }))
                        .is_none() =>
            {
                Preflight::Run
            }
            other => other,
        };
        let pinned_release;
        let target = if preflight != Preflight::NotApplicable {
            // What the release needs from its platform (its image, pulled per the policy)
            // before anything changes: a missing image or a refused pull fails it here.
            let progress = move |what: String| self.journal(id, Event::Prepared { what });
            match self.platform.prepare(target, &progress).await {
                Err(reason) => return self.failed_before_any_change(ctx, target, reason).await,
                Ok(prepared) => {
                    if let Some(what) = prepared.what {
                        self.journal(id, Event::Prepared { what });
                    }
                    match prepared.spec {
                        // From here on the release is what was pinned (the image id its tag
                        // named now): its replicas and hooks run that, also if the tag moves
                        // during the rollout, and a resumed deployment reads it back.
                        Some(pinned) => {
                            if let Err(e) = self.store.set_spec(id, &pinned) {
                                tracing::error!(deployment = %id, "cannot record the pinned image: {e:#}");
                            }
                            pinned_release = Release {
                                spec: pinned,
                                ..target.clone()
                            };
                            &pinned_release
                        }
                        None => target,
                    }
                }
            }
        } else {
            target
        };
        match preflight {
            Preflight::Run => {
                if let Err(reason) = self.checks_gate(id, target, "preflight", Vec::new()).await {
                    // Nothing was changed: no replica started, no traffic moved.
                    return self.failed_before_any_change(ctx, target, reason).await;
                }
                self.stage_finished(id, "preflight");
            }
            Preflight::Skipped => self.journal(
                id,
                Event::PreflightSkipped {
                    by: "--skip-checks".into(),
                },
            ),
            Preflight::NotApplicable => {}
        }
        if !self.stage_done(id, "pre-deploy") {
            if let Some(why) = self.store_refusal() {
                return self.failed_before_any_change(ctx, target, why).await;
            }
            if let Err(reason) = self
                .run_phase_hooks(ctx, target, HookPhase::PreDeploy, true)
                .await
            {
                return self.failed_before_any_change(ctx, target, reason).await;
            }
            self.stage_finished(id, "pre-deploy");
        }
        if let Some(why) = self.store_refusal() {
            return self.failed_before_any_change(ctx, target, why).await;
        }
        let mut outcome = if recreate {
            self.run_recreate(svc, id, ctx, target)
                .await
                .map_err(Failure::failed)
        } else {
            if let Err(reason) = self.backup_and_migrate(ctx, target).await {
                return self.failed_before_any_change(ctx, target, reason).await;
            }
            // An irreversible migration that freezes on failure keeps the new release
            // running where it failed: tearing it down is the human's decision.
            let keep = previous.is_some_and(|p| {
                matches!(
                    self.schema_plan(&svc.name, p),
                    Ok(SchemaPlan::Freeze { .. })
                )
            });
            match self.store_refusal() {
                // The migration ran: the way back takes it back.
                Some(why) => Err(Failure::rolled_back(why)),
                None => {
                    self.execute(svc, id, target, previous, progressive, keep)
                        .await
                }
            }
        };
        if outcome.is_ok() {
            if let Some(why) = self.store_refusal() {
                outcome = Err(Failure::rolled_back(why));
            }
        }
        if outcome.is_ok() && (progressive || recreate) {
            // The new release has all traffic (or, recreated, is about to): verify it once
            // more, as a whole.
            let addrs = self.release_addrs(svc, target);
            if let Err(e) = self.checks_gate(id, target, "verify", addrs).await {
                outcome = Err(Failure::rolled_back(format!(
                    "after taking all traffic, {e}"
                )));
            }
        }
        if outcome.is_ok() {
            if let Some(period) = self.monitoring_period(id, target) {
                outcome = self.monitor(svc, id, target, previous, period).await;
            }
        }
        // A rollout the store's refusal stopped says so, not "aborted by an operator".
        if let Some(why) = self.take_store_stop(&svc.name) {
            if let Err(failure) = &mut outcome {
                *failure = Failure::rolled_back(why);
            }
        }
        match outcome {
            Ok(()) => {
                self.lift_maintenance_of(svc, id);
                self.notify(ctx, target, HookPhase::PostDeploy).await;
                Ended::Served
            }
            Err(failure) => {
                // The way back first (the failing release loses its traffic at once), then the
                // alert.
                let failure = self
                    .return_after_failure(svc, id, ctx, target, previous, failure, recreate)
                    .await;
                self.notify(ctx, target, HookPhase::OnFailure).await;
                Ended::NotServed(failure)
            }
        }
    }

    async fn backup_and_migrate(&self, ctx: &HookContext, target: &Release) -> Result<(), String> {
        self.take_backup(ctx, target).await?;
        self.migrate(ctx, target).await
    }

    /// A deployment that failed before it changed anything: record why, alert.
    async fn failed_before_any_change(
        &self,
        ctx: &HookContext,
        target: &Release,
        reason: String,
    ) -> Ended {
        self.journal(
            ctx.deployment_id,
            Event::Failed {
                reason: reason.to_string(),
                before_change: Some(true),
            },
        );
        self.notify(ctx, target, HookPhase::OnFailure).await;
        Ended::NotServed(Failure::failed(reason))
    }

    /// After a failed deployment: back to `previous` the way its migrations allow. `strict`
    /// (recreate): the two releases never run side by side, so everything stops, the schema
    /// goes back, then the old release starts, all behind the page.
    #[allow(clippy::too_many_arguments)]
    async fn return_after_failure(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        ctx: &HookContext,
        target: &Release,
        previous: Option<&Release>,
        failure: Failure,
        strict: bool,
    ) -> Failure {
        let reason = failure.reason.clone();
        self.journal(
            id,
            if failure.rolled_back {
                Event::RollingBack { reason }
            } else {
                Event::Failed {
                    reason,
                    before_change: None,
                }
            },
        );
        let Some(prev) = previous else {
            // A first deployment has nothing to go back to: stop what it started.
            let all = svc.replicas();
            self.retire(svc, id, all).await;
            return failure;
        };
        let plan = match self.schema_plan(&svc.name, prev) {
            Ok(SchemaPlan::Freeze { deployment_id }) => Err(format!(
                "deployment #{deployment_id} applied an irreversible migration (on_failure = \"freeze\")"
            )),
            // Not knowing how to take the schema back is no reason to guess: freeze too.
            other => other,
        };
        if let Err(cause) = &plan {
            let why = format!(
                "frozen: {cause}, so runway changed nothing more and waits for you: \
                 `runway rollback --keep-schema` runs the old release on the new schema, \
                 `runway restore BACKUP` (see `runway backups`) restores the database and the \
                 release that matches it, or deploy a fix"
            );
            self.freeze(svc, id, &why);
            return Failure {
                reason: format!("{}; {why}", failure.reason),
                rolled_back: failure.rolled_back,
            };
        }
        self.notify(ctx, target, HookPhase::PreRollback).await;
        self.journal(
            id,
            Event::Reverting {
                to: prev.version.clone(),
            },
        );
        let plan = plan.unwrap_or(SchemaPlan::Nothing);
        let back = self.go_back(svc, id, ctx, prev, plan, strict).await;
        let mut failure = failure;
        match back {
            Ok(()) => {
                self.journal(
                    id,
                    Event::Reverted {
                        to: prev.version.clone(),
                    },
                );
                self.notify(ctx, target, HookPhase::PostRollback).await;
            }
            Err(e) => {
                failure.reason = format!(
                    "{}; reverting to {} also failed: {e}",
                    failure.reason, prev.version
                );
                self.journal(
                    id,
                    Event::RevertFailed {
                        reason: e.to_string(),
                    },
                );
                // Neither release is known to serve: a restart must not guess either.
                self.freeze(
                    svc,
                    id,
                    &format!(
                        "frozen: the way back to {} failed; look before anything else runs",
                        prev.version
                    ),
                );
            }
        }
        failure
    }

    /// Brings `to` back and takes the schema back as `plan` says.
    async fn go_back(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        ctx: &HookContext,
        to: &Release,
        plan: SchemaPlan,
        strict: bool,
    ) -> Result<(), String> {
        match plan {
            SchemaPlan::Freeze { deployment_id } => Err(format!(
                "deployment #{deployment_id} applied an irreversible migration with on_failure = \
                 \"freeze\""
            )),
            SchemaPlan::Restore {
                backup,
                restore,
                timeout,
                migrations,
            } => {
                self.restore_and_return(svc, id, ctx, to, (&backup, &restore, timeout, &migrations))
                    .await
            }
            SchemaPlan::Nothing => self.return_to(svc, id, to, strict).await,
            SchemaPlan::Undo(migrations) if strict => {
                self.stop_all_behind_the_page(svc, id, to).await?;
                self.undo_migrations(id, ctx, &migrations).await?;
                self.converge(svc, id, to, false).await
            }
            SchemaPlan::Undo(migrations) => {
                // The old release takes all traffic back first; the undo runs after.
                self.converge(svc, id, to, false).await?;
                self.undo_migrations(id, ctx, &migrations).await
            }
        }
    }

    async fn return_to(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        to: &Release,
        strict: bool,
    ) -> Result<(), String> {
        if strict {
            self.stop_all_behind_the_page(svc, id, to).await?;
        }
        self.converge(svc, id, to, false).await
    }

    /// A failed scale change or rollback: the release that served before comes back.
    async fn revert(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        previous: Option<&Release>,
        failure: Failure,
    ) -> Failure {
        self.journal(
            id,
            Event::Failed {
                reason: failure.reason.clone(),
                before_change: None,
            },
        );
        let Some(prev) = previous else {
            return failure;
        };
        self.journal(
            id,
            Event::Reverting {
                to: prev.version.clone(),
            },
        );
        match self.converge(svc, id, prev, false).await {
            Ok(()) => {
                self.journal(
                    id,
                    Event::Reverted {
                        to: prev.version.clone(),
                    },
                );
                failure
            }
            Err(e) => {
                self.journal(
                    id,
                    Event::RevertFailed {
                        reason: e.to_string(),
                    },
                );
                Failure {
                    reason: format!(
                        "{}; reverting to {} also failed: {e}",
                        failure.reason, prev.version
                    ),
                    rolled_back: failure.rolled_back,
                }
            }
        }
    }

    /// `runway rollback`: the older release comes back, then its newer migrations are taken
    /// back (undo after the traffic moved; restore behind the page).
    async fn run_rollback(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        ctx: &HookContext,
        target: &Release,
        previous: Option<&Release>,
        args: &OperationArgs,
    ) -> Ended {
        self.notify(ctx, target, HookPhase::PreRollback).await;
        let original = Release {
            id: args.release_of.unwrap_or(target.id),
            ..target.clone()
        };
        let plan = if args.keep_schema {
            SchemaPlan::Nothing
        } else {
            match self.schema_plan(&svc.name, &original) {
                Ok(plan) => plan,
                Err(e) => return Ended::NotServed(Failure::failed(e)),
            }
        };
        // Releases that cannot run side by side go back the strict way.
        let strict = previous.is_some_and(|p| matches!(p.spec.strategy, StrategySpec::Recreate(_)))
            || matches!(target.spec.strategy, StrategySpec::Recreate(_));
        let ended = match plan {
            SchemaPlan::Undo(migrations) if !strict => {
                if let Err(e) = self.converge(svc, id, target, false).await {
                    return Ended::NotServed(
                        self.revert(svc, id, previous, Failure::failed(e)).await,
                    );
                }
                match self.undo_migrations(id, ctx, &migrations).await {
                    Ok(()) => Ended::Served,
                    Err(e) => Ended::ServedBut(format!(
                        "rolled back: {} serves again, but {e}; the schema is still the newer one",
                        target.version
                    )),
                }
            }
            plan => match self.go_back(svc, id, ctx, target, plan, strict).await {
                Ok(()) => Ended::Served,
                Err(e) => Ended::NotServed(Failure::failed(e)),
            },
        };
        if matches!(ended, Ended::Served | Ended::ServedBut(_)) {
            if args.keep_schema {
                // Only now that the older release serves does it run on the newer schema.
                self.journal(
                    id,
                    Event::SchemaKept {
                        migration_of: None,
                        why: "--keep-schema".into(),
                    },
                );
                self.keep_schema(id, &svc.name, &original);
            }
            self.notify(ctx, target, HookPhase::PostRollback).await;
        }
        ended
    }

    /// `runway restore BACKUP`: page on, everything stopped, the backup restored, the release
    /// that matches it started, page off.
    async fn run_restore(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        ctx: &HookContext,
        target: &Release,
        args: &OperationArgs,
    ) -> Ended {
        let found = args
            .backup_id
            .ok_or_else(|| "the restore has no backup id".to_string())
            .and_then(|b| {
                self.store
                    .backup(b)
                    .map_err(|e| format!("{e:#}"))?
                    .ok_or_else(|| format!("backup #{b} is gone"))
            });
        let backup = match found {
            Ok(b) => b,
            Err(e) => return Ended::NotServed(Failure::failed(e)),
        };
        let hook = match restore_command(target, self, backup.deployment_id) {
            Ok(h) => h,
            Err(e) => return Ended::NotServed(Failure::failed(e)),
        };
        let release_of = args.release_of.unwrap_or(target.id);
        // The backup holds every migration applied before the deployment that took it: only
        // the later ones are gone once it is restored.
        let migrations: Vec<DeploymentId> = self
            .store
            .migrations_after(&svc.name, release_of)
            .unwrap_or_default()
            .into_iter()
            .filter(|m| *m >= backup.deployment_id)
            .collect();
        let result = self
            .restore_and_return(
                svc,
                id,
                ctx,
                target,
                (&backup, &hook.0, hook.1, &migrations),
            )
            .await;
        match result {
            Ok(()) => Ended::Served,
            Err(e) => Ended::NotServed(Failure::failed(e)),
        }
    }

    /// Runs the `[[hooks.run]]` of a phase whose failure changes nothing (alerts, notes): a
    /// failed one is logged and the others still run.
    async fn notify(&self, ctx: &HookContext, release: &Release, phase: HookPhase) {
        let _ = self.run_phase_hooks(ctx, release, phase, false).await;
    }

    /// Whether deployment `id`'s journal has an `event` entry.
    /// The entry that says deployment `id` failed or is being rolled back, if any.
    fn last_failure(&self, id: DeploymentId) -> Option<Event> {
        self.last_journaled(id, |e| {
            matches!(e, Event::Failed { .. } | Event::RollingBack { .. })
        })
    }

    /// Whether a stage of deployment `id` finished before (a resumed deployment skips it).
    pub(super) fn stage_done(&self, id: DeploymentId, stage: &str) -> bool {
        self.last_journaled(
            id,
            |e| matches!(e, Event::StageDone { stage: done } if done == stage),
        )
        .is_some()
    }

    pub(super) fn stage_finished(&self, id: DeploymentId, stage: &str) {
        self.journal(
            id,
            Event::StageDone {
                stage: stage.to_string(),
            },
        );
    }
}

/// The restore command for a backup taken by deployment `taken_by`: that deployment's, or else
/// the target config's.
fn restore_command(
    target: &Release,
    engine: &Engine,
    taken_by: DeploymentId,
) -> Result<(Vec<String>, std::time::Duration), String> {
    let from_backup = engine
        .store
        .deployment(taken_by)
        .ok()
        .flatten()
        .and_then(|d| d.spec)
        .and_then(|s| s.hooks.backup)
        .and_then(|b| b.restore.map(|r| (r, b.timeout.0)));
    let from_target = target
        .spec
        .hooks
        .backup
        .as_ref()
        .and_then(|b| b.restore.clone().map(|r| (r, b.timeout.0)));
    from_backup.or(from_target).ok_or_else(|| {
        "no restore command is configured: add restore = [\"...\"] to [hooks.backup]".to_string()
    })
}

/// The text of a panic's payload (a `&str` or a `String`, as `panic!` makes them).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

#[cfg(test)]
mod panic_tests {
    use super::panic_message;

    #[test]
    fn panic_payloads_read_as_text() {
        let caught = std::panic::catch_unwind(|| panic!("overflow when adding {}", "duration"));
        assert_eq!(
            panic_message(caught.unwrap_err().as_ref()),
            "overflow when adding duration"
        );
        let caught = std::panic::catch_unwind(|| panic!("plain"));
        assert_eq!(panic_message(caught.unwrap_err().as_ref()), "plain");
    }
}
