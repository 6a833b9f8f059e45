//! The `fail_if` / `pause_if` conditions of `runway.toml` and their evaluation on one
//! interval's numbers.
//!
//! A condition describes the *bad* state of a metric: `fail_if = "> 0.05"` on the
//! error rate reads "fail if the error rate is above 5%". [`Condition::evaluate`]
//! therefore answers [`Verdict::Fail`] when the condition holds, [`Verdict::Pass`]
//! when it does not, and [`Verdict::Inconclusive`] when the data cannot tell (no
//! value, no stable value to compare with, too few samples): never a pass on data we
//! did not have.
//!
//! Grammar (whitespace-tolerant, keywords case-insensitive):
//!
//! | form                      | meaning                                               |
//! |---------------------------|-------------------------------------------------------|
//! | `> 0.05`, `>= 0.05`, `< 0.99`, `<= 0.99` | the canary's value against a number    |
//! | `> 5%`                    | same as `> 0.05` (absolute thresholds only)           |
//! | `> 2x stable`             | the canary's value against 2 × the stable value       |
//! | `> stable + 0.01`, `< stable - 0.02` | the canary's value against stable ± a number |
//! | `> stable (mann-whitney)`, `< stable (mann-whitney)` | the canary's per-request samples are significantly greater / less than stable's |
//!
//! "Stable" always means the stable release's value over the same window.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::evidence::Counts;
use crate::format::{num, p_value};
use crate::mannwhitney::mann_whitney_u;

/// The accepted forms, quoted in every parse error so that the fix is on screen.
const ACCEPTED_FORMS: &str = "accepted forms: \"> 0.05\", \">= 0.05\", \"< 0.99\", \
     \"<= 0.99\", \"> 5%\", \"> 2x stable\", \"> stable + 0.01\", \"< stable - 0.02\", \
     \"> stable (mann-whitney)\", \"< stable (mann-whitney)\"";

/// A comparison operator of a threshold condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparison {
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
}

impl Comparison {
    /// The operator as written in a condition.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
        }
    }

    /// The operator with its sides swapped (`>` becomes `<`).
    pub fn reversed(self) -> Comparison {
        match self {
            Comparison::Greater => Comparison::Less,
            Comparison::GreaterOrEqual => Comparison::LessOrEqual,
            Comparison::Less => Comparison::Greater,
            Comparison::LessOrEqual => Comparison::GreaterOrEqual,
        }
    }

    /// Whether `value <op> bound` holds. False when either is NaN.
    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Comparison::Greater => value > bound,
            Comparison::GreaterOrEqual => value >= bound,
            Comparison::Less => value < bound,
            Comparison::LessOrEqual => value <= bound,
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Which way a statistical condition looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// `> stable (mann-whitney)`: the canary's samples tend to be greater (e.g. slower).
    Greater,
    /// `< stable (mann-whitney)`: the canary's samples tend to be less (e.g. fewer
    /// successful responses per request, lower throughput).
    Less,
}

impl Direction {
    fn symbol(self) -> &'static str {
        match self {
            Direction::Greater => ">",
            Direction::Less => "<",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Direction::Greater => "greater",
            Direction::Less => "less",
        }
    }
}

/// A parsed `fail_if` / `pause_if` condition. See the [module docs](self) for the
/// grammar. It serialises as its canonical text (`Display`) and deserialises through
/// [`Condition::parse`], so a stored policy stays readable and is re-validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// `> 0.05`: the canary's value against a fixed threshold. Needs no stable data.
    Absolute {
        /// The operator.
        op: Comparison,
        /// The threshold, finite.
        threshold: f64,
    },
    /// `> 2x stable`: the canary's value against `factor` × the stable value.
    RelativeFactor {
        /// The operator.
        op: Comparison,
        /// The factor, finite and greater than 0.
        factor: f64,
    },
    /// `> stable + 0.01` / `< stable - 0.02`: the canary's value against the stable
    /// value plus `offset` (negative for `-`). `> stable` is an offset of 0.
    RelativeOffset {
        /// The operator.
        op: Comparison,
        /// The signed offset, finite.
        offset: f64,
    },
    /// `> stable (mann-whitney)`: the canary's per-request samples are significantly
    /// greater (or less) than the stable release's, by the one-sided Mann-Whitney U
    /// test, with an effect size large enough to matter (see [`StatisticalOptions`]).
    Statistical {
        /// Which way counts as bad.
        direction: Direction,
    },
}

