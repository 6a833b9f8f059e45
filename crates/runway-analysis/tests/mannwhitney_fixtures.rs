//! The Mann-Whitney U test against scipy: every case of
//! `tests/fixtures/mannwhitney.json` (made by `tests/fixtures/make_mannwhitney.py`).

use runway_analysis::mann_whitney_u;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixtures {
    scipy_version: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    canary: Vec<f64>,
    stable: Vec<f64>,
    u_canary: f64,
    u_stable: f64,
    p_greater: f64,
    p_less: f64,
    p_two_sided: f64,
}

fn fixtures() -> Fixtures {
    serde_json::from_str(include_str!("fixtures/mannwhitney.json")).expect("valid fixture file")
}

fn close_rel(got: f64, want: f64, tol: f64) -> bool {
    if want == 0.0 {
        got.abs() <= tol
    } else {
        ((got - want) / want).abs() <= tol
    }
}

#[test]
fn every_case_matches_scipy() {
    let fixtures = fixtures();
    assert!(
        fixtures.cases.len() >= 20,
        "the fixture file looks truncated"
    );
    let mut failures = Vec::new();
    for case in &fixtures.cases {
        let Some(got) = mann_whitney_u(&case.canary, &case.stable) else {
            failures.push(format!("{}: returned None", case.name));
            continue;
        };
        assert_eq!(got.n_canary, case.canary.len(), "{}", case.name);
        assert_eq!(got.n_stable, case.stable.len(), "{}", case.name);
        let checks = [
            ("u_canary", got.u_canary, case.u_canary, true),
            ("u_stable", got.u_stable, case.u_stable, true),
            ("p_greater", got.p_greater, case.p_greater, false),
            ("p_less", got.p_less, case.p_less, false),
            ("p_two_sided", got.p_two_sided, case.p_two_sided, false),
        ];
        for (what, got, want, is_u) in checks {
            let ok = if is_u {
                close_rel(got, want, 1e-9)
            } else {
                (got - want).abs() <= 1e-6
            };
            if !ok {
                failures.push(format!(
                    "{}: {what} = {got:e}, scipy says {want:e}",
                    case.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "differences from scipy {}:\n{}",
        fixtures.scipy_version,
        failures.join("\n")
    );
}

/// Far tighter than the required 1e-6 where the p-values are not tiny: the same
/// formula in the same order should agree to rounding.
#[test]
fn p_values_agree_to_rounding() {
    for case in fixtures().cases {
        let got = mann_whitney_u(&case.canary, &case.stable).unwrap();
        for (got, want) in [
            (got.p_greater, case.p_greater),
            (got.p_less, case.p_less),
            (got.p_two_sided, case.p_two_sided),
        ] {
            if want > 1e-12 {
                assert!(
                    close_rel(got, want, 1e-9),
                    "{}: {got:e} vs {want:e}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn effect_size_and_z_are_consistent_with_u() {
    for case in fixtures().cases {
        let r = mann_whitney_u(&case.canary, &case.stable).unwrap();
        let pairs = (case.canary.len() * case.stable.len()) as f64;
        assert!(
            close_rel(r.u_canary + r.u_stable, pairs, 1e-12),
            "{}",
            case.name
        );
        let delta = (r.u_canary - r.u_stable) / pairs;
        assert!((r.effect_size - delta).abs() < 1e-12, "{}", case.name);
        assert!((-1.0..=1.0).contains(&r.effect_size), "{}", case.name);
        // z points the way the canary leans.
        if r.u_canary > r.u_stable {
            assert!(r.z > 0.0, "{}", case.name);
        } else if r.u_canary < r.u_stable {
            assert!(r.z < 0.0, "{}", case.name);
        } else {
            assert_eq!(r.z, 0.0, "{}", case.name);
        }
    }
}

/// Swapping the sides swaps U, the one-sided p-values and the sign of the effect.
#[test]
fn swapping_sides_is_symmetric() {
    for case in fixtures().cases {
        let a = mann_whitney_u(&case.canary, &case.stable).unwrap();
        let b = mann_whitney_u(&case.stable, &case.canary).unwrap();
        assert_eq!(a.u_canary, b.u_stable, "{}", case.name);
        assert_eq!(a.p_greater, b.p_less, "{}", case.name);
        assert_eq!(a.p_two_sided, b.p_two_sided, "{}", case.name);
        assert_eq!(a.effect_size, -b.effect_size, "{}", case.name);
    }
}

/// NaN samples are dropped; the rest is tested as if they were not there.
#[test]
fn nan_samples_are_ignored() {
    let case = fixtures()
        .cases
        .into_iter()
        .find(|c| c.name == "small")
        .unwrap();
    let mut canary = case.canary.clone();
    canary.insert(2, f64::NAN);
    let mut stable = case.stable.clone();
    stable.push(f64::NAN);
    let with_nan = mann_whitney_u(&canary, &stable).unwrap();
    let without = mann_whitney_u(&case.canary, &case.stable).unwrap();
    assert_eq!(with_nan, without);
}

/// Order of the inputs does not matter (ranks only).
#[test]
fn input_order_does_not_matter() {
    let case = fixtures()
        .cases
        .into_iter()
        .find(|c| c.name == "heavy_ties_integers")
        .unwrap();
    let mut canary = case.canary.clone();
    canary.reverse();
    let mut stable = case.stable.clone();
    stable.sort_by(|a, b| b.partial_cmp(a).unwrap());
    assert_eq!(
        mann_whitney_u(&canary, &stable),
        mann_whitney_u(&case.canary, &case.stable)
    );
}
