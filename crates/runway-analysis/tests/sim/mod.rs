//! A simulation of canary steps, fed to the pure judge exactly as the engine feeds it:
//! per interval, both releases' error counts and per-request latencies.
//!
//! Shared by the `simulation` test (which holds the judge to the targets) and the
//! `judge_simulation` example (which prints the tables of docs/judge-simulation.md).
//!
//! The model of one step: the canary gets `canary_requests` requests per interval and
//! the stable release nine times as many (a canary at 10%). Each request fails with the
//! release's error rate; latencies are log-normal with a median of 50 ms and a light
//! (sigma 0.4: p99 = 2.5x the median) or heavy (sigma 1.0: p99 = 10x) tail. The step runs
//! until the judge decides: the first interval that passes promotes (the most eager
//! engine: a step without a pause), a rollback or a pause stops the canary.

#![allow(dead_code)]

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runway_analysis::{
    AnalysisPolicy, Condition, Counts, Decision, IntervalInput, Judge, MetricInput, MetricPolicy,
    MetricWindow, ERROR_RATE, LATENCY_P99,
};

/// Median latency of both releases, seconds.
pub const MEDIAN: f64 = 0.050;
/// The stable release's traffic, as a multiple of the canary's (canary at 10%).
pub const STABLE_FACTOR: u64 = 9;
/// Latency samples per release and interval at most (the proxy keeps 20,000; fewer here
/// keeps the simulation fast, and the stable side still has far more than the canary).
pub const MAX_STABLE_SAMPLES: u64 = 4_000;
/// Intervals after which a step that has not ended is cut off (the default
/// `max_intervals` pauses long before).
pub const MAX_STEP_INTERVALS: u32 = 200;

/// A latency distribution's tail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tail {
    /// sigma 0.4: p99 about 2.5x the median.
    Light,
    /// sigma 1.0: p99 about 10x the median.
    Heavy,
}

impl Tail {
    pub fn sigma(self) -> f64 {
        match self {
            Tail::Light => 0.4,
            Tail::Heavy => 1.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tail::Light => "light",
            Tail::Heavy => "heavy",
        }
    }
}

/// What the canary is like, against a stable release with `base_error_rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Canary {
    pub name: &'static str,
    /// The canary's error rate; `None`: the same as stable.
    pub error_rate: Option<f64>,
    /// Every canary latency multiplied by this (so its p99 is this times stable's).
    pub latency_factor: f64,
}

pub const IDENTICAL: Canary = Canary {
    name: "identical to stable",
    error_rate: None,
    latency_factor: 1.0,
};
pub const ERRORS_8: Canary = Canary {
    name: "8% errors",
    error_rate: Some(0.08),
    latency_factor: 1.0,
};
pub const SLOW_4X: Canary = Canary {
    name: "p99 4x stable",
    error_rate: None,
    latency_factor: 4.0,
};
pub const ERRORS_20: Canary = Canary {
    name: "20% errors",
    error_rate: Some(0.20),
    latency_factor: 1.0,
};

/// One simulated setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub canary_requests: u64,
    pub base_error_rate: f64,
    pub tail: Tail,
    pub canary: Canary,
    /// The step's pause, in intervals: it is promoted at the first passing interval at or
    /// after this one (0: the first passing interval).
    pub pause_intervals: u32,
    /// From this interval on, the canary fails this share of its requests (it breaks
    /// mid-step).
    pub breaks: Option<(u32, f64)>,
}

impl Setting {
    /// A canary that behaves the same through a step without a pause.
    pub fn new(canary_requests: u64, base_error_rate: f64, tail: Tail, canary: Canary) -> Self {
        Setting {
            canary_requests,
            base_error_rate,
            tail,
            canary,
            pause_intervals: 0,
            breaks: None,
        }
    }
}

/// How one step ended, and after how many intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum End {
    Promoted {
        intervals: u32,
        canary_requests: u64,
    },
    RolledBack {
        intervals: u32,
    },
    Paused {
        intervals: u32,
    },
    CutOff,
}

/// The outcome of many steps of one setting.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub steps: u32,
    pub promoted: u32,
    pub rolled_back: u32,
    pub paused: u32,
    pub cut_off: u32,
    /// Intervals to the end of each step that ended.
    pub intervals: Vec<u32>,
    /// Intervals to each rollback.
    pub rollback_intervals: Vec<u32>,
    /// The fewest canary requests a promotion rested on.
    pub fewest_promoted_requests: Option<u64>,
}

impl Tally {
    pub fn share(&self, count: u32) -> f64 {
        f64::from(count) / f64::from(self.steps.max(1))
    }

    pub fn stopped(&self) -> u32 {
        self.rolled_back + self.paused
    }

    pub fn median_intervals(&self) -> Option<u32> {
        percentile(&self.intervals, 0.5)
    }

    pub fn max_rollback_intervals(&self) -> Option<u32> {
        self.rollback_intervals.iter().copied().max()
    }

    fn add(&mut self, end: End) {
        self.steps += 1;
        match end {
            End::Promoted {
                intervals,
                canary_requests,
            } => {
                self.promoted += 1;
                self.intervals.push(intervals);
                self.fewest_promoted_requests = Some(
                    self.fewest_promoted_requests
                        .map_or(canary_requests, |f| f.min(canary_requests)),
                );
            }
            End::RolledBack { intervals } => {
                self.rolled_back += 1;
                self.intervals.push(intervals);
                self.rollback_intervals.push(intervals);
            }
            End::Paused { intervals } => {
                self.paused += 1;
                self.intervals.push(intervals);
            }
            End::CutOff => self.cut_off += 1,
        }
    }
}

fn percentile(values: &[u32], q: f64) -> Option<u32> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

