//! The interval-by-interval judge: streaks, limits, pauses, `for` durations, steps,
//! persistence and the runbooks' default policy.

use std::time::Duration;

use runway_analysis::{
    AnalysisPolicy, Condition, Counts, Decision, IntervalInput, Judge, MetricInput, MetricPolicy,
    MetricVerdict, MetricWindow, StatisticalOptions, ERROR_RATE, LATENCY_P99,
};

const MIN_REQUESTS: u64 = 50;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn cond(text: &str) -> Condition {
    Condition::parse(text).unwrap()
}

/// The runbook policy with the given failure and inconclusive limits.
fn runbook(failure_limit: u32, inconclusive_limit: u32) -> AnalysisPolicy {
    AnalysisPolicy::default_for_runbooks(failure_limit, MIN_REQUESTS, inconclusive_limit)
}

/// One interval of the runbook metrics: the canary's error rate (stable at 0.2%) and
/// p99 latencies (canary, stable).
fn measured(at: u64, error_rate: f64, p99: (f64, f64)) -> IntervalInput {
    IntervalInput {
        at: secs(at),
        canary_requests: 1000,
        metrics: vec![
            MetricInput::ok(
                ERROR_RATE,
                MetricWindow::values(Some(error_rate), Some(0.002)),
            ),
            MetricInput::ok(LATENCY_P99, MetricWindow::values(Some(p99.0), Some(p99.1))),
        ],
    }
}

fn healthy(at: u64) -> IntervalInput {
    measured(at, 0.001, (0.30, 0.29))
}

fn erroring(at: u64) -> IntervalInput {
    measured(at, 0.06, (0.30, 0.29))
}

/// An interval in which the p99 has no stable value: inconclusive.
fn unjudgeable(at: u64) -> IntervalInput {
    let mut input = healthy(at);
    input.metrics[1] = MetricInput::ok(LATENCY_P99, MetricWindow::values(Some(0.3), None));
    input
}

/// An interval in which the error-rate source failed: inconclusive.
fn source_error(at: u64) -> IntervalInput {
    let mut input = healthy(at);
    input.metrics[0] = MetricInput::error(ERROR_RATE, "prometheus unreachable");
    input
}

fn verdict_of(result: &runway_analysis::IntervalResult, name: &str) -> MetricVerdict {
    result
        .metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap()
        .verdict
}

fn reason(decision: &Decision) -> &str {
    decision.reason().unwrap_or("")
}

#[test]
fn rollback_exactly_at_failure_limit_not_before() {
    let policy = runbook(3, 5);
    let mut judge = Judge::new();
    for (i, at) in [60, 120].into_iter().enumerate() {
        let r = judge.judge(&policy, erroring(at));
        let n = i + 1;
        assert!(
            matches!(&r.decision, Decision::Hold(why)
                if why == &format!("failed interval {n} of 3 before rollback: error_rate 0.06 > 0.05")),
            "{:?}",
            r.decision
        );
        assert_eq!(r.consecutive_failures, n as u32);
        assert_eq!(verdict_of(&r, ERROR_RATE), MetricVerdict::Fail);
        assert!(!judge.can_promote());
    }
    let r = judge.judge(&policy, erroring(180));
    assert_eq!(
        r.decision,
        Decision::Rollback(
            "3 failed intervals in a row (failure_limit 3); last: error_rate 0.06 > 0.05"
                .to_string()
        )
    );
    assert_eq!(judge.consecutive_failures(), 3);
    assert!(!judge.can_promote());
}

#[test]
fn a_pass_resets_the_failure_streak() {
    let policy = runbook(3, 5);
    let mut judge = Judge::new();
    judge.judge(&policy, erroring(60));
    judge.judge(&policy, erroring(120));
    let r = judge.judge(&policy, healthy(180));
    assert_eq!(r.decision, Decision::Continue);
    assert_eq!(r.consecutive_failures, 0);
    assert!(judge.can_promote());
    let r = judge.judge(&policy, erroring(240));
    assert!(
        reason(&r.decision).starts_with("failed interval 1 of 3"),
        "{r:?}"
    );
    assert!(matches!(
        judge.judge(&policy, erroring(300)).decision,
        Decision::Hold(_)
    ));
    assert!(matches!(
        judge.judge(&policy, erroring(360)).decision,
        Decision::Rollback(_)
    ));
}

