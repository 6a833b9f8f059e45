//! Small numerical building blocks: the standard normal tail (for the Mann-Whitney
//! p-values) and sample quantiles (so the engine can turn per-request samples into a
//! p99 the same way everywhere).
//!
//! Written here rather than pulled from a crate because the crate needs two
//! functions, and both are tested against scipy's values.

use std::cmp::Ordering;
use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// `P(Z > z)` for a standard normal `Z` (scipy's `norm.sf`, i.e. `ndtr(-z)`).
///
/// Accurate to a few units in the 15th significant digit over the whole range, and
/// in relative terms far into the tail (`normal_sf(10.0)` is about `7.6e-24`, not
/// 0), which the p-values of large samples need. `+inf` gives 0, `-inf` gives 1 and
/// NaN gives NaN.
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    0.5 * erfc(z * FRAC_1_SQRT_2)
}

/// The complementary error function, `1 - erf(x)`.
///
/// Below 2.5 in absolute value: the all-positive series
/// `erf(x) = 2/sqrt(pi) * exp(-x^2) * sum 2^n x^(2n+1) / (1*3*...*(2n+1))`, which
/// has no cancellation. From 2.5 up: the continued fraction
/// `erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))`
/// evaluated with the modified Lentz method, which keeps relative accuracy in the
/// far tail. Negative arguments use `erfc(-x) = 2 - erfc(x)`.
fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.5 {
        return 1.0 - erf_series(x);
    }
    if x > 27.3 {
        // exp(-x^2) underflows past every f64 here.
        return 0.0;
    }
    const TINY: f64 = 1e-300;
    // f = b0 + a1/(b1 + a2/(b2 + ...)) with b_k = x and a_k = k/2.
    let mut f = x;
    let mut c = f;
    let mut d = 0.0;
    for k in 1..500 {
        let a = f64::from(k) * 0.5;
        d = x + a * d;
        if d == 0.0 {
            d = TINY;
        }
        c = x + a / c;
        if c == 0.0 {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / PI.sqrt() / f
}

/// `erf(x)` for `0 <= x < 2.5` from the all-positive series (see [`erfc`]).
fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    for n in 0..200 {
        term *= 2.0 * x2 / f64::from(2 * n + 3);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    2.0 / PI.sqrt() * (-x2).exp() * sum
}

/// The `q`-quantile (0 to 1) of `samples` with linear interpolation between order
/// statistics: numpy's default (`numpy.quantile(..., method="linear")`, type 7 of
/// Hyndman & Fan), so that a p99 computed by runway matches one computed by hand.
///
/// NaN samples are ignored (a missing measurement is not a value). `None` when no
/// sample is left or `q` is outside 0..=1 or NaN. Infinite samples are ordered like
/// any other; a quantile that lands on one is infinite.
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_unstable_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor();
    let frac = pos - lo;
    // `pos` is in 0..=len-1, so both conversions stay in bounds; `get` keeps it so.
    let lo_idx = lo as usize;
    let lo_val = *sorted.get(lo_idx)?;
    if frac == 0.0 {
        return Some(lo_val);
    }
    let hi_val = *sorted.get(lo_idx + 1).unwrap_or(&lo_val);
    if lo_val == hi_val {
        return Some(lo_val);
    }
    Some(lo_val + (hi_val - lo_val) * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values of scipy.stats.norm.sf (scipy 1.17.1).
    #[test]
    fn normal_sf_matches_scipy() {
        let cases = [
            (0.0, 0.5),
            (0.5, 0.3085375387259869),
            (1.0, 0.15865525393145707),
            (-1.0, 0.8413447460685429),
            (1.959963984540054, 0.025),
            (2.5, 0.006209665325776132),
            (3.0, 0.0013498980316300933),
            (3.5, 0.00023262907903552502),
            (5.0, 2.866515718791933e-07),
            (6.0, 9.865876450376946e-10),
            (10.0, 7.61985302416047e-24),
            (20.0, 2.7536241186061556e-89),
            (37.0, 5.7255712225239266e-300),
            (-6.0, 0.9999999990134123),
        ];
        for (z, want) in cases {
            let got = normal_sf(z);
            let rel = ((got - want) / want).abs();
            assert!(
                rel < 1e-12,
                "normal_sf({z}) = {got:e}, want {want:e} (rel {rel:e})"
            );
        }
        assert_eq!(normal_sf(f64::INFINITY), 0.0);
        assert_eq!(normal_sf(f64::NEG_INFINITY), 1.0);
        assert!(normal_sf(f64::NAN).is_nan());
        assert_eq!(normal_sf(40.0), 0.0);
    }

    #[test]
    fn erfc_is_continuous_at_the_switch() {
        let below = erfc(2.5 - 1e-12);
        let at = erfc(2.5);
        assert!(((below - at) / at).abs() < 1e-10, "{below} vs {at}");
    }

    #[test]
    fn quantile_matches_numpy_linear() {
        let xs = [3.0, 1.0, 2.0, 4.0, 10.0];
        assert_eq!(quantile(&xs, 0.0), Some(1.0));
        assert_eq!(quantile(&xs, 1.0), Some(10.0));
        assert_eq!(quantile(&xs, 0.5), Some(3.0));
        // numpy.quantile([1,2,3,4,10], 0.9) == 7.6
        let q = quantile(&xs, 0.9).unwrap();
        assert!((q - 7.6).abs() < 1e-12, "{q}");
        assert_eq!(quantile(&[5.0], 0.99), Some(5.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[f64::NAN], 0.5), None);
        assert_eq!(quantile(&[1.0, f64::NAN, 3.0], 0.5), Some(2.0));
        assert_eq!(quantile(&xs, 1.5), None);
        assert_eq!(quantile(&xs, f64::NAN), None);
        assert_eq!(quantile(&[1.0, f64::INFINITY], 1.0), Some(f64::INFINITY));
        assert_eq!(quantile(&[1.0, f64::INFINITY], 0.0), Some(1.0));
    }
}
