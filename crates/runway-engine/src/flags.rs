//! Feature flags of a service: their definitions (runway-flags' model) in the records, each
//! change recorded as a deployment of kind `flag` (so it is in history, the journal, the
//! event streams, notifications and the dashboard like any other change), evaluation for the
//! OFREP endpoint, and the judged gradual rollout.
//!
//! A rollout (`runway flags rollout NAME --steps 5%,25%,50%,100% --interval 30m`) first
//! measures the service for a baseline (the proxy's window over `min(interval, 5m)`, and on
//! until it holds [`MIN_BASELINE_REQUESTS`]), then raises the flag's share step by step. Each
//! step is judged every `[analysis] interval` by the canary's judge (runway-analysis, the same
//! policy, the same evidence and looks), with the service's numbers during the step as the
//! "canary" and the baseline as the "stable": a flag changes what one release does, so what it
//! is compared with is that release before the flag. A failing step (or one that cannot be
//! judged) turns the flag off at once and records the numbers that decided it. The rollout
//! holds the service's operation lock: no deployment changes the service under the judge.
//! `runway flags off` is the kill switch: it needs no lock and ends a rollout under way.

use std::sync::Arc;
use std::time::Duration;

use runway_analysis::{Decision, Judge};
use runway_flags::model::Rollout;
use runway_flags::{Context, Evaluation, Flag};
use runway_wire::api::{FlagRolloutRequest, FlagView};
use runway_wire::id::DeploymentId;
use runway_wire::metrics::WindowSnapshot;
use runway_wire::record::{Deployment, FlagRow, Kind, NewDeployment, Status};
use runway_wire::Event;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::canary::Analysis;
use crate::measure::{self, Measurement};
use crate::service::{Operation, OperationGuard, Service};
use crate::{Engine, EngineError, Release, Result};

/// The longest baseline a rollout measures before its first step.
const MAX_BASELINE: Duration = Duration::from_secs(300);
/// The fewest requests a baseline holds (measured past the rollout's interval until it has
/// them, within [`MAX_BASELINE`]). The baseline is the "stable" side of every step's
/// comparison and, unlike a canary's stable release, it never grows: one of a few hundred
/// requests leaves so wide an interval around the service's own error rate that a step
/// failing at a few percent cannot be told apart from it before the judge's later, stricter
/// looks, and the step ends undecided instead of failed.
const MIN_BASELINE_REQUESTS: u64 = 1_000;
/// Latencies kept of the baseline (a uniform sample), so that its record stays small.
const BASELINE_SAMPLES: usize = 5_000;

/// Where a rollout stands; persisted as its deployment's `progress`, so a restarted server
/// continues exactly there.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FlagProgress {
    flag: String,
    variant: String,
    steps: Vec<f64>,
    interval_ms: u64,
    /// The step under way (an index into `steps`).
    step: usize,
    /// How long the step has been watched.
    step_ms: u64,
    /// The service before the rollout: what each step is compared with.
    baseline: Option<WindowSnapshot>,
    /// The flag's revision the rollout wrote last: another one means someone else changed it.
    revision: u64,
    /// Who the rollout's writes are by (`rollout #N`): a revision of its own that a crash kept
    /// it from recording is still its own.
    writer: String,
    /// How long the baseline was measured.
    baseline_ms: u64,
    /// Whether this step's judge has been given the baseline: once a step, so that its
    /// evidence holds the baseline once, not once an interval.
    baseline_given: bool,
    /// The judge's clock, which survives restarts.
    analysis_ms: u64,
    judge: Judge,
}

fn bad(message: impl Into<String>) -> EngineError {
    EngineError::BadRequest(message.into())
}

