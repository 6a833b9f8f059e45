//! Progressive delivery: `kind = "canary"` and `kind = "blue-green"` in [strategy], and
//! the [analysis] section that judges a rollout. Valid files first, then their JSON
//! form, then every rule with the position, message and hint of its error.

mod common;

use common::{assert_error, error_of, parse};
use std::time::Duration;

use runway_spec::{
    AnalysisMetric, AnalysisSpec, BlueGreenSpec, CanarySpec, CanaryStep, Dur, MetricSource, Pause,
    ProxyMetric, RollingSpec, Spec, StrategySpec,
};

/// The sections every sample starts with (lines 1-10).
const BASE: &str = r#"[service]
name = "web"
listen = "127.0.0.1:8080"

[run]
command = ["python3", "app.py", "--port", "{port}"]
replicas = 3

[health]
path = "/health/ready"
"#;

/// The [strategy] and [analysis] of the issue, exactly as written there (lines 12-35
/// once appended to BASE with a blank line).
const ISSUE: &str = r#"[strategy]
kind = "canary"
steps = [
  { weight = 10, pause = "10s" },
  { weight = 50, pause = "10s" },
  { weight = 100 },
]

[analysis]
interval = "2s"
failure_limit = 2            # consecutive failed intervals that trigger the rollback
min_requests = 50            # fewer requests to the canary in an interval: inconclusive, never a pass

[[analysis.metrics]]
name = "error-rate"
source = "proxy"
metric = "error_rate"        # share of 5xx and failed requests
fail_if = "> 0.05"

[[analysis.metrics]]
name = "p99"
source = "proxy"
metric = "latency_p99"
fail_if = "> 2x stable"      # relative to the stable release in the same window
"#;

/// BASE followed by `rest` (which starts on line 12).
fn with(rest: &str) -> String {
    format!("{BASE}\n{rest}")
}

/// The issue's file.
fn issue() -> String {
    with(ISSUE)
}

/// The issue's file with the first occurrence of `from` replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    let text = issue();
    assert!(text.contains(from), "the issue's file has no {from:?}");
    text.replacen(from, to, 1)
}

fn step(weight: u32, pause: Pause) -> CanaryStep {
    CanaryStep { weight, pause }
}

fn proxy_metric(name: &str, metric: ProxyMetric, fail_if: &str) -> AnalysisMetric {
    AnalysisMetric {
        name: name.into(),
        source: MetricSource::Proxy,
        metric: Some(metric),
        query: None,
        fail_if: fail_if.into(),
        pause_if: None,
        for_: None,
        confidence: None,
        min_effect: None,
    }
}

// ---------------------------------------------------------------------------------------
// Valid files

