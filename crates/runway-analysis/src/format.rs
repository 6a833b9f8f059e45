//! How numbers and durations appear in the one-line reasons: short enough to read at
//! a glance in a terminal, precise enough to see why a threshold was crossed.

use std::time::Duration;

/// A measured value with 4 significant digits, trailing zeros trimmed: `0.2143`,
/// `0.05`, `1234`, `3.12e-5`, `NaN`, `inf`.
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let a = x.abs();
    if !(1e-4..1e9).contains(&a) {
        return scientific(format!("{x:.3e}"));
    }
    // floor(log10) of a value in 1e-4..1e9 is in -4..=8.
    let magnitude = a.log10().floor() as i32;
    let decimals = usize::try_from(3 - magnitude).unwrap_or(0);
    trim(format!("{x:.decimals$}"))
}

/// A p-value: like [`num`], but tiny ones in scientific notation with 2 digits.
pub(crate) fn p_value(p: f64) -> String {
    if p.is_finite() && p != 0.0 && p.abs() < 1e-4 {
        return scientific(format!("{p:.1e}"));
    }
    num(p)
}

/// `3.120e-5` -> `3.12e-5`, `2.000e-7` -> `2e-7`.
fn scientific(s: String) -> String {
    match s.split_once('e') {
        Some((mantissa, exponent)) => format!("{}e{exponent}", trim(mantissa.to_string())),
        None => s,
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A duration as `40s`, `5m`, `1m30s`, `2h`, `1.5s`, `250ms`.
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if secs == 0 {
        if nanos == 0 {
            return "0s".to_string();
        }
        if nanos % 1_000_000 == 0 {
            return format!("{}ms", nanos / 1_000_000);
        }
        return trim(format!("{:.3}", d.as_secs_f64())) + "s";
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 || nanos > 0 {
        if nanos > 0 {
            out += &trim(format!("{:.3}", s as f64 + f64::from(nanos) / 1e9));
        } else {
            out += &s.to_string();
        }
        out += "s";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(num(0.214), "0.214");
        assert_eq!(num(0.21437), "0.2144");
        assert_eq!(num(0.05), "0.05");
        assert_eq!(num(0.0003), "0.0003");
        assert_eq!(num(1234.5678), "1235");
        assert_eq!(num(3.0), "3");
        assert_eq!(num(-0.5), "-0.5");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(3.12e-5), "3.12e-5");
        assert_eq!(num(2e-7), "2e-7");
        assert_eq!(num(f64::NAN), "NaN");
        assert_eq!(num(f64::INFINITY), "inf");
        assert_eq!(p_value(0.00031), "0.00031");
        assert_eq!(p_value(3.1e-12), "3.1e-12");
        assert_eq!(p_value(0.0), "0");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_secs(40)), "40s");
        assert_eq!(duration(Duration::from_secs(300)), "5m");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(7200)), "2h");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::ZERO), "0s");
    }
}
