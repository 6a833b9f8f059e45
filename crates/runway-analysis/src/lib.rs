//! Canary analysis for runway, as pure logic: no I/O, no async, no clock.
//!
//! During a canary rollout the engine shifts traffic to the new release in weighted
//! steps while the proxy (or Prometheus) measures both releases. Every analysis
//! interval the engine hands this crate the numbers and gets back a decision:
//! continue, hold, wait for a human, or roll back.
//!
//! The rules come from our users' runbooks:
//! - never promote on data we did not have: only an interval in which every metric
//!   was measured and passed counts as a pass ([`Judge::can_promote`]);
//! - a source error is an error, not a pass: it makes the metric inconclusive;
//! - too little data is inconclusive, and too many inconclusive intervals in a row
//!   pause the rollout for a human instead of promoting it;
//! - the decision matrix ([`AnalysisPolicy::default_for_runbooks`]): roll back above
//!   5% errors or a p99 above 3x the stable release's, pause between 1% and 5%.
//!
//! One interval, as the engine drives it:
//!
//! ```
//! use std::time::Duration;
//! use runway_analysis::{
//!     AnalysisPolicy, Decision, IntervalInput, Judge, MetricInput, MetricWindow, ERROR_RATE,
//!     LATENCY_P99,
//! };
//!
//! // [analysis] named no metrics: the runbooks' matrix with the spec's limits.
//! let policy = AnalysisPolicy::default_for_runbooks(2, 50, 3);
//! let mut judge = Judge::new(); // or the one persisted before a restart
//! let result = judge.judge(
//!     &policy,
//!     IntervalInput {
//!         at: Duration::from_secs(10), // since the analysis started
//!         canary_requests: 480,
//!         metrics: vec![
//!             MetricInput::ok(ERROR_RATE, MetricWindow::values(Some(0.002), Some(0.001))),
//!             MetricInput::ok(LATENCY_P99, MetricWindow::values(Some(0.31), Some(0.29))),
//!         ],
//!     },
//! );
//! assert_eq!(result.decision, Decision::Continue);
//! assert!(judge.can_promote());
//! let saved = serde_json::to_string(&judge).unwrap(); // persist with the rollout
//! # let restored: Judge = serde_json::from_str(&saved).unwrap();
//! # assert_eq!(restored, judge);
//! ```
//!
//! The crate is organised by job:
//! - [`stats`]: the normal distribution's tail and sample quantiles;
//! - [`mannwhitney`]: the Mann-Whitney U test (checked against scipy);
//! - [`condition`]: the `fail_if` / `pause_if` grammar and its evaluation on one
//!   interval's numbers;
//! - [`judge`]: streaks, `for` durations and the decision, as a serde-persistable
//!   [`Judge`] so that the analysis survives a server restart.

#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod bounds;
pub mod condition;
pub mod evidence;
mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod judge;
pub mod mannwhitney;
pub mod stats;

pub use condition::{
    Comparison, Condition, Direction, Evaluation, MetricWindow, StatisticalOptions, Verdict,
};
pub use evidence::{Counts, Evidence, Sketch};
pub use judge::{
    AnalysisPolicy, Decision, IntervalInput, IntervalResult, Judge, MetricInput, MetricPolicy,
    MetricResult, MetricVerdict, ERROR_RATE, LATENCY_P99,
};
pub use mannwhitney::{mann_whitney_u, MannWhitney};
