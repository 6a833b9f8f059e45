//! The interval-by-interval decision of a canary analysis.
//!
//! Every analysis interval the engine measures both releases and calls
//! [`Judge::judge`] with the [`AnalysisPolicy`] and an [`IntervalInput`]. The judge
//! adds the interval's counts and samples to the step's evidence (see
//! [`crate::evidence`]), evaluates each metric's conditions, keeps the streaks and `for`
//! clocks, records the [`IntervalResult`] in its history and returns it. The engine acts
//! on [`IntervalResult::decision`]:
//!
//! | decision          | meaning                                                   | engine |
//! |-------------------|-----------------------------------------------------------|--------|
//! | [`Decision::Continue`] | at this look every metric was judged and passed      | may promote ([`Judge::can_promote`]) |
//! | [`Decision::Hold`]     | something is failing but no action is due yet: a failed interval below `failure_limit`, a `pause_if` below `failure_limit` intervals, or a condition failing for less than its `for` | stay on the step, keep measuring |
//! | [`Decision::Inconclusive`] | no data this interval (no canary request, missing values, source errors), or data that cannot decide yet (gathering) | stay on the step, keep measuring |
//! | [`Decision::Pause`]    | `pause_if` held `failure_limit` intervals in a row, `inconclusive_limit` intervals in a row without data, or `max_intervals` undecided intervals in a row | wait for a human (the analysis goes on) |
//! | [`Decision::Rollback`] | `failure_limit` failed intervals in a row             | roll back |
//!
//! Looks: rates and percentiles are judged on the step's accumulated evidence, and each
//! judgement of it spends part of the error budget. So all metrics look together, once
//! the step has `min_requests` canary requests, then each time those have grown by half
//! or after three intervals with new requests, whichever comes first. Between looks the
//! accumulated metrics are gathering: neither a pass nor a failure. Values without a
//! sample size (Prometheus, `request_rate`) and the Mann-Whitney condition are judged on
//! each interval with at least `min_requests` canary requests.
//!
//! Per interval, in order of precedence:
//! 1. Each metric gets a [`MetricVerdict`]; a source error, a missing measurement, an
//!    interval without canary requests, a step below `min_requests` or an accumulated
//!    metric between looks make it inconclusive, never a pass.
//! 2. Any metric `Fail` → the interval failed: the failure streak grows, and at
//!    `failure_limit` the decision is `Rollback` (before it, `Hold`).
//! 3. Else any `Pending` → `Hold`. Else any `Pause` → the pause streak grows, and at
//!    `failure_limit` the decision is `Pause` (before it, `Hold`). (A failing metric
//!    takes precedence over a pausing one so that the automatic rollback is not
//!    replaced by a wait for a human.)
//! 4. Else any `Inconclusive`: without data, the inconclusive streak grows and at
//!    `inconclusive_limit` the decision is `Pause`; with data that cannot decide, the
//!    undecided streak grows and at `max_intervals` the decision is `Pause`; before
//!    either, `Inconclusive`.
//! 5. Else `Continue`: every streak resets.
//!
//! Streaks: the failure streak counts failed intervals and is reset only by a
//! passing interval (an interval that could not be judged is no evidence that the
//! canary recovered). The other streaks restart after the pause they trigger, so that a
//! human who resumes the rollout gets fresh limits. [`Judge::start_step`] resets every
//! streak, the `for` clocks and the evidence, and keeps the history.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bounds::alpha_at_look;
use crate::condition::{
    Comparison, Condition, Evaluation, MetricWindow, StatisticalOptions, Verdict,
};
use crate::evidence::{Alphas, Evidence, Reading, AGAINST_CONFIDENCE};
use crate::format;

/// The name of the error-rate metric in the runbook policy: the share (0 to 1) of
/// the canary's requests that failed or got a 5xx.
pub const ERROR_RATE: &str = "error_rate";
/// The name of the p99-latency metric in the runbook policy (any unit, the same for
/// both releases).
pub const LATENCY_P99: &str = "latency_p99";