#[test]
fn accepts_the_issue_file_exactly() {
    let spec = parse(&issue());
    assert_eq!(spec.service.name, "web");
    assert_eq!(spec.run.replicas, 3);
    assert_eq!(spec.health.path, "/health/ready");
    assert_eq!(spec.strategy.kind(), "canary");
    assert_eq!(
        spec.strategy,
        StrategySpec::Canary(CanarySpec {
            steps: vec![
                step(10, Pause::For(Dur::from_secs(10))),
                step(50, Pause::For(Dur::from_secs(10))),
                step(100, Pause::None),
            ],
            sticky: false,
        })
    );
    assert_eq!(
        spec.analysis,
        Some(AnalysisSpec {
            interval: Dur::from_secs(2),
            failure_limit: 2,
            min_requests: 50,
            inconclusive_limit: 3,
            max_intervals: AnalysisSpec::DEFAULT_MAX_INTERVALS,
            prometheus: None,
            requests: None,
            metrics: vec![
                proxy_metric("error-rate", ProxyMetric::ErrorRate, "> 0.05"),
                proxy_metric("p99", ProxyMetric::LatencyP99, "> 2x stable"),
            ],
        })
    );
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn canary_defaults_and_other_spellings() {
    // The smallest canary: one step straight to 100%, no [analysis].
    let spec = parse(&with(
        "[strategy]\nkind = \"canary\"\nsteps = [{ weight = 100 }]\n",
    ));
    assert_eq!(
        spec.strategy,
        StrategySpec::Canary(CanarySpec {
            steps: vec![step(100, Pause::None)],
            sticky: false,
        })
    );
    assert_eq!(spec.analysis, None);

    // [[strategy.steps]] tables, a manual pause and sticky sessions.
    let spec = parse(&with(
        r#"[strategy]
kind = "canary"
sticky = true

[[strategy.steps]]
weight = 1
pause = "manual"

[[strategy.steps]]
weight = 25
pause = "1m30s"

[[strategy.steps]]
weight = 100
"#,
    ));
    assert_eq!(
        spec.strategy,
        StrategySpec::Canary(CanarySpec {
            steps: vec![
                step(1, Pause::Manual),
                step(25, Pause::For(Dur::from_secs(90))),
                step(100, Pause::None),
            ],
            sticky: true,
        })
    );
}

#[test]
fn analysis_defaults() {
    let spec = parse(&format!(
        "{}[analysis]\n",
        issue().split("[analysis]").next().unwrap()
    ));
    let analysis = spec.analysis.expect("an empty [analysis] is Some");
    assert_eq!(analysis, AnalysisSpec::default());
    assert_eq!(
        analysis,
        AnalysisSpec {
            interval: Dur::from_secs(10),
            failure_limit: 2,
            min_requests: 50,
            inconclusive_limit: 3,
            max_intervals: AnalysisSpec::DEFAULT_MAX_INTERVALS,
            prometheus: None,
            requests: None,
            metrics: vec![],
        }
    );

    // [[analysis.metrics]] alone creates the section, with the defaults.
    let spec = parse(&with(
        "[[analysis.metrics]]\nname = \"e\"\nsource = \"proxy\"\nmetric = \"error_rate\"\nfail_if = \"> 0.1\"\n",
    ));
    let analysis = spec.analysis.unwrap();
    assert_eq!(analysis.interval, AnalysisSpec::DEFAULT_INTERVAL);
    assert_eq!(
        analysis.metrics,
        [proxy_metric("e", ProxyMetric::ErrorRate, "> 0.1")]
    );
    // A rolling strategy may have an [analysis] too.
    assert_eq!(spec.strategy, StrategySpec::Rolling(RollingSpec::default()));
}

/// Every key of [analysis] and of a metric, with a Prometheus metric.
const FULL_ANALYSIS: &str = r#"[analysis]
interval = "5s"
failure_limit = 1
min_requests = 0
inconclusive_limit = 10
prometheus = "http://127.0.0.1:9090"

[[analysis.metrics]]
name = "queue"
source = "prometheus"
query = "sum(queue_depth{service=\"{service}\",version=\"{version}\"}) / sum(queue_depth{version=\"{stable_version}\"})"
fail_if = "> 2"
pause_if = "> 1.5"
for = "30s"

[[analysis.metrics]]
name = "latency"
source = "proxy"
metric = "latency"
fail_if = "> stable (mann-whitney)"
confidence = 0.99
min_effect = 0
"#;

#[test]
fn accepts_every_analysis_key() {
    let spec = parse(&with(FULL_ANALYSIS));
    assert_eq!(
        spec.analysis,
        Some(AnalysisSpec {
            interval: Dur::from_secs(5),
            failure_limit: 1,
            min_requests: 0,
            inconclusive_limit: 10,
            max_intervals: AnalysisSpec::DEFAULT_MAX_INTERVALS,
            prometheus: Some("http://127.0.0.1:9090".into()),
            requests: None,
            metrics: vec![
                AnalysisMetric {
                    name: "queue".into(),
                    source: MetricSource::Prometheus,
                    metric: None,
                    query: Some(
                        "sum(queue_depth{service=\"{service}\",version=\"{version}\"}) / \
                         sum(queue_depth{version=\"{stable_version}\"})"
                            .into()
                    ),
                    fail_if: "> 2".into(),
                    pause_if: Some("> 1.5".into()),
                    for_: Some(Dur::from_secs(30)),
                    confidence: None,
                    min_effect: None,
                },
                AnalysisMetric {
                    confidence: Some(0.99),
                    min_effect: Some(0.0),
                    ..proxy_metric("latency", ProxyMetric::Latency, "> stable (mann-whitney)")
                },
            ],
        })
    );
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn accepts_every_proxy_metric() {
    for metric in ProxyMetric::ALL {
        let condition = if metric == ProxyMetric::Latency {
            "> stable (mann-whitney)"
        } else {
            "> 2x stable"
        };
        let text = with(&format!(
            "[[analysis.metrics]]\nname = \"m\"\nsource = \"proxy\"\nmetric = \"{metric}\"\nfail_if = \"{condition}\"\n"
        ));
        let spec = parse(&text);
        assert_eq!(spec.analysis.unwrap().metrics[0].metric, Some(metric));
    }
}

#[test]
fn blue_green_minimal_and_full() {
    let spec = parse(&with("[strategy]\nkind = \"blue-green\"\n"));
    assert_eq!(spec.strategy.kind(), "blue-green");
    assert_eq!(
        spec.strategy,
        StrategySpec::BlueGreen(BlueGreenSpec {
            preview_listen: None,
            scale_down_delay: Dur::from_secs(30),
            analysis_for: None,
        })
    );
    assert_eq!(
        spec.strategy,
        StrategySpec::BlueGreen(BlueGreenSpec::default())
    );

    let spec = parse(&with(
        r#"[strategy]
kind = "blue-green"
preview_listen = "[::1]:8081"
scale_down_delay = "0s"        # no instant rollback: stop the old release at once
analysis_for = "5m"
"#,
    ));
    assert_eq!(
        spec.strategy,
        StrategySpec::BlueGreen(BlueGreenSpec {
            preview_listen: Some("[::1]:8081".parse().unwrap()),
            scale_down_delay: Dur::ZERO,
            analysis_for: Some(Dur(Duration::from_secs(300))),
        })
    );
    assert_eq!(spec.validate(), Ok(()));
}

// ---------------------------------------------------------------------------------------
// JSON

fn samples() -> Vec<String> {
    vec![
        issue(),
        with(FULL_ANALYSIS),
        with("[strategy]\nkind = \"rolling\"\nmax_surge = 2\n"),
        with("[strategy]\nkind = \"canary\"\nsticky = true\nsteps = [{ weight = 5, pause = \"manual\" }, { weight = 100, pause = \"1.5s\" }]\n"),
        with("[strategy]\nkind = \"blue-green\"\n"),
        with("[strategy]\nkind = \"blue-green\"\npreview_listen = \"127.0.0.1:8081\"\nscale_down_delay = \"1h\"\nanalysis_for = \"90s\"\n[analysis]\n"),
        format!("{}\n{FULL_ANALYSIS}", with("[strategy]\nkind = \"canary\"\nsteps = [{ weight = 100 }]\n")),
    ]
}

#[test]
fn json_round_trip_is_exact_for_every_kind() {
    for text in samples() {
        let spec = parse(&text);
        let json = serde_json::to_string(&spec).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec, "{json}");
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(back.validate(), Ok(()));
    }
}

#[test]
fn json_shape() {
    let json = serde_json::to_value(parse(&issue())).unwrap();
    assert_eq!(
        json["strategy"],
        serde_json::json!({
            "kind": "canary",
            "steps": [
                {"weight": 10, "pause": "10s"},
                {"weight": 50, "pause": "10s"},
                {"weight": 100},
            ],
            "sticky": false,
        })
    );
    assert_eq!(
        json["analysis"],
        serde_json::json!({
            "interval": "2s",
            "failure_limit": 2,
            "min_requests": 50,
            "inconclusive_limit": 3,
            "max_intervals": 60,
            "metrics": [
                {"name": "error-rate", "source": "proxy", "metric": "error_rate", "fail_if": "> 0.05"},
                {"name": "p99", "source": "proxy", "metric": "latency_p99", "fail_if": "> 2x stable"},
            ],
        })
    );

    let json = serde_json::to_value(parse(&with(FULL_ANALYSIS))).unwrap();
    let queue = &json["analysis"]["metrics"][0];
    assert_eq!(queue["for"], "30s");
    assert_eq!(queue["source"], "prometheus");
    assert_eq!(json["analysis"]["metrics"][1]["confidence"], 0.99);
    assert_eq!(json["analysis"]["prometheus"], "http://127.0.0.1:9090");

    let json = serde_json::to_value(parse(&with(
        "[strategy]\nkind = \"canary\"\nsteps = [{ weight = 100, pause = \"manual\" }]\n",
    )))
    .unwrap();
    assert_eq!(json["strategy"]["steps"][0]["pause"], "manual");
    assert!(json.get("analysis").is_none(), "no [analysis]: no key");

    let json = serde_json::to_value(parse(&with("[strategy]\nkind = \"blue-green\"\n"))).unwrap();
    assert_eq!(
        json["strategy"],
        serde_json::json!({"kind": "blue-green", "scale_down_delay": "30s"})
    );
}

#[test]
fn json_fills_in_the_same_defaults() {
    let base = r#""service": {"name": "web", "listen": "127.0.0.1:8080"},
                  "run": {"command": ["python3", "app.py", "--port", "{port}"], "replicas": 3},
                  "health": {"path": "/health/ready"}"#;
    let from_json = |rest: &str| -> Spec {
        serde_json::from_str(&format!("{{{base}, {rest}}}")).unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(
        from_json(r#""strategy": {"kind": "blue-green"}"#),
        parse(&with("[strategy]\nkind = \"blue-green\"\n"))
    );
    assert_eq!(
        from_json(r#""strategy": {"kind": "canary", "steps": [{"weight": 100}]}, "analysis": {}"#),
        parse(&with(
            "[strategy]\nkind = \"canary\"\nsteps = [{ weight = 100 }]\n[analysis]\n"
        ))
    );
    // A null pause is the same as none.
    let spec =
        from_json(r#""strategy": {"kind": "canary", "steps": [{"weight": 100, "pause": null}]}"#);
    let StrategySpec::Canary(canary) = spec.strategy else {
        panic!("not a canary")
    };
    assert_eq!(canary.steps[0].pause, Pause::None);
}

#[test]
fn json_rejects_unknown_fields_and_bad_values() {
    let base = serde_json::to_value(parse(&with(FULL_ANALYSIS))).unwrap();
    let canary = serde_json::to_value(parse(&issue())).unwrap();
    type Breakage = fn(&mut serde_json::Value);
    let cases: Vec<(Breakage, &serde_json::Value)> = vec![
        (|j| j["analysis"]["intervals"] = "1s".into(), &base),
        (
            |j| j["analysis"]["metrics"][0]["fail-if"] = "> 1".into(),
            &base,
        ),
        (
            |j| j["analysis"]["metrics"][0]["source"] = "statsd".into(),
            &base,
        ),
        (
            |j| j["analysis"]["metrics"][1]["metric"] = "latency_p90".into(),
            &base,
        ),
        (|j| j["strategy"]["steps"][0]["wieght"] = 1.into(), &canary),
        (
            |j| j["strategy"]["steps"][0]["pause"] = "forever".into(),
            &canary,
        ),
        (|j| j["strategy"]["steps"][0]["pause"] = 10.into(), &canary),
        (|j| j["strategy"]["max_surge"] = 1.into(), &canary),
        (
            |j| {
                j["strategy"].as_object_mut().unwrap().remove("steps");
            },
            &canary,
        ),
        (|j| j["strategy"]["kind"] = "recreate".into(), &canary),
    ];
    for (break_it, good) in cases {
        let mut bad = good.clone();
        break_it(&mut bad);
        assert!(
            serde_json::from_value::<Spec>(bad.clone()).is_err(),
            "accepted {bad}"
        );
    }
}

#[test]
fn validate_applies_the_toml_rules_to_json_specs() {
    let canary = parse(&issue());
    let full = parse(&with(FULL_ANALYSIS));
    let blue_green = parse(&with(
        "[strategy]\nkind = \"blue-green\"\npreview_listen = \"127.0.0.1:8081\"\n",
    ));
    fn steps(spec: &mut Spec) -> &mut Vec<CanaryStep> {
        match &mut spec.strategy {
            StrategySpec::Canary(c) => &mut c.steps,
            _ => panic!("not a canary"),
        }
    }
    fn bg(spec: &mut Spec) -> &mut BlueGreenSpec {
        match &mut spec.strategy {
            StrategySpec::BlueGreen(b) => b,
            _ => panic!("not blue-green"),
        }
    }
    fn analysis(spec: &mut Spec) -> &mut AnalysisSpec {
        spec.analysis.as_mut().unwrap()
    }
    type Breakage = fn(&mut Spec);
    let cases: Vec<(&Spec, Breakage, &str)> = vec![
        (&canary, |s| steps(s).clear(), "strategy.steps: a canary needs at least one step"),
        (&canary, |s| steps(s)[0].weight = 0, "strategy.steps[0].weight: a step weight must be between 1 and 100"),
        (&canary, |s| steps(s)[1].weight = 10, "strategy.steps[1].weight: step weights must increase"),
        (&canary, |s| steps(s)[2].weight = 90, "strategy.steps[2].weight: the last step must have weight 100"),
        (&canary, |s| steps(s)[0].pause = Pause::For(Dur::ZERO), "strategy.steps[0].pause: `pause` must be greater than 0"),
        (&blue_green, |s| bg(s).preview_listen = Some(s.service.listen), "strategy.preview_listen: preview_listen"),
        (&blue_green, |s| bg(s).analysis_for = Some(Dur::ZERO), "strategy.analysis_for: `analysis_for` must be greater than 0"),
        (&canary, |s| analysis(s).interval = Dur::ZERO, "analysis.interval"),
        (&canary, |s| analysis(s).failure_limit = 0, "analysis.failure_limit: `failure_limit` must be at least 1"),
        (&canary, |s| analysis(s).inconclusive_limit = 0, "analysis.inconclusive_limit"),
        (&full, |s| analysis(s).prometheus = Some("127.0.0.1:9090".into()), "analysis.prometheus: invalid Prometheus URL"),
        (&full, |s| analysis(s).prometheus = None, "analysis.metrics[0].source: source = \"prometheus\" needs"),
        (&canary, |s| analysis(s).metrics[0].name.clear(), "analysis.metrics[0].name"),
        (&canary, |s| analysis(s).metrics[1].name = "error-rate".into(), "analysis.metrics[1].name: there is already a metric named \"error-rate\" (analysis.metrics[0])"),
        (&canary, |s| analysis(s).metrics[0].metric = None, "analysis.metrics[0].source: a metric with source = \"proxy\" needs `metric`"),
        (&canary, |s| analysis(s).metrics[0].query = Some("up".into()), "analysis.metrics[0].query: `query` is only for source = \"prometheus\""),
        (&full, |s| analysis(s).metrics[0].metric = Some(ProxyMetric::ErrorRate), "analysis.metrics[0].metric: `metric` is only for source = \"proxy\""),
        (&full, |s| analysis(s).metrics[0].query = None, "analysis.metrics[0].source: a metric with source = \"prometheus\" needs `query`"),
        (&full, |s| analysis(s).metrics[0].query = Some("x{versoin}".into()), "analysis.metrics[0].query: unknown placeholder {versoin}"),
        (&full, |s| analysis(s).metrics[0].for_ = Some(Dur::ZERO), "analysis.metrics[0].for"),
        (&full, |s| analysis(s).metrics[1].confidence = Some(0.5), "analysis.metrics[1].confidence"),
        (&full, |s| analysis(s).metrics[1].confidence = Some(f64::NAN), "analysis.metrics[1].confidence"),
        (&full, |s| analysis(s).metrics[1].min_effect = Some(-0.1), "analysis.metrics[1].min_effect"),
        (&canary, |s| analysis(s).metrics[0].fail_if.clear(), "analysis.metrics[0].fail_if: invalid condition"),
        (&canary, |s| analysis(s).metrics[0].pause_if = Some("<>".into()), "analysis.metrics[0].pause_if: invalid condition"),
        (&canary, |s| analysis(s).metrics[0].fail_if = "> stable (mann-whitney)".into(), "analysis.metrics[0].fail_if: the statistical condition"),
        (&canary, |s| analysis(s).metrics[1].metric = Some(ProxyMetric::Latency), "analysis.metrics[1].fail_if: metric = \"latency\" needs a statistical condition"),
        (&canary, |s| analysis(s).metrics[1].confidence = Some(0.9), "analysis.metrics[1].confidence: `confidence` only applies"),
    ];
    for (good, break_it, want) in cases {
        let mut spec = good.clone();
        break_it(&mut spec);
        let err = spec.validate().expect_err(want);
        assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        assert!(err.contains("(hint: "), "{err:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Errors: [strategy] kind = "canary"

#[test]
fn steps_must_be_there_and_be_tables() {
    assert_error(
        &edit("  { weight = 10, pause = \"10s\" },\n  { weight = 50, pause = \"10s\" },\n  { weight = 100 },\n", ""),
        (14, 9),
        "a canary needs at least one step",
        "steps = [{ weight = 10",
    );
    let no_steps = with("[strategy]\nkind = \"canary\"\n");
    assert_error(
        &no_steps,
        (12, 1),
        "missing `steps` in [strategy]",
        "add steps = [",
    );
    assert_error(
        &edit("{ weight = 100 }", "100"),
        (17, 3),
        "every element of `steps` must be a table, found an integer",
        "steps = [{ weight = 10",
    );
    assert_error(
        &with("[strategy]\nkind = \"canary\"\nsteps = \"10%\"\n"),
        (14, 9),
        "`steps` must be an array of tables, found a string",
        "steps = [",
    );
    assert_error(
        &edit("{ weight = 100 }", "{ pause = \"1s\" }"),
        (17, 3),
        "missing `weight` in step 3 of [strategy]",
        "add weight = 10",
    );
    assert_error(
        &edit("weight = 50", "weight = 50.5"),
        (16, 14),
        "`weight` must be a whole number, found a float",
        "weight = 10",
    );
}

#[test]
fn step_weights() {
    assert_error(
        &edit("weight = 10", "weight = 0"),
        (15, 14),
        "a step weight must be between 1 and 100, found 0",
        "percentage of the requests sent to the new release",
    );
    assert_error(
        &edit("weight = 100", "weight = 101"),
        (17, 14),
        "between 1 and 100, found 101",
        "e.g. weight = 10",
    );
    assert_error(
        &edit("weight = 50", "weight = 10"),
        (16, 14),
        "step weights must increase: 10 comes after 10",
        "reorder the steps",
    );
    assert_error(
        &edit("weight = 50", "weight = 5"),
        (16, 14),
        "step weights must increase: 5 comes after 10",
        "larger share",
    );
    assert_error(
        &edit("  { weight = 100 },\n", ""),
        (16, 14),
        "the last step must have weight 100, found 50",
        "add { weight = 100 } as the last step",
    );
    assert_error(
        &edit("weight = 10,", "weight = -1,"),
        (15, 14),
        "`weight` cannot be negative",
        "weight = 10",
    );
}

#[test]
fn pauses() {
    assert_error(
        &edit("pause = \"10s\"", "pause = \"forever\""),
        (15, 26),
        "invalid pause \"forever\": expected a duration or \"manual\"",
        "write a number and a unit (ms, s, m, h) with no spaces, e.g. pause = \"30s\", or \"manual\"",
    );
    assert_error(
        &edit("pause = \"10s\"", "pause = \"manaul\""),
        (15, 26),
        "invalid pause \"manaul\"",
        "did you mean \"manual\"?",
    );
    assert_error(
        &edit("pause = \"10s\"", "pause = \"10 s\""),
        (15, 26),
        "invalid pause \"10 s\": durations cannot contain spaces",
        "or \"manual\"",
    );
    assert_error(
        &edit("pause = \"10s\"", "pause = 10"),
        (15, 26),
        "`pause` needs a unit",
        "pause = \"10s\" (units: ms, s, m, h), or \"manual\"",
    );
    assert_error(
        &edit("pause = \"10s\"", "pause = true"),
        (15, 26),
        "`pause` must be a duration string or \"manual\", found a boolean",
        "or \"manual\"",
    );
    assert_error(
        &edit("pause = \"10s\"", "pause = \"0s\""),
        (15, 26),
        "`pause` must be greater than 0",
        "leave `pause` out",
    );
}

#[test]
fn unknown_keys_in_canary_tables() {
    assert_error(
        &edit("{ weight = 50,", "{ wieght = 50,"),
        (16, 5),
        "unknown key `wieght` in step 2 of [strategy]",
        "did you mean `weight`? valid keys: weight, pause",
    );
    assert_error(
        &edit("pause = \"10s\" }", "pause = \"10s\", puase = \"1s\" }"),
        (15, 33),
        "unknown key `puase` in step 1 of [strategy]",
        "did you mean `pause`?",
    );
    let tables =
        with("[strategy]\nkind = \"canary\"\n[[strategy.steps]]\nweight = 100\npauze = \"1s\"\n");
    assert_error(
        &tables,
        (16, 1),
        "unknown key `pauze` in step 1 of [strategy]",
        "did you mean `pause`?",
    );
    assert_error(
        &edit("kind = \"canary\"", "kind = \"canary\"\nstickey = true"),
        (14, 1),
        "unknown key `stickey` in [strategy]",
        "did you mean `sticky`? valid keys: kind, steps, sticky",
    );
    assert_error(
        &edit("kind = \"canary\"", "kind = \"canary\"\nmax_surge = 1"),
        (14, 1),
        "unknown key `max_surge` in [strategy] for kind = \"canary\"",
        "`max_surge` is a setting of kind = \"rolling\"; valid keys for kind = \"canary\": kind, steps, sticky",
    );
    assert_error(
        &with("[strategy]\nkind = \"rolling\"\nsteps = [{ weight = 100 }]\n"),
        (14, 1),
        "unknown key `steps` in [strategy] for kind = \"rolling\"",
        "`steps` is a setting of kind = \"canary\"",
    );
    assert_error(
        &edit("kind = \"canary\"", "kind = \"canary\"\nsticky = \"yes\""),
        (14, 10),
        "`sticky` must be a boolean, found a string",
        "sticky = true",
    );
    // A misplaced [strategy] key at the top level is sent home.
    assert_error(
        &format!("steps = []\n{}", issue()),
        (1, 1),
        "unknown key `steps` at the top level",
        "belongs in [strategy]",
    );
}

// ---------------------------------------------------------------------------------------
// Errors: [strategy] kind = "blue-green"

#[test]
fn blue_green_rules() {
    let bg = |rest: &str| with(&format!("[strategy]\nkind = \"blue-green\"\n{rest}"));
    assert_error(
        &bg("preview_listen = \"localhost:8081\"\n"),
        (14, 18),
        "invalid preview_listen address \"localhost:8081\"",
        "preview_listen = \"127.0.0.1:8081\"",
    );
    assert_error(
        &bg("preview_listen = \"127.0.0.1:8080\"\n"),
        (14, 18),
        "preview_listen 127.0.0.1:8080 is the service's own listen address",
        "preview_listen = \"127.0.0.1:8081\"",
    );
    assert_error(
        &bg("analysis_for = \"0s\"\n"),
        (14, 16),
        "`analysis_for` must be greater than 0",
        "analysis_for = \"5m\"",
    );
    assert_error(
        &bg("scale_down_delay = \"30\"\n"),
        (14, 20),
        "invalid duration \"30\" for `scale_down_delay`",
        "scale_down_delay = \"30s\"",
    );
    assert_error(
        &bg("scale_down = \"30s\"\n"),
        (14, 1),
        "unknown key `scale_down` in [strategy]",
        "did you mean `scale_down_delay`? valid keys: kind, preview_listen, scale_down_delay, analysis_for",
    );
    assert_error(
        &bg("sticky = true\n"),
        (14, 1),
        "unknown key `sticky` in [strategy] for kind = \"blue-green\"",
        "`sticky` is a setting of kind = \"canary\"",
    );
}

// ---------------------------------------------------------------------------------------
// Errors: [analysis]

#[test]
fn analysis_settings() {
    assert_error(
        &edit("interval = \"2s\"", "interval = \"0s\""),
        (21, 12),
        "`interval` must be greater than 0",
        "interval = \"10s\"",
    );
    assert_error(
        &edit("interval = \"2s\"", "interval = 2"),
        (21, 12),
        "`interval` needs a unit",
        "interval = \"2s\"",
    );
    assert_error(
        &edit("failure_limit = 2", "failure_limit = 0"),
        (22, 17),
        "`failure_limit` must be at least 1",
        "failure_limit = 2",
    );
    assert_error(
        &edit("min_requests = 50", "min_requests = -5"),
        (23, 16),
        "`min_requests` cannot be negative",
        "min_requests = 50",
    );
    assert_error(
        &edit("min_requests = 50", "inconclusive_limit = 0"),
        (23, 22),
        "`inconclusive_limit` must be at least 1",
        "inconclusive_limit = 3",
    );
    assert_error(
        &edit("min_requests = 50", "max_intervals = 0"),
        (23, 17),
        "`max_intervals` must be at least 1",
        "max_intervals = 60",
    );
    assert_error(
        &edit("min_requests = 50", "prometheus = \"localhost:9090\""),
        (23, 14),
        "invalid Prometheus URL \"localhost:9090\"",
        "prometheus = \"http://127.0.0.1:9090\"",
    );
    assert_error(
        &edit("failure_limit = 2", "failures = 2"),
        (22, 1),
        "unknown key `failures` in [analysis]",
        "valid keys: interval, failure_limit, min_requests, inconclusive_limit, max_intervals, prometheus, requests, metrics",
    );
    assert_error(
        &edit("failure_limit = 2", "failure-limit = 2"),
        (22, 1),
        "unknown key `failure-limit` in [analysis]",
        "did you mean `failure_limit`?",
    );
    assert_error(
        &edit("[analysis]", "[analisys]"),
        (20, 2),
        "unknown section [analisys]",
        "did you mean [analysis]?",
    );
    assert_error(
        &edit("[[analysis.metrics]]", "[[analysis.metric]]"),
        (25, 12),
        "unknown key `metric` in [analysis]",
        "did you mean `metrics`?",
    );
    assert_error(
        &with("[analysis]\nmetrics = [\"error_rate\"]\n"),
        (13, 12),
        "every element of `metrics` must be a table, found a string",
        "[[analysis.metrics]]",
    );
}

#[test]
fn unknown_keys_in_metrics() {
    assert_error(
        &edit("fail_if = \"> 0.05\"", "fail-if = \"> 0.05\""),
        (29, 1),
        "unknown key `fail-if` in metric \"error-rate\" of [analysis]",
        "did you mean `fail_if`? valid keys: name, source, metric, query, fail_if, pause_if, for, confidence, min_effect",
    );
    assert_error(
        &edit("name = \"p99\"", "nmae = \"p99\""),
        (32, 1),
        "unknown key `nmae` in metric 2 of [analysis]",
        "did you mean `name`?",
    );
    assert_error(
        &edit(
            "fail_if = \"> 2x stable\"",
            "fail_if = \"> 2x stable\"\nduration = \"1m\"",
        ),
        (36, 1),
        "unknown key `duration` in metric \"p99\" of [analysis]",
        "valid keys: name,",
    );
}

#[test]
fn metric_names() {
    assert_error(
        &edit("name = \"p99\"", "name = \"\""),
        (32, 8),
        "the metric name must not be empty",
        "name = \"error-rate\"",
    );
    assert_error(
        &edit("name = \"p99\"", "name = \"error-rate\""),
        (32, 8),
        "there is already a metric named \"error-rate\" (on line 26)",
        "its own name",
    );
    assert_error(
        &edit("name = \"p99\"\n", ""),
        (31, 1),
        "missing `name` in metric 2 of [analysis]",
        "add name = \"error-rate\"",
    );
    let err = error_of(&edit("name = \"p99\"\n", ""));
    assert_eq!(err.width, "[[analysis.metrics]]".len(), "{err}");
}

#[test]
fn metric_sources() {
    assert_error(
        &edit("source = \"proxy\"", "source = \"proxi\""),
        (27, 10),
        "unknown metric source \"proxi\"",
        "did you mean \"proxy\"? sources: \"proxy\", \"prometheus\"",
    );
    assert_error(
        &edit("metric = \"latency_p99\"", "metric = \"latency_99\""),
        (34, 10),
        "unknown proxy metric \"latency_99\"",
        "did you mean \"latency_p99\"? proxy metrics: \"error_rate\", \"latency_p50\", \"latency_p95\", \"latency_p99\", \"request_rate\", \"latency\"",
    );
    assert_error(
        &edit(
            "metric = \"error_rate\"        # share of 5xx and failed requests\n",
            "",
        ),
        (27, 10),
        "a metric with source = \"proxy\" needs `metric`",
        "add e.g. metric = \"error_rate\"",
    );
    assert_error(
        &edit(
            "metric = \"latency_p99\"",
            "metric = \"latency_p99\"\nquery = \"up\"",
        ),
        (35, 9),
        "`query` is only for source = \"prometheus\", not \"proxy\"",
        "remove `query`, or set source = \"prometheus\"",
    );
    assert_error(
        &edit("source = \"proxy\"", "source = \"prometheus\""),
        (27, 10),
        "source = \"prometheus\" needs the Prometheus server's address",
        "add prometheus = \"http://127.0.0.1:9090\" (its base URL) to [analysis]",
    );
    let prom = |metric: &str| {
        with(&format!(
            "[analysis]\nprometheus = \"http://prom:9090\"\n[[analysis.metrics]]\nname = \"q\"\nsource = \"prometheus\"\n{metric}fail_if = \"> 1\"\n"
        ))
    };
    assert_eq!(
        parse(&prom("query = \"up\"\n")).analysis.unwrap().metrics[0]
            .query
            .as_deref(),
        Some("up")
    );
    assert_error(
        &prom("metric = \"error_rate\"\n"),
        (17, 10),
        "`metric` is only for source = \"proxy\", not \"prometheus\"",
        "defined by its `query`",
    );
    assert_error(
        &prom(""),
        (16, 10),
        "a metric with source = \"prometheus\" needs `query`",
        "{version}",
    );
    assert_error(
        &prom("query = \"rate(x{version=\\\"{verison}\\\"}[1m])\"\n"),
        (17, 9),
        "unknown placeholder {verison} in the query",
        "did you mean {version}? placeholders: {service}, {version}, {stable_version}",
    );
    assert_error(
        &prom("query = \"  \"\n"),
        (17, 9),
        "the query must not be empty",
        "query = ",
    );
}

#[test]
fn metric_settings() {
    let metric = |extra: &str| {
        edit(
            "fail_if = \"> 2x stable\"",
            &format!("fail_if = \"> 2x stable\"\n{extra}"),
        )
    };
    // The p99 metric turned into a statistical one, with `extra` on line 36.
    let latency = |extra: &str| {
        edit(
            "metric = \"latency_p99\"\nfail_if = \"> 2x stable\"",
            &format!("metric = \"latency\"\nfail_if = \"> stable (mann-whitney)\"\n{extra}"),
        )
    };
    assert_error(
        &edit(
            "fail_if = \"> 2x stable\"      # relative to the stable release in the same window\n",
            "",
        ),
        (31, 1),
        "missing `fail_if` in metric \"p99\" of [analysis]",
        "add fail_if = \"> 0.05\"",
    );
    assert_error(
        &metric("for = \"0s\""),
        (36, 7),
        "`for` must be greater than 0",
        "for = \"30s\"",
    );
    assert_error(
        &metric("for = 30"),
        (36, 7),
        "`for` needs a unit",
        "for = \"30s\"",
    );
    assert_error(
        &latency("confidence = 0.5"),
        (36, 14),
        "`confidence` must be between 0.5 and 1 (both excluded), found 0.5",
        "confidence = 0.95",
    );
    assert_error(
        &latency("confidence = 1"),
        (36, 14),
        "found 1",
        "confidence = 0.95",
    );
    assert_error(
        &latency("confidence = nan"),
        (36, 14),
        "`confidence` must be between 0.5 and 1",
        "confidence = 0.95",
    );
    assert_error(
        &latency("confidence = \"95%\""),
        (36, 14),
        "`confidence` must be a number, found a string",
        "confidence = 0.95",
    );
    assert_error(
        &latency("min_effect = 1.5"),
        (36, 14),
        "`min_effect` must be between 0 and 1, found 1.5",
        "min_effect = 0.2",
    );
    assert_error(
        &latency("min_effect = -inf"),
        (36, 14),
        "`min_effect` must be between 0 and 1",
        "min_effect = 0.2",
    );
    assert_error(
        &metric("confidence = 0.9"),
        (36, 14),
        "`confidence` only applies to a statistical condition",
        "use metric = \"latency\" with a statistical condition",
    );
    assert_error(
        &metric("min_effect = 0.1"),
        (36, 14),
        "`min_effect` only applies to a statistical condition",
        "remove `min_effect`",
    );
    let spec = parse(&latency("confidence = 0.9\nmin_effect = 1"));
    let p99 = &spec.analysis.unwrap().metrics[1];
    assert_eq!((p99.confidence, p99.min_effect), (Some(0.9), Some(1.0)));
}

#[test]
fn conditions() {
    assert_error(
        &edit("fail_if = \"> 0.05\"", "fail_if = \"above 0.05\""),
        (29, 11),
        "invalid condition \"above 0.05\" for `fail_if`: ",
        "accepted forms: \"> 0.05\"",
    );
    assert_error(
        &edit("fail_if = \"> 0.05\"", "fail_if = \"\""),
        (29, 11),
        "invalid condition \"\" for `fail_if`: the condition is empty",
        "> stable (mann-whitney)",
    );
    assert_error(
        &edit("fail_if = \"> 2x stable\"", "fail_if = \"> 2 stable\""),
        (35, 11),
        "invalid condition \"> 2 stable\" for `fail_if`",
        "\"> 2x stable\"",
    );
    assert_error(
        &edit("fail_if = \"> 0.05\"", "fail_if = 0.05"),
        (29, 11),
        "`fail_if` must be a string, found a float",
        "fail_if = \"> 0.05\"",
    );
    assert_error(
        &edit(
            "fail_if = \"> 0.05\"",
            "fail_if = \"> 0.05\"\npause_if = \">> 0.01\"",
        ),
        (30, 12),
        "invalid condition \">> 0.01\" for `pause_if`",
        "accepted forms",
    );
    // Every form of the grammar is accepted where it fits.
    for condition in [
        "> 0.05",
        ">= 0.05",
        "< 0.99",
        "<= 0.99",
        "> 5%",
        "> 2x stable",
        "> stable + 0.01",
        "< stable - 0.02",
    ] {
        let spec = parse(&edit("\"> 0.05\"", &format!("{condition:?}")));
        assert_eq!(spec.analysis.unwrap().metrics[0].fail_if, condition);
    }
}

#[test]
fn statistical_conditions_go_with_latency_samples() {
    let latency = "metric = \"latency\"\nfail_if = \"> stable (mann-whitney)\"";
    let spec = parse(&edit(
        "metric = \"latency_p99\"\nfail_if = \"> 2x stable\"",
        latency,
    ));
    assert_eq!(
        spec.analysis.unwrap().metrics[1].metric,
        Some(ProxyMetric::Latency)
    );
    parse(&edit(
        "metric = \"latency_p99\"\nfail_if = \"> 2x stable\"",
        "metric = \"latency\"\nfail_if = \"< stable (mann-whitney)\"\npause_if = \"> stable (mann-whitney)\"",
    ));

    assert_error(
        &edit("fail_if = \"> 2x stable\"", "fail_if = \"> stable (mann-whitney)\""),
        (35, 11),
        "the statistical condition \"> stable (mann-whitney)\" needs metric = \"latency\"",
        "set metric = \"latency\", or compare latency_p99 with a threshold such as fail_if = \"> 2x stable\"",
    );
    assert_error(
        &edit("metric = \"latency_p99\"", "metric = \"latency\""),
        (35, 11),
        "metric = \"latency\" needs a statistical condition, not \"> 2x stable\"",
        "fail_if = \"> stable (mann-whitney)\", or use metric = \"latency_p99\"",
    );
    assert_error(
        &edit(
            "metric = \"latency_p99\"\nfail_if = \"> 2x stable\"",
            "metric = \"latency\"\nfail_if = \"> stable (mann-whitney)\"\npause_if = \"> 1.5x stable\"",
        ),
        (36, 12),
        "metric = \"latency\" needs a statistical condition, not \"> 1.5x stable\"",
        "pause_if = \"> stable (mann-whitney)\"",
    );
    let prometheus = with(
        "[analysis]\nprometheus = \"http://prom:9090\"\n[[analysis.metrics]]\nname = \"q\"\nsource = \"prometheus\"\nquery = \"up\"\nfail_if = \"> stable (mann-whitney)\"\n",
    );
    assert_error(
        &prometheus,
        (18, 11),
        "the statistical condition \"> stable (mann-whitney)\" needs metric = \"latency\"",
        "use source = \"proxy\" and metric = \"latency\"",
    );
}
