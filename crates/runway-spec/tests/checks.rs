//! `[[checks]]`: the runbook's checklist items as typed checks. Valid files first (the
//! issue's file, then the minimal and full form of every kind), then their JSON form
//! and `Spec::validate`, then every rule with the position, message and hint of its
//! error.

mod common;

use common::{assert_error, error_of, parse};
use std::collections::BTreeMap;
use std::time::Duration;

use runway_spec::{CheckKind, CheckSpec, MinFree, Severity, Spec, INIT_TEMPLATE};

/// The sections every sample starts with (lines 1-6; what follows starts on line 8).
const BASE: &str = r#"[service]
name = "web"
listen = "127.0.0.1:8080"

[run]
command = ["python3", "app.py", "--port", "{port}"]
"#;

/// The checks of the issue, exactly as written there (lines 8-41 once appended to BASE
/// with a blank line).
const ISSUE: &str = r#"[[checks]]
name = "postgres accepts queries"
kind = "postgres"
url = "env:DATABASE_URL"
query = "SELECT 1"
phases = ["preflight", "daily"]

[[checks]]
name = "redis answers"
kind = "redis"
url = "redis://127.0.0.1:6379"
phases = ["preflight"]
severity = "warning"

[[checks]]
name = "ready"
kind = "http"
url = "http://{replica}/health/ready"     # {replica}: run against every replica of the new release
expect_status = 200
expect_json = { ".status" = "healthy" }
phases = ["verify"]

[[checks]]
name = "disk"
kind = "disk"
path = "/"
min_free = "10GB"
phases = ["preflight", "daily"]

[[checks]]
name = "queue port"
kind = "tcp"
address = "127.0.0.1:5672"
phases = ["preflight"]
"#;

/// Every kind with every key, and every common key.
const FULL: &str = r#"[analysis]
prometheus = "http://127.0.0.1:9090"

[[checks]]
name = "ready"
kind = "http"
url = "https://{replica}/health/ready?deep=1"
method = "POST"
headers = { Authorization = "secret:API_TOKEN", Accept = "application/json" }
body = '{"ping": true}'
expect_status = 201
expect_json = { ".status" = "healthy", ".checks.db" = true, ".count" = 3, ".load" = 0.5 }
max_latency = "750ms"
timeout = "2s"
retries = 3
backoff = "500ms"
severity = "warning"
phases = ["verify", "smoke", "morning"]
schedule = "Mon-Fri 09:00 UTC"

[[checks]]
name = "queue"
kind = "tcp"
address = "queue.internal:5672"
phases = ["preflight"]

[[checks]]
name = "db"
kind = "postgres"
url = "postgres://app:pw@127.0.0.1:5432/app"
query = "SELECT count(*) FROM users"
expect = "42"
max_connections_share = 0.8
phases = ["preflight"]

[[checks]]
name = "cache"
kind = "redis"
url = "secret:REDIS_URL"
max_memory_share = 1
phases = ["daily"]

[[checks]]
name = "disk"
kind = "disk"
path = "/var/lib/postgresql"
min_free = "15%"
phases = ["daily"]

[[checks]]
name = "cert"
kind = "tls"
address = "example.com:443"
server_name = "www.example.com"
min_days = 14
phases = ["daily"]

[[checks]]
name = "config"
kind = "env"
vars = ["DATABASE_URL", "SECRET_KEY"]
phases = ["preflight"]

[[checks]]
name = "pg_isready"
kind = "command"
command = ["pg_isready", "-h", "127.0.0.1"]
expect_exit = 2
expect_stdout = "accepting|rejecting"
env = { PGCONNECT_TIMEOUT = "3", PGPASSWORD = "secret:PG_PASSWORD" }
phases = ["preflight"]

[[checks]]
name = "availability"
kind = "prometheus"
query = 'avg_over_time(up{job="web"}[5m])'
condition = ">= 0.99"
phases = ["smoke"]

[[checks]]
name = "maintenance flag"
kind = "file"
path = "/etc/maintenance"
exists = false
phases = ["preflight"]
"#;

/// BASE followed by `rest` (which starts on line 8).
fn with(rest: &str) -> String {
    format!("{BASE}\n{rest}")
}

/// The issue's file.
fn issue() -> String {
    with(ISSUE)
}

/// The issue's file with the first `from` replaced by `to` (which must exist).
fn edit(from: &str, to: &str) -> String {
    assert!(ISSUE.contains(from), "ISSUE has no {from:?}");
    with(&ISSUE.replacen(from, to, 1))
}

/// One check named "c" of `kind` in the preflight phase; `rest` starts on line 12.
fn one(kind: &str, rest: &str) -> String {
    with(&format!(
        "[[checks]]\nname = \"c\"\nkind = \"{kind}\"\nphases = [\"preflight\"]\n{rest}"
    ))
}

/// A check with the defaults, in `phases`.
fn check(name: &str, kind: CheckKind, phases: &[&str]) -> CheckSpec {
    CheckSpec {
        phases: phases.iter().map(|p| p.to_string()).collect(),
        ..CheckSpec::new(name, kind)
    }
}

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The only check of `text`.
fn only(text: &str) -> CheckSpec {
    let mut checks = parse(text).checks;
    assert_eq!(checks.len(), 1, "{checks:?}");
    checks.remove(0)
}