/// How one metric is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPolicy {
    /// The metric's name; [`MetricInput::name`] must match it.
    pub name: String,
    /// When the metric is bad enough to fail the interval (counts toward
    /// `failure_limit` and the rollback).
    pub fail_if: Condition,
    /// When the metric is bad enough to stop and ask a human, but not to roll back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_if: Option<Condition>,
    /// `for` in `runway.toml`: a condition (`fail_if` or `pause_if`, each with its own
    /// clock) counts only once it has held continuously for this long, as in a
    /// Prometheus alert's `for:`. The clock starts at the first interval in which the
    /// condition holds, keeps running through inconclusive intervals, and is reset by
    /// an interval in which the condition does not hold. Until then the metric's
    /// verdict is [`MetricVerdict::Pending`] ("failing for 40s of 5m"), which holds
    /// the step (no promotion) without counting as a failure. `None` or zero: counts
    /// at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_duration: Option<Duration>,
    /// Options of a statistical condition (ignored by the others).
    #[serde(default)]
    pub statistical: StatisticalOptions,
}

impl MetricPolicy {
    /// A metric with only a `fail_if` condition and default options.
    pub fn new(name: impl Into<String>, fail_if: Condition) -> Self {
        MetricPolicy {
            name: name.into(),
            fail_if,
            pause_if: None,
            for_duration: None,
            statistical: StatisticalOptions::default(),
        }
    }

    /// Adds a `pause_if` condition.
    pub fn with_pause_if(mut self, pause_if: Condition) -> Self {
        self.pause_if = Some(pause_if);
        self
    }

    /// Sets `for`.
    pub fn with_for_duration(mut self, for_duration: Duration) -> Self {
        self.for_duration = Some(for_duration);
        self
    }

    /// Sets the statistical options.
    pub fn with_statistical(mut self, statistical: StatisticalOptions) -> Self {
        self.statistical = statistical;
        self
    }
}

/// How a rollout step is judged: the limits and the metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisPolicy {
    /// Failed intervals in a row that trigger the rollback. 0 behaves as 1.
    pub failure_limit: u32,
    /// Nothing is judged before the step has seen this many canary requests, and a value
    /// without a sample size (Prometheus, `request_rate`) is judged only on intervals with
    /// at least this many: an error rate over 3 requests says nothing.
    pub min_requests: u64,
    /// Intervals in a row that brought no usable data (no canary request, a source
    /// error, a missing measurement) before the rollout pauses for a human. 0 behaves
    /// as 1.
    pub inconclusive_limit: u32,
    /// Intervals in a row in which the data came in but could not decide (a confidence
    /// interval still straddles a line) before the rollout pauses for a human. 0
    /// behaves as 1.
    #[serde(default = "AnalysisPolicy::default_max_intervals")]
    pub max_intervals: u32,
    /// The metrics. Empty: every interval is inconclusive (nothing was judged, so
    /// nothing may be promoted); use [`AnalysisPolicy::default_for_runbooks`].
    pub metrics: Vec<MetricPolicy>,
}

impl AnalysisPolicy {
    /// `max_intervals` when not given: ten minutes of the default 10s interval, as long
    /// as the runbooks watch a canary step.
    pub const DEFAULT_MAX_INTERVALS: u32 = 60;

    fn default_max_intervals() -> u32 {
        Self::DEFAULT_MAX_INTERVALS
    }

    /// Sets `max_intervals`.
    pub fn with_max_intervals(mut self, max_intervals: u32) -> Self {
        self.max_intervals = max_intervals;
        self
    }

    /// The runbooks' decision matrix, for a rollout whose `[analysis]` names no
    /// metrics (the limits come from `[analysis]`):
    ///
    /// | metric ([`ERROR_RATE`], [`LATENCY_P99`]) | `fail_if` (roll back) | `pause_if` (investigate) |
    /// |--------------|-----------------|----------|
    /// | `error_rate`  | `> 0.05`        | `> 0.01` |
    /// | `latency_p99` | `> 3x stable`   | —        |
    ///
    /// No `for`: the failure has to persist for `failure_limit` consecutive
    /// intervals instead, so that a badly broken canary is rolled back within a few
    /// intervals rather than after minutes at full error rate. Set `for_duration`
    /// on the error-rate metric to get the runbooks' stricter "above 5% for 5
    /// minutes".
    pub fn default_for_runbooks(
        failure_limit: u32,
        min_requests: u64,
        inconclusive_limit: u32,
    ) -> Self {
        AnalysisPolicy {
            failure_limit,
            min_requests,
            inconclusive_limit,
            max_intervals: Self::DEFAULT_MAX_INTERVALS,
            metrics: vec![
                MetricPolicy::new(
                    ERROR_RATE,
                    Condition::Absolute {
                        op: Comparison::Greater,
                        threshold: 0.05,
                    },
                )
                .with_pause_if(Condition::Absolute {
                    op: Comparison::Greater,
                    threshold: 0.01,
                }),
                MetricPolicy::new(
                    LATENCY_P99,
                    Condition::RelativeFactor {
                        op: Comparison::Greater,
                        factor: 3.0,
                    },
                ),
            ],
        }
    }

