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
    let setting = Setting {
        canary_requests,
        base_error_rate: 0.005,
        tail,
        canary,
    };
    sim::run(policy, setting, STEPS, 42)
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
    // bound a p99 (459 is the least at 99%), so nothing is ever promoted; it pauses.
    for policy in policies() {
        let t = simulate(&policy, Tail::Light, IDENTICAL, 5);
        assert_eq!(t.promoted, 0, "{t:?}");
        assert_eq!(t.paused, t.steps, "{t:?}");
    }
    // And where promotions happen, they rest on at least that many requests.
    let t = simulate(&sim::default_policy(), Tail::Light, IDENTICAL, 100);
    assert!(
        t.fewest_promoted_requests.is_some_and(|n| n >= 459),
        "{t:?}"
    );
}
