//! The canary strategy: weighted steps, each watched by the judge, promoted or rolled back.
//!
//! For every step: start enough canary replicas for its weight (health-checked before they get
//! a request), shift the weight, then watch. Every `[analysis] interval` the proxy's window for
//! both releases (and any Prometheus queries) goes to the judge; its verdicts are journaled.
//! A step is left when its pause is over *and* the judge has passed at least one interval of
//! it: a canary is never promoted on data it did not have. A human can promote, pause, resume
//! or abort at any time.
//!
//! The progress (step, weight, pause left, the judge with its history) is written to the store
//! after every interval and every command, so a restarted server continues at the same step
//! with the pause time that was left and the analysis history it had.

use runway_wire::id::DeploymentId;
use runway_wire::Event;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use runway_analysis::{
    AnalysisPolicy, Condition, Decision, Judge, MetricPolicy, StatisticalOptions,
};
use runway_spec::{AnalysisSpec, CanarySpec, MetricSource, Pause, ProxyMetric, Spec};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::measure::{self, Measurement};
use super::{Engine, Failure, Release, Service};

/// Where a canary stands; persisted as the deployment's `progress`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CanaryProgress {
    /// Index into the strategy's steps.
    pub step: usize,
    /// The weight the canary has now (0 before the first step).
    pub weight: u32,
    /// Time left in the current step's timed pause, in milliseconds.
    pub pause_left_ms: Option<u64>,
    /// Set while the rollout waits for a human, with why.
    pub paused: Option<String>,
    /// Milliseconds of analysis time so far; the judge's clock, which survives restarts.
    pub analysis_ms: u64,
    pub judge: Judge,
    /// On a cluster shifting by replica ratio: the effective share, said as approximate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<String>,
}

/// What `runway promote | pause | resume | abort` send to a running rollout.
pub use runway_wire::api::CanaryCommand as Control;

/// How a step's watch ended.
enum StepEnd {
    Next,
    Full,
}

/// The analysis policy a spec asks for, and which source measures each metric.
pub struct Analysis {
    pub policy: AnalysisPolicy,
    pub interval: Duration,
    pub sources: Vec<(String, Measurement)>,
    pub prometheus: Option<String>,
    /// `[analysis] requests`: the query that counts the new release's requests when the proxy
    /// does not see them.
    pub requests: Option<String>,
}

impl Analysis {
    /// The spec's `[analysis]`, or the runbooks' decision matrix when it names no metrics.
    pub fn from_spec(spec: &Spec) -> Result<Analysis, String> {
        let a = spec.analysis.clone().unwrap_or_default();
        if a.metrics.is_empty() {
            return Ok(Self::default_policy(&a));
        }
        let mut metrics = Vec::new();
        let mut sources = Vec::new();
        for m in &a.metrics {
            let fail_if = Condition::parse(&m.fail_if)
                .map_err(|e| format!("metric {}: fail_if: {e}", m.name))?;
            let mut policy = MetricPolicy::new(m.name.clone(), fail_if);
            if let Some(p) = &m.pause_if {
                policy = policy.with_pause_if(
                    Condition::parse(p).map_err(|e| format!("metric {}: pause_if: {e}", m.name))?,
                );
            }
            if let Some(d) = m.for_ {
                policy = policy.with_for_duration(d.0);
            }
            let mut stats = StatisticalOptions::default();
            if let Some(c) = m.confidence {
                stats.confidence = c;
            }
            if let Some(e) = m.min_effect {
                stats.min_effect = e;
            }
            policy = policy.with_statistical(stats);
            metrics.push(policy);
            let source = match (m.source, m.metric, &m.query) {
                (MetricSource::Proxy, Some(metric), _) => Measurement::Proxy(metric),
                (MetricSource::Prometheus, _, Some(q)) => Measurement::Prometheus(q.clone()),
                _ => {
                    return Err(format!(
                        "metric {} has no metric or query to measure",
                        m.name
                    ))
                }
            };
            sources.push((m.name.clone(), source));
        }
        Ok(Analysis {
            policy: AnalysisPolicy {
                failure_limit: a.failure_limit,
                min_requests: a.min_requests,
                inconclusive_limit: a.inconclusive_limit,
                max_intervals: a.max_intervals,
                metrics,
            },
            interval: a.interval.0,
            sources,
            prometheus: a.prometheus.clone(),
            requests: a.requests.clone(),
        })
    }

