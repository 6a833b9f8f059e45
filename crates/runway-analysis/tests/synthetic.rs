//! Realistic synthetic checks: lognormal request latencies, as a web service's look,
//! judged the way the engine will judge them (p99 from the samples, Mann-Whitney on
//! the samples themselves).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runway_analysis::stats::quantile;
use runway_analysis::{
    AnalysisPolicy, Condition, Decision, IntervalInput, Judge, MetricInput, MetricPolicy,
    MetricVerdict, MetricWindow, StatisticalOptions, Verdict, ERROR_RATE, LATENCY_P99,
};

/// Stable traffic per interval, and the canary's share at a 10%..20% weight.
const STABLE_REQUESTS: usize = 2000;
const CANARY_REQUESTS: usize = 400;
/// Median latency 120 ms, sigma 0.5 (p99 about 3.2x the median).
const MEDIAN_S: f64 = 0.120;
const SIGMA: f64 = 0.5;

/// `n` lognormal latencies in seconds (Box-Muller on a seeded RNG), rounded to whole
/// microseconds as the proxy records them.
fn latencies(rng: &mut StdRng, n: usize, median: f64, sigma: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
            let u2: f64 = rng.gen();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (median * (sigma * z).exp() * 1e6).round() / 1e6
        })
        .collect()
}

/// The policy under test: the runbooks' error-rate rule, a relative p99 rule and
/// the statistical rule on every request's latency.
fn policy() -> AnalysisPolicy {
    let cond = |t: &str| Condition::parse(t).unwrap();
    AnalysisPolicy {
        failure_limit: 2,
        min_requests: 100,
        inconclusive_limit: 3,
        max_intervals: AnalysisPolicy::DEFAULT_MAX_INTERVALS,
        metrics: vec![
            MetricPolicy::new(ERROR_RATE, cond("> 0.05")).with_pause_if(cond("> 0.01")),
            MetricPolicy::new(LATENCY_P99, cond("> 2x stable")),
            MetricPolicy::new("latency", cond("> stable (mann-whitney)")),
        ],
    }
}

/// One interval as the engine would build it from the proxy's samples, with no
/// errors on either side.
fn interval(at: u64, canary: Vec<f64>, stable: Vec<f64>) -> IntervalInput {
    let p99 = |xs: &[f64]| quantile(xs, 0.99);
    IntervalInput {
        at: Duration::from_secs(at),
        canary_requests: canary.len() as u64,
        metrics: vec![
            MetricInput::ok(ERROR_RATE, MetricWindow::values(Some(0.0), Some(0.0))),
            MetricInput::ok(
                LATENCY_P99,
                MetricWindow::values(p99(&canary), p99(&stable)),
            ),
            MetricInput::ok(
                "latency",
                MetricWindow {
                    canary: quantile(&canary, 0.5),
                    stable: quantile(&stable, 0.5),
                    canary_samples: canary,
                    stable_samples: stable,
                    ..MetricWindow::default()
                },
            ),
        ],
    }
}

#[test]
fn a_3x_slower_canary_without_errors_fails_on_p99_and_mann_whitney() {
    let mut rng = StdRng::seed_from_u64(7);
    let policy = policy();
    let mut judge = Judge::new();
    for at in [10, 20] {
        let canary = latencies(&mut rng, CANARY_REQUESTS, 3.0 * MEDIAN_S, SIGMA);
        let stable = latencies(&mut rng, STABLE_REQUESTS, MEDIAN_S, SIGMA);
        let r = judge.judge(&policy, interval(at, canary, stable));
        let verdicts: Vec<_> = r
            .metrics
            .iter()
            .map(|m| (m.name.as_str(), m.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                (ERROR_RATE, MetricVerdict::Pass),
                (LATENCY_P99, MetricVerdict::Fail),
                ("latency", MetricVerdict::Fail),
            ],
            "{r:#?}"
        );
        let statistical = &r.metrics[2].reason;
        assert!(
            statistical.starts_with("latency mann-whitney: canary greater than stable, p="),
            "{statistical}"
        );
    }
    let last = judge.last().unwrap();
    assert!(
        matches!(&last.decision, Decision::Rollback(why)
            if why.contains("latency_p99") && why.contains("mann-whitney")),
        "{:?}",
        last.decision
    );
}