#[test]
fn accepts_the_issue_file_exactly() {
    let spec = parse(&issue());
    assert_eq!(spec.service.name, "web");
    assert_eq!(spec.analysis, None);
    let expected = vec![
        CheckSpec {
            name: "postgres accepts queries".into(),
            kind: CheckKind::Postgres {
                url: "env:DATABASE_URL".into(),
                query: Some("SELECT 1".into()),
                expect: None,
                max_connections_share: None,
            },
            timeout: Duration::from_secs(5),
            retries: 0,
            backoff: Duration::from_secs(1),
            severity: Severity::Blocker,
            phases: vec!["preflight".into(), "daily".into()],
            schedule: None,
        },
        CheckSpec {
            name: "redis answers".into(),
            kind: CheckKind::Redis {
                url: "redis://127.0.0.1:6379".into(),
                max_memory_share: None,
            },
            timeout: Duration::from_secs(5),
            retries: 0,
            backoff: Duration::from_secs(1),
            severity: Severity::Warning,
            phases: vec!["preflight".into()],
            schedule: None,
        },
        CheckSpec {
            name: "ready".into(),
            kind: CheckKind::Http {
                method: "GET".into(),
                url: "http://{replica}/health/ready".into(),
                headers: BTreeMap::new(),
                body: None,
                expect_status: Some(200),
                expect_json: BTreeMap::from([(".status".into(), serde_json::json!("healthy"))]),
                max_latency: None,
            },
            timeout: Duration::from_secs(5),
            retries: 0,
            backoff: Duration::from_secs(1),
            severity: Severity::Blocker,
            phases: vec!["verify".into()],
            schedule: None,
        },
        CheckSpec {
            name: "disk".into(),
            kind: CheckKind::Disk {
                path: "/".into(),
                min_free: MinFree::Bytes(10_000_000_000),
            },
            timeout: Duration::from_secs(5),
            retries: 0,
            backoff: Duration::from_secs(1),
            severity: Severity::Blocker,
            phases: vec!["preflight".into(), "daily".into()],
            schedule: None,
        },
        CheckSpec {
            name: "queue port".into(),
            kind: CheckKind::Tcp {
                address: "127.0.0.1:5672".into(),
            },
            timeout: Duration::from_secs(5),
            retries: 0,
            backoff: Duration::from_secs(1),
            severity: Severity::Blocker,
            phases: vec!["preflight".into()],
            schedule: None,
        },
    ];
    assert_eq!(spec.checks, expected);
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn no_checks_is_an_empty_list() {
    assert_eq!(parse(BASE).checks, vec![]);
    assert_eq!(parse(&format!("checks = []\n{BASE}")).checks, vec![]);
}

#[test]
fn every_kind_minimal() {
    let table = [
        (
            one("http", "url = \"http://127.0.0.1:8080/health\""),
            CheckKind::http("http://127.0.0.1:8080/health"),
        ),
        (
            one("tcp", "address = \"db:5432\""),
            CheckKind::Tcp {
                address: "db:5432".into(),
            },
        ),
        (
            one("postgres", "url = \"secret:DB\""),
            CheckKind::Postgres {
                url: "secret:DB".into(),
                query: None,
                expect: None,
                max_connections_share: None,
            },
        ),
        (
            one("redis", "url = \"env:REDIS_URL\""),
            CheckKind::Redis {
                url: "env:REDIS_URL".into(),
                max_memory_share: None,
            },
        ),
        (
            one("disk", "path = \"/\"\nmin_free = \"500MiB\""),
            CheckKind::Disk {
                path: "/".into(),
                min_free: MinFree::Bytes(500 << 20),
            },
        ),
        (
            one("tls", "file = \"/etc/ssl/web.pem\""),
            CheckKind::Tls {
                file: Some("/etc/ssl/web.pem".into()),
                address: None,
                server_name: None,
                min_days: 30,
            },
        ),
        (
            one("tls", "address = \"example.com:443\""),
            CheckKind::Tls {
                file: None,
                address: Some("example.com:443".into()),
                server_name: None,
                min_days: 30,
            },
        ),
        (
            one("env", "vars = [\"DATABASE_URL\"]"),
            CheckKind::Env {
                vars: vec!["DATABASE_URL".into()],
            },
        ),
        (
            one("command", "command = [\"true\"]"),
            CheckKind::Command {
                command: vec!["true".into()],
                expect_exit: 0,
                expect_stdout: None,
                env: BTreeMap::new(),
            },
        ),
        (
            one(
                "prometheus",
                "query = \"up\"\ncondition = \"> 0\"\nurl = \"http://prom:9090\"",
            ),
            CheckKind::Prometheus {
                url: "http://prom:9090".into(),
                query: "up".into(),
                condition: "> 0".into(),
            },
        ),
        (
            one("file", "path = \"/etc/maintenance\""),
            CheckKind::File {
                path: "/etc/maintenance".into(),
                exists: true,
            },
        ),
    ];
    for (text, kind) in table {
        assert_eq!(only(&text), check("c", kind, &["preflight"]), "{text}");
        assert_eq!(parse(&text).validate(), Ok(()));
    }
}

#[test]
fn every_kind_full() {
    let spec = parse(&with(FULL));
    assert_eq!(spec.validate(), Ok(()));
    let expected = vec![
        CheckSpec {
            name: "ready".into(),
            kind: CheckKind::Http {
                method: "POST".into(),
                url: "https://{replica}/health/ready?deep=1".into(),
                headers: strings(&[
                    ("Authorization", "secret:API_TOKEN"),
                    ("Accept", "application/json"),
                ]),
                body: Some("{\"ping\": true}".into()),
                expect_status: Some(201),
                expect_json: BTreeMap::from([
                    (".status".into(), serde_json::json!("healthy")),
                    (".checks.db".into(), serde_json::json!(true)),
                    (".count".into(), serde_json::json!(3)),
                    (".load".into(), serde_json::json!(0.5)),
                ]),
                max_latency: Some(Duration::from_millis(750)),
            },
            timeout: Duration::from_secs(2),
            retries: 3,
            backoff: Duration::from_millis(500),
            severity: Severity::Warning,
            phases: vec!["verify".into(), "smoke".into(), "morning".into()],
            schedule: Some("Mon-Fri 09:00 UTC".into()),
        },
        check(
            "queue",
            CheckKind::Tcp {
                address: "queue.internal:5672".into(),
            },
            &["preflight"],
        ),
        check(
            "db",
            CheckKind::Postgres {
                url: "postgres://app:pw@127.0.0.1:5432/app".into(),
                query: Some("SELECT count(*) FROM users".into()),
                expect: Some("42".into()),
                max_connections_share: Some(0.8),
            },
            &["preflight"],
        ),
        check(
            "cache",
            CheckKind::Redis {
                url: "secret:REDIS_URL".into(),
                max_memory_share: Some(1.0),
            },
            &["daily"],
        ),
        check(
            "disk",
            CheckKind::Disk {
                path: "/var/lib/postgresql".into(),
                min_free: MinFree::Share(0.15),
            },
            &["daily"],
        ),
        check(
            "cert",
            CheckKind::Tls {
                file: None,
                address: Some("example.com:443".into()),
                server_name: Some("www.example.com".into()),
                min_days: 14,
            },
            &["daily"],
        ),
        check(
            "config",
            CheckKind::Env {
                vars: vec!["DATABASE_URL".into(), "SECRET_KEY".into()],
            },
            &["preflight"],
        ),
        check(
            "pg_isready",
            CheckKind::Command {
                command: vec!["pg_isready".into(), "-h".into(), "127.0.0.1".into()],
                expect_exit: 2,
                expect_stdout: Some("accepting|rejecting".into()),
                env: strings(&[
                    ("PGCONNECT_TIMEOUT", "3"),
                    ("PGPASSWORD", "secret:PG_PASSWORD"),
                ]),
            },
            &["preflight"],
        ),
        // `url` comes from [analysis].
        check(
            "availability",
            CheckKind::Prometheus {
                url: "http://127.0.0.1:9090".into(),
                query: "avg_over_time(up{job=\"web\"}[5m])".into(),
                condition: ">= 0.99".into(),
            },
            &["smoke"],
        ),
        check(
            "maintenance flag",
            CheckKind::File {
                path: "/etc/maintenance".into(),
                exists: false,
            },
            &["preflight"],
        ),
    ];
    assert_eq!(spec.checks.len(), expected.len());
    for (got, want) in spec.checks.iter().zip(&expected) {
        assert_eq!(got, want);
    }
}

#[test]
fn other_spellings_of_the_same_checks() {
    // An inline array of tables at the top, sub-tables, literal strings, any order.
    let inline = format!(
        "checks = [{{ name = \"disk\", kind = \"disk\", path = \"/\", min_free = \"10GB\", \
         phases = [\"preflight\", \"daily\"] }}]\n{BASE}"
    );
    assert_eq!(parse(&inline).checks[0], parse(&issue()).checks[3]);

    let sub_table = with(
        "[[checks]]\nphases = ['verify']\nkind = 'http'\nname = 'ready'\n\
         url = 'http://{replica}/health/ready'\nexpect_status = 200\n\n\
         [checks.expect_json]\n\".status\" = \"healthy\"\n",
    );
    assert_eq!(parse(&sub_table).checks[0], parse(&issue()).checks[2]);

    // A condition the runner reads differently is stored in its canonical form.
    let pct = one(
        "prometheus",
        "query = \"up\"\ncondition = \"> 5%\"\nurl = \"http://prom:9090\"",
    );
    let CheckKind::Prometheus { condition, .. } = only(&pct).kind else {
        panic!("not prometheus")
    };
    assert_eq!(condition, "> 0.05");

    // A check's own url wins over [analysis]'s.
    let own = format!(
        "{}\n[analysis]\nprometheus = \"http://a:9090\"\n",
        one(
            "prometheus",
            "query = \"up\"\ncondition = \"> 0\"\nurl = \"http://b:9090\""
        )
    );
    let CheckKind::Prometheus { url, .. } = only(&own).kind else {
        panic!("not prometheus")
    };
    assert_eq!(url, "http://b:9090");
}

#[test]
fn phases_and_schedules() {
    let named = only(&with(
        "[[checks]]\nname = \"c\"\nkind = \"file\"\npath = \"/x\"\n\
         phases = [\"end-of-day\", \"smoke-eu\", \"daily2\", \"nightly\"]\n\
         schedule = \"daily 18:00 UTC\"\n",
    ));
    assert_eq!(
        named.phases,
        ["end-of-day", "smoke-eu", "daily2", "nightly"]
    );
    assert_eq!(named.schedule.as_deref(), Some("daily 18:00 UTC"));
}

#[test]
fn json_round_trip_is_exact() {
    for text in [
        issue(),
        with(FULL),
        one("tls", "file = \"/c.pem\"\nmin_days = 0"),
        one(
            "tcp",
            "address = \"h:1\"\ntimeout = \"1h59m59.999999999s\"\nbackoff = \"0s\"",
        ),
        one("disk", "path = \"/\"\nmin_free = \"7%\""),
        one("disk", "path = \"/\"\nmin_free = \"1.5GiB\""),
        one(
            "http",
            "url = \"http://h\"\nexpect_json = { \".x\" = 1.0, \".y\" = -2 }",
        ),
    ] {
        let spec = parse(&text);
        let json = serde_json::to_string(&spec).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec, "{json}");
        assert_eq!(back.validate(), Ok(()));
    }
}

