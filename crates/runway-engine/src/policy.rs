//! Who may deploy what, when (runbook 001): a deployment's type, the lock a human put on the
//! service, the windows and freezes of its calendar, and the approvals its type needs.
//!
//! A deploy is admitted in this order, before anything is recorded: its type exists; the type
//! may skip the checks it was asked to skip; no lock holds; the calendar is open (each refusal
//! names its rule, and the calendar's next open moment). An admin's `--override` (with a
//! reason) passes a lock, a window or a freeze, and is journaled with what it overrode; it
//! never passes approvals.
//!
//! A type that needs approvals records the deployment as `awaiting_approval` and starts
//! nothing. Approvals are bound to the deployment's digest (the SHA-256 of its version, whole
//! config, type and directory): an approver sends the digest they were shown, and a new
//! request for the service (another version, a changed config) supersedes the waiting one, so
//! no approval ever counts for something else than what was approved. Approvals count while
//! they are younger than the type's `approval_ttl`, from distinct identities whose role the
//! type lists, the requester's own only if the type allows. One rejection ends it. When enough
//! count, the calendar is asked again: a window that closed meanwhile keeps it waiting, and
//! the next approval inside a window starts it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use runway_calendar::Verdict;
use runway_spec::{DeployType, Spec};
use runway_wire::api::{ApprovalView, DeployRequest, Identity, Role};
use runway_wire::id::DeploymentId;
use runway_wire::record::{ApprovalRow, Deployment, Lock, ServiceFlag, Status};
use runway_wire::Event;
use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, Result};

/// What a waiting deployment will start with once approved (kept in its `progress`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct PendingStart {
    pub skip_checks: bool,
    /// The rules an admin's `--override` passed when it was requested (empty: none).
    #[serde(default)]
    pub overridden: Vec<String>,
}

/// A deploy as policy admitted it.
pub(crate) struct Admitted {
    pub type_name: String,
    pub deploy_type: DeployType,
    /// The spec it runs with (the type's strategy and analysis, checks it may skip left out).
    pub spec: Spec,
    /// `--skip-checks` with a type that may skip every check: no preflight at all.
    pub skip_all_checks: bool,
    /// The locks, windows or freezes `--override` passed.
    pub overridden: Vec<String>,
    /// What the type changed of the file's config, for the journal.
    pub changes: Vec<String>,
    pub digest: String,
}

