//! The condition grammar (parse, display, errors) and evaluation of every kind.

use runway_analysis::{
    Comparison, Condition, Direction, MetricWindow, StatisticalOptions, Verdict,
};

use Comparison::*;

fn abs(op: Comparison, threshold: f64) -> Condition {
    Condition::Absolute { op, threshold }
}
fn factor(op: Comparison, factor: f64) -> Condition {
    Condition::RelativeFactor { op, factor }
}
fn offset(op: Comparison, offset: f64) -> Condition {
    Condition::RelativeOffset { op, offset }
}
fn stat(direction: Direction) -> Condition {
    Condition::Statistical { direction }
}

/// (input, parsed, canonical text)
fn grammar_table() -> Vec<(&'static str, Condition, &'static str)> {
    vec![
        ("> 0.05", abs(Greater, 0.05), "> 0.05"),
        (">0.05", abs(Greater, 0.05), "> 0.05"),
        ("  >   0.05  ", abs(Greater, 0.05), "> 0.05"),
        (">= 0.05", abs(GreaterOrEqual, 0.05), ">= 0.05"),
        ("< 0.99", abs(Less, 0.99), "< 0.99"),
        ("<= 0.99", abs(LessOrEqual, 0.99), "<= 0.99"),
        ("<=.5", abs(LessOrEqual, 0.5), "<= 0.5"),
        ("> 5", abs(Greater, 5.0), "> 5"),
        ("> 5.", abs(Greater, 5.0), "> 5"),
        ("> -1.5", abs(Greater, -1.5), "> -1.5"),
        ("> +2", abs(Greater, 2.0), "> 2"),
        ("> 1e-3", abs(Greater, 0.001), "> 0.001"),
        ("> 2.5E2", abs(Greater, 250.0), "> 250"),
        ("> 5%", abs(Greater, 0.05), "> 0.05"),
        ("> 0.5 %", abs(Greater, 0.005), "> 0.005"),
        ("> 2x stable", factor(Greater, 2.0), "> 2x stable"),
        ("> 1.5x stable", factor(Greater, 1.5), "> 1.5x stable"),
        (">2xstable", factor(Greater, 2.0), "> 2x stable"),
        ("> 2 x stable", factor(Greater, 2.0), "> 2x stable"),
        ("> 3X Stable", factor(Greater, 3.0), "> 3x stable"),
        ("> 3× stable", factor(Greater, 3.0), "> 3x stable"),
        ("< 0.8x stable", factor(Less, 0.8), "< 0.8x stable"),
        (
            ">= 1.1x stable",
            factor(GreaterOrEqual, 1.1),
            ">= 1.1x stable",
        ),
        ("> stable + 0.01", offset(Greater, 0.01), "> stable + 0.01"),
        (">stable+0.01", offset(Greater, 0.01), "> stable + 0.01"),
        ("< stable - 0.02", offset(Less, -0.02), "< stable - 0.02"),
        ("<= STABLE - 5", offset(LessOrEqual, -5.0), "<= stable - 5"),
        ("> stable", offset(Greater, 0.0), "> stable"),
        ("> stable + 0", offset(Greater, 0.0), "> stable"),
        (
            "> stable (mann-whitney)",
            stat(Direction::Greater),
            "> stable (mann-whitney)",
        ),
        (
            "< stable (mann-whitney)",
            stat(Direction::Less),
            "< stable (mann-whitney)",
        ),
        (
            ">stable(Mann-Whitney)",
            stat(Direction::Greater),
            "> stable (mann-whitney)",
        ),
        (
            "> stable ( mann whitney )",
            stat(Direction::Greater),
            "> stable (mann-whitney)",
        ),
    ]
}

#[test]
fn grammar_parses_and_displays_canonically() {
    for (input, want, canonical) in grammar_table() {
        let got = Condition::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(got, want, "{input:?}");
        assert_eq!(got.to_string(), canonical, "{input:?}");
        // Display round-trips: parsing the canonical text gives the same condition.
        assert_eq!(Condition::parse(canonical), Ok(want), "{canonical:?}");
        assert_eq!(canonical.parse::<Condition>(), Ok(want), "{canonical:?}");
    }
}

#[test]
fn display_round_trips_awkward_numbers() {
    for c in [
        abs(Greater, 0.1 + 0.2),
        abs(Less, 1e-12),
        abs(Greater, 1e21),
        factor(Greater, 1.0 / 3.0),
        offset(Less, -1e-9),
        offset(Greater, 123.456),
    ] {
        assert_eq!(Condition::parse(&c.to_string()), Ok(c), "{c}");
    }
}