#[test]
fn json_shape() {
    // No checks: no key.
    let json = serde_json::to_value(parse(BASE)).unwrap();
    assert!(json.get("checks").is_none(), "{json}");

    let json = serde_json::to_value(parse(&issue())).unwrap();
    assert_eq!(
        json["checks"][0],
        serde_json::json!({
            "name": "postgres accepts queries",
            "kind": "postgres",
            "url": "env:DATABASE_URL",
            "query": "SELECT 1",
            "timeout": "5s",
            "retries": 0,
            "backoff": "1s",
            "severity": "blocker",
            "phases": ["preflight", "daily"],
        })
    );
    assert_eq!(
        json["checks"][2]["expect_json"],
        serde_json::json!({".status": "healthy"})
    );
    assert_eq!(json["checks"][3]["min_free"], "10000000000B");

    // A spec stored before checks existed still reads.
    let mut old = serde_json::to_value(parse(BASE)).unwrap();
    old.as_object_mut().unwrap().remove("checks");
    let spec: Spec = serde_json::from_value(old).unwrap();
    assert!(spec.checks.is_empty());
}

#[test]
fn validate_applies_the_toml_rules_to_json_specs() {
    let spec = parse(&with(FULL));
    #[track_caller]
    fn fails(spec: &Spec, change: impl FnOnce(&mut Spec), field: &str, words: &str) {
        let mut spec = spec.clone();
        change(&mut spec);
        let err = spec.validate().expect_err("should fail");
        assert!(err.starts_with(&format!("{field}: ")), "{err}");
        assert!(err.contains(words), "{err} should contain {words:?}");
        assert!(err.contains("(hint: "), "{err}");
    }
    fn kind(spec: &mut Spec, i: usize) -> &mut CheckKind {
        &mut spec.checks[i].kind
    }

    fails(
        &spec,
        |s| s.checks[1].name = "ready".into(),
        "checks[1].name",
        "already a check named \"ready\" (checks[0])",
    );
    fails(
        &spec,
        |s| s.checks[1].name = " ".into(),
        "checks[1].name",
        "must not be empty",
    );
    fails(
        &spec,
        |s| s.checks[2].phases.clear(),
        "checks[2].phases",
        "at least one phase",
    );
    fails(
        &spec,
        |s| s.checks[2].phases = vec!["prefligt".into()],
        "checks[2].phases[0]",
        "unknown phase",
    );
    fails(
        &spec,
        |s| s.checks[0].timeout = Duration::ZERO,
        "checks[0].timeout",
        "greater than 0",
    );
    fails(
        &spec,
        |s| s.checks[0].backoff = Duration::from_secs(100_000),
        "checks[0].backoff",
        "at most 24h",
    );
    fails(
        &spec,
        |s| s.checks[0].schedule = Some("Mon 9:00 PST".into()),
        "checks[0].schedule",
        "UTC",
    );
    fails(
        &spec,
        |s| {
            if let CheckKind::Http { expect_status, .. } = kind(s, 0) {
                *expect_status = Some(99);
            }
        },
        "checks[0].expect_status",
        "between 100 and 599",
    );
    fails(
        &spec,
        |s| {
            if let CheckKind::Http { expect_json, .. } = kind(s, 0) {
                expect_json.insert("status".into(), serde_json::json!(1));
            }
        },
        "checks[0].expect_json",
        "must start with '.'",
    );
    fails(
        &spec,
        |s| {
            if let CheckKind::Http { method, .. } = kind(s, 0) {
                *method = "get".into();
            }
        },
        "checks[0].method",
        "invalid HTTP method",
    );
    fails(
        &spec,
        |s| {
            *kind(s, 1) = CheckKind::Tcp {
                address: "db".into(),
            }
        },
        "checks[1].address",
        "has no port",
    );
    fails(
        &spec,
        |s| {
            if let CheckKind::Postgres {
                max_connections_share,
                ..
            } = kind(s, 2)
            {
                *max_connections_share = Some(0.0);
            }
        },
        "checks[2].max_connections_share",
        "between 0 (excluded) and 1",
    );
    fails(
        &spec,
        |s| {
            if let CheckKind::Redis { url, .. } = kind(s, 3) {
                *url = "http://cache".into();
            }
        },
        "checks[3].url",
        "scheme \"http\"",
    );
    fails(
        &spec,
        |s| {
            if let CheckKind::Disk { min_free, .. } = kind(s, 4) {
                *min_free = MinFree::Bytes(0);
            }
        },
        "checks[4].min_free",
        "more than 0",
    );
    fails(
        &spec,
        |s| {
            if let CheckKind::Tls { file, .. } = kind(s, 5) {
                *file = Some("/c.pem".into());
            }
        },
        "checks[5].file",
        "not both",
    );
    fails(
        &spec,
        |s| *kind(s, 6) = CheckKind::Env { vars: vec![] },
        "checks[6].vars",
        "at least one",
    );
    fails(
        &spec,
        |s| {
            *kind(s, 6) = CheckKind::Env {
                vars: vec!["1X".into()],
            }
        },
        "checks[6].vars[0]",
        "not a valid environment variable name",
    );
    fails(
        &spec,
        |s| {
            if let CheckKind::Command { expect_exit, .. } = kind(s, 7) {
                *expect_exit = -1;
            }
        },
        "checks[7].expect_exit",
        "between 0 and 255",
    );
    fails(
        &spec,
        |s| {
            if let CheckKind::Command { command, .. } = kind(s, 7) {
                command.clear();
            }
        },
        "checks[7].command",
        "must name a program",
    );
    fails(
        &spec,
        |s| {
            if let CheckKind::Prometheus { condition, .. } = kind(s, 8) {
                *condition = "> stable".into();
            }
        },
        "checks[8].condition",
        "compares with the stable release",
    );
    fails(
        &spec,
        |s| {
            if let CheckKind::Prometheus { url, .. } = kind(s, 8) {
                *url = "prom:9090".into();
            }
        },
        "checks[8].url",
        "invalid Prometheus URL",
    );
    fails(
        &spec,
        |s| {
            if let CheckKind::File { path, .. } = kind(s, 9) {
                path.clear();
            }
        },
        "checks[9].path",
        "must not be empty",
    );
}