#[test]
fn identical_distributions_pass_the_statistical_condition_in_at_least_95_of_100_trials() {
    let condition = Condition::parse("> stable (mann-whitney)").unwrap();
    let p99_condition = Condition::parse("> 2x stable").unwrap();
    let opts = StatisticalOptions::default();
    // Without the effect-size floor the test alone decides: its false-positive rate
    // should be close to 1 - confidence (5%), which checks the p-values' calibration.
    let p_only = StatisticalOptions {
        min_effect: 0.0,
        ..StatisticalOptions::default()
    };
    let (mut statistical_passes, mut p99_passes, mut p_only_passes) = (0, 0, 0);
    for seed in 0..100 {
        let mut rng = StdRng::seed_from_u64(1000 + seed);
        let canary = latencies(&mut rng, CANARY_REQUESTS, MEDIAN_S, SIGMA);
        let stable = latencies(&mut rng, STABLE_REQUESTS, MEDIAN_S, SIGMA);
        let window = MetricWindow {
            canary: quantile(&canary, 0.99),
            stable: quantile(&stable, 0.99),
            canary_samples: canary,
            stable_samples: stable,
            ..MetricWindow::default()
        };
        let e = condition.evaluate("latency", &window, &opts);
        assert_ne!(e.verdict, Verdict::Inconclusive, "{}", e.reason);
        statistical_passes += usize::from(e.verdict == Verdict::Pass);
        p_only_passes +=
            usize::from(condition.evaluate("latency", &window, &p_only).verdict == Verdict::Pass);
        p99_passes +=
            usize::from(p99_condition.evaluate("p99", &window, &opts).verdict == Verdict::Pass);
    }
    eprintln!(
        "identical distributions: statistical {statistical_passes}/100, p99 {p99_passes}/100, \
         p-value only {p_only_passes}/100"
    );
    assert!(
        statistical_passes >= 95,
        "only {statistical_passes} of 100 passed"
    );
    assert!(p99_passes >= 95, "only {p99_passes} of 100 passed");
    assert!(
        (88..=100).contains(&p_only_passes),
        "{p_only_passes} of 100 passed on the p-value alone, expected about 95"
    );
}

/// Thousands of requests make any difference "significant"; the minimum effect
/// size keeps a 10%-slower canary (Cliff's delta about 0.1) from failing while a
/// 1.5x-slower one (about 0.43) fails.
#[test]
fn effect_size_separates_negligible_from_material_slowdowns() {
    let condition = Condition::parse("> stable (mann-whitney)").unwrap();
    let opts = StatisticalOptions::default();
    let mut rng = StdRng::seed_from_u64(42);
    let stable = latencies(&mut rng, STABLE_REQUESTS, MEDIAN_S, SIGMA);

    let slightly = latencies(&mut rng, CANARY_REQUESTS, 1.1 * MEDIAN_S, SIGMA);
    let e = condition.evaluate(
        "latency",
        &MetricWindow::samples(slightly, stable.clone()),
        &opts,
    );
    assert_eq!(e.verdict, Verdict::Pass, "{}", e.reason);

    let materially = latencies(&mut rng, CANARY_REQUESTS, 1.5 * MEDIAN_S, SIGMA);
    let e = condition.evaluate("latency", &MetricWindow::samples(materially, stable), &opts);
    assert_eq!(e.verdict, Verdict::Fail, "{}", e.reason);
}

/// A healthy canary at realistic volumes is promoted after passing intervals.
#[test]
fn a_healthy_canary_is_promotable() {
    let mut rng = StdRng::seed_from_u64(99);
    let policy = policy();
    let mut judge = Judge::new();
    for at in [10, 20, 30] {
        let canary = latencies(&mut rng, CANARY_REQUESTS, MEDIAN_S, SIGMA);
        let stable = latencies(&mut rng, STABLE_REQUESTS, MEDIAN_S, SIGMA);
        let r = judge.judge(&policy, interval(at, canary, stable));
        assert_eq!(r.decision, Decision::Continue, "{r:#?}");
    }
    assert!(judge.can_promote());
}