/// The knobs of a statistical condition, settable per metric (`confidence`,
/// `min_effect` in `runway.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatisticalOptions {
    /// How sure a verdict must be. For a statistical condition: it holds only when the
    /// one-sided p-value is below `1 - confidence`. For a rate or a percentile judged on
    /// the step's accumulated evidence: `1 - confidence` is the budget for a wrong
    /// verdict over the whole step, for each side of each condition (see
    /// [`crate::evidence`]). Strictly between 0.5 and 1; default 0.99.
    pub confidence: f64,
    /// ... and when |Cliff's delta| in the bad direction is at least this much, so
    /// that a statistically significant but negligible difference (which thousands
    /// of requests always find) does not fail a rollout. 0 to 1; default 0.2 (the
    /// canary's request is worse than a random stable request's in 60% of pairs vs
    /// 40%).
    pub min_effect: f64,
    /// With fewer samples on either side the condition is inconclusive: the normal
    /// approximation of the test is not trustworthy below about 20. Default 20.
    pub min_samples: usize,
}

impl StatisticalOptions {
    /// `confidence` when not given.
    pub const DEFAULT_CONFIDENCE: f64 = 0.99;
    /// `min_effect` when not given.
    pub const DEFAULT_MIN_EFFECT: f64 = 0.2;
    /// `min_samples` when not given.
    pub const DEFAULT_MIN_SAMPLES: usize = 20;

    /// Checks the ranges documented on the fields (the same as `runway-spec`'s), so
    /// that a NaN or out-of-range option cannot silently make a condition pass.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            return Err(format!(
                "confidence must be between 0.5 and 1 (both excluded), found {}",
                self.confidence
            ));
        }
        if !(0.0..=1.0).contains(&self.min_effect) {
            return Err(format!(
                "min_effect must be between 0 and 1, found {}",
                self.min_effect
            ));
        }
        Ok(())
    }
}

impl Default for StatisticalOptions {
    fn default() -> Self {
        StatisticalOptions {
            confidence: Self::DEFAULT_CONFIDENCE,
            min_effect: Self::DEFAULT_MIN_EFFECT,
            min_samples: Self::DEFAULT_MIN_SAMPLES,
        }
    }
}

/// One metric's measurements over one analysis window, for both releases.
///
/// Values are what threshold conditions compare (an error rate, a p99); samples are
/// what a statistical condition compares (one latency per request). Missing data is
/// `None` / empty, never 0: a missing stable value makes a relative condition
/// inconclusive instead of comparing against nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricWindow {
    /// The canary's value over the window.
    pub canary: Option<f64>,
    /// The stable release's value over the same window.
    pub stable: Option<f64>,
    /// The canary's per-request samples (statistical conditions only).
    #[serde(default)]
    pub canary_samples: Vec<f64>,
    /// The stable release's per-request samples (statistical conditions only).
    #[serde(default)]
    pub stable_samples: Vec<f64>,
    /// The canary's events of trials (errors of requests) when the metric is a rate:
    /// the judge then accumulates them over the step and judges the rate with its
    /// uncertainty instead of comparing `canary` as a bare number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_counts: Option<Counts>,
    /// The stable release's events of trials, with `canary_counts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_counts: Option<Counts>,
    /// When the metric is a percentile (0.99 for a p99) of the per-request samples: the
    /// judge accumulates the samples over the step and bounds the percentile with
    /// order statistics, so that it is never read off too few samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
}

impl MetricWindow {
    /// A window with values only (threshold conditions).
    pub fn values(canary: Option<f64>, stable: Option<f64>) -> Self {
        MetricWindow {
            canary,
            stable,
            ..MetricWindow::default()
        }
    }

    /// A rate: `canary` and `stable` events of trials (e.g. errors of requests).
    pub fn rate(canary: Counts, stable: Counts) -> Self {
        MetricWindow {
            canary: canary.rate(),
            stable: stable.rate(),
            canary_counts: Some(canary),
            stable_counts: Some(stable),
            ..MetricWindow::default()
        }
    }