/// An interval that could not be judged is no evidence of recovery: it neither
/// counts as a failure nor resets the streak.
#[test]
fn an_inconclusive_interval_does_not_reset_the_failure_streak() {
    let policy = runbook(3, 5);
    let mut judge = Judge::new();
    judge.judge(&policy, erroring(60));
    let mut gap = erroring(120);
    gap.metrics[0] = MetricInput::error(ERROR_RATE, "connection refused");
    let r = judge.judge(&policy, gap);
    assert!(matches!(r.decision, Decision::Inconclusive(_)), "{r:?}");
    assert_eq!(r.consecutive_failures, 1);
    assert!(matches!(
        judge.judge(&policy, erroring(180)).decision,
        Decision::Hold(_)
    ));
    assert!(matches!(
        judge.judge(&policy, erroring(240)).decision,
        Decision::Rollback(_)
    ));
}

#[test]
fn too_few_requests_is_inconclusive_never_continue() {
    let policy = runbook(1, 100);
    let mut judge = Judge::new();
    // min_requests counts the step's canary requests: 12 a interval reach 50 at the 5th.
    for (n, input) in [healthy(60), erroring(120), healthy(180), erroring(240)]
        .into_iter()
        .enumerate()
    {
        let mut input = input;
        input.canary_requests = 12;
        let r = judge.judge(&policy, input);
        let seen = 12 * (n as u64 + 1);
        let why = format!("{seen} canary requests this step, need 50 before judging");
        assert!(
            matches!(&r.decision, Decision::Inconclusive(reason) if reason.contains(&why)),
            "interval {n}: {:?}",
            r.decision
        );
        assert_eq!(r.step_canary_requests, seen);
        for m in &r.metrics {
            assert_eq!(m.verdict, MetricVerdict::Inconclusive);
            assert_eq!(m.reason, format!("{}: {why}", m.name));
        }
        // The numbers are still recorded.
        assert!(r.metrics[0].canary.is_some());
        assert!(!judge.can_promote());
    }
    assert_eq!(judge.passed_intervals(), 0);
    // Gathering is not a lack of data: it does not count toward inconclusive_limit.
    assert_eq!(judge.consecutive_inconclusive(), 0);
    // 48 + 12 = 60 >= min_requests for the step, but a bare value (no counts, no
    // samples: a Prometheus query) is judged on its own interval, which needs 50 too.
    let mut input = healthy(300);
    input.canary_requests = 12;
    let r = judge.judge(&policy, input);
    assert!(
        reason(&r.decision).contains("only 12 canary requests in this interval, need 50"),
        "{r:?}"
    );
    let mut input = healthy(360);
    input.canary_requests = 50;
    assert_eq!(judge.judge(&policy, input).decision, Decision::Continue);
}

/// Counts and samples add up over the step: 30 requests an interval are judged once the
/// step has 50, and the verdict rests on all of them.
#[test]
fn evidence_accumulates_over_the_step_and_resets_with_it() {
    let policy = AnalysisPolicy::default_for_runbooks(2, 50, 3);
    let mut judge = Judge::new();
    let interval = |at: u64, errors: u64| IntervalInput {
        at: secs(at),
        canary_requests: 30,
        metrics: vec![MetricInput::ok(
            ERROR_RATE,
            MetricWindow::rate(Counts::new(errors, 30), Counts::new(1, 270)),
        )],
    };
    let policy = AnalysisPolicy {
        metrics: policy.metrics[..1].to_vec(),
        ..policy
    };
    let r = judge.judge(&policy, interval(10, 9));
    assert!(
        reason(&r.decision).contains("30 canary requests this step, need 50"),
        "{r:?}"
    );
    // 18 of 60 (30%): well past 5% at the first look.
    let r = judge.judge(&policy, interval(20, 9));
    assert_eq!(r.step_canary_requests, 60);
    assert_eq!(r.metrics[0].verdict, MetricVerdict::Fail, "{r:?}");
    assert!(r.metrics[0].reason.contains("18 of 60"), "{r:?}");
    // A new step starts from nothing.
    judge.start_step();
    let r = judge.judge(&policy, interval(30, 0));
    assert!(
        reason(&r.decision).contains("30 canary requests this step"),
        "{r:?}"
    );
}