    /// Checks what the judge would otherwise have to paper over: at least one
    /// metric, unique non-empty names, limits of at least 1, valid statistical
    /// options where a statistical condition uses them.
    pub fn validate(&self) -> Result<(), String> {
        if self.failure_limit == 0 {
            return Err("failure_limit must be at least 1".to_string());
        }
        if self.inconclusive_limit == 0 {
            return Err("inconclusive_limit must be at least 1".to_string());
        }
        if self.max_intervals == 0 {
            return Err("max_intervals must be at least 1".to_string());
        }
        if self.metrics.is_empty() {
            return Err("the policy has no metrics: nothing would be judged".to_string());
        }
        for (i, metric) in self.metrics.iter().enumerate() {
            if metric.name.trim().is_empty() {
                return Err(format!("metric #{} has an empty name", i + 1));
            }
            if self.metrics.iter().take(i).any(|m| m.name == metric.name) {
                return Err(format!("metric {:?} appears twice", metric.name));
            }
            // `confidence` decides every judged condition, not only statistical ones.
            metric
                .statistical
                .validate()
                .map_err(|e| format!("metric {:?}: {e}", metric.name))?;
        }
        Ok(())
    }
}

/// One metric's measurement for one interval, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricInput {
    /// Matches [`MetricPolicy::name`].
    pub name: String,
    /// The window, or the source's error (e.g. "Prometheus unreachable: connection
    /// refused"), which makes the metric inconclusive.
    pub window: Result<MetricWindow, String>,
}

impl MetricInput {
    /// A successful measurement.
    pub fn ok(name: impl Into<String>, window: MetricWindow) -> Self {
        MetricInput {
            name: name.into(),
            window: Ok(window),
        }
    }

    /// A failed measurement.
    pub fn error(name: impl Into<String>, error: impl Into<String>) -> Self {
        MetricInput {
            name: name.into(),
            window: Err(error.into()),
        }
    }
}

/// Everything the judge needs about one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalInput {
    /// When the interval ended, as time since the analysis started. Only differences
    /// matter (for `for` durations), so any fixed epoch works as long as it survives
    /// a restart: the engine should persist the start time and compute this from the
    /// wall clock. Must not decrease; if it does, running `for` clocks restart.
    pub at: Duration,
    /// Requests the canary served in the interval (checked against `min_requests`).
    pub canary_requests: u64,
    /// One entry per policy metric. A policy metric without an entry is
    /// inconclusive; entries for unknown metrics are ignored; for a duplicated name
    /// the first entry counts.
    pub metrics: Vec<MetricInput>,
}

/// One metric's verdict in one interval, after `for` durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MetricVerdict {
    /// Every condition was evaluated and none holds.
    Pass,
    /// A condition holds but has not yet held for `for_duration`: not a pass (the
    /// step is held), not yet a failure (does not count toward `failure_limit`).
    Pending,
    /// `pause_if` holds (for long enough) and `fail_if` does not.
    Pause,
    /// `fail_if` holds (for long enough): the interval failed.
    Fail,
    /// Not enough data to judge: too few requests, a missing or non-finite value,
    /// no stable value for a relative condition, too few samples, a source error.
    Inconclusive,
}

/// One metric's line in an interval's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    /// The metric's name.
    pub name: String,
    /// The verdict.
    pub verdict: MetricVerdict,
    /// One line with the numbers, e.g. `error_rate 0.06 > 0.05` or
    /// `error_rate 0.06 > 0.05 (failing for 40s of 5m)`.
    pub reason: String,
    /// The canary's value, when measured and finite.
    pub canary: Option<f64>,
    /// The stable release's value, when measured and finite.
    pub stable: Option<f64>,
    /// The condition behind the verdict, e.g. `fail_if > 0.05` or
    /// `pause_if > 0.01`.
    pub condition: String,
}

/// What the engine should do after an interval. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// The interval passed: every metric was measured and passed.
    Continue,
    /// Something is failing but no action is due yet; do not promote.
    Hold(String),
    /// Not enough data to judge this interval; do not promote.
    Inconclusive(String),
    /// Stop and wait for a human.
    Pause(String),
    /// Roll back; the reason quotes the last failing interval's numbers.
    Rollback(String),
}