// ---------------------------------------------------------------------------------------
// Errors

#[test]
fn checks_must_be_an_array_of_tables() {
    assert_error(
        &with("[checks]\nname = \"c\"\n"),
        (8, 1),
        "checks are written [[checks]], with double brackets",
        "[[checks]]\nname = \"postgres accepts queries\"",
    );
    assert_error(
        &format!("checks = [\"disk\"]\n{BASE}"),
        (1, 11),
        "every element of `checks` must be a table, found a string",
        "[[checks]]",
    );
    assert_error(
        &with("[[check]]\nname = \"c\"\n"),
        (8, 3),
        "unknown section [check]",
        "did you mean [[checks]]? valid sections: [service], [run], [health], [strategy], [analysis], [[checks]]",
    );
}

#[test]
fn kinds() {
    assert_error(
        &edit("kind = \"redis\"", "kind = \"reddis\""),
        (17, 8),
        "unknown check kind \"reddis\"",
        "did you mean \"redis\"? kinds: \"http\", \"tcp\", \"postgres\", \"redis\", \"disk\", \"tls\", \"env\", \"command\", \"prometheus\", \"file\"",
    );
    assert_error(
        &edit("kind = \"redis\"", "kind = \"mysql\""),
        (17, 8),
        "unknown check kind \"mysql\"",
        "kinds: \"http\",",
    );
    let err = error_of(&edit("kind = \"redis\"\n", ""));
    assert_eq!((err.line, err.col), (15, 1), "{err}");
    assert_eq!(err.message, "missing `kind` in check \"redis answers\"");
    assert_eq!(err.width, "[[checks]]".len());
    assert!(err
        .hint
        .unwrap()
        .starts_with("add kind = \"http\"; kinds: "));
    // A misspelt `kind` is reported as such, not as a missing one.
    assert_error(
        &edit("kind = \"redis\"", "knid = \"redis\""),
        (17, 1),
        "unknown key `knid` in check \"redis answers\"",
        "did you mean `kind`?",
    );
    assert_error(
        &edit("kind = \"redis\"", "kind = 1"),
        (17, 8),
        "`kind` must be a string, found an integer",
        "kind = \"http\"",
    );
}