    /// The `q`-quantile (0.99 for a p99) of per-request samples.
    pub fn quantile(q: f64, canary_samples: Vec<f64>, stable_samples: Vec<f64>) -> Self {
        MetricWindow {
            canary: crate::stats::quantile(&canary_samples, q),
            stable: crate::stats::quantile(&stable_samples, q),
            canary_samples,
            stable_samples,
            quantile: Some(q),
            ..MetricWindow::default()
        }
    }

    /// A window with per-request samples only (statistical conditions).
    pub fn samples(canary_samples: Vec<f64>, stable_samples: Vec<f64>) -> Self {
        MetricWindow {
            canary_samples,
            stable_samples,
            ..MetricWindow::default()
        }
    }
}

/// What a condition says about one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    /// The condition does not hold: the metric is fine (as far as this condition goes).
    Pass,
    /// The condition holds: the metric is in the bad state the condition describes.
    Fail,
    /// The data cannot tell: missing or non-finite value, no stable value for a
    /// relative condition, too few samples for a statistical one.
    Inconclusive,
}

/// A [`Verdict`] and the one-line human reason for it, with the numbers, e.g.
/// `error_rate 0.214 > 0.05` or `latency_p99: no stable value to compare with`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in one line, starting with the metric's name.
    pub reason: String,
    /// Inconclusive, but the measured value is past the line: the data lean towards the
    /// condition holding without showing it yet.
    #[serde(default)]
    pub leans_bad: bool,
}

impl Evaluation {
    pub(crate) fn pass(reason: String) -> Self {
        Evaluation {
            verdict: Verdict::Pass,
            reason,
            leans_bad: false,
        }
    }

    pub(crate) fn fail(reason: String) -> Self {
        Evaluation {
            verdict: Verdict::Fail,
            reason,
            leans_bad: false,
        }
    }

    pub(crate) fn inconclusive(reason: String) -> Self {
        Evaluation {
            verdict: Verdict::Inconclusive,
            reason,
            leans_bad: false,
        }
    }
}

impl Condition {
    /// Parses a condition (see the [module docs](self) for the grammar). The error
    /// quotes the input, says what is wrong and lists the accepted forms.
    pub fn parse(text: &str) -> Result<Condition, String> {
        Parser::new(text).condition().map_err(|problem| {
            format!(
                "invalid condition {:?}: {problem}; {ACCEPTED_FORMS}",
                text.trim()
            )
        })
    }

    /// Whether the condition compares with the stable release (so the engine knows
    /// it must measure stable too).
    pub fn needs_stable(&self) -> bool {
        !matches!(self, Condition::Absolute { .. })
    }

    /// Whether the condition needs per-request samples rather than values.
    pub fn needs_samples(&self) -> bool {
        matches!(self, Condition::Statistical { .. })
    }

    /// Evaluates the condition on one window of `metric` (the name is only used in
    /// the reason). `opts` matters only for statistical conditions.
    ///
    /// Inconclusive, never Pass, when: the canary value is missing or not finite
    /// (threshold conditions); the stable value is missing or not finite (relative
    /// conditions); either side has fewer than `opts.min_samples` non-NaN samples or
    /// `opts` is invalid (statistical conditions).
    pub fn evaluate(
        &self,
        metric: &str,
        window: &MetricWindow,
        opts: &StatisticalOptions,
    ) -> Evaluation {
        match *self {
            Condition::Absolute { op, threshold } => {
                let canary = match finite(window.canary, "canary") {
                    Ok(v) => v,
                    Err(why) => return Evaluation::inconclusive(format!("{metric}: {why}")),
                };
                if op.holds(canary, threshold) {
                    Evaluation::fail(format!("{metric} {} {op} {threshold}", num(canary)))
                } else {
                    Evaluation::pass(format!("{metric} {} is not {op} {threshold}", num(canary)))
                }
            }
            Condition::RelativeFactor { op, factor } => {
                self.relative(metric, window, op, |stable| stable * factor)
            }
            Condition::RelativeOffset { op, offset } => {
                self.relative(metric, window, op, |stable| stable + offset)
            }
            Condition::Statistical { direction } => statistical(metric, window, direction, opts),
        }
    }