/// (input, a fragment the message must contain)
#[test]
fn bad_inputs_have_good_messages() {
    let cases = [
        ("", "empty"),
        ("   ", "empty"),
        ("0.05", "must start with a comparison"),
        ("stable", "must start with a comparison"),
        ("= 0.05", "equality"),
        ("== 0.05", "equality"),
        ("!= 0.05", "equality"),
        (">", "nothing after \">\""),
        ("> abc", "expected a number or \"stable\""),
        (
            "> 0.05 errors",
            "unexpected \"errors\" after the number 0.05",
        ),
        ("> 1e999", "not a finite number"),
        ("> 2x", "expected \"stable\" after \"2x\", found nothing"),
        ("> 2x canary", "expected \"stable\" after \"2x\""),
        ("> 0x stable", "factor must be greater than 0"),
        ("> -2x stable", "factor must be greater than 0"),
        ("> 2x stable + 1", "unexpected \"+ 1\" after \"2x stable\""),
        ("> 2x stable (mann-whitney)", "without a factor"),
        ("> stable +", "expected a number after \"stable +\""),
        ("> stable + -0.01", "write \"stable - 0.01\""),
        ("> stable + 10%", "ambiguous"),
        (
            "> stable * 2",
            "expected \"+ <number>\", \"- <number>\" or \"(mann-whitney)\"",
        ),
        ("> stable + 0.01 + 0.02", "unexpected \"+ 0.02\""),
        ("> stable (t-test)", "unknown statistical test \"t-test\""),
        ("> stable (mann-whitney", "missing \")\""),
        (">= stable (mann-whitney)", "takes > or <, not >="),
        ("<= stable (mann-whitney)", "takes > or <, not <="),
        ("> stable (mann-whitney) please", "unexpected \"please\""),
        ("> 5%%", "unexpected \"%\" after the percentage"),
        ("> stables", "expected a number or \"stable\""),
    ];
    for (input, fragment) in cases {
        let err = Condition::parse(input).expect_err(input);
        assert!(
            err.contains(fragment),
            "{input:?}: message {err:?} lacks {fragment:?}"
        );
        // Every message quotes the input and shows the accepted forms.
        assert!(err.contains(&format!("{:?}", input.trim())), "{err}");
        assert!(err.contains("accepted forms"), "{err}");
        assert!(err.contains("\"> 2x stable\""), "{err}");
        assert!(err.contains("\"> stable (mann-whitney)\""), "{err}");
    }
}

#[test]
fn serde_uses_the_canonical_text() {
    let c = Condition::parse(">1.5xstable").unwrap();
    assert_eq!(serde_json::to_string(&c).unwrap(), "\"> 1.5x stable\"");
    let back: Condition = serde_json::from_str("\"< stable - 0.02\"").unwrap();
    assert_eq!(back, offset(Less, -0.02));
    let err = serde_json::from_str::<Condition>("\"> lots\"").unwrap_err();
    assert!(err.to_string().contains("accepted forms"), "{err}");
}

fn opts() -> StatisticalOptions {
    StatisticalOptions::default()
}

fn eval(cond: &str, window: &MetricWindow) -> (Verdict, String) {
    let e = Condition::parse(cond)
        .unwrap()
        .evaluate("m", window, &opts());
    (e.verdict, e.reason)
}

fn values(canary: Option<f64>, stable: Option<f64>) -> MetricWindow {
    MetricWindow::values(canary, stable)
}

#[test]
fn absolute_conditions() {
    let e = Condition::parse("> 0.05").unwrap().evaluate(
        "error_rate",
        &values(Some(0.214), None),
        &opts(),
    );
    assert_eq!(e.verdict, Verdict::Fail);
    assert_eq!(e.reason, "error_rate 0.214 > 0.05");

    assert_eq!(
        eval("> 0.05", &values(Some(0.004), Some(0.9))),
        (Verdict::Pass, "m 0.004 is not > 0.05".to_string())
    );
    // Boundaries.
    assert_eq!(eval("> 0.05", &values(Some(0.05), None)).0, Verdict::Pass);
    assert_eq!(eval(">= 0.05", &values(Some(0.05), None)).0, Verdict::Fail);
    assert_eq!(eval("< 0.99", &values(Some(0.98), None)).0, Verdict::Fail);
    assert_eq!(eval("<= 0.99", &values(Some(0.99), None)).0, Verdict::Fail);
    assert_eq!(eval("< 0.99", &values(Some(0.995), None)).0, Verdict::Pass);
    assert_eq!(eval("> 5%", &values(Some(0.06), None)).0, Verdict::Fail);
}