impl Decision {
    /// The reason, except for `Continue`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Decision::Continue => None,
            Decision::Hold(r)
            | Decision::Inconclusive(r)
            | Decision::Pause(r)
            | Decision::Rollback(r) => Some(r),
        }
    }

    /// A short lower-case name for logs and tables: `continue`, `hold`,
    /// `inconclusive`, `pause`, `rollback`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Continue => "continue",
            Decision::Hold(_) => "hold",
            Decision::Inconclusive(_) => "inconclusive",
            Decision::Pause(_) => "pause",
            Decision::Rollback(_) => "rollback",
        }
    }
}

/// The record of one judged interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalResult {
    /// The rollout step (0 for the first, +1 per [`Judge::start_step`]).
    pub step: u32,
    /// [`IntervalInput::at`].
    pub at: Duration,
    /// [`IntervalInput::canary_requests`].
    pub canary_requests: u64,
    /// Canary requests of the step so far, this interval's included: what the
    /// accumulated verdicts rest on.
    #[serde(default)]
    pub step_canary_requests: u64,
    /// One entry per policy metric, in policy order.
    pub metrics: Vec<MetricResult>,
    /// The decision.
    pub decision: Decision,
    /// Failed intervals in a row after this one.
    pub consecutive_failures: u32,
    /// Inconclusive intervals in a row after this one (the value that was compared
    /// with `inconclusive_limit`).
    pub consecutive_inconclusive: u32,
}

/// The running `for` clocks of one metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Clocks {
    /// Since when `fail_if` has held, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fail_since: Option<Duration>,
    /// Since when `pause_if` has held, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pause_since: Option<Duration>,
}

/// The analysis state of one rollout: streaks, `for` clocks, the evidence of the current
/// step and the history of every judged interval.
///
/// Serialize it after each interval and deserialize it after a restart: the analysis
/// continues exactly where it was (same streaks, same clocks, same evidence, same
/// history).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Judge {
    step: u32,
    /// Index in `history` of the current step's first interval.
    step_start: usize,
    consecutive_failures: u32,
    consecutive_inconclusive: u32,
    /// Intervals in a row in which a `pause_if` condition held.
    consecutive_pauses: u32,
    /// Intervals in a row that had data but could not decide.
    consecutive_undecided: u32,
    /// Canary requests seen in the current step.
    step_requests: u64,
    /// Canary requests of the step at its last look at the accumulated evidence.
    looked_at: u64,
    /// Intervals with canary requests since that look.
    intervals_since_look: u32,
    clocks: BTreeMap<String, Clocks>,
    /// Per metric, what the current step has accumulated (rates and percentiles).
    evidence: BTreeMap<String, Evidence>,
    history: Vec<IntervalResult>,
}

/// A condition's state after its `for` clock.
#[derive(Clone, Copy, PartialEq)]
enum Timed {
    Pass,
    Pending,
    Fail,
    /// Inconclusive; `true` when the measured value leans past the line.
    Inconclusive(bool),
}

/// Whether a metric's inconclusive verdict comes from missing data or from data that
/// cannot decide yet.
#[derive(Clone, Copy, PartialEq)]
enum Lack {
    /// No measurement, a source error, no canary request: nothing to judge.
    Data,
    /// Data came in; the confidence interval still straddles a line.
    Evidence,
}

impl Judge {
    /// A judge with no history, on step 0.
    pub fn new() -> Self {
        Judge::default()
    }

