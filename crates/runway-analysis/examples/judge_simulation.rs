//! Prints the tables of docs/judge-simulation.md: the judge fed thousands of simulated
//! canary steps (see `tests/sim/mod.rs` for the model).
//!
//! `cargo run --release -p runway-analysis --example judge_simulation [STEPS]`

#[path = "../tests/sim/mod.rs"]
mod sim;

use sim::{Canary, Policy, Setting, Tail, ERRORS_20, ERRORS_8, IDENTICAL, SLOW_4X};

fn main() {
    let steps: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    println!("steps per row: {steps}\n");
    let canaries = [IDENTICAL, ERRORS_8, SLOW_4X, ERRORS_20];

    println!("## At the targets' setting: 100 canary requests per interval, 0.5% base errors\n");
    header();
    for policy in [sim::default_policy(), sim::readme_policy()] {
        for tail in [Tail::Light, Tail::Heavy] {
            for canary in canaries {
                row(&policy, Setting::new(100, 0.005, tail, canary), steps);
            }
        }
    }

    println!("\n## The error budget at the line, and a canary that breaks during its pause\n");
    header();
    let at_line = |name, error_rate| Canary {
        name,
        error_rate: Some(error_rate),
        latency_factor: 1.0,
    };
    row(
        &sim::error_rate_only("> 0.05"),
        Setting::new(
            100,
            0.005,
            Tail::Light,
            at_line("errors 5%, at `> 0.05`", 0.05),
        ),
        steps,
    );
    row(
        &sim::error_rate_only("> stable + 0.01"),
        Setting::new(
            100,
            0.005,
            Tail::Light,
            at_line("errors 1.5%, at `> stable + 0.01`", 0.015),
        ),
        steps,
    );
    for policy in [sim::default_policy(), sim::readme_policy()] {
        let mut setting = Setting::new(
            100,
            0.005,
            Tail::Light,
            at_line(
                "identical, 20% errors from interval 20, pause 30 intervals",
                0.005,
            ),
        );
        setting.pause_intervals = 30;
        setting.breaks = Some((20, 0.2));
        row(&policy, setting, steps / 4);
    }

    println!("\n## The default policy across traffic and base error rates\n");
    header();
    let policy = sim::default_policy();
    for n in [20, 100, 1000] {
        for base in [0.001, 0.005, 0.01] {
            for tail in [Tail::Light, Tail::Heavy] {
                for canary in [IDENTICAL, ERRORS_8, SLOW_4X, ERRORS_20] {
                    row(&policy, Setting::new(n, base, tail, canary), steps / 4);
                }
            }
        }
    }
}

fn header() {
    println!(
        "| policy | canary req/interval | base errors | tail | canary | steps | promoted | \
         rolled back | rolled back by interval 2 (failure_limit) | paused | median intervals | \
         most intervals to a rollback | fewest requests behind a promotion |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
}

fn row(policy: &Policy, setting: Setting, steps: u32) {
    let (n, base, tail, canary) = (
        setting.canary_requests,
        setting.base_error_rate,
        setting.tail,
        setting.canary,
    );
    let t = sim::run(policy, setting, steps, 0x5eed ^ n ^ (base * 1e6) as u64);
    let pct = |c: u32| format!("{:.1}%", 100.0 * t.share(c));
    let opt = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
    let early = t
        .rollback_intervals
        .iter()
        .filter(|&&i| i <= policy.policy.failure_limit)
        .count() as u32;
    println!(
        "| {} | {n} | {}% | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        policy.name,
        base * 100.0,
        tail.name(),
        canary.name,
        t.steps,
        pct(t.promoted),
        pct(t.rolled_back),
        pct(early),
        pct(t.paused),
        opt(t.median_intervals()),
        opt(t.max_rollback_intervals()),
        t.fewest_promoted_requests
            .map_or("-".to_string(), |v| v.to_string()),
    );
}