    /// A relative condition: canary `op` bound(stable).
    fn relative(
        &self,
        metric: &str,
        window: &MetricWindow,
        op: Comparison,
        bound_of: impl Fn(f64) -> f64,
    ) -> Evaluation {
        let canary = match finite(window.canary, "canary") {
            Ok(v) => v,
            Err(why) => return Evaluation::inconclusive(format!("{metric}: {why}")),
        };
        let stable = match window.stable {
            None => {
                return Evaluation::inconclusive(format!(
                    "{metric}: no stable value to compare with"
                ))
            }
            Some(s) if !s.is_finite() => {
                return Evaluation::inconclusive(format!(
                    "{metric}: stable value is {s}, nothing to compare with"
                ))
            }
            Some(s) => s,
        };
        let bound = bound_of(stable);
        if !bound.is_finite() {
            return Evaluation::inconclusive(format!(
                "{metric}: {self} overflows for stable {}",
                num(stable)
            ));
        }
        // `self` displays as e.g. "> 2x stable"; strip the operator for the sentence.
        let text = self.to_string();
        let rhs = text.trim_start_matches(['>', '<', '=']).trim_start();
        let numbers = format!("({} -> {})", num(stable), num(bound));
        if op.holds(canary, bound) {
            Evaluation::fail(format!("{metric} {} {op} {rhs} {numbers}", num(canary)))
        } else {
            Evaluation::pass(format!(
                "{metric} {} is not {op} {rhs} {numbers}",
                num(canary)
            ))
        }
    }
}

/// A statistical condition: one-sided Mann-Whitney plus a minimum effect size.
fn statistical(
    metric: &str,
    window: &MetricWindow,
    direction: Direction,
    opts: &StatisticalOptions,
) -> Evaluation {
    if let Err(why) = opts.validate() {
        return Evaluation::inconclusive(format!("{metric}: invalid statistical options: {why}"));
    }
    let count = |xs: &[f64]| xs.iter().filter(|v| !v.is_nan()).count();
    let (n_canary, n_stable) = (count(&window.canary_samples), count(&window.stable_samples));
    let need = opts.min_samples.max(1);
    if n_canary < need || n_stable < need {
        return Evaluation::inconclusive(format!(
            "{metric}: mann-whitney: only {n_canary} canary and {n_stable} stable samples, \
             need {need} per side"
        ));
    }
    let Some(mw) = mann_whitney_u(&window.canary_samples, &window.stable_samples) else {
        return Evaluation::inconclusive(format!("{metric}: mann-whitney: no samples"));
    };
    let alpha = 1.0 - opts.confidence;
    let (p, effect_in_direction) = match direction {
        Direction::Greater => (mw.p_greater, mw.effect_size),
        Direction::Less => (mw.p_less, -mw.effect_size),
    };
    let word = direction.word();
    let (p_text, effect) = (p_value(p), num(mw.effect_size));
    let significant = p < alpha;
    let large = effect_in_direction >= opts.min_effect;
    if significant && large {
        Evaluation::fail(format!(
            "{metric} mann-whitney: canary {word} than stable, p={p_text}, effect {effect}"
        ))
    } else if significant {
        Evaluation::pass(format!(
            "{metric} mann-whitney: canary {word} than stable (p={p_text}) but effect {effect} \
             is below {}",
            opts.min_effect
        ))
    } else {
        Evaluation::pass(format!(
            "{metric} mann-whitney: canary not significantly {word} than stable, p={p_text}, \
             effect {effect}"
        ))
    }
}

/// The value if present and finite, else why not.
fn finite(value: Option<f64>, which: &str) -> Result<f64, String> {
    match value {
        None => Err(format!("no {which} value")),
        Some(v) if !v.is_finite() => Err(format!("{which} value is {v}, not a finite number")),
        Some(v) => Ok(v),
    }
}

