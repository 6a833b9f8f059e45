//! Confidence bounds for the two kinds of evidence a canary produces: counts (a rate such
//! as the error rate) and per-request samples (a percentile such as the p99).
//!
//! Both are distribution-free where it matters: a rate's bounds are binomial
//! (Clopper-Pearson) bounds, a percentile's bounds are order statistics, which hold for
//! any latency distribution, heavy tails included. The price of making no assumption is
//! honesty about sample sizes: with 100 samples there is no upper bound on a p99 at 99%
//! confidence (0.99^100 = 37% of samples sets have every value below the true p99), and
//! the functions here say so by returning an infinite bound instead of pretending.
//!
//! The regularized incomplete beta function comes from `statrs`; everything built on it
//! (the bisections, the order-statistic ranks) is here.

use statrs::function::beta::checked_beta_reg;

/// A two-sided interval; either end may be infinite when the data cannot bound it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The lower bound (`-inf` or 0 when there is none).
    pub low: f64,
    /// The upper bound (`+inf` when there is none).
    pub high: f64,
}

/// `P(X >= k)` for `X ~ Binomial(n, p)`: the one-sided p-value of `k` events in `n`
/// trials against a rate of `p`. Exact (through the regularized incomplete beta).
pub fn binomial_sf(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // P(X >= k) = I_p(k, n - k + 1).
    checked_beta_reg(k as f64, (n - k + 1) as f64, p).unwrap_or(f64::NAN)
}

/// `P(X <= k)` for `X ~ Binomial(n, p)`.
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    1.0 - binomial_sf(k + 1, n, p)
}

/// The Clopper-Pearson interval of a rate from `events` in `trials`, each side at
/// one-sided level `alpha`: the lower bound is the rate below which seeing `events` or
/// more would have had probability `alpha`; the upper bound likewise. Exact: its level is
/// guaranteed, at the price of some conservatism on discrete counts. `None` without
/// trials.
pub fn rate_interval(events: u64, trials: u64, alpha: f64) -> Option<Interval> {
    binomial_interval(events, trials, alpha, false)
}

/// The mid-p form of [`rate_interval`]: the chance of exactly `events` counts half. It
/// removes most of the exact interval's conservatism (its coverage stays close to the
/// nominal level, sometimes a little under it), so runway uses it only where a wrong
/// verdict is cheap: to stop a canary, never to promote one.
pub fn rate_interval_mid_p(events: u64, trials: u64, alpha: f64) -> Option<Interval> {
    binomial_interval(events, trials, alpha, true)
}

fn binomial_interval(events: u64, trials: u64, alpha: f64, mid_p: bool) -> Option<Interval> {
    if trials == 0 {
        return None;
    }
    let k = events.min(trials);
    let half = if mid_p { 0.5 } else { 1.0 };
    let low = if k == 0 {
        0.0
    } else {
        // P(X >= k | p), minus half of P(X = k) for mid-p, equals alpha; increasing in p.
        let above = |p: f64| {
            if k == trials {
                0.0
            } else {
                binomial_sf(k + 1, trials, p)
            }
        };
        bisect(|p| half * binomial_sf(k, trials, p) + (1.0 - half) * above(p) - alpha)
    };
    let high = if k == trials {
        1.0
    } else {
        // P(X <= k | p), minus half of P(X = k) for mid-p, equals alpha; decreasing in p.
        let below = |p: f64| {
            if k == 0 {
                0.0
            } else {
                binomial_cdf(k - 1, trials, p)
            }
        };
        bisect(|p| alpha - half * binomial_cdf(k, trials, p) - (1.0 - half) * below(p))
    };
    Some(Interval { low, high })
}