    fn default_policy(a: &AnalysisSpec) -> Analysis {
        Analysis {
            policy: AnalysisPolicy::default_for_runbooks(
                a.failure_limit,
                a.min_requests,
                a.inconclusive_limit,
            )
            .with_max_intervals(a.max_intervals),
            interval: a.interval.0,
            sources: vec![
                (
                    runway_analysis::judge::ERROR_RATE.to_string(),
                    Measurement::Proxy(ProxyMetric::ErrorRate),
                ),
                (
                    runway_analysis::judge::LATENCY_P99.to_string(),
                    Measurement::Proxy(ProxyMetric::LatencyP99),
                ),
            ],
            prometheus: a.prometheus.clone(),
            requests: a.requests.clone(),
        }
    }
}

/// A cluster canary's pods for a step of `weight` percent with `replicas` pods in all: the
/// nearest whole split, with at least one pod on each side.
fn pods_for(weight: u32, replicas: u32) -> (u32, u32) {
    let replicas = replicas.max(2);
    let canary = ((replicas * weight + 50) / 100).clamp(1, replicas - 1);
    (canary, replicas - canary)
}

/// The canary Deployment of a cluster's canary (`{deployment}-canary`).
const CANARY_SLOT: &str = "canary";

/// Canary replicas needed to carry `weight` percent of the traffic of `replicas` replicas.
fn replicas_for(weight: u32, replicas: u32) -> u32 {
    (replicas * weight).div_ceil(100).clamp(1, replicas)
}

impl Engine {
    pub(super) async fn run_canary(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        target: &Release,
        stable: &Release,
        canary: &CanarySpec,
        mut controls: mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), Failure> {
        if target.spec.kubernetes.is_some() {
            return self
                .canary_on_cluster(svc, id, target, stable, canary, controls)
                .await;
        }
        let analysis = Analysis::from_spec(&target.spec).map_err(Failure::failed)?;
        let mut progress: CanaryProgress = self.progress(id);
        let fingerprint = target.fingerprint();
        let replicas = target.spec.run.replicas;
        svc.router.set_sticky(canary.sticky);
        // Pin the split before any canary replica exists: a new replica is routed as soon as it
        // is healthy, and without explicit weights it would take a share by replica count.
        set_canary_weight(svc, &stable.version, &target.version, progress.weight);

        while progress.step < canary.steps.len() {
            let step = &canary.steps[progress.step];
            // Enough canary replicas for this weight, healthy before they get any traffic: the
            // weights below still give the canary its previous share while they start.
            let have = svc
                .replicas()
                .iter()
                .filter(|r| r.fingerprint == fingerprint && r.in_rotation())
                .count() as u32;
            let need = replicas_for(step.weight, replicas);
            if need > have {
                self.start_replicas(svc, id, target, need - have, true)
                    .await
                    .map_err(Failure::failed)?;
            }
            if progress.weight == 0 {
                // Smoke tests reach the canary before any user does.
                let addrs = self.release_addrs(svc, target);
                self.checks_gate(id, target, "smoke", addrs)
                    .await
                    .map_err(Failure::failed)?;
            }
            self.enter_step(id, &mut progress, canary.steps.len(), step);
            set_canary_weight(svc, &stable.version, &target.version, step.weight);
            self.save_progress(id, &progress);
            if step.weight == 100 {
                break;
            }
            let end = self
                .watch_step(
                    svc,
                    id,
                    target,
                    stable,
                    &analysis,
                    step.pause,
                    &mut progress,
                    &mut controls,
                )
                .await
                .inspect_err(|_| {
                    // Rolling back starts with the canary's weight going to 0, at once.
                    set_canary_weight(svc, &stable.version, &target.version, 0);
                })?;
            progress.step = match end {
                StepEnd::Next => progress.step + 1,
                StepEnd::Full => canary.steps.len() - 1,
            };
        }

        // The canary has all traffic: bring it to full strength, then drain and stop stable.
        let have = svc
            .replicas()
            .iter()
            .filter(|r| r.fingerprint == fingerprint && r.in_rotation())
            .count() as u32;
        if replicas > have {
            self.start_replicas(svc, id, target, replicas - have, true)
                .await
                .map_err(Failure::failed)?;
        }
        let old: Vec<_> = svc
            .replicas()
            .into_iter()
            .filter(|r| r.fingerprint != fingerprint)
            .collect();
        self.retire(svc, id, old).await;
        svc.set_weights(None);
        svc.router.set_sticky(false);
        Ok(())
    }