    /// Judges one interval: adds its data to the step's evidence, evaluates every metric
    /// of `policy`, updates the streaks and clocks, appends the result to the history
    /// and returns it.
    pub fn judge(&mut self, policy: &AnalysisPolicy, input: IntervalInput) -> IntervalResult {
        self.step_requests = self.step_requests.saturating_add(input.canary_requests);
        // Each look at the step's accumulated evidence spends part of the error budget, so
        // looks are spaced by data: the first once the step has `min_requests` canary
        // requests, the next once they have grown by half, or after LOOK_EVERY intervals
        // with new requests, whichever comes first. Both depend on how many requests came,
        // never on what they say, which keeps the budget valid; all metrics look together,
        // so that a step passes when all of them pass at the same look.
        if input.canary_requests > 0 {
            self.intervals_since_look = self.intervals_since_look.saturating_add(1);
        }
        let look = input.canary_requests > 0
            && self.step_requests >= policy.min_requests
            && (self.looked_at == 0
                || self.step_requests >= next_look(self.looked_at)
                || self.intervals_since_look >= LOOK_EVERY);
        if look {
            self.looked_at = self.step_requests;
            self.intervals_since_look = 0;
        }
        let lookup = |name: &str| input.metrics.iter().find(|m| m.name == name);
        let mut lacks = Vec::new();
        let metrics: Vec<MetricResult> = policy
            .metrics
            .iter()
            .map(|mp| {
                let (result, lack) = self.judge_metric(policy, mp, lookup(&mp.name), &input, look);
                lacks.extend(lack);
                result
            })
            .collect();

        let no_data = lacks.contains(&Lack::Data);
        let decision = self.decide(policy, &metrics, no_data);
        let result = IntervalResult {
            step: self.step,
            at: input.at,
            canary_requests: input.canary_requests,
            step_canary_requests: self.step_requests,
            metrics,
            decision,
            consecutive_failures: self.consecutive_failures,
            consecutive_inconclusive: self.consecutive_inconclusive,
        };
        if matches!(result.decision, Decision::Pause(_)) {
            // A resumed rollout gets fresh limits.
            self.consecutive_inconclusive = 0;
            self.consecutive_undecided = 0;
            self.consecutive_pauses = 0;
        }
        self.history.push(result.clone());
        result
    }