/// The root in 0..1 of an increasing function, to about 1e-12.
fn bisect(f: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The ranks (1-based, ascending) of the order statistics that bound the `q`-quantile of
/// a distribution from `n` samples, each side at one-sided level `alpha`: the true
/// quantile is at least the `low`-th smallest sample and at most the `high`-th with
/// probability `1 - alpha` each, whatever the distribution.
///
/// `low` is `None` when even the smallest sample is not a safe lower bound, and `high` is
/// `None` when even the largest is not a safe upper bound: with 100 samples and
/// `alpha = 0.01` that is the case for the p99.
pub fn quantile_ranks(n: u64, q: f64, alpha: f64) -> (Option<u64>, Option<u64>) {
    if n == 0 || !(0.0..=1.0).contains(&q) {
        return (None, None);
    }
    // X_(l) <= quantile  iff  at least l samples fall at or below it, and the number of
    // samples below the quantile is Binomial(n, q). Lower: the largest l with
    // P(Bin < l) <= alpha. Upper: the smallest u with P(Bin >= u) <= alpha.
    let low = last_true(1, n, |l| binomial_cdf(l - 1, n, q) <= alpha);
    let high = first_true(1, n, |u| binomial_sf(u, n, q) <= alpha);
    (low, high)
}

/// The largest `x` in `from..=to` with `pred(x)`, for a predicate true up to some point.
fn last_true(from: u64, to: u64, pred: impl Fn(u64) -> bool) -> Option<u64> {
    if !pred(from) {
        return None;
    }
    let (mut lo, mut hi) = (from, to);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if pred(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// The smallest `x` in `from..=to` with `pred(x)`, for a predicate true from some point.
fn first_true(from: u64, to: u64, pred: impl Fn(u64) -> bool) -> Option<u64> {
    if !pred(to) {
        return None;
    }
    let (mut lo, mut hi) = (from, to);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// The one-sided level of the `look`-th look (1-based) at a step's accumulated evidence,
/// so that the chance of a wrong verdict at *any* look stays within `alpha` however long
/// the step runs: `alpha / (look * (look + 1))`, whose sum over all looks is `alpha`
/// (a union bound, the simplest always-valid sequential test). Early looks get most of
/// the budget, so a canary that fails outright is stopped at once; later looks need
/// stronger evidence, which the growing sample provides.
pub fn alpha_at_look(alpha: f64, look: u32) -> f64 {
    let j = f64::from(look.max(1));
    alpha / (j * (j + 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        ((a - b) / b).abs() < tol
    }

    #[test]
    fn binomial_tails_match_direct_sums() {
        // Direct summation for small n is exact enough to compare with.
        fn direct_sf(k: u64, n: u64, p: f64) -> f64 {
            let mut total = 0.0;
            for x in k..=n {
                let mut c = 1.0_f64;
                for i in 0..x {
                    c *= (n - i) as f64 / (i + 1) as f64;
                }
                total += c * p.powi(x as i32) * (1.0 - p).powi((n - x) as i32);
            }
            total
        }
        for (k, n, p) in [
            (2, 100, 0.005),
            (8, 100, 0.05),
            (20, 100, 0.05),
            (0, 10, 0.3),
        ] {
            let (got, want) = (binomial_sf(k, n, p), direct_sf(k, n, p));
            assert!(
                close(got, want, 1e-9),
                "sf({k},{n},{p}) = {got}, want {want}"
            );
        }
        assert!(close(binomial_cdf(1, 100, 0.05), 0.0370812093, 1e-8));
    }

    #[test]
    fn clopper_pearson_matches_known_values() {
        // Zero events in n trials: the exact upper bound is 1 - alpha^(1/n) (the "rule of
        // 3"); mid-p solves (1 - p)^n / 2 = alpha.
        let iv = rate_interval(0, 100, 0.025).unwrap();
        assert_eq!(iv.low, 0.0);
        assert!(close(iv.high, 1.0 - 0.025_f64.powf(0.01), 1e-9), "{iv:?}");
        let iv = rate_interval_mid_p(0, 100, 0.025).unwrap();
        assert!(close(iv.high, 1.0 - 0.05_f64.powf(0.01), 1e-9), "{iv:?}");
        // 16 of 200 at 95% two-sided; the references are exact binomial sums (Python's
        // math.comb) solved by bisection: exact 0.0464176084, 0.1266648560; mid-p
        // 0.0480778701, 0.1240204642.
        let iv = rate_interval(16, 200, 0.025).unwrap();
        assert!(close(iv.low, 0.0464176084, 1e-7), "{iv:?}");
        assert!(close(iv.high, 0.1266648560, 1e-7), "{iv:?}");
        let iv = rate_interval_mid_p(16, 200, 0.025).unwrap();
        assert!(close(iv.low, 0.0480778701, 1e-7), "{iv:?}");
        assert!(close(iv.high, 0.1240204642, 1e-7), "{iv:?}");
        assert!(rate_interval(0, 0, 0.05).is_none());
        let all = rate_interval(5, 5, 0.05).unwrap();
        assert_eq!(all.high, 1.0);
        // No overflow at the largest counts.
        let huge = rate_interval_mid_p(u64::MAX, u64::MAX, 0.05).unwrap();
        assert_eq!(huge.high, 1.0);
    }

    #[test]
    fn quantile_ranks_say_when_a_p99_cannot_be_bounded() {
        // 100 samples: no upper bound on the p99 at 1%, but a lower bound.
        let (low, high) = quantile_ranks(100, 0.99, 0.01);
        assert_eq!(high, None);
        assert!(low.is_some_and(|l| l < 100));
        // 0.99^n <= 0.01 needs n >= 459 for the largest sample to bound it.
        assert_eq!(quantile_ranks(458, 0.99, 0.01).1, None);
        assert_eq!(quantile_ranks(459, 0.99, 0.01).1, Some(459));
        // Many samples: both bounds close around rank 0.99 n.
        let (low, high) = quantile_ranks(100_000, 0.99, 0.005);
        let (low, high) = (low.unwrap(), high.unwrap());
        assert!(
            low < 99_000 && high > 99_000 && high - low < 200,
            "{low}..{high}"
        );
        // The median of 10 samples at 5% per side: ranks 2 and 9 (classic table value).
        assert_eq!(quantile_ranks(10, 0.5, 0.05), (Some(2), Some(9)));
    }

    #[test]
    fn alpha_spending_sums_to_alpha() {
        let total: f64 = (1..100_000).map(|j| alpha_at_look(0.01, j)).sum();
        assert!(total < 0.01 && total > 0.0099, "{total}");
        assert_eq!(alpha_at_look(0.01, 1), 0.005);
    }
}