/// Between looks nothing is decided: new bad data after a pass is not hidden by the pass,
/// and a look comes at least every few intervals.
#[test]
fn a_pass_does_not_stand_while_new_data_come_in() {
    let policy = AnalysisPolicy::default_for_runbooks(2, 50, 3);
    let policy = AnalysisPolicy {
        metrics: policy.metrics[..1].to_vec(),
        ..policy
    };
    let mut judge = Judge::new();
    let interval = |at: u64, errors: u64| IntervalInput {
        at: secs(at),
        canary_requests: 1000,
        metrics: vec![MetricInput::ok(
            ERROR_RATE,
            MetricWindow::rate(Counts::new(errors, 1000), Counts::new(5, 9000)),
        )],
    };
    let mut at = 0;
    let mut passed = false;
    for _ in 0..30 {
        at += 10;
        passed |= judge.judge(&policy, interval(at, 1)).decision == Decision::Continue;
    }
    assert!(passed);
    // The canary breaks: 100% errors. No interval may continue any more, and the
    // rollback comes within a few intervals.
    let mut rolled_back_after = None;
    for i in 1..=12 {
        at += 10;
        let r = judge.judge(&policy, interval(at, 1000));
        assert_ne!(
            r.decision,
            Decision::Continue,
            "interval {i} after the break: {r:?}"
        );
        if matches!(r.decision, Decision::Rollback(_)) {
            rolled_back_after = Some(i);
            break;
        }
    }
    assert!(
        rolled_back_after.is_some_and(|i| i <= 8),
        "{rolled_back_after:?}"
    );
}

#[test]
fn inconclusive_limit_pauses_for_a_human() {
    let policy = runbook(2, 3);
    let mut judge = Judge::new();
    for n in 1..=2 {
        let r = judge.judge(&policy, unjudgeable(60 * n));
        assert_eq!(
            r.decision,
            Decision::Inconclusive(format!(
                "no data to judge in interval {n} of 3 before pausing: latency_p99: no stable \
                 value to compare with"
            ))
        );
    }
    let r = judge.judge(&policy, unjudgeable(180));
    assert!(
        matches!(&r.decision, Decision::Pause(why) if why.starts_with(
            "3 intervals in a row without data to judge (inconclusive_limit 3): the canary cannot \
             be judged"
        ) && why.ends_with("last: latency_p99: no stable value to compare with")),
        "{:?}",
        r.decision
    );
    assert_eq!(r.consecutive_inconclusive, 3);
    assert!(!judge.can_promote());
    // After the pause (a human resumed), the count starts over.
    assert_eq!(judge.consecutive_inconclusive(), 0);
    let r = judge.judge(&policy, unjudgeable(240));
    assert!(
        reason(&r.decision).starts_with("no data to judge in interval 1 of 3"),
        "{r:?}"
    );
}

#[test]
fn a_judged_interval_resets_the_inconclusive_streak() {
    let policy = runbook(5, 3);
    let mut judge = Judge::new();
    judge.judge(&policy, unjudgeable(60));
    judge.judge(&policy, unjudgeable(120));
    judge.judge(&policy, healthy(180));
    judge.judge(&policy, unjudgeable(240));
    let r = judge.judge(&policy, unjudgeable(300));
    assert!(matches!(r.decision, Decision::Inconclusive(_)), "{r:?}");
    // A failure resets it too.
    judge.judge(&policy, erroring(360));
    let r = judge.judge(&policy, unjudgeable(420));
    assert_eq!(r.consecutive_inconclusive, 1);
}

#[test]
fn pause_if_pauses() {
    let policy = runbook(2, 3);
    let mut judge = Judge::new();
    // Like fail_if, pause_if has to hold for failure_limit intervals in a row.
    let r = judge.judge(&policy, measured(60, 0.03, (0.3, 0.3)));
    assert_eq!(
        r.decision,
        Decision::Hold(
            "pause_if met in interval 1 of 2 before pausing: error_rate 0.03 > 0.01".to_string()
        )
    );
    let r = judge.judge(&policy, measured(120, 0.03, (0.3, 0.3)));
    assert_eq!(
        r.decision,
        Decision::Pause("pause_if met in 2 intervals in a row: error_rate 0.03 > 0.01".to_string())
    );
    let m = &r.metrics[0];
    assert_eq!(m.verdict, MetricVerdict::Pause);
    assert_eq!(m.condition, "pause_if > 0.01");
    assert_eq!((m.canary, m.stable), (Some(0.03), Some(0.002)));
    assert_eq!(judge.consecutive_failures(), 0);
    assert!(!judge.can_promote());
}

/// A failing metric outranks a pausing one, so that the automatic rollback is not
/// replaced by a wait for a human.
#[test]
fn failure_outranks_pause() {
    let policy = runbook(2, 3);
    let mut judge = Judge::new();
    // Errors in the pause band, p99 4x stable.
    let r = judge.judge(&policy, measured(60, 0.03, (1.2, 0.3)));
    assert_eq!(verdict_of(&r, ERROR_RATE), MetricVerdict::Pause);
    assert_eq!(verdict_of(&r, LATENCY_P99), MetricVerdict::Fail);
    assert!(
        matches!(&r.decision, Decision::Hold(why) if why.contains("latency_p99 1.2 > 3x stable (0.3 -> 0.9)")),
        "{:?}",
        r.decision
    );
    let r = judge.judge(&policy, measured(120, 0.03, (1.2, 0.3)));
    assert!(matches!(r.decision, Decision::Rollback(_)), "{r:?}");
}