    /// One metric's verdict, updating its evidence and `for` clocks.
    fn judge_metric(
        &mut self,
        policy: &AnalysisPolicy,
        mp: &MetricPolicy,
        input: Option<&MetricInput>,
        interval: &IntervalInput,
        look: bool,
    ) -> (MetricResult, Option<Lack>) {
        let name = &mp.name;
        let lacking = |reason: String| {
            let r = result(
                mp,
                MetricVerdict::Inconclusive,
                reason,
                None,
                "fail_if",
                &mp.fail_if,
            );
            (r, Some(Lack::Data))
        };
        let window = match input.map(|m| &m.window) {
            None => return lacking(format!("{name}: no measurement for this interval")),
            Some(Err(error)) => return lacking(format!("{name}: source error: {error}")),
            Some(Ok(window)) => window,
        };

        // Rates and percentiles accumulate over the step.
        let reading = match (window.canary_counts, window.quantile) {
            (Some(_), _) => Some(Reading::Rate),
            (None, Some(q)) => Some(Reading::Quantile(q)),
            (None, None) => None,
        };
        let evidence = reading.map(|reading| {
            let evidence = self.evidence.entry(name.clone()).or_default();
            match reading {
                Reading::Rate => evidence.add_counts(
                    window.canary_counts.unwrap_or_default(),
                    window.stable_counts.unwrap_or_default(),
                ),
                Reading::Quantile(_) => {
                    evidence.add_samples(&window.canary_samples, &window.stable_samples)
                }
            }
            (evidence.clone(), reading)
        });

        if interval.canary_requests == 0 {
            return lacking(format!("{name}: no canary request in this interval"));
        }
        if self.step_requests < policy.min_requests {
            let r = result(
                mp,
                MetricVerdict::Inconclusive,
                format!(
                    "{name}: {} canary requests this step, need {} before judging",
                    self.step_requests, policy.min_requests
                ),
                Some(window),
                "fail_if",
                &mp.fail_if,
            );
            return (r, Some(Lack::Evidence));
        }

        // A value without a sample size (Prometheus, request_rate) is judged on its own
        // interval, so the interval itself needs min_requests.
        if evidence.is_none() && interval.canary_requests < policy.min_requests {
            let r = result(
                mp,
                MetricVerdict::Inconclusive,
                format!(
                    "{name}: only {} canary requests in this interval, need {}",
                    interval.canary_requests, policy.min_requests
                ),
                Some(window),
                "fail_if",
                &mp.fail_if,
            );
            return (r, Some(Lack::Data));
        }

        // Between the judge's looks (see `Judge::judge`) nothing accumulated is decided:
        // the metric is gathering, neither a pass nor a failure. At a look, a metric that
        // cannot be bounded yet (a p99 from too few samples) keeps gathering without
        // spending its budget.
        let mut evidence = evidence;
        if let Some((accumulated, reading)) = evidence.as_mut() {
            let stored = self.evidence.entry(name.clone()).or_default();
            let seen = stored.canary_observations(*reading);
            let first = first_look(*reading, mp.statistical.confidence);
            if !look || seen < first {
                let why = if seen < first {
                    format!("needs {first} before it can be judged")
                } else {
                    format!("next look within {LOOK_EVERY} intervals")
                };
                let mut r = result(
                    mp,
                    MetricVerdict::Inconclusive,
                    format!("{name}: gathering, {seen} canary observations this step; {why}"),
                    Some(window),
                    "fail_if",
                    &mp.fail_if,
                );
                show_estimates(&mut r, accumulated, *reading);
                return (r, Some(Lack::Evidence));
            }
            stored.looks = stored.looks.saturating_add(1);
            accumulated.looks = stored.looks;
        }

        let evaluate = |condition: &Condition| match &evidence {
            Some((evidence, reading)) => {
                let confidence = mp.statistical.confidence;
                let alphas = Alphas {
                    against: alpha_at_look(
                        1.0 - confidence.min(AGAINST_CONFIDENCE),
                        evidence.looks,
                    ),
                    for_canary: alpha_at_look(1.0 - confidence, evidence.looks),
                };
                evidence.evaluate(name, condition, *reading, alphas)
            }
            None => condition.evaluate(name, window, &mp.statistical),
        };
        let shown = |mut r: MetricResult| {
            // Accumulated metrics show the step's estimates, the numbers judged.
            if let Some((evidence, reading)) = &evidence {
                show_estimates(&mut r, evidence, *reading);
            }
            r
        };

        let clocks = self.clocks.entry(name.clone()).or_default();
        let (fail, fail_reason) = timed(
            &mut clocks.fail_since,
            evaluate(&mp.fail_if),
            interval.at,
            mp.for_duration,
        );
        let pause = mp.pause_if.map(|condition| {
            let (state, reason) = timed(
                &mut clocks.pause_since,
                evaluate(&condition),
                interval.at,
                mp.for_duration,
            );
            (condition, state, reason)
        });

        let from_fail = |verdict, reason| {
            shown(result(
                mp,
                verdict,
                reason,
                Some(window),
                "fail_if",
                &mp.fail_if,
            ))
        };
        let from_pause = |verdict, reason, condition: &Condition| {
            shown(result(
                mp,
                verdict,
                reason,
                Some(window),
                "pause_if",
                condition,
            ))
        };
        // Evidence that cannot decide is a lack of evidence; a missing value is a lack
        // of data.
        let lack = if evidence.is_some() {
            Lack::Evidence
        } else {
            Lack::Data
        };
        let judged = |r: MetricResult| (r, None);
        match (fail, pause) {
            (Timed::Fail, _) => judged(from_fail(MetricVerdict::Fail, fail_reason)),
            (Timed::Pending, _) => judged(from_fail(MetricVerdict::Pending, fail_reason)),
            (_, Some((c, Timed::Fail, reason))) => {
                judged(from_pause(MetricVerdict::Pause, reason, &c))
            }
            (_, Some((c, Timed::Pending, reason))) => {
                judged(from_pause(MetricVerdict::Pending, reason, &c))
            }
            (Timed::Inconclusive(_), _) => (
                from_fail(MetricVerdict::Inconclusive, fail_reason),
                Some(lack),
            ),
            // `pause_if` is an alarm: it pauses once the data show it holds. While they
            // cannot tell, it holds the step only if the measured value is past its line.
            (_, Some((c, Timed::Inconclusive(leans), reason))) if leans || evidence.is_none() => (
                from_pause(MetricVerdict::Inconclusive, reason, &c),
                Some(lack),
            ),
            (Timed::Pass, _) => judged(from_fail(MetricVerdict::Pass, fail_reason)),
        }
    }

