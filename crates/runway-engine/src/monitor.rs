//! Runbook 001's monitoring period: after a release has all traffic, the judge keeps watching
//! it for its type's `monitor` (`[types.standard] monitor = "30m"`) and can still roll it back,
//! by the same `[analysis]` (the type's own when it has one: its rollback criteria). Only the
//! new release serves now, so the verdicts rest on its own numbers against the conditions
//! (`error_rate > 0.01`); comparisons with a stable release have nothing to compare and stay
//! inconclusive, which never rolls back.
//!
//! `runway abort` takes the release back during the period, `runway promote` ends the watch
//! early. A deployment resumed after a crash watches its whole period again: longer, never
//! shorter.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use runway_analysis::{Decision, Judge};
use runway_wire::id::DeploymentId;
use runway_wire::Event;

use tokio::sync::mpsc::UnboundedReceiver;

use super::canary::{Analysis, Control};
use super::measure;
use super::{Engine, Failure, Release, Service};

impl Engine {
    /// The monitoring period of deployment `id`'s type, if it has one.
    pub(super) fn monitoring_period(&self, id: DeploymentId, target: &Release) -> Option<Duration> {
        let d = self.store.deployment(id).ok().flatten()?;
        let name = d.deploy_type.as_deref()?;
        let (_, t) = target.spec.deploy_type(Some(name)).ok()?;
        t.monitor.map(|m| m.0)
    }

    /// Watches `target` for `period`; a failing verdict is a rollback with its numbers.
    pub(super) async fn monitor(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        target: &Release,
        previous: Option<&Release>,
        period: Duration,
    ) -> Result<(), Failure> {
        if self.stage_done(id, "monitor") {
            return Ok(());
        }
        let analysis = Analysis::from_spec(&target.spec).map_err(Failure::failed)?;
        self.journal(
            id,
            Event::Monitoring {
                seconds: period.as_secs(),
            },
        );
        let stable = previous.map_or(String::new(), |p| p.version.clone());
        // `runway abort` takes it back, `runway promote` ends the watch, as during a canary.
        let (tx, mut controls) = tokio::sync::mpsc::unbounded_channel();
        self.controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(svc.name.clone(), tx.clone());
        if self.store_fault().is_some() {
            self.stop_rollout(&svc.name, &tx);
        }
        let watched = self
            .watch(svc, id, target, &stable, period, (&analysis, &mut controls))
            .await;
        self.controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&svc.name);
        watched?;
        self.stage_finished(id, "monitor");
        self.journal(id, Event::Monitored {});
        Ok(())
    }

    async fn watch(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        target: &Release,
        stable: &str,
        period: Duration,
        (analysis, controls): (&Analysis, &mut UnboundedReceiver<Control>),
    ) -> Result<(), Failure> {
        let queries = analysis
            .prometheus
            .as_deref()
            .map(|url| self.queries.prometheus(url));
        let window = svc.router.open_window();
        let mut judge = Judge::default();
        let mut ticker = tokio::time::interval(analysis.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let started = Instant::now();
        let mut last = Instant::now();
        while started.elapsed() < period {
            tokio::select! {
                _ = ticker.tick() => {}
                control = controls.recv() => match control {
                    Some(Control::Abort) | None => {
                        return Err(Failure::rolled_back(format!(
                            "aborted by an operator (`runway abort`) during its monitoring period \
                             ({} of {}s)",
                            started.elapsed().as_secs(),
                            period.as_secs()
                        )));
                    }
                    Some(Control::Promote) | Some(Control::PromoteFull) => {
                        self.journal(id, Event::Promoted { by: "operator".into(), full: Some(true), weight: 100 });
                        return Ok(());
                    }
                    Some(Control::Pause) | Some(Control::Resume) => continue,
                },
            }
            let elapsed = last.elapsed();
            last = Instant::now();
            let input = measure::interval(
                window.as_ref(),
                &analysis.sources,
                queries.as_deref(),
                &svc.name,
                &target.version,
                stable,
                elapsed,
                started.elapsed(),
            )
            .await;
            let result = judge.judge(&analysis.policy, input);
            self.journal(
                id,
                Event::Analysis(serde_json::to_value(&result).unwrap_or_default()),
            );
            if let Decision::Rollback(reason) = &result.decision {
                return Err(Failure::rolled_back(format!(
                    "during its monitoring period ({} of {}s): {reason}",
                    started.elapsed().as_secs(),
                    period.as_secs()
                )));
            }
        }
        Ok(())
    }
}