#[test]
fn a_source_error_is_inconclusive_with_its_reason() {
    let policy = runbook(1, 3);
    let mut judge = Judge::new();
    let mut input = healthy(60);
    input.metrics[0] = MetricInput::error(ERROR_RATE, "prometheus unreachable: connection refused");
    let r = judge.judge(&policy, input);
    let m = &r.metrics[0];
    assert_eq!(m.verdict, MetricVerdict::Inconclusive);
    assert_eq!(
        m.reason,
        "error_rate: source error: prometheus unreachable: connection refused"
    );
    assert_eq!((m.canary, m.stable), (None, None));
    assert_eq!(verdict_of(&r, LATENCY_P99), MetricVerdict::Pass);
    assert!(
        matches!(&r.decision, Decision::Inconclusive(why) if why.contains("source error: prometheus unreachable")),
        "{:?}",
        r.decision
    );
    assert_eq!(judge.consecutive_inconclusive(), 1);
    assert!(!judge.can_promote());
}

#[test]
fn a_missing_measurement_is_inconclusive_and_extra_ones_are_ignored() {
    let policy = runbook(1, 3);
    let mut judge = Judge::new();
    let mut input = healthy(60);
    input.metrics.remove(1);
    input.metrics.push(MetricInput::ok(
        "unrelated",
        MetricWindow::values(Some(1e9), None),
    ));
    let r = judge.judge(&policy, input);
    let m = &r.metrics[1];
    assert_eq!(m.name, LATENCY_P99);
    assert_eq!(m.verdict, MetricVerdict::Inconclusive);
    assert_eq!(m.reason, "latency_p99: no measurement for this interval");
    assert_eq!(r.metrics.len(), 2);
    assert!(matches!(r.decision, Decision::Inconclusive(_)));
}

#[test]
fn non_finite_values_are_inconclusive_and_not_recorded() {
    let policy = runbook(1, 3);
    let mut judge = Judge::new();
    let r = judge.judge(&policy, measured(60, f64::NAN, (f64::INFINITY, 0.3)));
    assert_eq!(verdict_of(&r, ERROR_RATE), MetricVerdict::Inconclusive);
    assert_eq!(verdict_of(&r, LATENCY_P99), MetricVerdict::Inconclusive);
    assert_eq!(r.metrics[0].canary, None);
    assert_eq!(r.metrics[1].canary, None);
    assert_eq!(r.metrics[1].stable, Some(0.3));
    assert!(matches!(r.decision, Decision::Inconclusive(_)));
    // The state still serialises (JSON has no NaN).
    let json = serde_json::to_string(&judge).unwrap();
    let back: Judge = serde_json::from_str(&json).unwrap();
    assert_eq!(back, judge);
}

#[test]
fn an_empty_policy_never_continues() {
    let policy = AnalysisPolicy {
        failure_limit: 1,
        min_requests: 0,
        inconclusive_limit: 2,
        max_intervals: AnalysisPolicy::DEFAULT_MAX_INTERVALS,
        metrics: vec![],
    };
    assert!(policy.validate().is_err());
    let mut judge = Judge::new();
    let r = judge.judge(&policy, healthy(60));
    assert!(
        matches!(&r.decision, Decision::Inconclusive(why) if why.contains("no metrics")),
        "{r:?}"
    );
    assert!(matches!(
        judge.judge(&policy, healthy(120)).decision,
        Decision::Pause(_)
    ));
    assert!(!judge.can_promote());
}

#[test]
fn zero_limits_behave_as_one() {
    let policy = runbook(0, 0);
    let mut judge = Judge::new();
    assert!(matches!(
        judge.judge(&policy, erroring(60)).decision,
        Decision::Rollback(_)
    ));
    let mut judge = Judge::new();
    assert!(matches!(
        judge.judge(&policy, unjudgeable(60)).decision,
        Decision::Pause(_)
    ));
}

/// Error rate above 5% with `for = 5m`, judged every minute.
fn error_rate_for_5m(failure_limit: u32) -> AnalysisPolicy {
    AnalysisPolicy {
        failure_limit,
        min_requests: MIN_REQUESTS,
        inconclusive_limit: 10,
        max_intervals: AnalysisPolicy::DEFAULT_MAX_INTERVALS,
        metrics: vec![MetricPolicy::new(ERROR_RATE, cond("> 0.05"))
            .with_pause_if(cond("> 0.01"))
            .with_for_duration(secs(300))],
    }
}

