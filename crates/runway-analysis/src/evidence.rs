//! Evidence that accumulates over a rollout step, and the verdicts it supports.
//!
//! One analysis interval of a canary at 10% of a service doing 100 requests/s holds
//! about 100 canary requests: two errors among them say little about an error rate,
//! and the largest of them is no p99. So the judge does not throw an interval away
//! once judged: counts add up and latencies go into a [`Sketch`] for the whole step,
//! and every interval asks the same question of all the data the step has seen.
//!
//! Asking again every interval is a sequential test. Looking at the data repeatedly
//! and stopping at the first look that crosses a line makes a fixed-level test wrong
//! far more often than its level says. Each look therefore gets only a share of the
//! error budget ([`crate::bounds::alpha_at_look`]), and the shares add up to the
//! configured `1 - confidence`: however long a step runs, the chance that any of its
//! verdicts is wrong stays within that budget, for each side of each condition.
//!
//! A condition on a rate or a percentile then has three answers:
//! - **fail** (the condition holds): the whole confidence interval is past the line;
//! - **pass**: the whole interval is on the good side;
//! - **inconclusive**: the interval straddles the line: more data is needed. Never a
//!   pass.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bounds::{quantile_ranks, rate_interval, rate_interval_mid_p, Interval};
use crate::condition::{Comparison, Condition, Evaluation, Verdict};
use crate::format::num;

/// Events among trials: errors among requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// How many of the trials were events (e.g. failed requests).
    pub events: u64,
    /// How many trials (e.g. requests) there were.
    pub trials: u64,
}

impl Counts {
    /// `events` of `trials` (events above trials are capped at trials).
    pub fn new(events: u64, trials: u64) -> Self {
        Counts {
            events: events.min(trials),
            trials,
        }
    }

    /// The observed rate; `None` without trials.
    pub fn rate(&self) -> Option<f64> {
        (self.trials > 0).then(|| self.events as f64 / self.trials as f64)
    }

    fn add(&mut self, other: Counts) {
        self.trials = self.trials.saturating_add(other.trials);
        // Counts that did not come through `new` (a deserialized window) are capped here.
        self.events = self
            .events
            .saturating_add(other.events.min(other.trials))
            .min(self.trials);
    }
}

/// Relative width of a [`Sketch`] bucket: values are kept to within 1%.
const GAMMA: f64 = 1.01;
/// Values at or below this (latencies of 0) share the lowest bucket.
const SMALLEST: f64 = 1e-9;

/// A compact record of many positive samples (latencies): counts in logarithmic buckets
/// 1% wide, so that a step's hundred thousand latencies take a few hundred numbers
/// to keep and to persist. Rank queries answer with a bucket edge, so a bound read
/// from it is off by at most 1%, always on the cautious side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sketch {
    /// Samples per bucket index (`floor(ln v / ln GAMMA)`).
    buckets: BTreeMap<i32, u64>,
    count: u64,
}

/// Which edge of a bucket a rank query answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    Low,
    High,
}

impl Sketch {
    /// An empty sketch.
    pub fn new() -> Self {
        Sketch::default()
    }

    /// Adds `values`. NaN (no measurement) is skipped; an infinite latency (a request
    /// that never ended) is kept above every other, so that it can only raise a bound.
    pub fn extend(&mut self, values: &[f64]) {
        for &v in values.iter().filter(|v| !v.is_nan()) {
            *self.buckets.entry(bucket(v)).or_insert(0) += 1;
            self.count += 1;
        }
    }

    /// How many samples it holds.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `rank`-th smallest sample (1-based), as the chosen edge of its bucket.
    fn at_rank(&self, rank: u64, edge: Edge) -> Option<f64> {
        if rank == 0 || rank > self.count {
            return None;
        }
        let mut seen = 0;
        for (&index, &count) in &self.buckets {
            seen += count;
            if seen >= rank {
                if index == INFINITE {
                    return Some(f64::INFINITY);
                }
                let low = GAMMA.powi(index);
                return Some(match edge {
                    Edge::Low => low,
                    Edge::High => low * GAMMA,
                });
            }
        }
        None
    }

    /// The sample `q`-quantile (nearest rank), as its bucket's geometric middle.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        self.at_rank(rank, Edge::Low).map(|v| v * GAMMA.sqrt())
    }

    /// The distribution-free interval of the `q`-quantile at one-sided level `alpha` per
    /// side (see [`quantile_ranks`]); an end is infinite (or 0) when the sample is too
    /// small to bound it.
    pub fn quantile_interval(&self, q: f64, alpha: f64) -> Interval {
        let (low, high) = quantile_ranks(self.count, q, alpha);
        Interval {
            low: low.and_then(|r| self.at_rank(r, Edge::Low)).unwrap_or(0.0),
            high: high
                .and_then(|r| self.at_rank(r, Edge::High))
                .unwrap_or(f64::INFINITY),
        }
    }
}

