//! The Mann-Whitney U test (Wilcoxon rank-sum), for comparing the canary's
//! per-request samples (e.g. latencies) with the stable release's.
//!
//! Why this test: request latencies are skewed, multi-modal and full of ties (they
//! are measured in whole microseconds or histogram buckets), so a test on means
//! (Student's t) is the wrong tool; Mann-Whitney compares ranks and asks whether one
//! release's requests tend to be slower than the other's, whatever the distribution.
//!
//! The p-values use the asymptotic normal approximation with the tie correction and
//! the continuity correction, exactly as
//! `scipy.stats.mannwhitneyu(canary, stable, alternative=..., method="asymptotic",
//! use_continuity=True)` computes them; `tests/fixtures/mannwhitney.json` (made by
//! `tests/fixtures/make_mannwhitney.py`) holds scipy's answers and a test compares.
//! The approximation is good from about 20 samples per side, which is why the
//! statistical condition wants at least that many
//! ([`crate::StatisticalOptions::min_samples`]).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::stats::normal_sf;

/// The result of [`mann_whitney_u`]. "Canary" is the first sample, "stable" the
/// second; every "greater" means "the canary's values tend to be greater".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// Canary samples used (NaN samples are dropped).
    pub n_canary: usize,
    /// Stable samples used (NaN samples are dropped).
    pub n_stable: usize,
    /// U of the canary: the number of (canary, stable) pairs in which the canary
    /// value is greater, ties counting one half. scipy's `statistic`.
    pub u_canary: f64,
    /// U of the stable release; `u_canary + u_stable = n_canary * n_stable`.
    pub u_stable: f64,
    /// Standardised statistic `(u_canary - n_canary*n_stable/2) / sigma` with the tie
    /// correction but without the continuity correction (which depends on the
    /// alternative): positive when the canary tends to be greater. 0 when every
    /// value is the same (sigma = 0).
    pub z: f64,
    /// One-sided p-value for "the canary is stochastically greater than stable"
    /// (scipy `alternative="greater"`).
    pub p_greater: f64,
    /// One-sided p-value for "the canary is stochastically less than stable"
    /// (scipy `alternative="less"`).
    pub p_less: f64,
    /// Two-sided p-value (scipy `alternative="two-sided"`).
    pub p_two_sided: f64,
    /// Cliff's delta, `P(canary > stable) - P(canary < stable)` over all pairs, in
    /// -1..=1: how large the difference is, whatever the sample size. p-values only
    /// say whether there is a difference, and with thousands of requests even a
    /// negligible one is "significant"; the judge wants both.
    pub effect_size: f64,
}