fn errors_only(at: u64, error_rate: f64) -> IntervalInput {
    IntervalInput {
        at: secs(at),
        canary_requests: 1000,
        metrics: vec![MetricInput::ok(
            ERROR_RATE,
            MetricWindow::values(Some(error_rate), Some(0.0)),
        )],
    }
}

#[test]
fn for_duration_pending_until_held_long_enough() {
    let policy = error_rate_for_5m(1);
    let mut judge = Judge::new();
    // The clock starts at the first failing interval (t=60) and the failure counts
    // once it has held for 5 minutes (t=360), as in a Prometheus alert's `for:`.
    for (at, elapsed) in [
        (60, "0s"),
        (120, "1m"),
        (180, "2m"),
        (300, "4m"),
        (350, "4m50s"),
    ] {
        let r = judge.judge(&policy, errors_only(at, 0.06));
        let m = &r.metrics[0];
        assert_eq!(m.verdict, MetricVerdict::Pending, "t={at}");
        assert_eq!(
            m.reason,
            format!("error_rate 0.06 > 0.05 (failing for {elapsed} of 5m)")
        );
        assert_eq!(m.condition, "fail_if > 0.05");
        // Pending holds the step, and is not a failure (nor a pause, although
        // pause_if holds too).
        assert_eq!(r.decision, Decision::Hold(m.reason.clone()));
        assert_eq!(r.consecutive_failures, 0);
        assert!(!judge.can_promote());
    }
    let r = judge.judge(&policy, errors_only(360, 0.06));
    assert_eq!(r.metrics[0].verdict, MetricVerdict::Fail);
    assert_eq!(
        r.decision,
        Decision::Rollback(
            "1 failed intervals in a row (failure_limit 1); last: error_rate 0.06 > 0.05 \
             (failing for 5m)"
                .to_string()
        )
    );
}

#[test]
fn for_duration_is_reset_by_a_pass_but_not_by_an_inconclusive_interval() {
    let policy = error_rate_for_5m(1);
    let mut judge = Judge::new();
    judge.judge(&policy, errors_only(0, 0.06));
    judge.judge(&policy, errors_only(240, 0.06));
    // A pass at t=270 resets the clock...
    let r = judge.judge(&policy, errors_only(270, 0.001));
    assert_eq!(r.decision, Decision::Continue);
    let r = judge.judge(&policy, errors_only(300, 0.06));
    assert!(
        reason(&r.decision).contains("failing for 0s of 5m"),
        "{r:?}"
    );
    // ... while a source error (and too few requests) leaves it running.
    judge.judge(
        &policy,
        IntervalInput {
            at: secs(400),
            canary_requests: 1000,
            metrics: vec![MetricInput::error(ERROR_RATE, "timeout")],
        },
    );
    let mut few = errors_only(500, 0.06);
    few.canary_requests = 3;
    judge.judge(&policy, few);
    let r = judge.judge(&policy, errors_only(540, 0.06));
    assert!(
        reason(&r.decision).contains("failing for 4m of 5m"),
        "{r:?}"
    );
    let r = judge.judge(&policy, errors_only(600, 0.06));
    assert!(matches!(r.decision, Decision::Rollback(_)), "{r:?}");
}

#[test]
fn for_duration_applies_to_pause_if_with_its_own_clock() {
    let policy = error_rate_for_5m(1);
    let mut judge = Judge::new();
    let r = judge.judge(&policy, errors_only(0, 0.03));
    assert_eq!(r.metrics[0].verdict, MetricVerdict::Pending);
    assert_eq!(r.metrics[0].condition, "pause_if > 0.01");
    assert_eq!(
        r.decision,
        Decision::Hold("error_rate 0.03 > 0.01 (failing for 0s of 5m)".to_string())
    );
    // 6% at t=120 starts the fail_if clock; the pause_if clock keeps running.
    let r = judge.judge(&policy, errors_only(120, 0.06));
    assert!(
        reason(&r.decision).contains("failing for 0s of 5m"),
        "{r:?}"
    );
    // Back to 3%: fail_if passes (its clock resets), pause_if has held for 5m.
    let r = judge.judge(&policy, errors_only(300, 0.03));
    assert_eq!(
        r.decision,
        Decision::Pause(
            "pause_if met in 1 interval in a row: error_rate 0.03 > 0.01 (failing for 5m)"
                .to_string()
        )
    );
}

#[test]
fn time_going_backwards_restarts_the_clock() {
    let policy = error_rate_for_5m(1);
    let mut judge = Judge::new();
    judge.judge(&policy, errors_only(1000, 0.06));
    let r = judge.judge(&policy, errors_only(10, 0.06));
    assert!(
        reason(&r.decision).contains("failing for 0s of 5m"),
        "{r:?}"
    );
    let r = judge.judge(&policy, errors_only(310, 0.06));
    assert!(matches!(r.decision, Decision::Rollback(_)), "{r:?}");
}