#[test]
fn missing_or_non_finite_canary_is_inconclusive() {
    for cond in ["> 0.05", "> 2x stable", "> stable + 0.01"] {
        for canary in [
            None,
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
        ] {
            let (verdict, reason) = eval(cond, &values(canary, Some(0.1)));
            assert_eq!(verdict, Verdict::Inconclusive, "{cond} {canary:?}");
            assert!(reason.starts_with("m: "), "{reason}");
            assert!(reason.contains("canary"), "{reason}");
        }
    }
    assert_eq!(eval("> 0.05", &values(None, None)).1, "m: no canary value");
}

#[test]
fn relative_factor_conditions() {
    let e = Condition::parse("> 2x stable").unwrap().evaluate(
        "latency_p99",
        &values(Some(0.912), Some(0.301)),
        &opts(),
    );
    assert_eq!(e.verdict, Verdict::Fail);
    assert_eq!(e.reason, "latency_p99 0.912 > 2x stable (0.301 -> 0.602)");

    let (v, r) = eval("> 2x stable", &values(Some(0.35), Some(0.301)));
    assert_eq!(v, Verdict::Pass);
    assert_eq!(r, "m 0.35 is not > 2x stable (0.301 -> 0.602)");

    assert_eq!(
        eval("< 0.5x stable", &values(Some(40.0), Some(100.0))).0,
        Verdict::Fail
    );
    assert_eq!(
        eval("< 0.5x stable", &values(Some(60.0), Some(100.0))).0,
        Verdict::Pass
    );
    // A stable value of 0 is a value: anything above it is above 3x it.
    assert_eq!(
        eval("> 3x stable", &values(Some(0.001), Some(0.0))).0,
        Verdict::Fail
    );
    assert_eq!(
        eval("> 3x stable", &values(Some(0.0), Some(0.0))).0,
        Verdict::Pass
    );
}

#[test]
fn relative_without_stable_is_inconclusive_never_pass() {
    for cond in ["> 2x stable", "< stable - 0.02", "> stable"] {
        let (v, r) = eval(cond, &values(Some(0.0), None));
        assert_eq!(v, Verdict::Inconclusive, "{cond}");
        assert_eq!(r, "m: no stable value to compare with");
        for bad in [f64::NAN, f64::INFINITY] {
            let (v, r) = eval(cond, &values(Some(0.0), Some(bad)));
            assert_eq!(v, Verdict::Inconclusive, "{cond}");
            assert!(r.contains("stable value is"), "{r}");
        }
    }
    // An overflowing bound cannot be compared either.
    let (v, r) = eval("> 2x stable", &values(Some(1.0), Some(f64::MAX)));
    assert_eq!(v, Verdict::Inconclusive);
    assert!(r.contains("overflows"), "{r}");
}

#[test]
fn relative_offset_conditions() {
    let (v, r) = eval("> stable + 0.01", &values(Some(0.034), Some(0.012)));
    assert_eq!(v, Verdict::Fail);
    assert_eq!(r, "m 0.034 > stable + 0.01 (0.012 -> 0.022)");
    assert_eq!(
        eval("> stable + 0.01", &values(Some(0.02), Some(0.012))).0,
        Verdict::Pass
    );
    let (v, r) = eval("< stable - 0.02", &values(Some(0.95), Some(0.99)));
    assert_eq!(v, Verdict::Fail);
    assert_eq!(r, "m 0.95 < stable - 0.02 (0.99 -> 0.97)");
    assert_eq!(
        eval("> stable", &values(Some(0.5), Some(0.4))).0,
        Verdict::Fail
    );
    assert_eq!(
        eval("> stable", &values(Some(0.4), Some(0.4))).0,
        Verdict::Pass
    );
}

/// Deterministic "samples" for the statistical condition: `n` evenly spread values
/// from `lo` to `hi`.
fn spread(n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect()
}