/// Runs the two-sample Mann-Whitney U test of `canary` against `stable`.
///
/// `None` when either side has no sample (NaN samples are dropped first: a missing
/// measurement is not a value). Infinite values are ranked like any other (+inf is
/// the largest); `-0.0` and `0.0` are tied. Ranks are averaged over ties. Runs in
/// O(n log n) for n samples in all.
pub fn mann_whitney_u(canary: &[f64], stable: &[f64]) -> Option<MannWhitney> {
    // (value, is_canary)
    let mut pooled: Vec<(f64, bool)> = canary
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| (v, true))
        .chain(stable.iter().filter(|v| !v.is_nan()).map(|&v| (v, false)))
        .collect();
    let n1 = pooled.iter().filter(|(_, c)| *c).count();
    let n2 = pooled.len() - n1;
    if n1 == 0 || n2 == 0 {
        return None;
    }
    // Without NaN, partial_cmp is a total order (with -0.0 == 0.0).
    pooled.sort_unstable_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));

    // Rank sum of the canary and the tie term sum(t^3 - t) over groups of ties.
    let mut rank_sum = 0.0_f64;
    let mut tie_term = 0.0_f64;
    let mut before = 0usize; // values ranked before the current group
    for group in pooled.chunk_by(|a, b| a.0 == b.0) {
        let t = group.len();
        let in_canary = group.iter().filter(|(_, c)| *c).count();
        // Ranks before+1 ..= before+t, averaged.
        let avg_rank = (2 * before + t + 1) as f64 / 2.0;
        rank_sum += avg_rank * in_canary as f64;
        let tf = t as f64;
        tie_term += tf * tf * tf - tf;
        before += t;
    }

    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let u1 = rank_sum - n1f * (n1f + 1.0) / 2.0;
    let u2 = n1f * n2f - u1;
    let mu = n1f * n2f / 2.0;
    let n = n1f + n2f;
    // scipy's formula, in scipy's order of operations.
    let sigma = (n1f * n2f / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
    // sigma is 0 (or, by rounding, NaN) only when every value is tied; then every U
    // equals mu and the numerators below are exactly 0 or -0.5.
    let standardise = |numerator: f64| {
        if sigma > 0.0 && sigma.is_finite() {
            numerator / sigma
        } else if numerator > 0.0 {
            f64::INFINITY
        } else if numerator < 0.0 {
            f64::NEG_INFINITY
        } else {
            0.0
        }
    };
    // The continuity correction always subtracts 0.5 because the p-value is always
    // the upper tail of the U that the alternative points at (as in scipy).
    let p_of =
        |u: f64, factor: f64| (factor * normal_sf(standardise(u - mu - 0.5))).clamp(0.0, 1.0);

    Some(MannWhitney {
        n_canary: n1,
        n_stable: n2,
        u_canary: u1,
        u_stable: u2,
        z: standardise(u1 - mu),
        p_greater: p_of(u1, 1.0),
        p_less: p_of(u2, 1.0),
        p_two_sided: p_of(u1.max(u2), 2.0),
        effect_size: ((u1 - u2) / (n1f * n2f)).clamp(-1.0, 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sides_give_none() {
        assert!(mann_whitney_u(&[], &[1.0]).is_none());
        assert!(mann_whitney_u(&[1.0], &[]).is_none());
        assert!(mann_whitney_u(&[f64::NAN], &[1.0]).is_none());
    }

    #[test]
    fn u_counts_pairs() {
        // canary 3 > stable 1, 2; canary 1 ties stable 1 and < 2.
        let r = mann_whitney_u(&[3.0, 1.0], &[1.0, 2.0]).unwrap();
        assert_eq!(r.u_canary, 2.5);
        assert_eq!(r.u_stable, 1.5);
        assert_eq!(r.effect_size, 0.25);
        assert!(r.z > 0.0);
    }

    #[test]
    fn all_tied_is_no_evidence() {
        let r = mann_whitney_u(&[2.0; 30], &[2.0; 40]).unwrap();
        assert_eq!(r.z, 0.0);
        assert_eq!(r.effect_size, 0.0);
        assert_eq!((r.p_greater, r.p_less, r.p_two_sided), (1.0, 1.0, 1.0));
    }

    #[test]
    fn signed_zeros_tie_and_infinities_rank_last() {
        let r = mann_whitney_u(&[-0.0, f64::INFINITY], &[0.0, 1.0]).unwrap();
        // -0.0 ties 0.0 (0.5) and loses to 1.0; inf beats both (2).
        assert_eq!(r.u_canary, 2.5);
        let r = mann_whitney_u(&[f64::INFINITY; 3], &[f64::INFINITY; 3]).unwrap();
        assert_eq!(r.p_two_sided, 1.0);
        assert!(r.p_greater.is_finite() && r.z.is_finite());
    }

    #[test]
    fn complete_separation() {
        let canary: Vec<f64> = (100..150).map(f64::from).collect();
        let stable: Vec<f64> = (0..50).map(f64::from).collect();
        let r = mann_whitney_u(&canary, &stable).unwrap();
        assert_eq!(r.effect_size, 1.0);
        assert!(r.p_greater < 1e-15);
        assert!(r.p_less > 0.999_999);
    }
}