#[test]
fn promotion_needs_a_passing_last_interval_in_the_current_step() {
    let policy = runbook(2, 3);
    let mut judge = Judge::new();
    assert!(!judge.can_promote());
    judge.judge(&policy, healthy(60));
    assert!(judge.can_promote());
    judge.judge(&policy, erroring(120));
    assert!(!judge.can_promote(), "the last interval failed");
    judge.judge(&policy, healthy(180));
    assert!(judge.can_promote());

    judge.start_step();
    assert_eq!(judge.step(), 1);
    assert!(!judge.can_promote(), "nothing passed yet at the new weight");
    assert_eq!(judge.history().len(), 3, "history is kept");
    assert_eq!(judge.step_history().len(), 0);
    let r = judge.judge(&policy, healthy(240));
    assert_eq!(r.step, 1);
    assert!(judge.can_promote());
    assert_eq!(judge.passed_intervals(), 3);
    assert_eq!(judge.step_passed_intervals(), 1);
    assert_eq!(judge.last(), Some(&r));
}

#[test]
fn start_step_resets_the_streaks() {
    let policy = runbook(2, 2);
    let mut judge = Judge::new();
    judge.judge(&policy, erroring(60));
    assert_eq!(judge.consecutive_failures(), 1);
    judge.start_step();
    assert_eq!(judge.consecutive_failures(), 0);
    let r = judge.judge(&policy, erroring(120));
    assert!(
        reason(&r.decision).starts_with("failed interval 1 of 2"),
        "{r:?}"
    );
    judge.judge(&policy, unjudgeable(180));
    judge.start_step();
    let r = judge.judge(&policy, unjudgeable(240));
    assert!(matches!(r.decision, Decision::Inconclusive(_)), "{r:?}");
}

#[test]
fn no_promotion_after_a_rollback() {
    let policy = runbook(1, 3);
    let mut judge = Judge::new();
    judge.judge(&policy, erroring(60));
    judge.start_step();
    let r = judge.judge(&policy, healthy(120));
    assert_eq!(r.decision, Decision::Continue);
    assert!(!judge.can_promote());
}

/// The runbooks' decision matrix: roll back above 5% errors or p99 > 3x stable,
/// pause between 1% and 5% errors.
#[test]
fn default_policy_matches_the_decision_matrix() {
    let policy = runbook(2, 3);
    assert!(policy.validate().is_ok());
    let names: Vec<_> = policy.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, [ERROR_RATE, LATENCY_P99]);
    assert_eq!(policy.metrics[0].fail_if.to_string(), "> 0.05");
    assert_eq!(policy.metrics[0].pause_if.unwrap().to_string(), "> 0.01");
    assert_eq!(policy.metrics[1].fail_if.to_string(), "> 3x stable");
    assert_eq!(policy.metrics[1].pause_if, None);

    // 6% errors: roll back after failure_limit (2) intervals.
    let mut judge = Judge::new();
    assert!(matches!(
        judge.judge(&policy, erroring(60)).decision,
        Decision::Hold(_)
    ));
    let r = judge.judge(&policy, erroring(120));
    assert!(
        matches!(&r.decision, Decision::Rollback(why) if why.contains("error_rate 0.06 > 0.05"))
    );

    // 3% errors: pause (after failure_limit intervals).
    let mut judge = Judge::new();
    let r = judge.judge(&policy, measured(60, 0.03, (0.3, 0.3)));
    assert!(matches!(r.decision, Decision::Hold(_)), "{r:?}");
    let r = judge.judge(&policy, measured(120, 0.03, (0.3, 0.3)));
    assert!(matches!(r.decision, Decision::Pause(_)), "{r:?}");

    // 0.5% errors: continue.
    let mut judge = Judge::new();
    let r = judge.judge(&policy, measured(60, 0.005, (0.3, 0.3)));
    assert_eq!(r.decision, Decision::Continue);
    assert!(judge.can_promote());

    // Exactly 1% and 5% are on the lenient side of each boundary.
    let mut judge = Judge::new();
    assert_eq!(
        judge
            .judge(&policy, measured(60, 0.01, (0.3, 0.3)))
            .decision,
        Decision::Continue
    );
    assert!(matches!(
        judge
            .judge(&policy, measured(120, 0.05, (0.3, 0.3)))
            .decision,
        Decision::Hold(_)
    ));

    // p99 at 3.5x stable fails; 2.9x passes.
    let mut judge = Judge::new();
    let r = judge.judge(&policy, measured(60, 0.0, (1.05, 0.3)));
    assert_eq!(verdict_of(&r, LATENCY_P99), MetricVerdict::Fail);
    assert_eq!(
        r.metrics[1].reason,
        "latency_p99 1.05 > 3x stable (0.3 -> 0.9)"
    );
    let r = judge.judge(&policy, measured(120, 0.0, (1.05, 0.3)));
    assert!(matches!(r.decision, Decision::Rollback(_)));
    let mut judge = Judge::new();
    let r = judge.judge(&policy, measured(60, 0.0, (0.87, 0.3)));
    assert_eq!(r.decision, Decision::Continue);
}