#[test]
fn statistical_greater_fails_on_a_clear_shift() {
    let w = MetricWindow::samples(spread(100, 0.3, 0.9), spread(100, 0.1, 0.5));
    let e = Condition::parse("> stable (mann-whitney)")
        .unwrap()
        .evaluate("latency", &w, &opts());
    assert_eq!(e.verdict, Verdict::Fail, "{}", e.reason);
    assert!(
        e.reason
            .starts_with("latency mann-whitney: canary greater than stable, p="),
        "{}",
        e.reason
    );
    assert!(e.reason.contains("effect 0."), "{}", e.reason);
    // The other direction passes on the same data.
    let (v, r) = eval("< stable (mann-whitney)", &w);
    assert_eq!(v, Verdict::Pass, "{r}");
    assert!(r.contains("not significantly less"), "{r}");
}

#[test]
fn statistical_less_fails_on_a_downward_shift() {
    let w = MetricWindow::samples(spread(50, 0.0, 0.5), spread(50, 0.4, 0.9));
    let (v, r) = eval("< stable (mann-whitney)", &w);
    assert_eq!(v, Verdict::Fail, "{r}");
    assert!(r.contains("canary less than stable"), "{r}");
    assert!(r.contains("effect -0."), "{r}");
}

#[test]
fn statistical_needs_a_large_enough_effect() {
    // 20000 samples per side shifted by 2% of the range: significant, negligible.
    let w = MetricWindow::samples(spread(20000, 0.02, 1.02), spread(20000, 0.0, 1.0));
    let e = Condition::parse("> stable (mann-whitney)")
        .unwrap()
        .evaluate("latency", &w, &opts());
    assert_eq!(e.verdict, Verdict::Pass, "{}", e.reason);
    assert!(e.reason.contains("but effect"), "{}", e.reason);
    assert!(e.reason.contains("is below 0.2"), "{}", e.reason);
    // With min_effect 0 the same data fails.
    let lax = StatisticalOptions {
        min_effect: 0.0,
        ..StatisticalOptions::default()
    };
    let e = Condition::parse("> stable (mann-whitney)")
        .unwrap()
        .evaluate("latency", &w, &lax);
    assert_eq!(e.verdict, Verdict::Fail, "{}", e.reason);
}

#[test]
fn statistical_confidence_is_respected() {
    // A modest shift on few samples: p between 0.001 and 0.05.
    let w = MetricWindow::samples(spread(25, 0.15, 1.15), spread(25, 0.0, 1.0));
    let base = Condition::parse("> stable (mann-whitney)").unwrap();
    let low_bar = StatisticalOptions {
        confidence: 0.6,
        min_effect: 0.0,
        ..StatisticalOptions::default()
    };
    let high_bar = StatisticalOptions {
        confidence: 0.999,
        min_effect: 0.0,
        ..StatisticalOptions::default()
    };
    assert_eq!(base.evaluate("l", &w, &low_bar).verdict, Verdict::Fail);
    assert_eq!(base.evaluate("l", &w, &high_bar).verdict, Verdict::Pass);
}

#[test]
fn statistical_with_too_few_samples_is_inconclusive() {
    let cond = Condition::parse("> stable (mann-whitney)").unwrap();
    let cases = [
        (spread(19, 5.0, 6.0), spread(100, 0.0, 1.0), 19, 100),
        (spread(100, 5.0, 6.0), spread(19, 0.0, 1.0), 100, 19),
        (vec![], vec![], 0, 0),
    ];
    for (canary, stable, n1, n2) in cases {
        let e = cond.evaluate("latency", &MetricWindow::samples(canary, stable), &opts());
        assert_eq!(e.verdict, Verdict::Inconclusive);
        assert_eq!(
            e.reason,
            format!(
                "latency: mann-whitney: only {n1} canary and {n2} stable samples, need 20 per side"
            )
        );
    }
    // NaN samples do not count toward the minimum.
    let mut canary = spread(19, 5.0, 6.0);
    canary.extend([f64::NAN; 10]);
    let e = cond.evaluate(
        "latency",
        &MetricWindow::samples(canary, spread(50, 0.0, 1.0)),
        &opts(),
    );
    assert_eq!(e.verdict, Verdict::Inconclusive, "{}", e.reason);
    // Exactly 20 per side is enough.
    let e = cond.evaluate(
        "latency",
        &MetricWindow::samples(spread(20, 5.0, 6.0), spread(20, 0.0, 1.0)),
        &opts(),
    );
    assert_eq!(e.verdict, Verdict::Fail, "{}", e.reason);
    // min_samples is configurable; 0 still needs one sample per side.
    let any = StatisticalOptions {
        min_samples: 0,
        ..StatisticalOptions::default()
    };
    let e = cond.evaluate("latency", &MetricWindow::samples(vec![], vec![1.0]), &any);
    assert_eq!(e.verdict, Verdict::Inconclusive, "{}", e.reason);
}