impl fmt::Display for Condition {
    /// The canonical text: `> 0.05`, `> 2x stable`, `> stable + 0.01`,
    /// `< stable - 0.02`, `> stable`, `> stable (mann-whitney)`. Parsing it gives the
    /// same condition back. Numbers use the shortest text that reads back exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Condition::Absolute { op, threshold } => write!(f, "{op} {threshold}"),
            Condition::RelativeFactor { op, factor } => write!(f, "{op} {factor}x stable"),
            Condition::RelativeOffset { op, offset } => {
                if offset == 0.0 {
                    write!(f, "{op} stable")
                } else if offset > 0.0 {
                    write!(f, "{op} stable + {offset}")
                } else {
                    write!(f, "{op} stable - {}", -offset)
                }
            }
            Condition::Statistical { direction } => {
                write!(f, "{} stable (mann-whitney)", direction.symbol())
            }
        }
    }
}

impl FromStr for Condition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Condition::parse(s)
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Condition::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A hand-written recursive-descent parser: the grammar is tiny and the errors must
/// say exactly what is wrong where.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.rest().is_empty()
    }

    /// Consumes `token` (exact) after optional whitespace.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// Consumes the ASCII keyword `word` (any case) when it is not followed by more
    /// letters or digits.
    fn eat_keyword(&mut self, word: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        let matches = rest
            .get(..word.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(word));
        let boundary = rest
            .get(word.len()..)
            .and_then(|tail| tail.chars().next())
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        if matches && boundary {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// What comes next in the input, quoted, for error messages: `"errors"`, or
    /// `nothing` at the end.
    fn next_chunk(&mut self) -> String {
        self.skip_ws();
        let rest = self.rest();
        if rest.is_empty() {
            return "nothing".to_string();
        }
        let chunk: String = rest.chars().take(24).collect();
        if chunk.len() < rest.len() {
            format!("{:?}", format!("{chunk}..."))
        } else {
            format!("{chunk:?}")
        }
    }

    /// `[+-]? digits [. digits] [(e|E) [+-] digits]` (or `.5`), finite.
    fn number(&mut self, signed: bool) -> Result<Option<f64>, String> {
        self.skip_ws();
        let rest = self.rest().as_bytes();
        let mut i = 0;
        if signed && matches!(rest.first(), Some(b'+' | b'-')) {
            i += 1;
        }
        let digits = |from: usize| {
            rest.get(from..).map_or(0, |tail| {
                tail.iter().take_while(|b| b.is_ascii_digit()).count()
            })
        };
        let int_digits = digits(i);
        i += int_digits;
        let mut frac_digits = 0;
        if rest.get(i) == Some(&b'.') {
            frac_digits = digits(i + 1);
            if frac_digits > 0 || int_digits > 0 {
                i += 1 + frac_digits;
            }
        }
        if int_digits == 0 && frac_digits == 0 {
            return Ok(None);
        }
        if matches!(rest.get(i), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(rest.get(i + 1), Some(b'+' | b'-')));
            let exp_digits = digits(i + 1 + sign);
            if exp_digits > 0 {
                i += 1 + sign + exp_digits;
            }
        }
        let text = self.rest().get(..i).unwrap_or("");
        let value: f64 = text
            .parse()
            .map_err(|_| format!("{text:?} is not a number"))?;
        if !value.is_finite() {
            return Err(format!("{text} is not a finite number"));
        }
        self.pos += i;
        Ok(Some(value))
    }

    fn comparison(&mut self) -> Result<Comparison, String> {
        for (token, op) in [
            (">=", Comparison::GreaterOrEqual),
            ("<=", Comparison::LessOrEqual),
            (">", Comparison::Greater),
            ("<", Comparison::Less),
        ] {
            if self.eat(token) {
                return Ok(op);
            }
        }
        let rest = self.rest();
        if rest.starts_with('=') || rest.starts_with("!=") {
            return Err(
                "equality is not a condition here: use >, >=, < or <= to say when the metric \
                 is bad"
                    .to_string(),
            );
        }
        Err(format!(
            "it must start with a comparison (>, >=, < or <=), found {}",
            self.next_chunk()
        ))
    }

    fn condition(&mut self) -> Result<Condition, String> {
        if self.at_end() {
            return Err("the condition is empty".to_string());
        }
        let op = self.comparison()?;
        if self.at_end() {
            return Err(format!(
                "nothing after {:?}: expected a number or \"stable\"",
                op.symbol()
            ));
        }
        if self.eat_keyword("stable") {
            return self.after_stable(op);
        }
        let Some(value) = self.number(true)? else {
            return Err(format!(
                "expected a number or \"stable\" after {:?}, found {}",
                op.symbol(),
                self.next_chunk()
            ));
        };
        if self.at_end() {
            return Ok(Condition::Absolute {
                op,
                threshold: value,
            });
        }
        if self.eat("%") {
            self.expect_end("after the percentage")?;
            return Ok(Condition::Absolute {
                op,
                threshold: value / 100.0,
            });
        }
        if self.eat_x() {
            if !self.eat_keyword("stable") {
                return Err(format!(
                    "expected \"stable\" after \"{value}x\", found {}",
                    self.next_chunk()
                ));
            }
            if value <= 0.0 {
                return Err(format!("the factor must be greater than 0, found {value}x"));
            }
            if self.eat("(") {
                return Err(
                    "a statistical test compares with \"stable\" itself, without a factor: \
                     write \"> stable (mann-whitney)\""
                        .to_string(),
                );
            }
            self.expect_end(&format!("after \"{value}x stable\""))?;
            return Ok(Condition::RelativeFactor { op, factor: value });
        }
        Err(format!(
            "unexpected {} after the number {value}",
            self.next_chunk()
        ))
    }

    /// The factor sign: `x`, `X` or `×`, possibly glued to the number.
    fn eat_x(&mut self) -> bool {
        self.skip_ws();
        let rest = self.rest();
        for x in ["x", "X", "×"] {
            if rest.starts_with(x) {
                self.pos += x.len();
                return true;
            }
        }
        false
    }

    fn after_stable(&mut self, op: Comparison) -> Result<Condition, String> {
        if self.at_end() {
            return Ok(Condition::RelativeOffset { op, offset: 0.0 });
        }
        for (sign, factor) in [("+", 1.0), ("-", -1.0)] {
            if self.eat(sign) {
                let Some(value) = self.number(false)? else {
                    return Err(format!(
                        "expected a number after \"stable {sign}\", found {} (write \
                         \"stable - 0.01\" for a negative offset)",
                        self.next_chunk()
                    ));
                };
                if self.eat("%") {
                    return Err(format!(
                        "\"stable {sign} {value}%\" is ambiguous: write an absolute offset \
                         (\"stable {sign} {}\") or a factor (\"{}x stable\")",
                        num(value / 100.0),
                        num(1.0 + factor * value / 100.0)
                    ));
                }
                self.expect_end(&format!("after \"stable {sign} {value}\""))?;
                return Ok(Condition::RelativeOffset {
                    op,
                    offset: factor * value,
                });
            }
        }
        if self.eat("(") {
            let rest = self.rest();
            let Some(close) = rest.find(')') else {
                return Err("missing \")\" after the test name".to_string());
            };
            let name: String = rest
                .get(..close)
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_lowercase();
            self.pos += close + 1;
            if !matches!(
                name.as_str(),
                "mann-whitney" | "mannwhitney" | "mann-whitney-u"
            ) {
                return Err(format!(
                    "unknown statistical test {name:?}: the supported test is (mann-whitney)"
                ));
            }
            let direction = match op {
                Comparison::Greater => Direction::Greater,
                Comparison::Less => Direction::Less,
                Comparison::GreaterOrEqual | Comparison::LessOrEqual => {
                    return Err(format!(
                        "a statistical condition takes > or <, not {}",
                        op.symbol()
                    ))
                }
            };
            self.expect_end("after \"(mann-whitney)\"")?;
            return Ok(Condition::Statistical { direction });
        }
        Err(format!(
            "unexpected {} after \"stable\": expected \"+ <number>\", \"- <number>\" or \
             \"(mann-whitney)\"",
            self.next_chunk()
        ))
    }

    fn expect_end(&mut self, context: &str) -> Result<(), String> {
        if self.at_end() {
            Ok(())
        } else {
            Err(format!("unexpected {} {context}", self.next_chunk()))
        }
    }
}