/// The bucket of infinite values, above every finite one.
const INFINITE: i32 = i32::MAX;

fn bucket(value: f64) -> i32 {
    if value == f64::INFINITY {
        return INFINITE;
    }
    let v = value.max(SMALLEST);
    // |ln v / ln 1.01| stays far inside i32 for finite positive f64.
    (v.ln() / GAMMA.ln()).floor() as i32
}

/// What one metric has accumulated over the current step, for both releases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Evidence {
    /// Looks at which this metric was judged: the look number of its sequential test.
    pub looks: u32,
    /// The canary's counts (rate metrics).
    pub canary: Counts,
    /// The stable release's counts (rate metrics).
    pub stable: Counts,
    /// The canary's samples (percentile metrics).
    pub canary_samples: Sketch,
    /// The stable release's samples (percentile metrics).
    pub stable_samples: Sketch,
}

/// How a metric's evidence is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    /// A rate: events of trials.
    Rate,
    /// The `q`-quantile of the samples.
    Quantile(f64),
}

impl Evidence {
    /// Adds one interval's counts.
    pub fn add_counts(&mut self, canary: Counts, stable: Counts) {
        self.canary.add(canary);
        self.stable.add(stable);
    }

    /// Adds one interval's samples.
    pub fn add_samples(&mut self, canary: &[f64], stable: &[f64]) {
        self.canary_samples.extend(canary);
        self.stable_samples.extend(stable);
    }

    /// The canary's and the stable release's point estimates.
    pub fn estimates(&self, reading: Reading) -> (Option<f64>, Option<f64>) {
        match reading {
            Reading::Rate => (self.canary.rate(), self.stable.rate()),
            Reading::Quantile(q) => (
                self.canary_samples.quantile(q),
                self.stable_samples.quantile(q),
            ),
        }
    }

    /// How many canary observations the evidence rests on.
    pub fn canary_observations(&self, reading: Reading) -> u64 {
        match reading {
            Reading::Rate => self.canary.trials,
            Reading::Quantile(_) => self.canary_samples.count(),
        }
    }

    /// One release's interval at one-sided level `alpha` per side. `against`: for a
    /// verdict against the canary, where rates use the mid-p interval; otherwise the exact
    /// one. `None` without data.
    fn interval(
        &self,
        canary: bool,
        reading: Reading,
        alpha: f64,
        against: bool,
    ) -> Option<Interval> {
        let (counts, samples) = if canary {
            (self.canary, &self.canary_samples)
        } else {
            (self.stable, &self.stable_samples)
        };
        match reading {
            Reading::Rate if against => rate_interval_mid_p(counts.events, counts.trials, alpha),
            Reading::Rate => rate_interval(counts.events, counts.trials, alpha),
            Reading::Quantile(q) => {
                (samples.count() > 0).then(|| samples.quantile_interval(q, alpha))
            }
        }
    }

    /// The interval whose ends decide a condition with operator `op`: the end that
    /// decides "holds" at the against level, the one that decides "does not hold" at the
    /// for-canary level.
    fn deciding_interval(
        &self,
        canary: bool,
        reading: Reading,
        op: Comparison,
        alphas: Alphas,
    ) -> Option<Interval> {
        Some(combine(
            op,
            self.interval(canary, reading, alphas.against, true)?,
            self.interval(canary, reading, alphas.for_canary, false)?,
        ))
    }

    /// How the canary's side reads in a reason: `error_rate 0.08 (16 of 200)` or
    /// `latency_p99 0.41 (1200 samples)`.
    fn describe(&self, canary: bool, reading: Reading, value: f64) -> String {
        match reading {
            Reading::Rate => {
                let c = if canary { self.canary } else { self.stable };
                format!("{} ({} of {})", num(value), c.events, c.trials)
            }
            Reading::Quantile(_) => {
                let s = if canary {
                    &self.canary_samples
                } else {
                    &self.stable_samples
                };
                format!("{} ({} samples)", num(value), s.count())
            }
        }
    }