/// A judge persisted mid-analysis and restored continues exactly like the original.
#[test]
fn serde_round_trip_mid_analysis_continues_identically() {
    let policy = AnalysisPolicy {
        failure_limit: 3,
        min_requests: MIN_REQUESTS,
        inconclusive_limit: 4,
        max_intervals: AnalysisPolicy::DEFAULT_MAX_INTERVALS,
        metrics: vec![
            MetricPolicy::new(ERROR_RATE, cond("> 0.05"))
                .with_pause_if(cond("> 0.01"))
                .with_for_duration(secs(120)),
            MetricPolicy::new(LATENCY_P99, cond("> 3x stable")),
        ],
    };
    let inputs: Vec<IntervalInput> = vec![
        healthy(60),
        erroring(120),
        erroring(180),
        source_error(240),
        erroring(300), // failing for 3m: counts (failure 1)
        // --- persisted here ---
        erroring(360),
        source_error(420),
        erroring(480),
        healthy(540),
    ];
    let (before, after) = inputs.split_at(5);
    let mut original = Judge::new();
    for input in before {
        original.judge(&policy, input.clone());
    }
    assert_eq!(original.consecutive_failures(), 1);
    let json = serde_json::to_string(&original).unwrap();
    let mut restored: Judge = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, original);

    for input in after {
        let a = original.judge(&policy, input.clone());
        let b = restored.judge(&policy, input.clone());
        assert_eq!(a, b);
    }
    assert_eq!(restored, original);
    // And the continuation did use the restored state: the 3rd failure rolled back.
    let decisions: Vec<_> = original
        .history()
        .iter()
        .map(|r| r.decision.kind())
        .collect();
    assert_eq!(
        decisions,
        [
            "continue",
            "hold",
            "hold",
            "inconclusive",
            "hold",
            "hold",
            "inconclusive",
            "rollback",
            "continue"
        ]
    );
    // The policy itself round-trips too (conditions as text).
    let policy_json = serde_json::to_string(&policy).unwrap();
    assert!(
        policy_json.contains("\"fail_if\":\"> 3x stable\""),
        "{policy_json}"
    );
    let back: AnalysisPolicy = serde_json::from_str(&policy_json).unwrap();
    assert_eq!(back, policy);
}

#[test]
fn statistical_metric_in_the_judge() {
    let policy = AnalysisPolicy {
        failure_limit: 1,
        min_requests: 10,
        inconclusive_limit: 3,
        max_intervals: AnalysisPolicy::DEFAULT_MAX_INTERVALS,
        metrics: vec![MetricPolicy::new(
            "latency",
            cond("> stable (mann-whitney)"),
        )],
    };
    let spread = |n: usize, lo: f64, hi: f64| -> Vec<f64> {
        (0..n)
            .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
            .collect()
    };
    let input = |at: u64, canary: Vec<f64>, stable: Vec<f64>| IntervalInput {
        at: secs(at),
        canary_requests: canary.len() as u64,
        metrics: vec![MetricInput::ok(
            "latency",
            MetricWindow::samples(canary, stable),
        )],
    };
    let mut judge = Judge::new();
    let r = judge.judge(
        &policy,
        input(60, spread(15, 0.5, 1.0), spread(200, 0.1, 0.3)),
    );
    assert!(
        reason(&r.decision).contains("only 15 canary and 200 stable samples"),
        "{r:?}"
    );
    let r = judge.judge(
        &policy,
        input(120, spread(60, 0.1, 0.3), spread(200, 0.1, 0.3)),
    );
    assert_eq!(r.decision, Decision::Continue);
    let r = judge.judge(
        &policy,
        input(180, spread(60, 0.5, 1.0), spread(200, 0.1, 0.3)),
    );
    assert!(
        matches!(&r.decision, Decision::Rollback(why) if why.contains("latency mann-whitney: canary greater than stable")),
        "{r:?}"
    );
}