#[test]
fn keys_of_other_kinds_and_unknown_keys() {
    assert_error(
        &edit("expect_status = 200", "min_free = \"10GB\""),
        (26, 1),
        "unknown key `min_free` in check \"ready\" of kind = \"http\"",
        "`min_free` is a setting of kind = \"disk\"; valid keys for kind = \"http\": name, kind, timeout, retries, backoff, severity, phases, schedule, url, method, headers, body, expect_status, expect_json, max_latency",
    );
    assert_error(
        &edit("min_free = \"10GB\"", "min_free = \"10GB\"\nexists = true"),
        (35, 1),
        "unknown key `exists` in check \"disk\" of kind = \"disk\"",
        "`exists` is a setting of kind = \"file\"",
    );
    assert_error(
        &edit("address = \"127.0.0.1:5672\"", "path = \"/\""),
        (40, 1),
        "unknown key `path` in check \"queue port\" of kind = \"tcp\"",
        "`path` is a setting of kind = \"disk\" or \"file\"",
    );
    assert_error(
        &edit("expect_status = 200", "expect_stauts = 200"),
        (26, 1),
        "unknown key `expect_stauts` in check \"ready\"",
        "did you mean `expect_status`? valid keys: name, kind,",
    );
    assert_error(
        &edit(
            "severity = \"warning\"",
            "severity = \"warning\"\nretires = 2",
        ),
        (21, 1),
        "unknown key `retires` in check \"redis answers\"",
        "did you mean `retries`?",
    );
    assert_error(
        &edit(
            "severity = \"warning\"",
            "severity = \"warning\"\nreplicas = 2",
        ),
        (21, 1),
        "unknown key `replicas` in check \"redis answers\"",
        "`replicas` belongs in [run]",
    );
    // An unnamed check is named by its position.
    assert_error(
        &edit("name = \"redis answers\"", "nmae = \"redis answers\""),
        (16, 1),
        "unknown key `nmae` in check 2",
        "did you mean `name`?",
    );
}

#[test]
fn missing_keys_point_at_the_header() {
    let table = [
        ("name = \"redis answers\"\n", (15, 1), "missing `name` in check 2", "add name = \"postgres accepts queries\""),
        ("url = \"redis://127.0.0.1:6379\"\n", (15, 1), "missing `url` in check \"redis answers\"", "add url = \"redis://127.0.0.1:6379\""),
        ("url = \"env:DATABASE_URL\"\n", (8, 1), "missing `url` in check \"postgres accepts queries\"", "add url = \"env:DATABASE_URL\""),
        ("url = \"http://{replica}/health/ready\"", (22, 1), "missing `url` in check \"ready\"", "add url = \"http://{replica}/health/ready\""),
        ("path = \"/\"\n", (30, 1), "missing `path` in check \"disk\"", "add path = \"/\""),
        ("min_free = \"10GB\"\n", (30, 1), "missing `min_free` in check \"disk\"", "add min_free = \"10GB\""),
        ("address = \"127.0.0.1:5672\"\n", (37, 1), "missing `address` in check \"queue port\"", "add address = \"127.0.0.1:5672\""),
        ("phases = [\"preflight\"]\nseverity", (15, 1), "missing `phases` in check \"redis answers\"", "add phases = [\"preflight\", \"daily\"]; runway runs checks in the phases preflight, verify, smoke, daily; any other name is a named checklist"),
    ];
    for (gone, at, message, hint) in table {
        let text = edit(
            gone,
            if gone.ends_with("severity") {
                "severity"
            } else {
                ""
            },
        );
        assert_error(&text, at, message, hint);
        assert_eq!(error_of(&text).width, "[[checks]]".len());
    }
    for (kind, key, hint) in [
        (
            "env",
            "vars",
            "add vars = [\"DATABASE_URL\", \"SECRET_KEY\"]",
        ),
        (
            "command",
            "command",
            "add command = [\"pg_isready\", \"-h\", \"127.0.0.1\"]",
        ),
        ("file", "path", "add path = \"/etc/maintenance\""),
    ] {
        assert_error(
            &one(kind, ""),
            (8, 1),
            &format!("missing `{key}` in check \"c\""),
            hint,
        );
    }
    assert_error(
        &one("prometheus", "condition = \"> 0\"\nurl = \"http://p:9090\""),
        (8, 1),
        "missing `query`",
        "add query = ",
    );
    assert_error(
        &one("prometheus", "query = \"up\"\nurl = \"http://p:9090\""),
        (8, 1),
        "missing `condition`",
        "add condition = \"> 0.99\"",
    );
}

#[test]
fn names() {
    assert_error(
        &edit("name = \"ready\"", "name = \"redis answers\""),
        (23, 8),
        "there is already a check named \"redis answers\" (on line 16)",
        "give each check its own name",
    );
    assert_error(
        &edit("name = \"disk\"", "name = \"  \""),
        (31, 8),
        "the check name must not be empty",
        "name = \"postgres accepts queries\"",
    );
    assert_error(
        &edit("name = \"disk\"", "name = 7"),
        (31, 8),
        "`name` must be a string, found an integer",
        "name = \"postgres accepts queries\"",
    );
}

#[test]
fn phases() {
    assert_error(
        &edit("phases = [\"verify\"]", "phases = []"),
        (28, 10),
        "`phases` must list at least one phase",
        "phases = [\"preflight\", \"daily\"]; runway runs checks in the phases preflight, verify, smoke, daily",
    );
    assert_error(
        &edit("phases = [\"verify\"]", "phases = \"verify\""),
        (28, 10),
        "`phases` must be an array of strings, not a single string",
        "put it in brackets: phases = [\"verify\"]",
    );
    assert_error(
        &edit("phases = [\"verify\"]", "phases = [\"verify\", 1]"),
        (28, 21),
        "every element of `phases` must be a string, found an integer",
        "quote it: \"1\"",
    );
    assert_error(
        &edit("phases = [\"preflight\", \"daily\"]", "phases = [\"preflight\", \"dialy\"]"),
        (13, 24),
        "unknown phase \"dialy\"",
        "did you mean \"daily\"? runway runs checks in the phases preflight, verify, smoke, daily; any other name is a named checklist",
    );
    assert_error(
        &edit("phases = [\"preflight\"]", "phases = [\"Preflight\"]"),
        (19, 11),
        "unknown phase \"Preflight\"",
        "did you mean \"preflight\"?",
    );
    assert_error(
        &edit(
            "phases = [\"preflight\", \"daily\"]",
            "phases = [\"daily\", \"daily\"]",
        ),
        (13, 20),
        "phase \"daily\" is listed twice",
        "list each phase once",
    );
    assert_error(
        &edit("phases = [\"verify\"]", "phases = [\"\"]"),
        (28, 11),
        "a phase name must not be empty",
        "named checklist",
    );
}

