//! Accepting valid files: the reference sample, defaults, the `runway init` template,
//! and the JSON form used by the state store and the API.

mod common;

use common::parse;
use std::collections::BTreeMap;
use std::time::Duration;

use runway_spec::{
    parse_file, BlueGreenSpec, Dur, HealthSpec, HooksSpec, MaintenanceSpec, MetricSource,
    RecreateSpec, RollingSpec, RunSpec, ServiceSpec, Spec, StrategySpec, INIT_TEMPLATE,
};

/// The reference file from the design brief; it must be accepted exactly as written.
const SAMPLE: &str = r#"[service]
name = "web"
listen = "127.0.0.1:8080"        # where the built-in proxy takes the service's traffic

[run]                            # the embedded default platform: local supervised processes
command = ["python3", "app.py", "--port", "{port}", "--version", "{version}"]
replicas = 3
env = { APP_ENV = "production" }

[health]
path = "/health/ready"
interval = "1s"
timeout = "2s"
deadline = "30s"                 # a replica not healthy by then fails the deployment

[strategy]
kind = "rolling"
max_surge = 1
max_unavailable = 0
"#;

const MINIMAL: &str = r#"
[service]
name = "web"
listen = "127.0.0.1:8080"

[run]
command = ["./server"]
"#;

#[test]
fn accepts_the_sample_exactly() {
    let spec = parse(SAMPLE);
    let want = Spec {
        service: ServiceSpec {
            name: "web".into(),
            listen: "127.0.0.1:8080".parse().unwrap(),
        },
        run: RunSpec {
            command: [
                "python3",
                "app.py",
                "--port",
                "{port}",
                "--version",
                "{version}",
            ]
            .map(String::from)
            .to_vec(),
            replicas: 3,
            env: BTreeMap::from([("APP_ENV".to_owned(), "production".to_owned())]),
            dir: None,
            stop_timeout: Dur::from_secs(10),
            drain_timeout: Dur::from_secs(30),
        },
        docker: None,
        kubernetes: None,
        health: HealthSpec {
            path: "/health/ready".into(),
            interval: Dur::from_secs(1),
            timeout: Dur::from_secs(2),
            deadline: Dur::from_secs(30),
        },
        strategy: StrategySpec::Rolling(RollingSpec {
            max_surge: 1,
            max_unavailable: 0,
        }),
        analysis: None,
        checks: Vec::new(),
        hooks: HooksSpec::default(),
        maintenance: MaintenanceSpec::default(),
        proxy: Default::default(),
        deploy: Default::default(),
        types: Default::default(),
        notify: Vec::new(),
        incidents: Default::default(),
    };
    assert_eq!(spec, want);
    assert_eq!(spec.strategy.kind(), "rolling");
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn fills_in_defaults() {
    let spec = parse(MINIMAL);
    assert_eq!(spec.run.replicas, 1);
    assert!(spec.run.env.is_empty());
    assert_eq!(spec.run.dir, None);
    assert_eq!(spec.run.stop_timeout.get(), Duration::from_secs(10));
    assert_eq!(spec.run.drain_timeout.get(), Duration::from_secs(30));
    assert_eq!(
        spec.health,
        HealthSpec {
            path: "/".into(),
            interval: Dur::from_secs(1),
            timeout: Dur::from_secs(2),
            deadline: Dur::from_secs(30),
        }
    );
    assert_eq!(
        spec.strategy,
        StrategySpec::Rolling(RollingSpec {
            max_surge: 1,
            max_unavailable: 0
        })
    );
}

#[test]
fn partial_sections_keep_the_other_defaults() {
    let spec = parse(&format!(
        "{MINIMAL}[health]\npath = \"/ok\"\n[strategy]\nkind = \"rolling\"\nmax_unavailable = 1\n"
    ));
    assert_eq!(spec.health.path, "/ok");
    assert_eq!(spec.health.deadline, Dur::from_secs(30));
    assert_eq!(
        spec.strategy,
        StrategySpec::Rolling(RollingSpec {
            max_surge: 1,
            max_unavailable: 1
        })
    );
}

#[test]
fn accepts_the_optional_run_keys() {
    let spec = parse(&format!(
        "{MINIMAL}dir = \"app\"\nstop_timeout = \"1.5s\"\ndrain_timeout = \"1m30s\"\n"
    ));
    assert_eq!(spec.run.dir.as_deref(), Some("app"));
    assert_eq!(spec.run.stop_timeout, Dur::from_millis(1_500));
    assert_eq!(spec.run.drain_timeout, Dur::from_secs(90));
}

#[test]
fn accepts_other_spellings_of_the_same_tables() {
    // A [run.env] section, dotted keys and an IPv6 listen address.
    let text = r#"
service.name = "web"
service.listen = "[::1]:9000"

[run]
command = ["./server"]

[run.env]
APP_ENV = "production"
_PRIVATE = ""
"#;
    let spec = parse(text);
    assert_eq!(spec.service.listen, "[::1]:9000".parse().unwrap());
    assert_eq!(spec.run.env.len(), 2);
    assert_eq!(spec.run.env["APP_ENV"], "production");
}

#[test]
fn a_timeout_longer_than_the_interval_is_fine() {
    let text = SAMPLE.replace("timeout = \"2s\"", "timeout = \"5s\"");
    assert_eq!(parse(&text).health.timeout, Dur::from_secs(5));
}

#[test]
fn the_init_template_parses() {
    let spec = parse(INIT_TEMPLATE);
    assert_eq!(spec.service.name, "web");
    assert_eq!(spec.validate(), Ok(()));
    // It documents every key, including the ones it leaves commented out.
    for key in [
        "name",
        "listen",
        "command",
        "replicas",
        "env",
        "dir",
        "stop_timeout",
        "drain_timeout",
        "path",
        "interval",
        "timeout",
        "deadline",
        "kind",
        "max_surge",
        "max_unavailable",
        "steps",
        "weight",
        "pause",
        "sticky",
        "preview_listen",
        "scale_down_delay",
        "analysis_for",
        "failure_limit",
        "min_requests",
        "inconclusive_limit",
        "prometheus",
        "source",
        "metric",
        "query",
        "fail_if",
        "pause_if",
        "for",
        "confidence",
        "min_effect",
        "phases",
        "schedule",
        "retries",
        "backoff",
        "severity",
        "url",
        "method",
        "headers",
        "body",
        "expect_status",
        "expect_json",
        "max_latency",
        "address",
        "expect",
        "max_connections_share",
        "max_memory_share",
        "min_free",
        "file",
        "server_name",
        "min_days",
        "vars",
        "expect_exit",
        "expect_stdout",
        "condition",
        "exists",
        "keep",
        "verify",
        "restore",
        "undo",
        "irreversible",
        "on_failure",
        "at",
        "message",
        "retry_after",
        "allow",
    ] {
        assert!(
            INIT_TEMPLATE.contains(&format!("{key} = ")),
            "INIT_TEMPLATE does not mention {key}"
        );
    }
    assert!(INIT_TEMPLATE.contains("[[analysis.metrics]]"));
    // So are [hooks] and [maintenance] (tests/hooks.rs parses them).
    assert!(INIT_TEMPLATE.contains("\n# [hooks.backup]\n"));
    assert!(INIT_TEMPLATE.contains("\n# [[hooks.run]]\n"));
    assert!(INIT_TEMPLATE.contains("\n# [maintenance]\n"));
    // The [[checks]] examples are commented out (tests/checks.rs parses them).
    assert!(INIT_TEMPLATE.contains("\n# [[checks]]\n"));
    assert!(spec.checks.is_empty());
}

/// The `nth` (from 0) commented-out block of INIT_TEMPLATE that starts with the line
/// `first`, up to the next line that is not a comment, uncommented: `# key = 1` becomes
/// `key = 1` and `# # prose` stays a comment.
fn uncommented(first: &str, nth: usize) -> String {
    let lines: Vec<&str> = INIT_TEMPLATE.lines().collect();
    let start = (0..lines.len())
        .filter(|&i| lines[i] == first)
        .nth(nth)
        .unwrap_or_else(|| panic!("INIT_TEMPLATE has no line {first:?} #{nth}"));
    lines[start..]
        .iter()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_init_template_examples_parse_when_uncommented() {
    // The template without its rolling [strategy] section.
    let start = INIT_TEMPLATE.find("\n[strategy]\n").unwrap() + 1;
    let last = "max_unavailable = 0\n";
    let end = start + INIT_TEMPLATE[start..].find(last).unwrap() + last.len();
    let rest = format!("{}{}", &INIT_TEMPLATE[..start], &INIT_TEMPLATE[end..]);
    let analysis = uncommented("# [analysis]", 0);

    let canary = parse(&format!(
        "{rest}{}{analysis}",
        uncommented("# [strategy]", 0)
    ));
    assert_eq!(canary.strategy.kind(), "canary");
    let metrics = &canary
        .analysis
        .as_ref()
        .expect("[analysis] is there")
        .metrics;
    assert_eq!(metrics.len(), 3);
    assert_eq!(metrics[2].source, MetricSource::Prometheus);
    assert_eq!(canary.validate(), Ok(()));

    let spec = parse(&format!(
        "{rest}{}{analysis}",
        uncommented("# [strategy]", 1)
    ));
    assert_eq!(
        spec.strategy,
        StrategySpec::BlueGreen(BlueGreenSpec {
            preview_listen: Some("127.0.0.1:8081".parse().unwrap()),
            scale_down_delay: Dur::from_secs(30),
            analysis_for: Some(Dur::from_secs(300)),
        })
    );
    assert_eq!(spec.validate(), Ok(()));

    let spec = parse(&format!("{rest}{}", uncommented("# [strategy]", 2)));
    assert_eq!(spec.strategy, StrategySpec::Recreate(RecreateSpec {}));
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn json_round_trip_is_exact() {
    for text in [SAMPLE, MINIMAL, INIT_TEMPLATE] {
        let spec = parse(text);
        let json = serde_json::to_string(&spec).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec, "{json}");
    }
    let odd = parse(&format!(
        "{MINIMAL}dir = \"x\"\nstop_timeout = \"1h0m0.000000001s\"\n"
    ));
    let back: Spec = serde_json::from_str(&serde_json::to_string(&odd).unwrap()).unwrap();
    assert_eq!(back, odd);
}

#[test]
fn json_uses_the_toml_names_and_strings() {
    let json: serde_json::Value = serde_json::to_value(parse(SAMPLE)).unwrap();
    assert_eq!(json["service"]["listen"], "127.0.0.1:8080");
    assert_eq!(json["run"]["stop_timeout"], "10s");
    assert_eq!(json["health"]["deadline"], "30s");
    assert_eq!(
        json["strategy"],
        serde_json::json!({"kind": "rolling", "max_surge": 1, "max_unavailable": 0})
    );
    assert!(json["run"].get("dir").is_none());
}

#[test]
fn json_fills_in_the_same_defaults() {
    let json = r#"{"service": {"name": "web", "listen": "127.0.0.1:8080"},
                   "run": {"command": ["./server"]}}"#;
    let spec: Spec = serde_json::from_str(json).unwrap();
    assert_eq!(spec, parse(MINIMAL));
}

#[test]
fn json_rejects_unknown_fields_and_kinds() {
    let base = serde_json::to_value(parse(SAMPLE)).unwrap();
    let mut bad = base.clone();
    bad["run"]["replica"] = 3.into();
    assert!(serde_json::from_value::<Spec>(bad).is_err());
    let mut bad = base.clone();
    bad["strategy"]["surge"] = 3.into();
    assert!(serde_json::from_value::<Spec>(bad).is_err());
    let mut bad = base.clone();
    bad["strategy"]["kind"] = "recreate".into();
    assert!(serde_json::from_value::<Spec>(bad).is_err());
    // A canary has steps, not max_surge.
    let mut bad = base;
    bad["strategy"]["kind"] = "canary".into();
    assert!(serde_json::from_value::<Spec>(bad).is_err());
}

#[test]
fn validate_applies_the_toml_rules_to_json_specs() {
    let good = parse(SAMPLE);
    type Breakage = fn(&mut Spec);
    let cases: Vec<(Breakage, &str)> = vec![
        (|s| s.service.name = "Web".into(), "service.name"),
        (|s| s.run.command.clear(), "run.command"),
        (|s| s.run.command[0].clear(), "run.command"),
        (
            |s| s.run.replicas = 0,
            "run.replicas: replicas must be at least 1",
        ),
        (
            |s| {
                s.run.env.insert("1X".into(), "y".into());
            },
            "run.env",
        ),
        (|s| s.run.dir = Some(String::new()), "run.dir"),
        (|s| s.health.path = "ready".into(), "health.path"),
        (|s| s.health.interval = Dur::ZERO, "health.interval"),
        (|s| s.health.timeout = Dur::ZERO, "health.timeout"),
        (|s| s.health.deadline = Dur::ZERO, "health.deadline"),
        (
            |s| {
                s.strategy = StrategySpec::Rolling(RollingSpec {
                    max_surge: 0,
                    max_unavailable: 0,
                })
            },
            "strategy: max_surge and max_unavailable cannot both be 0",
        ),
    ];
    for (break_it, want) in cases {
        let mut spec = good.clone();
        break_it(&mut spec);
        let err = spec.validate().expect_err(want);
        assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        assert!(err.contains("(hint: "), "{err:?}");
    }
}

#[test]
fn parse_file_reads_and_names_the_file() {
    let dir = std::env::temp_dir().join(format!("runway-spec-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runway.toml");

    std::fs::write(&path, SAMPLE).unwrap();
    assert_eq!(parse_file(&path).unwrap(), parse(SAMPLE));

    std::fs::write(&path, SAMPLE.replace("replicas = 3", "replicas = 0")).unwrap();
    let err = parse_file(&path).unwrap_err().first().clone();
    assert_eq!(err.origin, path.display().to_string());
    assert!(err
        .to_string()
        .starts_with(&format!("{}:7:12: error:", path.display())));

    std::fs::remove_dir_all(&dir).unwrap();
    let err = parse_file(&path).unwrap_err().first().clone();
    assert_eq!((err.line, err.col), (0, 0));
    let shown = path.display().to_string();
    assert!(err.message.contains(&shown), "{}", err.message);
    let os_error = std::fs::read(&path).unwrap_err().to_string();
    assert!(err.message.contains(&os_error), "{}", err.message);
    assert!(err
        .to_string()
        .starts_with(&format!("{shown}: error: cannot read {shown}: ")));
}

#[test]
fn proxy_limits_default_and_are_read() {
    let spec = parse(MINIMAL);
    assert_eq!(spec.proxy, runway_spec::ProxySpec::default());
    assert_eq!(spec.proxy.header_timeout, Dur::from_secs(15));
    assert_eq!(spec.proxy.idle_timeout, Dur::from_secs(75));
    assert_eq!(spec.proxy.body_timeout, Dur::from_secs(60));
    assert_eq!(spec.proxy.send_timeout, Dur::from_secs(60));
    assert!(!spec.proxy.h2c_upgrade);
    // Absent, it is not in the JSON form either.
    assert!(serde_json::to_value(&spec).unwrap().get("proxy").is_none());

    let spec = parse(&format!(
        "{MINIMAL}\n[proxy]\nheader_timeout = \"5s\"\nidle_timeout = \"2m\"\nh2c_upgrade = true\n\
         body_timeout = \"20s\"\nsend_timeout = \"90s\"\n"
    ));
    assert_eq!(spec.proxy.header_timeout, Dur::from_secs(5));
    assert_eq!(spec.proxy.idle_timeout, Dur::from_secs(120));
    assert_eq!(spec.proxy.body_timeout, Dur::from_secs(20));
    assert_eq!(spec.proxy.send_timeout, Dur::from_secs(90));
    assert!(spec.proxy.h2c_upgrade);
    let json = serde_json::to_value(&spec).unwrap();
    let back: Spec = serde_json::from_value(json).unwrap();
    assert_eq!(back, spec);
}