    /// Evaluates `condition` on the evidence at this look's levels.
    ///
    /// Against a fixed line the canary's interval decides. Against the stable release
    /// (`> 2x stable`, `> stable + 0.01`) both releases' intervals do, each at half the
    /// level, so that together they are wrong at most as often as one interval at the
    /// full level: for rates a conservative test of two proportions, for percentiles the
    /// same with order statistics.
    pub fn evaluate(
        &self,
        metric: &str,
        condition: &Condition,
        reading: Reading,
        alphas: Alphas,
    ) -> Evaluation {
        let (canary_estimate, stable_estimate) = self.estimates(reading);
        let Some(c) = canary_estimate else {
            return Evaluation::inconclusive(format!("{metric}: no canary data this step"));
        };
        let levels = alphas.describe(self.looks);
        let text = condition.to_string();
        let rhs = text.trim_start_matches(['>', '<', '=']).trim_start();
        let canary_text = self.describe(true, reading, c);
        let (op, factor, offset) = match *condition {
            Condition::Absolute { op, threshold } => {
                let Some(value) = self.deciding_interval(true, reading, op, alphas) else {
                    return Evaluation::inconclusive(format!("{metric}: no canary data"));
                };
                let line = Interval {
                    low: threshold,
                    high: threshold,
                };
                return sentence(
                    compare(op, value, line),
                    op.holds(c, threshold),
                    &format!("{metric} {canary_text} this step"),
                    &format!("{op} {threshold}"),
                    format!("interval {}, {levels}", show(value)),
                );
            }
            Condition::RelativeFactor { op, factor } => (op, factor, 0.0),
            Condition::RelativeOffset { op, offset } => (op, 1.0, offset),
            Condition::Statistical { .. } => {
                return Evaluation::inconclusive(format!(
                    "{metric}: a mann-whitney condition needs the per-request latency samples \
                     (metric = \"latency\")"
                ))
            }
        };
        let Some(s) = stable_estimate else {
            return Evaluation::inconclusive(format!(
                "{metric}: no stable data this step to compare with"
            ));
        };
        let halves = Alphas {
            against: alphas.against / 2.0,
            for_canary: alphas.for_canary / 2.0,
        };
        let (Some(value), Some(stable)) = (
            self.deciding_interval(true, reading, op, halves),
            // The line's far end decides "holds", its near end "does not hold".
            self.deciding_interval(false, reading, op.reversed(), halves),
        ) else {
            return Evaluation::inconclusive(format!("{metric}: no data this step"));
        };
        let line = Interval {
            low: factor * stable.low + offset,
            high: factor * stable.high + offset,
        };
        let bound = factor * s + offset;
        let head = format!(
            "{metric} {canary_text} vs {rhs} = {} (stable {}) this step",
            num(bound),
            self.describe(false, reading, s)
        );
        sentence(
            compare(op, value, line),
            op.holds(c, bound),
            &head,
            &format!("{op} {rhs}"),
            format!(
                "intervals: canary {}, {rhs} {}, {levels}",
                show(value),
                show(line)
            ),
        )
    }
}

/// The error budget of one look, for each kind of verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alphas {
    /// For a verdict against the canary (the condition holds).
    pub against: f64,
    /// For a verdict for it (the condition does not hold).
    pub for_canary: f64,
}

/// The most confidence a verdict *against* the canary needs: a canary stopped wrongly
/// costs a redeploy, one promoted wrongly costs an outage, so a verdict for the canary
/// needs `confidence` (default 99%) and one against it this much, or `confidence` if
/// lower. The looser side is what lets a canary that fails outright be rolled back
/// within `failure_limit` intervals.
pub const AGAINST_CONFIDENCE: f64 = 0.95;

impl Alphas {
    fn describe(&self, look: u32) -> String {
        let pct = |alpha: f64| format!("{}%", num(100.0 * (1.0 - alpha)));
        format!(
            "look {look}, one-sided {} against / {} for",
            pct(self.against),
            pct(self.for_canary)
        )
    }
}

/// One interval out of two: the end that decides "holds" from `against`, the end that
/// decides "does not hold" from `for_canary`.
fn combine(op: Comparison, against: Interval, for_canary: Interval) -> Interval {
    match op {
        // Bad when high: "holds" needs the low end above the line.
        Comparison::Greater | Comparison::GreaterOrEqual => Interval {
            low: against.low,
            high: for_canary.high,
        },
        Comparison::Less | Comparison::LessOrEqual => Interval {
            low: for_canary.low,
            high: against.high,
        },
    }
}

/// Whether `value op line` holds for the whole of `value` against the whole of `line`
/// (Fail), for none of it (Pass), or the intervals overlap (Inconclusive).
fn compare(op: Comparison, value: Interval, line: Interval) -> Verdict {
    let (bad_for_sure, good_for_sure) = match op {
        // Bad when high: bad for sure when even the lowest value beats the highest line.
        Comparison::Greater | Comparison::GreaterOrEqual => (
            op.holds(value.low, line.high),
            !op.holds(value.high, line.low),
        ),
        // Bad when low: bad for sure when even the highest value is below the lowest line.
        Comparison::Less | Comparison::LessOrEqual => (
            op.holds(value.high, line.low),
            !op.holds(value.low, line.high),
        ),
    };
    if bad_for_sure {
        Verdict::Fail
    } else if good_for_sure {
        Verdict::Pass
    } else {
        Verdict::Inconclusive
    }
}