#[test]
fn common_settings() {
    let at = |key_value: &str| edit("severity = \"warning\"", key_value);
    assert_error(
        &at("timeout = \"0s\""),
        (20, 11),
        "`timeout` must be greater than 0",
        "timeout = \"5s\"",
    );
    assert_error(
        &at("timeout = \"2 s\""),
        (20, 11),
        "invalid duration \"2 s\" for `timeout`",
        "timeout = \"5s\"",
    );
    assert_error(
        &at("timeout = 5"),
        (20, 11),
        "`timeout` needs a unit",
        "timeout = \"5s\"",
    );
    assert_error(
        &at("timeout = \"25h\""),
        (20, 11),
        "`timeout` must be at most 24h, found 25h",
        "timeout = \"5s\"",
    );
    assert_error(
        &at("backoff = \"1d\""),
        (20, 11),
        "invalid duration \"1d\" for `backoff`: unknown unit `d`",
        "backoff = \"1s\"",
    );
    assert_error(
        &at("retries = -1"),
        (20, 11),
        "`retries` cannot be negative",
        "retries = 2",
    );
    assert_error(
        &at("retries = \"2\""),
        (20, 11),
        "`retries` must be a whole number, found a string",
        "retries = 2",
    );
    assert_error(
        &at("severity = \"warn\""),
        (20, 12),
        "unknown severity \"warn\"",
        "did you mean \"warning\"? severities: \"blocker\" (a failure stops the deploy; the default) and \"warning\"",
    );
    assert_error(
        &at("schedule = \"Mon-Fri 9am UTC\""),
        (20, 12),
        "invalid schedule: time \"9am\" must be HH:MM",
        "schedule = \"Mon-Fri 09:00 UTC\"",
    );
    assert_error(
        &at("schedule = \"Mon-Fri 09:00 CET\""),
        (20, 12),
        "invalid schedule: only UTC is supported for now",
        "schedule = \"Mon-Fri 09:00 UTC\"",
    );
    assert_error(
        &at("schedule = \"Mo-Fr 09:00 UTC\""),
        (20, 12),
        "\"Mo\" is not a day",
        "e.g. schedule = \"Mon-Fri 09:00 UTC\"",
    );
}

#[test]
fn http_settings() {
    let at = |key_value: &str| edit("expect_status = 200", key_value);
    assert_error(
        &edit(
            "url = \"http://{replica}/health/ready\"",
            "url = \"http://{replicas}/health/ready\"",
        ),
        (25, 7),
        "unknown placeholder {replicas} in the URL",
        "did you mean {replica}? placeholders: {replica}",
    );
    assert_error(
        &edit(
            "url = \"http://{replica}/health/ready\"",
            "url = \"/health/ready\"",
        ),
        (25, 7),
        "invalid URL \"/health/ready\"",
        "give a whole http:// or https:// URL",
    );
    assert_error(
        &at("method = \"post\""),
        (26, 10),
        "invalid HTTP method \"post\"",
        "HTTP methods are case-sensitive: method = \"POST\"",
    );
    assert_error(
        &at("method = \"\""),
        (26, 10),
        "invalid HTTP method \"\"",
        "method = \"GET\"",
    );
    assert_error(
        &at("expect_status = 2000"),
        (26, 17),
        "`expect_status` must be an HTTP status between 100 and 599, found 2000",
        "expect_status = 200",
    );
    assert_error(
        &at("expect_status = \"200\""),
        (26, 17),
        "`expect_status` must be a whole number, found a string",
        "expect_status = 200",
    );
    assert_error(
        &at("max_latency = \"0ms\""),
        (26, 15),
        "`max_latency` must be greater than 0",
        "max_latency = \"500ms\"",
    );
    assert_error(
        &at("headers = { \"Bad Name\" = \"x\" }"),
        (26, 13),
        "\"Bad Name\" is not a valid HTTP header name",
        "headers = {",
    );
    assert_error(
        &at("headers = { Accept = 1 }"),
        (26, 22),
        "header Accept must be a string, found an integer",
        "quote it: Accept = \"1\"",
    );
    assert_error(
        &at("headers = { Authorization = \"env:api-token\" }"),
        (26, 29),
        "`env:` must be followed by a variable name",
        "\"env:DATABASE_URL\"",
    );
    assert_error(
        &at("headers = \"Accept: */*\""),
        (26, 11),
        "`headers` must be a table, found a string",
        "headers = { Authorization = \"secret:API_TOKEN\" }",
    );
    assert_error(
        &at("body = { a = 1 }"),
        (26, 8),
        "`body` must be a string, found a table",
        "body = ",
    );
    assert_error(
        &edit("{ \".status\" = \"healthy\" }", "{ status = \"healthy\" }"),
        (27, 17),
        "the JSON path \"status\" must start with '.'",
        "did you mean \".status\"?",
    );
    assert_error(
        &edit(
            "{ \".status\" = \"healthy\" }",
            "{ \".status\" = [\"healthy\"] }",
        ),
        (27, 29),
        "the value expected at \".status\" must be a string, a number or a boolean, found an array",
        "expect one value per path",
    );
    assert_error(
        &edit("{ \".status\" = \"healthy\" }", "{ \".load\" = inf }"),
        (27, 27),
        "found a number that is not finite",
        "expect one value per path",
    );
    assert_error(
        &edit(
            "expect_json = { \".status\" = \"healthy\" }",
            "expect_json = \".status == healthy\"",
        ),
        (27, 15),
        "`expect_json` must be a table, found a string",
        "expect_json = { \".status\" = \"healthy\" }",
    );
}