/// A flag row as the API shows it.
fn view(row: &FlagRow, rollout: Option<DeploymentId>) -> FlagView {
    FlagView {
        name: row.definition["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        definition: row.definition.clone(),
        revision: row.revision,
        updated_by: row.updated_by.clone(),
        updated_at: row.updated_at.clone(),
        rollout,
    }
}

/// What a flag serves, in one line (the journal's and the notifications' words).
fn describe(flag: &Flag) -> String {
    if !flag.enabled {
        return format!("off (serves `{}` to everyone)", flag.off_variant);
    }
    let mut parts = Vec::new();
    if !flag.rules.is_empty() {
        parts.push(format!("{} targeting rule(s)", flag.rules.len()));
    }
    if let Some(r) = &flag.rollout {
        parts.push(format!(
            "`{}` for {}% of the targeting keys",
            r.variant, r.percent
        ));
    }
    parts.push(format!("`{}` otherwise", flag.default_variant));
    format!("on: {}", parts.join(", "))
}

impl Engine {
    fn flag_rows(&self, service: &str) -> Result<Vec<FlagRow>> {
        Ok(self.store.flags(service)?)
    }

    fn flag_row(&self, service: &str, name: &str) -> Result<FlagRow> {
        self.flag_rows(service)?
            .into_iter()
            .find(|r| r.definition["name"] == name)
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "`{service}` has no flag `{name}`; see `runway flags list`"
                ))
            })
    }

    fn parse_flag(definition: &serde_json::Value) -> Result<Flag> {
        let flag: Flag = serde_json::from_value(definition.clone())
            .map_err(|e| bad(format!("the flag's definition does not read: {e}")))?;
        let problems = flag.problems();
        if !problems.is_empty() {
            return Err(bad(problems.join("; ")));
        }
        Ok(flag)
    }

    /// The rollout under way of `service`'s flag `name`, if any.
    fn rollout_of(&self, service: &str, name: &str) -> Option<DeploymentId> {
        let svc = self.service(service).ok()?;
        let op = svc.operation()?;
        let d = self.store.deployment(op.deployment_id).ok()??;
        (d.kind == Kind::Flag && d.version == name).then_some(d.id)
    }

    /// `service`'s flags, by name.
    pub fn flags(&self, service: &str) -> Result<Vec<FlagView>> {
        Ok(self
            .flag_rows(service)?
            .iter()
            .map(|r| {
                let name = r.definition["name"].as_str().unwrap_or_default();
                view(r, self.rollout_of(service, name))
            })
            .collect())
    }

    pub fn flag(&self, service: &str, name: &str) -> Result<FlagView> {
        let row = self.flag_row(service, name)?;
        Ok(view(&row, self.rollout_of(service, name)))
    }

    /// Evaluates `service`'s flag `name` for `context`; `None` when it has no such flag.
    pub fn evaluate_flag(
        &self,
        service: &str,
        name: &str,
        context: &Context,
    ) -> Result<Option<Evaluation>> {
        Ok(self
            .flag_rows(service)?
            .into_iter()
            .filter(|r| r.definition["name"] == name)
            .find_map(|r| serde_json::from_value::<Flag>(r.definition).ok())
            .map(|flag| runway_flags::evaluate(&flag, context)))
    }

    /// Every flag of `service` for `context`, and a tag of the definitions they came from
    /// (OFREP's ETag: equal tags, equal answers for one context).
    pub fn evaluate_flags(
        &self,
        service: &str,
        context: &Context,
    ) -> Result<(Vec<Evaluation>, String)> {
        use sha2::{Digest, Sha256};
        let rows = self.flag_rows(service)?;
        let mut tag = Sha256::new();
        let mut evaluations = Vec::new();
        for row in rows {
            tag.update(row.definition.to_string().as_bytes());
            tag.update(row.revision.to_be_bytes());
            if let Ok(flag) = serde_json::from_value::<Flag>(row.definition) {
                evaluations.push(runway_flags::evaluate(&flag, context));
            }
        }
        tag.update(serde_json::to_vec(context).unwrap_or_default());
        let digest = tag.finalize();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok((evaluations, format!("\"{hex}\"")))
    }

    /// Sets flag `name` of `service` to `definition` (runway-flags' model, whole): a change
    /// recorded, audited and notified. Refused, changing nothing, when the definition has a
    /// problem or the flag is being rolled out (`runway flags off` stops a rollout).
    pub fn set_flag(
        self: &Arc<Self>,
        service: &str,
        name: &str,
        definition: &serde_json::Value,
        reason: Option<&str>,
        by: &str,
    ) -> Result<FlagView> {
        let flag = Self::parse_flag(definition)?;
        if flag.name != name {
            return Err(bad(format!(
                "the definition names flag `{}`, not `{name}`",
                flag.name
            )));
        }
        if let Some(id) = self.rollout_of(service, name) {
            return Err(EngineError::Busy(format!(
                "flag `{name}` is being rolled out (#{id}): wait for it, or stop it with \
                 `runway flags off {name}`"
            )));
        }
        let serving = self.flag_service(service)?;
        self.change_flag(service, &serving, &flag, reason, by)?;
        self.flag(service, name)
    }

    /// The kill switch: flag `name` serves its off variant to everyone, at once, whatever
    /// runs (a rollout under way sees it and ends).
    pub fn flag_off(
        self: &Arc<Self>,
        service: &str,
        name: &str,
        reason: Option<&str>,
        by: &str,
    ) -> Result<FlagView> {
        let row = self.flag_row(service, name)?;
        let mut flag = Self::parse_flag(&row.definition)?;
        flag.enabled = false;
        let serving = self.flag_service(service)?;
        self.change_flag(service, &serving, &flag, reason, by)?;
        self.flag(service, name)
    }

    /// The serving release a flag's change is recorded against (its metrics judge rollouts).
    fn flag_service(&self, service: &str) -> Result<Release> {
        self.serving(service)?.ok_or_else(|| {
            EngineError::Conflict(format!(
                "`{service}` has no serving release: deploy it first (its flags are served \
                 with it and judged by its metrics)"
            ))
        })
    }

    /// Stores `flag` and records the change as a finished `flag` deployment.
    fn change_flag(
        &self,
        service: &str,
        serving: &Release,
        flag: &Flag,
        reason: Option<&str>,
        by: &str,
    ) -> Result<u64> {
        self.store_writable()?;
        let definition = serde_json::to_value(flag).map_err(anyhow::Error::from)?;
        let revision = self
            .store
            .put_flag(service, &flag.name, &definition, by, None)?
            .unwrap_or_default();
        let id =
            self.insert_flag_record(service, serving, &flag.name, reason, by, Status::Running)?;
        self.journal(
            id,
            Event::FlagChanged {
                flag: flag.name.clone(),
                change: describe(flag),
                by: by.to_string(),
            },
        );
        self.store.finish_deployment(id, Status::Succeeded, None)?;
        self.journal_tick.send_modify(|t| *t += 1);
        tracing::info!(service, flag = %flag.name, revision, by, "flag changed");
        Ok(revision)
    }

    fn insert_flag_record(
        &self,
        service: &str,
        serving: &Release,
        name: &str,
        reason: Option<&str>,
        by: &str,
        status: Status,
    ) -> Result<DeploymentId> {
        // A flag change is recorded as a deployment: not while the store refuses writes.
        self.store_writable()?;
        let base_dir = serving.base_dir.to_string_lossy().to_string();
        Ok(self.store.insert_deployment(NewDeployment {
            service,
            kind: Kind::Flag,
            version: name,
            previous_version: Some(&serving.version),
            previous_release_id: Some(serving.id),
            spec: &serving.spec,
            base_dir: &base_dir,
            requested_by: by,
            request_reason: reason,
            deploy_type: None,
            digest: None,
            commit: None,
            commit_time: None,
            status,
        })?)
    }

    /// Starts a judged rollout of flag `name`: returns its record at once.
    pub async fn flag_rollout(
        self: &Arc<Self>,
        service: &str,
        name: &str,
        request: &FlagRolloutRequest,
        by: &str,
    ) -> Result<Deployment> {
        let row = self.flag_row(service, name)?;
        let flag = Self::parse_flag(&row.definition)?;
        let variant = request.variant.clone().unwrap_or_else(|| "on".into());
        if !flag.variants.contains_key(&variant) {
            return Err(bad(format!(
                "flag `{name}` has no variant `{variant}` to roll out (it has {}): say which \
                 with --variant",
                flag.variants.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let steps = &request.steps;
        if steps.is_empty()
            || steps
                .iter()
                .any(|p| !(p.is_finite() && *p > 0.0 && *p <= 100.0))
            || steps.windows(2).any(|w| w[1] <= w[0])
        {
            return Err(bad(
                "--steps must be rising percentages above 0 and at most 100, e.g. 5%,25%,50%,100%",
            ));
        }
        let interval = runway_spec::parse_duration(&request.interval)
            .map_err(|e| bad(format!("--interval: {e}")))?;
        if interval < Duration::from_secs(1) {
            return Err(bad("--interval must be at least 1s"));
        }
        let serving = self.flag_service(service)?;
        if serving.spec.kubernetes.is_some() {
            return Err(bad(
                "a judged flag rollout needs runway's proxy in front of the service to measure \
                 it, and a Kubernetes service has none: set the share by hand with `runway \
                 flags set NAME --percent P`",
            ));
        }
        if let Some(lock) = self.lock_of(service) {
            return Err(EngineError::Conflict(format!(
                "service `{service}` is locked by {} ({}): `runway unlock` first",
                lock.by, lock.reason
            )));
        }
        let analysis = Analysis::from_spec(&serving.spec).map_err(bad)?;
        if analysis
            .sources
            .iter()
            .any(|(_, m)| matches!(m, Measurement::Prometheus(_)))
        {
            return Err(bad(
                "a flag rollout is judged on runway's proxy metrics: this service's [analysis] \
                 has Prometheus metrics, whose queries cannot tell a flag's users apart",
            ));
        }
        let svc = self.service(service)?;
        if let Some(frozen) = self.frozen(service) {
            return Err(EngineError::Frozen(format!(
                "service `{service}` is frozen by deployment #{}: decide first",
                frozen.deployment_id
            )));
        }
        let (guard, id) = svc.begin(
            || {
                let id = self.insert_flag_record(
                    service,
                    &serving,
                    name,
                    request.reason.as_deref(),
                    by,
                    Status::Running,
                )?;
                Ok((
                    Operation {
                        deployment_id: id,
                        description: format!(
                            "flag rollout #{id} of {name} (`runway flags off {name}` ends it)"
                        ),
                    },
                    id,
                ))
            },
            |op| {
                EngineError::Busy(format!(
                    "service `{service}` is busy with {}; wait for it (`runway status`) and try again",
                    op.description
                ))
            },
        )?;
        let progress = FlagProgress {
            flag: name.to_string(),
            variant,
            steps: steps.clone(),
            interval_ms: interval.as_millis() as u64,
            step: 0,
            step_ms: 0,
            baseline: None,
            revision: row.revision,
            writer: format!("rollout #{id}"),
            baseline_ms: 0,
            baseline_given: false,
            analysis_ms: 0,
            judge: Judge::new(),
        };
        self.journal(
            id,
            Event::Started {
                kind: Kind::Flag,
                version: name.to_string(),
                previous_version: Some(serving.version.clone()),
                replicas: serving.spec.run.replicas,
                by: by.to_string(),
                reason: request.reason.clone(),
            },
        );
        self.save_flag_progress(id, &progress);
        let deployment = self
            .store
            .deployment(id)?
            .ok_or_else(|| anyhow::anyhow!("deployment vanished"))?;
        let engine = self.clone();
        tokio::spawn(async move {
            engine
                .run_flag_rollout(svc, id, progress, analysis, guard)
                .await;
        });
        Ok(deployment)
    }

    /// Picks a rollout up where it was after a restart.
    pub(super) fn resume_flag_rollout(self: &Arc<Self>, d: &Deployment) -> anyhow::Result<()> {
        let svc = self.service(&d.service)?;
        let progress: Option<FlagProgress> = d
            .progress
            .clone()
            .and_then(|p| serde_json::from_value(p).ok());
        let analysis = d
            .spec
            .as_ref()
            .map(|s| Analysis::from_spec(s).map_err(anyhow::Error::msg))
            .transpose()?;
        let (Some(progress), Some(analysis)) = (progress, analysis) else {
            self.journal(
                d.id,
                Event::Failed {
                    reason: "the rollout's progress cannot be read after the restart".into(),
                    before_change: None,
                },
            );
            self.store.finish_deployment(
                d.id,
                Status::Failed,
                Some("the rollout's progress cannot be read after the restart"),
            )?;
            return Ok(());
        };
        let engine = self.clone();
        let id = d.id;
        let description = format!(
            "flag rollout #{id} of {} (`runway flags off {}` ends it)",
            d.version, d.version
        );
        // The service's own recovery (its replicas re-adopted) may hold the service first.
        tokio::spawn(async move {
            let guard = loop {
                let began = svc.begin(
                    || {
                        Ok::<_, ()>((
                            Operation {
                                deployment_id: id,
                                description: description.clone(),
                            },
                            (),
                        ))
                    },
                    |_| (),
                );
                match began {
                    Ok((guard, ())) => break guard,
                    Err(()) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
            engine.journal(
                id,
                Event::Resumed {
                    after: "server restart".into(),
                },
            );
            engine
                .run_flag_rollout(svc, id, progress, analysis, guard)
                .await;
        });
        Ok(())
    }

    fn save_flag_progress(&self, id: DeploymentId, progress: &FlagProgress) {
        match serde_json::to_value(progress) {
            Ok(p) => {
                if let Err(e) = self.store.set_progress(id, &p) {
                    tracing::error!(deployment = %id, "cannot record the rollout's progress: {e:#}");
                }
            }
            Err(e) => {
                tracing::error!(deployment = %id, "cannot record the rollout's progress: {e}")
            }
        }
    }

    async fn run_flag_rollout(
        self: Arc<Self>,
        svc: Arc<Service>,
        id: DeploymentId,
        mut progress: FlagProgress,
        analysis: Analysis,
        guard: OperationGuard,
    ) {
        let started = Instant::now();
        let outcome = self.flag_steps(&svc, id, &mut progress, &analysis).await;
        let by = format!("rollout #{id}");
        let (status, reason) = match outcome {
            Ok(()) => {
                self.journal(
                    id,
                    Event::Succeeded {
                        seconds: started.elapsed().as_secs_f64(),
                    },
                );
                (Status::Succeeded, None)
            }
            // Stopped by someone else's change (`flags off`, a set): the flag is theirs now.
            Err(RolloutEnd::Stopped(reason)) => {
                self.journal(
                    id,
                    Event::Failed {
                        reason: reason.clone(),
                        before_change: None,
                    },
                );
                (Status::Failed, Some(reason))
            }
            Err(RolloutEnd::Judged(reason)) => {
                // Off first: the users who have it stop getting it now.
                self.journal(
                    id,
                    Event::RollingBack {
                        reason: reason.clone(),
                    },
                );
                let off = self
                    .flag_row(&svc.name, &progress.flag)
                    .and_then(|row| Self::parse_flag(&row.definition))
                    .and_then(|mut flag| {
                        flag.enabled = false;
                        let definition =
                            serde_json::to_value(&flag).map_err(anyhow::Error::from)?;
                        self.store
                            .put_flag(&svc.name, &flag.name, &definition, &by, None)?;
                        Ok(flag)
                    });
                match off {
                    Ok(flag) => self.journal(
                        id,
                        Event::FlagChanged {
                            flag: flag.name.clone(),
                            change: describe(&flag),
                            by: by.clone(),
                        },
                    ),
                    Err(e) => tracing::error!(deployment = %id, "cannot turn the flag off: {e}"),
                }
                (Status::RolledBack, Some(reason))
            }
        };
        tracing::info!(
            deployment = %id,
            service = %svc.name,
            flag = %progress.flag,
            status = status.as_str(),
            reason = reason.as_deref().unwrap_or(""),
            "flag rollout ended"
        );
        self.write_or_hold(super::store_faults::HeldWrite::Outcome {
            id,
            status,
            reason,
            at: runway_wire::record::now(),
        });
        self.journal_tick.send_modify(|t| *t += 1);
        drop(guard);
    }

    /// The baseline, then each step, judged; Ok when the last step passed.
    async fn flag_steps(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        progress: &mut FlagProgress,
        analysis: &Analysis,
    ) -> std::result::Result<(), RolloutEnd> {
        let interval = Duration::from_millis(progress.interval_ms);
        if progress.baseline.is_none() {
            let window = svc.router.open_window();
            let started = Instant::now();
            self.watch_flag(svc, progress, interval.min(MAX_BASELINE))
                .await?;
            let mut taken = window.take();
            let mut requests: u64 = taken.iter().map(|w| w.requests).sum();
            while requests < MIN_BASELINE_REQUESTS && started.elapsed() < MAX_BASELINE {
                self.watch_flag(svc, progress, Duration::from_millis(250))
                    .await?;
                let more = window.take();
                requests += more.iter().map(|w| w.requests).sum::<u64>();
                taken.extend(more);
            }
            let baseline = combined(taken);
            progress.baseline_ms = started.elapsed().as_millis() as u64;
            self.journal(
                id,
                Event::FlagBaseline {
                    requests: baseline.requests,
                    errors: baseline.errors,
                    p99_seconds: runway_analysis::stats::quantile(&baseline.latencies, 0.99),
                },
            );
            progress.baseline = Some(baseline);
            self.save_flag_progress(id, progress);
        }
        let baseline = progress.baseline.clone().unwrap_or_default();
        let by = format!("rollout #{id}");
        while progress.step < progress.steps.len() {
            let percent = progress.steps[progress.step];
            // Entering the step (again, after a restart: writing the same share is harmless).
            let row = self.rollout_still_ours(svc, progress)?;
            let mut flag = Self::parse_flag(&row.definition)
                .map_err(|e| RolloutEnd::Stopped(e.to_string()))?;
            flag.enabled = true;
            flag.rollout = Some(Rollout {
                percent,
                variant: progress.variant.clone(),
            });
            let definition =
                serde_json::to_value(&flag).map_err(|e| RolloutEnd::Stopped(e.to_string()))?;
            progress.revision = self.write_flag(svc, progress, &definition)?;
            if progress.step_ms == 0 {
                progress.judge.start_step();
                progress.baseline_given = false;
                // Journaled once, also when a crash came right after the entry.
                let entered = matches!(
                    self.last_journaled(id, |e| matches!(e, Event::FlagStep { .. })),
                    Some(Event::FlagStep { percent: p, .. }) if p == percent
                );
                if !entered {
                    self.journal(
                        id,
                        Event::FlagStep {
                            flag: flag.name.clone(),
                            percent,
                        },
                    );
                }
            }
            self.save_flag_progress(id, progress);
            self.judge_flag_step(svc, id, progress, analysis, &baseline, interval)
                .await?;
            progress.step += 1;
            progress.step_ms = 0;
            self.save_flag_progress(id, progress);
        }
        // At 100%: the variant is the flag's default, for everyone, and the split is gone.
        if progress.steps.last() == Some(&100.0) {
            let row = self.rollout_still_ours(svc, progress)?;
            let mut flag = Self::parse_flag(&row.definition)
                .map_err(|e| RolloutEnd::Stopped(e.to_string()))?;
            flag.default_variant = progress.variant.clone();
            flag.rollout = None;
            let definition =
                serde_json::to_value(&flag).map_err(|e| RolloutEnd::Stopped(e.to_string()))?;
            progress.revision = self.write_flag(svc, progress, &definition)?;
            self.save_flag_progress(id, progress);
            self.journal(
                id,
                Event::FlagChanged {
                    flag: flag.name.clone(),
                    change: describe(&flag),
                    by,
                },
            );
        }
        Ok(())
    }

    /// Waits `length`, watching that nobody turns the flag off meanwhile.
    async fn watch_flag(
        &self,
        svc: &Service,
        progress: &mut FlagProgress,
        length: Duration,
    ) -> std::result::Result<(), RolloutEnd> {
        let deadline = Instant::now() + length;
        while Instant::now() < deadline {
            progress.revision = self.rollout_still_ours(svc, progress)?.revision;
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_millis(250))).await;
        }
        Ok(())
    }

    /// Writes the flag only if nobody changed it since the rollout's last write (a `flags
    /// off` in between wins): its new revision.
    fn write_flag(
        &self,
        svc: &Service,
        progress: &FlagProgress,
        definition: &serde_json::Value,
    ) -> std::result::Result<u64, RolloutEnd> {
        let written = self
            .store
            .put_flag(
                &svc.name,
                &progress.flag,
                definition,
                &progress.writer,
                Some(progress.revision),
            )
            .map_err(|e| RolloutEnd::Stopped(format!("{e:#}")))?;
        match written {
            Some(revision) => Ok(revision),
            None => Err(match self.rollout_still_ours(svc, progress) {
                Err(end) => end,
                Ok(_) => RolloutEnd::Stopped(format!(
                    "flag `{}` changed under the rollout; the rollout stopped there",
                    progress.flag
                )),
            }),
        }
    }

    /// The flag as the rollout last wrote it; the end of the rollout when someone else has
    /// changed it since. A revision the rollout wrote itself but could not record (a crash
    /// between the two) is its own.
    fn rollout_still_ours(
        &self,
        svc: &Service,
        progress: &FlagProgress,
    ) -> std::result::Result<FlagRow, RolloutEnd> {
        match self.flag_row(&svc.name, &progress.flag) {
            Ok(row)
                if row.revision == progress.revision
                    || (row.revision > progress.revision && row.updated_by == progress.writer) =>
            {
                Ok(row)
            }
            Ok(row) => Err(RolloutEnd::Stopped(format!(
                "flag `{}` was changed by {} during the rollout ({}); the rollout stopped there",
                progress.flag,
                row.updated_by,
                Self::parse_flag(&row.definition)
                    .map(|f| describe(&f))
                    .unwrap_or_default()
            ))),
            Err(e) => Err(RolloutEnd::Stopped(e.to_string())),
        }
    }

    /// One step, judged every analysis interval against the baseline; Ok once the step has
    /// been watched for `interval` and the judge may promote.
    async fn judge_flag_step(
        &self,
        svc: &Service,
        id: DeploymentId,
        progress: &mut FlagProgress,
        analysis: &Analysis,
        baseline: &WindowSnapshot,
        interval: Duration,
    ) -> std::result::Result<(), RolloutEnd> {
        let window = svc.router.open_window();
        let mut last = Instant::now();
        loop {
            // Checked often (a kill switch acts at once), judged each analysis interval.
            let next = last + analysis.interval;
            while Instant::now() < next {
                progress.revision = self.rollout_still_ours(svc, progress)?.revision;
                let left = next.saturating_duration_since(Instant::now());
                tokio::time::sleep(left.min(Duration::from_millis(250))).await;
            }
            let elapsed = last.elapsed();
            last = Instant::now();
            progress.analysis_ms += elapsed.as_millis() as u64;
            progress.step_ms += elapsed.as_millis() as u64;
            let now = combined(window.take());
            // The baseline's counts and samples once a step (the judge adds up each interval's
            // evidence); a rate, a value per second, against the baseline's own.
            let stable = if progress.baseline_given {
                WindowSnapshot::default()
            } else {
                baseline.clone()
            };
            let baseline_seconds = (progress.baseline_ms as f64 / 1000.0).max(1e-3);
            let input = runway_analysis::IntervalInput {
                at: Duration::from_millis(progress.analysis_ms),
                canary_requests: now.requests,
                metrics: analysis
                    .sources
                    .iter()
                    .filter_map(|(name, source)| match source {
                        Measurement::Proxy(runway_spec::ProxyMetric::RequestRate) => {
                            Some(runway_analysis::MetricInput::ok(
                                name.clone(),
                                runway_analysis::MetricWindow::values(
                                    Some(now.requests as f64 / elapsed.as_secs_f64().max(1e-3)),
                                    Some(baseline.requests as f64 / baseline_seconds),
                                ),
                            ))
                        }
                        Measurement::Proxy(metric) => {
                            Some(measure::proxy_input(name, *metric, &now, &stable, elapsed))
                        }
                        Measurement::Prometheus(_) => None,
                    })
                    .collect(),
            };
            progress.baseline_given = true;
            let result = progress.judge.judge(&analysis.policy, input);
            self.journal(
                id,
                Event::Analysis(serde_json::to_value(&result).unwrap_or_default()),
            );
            self.save_flag_progress(id, progress);
            match &result.decision {
                Decision::Rollback(reason) => {
                    return Err(RolloutEnd::Judged(format!(
                        "flag analysis failed at {}%: {reason}",
                        progress.steps[progress.step]
                    )))
                }
                // A flag rollout has nobody waiting on it as a paused canary has: a `pause_if`
                // that holds, or a step that cannot be decided (never promoted on too little
                // data), turns it off.
                Decision::Pause(reason) => {
                    return Err(RolloutEnd::Judged(format!(
                        "flag analysis stopped the step at {}%: {reason}",
                        progress.steps[progress.step]
                    )))
                }
                _ => {}
            }
            if progress.step_ms >= interval.as_millis() as u64 && progress.judge.can_promote() {
                return Ok(());
            }
        }
    }
}

/// How a rollout ended other than by passing its last step.
enum RolloutEnd {
    /// The judge failed a step (or could not judge it): the flag goes off.
    Judged(String),
    /// Someone else changed the flag: it is theirs, left as they set it.
    Stopped(String),
}

/// Every release's window as one: a flag's users are on every release.
fn combined(windows: Vec<WindowSnapshot>) -> WindowSnapshot {
    let mut all = WindowSnapshot::default();
    for w in windows {
        all.requests += w.requests;
        all.errors += w.errors;
        all.latencies.extend(w.latencies);
    }
    if all.latencies.len() > BASELINE_SAMPLES {
        // A uniform sample: every k-th of them.
        let step = all.latencies.len() as f64 / BASELINE_SAMPLES as f64;
        all.latencies = (0..BASELINE_SAMPLES)
            .map(|i| all.latencies[(i as f64 * step) as usize])
            .collect();
    }
    all.release = "service".into();
    all
}