/// A policy under test, and how each of its metrics is measured.
pub struct Policy {
    pub name: &'static str,
    pub policy: AnalysisPolicy,
    /// Per policy metric: what the engine would hand the judge.
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// The proxy's error counts.
    ErrorRate,
    /// The proxy's latency samples, read as their `q`-quantile.
    Quantile(f64),
    /// The proxy's latency samples as they are (Mann-Whitney).
    Latency,
}

/// `runway.toml` without `[[analysis.metrics]]`: the runbooks' matrix.
pub fn default_policy() -> Policy {
    Policy {
        name: "default (no [[analysis.metrics]])",
        policy: AnalysisPolicy::default_for_runbooks(2, 50, 3),
        sources: vec![Source::ErrorRate, Source::Quantile(0.99)],
    }
}

/// The README's canary example (its Prometheus metric left out: no Prometheus here;
/// its `for = "5m"` left out: it only delays every verdict by five minutes).
pub fn readme_policy() -> Policy {
    let cond = |t: &str| Condition::parse(t).expect("valid condition");
    Policy {
        name: "README example",
        policy: AnalysisPolicy {
            failure_limit: 2,
            min_requests: 50,
            inconclusive_limit: 3,
            max_intervals: AnalysisPolicy::DEFAULT_MAX_INTERVALS,
            metrics: vec![
                MetricPolicy::new("error-rate", cond("> 0.05")).with_pause_if(cond("> 0.01")),
                MetricPolicy::new("p99", cond("> 2x stable")),
                MetricPolicy::new("latency-shift", cond("> stable (mann-whitney)")),
            ],
        },
        sources: vec![Source::ErrorRate, Source::Quantile(0.99), Source::Latency],
    }
}

/// Simulates `steps` steps of `setting` under `policy` from `seed`.
pub fn run(policy: &Policy, setting: Setting, steps: u32, seed: u64) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    for _ in 0..steps {
        tally.add(step(policy, setting, &mut rng));
    }
    tally
}

fn step(policy: &Policy, setting: Setting, rng: &mut StdRng) -> End {
    let mut judge = Judge::new();
    let n = setting.canary_requests;
    let stable_n = n * STABLE_FACTOR;
    let canary_error_rate = setting.canary.error_rate.unwrap_or(setting.base_error_rate);
    for i in 1..=MAX_STEP_INTERVALS {
        let canary_error_rate = match setting.breaks {
            Some((at, rate)) if i >= at => rate,
            _ => canary_error_rate,
        };
        let canary_errors = binomial(rng, n, canary_error_rate);
        let stable_errors = binomial(rng, stable_n, setting.base_error_rate);
        let sigma = setting.tail.sigma();
        // Latencies cost most of the simulation's time: only for policies that read them.
        let timed = policy
            .sources
            .iter()
            .any(|s| !matches!(s, Source::ErrorRate));
        let (canary_latencies, stable_latencies) = if timed {
            (
                latencies(rng, n, MEDIAN * setting.canary.latency_factor, sigma),
                latencies(rng, stable_n.min(MAX_STABLE_SAMPLES), MEDIAN, sigma),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let metrics = policy
            .policy
            .metrics
            .iter()
            .zip(&policy.sources)
            .map(|(metric, source)| {
                let window = match source {
                    Source::ErrorRate => MetricWindow::rate(
                        Counts::new(canary_errors, n),
                        Counts::new(stable_errors, stable_n),
                    ),
                    Source::Quantile(q) => MetricWindow::quantile(
                        *q,
                        canary_latencies.clone(),
                        stable_latencies.clone(),
                    ),
                    Source::Latency => {
                        MetricWindow::samples(canary_latencies.clone(), stable_latencies.clone())
                    }
                };
                MetricInput::ok(metric.name.clone(), window)
            })
            .collect();
        let result = judge.judge(
            &policy.policy,
            IntervalInput {
                at: Duration::from_secs(10 * u64::from(i)),
                canary_requests: n,
                metrics,
            },
        );
        match result.decision {
            Decision::Continue if i >= setting.pause_intervals => {
                return End::Promoted {
                    intervals: i,
                    canary_requests: result.step_canary_requests,
                }
            }
            Decision::Rollback(_) => return End::RolledBack { intervals: i },
            Decision::Pause(_) => return End::Paused { intervals: i },
            Decision::Continue | Decision::Hold(_) | Decision::Inconclusive(_) => {}
        }
    }
    End::CutOff
}

/// A binomial draw: the sum of `n` Bernoulli draws (n is at most a few thousand here).
fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    (0..n).filter(|_| rng.gen::<f64>() < p).count() as u64
}

/// `n` log-normal latencies (Box-Muller), rounded to whole microseconds as the proxy
/// records them.
fn latencies(rng: &mut StdRng, n: u64, median: f64, sigma: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.gen::<f64>();
            let u2: f64 = rng.gen();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (median * (sigma * z).exp() * 1e6).round() / 1e6
        })
        .collect()
}

/// A policy of one error-rate condition, for the error budget at the line.
pub fn error_rate_only(fail_if: &str) -> Policy {
    Policy {
        name: "error rate only",
        policy: AnalysisPolicy {
            failure_limit: 2,
            min_requests: 50,
            inconclusive_limit: 3,
            max_intervals: AnalysisPolicy::DEFAULT_MAX_INTERVALS,
            metrics: vec![MetricPolicy::new(
                ERROR_RATE,
                Condition::parse(fail_if).expect("valid condition"),
            )],
        },
        sources: vec![Source::ErrorRate],
    }
}

/// The names the default policy uses, re-exported for the tests.
pub const DEFAULT_METRICS: [&str; 2] = [ERROR_RATE, LATENCY_P99];