#[test]
fn tcp_postgres_and_redis_settings() {
    let address = |a: &str| {
        edit(
            "address = \"127.0.0.1:5672\"",
            &format!("address = \"{a}\""),
        )
    };
    assert_error(
        &address("127.0.0.1"),
        (40, 11),
        "`address` \"127.0.0.1\" has no port",
        "write host:port, e.g. address = \"127.0.0.1:5672\"",
    );
    assert_error(
        &address("queue:amqp"),
        (40, 11),
        "invalid port \"amqp\" in `address`",
        "host:port",
    );
    assert_error(
        &address("amqp://queue:5672"),
        (40, 11),
        "invalid `address` \"amqp://queue:5672\"",
        "host:port",
    );

    let pg = |u: &str| edit("url = \"env:DATABASE_URL\"", &format!("url = \"{u}\""));
    assert_error(
        &pg("mysql://app:hunter2@db/app"),
        (11, 7),
        "`url` has the scheme \"mysql\"; expected postgres or postgresql",
        "\"env:NAME\" or \"secret:NAME\"",
    );
    assert!(!error_of(&pg("mysql://app:hunter2@db/app"))
        .message
        .contains("hunter2"));
    assert_error(
        &pg("db:5432"),
        (11, 7),
        "`url` is not a URL",
        "url = \"env:DATABASE_URL\"",
    );
    assert_error(
        &pg("postgres:///app"),
        (11, 7),
        "`url` has no host",
        "postgres://",
    );
    assert_error(
        &pg("env:"),
        (11, 7),
        "`env:` must be followed by a variable name",
        "\"env:DATABASE_URL\"",
    );
    assert_error(
        &pg("secret:"),
        (11, 7),
        "`secret:` must be followed by the secret's name",
        "\"secret:DATABASE_URL\"",
    );
    assert_error(
        &edit("query = \"SELECT 1\"", "query = \" \""),
        (12, 9),
        "`query` must not be empty",
        "query = \"SELECT 1\"",
    );
    assert_error(
        &edit(
            "query = \"SELECT 1\"",
            "query = \"SELECT 1\"\nmax_connections_share = 90",
        ),
        (13, 25),
        "`max_connections_share` must be a share between 0 (excluded) and 1, found 90",
        "max_connections_share = 0.9",
    );
    assert_error(
        &edit("query = \"SELECT 1\"", "query = \"SELECT 1\"\nexpect = 1"),
        (13, 10),
        "`expect` must be a string, found an integer",
        "expect = \"1\"",
    );

    let redis = |rest: &str| edit("url = \"redis://127.0.0.1:6379\"", rest);
    assert_error(
        &redis("url = \"127.0.0.1:6379\""),
        (18, 7),
        "`url` is not a URL",
        "write a redis:// URL",
    );
    assert_error(
        &redis("url = \"http://127.0.0.1:6379\""),
        (18, 7),
        "`url` has the scheme \"http\"; expected redis",
        "url = \"redis://127.0.0.1:6379\"",
    );
    assert_error(
        &redis("url = \"redis://127.0.0.1:6379\"\nmax_memory_share = -0.5"),
        (19, 20),
        "`max_memory_share` must be a share between 0 (excluded) and 1, found -0.5",
        "max_memory_share = 0.9",
    );
    assert_error(
        &redis("url = \"redis://127.0.0.1:6379\"\nmax_memory_share = \"90%\""),
        (19, 20),
        "`max_memory_share` must be a number, found a string",
        "max_memory_share = 0.9",
    );
}

#[test]
fn disk_sizes() {
    let size = |s: &str| edit("min_free = \"10GB\"", &format!("min_free = {s}"));
    let hint = "write a size with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB) or a percentage of the filesystem, e.g. min_free = \"10GB\", \"500MiB\" or \"10%\"";
    assert_error(
        &size("\"10\""),
        (34, 12),
        "`min_free` \"10\" needs a unit",
        hint,
    );
    assert_error(
        &size("10"),
        (34, 12),
        "`min_free` needs a unit",
        "min_free = \"10GB\", or a percentage of the filesystem, e.g. \"10%\"",
    );
    assert_error(
        &size("\"10XB\""),
        (34, 12),
        "invalid `min_free` \"10XB\": unknown size unit \"xb\"",
        hint,
    );
    assert_error(
        &size("\"150%\""),
        (34, 12),
        "invalid `min_free` \"150%\": a percentage must be in (0, 100]",
        hint,
    );
    assert_error(&size("\"0%\""), (34, 12), "invalid `min_free` \"0%\"", hint);
    assert_error(
        &size("\"0GB\""),
        (34, 12),
        "`min_free` must be more than 0 and at most 100%, found 0B",
        hint,
    );
    assert_error(
        &size("\"lots\""),
        (34, 12),
        "invalid `min_free` \"lots\"",
        hint,
    );
    assert_error(&size("\"99999999999TB\""), (34, 12), "is too large", hint);
    assert_error(
        &edit("path = \"/\"", "path = \"\""),
        (33, 8),
        "`path` must not be empty",
        "path = \"/var/lib/postgresql\"",
    );
}

#[test]
fn tls_settings() {
    assert_error(
        &one("tls", "file = \"/c.pem\"\naddress = \"example.com:443\""),
        (13, 11),
        "a tls check takes either `file` or `address`, not both",
        "make two checks for both",
    );
    // The second one written is the one pointed at.
    assert_error(
        &one("tls", "address = \"example.com:443\"\nfile = \"/c.pem\""),
        (13, 8),
        "not both",
        "file = \"/etc/ssl/certs/web.pem\"",
    );
    let err = error_of(&one("tls", "min_days = 7"));
    assert_eq!((err.line, err.col, err.width), (8, 1, 10), "{err}");
    assert_eq!(err.message, "a tls check needs `file` or `address`");
    assert!(err.hint.unwrap().contains("add file = \"/etc/ssl/certs/web.pem\" (a PEM certificate) or address = \"example.com:443\""));
    assert_error(
        &one("tls", "file = \"/c.pem\"\nserver_name = \"example.com\""),
        (13, 15),
        "`server_name` only applies with `address`",
        "remove it when checking a `file`",
    );
    assert_error(
        &one("tls", "address = \"example.com\""),
        (12, 11),
        "`address` \"example.com\" has no port",
        "address = \"example.com:443\"",
    );
    assert_error(
        &one("tls", "file = \"/c.pem\"\nmin_days = -1"),
        (13, 12),
        "`min_days` cannot be negative",
        "min_days = 30",
    );
}

#[test]
fn env_command_and_file_settings() {
    assert_error(
        &one("env", "vars = []"),
        (12, 8),
        "`vars` must name at least one environment variable",
        "vars = [\"DATABASE_URL\", \"SECRET_KEY\"]",
    );
    assert_error(
        &one("env", "vars = [\"OK\", \"NOT-OK\"]"),
        (12, 15),
        "\"NOT-OK\" is not a valid environment variable name",
        "APP_ENV",
    );
    assert_error(
        &one("env", "vars = \"DATABASE_URL\""),
        (12, 8),
        "not a single string",
        "put it in brackets: vars = [\"DATABASE_URL\"]",
    );

    assert_error(
        &one("command", "command = \"pg_isready -h 127.0.0.1\""),
        (12, 11),
        "`command` must be an array of strings, not a single string",
        "write the program and each argument as separate strings: command = [\"pg_isready\", \"-h\", \"127.0.0.1\"]",
    );
    assert_error(
        &one("command", "command = []"),
        (12, 11),
        "the command must name a program",
        "no shell is involved",
    );
    assert_error(
        &one("command", "command = [\"\", \"x\"]"),
        (12, 12),
        "the command must name a program",
        "command = [\"pg_isready\"",
    );
    assert_error(
        &one("command", "command = [\"x\"]\nexpect_exit = 256"),
        (13, 15),
        "`expect_exit` must be an exit status between 0 and 255, found 256",
        "expect_exit = 0",
    );
    assert_error(
        &one("command", "command = [\"x\"]\nexpect_stdout = \"\""),
        (13, 17),
        "`expect_stdout` must not be empty",
        "expect_stdout = ",
    );
    assert_error(
        &one("command", "command = [\"x\"]\nenv = { \"A-B\" = \"1\" }"),
        (13, 9),
        "\"A-B\" is not a valid environment variable name",
        "APP_ENV",
    );
    assert_error(
        &one("command", "command = [\"x\"]\nenv = { A = true }"),
        (13, 13),
        "environment variable A must be a string, found a boolean",
        "quote it: A = \"true\"",
    );
    assert_error(
        &one("command", "command = [\"x\"]\nenv = { A = \"secret:\" }"),
        (13, 13),
        "`secret:` must be followed by the secret's name",
        "\"secret:DATABASE_URL\"",
    );

    assert_error(
        &one("file", "path = \"/x\"\nexists = \"no\""),
        (13, 10),
        "`exists` must be a boolean, found a string",
        "exists = false",
    );
    assert_error(
        &one("file", "path = \" \""),
        (12, 8),
        "`path` must not be empty",
        "path = \"/etc/maintenance\"",
    );
}