#[test]
fn policy_validation() {
    assert!(runbook(2, 3).validate().is_ok());
    assert!(runbook(0, 3)
        .validate()
        .unwrap_err()
        .contains("failure_limit"));
    assert!(runbook(2, 0)
        .validate()
        .unwrap_err()
        .contains("inconclusive_limit"));
    let mut dup = runbook(2, 3);
    dup.metrics.push(dup.metrics[0].clone());
    assert!(dup.validate().unwrap_err().contains("appears twice"));
    let mut bad = runbook(2, 3);
    bad.metrics.push(
        MetricPolicy::new("latency", cond("> stable (mann-whitney)")).with_statistical(
            StatisticalOptions {
                confidence: 1.5,
                ..StatisticalOptions::default()
            },
        ),
    );
    assert!(bad.validate().unwrap_err().contains("confidence"));
    // `confidence` decides threshold conditions on accumulated evidence too.
    let mut bad = runbook(2, 3);
    bad.metrics[0].statistical.confidence = 1.5;
    assert!(bad.validate().unwrap_err().contains("confidence"));
    assert!(runbook(2, 3)
        .with_max_intervals(0)
        .validate()
        .unwrap_err()
        .contains("max_intervals"));
}

/// Random hostile intervals (NaN, infinities, missing values, source errors, too
/// few requests, time going backwards): the judge never panics, only ever says
/// Continue when every metric passed, and its state always round-trips.
#[test]
fn hostile_inputs_never_panic_and_never_continue_without_data() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let policy = AnalysisPolicy {
        failure_limit: 3,
        min_requests: 20,
        inconclusive_limit: 4,
        max_intervals: AnalysisPolicy::DEFAULT_MAX_INTERVALS,
        metrics: vec![
            MetricPolicy::new(ERROR_RATE, cond("> 0.05"))
                .with_pause_if(cond("> 0.01"))
                .with_for_duration(secs(30)),
            MetricPolicy::new(LATENCY_P99, cond("> 3x stable")),
            MetricPolicy::new("offset", cond("< stable - 0.1")),
            MetricPolicy::new("latency", cond("> stable (mann-whitney)")),
        ],
    };
    let mut rng = StdRng::seed_from_u64(5);
    let specials = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::MAX,
        1e-300,
    ];
    let value = |rng: &mut StdRng| -> Option<f64> {
        match rng.gen_range(0..6) {
            0 => None,
            1 => Some(specials[rng.gen_range(0..specials.len())]),
            _ => Some(rng.gen_range(0.0..0.2)),
        }
    };
    let mut judge = Judge::new();
    let mut at = 0u64;
    for i in 0..2000 {
        at = if rng.gen_bool(0.05) {
            at.saturating_sub(50)
        } else {
            at + 10
        };
        let mut metrics = Vec::new();
        for name in [ERROR_RATE, LATENCY_P99, "offset", "latency"] {
            if rng.gen_bool(0.05) {
                continue;
            }
            if rng.gen_bool(0.1) {
                metrics.push(MetricInput::error(name, "boom"));
                continue;
            }
            let n = rng.gen_range(0..40);
            let samples = |rng: &mut StdRng| -> Vec<f64> {
                (0..n)
                    .map(|_| {
                        if rng.gen_bool(0.05) {
                            f64::NAN
                        } else {
                            rng.gen_range(0.0..1.0)
                        }
                    })
                    .collect()
            };
            let window = MetricWindow {
                canary: value(&mut rng),
                stable: value(&mut rng),
                canary_samples: samples(&mut rng),
                stable_samples: samples(&mut rng),
                ..MetricWindow::default()
            };
            metrics.push(MetricInput::ok(name, window));
        }
        let input = IntervalInput {
            at: secs(at),
            canary_requests: rng.gen_range(0..60),
            metrics,
        };
        let r = judge.judge(&policy, input);
        let all_pass = r.metrics.iter().all(|m| m.verdict == MetricVerdict::Pass);
        assert_eq!(r.decision == Decision::Continue, all_pass, "{r:#?}");
        if r.step_canary_requests < 20 || r.canary_requests == 0 {
            assert!(matches!(
                r.decision,
                Decision::Inconclusive(_) | Decision::Pause(_)
            ));
        }
        for m in &r.metrics {
            assert!(!m.reason.is_empty() && !m.reason.contains('\n'));
            assert!(m.canary.is_none_or(f64::is_finite));
            assert!(m.stable.is_none_or(f64::is_finite));
        }
        if i % 200 == 0 {
            let back: Judge =
                serde_json::from_str(&serde_json::to_string(&judge).unwrap()).unwrap();
            assert_eq!(back.history().len(), judge.history().len());
            assert_eq!(back.consecutive_failures(), judge.consecutive_failures());
        }
    }
}