    /// The interval's decision from its metric verdicts; updates the streaks.
    /// `no_data`: some metric had nothing to judge this interval.
    fn decide(
        &mut self,
        policy: &AnalysisPolicy,
        metrics: &[MetricResult],
        no_data: bool,
    ) -> Decision {
        let failure_limit = policy.failure_limit.max(1);
        let inconclusive_limit = policy.inconclusive_limit.max(1);
        let max_intervals = policy.max_intervals.max(1);
        let with = |verdict: MetricVerdict| {
            metrics
                .iter()
                .filter(|m| m.verdict == verdict)
                .map(|m| m.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let any = |verdict: MetricVerdict| metrics.iter().any(|m| m.verdict == verdict);

        if any(MetricVerdict::Fail) {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_inconclusive = 0;
            self.consecutive_undecided = 0;
            let n = self.consecutive_failures;
            let failing = with(MetricVerdict::Fail);
            return if n >= failure_limit {
                Decision::Rollback(format!(
                    "{n} failed intervals in a row (failure_limit {failure_limit}); last: \
                     {failing}"
                ))
            } else {
                Decision::Hold(format!(
                    "failed interval {n} of {failure_limit} before rollback: {failing}"
                ))
            };
        }
        if any(MetricVerdict::Pending) {
            self.consecutive_inconclusive = 0;
            self.consecutive_undecided = 0;
            return Decision::Hold(with(MetricVerdict::Pending));
        }
        if any(MetricVerdict::Pause) {
            self.consecutive_inconclusive = 0;
            self.consecutive_undecided = 0;
            self.consecutive_pauses = self.consecutive_pauses.saturating_add(1);
            let n = self.consecutive_pauses;
            let pausing = with(MetricVerdict::Pause);
            // Like fail_if, pause_if has to hold persistently.
            return if n >= failure_limit {
                Decision::Pause(format!(
                    "pause_if met in {n} interval{} in a row: {pausing}",
                    if n == 1 { "" } else { "s" }
                ))
            } else {
                Decision::Hold(format!(
                    "pause_if met in interval {n} of {failure_limit} before pausing: {pausing}"
                ))
            };
        }
        if metrics.is_empty() || any(MetricVerdict::Inconclusive) {
            let why = if metrics.is_empty() {
                "the analysis policy has no metrics, nothing was judged".to_string()
            } else {
                with(MetricVerdict::Inconclusive)
            };
            if metrics.is_empty() || no_data {
                self.consecutive_pauses = 0;
                self.consecutive_inconclusive = self.consecutive_inconclusive.saturating_add(1);
                let n = self.consecutive_inconclusive;
                return if n >= inconclusive_limit {
                    Decision::Pause(format!(
                        "{n} intervals in a row without data to judge (inconclusive_limit \
                         {inconclusive_limit}): the canary cannot be judged, waiting for a \
                         human; last: {why}"
                    ))
                } else {
                    Decision::Inconclusive(format!(
                        "no data to judge in interval {n} of {inconclusive_limit} before \
                         pausing: {why}"
                    ))
                };
            }
            self.consecutive_inconclusive = 0;
            self.consecutive_undecided = self.consecutive_undecided.saturating_add(1);
            let n = self.consecutive_undecided;
            return if n >= max_intervals {
                Decision::Pause(format!(
                    "{n} intervals in a row could not decide (max_intervals {max_intervals}): \
                     more traffic or a longer step would tell, waiting for a human; last: {why}"
                ))
            } else {
                Decision::Inconclusive(format!(
                    "gathering evidence ({} canary requests this step, undecided interval {n} \
                     of {max_intervals}): {why}",
                    self.step_requests
                ))
            };
        }
        self.consecutive_failures = 0;
        self.consecutive_inconclusive = 0;
        self.consecutive_undecided = 0;
        self.consecutive_pauses = 0;
        Decision::Continue
    }

    /// Marks the start of a new rollout step (the traffic weight changed): the
    /// streaks and `for` clocks restart, because the measurements of the previous
    /// weight say nothing about this one; the history is kept for the deployment
    /// record. [`Judge::can_promote`] is false until an interval of the new step
    /// passes.
    pub fn start_step(&mut self) {
        self.step = self.step.saturating_add(1);
        self.step_start = self.history.len();
        self.consecutive_failures = 0;
        self.consecutive_inconclusive = 0;
        self.consecutive_pauses = 0;
        self.consecutive_undecided = 0;
        self.step_requests = 0;
        self.looked_at = 0;
        self.intervals_since_look = 0;
        self.clocks.clear();
        self.evidence.clear();
    }

    /// Whether the current step may be promoted: its last interval was `Continue`
    /// (so at least one interval passed since the step began, and nothing has gone
    /// wrong since), and no interval of the analysis ever decided `Rollback`.
    pub fn can_promote(&self) -> bool {
        let rolled_back = self
            .history
            .iter()
            .any(|r| matches!(r.decision, Decision::Rollback(_)));
        !rolled_back
            && self
                .step_history()
                .last()
                .is_some_and(|r| r.decision == Decision::Continue)
    }

    /// Every judged interval, oldest first, across all steps: the deployment record.
    pub fn history(&self) -> &[IntervalResult] {
        &self.history
    }

    /// The intervals of the current step.
    pub fn step_history(&self) -> &[IntervalResult] {
        self.history.get(self.step_start..).unwrap_or(&[])
    }

    /// The last judged interval.
    pub fn last(&self) -> Option<&IntervalResult> {
        self.history.last()
    }

    /// The current step (0 for the first).
    pub fn step(&self) -> u32 {
        self.step
    }

    /// Intervals that passed, across all steps.
    pub fn passed_intervals(&self) -> usize {
        count_passed(&self.history)
    }

    /// Intervals of the current step that passed.
    pub fn step_passed_intervals(&self) -> usize {
        count_passed(self.step_history())
    }

    /// Failed intervals in a row, as compared with `failure_limit`.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Inconclusive intervals in a row, as compared with `inconclusive_limit`.
    pub fn consecutive_inconclusive(&self) -> u32 {
        self.consecutive_inconclusive
    }
}

/// An accumulated metric's line shows the step's estimates: the numbers judged.
fn show_estimates(r: &mut MetricResult, evidence: &Evidence, reading: Reading) {
    let (canary, stable) = evidence.estimates(reading);
    r.canary = canary.filter(|v| v.is_finite());
    r.stable = stable.filter(|v| v.is_finite());
}

/// The canary observations at which the next look is due: half as many again as at the
/// previous look.
fn next_look(looked_at: u64) -> u64 {
    looked_at.saturating_add(looked_at.div_ceil(2)).max(1)
}

/// At most this many intervals with new data pass between two looks, so that a canary
/// that breaks late in a long step is looked at again soon.
const LOOK_EVERY: u32 = 3;

/// The canary observations before the first look: for a percentile, the fewest samples
/// from which it can have an upper bound at the first look's level (a look before that
/// could only spend budget); for a rate, one.
fn first_look(reading: Reading, confidence: f64) -> u64 {
    match reading {
        Reading::Rate => 1,
        Reading::Quantile(q) if q > 0.0 && q < 1.0 => {
            // A relative condition bounds each release at half the level.
            let alpha = alpha_at_look(1.0 - confidence, 1) / 2.0;
            let n = (alpha.ln() / q.ln()).ceil();
            if n.is_finite() && n >= 1.0 {
                n as u64
            } else {
                1
            }
        }
        Reading::Quantile(_) => 1,
    }
}

fn count_passed(intervals: &[IntervalResult]) -> usize {
    intervals
        .iter()
        .filter(|r| r.decision == Decision::Continue)
        .count()
}

/// Applies a `for` clock to an evaluation: Pass resets it, Inconclusive leaves it,
/// Fail starts it (if not running) and fails once it has run for `for_duration`.
fn timed(
    since: &mut Option<Duration>,
    evaluation: Evaluation,
    at: Duration,
    for_duration: Option<Duration>,
) -> (Timed, String) {
    match evaluation.verdict {
        Verdict::Pass => {
            *since = None;
            (Timed::Pass, evaluation.reason)
        }
        Verdict::Inconclusive => (Timed::Inconclusive(evaluation.leans_bad), evaluation.reason),
        Verdict::Fail => {
            let Some(required) = for_duration.filter(|d| !d.is_zero()) else {
                return (Timed::Fail, evaluation.reason);
            };
            let start = match *since {
                Some(start) if start <= at => start,
                // Not running, or `at` went backwards: (re)start it now.
                _ => at,
            };
            *since = Some(start);
            let elapsed = at.saturating_sub(start);
            if elapsed >= required {
                let reason = format!(
                    "{} (failing for {})",
                    evaluation.reason,
                    format::duration(elapsed)
                );
                (Timed::Fail, reason)
            } else {
                let reason = format!(
                    "{} (failing for {} of {})",
                    evaluation.reason,
                    format::duration(elapsed),
                    format::duration(required)
                );
                (Timed::Pending, reason)
            }
        }
    }
}

/// A metric's line; only finite values are recorded (so that the persisted history
/// round-trips through JSON, which has no NaN).
fn result(
    mp: &MetricPolicy,
    verdict: MetricVerdict,
    reason: String,
    window: Option<&MetricWindow>,
    role: &str,
    condition: &Condition,
) -> MetricResult {
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
    MetricResult {
        name: mp.name.clone(),
        verdict,
        reason,
        canary: window.and_then(|w| finite(w.canary)),
        stable: window.and_then(|w| finite(w.stable)),
        condition: format!("{role} {condition}"),
    }
}