/// The SHA-256 of what a deployment is: its version, whole config (as it will run), type,
/// directory, and what it skips and overrides.
pub(crate) fn digest(
    version: &str,
    spec: &Spec,
    type_name: &str,
    base_dir: &str,
    pending: &PendingStart,
) -> String {
    use sha2::Digest;
    let canonical = serde_json::json!({
        "version": version,
        "type": type_name,
        "base_dir": base_dir,
        "spec": spec,
        // What it will skip and what an override passed are part of what is approved.
        "skip_checks": pending.skip_checks,
        "overridden": pending.overridden,
    });
    sha2::Sha256::digest(canonical.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A lock as a rule a refusal names and an override passes.
fn lock_rule(service: &str, lock: &Lock) -> String {
    format!(
        "the lock {} put on `{service}` at {}: {}",
        lock.by, lock.since, lock.reason
    )
}

/// When a closed calendar opens next, for a refusal.
fn next_window(next_open: Option<DateTime<Utc>>, zone: runway_calendar::Tz) -> String {
    match next_open {
        Some(at) => format!("the next window opens {}", when(at, zone)),
        None => "no window opens in the next 400 days".to_string(),
    }
}

/// Whether `role` is one the type lists as its approvers (or above one).
fn may_approve(t: &DeployType, role: Role) -> bool {
    t.approvers
        .iter()
        .filter_map(|r| Role::parse(r))
        .any(|r| role.allows(r))
}

/// `at` in the calendar's zone and in UTC, for a person.
fn when(at: DateTime<Utc>, zone: runway_calendar::Tz) -> String {
    let local = at.with_timezone(&zone);
    if zone.name() == "UTC" {
        local.format("%a %Y-%m-%d %H:%M UTC").to_string()
    } else {
        format!(
            "{} ({})",
            local.format("%a %Y-%m-%d %H:%M %Z"),
            at.format("%H:%M UTC")
        )
    }
}

impl Engine {
    /// Admits a deploy by its type, the service's lock and its calendar, or says why not.
    pub(crate) fn admit(&self, request: &DeployRequest) -> Result<Admitted> {
        let spec = &request.spec;
        let name = &spec.service.name;
        let (type_name, deploy_type) = spec
            .deploy_type(request.deploy_type.as_deref())
            .map_err(EngineError::BadRequest)?;
        let mut effective = spec.with_type(&deploy_type);
        let mut changes = Vec::new();
        if effective.strategy != spec.strategy {
            changes.push(format!(
                "strategy {} instead of the file's {} (the `{type_name}` type's)",
                effective.strategy.kind(),
                spec.strategy.kind()
            ));
        }
        if effective.analysis != spec.analysis {
            changes.push(format!(
                "analysis and rollback criteria of [types.{type_name}.analysis]"
            ));
        }
        let mut skip_all_checks = false;
        if request.skip_checks {
            // Without [types], `--skip-checks` skips the preflight as it always did.
            let allowed = if spec.types.is_empty() {
                vec!["*".to_string()]
            } else {
                deploy_type.skip_checks.clone()
            };
            if allowed.is_empty() {
                return Err(EngineError::BadRequest(format!(
                    "a `{type_name}` deployment may not skip checks: [types.{type_name}] has no \
                     skip_checks (use a type that has, e.g. --type emergency)"
                )));
            }
            if allowed.iter().any(|c| c == "*") {
                skip_all_checks = true;
            } else {
                // Only their preflight: the same checks still gate smoke tests and verify.
                let mut skipped = false;
                for check in effective.checks.iter_mut() {
                    if allowed.contains(&check.name)
                        && check.phases.iter().any(|p| p == "preflight")
                    {
                        check.phases.retain(|p| p != "preflight");
                        skipped = true;
                    }
                }
                effective.checks.retain(|c| !c.phases.is_empty());
                if skipped {
                    changes.push(format!(
                        "preflight checks skipped (--skip-checks): {}",
                        allowed.join(", ")
                    ));
                }
            }
        }
        if request.override_policy && request.reason.as_deref().is_none_or(str::is_empty) {
            return Err(EngineError::BadRequest(
                "--override needs --reason: say why, it is recorded".into(),
            ));
        }
        let mut overridden = Vec::new();
        if let Some(lock) = self
            .store
            .flag::<Lock>(name, ServiceFlag::Locked)
            .map_err(EngineError::Internal)?
        {
            let rule = lock_rule(name, &lock);
            if !request.override_policy {
                return Err(EngineError::Conflict(format!(
                    "deployments of `{name}` are held by {rule}. `runway unlock` lifts it; an \
                     admin may deploy anyway with --override --reason"
                )));
            }
            overridden.push(rule);
        }
        let calendar = effective
            .calendar(&type_name, &deploy_type)
            .map_err(EngineError::BadRequest)?;
        if let Verdict::Closed { rule, next_open } = calendar.check(self.clock.now(), &type_name) {
            if !request.override_policy {
                let next = next_window(next_open, calendar.zone);
                return Err(EngineError::Conflict(format!(
                    "a `{type_name}` deployment of `{name}` cannot start now: {rule}; {next}. \
                     `runway windows` shows the calendar; an admin may deploy anyway with \
                     --override --reason"
                )));
            }
            overridden.push(rule);
        }
        let digest = digest(
            &request.version,
            &effective,
            &type_name,
            &request.base_dir,
            &PendingStart {
                skip_checks: skip_all_checks,
                overridden: overridden.clone(),
            },
        );
        Ok(Admitted {
            type_name,
            deploy_type,
            spec: effective,
            skip_all_checks,
            overridden,
            changes,
            digest,
        })
    }

    /// Ends every deployment of `service` still waiting for approval: deployment `by_id`
    /// (`what` it is) took its place, and an approval must never bring back an older request.
    pub(crate) fn supersede_waiting(&self, service: &str, by_id: DeploymentId, what: &str) {
        for old in self
            .store
            .awaiting_approval(Some(service))
            .unwrap_or_default()
        {
            if old.id == by_id {
                continue;
            }
            let reason = format!("superseded by {what} #{by_id} before it was approved");
            if let Err(e) = self.store.end_awaiting(old.id, &reason) {
                tracing::error!(deployment = %old.id, "cannot end a superseded request: {e:#}");
            }
        }
    }

    /// Journals what the deployment's type changed of the file's config.
    pub(crate) fn journal_type(&self, id: DeploymentId, type_name: &str, changes: Vec<String>) {
        if !changes.is_empty() {
            self.journal(
                id,
                Event::TypeApplied {
                    deploy_type: type_name.to_string(),
                    changes,
                },
            );
        }
    }

    /// The deploy policy (`[deploy]` and `[types]`) of the release serving `service`: what a
    /// deploy that changes it is compared with, so that only an admin loosens it.
    pub fn serving_policy(
        &self,
        service: &str,
    ) -> Result<Option<(runway_spec::DeployPolicy, runway_spec::DeployTypes)>> {
        Ok(self
            .serving(service)?
            .map(|release| (release.spec.deploy, release.spec.types)))
    }

    /// A rollback to a release newer than the serving one (one rolled back before): forward,
    /// so the lock and the calendar of its type judge it as they judge a deploy.
    pub(crate) fn admit_forward(&self, service: &str, target: &Deployment) -> Result<()> {
        if let Some(lock) = self.store.flag::<Lock>(service, ServiceFlag::Locked)? {
            return Err(EngineError::Conflict(format!(
                "{} is newer than the serving release, so going to it is a deploy, and \
                 deployments of `{service}` are held by {}. `runway unlock` lifts it",
                target.version,
                lock_rule(service, &lock)
            )));
        }
        let Some(spec) = &target.spec else {
            return Ok(());
        };
        let (type_name, t) = spec
            .deploy_type(target.deploy_type.as_deref())
            .map_err(EngineError::Conflict)?;
        let calendar = spec
            .calendar(&type_name, &t)
            .map_err(EngineError::Conflict)?;
        if let Verdict::Closed { rule, next_open } = calendar.check(self.clock.now(), &type_name) {
            let next = next_window(next_open, calendar.zone);
            return Err(EngineError::Conflict(format!(
                "{} is newer than the serving release, so going to it is a `{type_name}` \
                 deployment, which cannot start now: {rule}; {next}",
                target.version
            )));
        }
        Ok(())
    }

    /// `runway lock --reason`: holds every deployment of `service` until `unlock`.
    pub fn lock(&self, service: &str, by: &str, reason: &str) -> Result<String> {
        if reason.trim().is_empty() {
            return Err(EngineError::BadRequest(
                "a lock needs a reason (a named incident, a launch): --reason".into(),
            ));
        }
        // A service that has run, or has asked to (a deployment waiting for approval).
        if self.service(service).is_err() && self.store.history(Some(service), 1)?.is_empty() {
            return Err(EngineError::NotFound(format!(
                "no service named `{service}` has been deployed or asked to be"
            )));
        }
        self.store.ensure_service(service)?;
        if let Some(lock) = self.store.flag::<Lock>(service, ServiceFlag::Locked)? {
            return Err(EngineError::Conflict(format!(
                "`{service}` is locked already, by {} since {}: {}",
                lock.by, lock.since, lock.reason
            )));
        }
        let lock = Lock {
            by: by.to_string(),
            reason: reason.to_string(),
            since: runway_wire::record::now(),
        };
        self.store
            .set_flag(service, ServiceFlag::Locked, Some(&lock))?;
        tracing::info!(service, by, reason, "deployments locked");
        Ok(format!(
            "deployments of `{service}` are held: {reason} (rollbacks still run; `runway unlock` \
             lifts it)"
        ))
    }

    pub fn unlock(&self, service: &str, by: &str) -> Result<String> {
        let Some(lock) = self.store.flag::<Lock>(service, ServiceFlag::Locked)? else {
            return Err(EngineError::Conflict(format!("`{service}` is not locked")));
        };
        self.store
            .set_flag::<Lock>(service, ServiceFlag::Locked, None)?;
        tracing::info!(service, by, "deployments unlocked");
        Ok(format!(
            "`{service}` is unlocked (it was locked by {} since {}: {})",
            lock.by, lock.since, lock.reason
        ))
    }

    /// The lock on `service`, if any.
    pub fn lock_of(&self, service: &str) -> Option<Lock> {
        self.store
            .flag::<Lock>(service, ServiceFlag::Locked)
            .ok()
            .flatten()
    }

    /// Records a deploy that waits for approval, superseding any the service had waiting.
    pub(crate) fn await_approval(
        &self,
        request: &DeployRequest,
        admitted: Admitted,
        by: &str,
    ) -> Result<Deployment> {
        let name = &request.spec.service.name;
        let previous = self.serving(name)?;
        let waiting = self.store.awaiting_approval(Some(name))?;
        let id = self
            .store
            .insert_deployment(runway_wire::record::NewDeployment {
                service: name,
                kind: runway_wire::record::Kind::Deploy,
                version: &request.version,
                previous_version: previous.as_ref().map(|p| p.version.as_str()),
                previous_release_id: previous.as_ref().map(|p| p.id),
                spec: &admitted.spec,
                base_dir: &request.base_dir,
                requested_by: by,
                request_reason: request.reason.as_deref(),
                deploy_type: Some(&admitted.type_name),
                digest: Some(&admitted.digest),
                commit: request.commit.as_deref(),
                commit_time: request.commit_time.as_deref(),
                status: Status::AwaitingApproval,
            })?;
        self.store.ensure_service(name)?;
        for old in waiting {
            self.store.end_awaiting(
                old.id,
                &format!(
                    "superseded by deployment #{id} ({}) before it was approved",
                    request.version
                ),
            )?;
        }
        let pending = PendingStart {
            skip_checks: admitted.skip_all_checks,
            overridden: admitted.overridden.clone(),
        };
        self.store.set_progress(
            id,
            &serde_json::to_value(&pending).map_err(anyhow::Error::from)?,
        )?;
        let t = &admitted.deploy_type;
        self.journal_type(id, &admitted.type_name, admitted.changes.clone());
        self.journal(
            id,
            Event::AwaitingApproval {
                deploy_type: admitted.type_name.clone(),
                approvals: t.approvals,
                approvers: t.approvers.clone(),
                digest: admitted.digest.clone(),
                by: by.to_string(),
                reason: request.reason.clone(),
            },
        );
        if !admitted.overridden.is_empty() {
            self.journal(
                id,
                Event::Overridden {
                    rules: admitted.overridden,
                    by: by.to_string(),
                    reason: request.reason.clone().unwrap_or_default(),
                },
            );
        }
        self.store
            .deployment(id)?
            .ok_or_else(|| EngineError::Internal(anyhow::anyhow!("deployment #{id} vanished")))
    }

    /// A waiting deployment and its type's settings.
    fn waiting(&self, id: DeploymentId) -> Result<(Deployment, String, DeployType)> {
        let d = self
            .store
            .deployment(id)?
            .ok_or_else(|| EngineError::NotFound(format!("no deployment #{id}")))?;
        if d.status != Status::AwaitingApproval {
            return Err(EngineError::Conflict(format!(
                "deployment #{id} is {}, not awaiting approval; `runway approvals` lists those \
                 that are",
                d.status.as_str()
            )));
        }
        let spec = d.spec.clone().ok_or_else(|| {
            EngineError::Internal(anyhow::anyhow!("deployment #{id} has no config"))
        })?;
        let type_name = d.deploy_type.clone().unwrap_or_default();
        let (_, t) = spec
            .deploy_type(Some(&type_name))
            .map_err(EngineError::Conflict)?;
        Ok((d, type_name, t))
    }

    /// The approvals of deployment `id` that count now (distinct, fresh, of what it is, by
    /// roles its type lists, the requester's only if allowed).
    pub fn counted_approvals(&self, id: DeploymentId) -> Result<Vec<ApprovalRow>> {
        let (d, _, t) = self.waiting(id)?;
        Ok(self.counting(&d, &t))
    }

    fn counting(&self, d: &Deployment, t: &DeployType) -> Vec<ApprovalRow> {
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(t.approval_ttl.0).unwrap_or(chrono::Duration::zero());
        // A revoked token's approvals go with it (read failing: none count).
        let Ok(revoked) = self.store.revoked_identities() else {
            return Vec::new();
        };
        let mut counted: Vec<ApprovalRow> = Vec::new();
        for a in self
            .store
            .approvals(d.id)
            .unwrap_or_default()
            .into_iter()
            .rev()
        {
            let fresh = DateTime::parse_from_rfc3339(&a.at)
                .map(|at| {
                    at.with_timezone(&Utc)
                        .checked_add_signed(ttl)
                        .is_some_and(|until| until > now)
                })
                .unwrap_or(false);
            let own = a.identity == d.requested_by && !t.self_approval;
            if a.verdict == "approve"
                && fresh
                && !own
                && !revoked.contains(&a.identity)
                && Some(&a.digest) == d.digest.as_ref()
                && !counted.iter().any(|c| c.identity == a.identity)
            {
                counted.push(a);
            }
        }
        counted.reverse();
        counted
    }

    /// `runway approve ID`: records `by`'s approval of what `digest` names, and starts the
    /// deployment once enough count and its calendar is open.
    pub async fn approve(
        self: &Arc<Self>,
        id: DeploymentId,
        by: &Identity,
        digest: &str,
    ) -> Result<(Deployment, String)> {
        let (d, type_name, t) = self.waiting(id)?;
        if Some(digest) != d.digest.as_deref() {
            return Err(EngineError::Conflict(format!(
                "deployment #{id} is not what you were shown (its digest is {}, you approved \
                 {digest}): look again with `runway approvals`",
                d.digest.as_deref().unwrap_or("none")
            )));
        }
        if by.name == d.requested_by && !t.self_approval {
            return Err(EngineError::Forbidden(format!(
                "{} asked for deployment #{id} and cannot approve it: a `{type_name}` deployment \
                 needs someone else's approval",
                by.name
            )));
        }
        if !may_approve(&t, by.role) {
            return Err(EngineError::Forbidden(format!(
                "a `{type_name}` deployment is approved by {}; {} is {}",
                t.approvers.join(" or "),
                by.name,
                by.role
            )));
        }
        self.store.insert_approval(&ApprovalRow {
            deployment_id: id,
            identity: by.name.clone(),
            role: by.role.to_string(),
            verdict: "approve".into(),
            reason: None,
            digest: digest.to_string(),
            at: self
                .clock
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        })?;
        self.journal(
            id,
            Event::Approved {
                by: by.name.clone(),
                role: by.role.to_string(),
            },
        );
        let counted = self.counting(&d, &t).len() as u32;
        if counted < t.approvals {
            return Ok((
                d,
                format!(
                    "approved by {} ({counted} of {} approvals); it waits for {} more",
                    by.name,
                    t.approvals,
                    t.approvals - counted
                ),
            ));
        }
        let pending: PendingStart = self.progress(id);
        let spec = d.spec.clone().ok_or_else(|| {
            EngineError::Internal(anyhow::anyhow!("deployment #{id} has no config"))
        })?;
        // The lock and the calendar are asked again; only the very rules an override passed
        // when it was requested stay passed (a lock or freeze that came since holds).
        let calendar = spec
            .calendar(&type_name, &t)
            .map_err(EngineError::Conflict)?;
        if let Verdict::Closed { rule, next_open } = calendar.check(self.clock.now(), &type_name) {
            if !pending.overridden.contains(&rule) {
                let next = next_window(next_open, calendar.zone);
                return Ok((
                    d,
                    format!(
                        "approved ({counted} of {}), but it cannot start now: {rule}; {next}. It \
                         keeps its approvals while they are fresh: `runway approve {id}` inside \
                         the window starts it",
                        t.approvals
                    ),
                ));
            }
        }
        if let Some(lock) = self.store.flag::<Lock>(&d.service, ServiceFlag::Locked)? {
            if !pending.overridden.contains(&lock_rule(&d.service, &lock)) {
                let message = format!(
                    "approved ({counted} of {}), but `{}` is locked by {}: {}. `runway approve \
                     {id}` after `runway unlock` starts it",
                    t.approvals, d.service, lock.by, lock.reason
                );
                return Ok((d, message));
            }
        }
        let started = self.start_approved(d, spec, pending).await?;
        let message = format!(
            "approved ({counted} of {}): deployment #{id} of {} starts",
            t.approvals, started.version
        );
        Ok((started, message))
    }

    /// `runway reject ID --reason`: ends a waiting deployment (an approver's, or the
    /// requester withdrawing it).
    pub fn reject(&self, id: DeploymentId, by: &Identity, reason: &str) -> Result<Deployment> {
        let (d, _, t) = self.waiting(id)?;
        if reason.trim().is_empty() {
            return Err(EngineError::BadRequest(
                "a rejection needs a reason: --reason".into(),
            ));
        }
        if !may_approve(&t, by.role) && by.name != d.requested_by {
            return Err(EngineError::Forbidden(format!(
                "only its approvers ({}) or its requester ({}) may reject deployment #{id}",
                t.approvers.join(", "),
                d.requested_by
            )));
        }
        self.store.insert_approval(&ApprovalRow {
            deployment_id: id,
            identity: by.name.clone(),
            role: by.role.to_string(),
            verdict: "reject".into(),
            reason: Some(reason.to_string()),
            digest: d.digest.clone().unwrap_or_default(),
            at: self
                .clock
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        })?;
        self.journal(
            id,
            Event::Rejected {
                by: by.name.clone(),
                reason: reason.to_string(),
            },
        );
        if !self
            .store
            .end_awaiting(id, &format!("rejected by {}: {reason}", by.name))?
        {
            return Err(EngineError::Conflict(format!(
                "deployment #{id} started before the rejection arrived; `runway abort` or \
                 `runway rollback` takes it back"
            )));
        }
        Ok(self.store.deployment(id)?.unwrap_or(d))
    }

    /// Deployments waiting for approval, with their approvals and what they need.
    pub fn awaiting(&self, service: Option<&str>) -> Result<Vec<ApprovalView>> {
        let mut views = Vec::new();
        for d in self.store.awaiting_approval(service)? {
            let Ok((d, _, t)) = self.waiting(d.id) else {
                continue;
            };
            let counted = self.counting(&d, &t).len() as u32;
            let serving = self.serving(&d.service)?.map(|r| r.spec);
            let changed = changed_sections(d.spec.as_ref(), serving.as_ref());
            views.push(ApprovalView {
                changed,
                approvals: self.store.approvals(d.id)?,
                needed: t.approvals,
                approvers: t.approvers.clone(),
                self_approval: t.self_approval,
                approval_ttl: t.approval_ttl.to_string(),
                counted,
                deployment: d.into(),
            });
        }
        Ok(views)
    }
}

/// The top-level sections of `spec` that differ from `serving`'s (all of them without one).
fn changed_sections(spec: Option<&Spec>, serving: Option<&Spec>) -> Vec<String> {
    let object = |s: Option<&Spec>| match s.map(serde_json::to_value) {
        Some(Ok(serde_json::Value::Object(map))) => map,
        _ => serde_json::Map::new(),
    };
    let (new, old) = (object(spec), object(serving));
    let mut keys: Vec<&String> = new.keys().chain(old.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| new.get(*k) != old.get(*k))
        .cloned()
        .collect()
}