#[test]
fn prometheus_settings() {
    let prom = |rest: &str| one("prometheus", &format!("query = \"up\"\n{rest}"));
    let err = error_of(&prom("condition = \"> 0.99\""));
    assert_eq!((err.line, err.col, err.width), (8, 1, 10), "{err}");
    assert_eq!(
        err.message,
        "check \"c\" needs the Prometheus server's address"
    );
    assert!(err.hint.unwrap().contains("add url = \"http://127.0.0.1:9090\" (the Prometheus server's base URL) to the check, or prometheus = \"http://127.0.0.1:9090\" to [analysis]"));

    let with_url = |condition: &str| {
        prom(&format!(
            "condition = \"{condition}\"\nurl = \"http://p:9090\""
        ))
    };
    let forms = "accepted forms: \"> 0.99\", \">= 0.99\", \"< 0.05\", \"<= 0.05\", \"> 5%\"";
    assert_error(
        &with_url("> 2x stable"),
        (13, 13),
        "the condition \"> 2x stable\" compares with the stable release",
        "there is no stable release",
    );
    assert_error(
        &with_url("> stable + 0.01"),
        (13, 13),
        "compares with the stable release",
        forms,
    );
    assert_error(
        &with_url("> stable (mann-whitney)"),
        (13, 13),
        "compares with the stable release",
        forms,
    );
    assert_error(
        &with_url("0.99"),
        (13, 13),
        "invalid condition \"0.99\"",
        forms,
    );
    assert_error(
        &with_url("== 1"),
        (13, 13),
        "invalid condition \"== 1\"",
        forms,
    );
    assert_error(
        &prom("condition = \"> 0\"\nurl = \"prom:9090\""),
        (14, 7),
        "invalid Prometheus URL \"prom:9090\"",
        "url = \"http://127.0.0.1:9090\"",
    );
    assert_error(
        &prom("condition = 0.99"),
        (13, 13),
        "`condition` must be a string, found a float",
        "condition = \"> 0.99\"",
    );
    assert_error(
        &one("prometheus", "query = \"\"\ncondition = \"> 0\""),
        (12, 9),
        "`query` must not be empty",
        "query = ",
    );
}

#[test]
fn errors_come_in_document_order() {
    // Two broken checks: the first one is reported.
    let text = edit("kind = \"redis\"", "kind = \"redis\"\nurl2 = 1").replacen(
        "kind = \"tcp\"",
        "kind = \"tcpp\"",
        1,
    );
    assert_eq!(error_of(&text).line, 18);
}

// ---------------------------------------------------------------------------------------
// INIT_TEMPLATE

/// The commented-out `[[checks]]` examples of INIT_TEMPLATE, uncommented.
fn template_checks() -> String {
    let lines: Vec<&str> = INIT_TEMPLATE.lines().collect();
    let start = lines
        .iter()
        .position(|&l| l == "# [[checks]]")
        .expect("INIT_TEMPLATE has a [[checks]] example");
    lines[start..]
        .iter()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_init_template_checks_parse_when_uncommented() {
    let spec = parse(&format!("{INIT_TEMPLATE}\n{}", template_checks()));
    assert_eq!(spec.validate(), Ok(()));
    let kinds: Vec<&str> = spec.checks.iter().map(|c| c.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "postgres",
            "http",
            "redis",
            "disk",
            "tcp",
            "tls",
            "env",
            "command",
            "prometheus",
            "file"
        ]
    );
    assert_eq!(spec.checks[0].retries, 2);
    assert_eq!(
        spec.checks[5].schedule.as_deref(),
        Some("Mon-Fri 09:00 UTC")
    );
    // Every key of every kind is shown.
    for key in [
        "name",
        "kind",
        "timeout",
        "retries",
        "backoff",
        "severity",
        "phases",
        "schedule",
        "url",
        "method",
        "headers",
        "body",
        "expect_status",
        "expect_json",
        "max_latency",
        "address",
        "query",
        "expect",
        "max_connections_share",
        "max_memory_share",
        "path",
        "min_free",
        "file",
        "server_name",
        "min_days",
        "vars",
        "command",
        "expect_exit",
        "expect_stdout",
        "env",
        "condition",
        "exists",
    ] {
        assert!(
            template_checks().contains(&format!("\n{key} = "))
                || template_checks().contains(&format!("# {key} = ")),
            "the [[checks]] example does not show {key}"
        );
    }
    // The template itself has no active check.
    assert!(parse(INIT_TEMPLATE).checks.is_empty());
}

/// An [analysis] that cannot be read still gives its Prometheus address to the checks: the
/// file has one problem (the interval), not a second, false one ("needs the address").
#[test]
fn a_broken_analysis_section_still_lends_its_prometheus_address() {
    let text = r#"[service]
name = "web"
listen = "127.0.0.1:8080"

[run]
command = ["app"]

[analysis]
interval = 10
prometheus = "http://127.0.0.1:9090"

[[checks]]
name = "c"
kind = "prometheus"
phases = ["preflight"]
query = "up"
condition = "> 0.99"
"#;
    let errors = common::errors_of(text);
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(errors.len(), 1, "{messages:?}");
    assert!(messages[0].contains("interval"), "{messages:?}");
}
