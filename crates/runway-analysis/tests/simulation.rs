//! The judge against the targets, on simulated canary steps (the model is in
//! `sim/mod.rs`; `cargo run --release -p runway-analysis --example judge_simulation`
//! prints the full tables of docs/judge-simulation.md).
//!
//! The setting of the targets: 100 canary requests per interval and a 0.5% base error
//! rate, for the default policy and for the README's example, with light and heavy
//! latency tails. Seeds are fixed, so every run sees the same steps.

mod sim;

use sim::{Canary, Policy, Setting, Tail, Tally, ERRORS_20, ERRORS_8, IDENTICAL, SLOW_4X};

const STEPS: u32 = 300;

fn simulate(policy: &Policy, tail: Tail, canary: Canary, canary_requests: u64) -> Tally {
    sim::run(
        policy,
        Setting::new(canary_requests, 0.005, tail, canary),
        STEPS,
        42,
    )
}

fn policies() -> [Policy; 2] {
    [sim::default_policy(), sim::readme_policy()]
}

#[test]
fn a_release_identical_to_stable_is_promoted_in_99_percent_of_steps() {
    for policy in policies() {
        for tail in [Tail::Light, Tail::Heavy] {
            let t = simulate(&policy, tail, IDENTICAL, 100);
            assert!(
                t.share(t.promoted) >= 0.99,
                "{} / {} tail: {t:?}",
                policy.name,
                tail.name()
            );
        }
    }
}

#[test]
fn a_canary_past_the_immediate_rollback_line_is_stopped_in_99_percent_of_steps() {
    for policy in policies() {
        for tail in [Tail::Light, Tail::Heavy] {
            for canary in [ERRORS_8, SLOW_4X] {
                let t = simulate(&policy, tail, canary, 100);
                assert!(
                    t.share(t.stopped()) >= 0.99 && t.promoted == 0,
                    "{} / {} tail / {}: {t:?}",
                    policy.name,
                    tail.name(),
                    canary.name
                );
            }
        }
    }
}

#[test]
fn a_canary_that_fails_outright_is_rolled_back_within_failure_limit_intervals() {
    for policy in policies() {
        let failure_limit = policy.policy.failure_limit;
        for tail in [Tail::Light, Tail::Heavy] {
            let t = simulate(&policy, tail, ERRORS_20, 100);
            let within = t
                .rollback_intervals
                .iter()
                .filter(|&&i| i <= failure_limit)
                .count() as u32;
            assert_eq!(t.rolled_back, t.steps, "{t:?}");
            assert!(
                t.share(within) >= 0.99,
                "{} / {} tail: {within} of {} within {failure_limit}: {t:?}",
                policy.name,
                tail.name(),
                t.steps
            );
        }
    }
}

#[test]
fn a_canary_without_enough_data_is_never_promoted() {
    // 5 canary requests per interval: 300 in a whole step of 60 intervals, too few to
    // bound a p99 (597 at the first look of a relative condition), so nothing is ever
    // promoted; it pauses.
    for policy in policies() {
        let t = simulate(&policy, Tail::Light, IDENTICAL, 5);
        assert_eq!(t.promoted, 0, "{t:?}");
        assert_eq!(t.paused, t.steps, "{t:?}");
    }
    // And where promotions happen, they rest on at least that many requests.
    let t = simulate(&sim::default_policy(), Tail::Light, IDENTICAL, 100);
    assert!(
        t.fewest_promoted_requests.is_some_and(|n| n >= 597),
        "{t:?}"
    );
}

/// A canary exactly at the line is promoted in at most 1 - confidence (1%) of steps,
/// against a fixed line and against stable: the error budget holds.
#[test]
fn a_canary_at_the_line_is_promoted_within_the_error_budget() {
    let at_line = |error_rate| Canary {
        name: "at the line",
        error_rate: Some(error_rate),
        latency_factor: 1.0,
    };
    for (fail_if, canary_rate) in [("> 0.05", 0.05), ("> stable + 0.01", 0.015)] {
        let policy = sim::error_rate_only(fail_if);
        let t = sim::run(
            &policy,
            Setting::new(100, 0.005, Tail::Light, at_line(canary_rate)),
            1000,
            7,
        );
        assert!(t.share(t.promoted) <= 0.01, "{fail_if}: {t:?}");
    }
}

/// A canary that breaks after it has passed, during its step's pause, is not promoted
/// on the earlier pass: it is stopped.
#[test]
fn a_canary_that_breaks_during_its_pause_is_stopped_not_promoted() {
    for policy in policies() {
        let mut setting = Setting::new(100, 0.005, Tail::Light, IDENTICAL);
        setting.pause_intervals = 30;
        setting.breaks = Some((20, 0.2));
        let t = sim::run(&policy, setting, 100, 11);
        // Stopped: rolled back, or paused by pause_if first (the analysis goes on while
        // paused, and the rollback follows), within a few looks of the break.
        assert_eq!(t.promoted, 0, "{}: {t:?}", policy.name);
        assert_eq!(t.stopped(), t.steps, "{}: {t:?}", policy.name);
        assert!(
            t.intervals.iter().all(|&i| i <= 29),
            "{}: {t:?}",
            policy.name
        );
    }
}