    /// Watches one step until it may be left, the judge rolls back, or a human decides.
    #[allow(clippy::too_many_arguments)]
    async fn watch_step(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        target: &Release,
        stable: &Release,
        analysis: &Analysis,
        pause: Pause,
        progress: &mut CanaryProgress,
        controls: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Result<StepEnd, Failure> {
        let mut ticker = tokio::time::interval(analysis.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; a window needs a whole interval. The step's window
        // counts from now (another reader, a baseline capture, has its own).
        ticker.tick().await;
        let window = svc.router.open_window();
        let queries = analysis
            .prometheus
            .as_deref()
            .map(|url| self.queries.prometheus(url));
        let mut last = Instant::now();
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let elapsed = last.elapsed();
                    last = Instant::now();
                    progress.analysis_ms += elapsed.as_millis() as u64;
                    let mut input = measure::interval(
                        window.as_ref(),
                        &analysis.sources,
                        queries.as_deref(),
                        &svc.name,
                        &target.version,
                        &stable.version,
                        elapsed,
                        Duration::from_millis(progress.analysis_ms),
                    )
                    .await;
                    if let (Some(query), Some(queries)) = (&analysis.requests, queries.as_deref()) {
                        input.canary_requests = measure::requests_by_query(
                            queries, query, &svc.name, &target.version,
                        )
                        .await
                        .unwrap_or(0);
                    }
                    let result = progress.judge.judge(&analysis.policy, input);
                    self.journal(id, Event::Analysis(serde_json::to_value(&result).unwrap_or_default()));
                    match &result.decision {
                        Decision::Rollback(reason) => {
                            self.save_progress(id, progress);
                            return Err(Failure::rolled_back(format!("canary analysis failed: {reason}")));
                        }
                        Decision::Pause(reason) if progress.paused.is_none() => {
                            progress.paused = Some(reason.clone());
                            self.journal(id, Event::Paused { reason: Some(reason.clone()), by: "analysis".into() });
                        }
                        _ => {}
                    }
                    if progress.paused.is_none() {
                        if let Some(left) = progress.pause_left_ms.as_mut() {
                            *left = left.saturating_sub(elapsed.as_millis() as u64);
                        }
                    }
                    self.save_progress(id, progress);
                    let pause_over = match pause {
                        Pause::None => true,
                        Pause::For(_) => progress.pause_left_ms == Some(0),
                        Pause::Manual => false,
                    };
                    if progress.paused.is_none() && pause_over && progress.judge.can_promote() {
                        self.journal(id, Event::Promoted { by: "analysis".into(), full: None, weight: progress.weight });
                        return Ok(StepEnd::Next);
                    }
                }
                control = controls.recv() => match control {
                    Some(Control::Promote) | Some(Control::PromoteFull) => {
                        let full = control == Some(Control::PromoteFull);
                        self.journal(id, Event::Promoted { by: "operator".into(), full: Some(full), weight: progress.weight });
                        progress.paused = None;
                        return Ok(if full { StepEnd::Full } else { StepEnd::Next });
                    }
                    Some(Control::Pause) => {
                        progress.paused = Some("paused by an operator (`runway pause`)".into());
                        self.journal(id, Event::Paused { reason: progress.paused.clone(), by: "operator".into() });
                        self.save_progress(id, progress);
                    }
                    Some(Control::Resume) => {
                        progress.paused = None;
                        self.journal(id, Event::ResumedByOperator {});
                        self.save_progress(id, progress);
                    }
                    Some(Control::Abort) | None => {
                        return Err(Failure::rolled_back("aborted by an operator (`runway abort`)".into()));
                    }
                }
            }
        }
    }

    /// A canary on a cluster: a canary Deployment (`{deployment}-canary`, made from the
    /// service's own) beside the stable one. By replica ratio (the default), both are behind
    /// the one Service and their pod counts are set so that the canary's share of the pods is
    /// the step's weight as nearly as whole pods allow (journaled as the effective, approximate
    /// share). By Gateway API, the canary gets the pods its weight needs and the HTTPRoute's
    /// backend weights give it exactly its share. Each step is judged as everywhere, on the
    /// release's Prometheus metrics (runway's proxy is not in the path), and never promoted
    /// without the requests `[analysis] requests` counts. At 100% the stable Deployment is
    /// rolled to the canary's release, the route sent back to it, and the canary Deployment
    /// scaled to zero; a rollback sends the route back, scales the canary to zero and the
    /// stable one back to strength.
    async fn canary_on_cluster(
        &self,
        svc: &Arc<Service>,
        id: DeploymentId,
        target: &Release,
        stable: &Release,
        canary: &CanarySpec,
        mut controls: mpsc::UnboundedReceiver<Control>,
    ) -> Result<(), Failure> {
        let analysis = Analysis::from_spec(&target.spec).map_err(Failure::failed)?;
        let mut progress: CanaryProgress = self.progress(id);
        let replicas = target.spec.run.replicas;
        let by_route = target
            .spec
            .kubernetes
            .as_ref()
            .is_some_and(|k| k.traffic == runway_spec::ClusterTraffic::GatewayApi);
        let journal = move |message: String| self.journal(id, Event::RolloutProgress { message });
        // Each release as the template it was first deployed with, at a pod count.
        let at = |release: &Release, pods: u32| {
            let mut r = self.as_template(release);
            r.spec.run.replicas = pods;
            r
        };
        let back_to_stable = |failure: Failure| async move {
            let mut reason = failure.reason;
            if by_route {
                if let Err(e) = self.cluster.set_weights(target, 0).await {
                    reason = format!("{reason}; sending the route back to stable failed: {e}");
                }
            }
            if let Err(e) = self.cluster.stop(target, Some(CANARY_SLOT), &journal).await {
                reason = format!("{reason}; scaling the canary down failed: {e}");
            }
            Failure { reason, ..failure }
        };
        while progress.step < canary.steps.len() {
            let step = &canary.steps[progress.step];
            if step.weight == 100 {
                break;
            }
            // Whatever fails from here on, the canary's pods go: they may already serve.
            if by_route {
                // The pods the weight needs, ready before the route gives them requests.
                let canary_pods = replicas_for(step.weight, replicas);
                if let Err(e) = self
                    .cluster
                    .roll(&at(target, canary_pods), Some(CANARY_SLOT), &journal)
                    .await
                {
                    return Err(back_to_stable(Failure::failed(e)).await);
                }
                if let Err(e) = self.cluster.set_weights(target, step.weight).await {
                    return Err(back_to_stable(Failure::failed(e)).await);
                }
                journal(format!(
                    "HTTPRoute weights: {}% to {}, {}% to {}",
                    step.weight,
                    target.version,
                    100 - step.weight,
                    stable.version
                ));
                progress.effective = None;
            } else {
                let (canary_pods, stable_pods) = pods_for(step.weight, replicas);
                if let Err(e) = self
                    .cluster
                    .roll(&at(target, canary_pods), Some(CANARY_SLOT), &journal)
                    .await
                {
                    return Err(back_to_stable(Failure::failed(e)).await);
                }
                if let Err(e) = self
                    .cluster
                    .roll(&at(stable, stable_pods), None, &journal)
                    .await
                {
                    return Err(back_to_stable(Failure::failed(e)).await);
                }
                let share = 100.0 * canary_pods as f64 / (canary_pods + stable_pods) as f64;
                journal(format!(
                    "replica ratio: {canary_pods} of {} pods run {}: about {share:.0}% of the \
                     requests for a {}% step (approximate: the Service spreads requests over \
                     pods)",
                    canary_pods + stable_pods,
                    target.version,
                    step.weight
                ));
                progress.effective = Some(format!(
                    "about {share:.0}% ({canary_pods} of {} pods; approximate)",
                    canary_pods + stable_pods
                ));
            }
            if progress.weight == 0 {
                if let Err(e) = self.checks_gate(id, target, "smoke", Vec::new()).await {
                    return Err(back_to_stable(Failure::failed(e)).await);
                }
            }
            self.enter_step(id, &mut progress, canary.steps.len(), step);
            self.save_progress(id, &progress);
            let end = match self
                .watch_step(
                    svc,
                    id,
                    target,
                    stable,
                    &analysis,
                    step.pause,
                    &mut progress,
                    &mut controls,
                )
                .await
            {
                Ok(end) => end,
                Err(failure) => return Err(back_to_stable(failure).await),
            };
            progress.step = match end {
                StepEnd::Next => progress.step + 1,
                StepEnd::Full => canary.steps.len() - 1,
            };
        }
        // Promoted: the stable Deployment runs the new release at full strength (a rolling
        // update, the canary still serving beside it), then the canary goes.
        progress.weight = 100;
        progress.effective = None;
        self.save_progress(id, &progress);
        self.cluster
            .roll(&at(target, replicas), None, &journal)
            .await
            .map_err(Failure::failed)?;
        if by_route {
            // The service's own Deployment runs the new release now: all requests to it.
            self.cluster
                .set_weights(target, 0)
                .await
                .map_err(Failure::failed)?;
        }
        self.cluster
            .stop(target, Some(CANARY_SLOT), &journal)
            .await
            .map_err(Failure::failed)?;
        Ok(())
    }

    /// Enters step `progress.step` (of `of`), unless a resumed rollout is already at its weight:
    /// journaled, its pause timed from now, the judge's step begun.
    fn enter_step(
        &self,
        id: DeploymentId,
        progress: &mut CanaryProgress,
        of: usize,
        step: &runway_spec::CanaryStep,
    ) {
        if progress.weight == step.weight {
            return;
        }
        self.journal(
            id,
            Event::CanaryStep {
                step: progress.step + 1,
                of,
                weight: step.weight,
            },
        );
        progress.weight = step.weight;
        progress.pause_left_ms = match step.pause {
            Pause::For(d) => Some(d.0.as_millis() as u64),
            Pause::None | Pause::Manual => None,
        };
        progress.judge.start_step();
    }

    fn save_progress(&self, id: DeploymentId, progress: &CanaryProgress) {
        match serde_json::to_value(progress) {
            Ok(v) => {
                if let Err(e) = self.store.set_progress(id, &v) {
                    tracing::error!(deployment = %id, "cannot save canary progress: {e:#}");
                }
            }
            Err(e) => tracing::error!(deployment = %id, "cannot encode canary progress: {e}"),
        }
    }
}