/// The evaluation's one line: the verdict's sentence and the numbers that decided it.
fn sentence(
    verdict: Verdict,
    leans_bad: bool,
    head: &str,
    line: &str,
    numbers: String,
) -> Evaluation {
    let reason = match verdict {
        Verdict::Fail => format!("{head} {line} ({numbers})"),
        Verdict::Pass => format!("{head} is not {line} ({numbers})"),
        Verdict::Inconclusive => format!("{head}: cannot tell yet whether {line} ({numbers})"),
    };
    Evaluation {
        verdict,
        reason,
        leans_bad: verdict == Verdict::Inconclusive && leans_bad,
    }
}

fn show(interval: Interval) -> String {
    let end = |v: f64| {
        if v.is_infinite() {
            "unbounded".to_string()
        } else {
            num(v)
        }
    };
    format!("{}..{}", end(interval.low), end(interval.high))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(text: &str) -> Condition {
        Condition::parse(text).unwrap()
    }

    fn alphas(alpha: f64) -> Alphas {
        Alphas {
            against: alpha,
            for_canary: alpha,
        }
    }

    #[test]
    fn sketch_keeps_values_within_one_percent() {
        let mut sketch = Sketch::new();
        let values: Vec<f64> = (1..=1000).map(|i| f64::from(i) * 0.001).collect();
        sketch.extend(&values);
        assert_eq!(sketch.count(), 1000);
        let median = sketch.quantile(0.5).unwrap();
        assert!((median - 0.5).abs() / 0.5 < 0.011, "{median}");
        let p99 = sketch.quantile(0.99).unwrap();
        assert!((p99 - 0.99).abs() / 0.99 < 0.011, "{p99}");
        sketch.extend(&[f64::NAN, f64::INFINITY, 0.0]);
        assert_eq!(sketch.count(), 1002);
        assert_eq!(sketch.quantile(1.0), Some(f64::INFINITY));
        let json = serde_json::to_string(&sketch).unwrap();
        assert_eq!(serde_json::from_str::<Sketch>(&json).unwrap(), sketch);
    }

    #[test]
    fn two_errors_in_a_hundred_do_not_cross_a_one_percent_line() {
        let mut ev = Evidence::default();
        ev.add_counts(Counts::new(2, 100), Counts::new(5, 900));
        let e = ev.evaluate("error_rate", &cond("> 0.01"), Reading::Rate, alphas(0.005));
        assert_eq!(e.verdict, Verdict::Inconclusive, "{}", e.reason);
        assert!(e.leans_bad, "0.02 is past the line");
        assert!(e.reason.contains("2 of 100"), "{}", e.reason);
    }

    #[test]
    fn twenty_percent_errors_fail_at_the_first_look_and_few_errors_pass_later() {
        let mut ev = Evidence::default();
        ev.add_counts(Counts::new(20, 100), Counts::default());
        let e = ev.evaluate("error_rate", &cond("> 0.05"), Reading::Rate, alphas(0.005));
        assert_eq!(e.verdict, Verdict::Fail, "{}", e.reason);
        let mut ev = Evidence::default();
        ev.add_counts(Counts::new(1, 400), Counts::default());
        let e = ev.evaluate("error_rate", &cond("> 0.05"), Reading::Rate, alphas(0.001));
        assert_eq!(e.verdict, Verdict::Pass, "{}", e.reason);
        assert!(e.reason.contains("interval"), "{}", e.reason);
    }

    #[test]
    fn a_p99_from_a_hundred_samples_is_not_a_p99() {
        let mut ev = Evidence::default();
        let canary: Vec<f64> = (1..=100).map(|i| f64::from(i) * 0.001).collect();
        let stable: Vec<f64> = (1..=900).map(|i| f64::from(i) * 0.0001).collect();
        ev.add_samples(&canary, &stable);
        let e = ev.evaluate(
            "latency_p99",
            &cond("> 3x stable"),
            Reading::Quantile(0.99),
            alphas(0.005),
        );
        assert_eq!(e.verdict, Verdict::Inconclusive, "{}", e.reason);
        assert!(e.reason.contains("unbounded"), "{}", e.reason);
    }

    #[test]
    fn relative_rates_use_both_releases() {
        let mut ev = Evidence::default();
        ev.add_counts(Counts::new(40, 400), Counts::new(20, 3600));
        let e = ev.evaluate(
            "error_rate",
            &cond("> stable + 0.01"),
            Reading::Rate,
            alphas(0.005),
        );
        assert_eq!(e.verdict, Verdict::Fail, "{}", e.reason);
        let mut ev = Evidence::default();
        ev.add_counts(Counts::new(5, 1000), Counts::new(45, 9000));
        let e = ev.evaluate(
            "error_rate",
            &cond("> 2x stable"),
            Reading::Rate,
            alphas(0.005),
        );
        assert_eq!(e.verdict, Verdict::Inconclusive, "{}", e.reason);
    }
}