#[test]
fn statistical_with_invalid_options_is_inconclusive() {
    let cond = Condition::parse("> stable (mann-whitney)").unwrap();
    let w = MetricWindow::samples(spread(100, 5.0, 6.0), spread(100, 0.0, 1.0));
    for bad in [
        StatisticalOptions {
            confidence: f64::NAN,
            ..StatisticalOptions::default()
        },
        StatisticalOptions {
            confidence: 1.0,
            ..StatisticalOptions::default()
        },
        StatisticalOptions {
            confidence: 0.3,
            ..StatisticalOptions::default()
        },
        StatisticalOptions {
            min_effect: f64::NAN,
            ..StatisticalOptions::default()
        },
        StatisticalOptions {
            min_effect: 1.5,
            ..StatisticalOptions::default()
        },
    ] {
        let e = cond.evaluate("latency", &w, &bad);
        assert_eq!(e.verdict, Verdict::Inconclusive, "{bad:?}");
        assert!(
            e.reason.contains("invalid statistical options"),
            "{}",
            e.reason
        );
    }
}

#[test]
fn statistical_on_identical_constant_samples_passes() {
    let w = MetricWindow::samples(vec![0.1; 50], vec![0.1; 50]);
    let (v, r) = eval("> stable (mann-whitney)", &w);
    assert_eq!(v, Verdict::Pass, "{r}");
    assert!(r.contains("p=1"), "{r}");
}

#[test]
fn statistical_ignores_values_and_threshold_conditions_ignore_samples() {
    // Values say "much worse" but the samples are identical.
    let mut w = MetricWindow::samples(spread(30, 0.0, 1.0), spread(30, 0.0, 1.0));
    w.canary = Some(100.0);
    w.stable = Some(1.0);
    assert_eq!(eval("> stable (mann-whitney)", &w).0, Verdict::Pass);
    assert_eq!(eval("> 2x stable", &w).0, Verdict::Fail);
}

#[test]
fn needs_stable_and_samples() {
    assert!(!abs(Greater, 1.0).needs_stable());
    assert!(factor(Greater, 1.0).needs_stable());
    assert!(offset(Greater, 1.0).needs_stable());
    assert!(stat(Direction::Less).needs_stable());
    assert!(stat(Direction::Less).needs_samples());
    assert!(!factor(Greater, 1.0).needs_samples());
}

#[test]
fn nothing_panics_on_hostile_input() {
    let texts = [
        "> \u{0}",
        ">\u{301}",
        "> 1e",
        "> 1e+",
        "> .",
        "> -.",
        "> --1",
        "> 1..2",
        "<>",
        "> stable (",
        "> stable ()",
        "> ×",
        "> 2×",
        "> 9999999999999999999999999999",
        "> 0.0000000000000000000000000000001",
        ">= stable - ",
        "> stable - %",
        "> 2x stable\u{a0}",
        "\u{feff}> 1",
    ];
    for t in texts {
        let _ = Condition::parse(t);
    }
    let windows = [
        MetricWindow::default(),
        MetricWindow {
            canary: Some(f64::NAN),
            stable: Some(f64::NEG_INFINITY),
            canary_samples: vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0],
            stable_samples: vec![f64::INFINITY; 40],
            ..MetricWindow::default()
        },
        MetricWindow::samples(vec![f64::INFINITY; 40], vec![f64::NEG_INFINITY; 40]),
    ];
    for (input, _, _) in grammar_table() {
        let c = Condition::parse(input).unwrap();
        // The first two windows have no usable data for any condition.
        for w in windows.iter().take(2) {
            let e = c.evaluate("m", w, &opts());
            assert_eq!(
                e.verdict,
                Verdict::Inconclusive,
                "{input} on {w:?}: {}",
                e.reason
            );
        }
    }
    // Infinite samples are values: +inf canary vs -inf stable is a clear "greater".
    let e = stat(Direction::Greater).evaluate("m", &windows[2], &opts());
    assert_eq!(e.verdict, Verdict::Fail);
}