/// Where a running canary stands, for `runway status`.
pub fn view(d: &runway_wire::record::Deployment) -> Option<runway_wire::api::CanaryView> {
    let runway_spec::StrategySpec::Canary(canary) = &d.spec.as_ref()?.strategy else {
        return None;
    };
    let progress: CanaryProgress = serde_json::from_value(d.progress.clone()?).ok()?;
    let history = progress.judge.history();
    let metrics = history
        .last()
        .map(|last| {
            last.metrics
                .iter()
                .map(|m| runway_wire::api::CanaryMetricView {
                    name: m.name.clone(),
                    condition: m.condition.clone(),
                    canary: m.canary,
                    stable: m.stable,
                    last_verdicts: history
                        .iter()
                        .rev()
                        .take(5)
                        .rev()
                        .filter_map(|r| r.metrics.iter().find(|x| x.name == m.name))
                        .map(|x| format!("{:?}", x.verdict).to_lowercase())
                        .collect(),
                    reason: m.reason.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(runway_wire::api::CanaryView {
        step: progress.step + 1,
        steps: canary.steps.len(),
        weight: progress.weight,
        effective: progress.effective.clone(),
        pause_left_seconds: progress.pause_left_ms.map(|ms| ms as f64 / 1000.0),
        paused: progress.paused.clone(),
        intervals_judged: history.len(),
        metrics,
    })
}

/// Splits traffic: `weight` percent to the canary, the rest to stable.
pub fn set_canary_weight(svc: &Service, stable: &str, canary: &str, weight: u32) {
    let mut weights = BTreeMap::new();
    weights.insert(stable.to_string(), 100 - weight.min(100));
    weights.insert(canary.to_string(), weight.min(100));
    svc.set_weights(Some(weights));
}

#[cfg(test)]
mod tests {
    use super::replicas_for;

    #[test]
    fn a_cluster_canary_splits_its_pods_nearest_to_the_weight() {
        use super::pods_for;
        assert_eq!(pods_for(34, 3), (1, 2));
        assert_eq!(pods_for(10, 3), (1, 2), "one pod at least");
        assert_eq!(pods_for(50, 3), (2, 1));
        assert_eq!(pods_for(90, 3), (2, 1), "one stable pod at least");
        assert_eq!(pods_for(25, 10), (3, 7));
        assert_eq!(
            pods_for(5, 1),
            (1, 1),
            "a single replica gets a canary beside it"
        );
    }

    #[test]
    fn canary_replicas_follow_the_weight() {
        assert_eq!(replicas_for(10, 3), 1);
        assert_eq!(replicas_for(50, 3), 2);
        assert_eq!(replicas_for(100, 3), 3);
        assert_eq!(replicas_for(1, 10), 1);
        assert_eq!(replicas_for(34, 3), 2);
    }
}
