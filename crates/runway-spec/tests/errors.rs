//! Rejecting bad files: every error must point at the offending text (1-based line and
//! column), say what is wrong and, usually, what to write instead. And no input, however
//! mangled, may panic.

mod common;

use common::{assert_error, error_of};
use runway_spec::{parse_str, INIT_TEMPLATE};

/// The reference file from the design brief (line numbers below refer to it).
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

/// The canary file of the progressive-delivery issue.
const CANARY: &str = r#"[service]
name = "web"
listen = "127.0.0.1:8080"

[run]
command = ["python3", "app.py", "--port", "{port}"]
replicas = 3

[strategy]
kind = "canary"
steps = [
  { weight = 10, pause = "10s" },
  { weight = 50, pause = "manual" },
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

/// Blue-green with every [analysis] key, a Prometheus metric and a statistical one.
const BLUE_GREEN: &str = r#"service = { name = "web", listen = "127.0.0.1:8080" }
run = { command = ["./server"] }

[strategy]
kind = "blue-green"
preview_listen = "127.0.0.1:8081"
scale_down_delay = "30s"
analysis_for = "5m"

[analysis]
interval = "5s"
inconclusive_limit = 3
prometheus = "http://127.0.0.1:9090"

[[analysis.metrics]]
name = "queue"
source = "prometheus"
query = 'max(queue{version="{version}"})'
fail_if = "> 100"
pause_if = "> 50"
for = "30s"

[[analysis.metrics]]
name = "latency"
source = "proxy"
metric = "latency"
fail_if = "> stable (mann-whitney)"
confidence = 0.95
min_effect = 0.1
"#;

/// A file with checks of every kind.
const CHECKS: &str = r#"service = { name = "web", listen = "127.0.0.1:8080" }
run = { command = ["./server"] }
analysis = { prometheus = "http://127.0.0.1:9090" }

[[checks]]
name = "db"
kind = "postgres"
url = "env:DATABASE_URL"
query = "SELECT 1"
max_connections_share = 0.9
phases = ["preflight", "daily"]
timeout = "2s"
retries = 1

[[checks]]
name = "ready"
kind = "http"
url = "http://{replica}/health/ready"
headers = { Accept = "application/json" }
expect_status = 200
expect_json = { ".status" = "healthy", ".n" = 1.5 }
phases = ["verify"]

[[checks]]
name = "disk"
kind = "disk"
path = "/"
min_free = "10%"
phases = ["daily"]
schedule = "Mon-Fri 09:00 UTC"

[[checks]]
name = "cert"
kind = "tls"
address = "example.com:443"
min_days = 14
phases = ["daily"]
severity = "warning"

[[checks]]
name = "up"
kind = "prometheus"
query = "up"
condition = "> 0.99"
phases = ["smoke"]

[[checks]]
name = "cmd"
kind = "command"
command = ["pg_isready", "-q"]
env = { PGPASSWORD = "secret:PG" }
phases = ["preflight"]

[[checks]]
name = "misc"
kind = "env"
vars = ["A", "B"]
phases = ["preflight"]
"#;

/// Recreate with every key of [hooks] and [maintenance].
const HOOKS: &str = r#"service = { name = "web", listen = "127.0.0.1:8080" }
run = { command = ["./server"] }
strategy = { kind = "recreate" }

[hooks.backup]
command = ["sh", "-c", "pg_dump \"$DATABASE_URL\" > \"$RUNWAY_BACKUP_DIR/db.sql\""]
verify = ["test", "-s", "db.sql"]
restore = ["./restore.sh"]
keep = 3
timeout = "10m"

[hooks.migrate]
command = ["alembic", "upgrade", "head"]
timeout = "5m"
irreversible = true
on_failure = "restore"

[[hooks.run]]
at = "post-deploy"
command = ["./notify.sh"]
timeout = "1m"

[maintenance]
message = "Back soon."
retry_after = "1m"
allow = ["/status", "/api/*"]
"#;

/// SAMPLE with the first occurrence of `from` replaced by `to` (which must exist).
fn edit(from: &str, to: &str) -> String {
    assert!(SAMPLE.contains(from), "SAMPLE has no {from:?}");
    SAMPLE.replacen(from, to, 1)
}

#[test]
fn renders_in_the_documented_format() {
    let err = error_of(&edit("replicas = 3", "replicas = 0"));
    assert_eq!(
        err.to_string(),
        "runway.toml:7:12: error: replicas must be at least 1
  |
7 | replicas = 0
  |            ^
  = hint: set replicas = 1 or more"
    );
    let _: &dyn std::error::Error = &err;
}

#[test]
fn underlines_the_whole_value() {
    let err = error_of(&edit("\"30s\"", "\"5 minutes\""));
    let caret_line = err.to_string().lines().nth(3).unwrap().to_owned();
    assert_eq!(
        caret_line,
        format!("   | {}{}", " ".repeat(11), "^".repeat(11))
    );
}

#[test]
fn unknown_keys() {
    assert_error(
        &edit("replicas = 3", "replica = 3"),
        (7, 1),
        "unknown key `replica` in [run]",
        "did you mean `replicas`? valid keys: command, replicas, env, dir, stop_timeout, drain_timeout",
    );
    assert_error(
        &edit("max_surge", "max-surge"),
        (18, 1),
        "unknown key `max-surge` in [strategy]",
        "did you mean `max_surge`? valid keys: kind, max_surge, max_unavailable",
    );
    assert_error(
        &edit("replicas = 3", "timeout = \"1s\""),
        (7, 1),
        "unknown key `timeout` in [run]",
        "`timeout` belongs in [health]",
    );
    assert_error(
        &edit("[health]", "[healthcheck]"),
        (10, 2),
        "unknown section [healthcheck]",
        "did you mean [health]?",
    );
    assert_error(
        &format!("replicas = 3\n{SAMPLE}"),
        (1, 1),
        "unknown key `replicas` at the top level",
        "belongs in [run]",
    );
    assert_error(
        &edit(
            "APP_ENV = \"production\" }",
            "APP_ENV = \"production\" }\n[run.envs]",
        ),
        (9, 6),
        "unknown key `envs` in [run]",
        "did you mean `env`?",
    );
}

#[test]
fn strategy_kinds() {
    // Recreate has no settings of its own (tests/hooks.rs accepts it).
    assert_error(
        &edit("\"rolling\"", "\"recreate\""),
        (18, 1),
        "unknown key `max_surge` in [strategy] for kind = \"recreate\"",
        "`max_surge` is a setting of kind = \"rolling\"; valid keys for kind = \"recreate\": kind",
    );
    assert_error(
        &edit("\"rolling\"", "\"recreat\""),
        (17, 8),
        "unknown strategy kind \"recreat\"",
        "did you mean \"recreate\"? supported kinds: \"rolling\", \"canary\", \"blue-green\", \"recreate\"",
    );
    assert_error(
        &edit("\"rolling\"", "\"rollign\""),
        (17, 8),
        "unknown strategy kind \"rollign\"",
        "did you mean \"rolling\"? supported kinds: \"rolling\"",
    );
    assert_error(
        &edit("\"rolling\"", "\"bluegreen\""),
        (17, 8),
        "unknown strategy kind \"bluegreen\"",
        "did you mean \"blue-green\"?",
    );
    assert_error(
        &edit("\"rolling\"", "\"fast\""),
        (17, 8),
        "unknown strategy kind \"fast\"",
        "supported kinds: \"rolling\"",
    );
    assert_error(
        &edit("kind = \"rolling\"\n", ""),
        (16, 1),
        "missing `kind` in [strategy]",
        "add kind = \"rolling\"",
    );
    assert_error(
        &edit("\"rolling\"", "1"),
        (17, 8),
        "`kind` must be a string",
        "kind =",
    );
}

#[test]
fn rolling_needs_surge_or_unavailability() {
    assert_error(
        &edit("max_surge = 1", "max_surge = 0"),
        (18, 13),
        "max_surge and max_unavailable cannot both be 0",
        "set max_surge = 1",
    );
    // With max_surge left out, point at the value that was written.
    let text = "[service]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[run]\ncommand = [\"a\"]\n\
                [strategy]\nkind = \"rolling\"\nmax_surge = 0\n";
    assert_error(text, (8, 13), "cannot both be 0", "max_surge = 1");
}

#[test]
fn replicas() {
    let hint = "replicas = 1 or more";
    assert_error(
        &edit("replicas = 3", "replicas = 0"),
        (7, 12),
        "at least 1",
        hint,
    );
    assert_error(
        &edit("replicas = 3", "replicas = -1"),
        (7, 12),
        "cannot be negative",
        "replicas = 3",
    );
    assert_error(
        &edit("replicas = 3", "replicas = 5000000000"),
        (7, 12),
        "too large",
        "replicas = 3",
    );
    assert_error(
        &edit("replicas = 3", "replicas = \"3\""),
        (7, 12),
        "`replicas` must be a whole number, found a string",
        "replicas = 3",
    );
    assert_error(
        &edit("replicas = 3", "replicas = 3.0"),
        (7, 12),
        "found a float",
        "replicas = 3",
    );
}

#[test]
fn durations() {
    assert_error(
        &edit("\"30s\"", "\"5 minutes\""),
        (14, 12),
        "invalid duration \"5 minutes\" for `deadline`: durations cannot contain spaces",
        "deadline = \"30s\"",
    );
    assert_error(
        &edit("\"30s\"", "\"5\""),
        (14, 12),
        "has no unit",
        "ms, s, m, h",
    );
    assert_error(
        &edit("\"30s\"", "\"-1s\""),
        (14, 12),
        "sign",
        "deadline = \"30s\"",
    );
    assert_error(
        &edit("\"30s\"", "\"\""),
        (14, 12),
        "empty",
        "deadline = \"30s\"",
    );
    assert_error(
        &edit("\"30s\"", "30"),
        (14, 12),
        "`deadline` needs a unit",
        "deadline = \"30s\"",
    );
    assert_error(
        &edit("\"1s\"", "\"0s\""),
        (12, 12),
        "`interval` must be greater than 0",
        "interval = \"1s\"",
    );
    // A typo cannot make runway probe hundreds of times a second.
    assert_error(
        &edit("\"1s\"", "\"1ns\""),
        (12, 12),
        "`interval` must be at least 10ms, found 1ns",
        "interval = \"1s\"",
    );
    // Nor can a huge duration overflow a running deployment's clock arithmetic.
    assert_error(
        &edit("\"30s\"", "\"18446744073709551615s\""),
        (14, 12),
        "up to 366 days",
        "deadline = \"30s\"",
    );
    assert_error(
        &edit("\"2s\"", "\"0ms\""),
        (13, 11),
        "`timeout` must be greater than 0",
        "timeout = \"2s\"",
    );
    let text = edit("replicas = 3", "replicas = 3\nstop_timeout = \"10 s\"");
    assert_error(
        &text,
        (8, 16),
        "for `stop_timeout`",
        "stop_timeout = \"10s\"",
    );
}

#[test]
fn listen_addresses() {
    let field = "\"127.0.0.1:8080\"";
    assert_error(
        &edit(field, "\"localhost:8080\""),
        (3, 10),
        "invalid listen address",
        "\"127.0.0.1:8080\"",
    );
    assert_error(
        &edit(field, "\"127.0.0.1\""),
        (3, 10),
        "invalid listen address",
        "add a port",
    );
    assert_error(
        &edit(field, "\"127.0.0.1:99999\""),
        (3, 10),
        "invalid listen address",
        "IP address and a port",
    );
    assert_error(
        &edit(field, "8080"),
        (3, 10),
        "`listen` must be a string",
        "listen = ",
    );
}

#[test]
fn service_names() {
    assert_error(
        &edit("\"web\"", "\"\""),
        (2, 8),
        "must not be empty",
        "name = \"web\"",
    );
    assert_error(
        &edit("\"web\"", "\"My Web\""),
        (2, 8),
        "invalid service name",
        "name = \"my-web\"",
    );
    let long = format!("\"{}\"", "a".repeat(64));
    assert_error(&edit("\"web\"", &long), (2, 8), "maximum is 63", "shorter");
}

#[test]
fn health_paths() {
    assert_error(
        &edit("\"/health/ready\"", "\"health/ready\""),
        (11, 8),
        "must start with '/'",
        "path = \"/health/ready\"",
    );
}

#[test]
fn commands() {
    let command =
        "command = [\"python3\", \"app.py\", \"--port\", \"{port}\", \"--version\", \"{version}\"]";
    assert_error(
        &edit(command, "command = []"),
        (6, 11),
        "must not be empty",
        "command = [",
    );
    assert_error(
        &edit(command, "command = [\"\", \"app.py\"]"),
        (6, 12),
        "program",
        "command = [",
    );
    assert_error(
        &edit(command, "command = [\"python3\", 8080]"),
        (6, 23),
        "must be a string, found an integer",
        "\"8080\"",
    );
    assert_error(
        &edit(command, "command = \"python3 app.py\""),
        (6, 11),
        "must be an array of strings, not a single string",
        "command = [\"python3\", \"app.py\"]",
    );
    assert_error(
        &edit(command, ""),
        (5, 1),
        "missing `command` in [run]",
        "add command = [",
    );
}

#[test]
fn env_vars() {
    assert_error(
        &edit("APP_ENV =", "\"APP-ENV\" ="),
        (8, 9),
        "\"APP-ENV\" is not a valid environment variable name",
        "letters, digits and '_'",
    );
    assert_error(
        &edit("\"production\" }", "8080 }"),
        (8, 19),
        "must be a string, found an integer",
        "APP_ENV = \"8080\"",
    );
    assert_error(
        &edit("{ APP_ENV = \"production\" }", "\"x\""),
        (8, 7),
        "`env` must be a table",
        "env = {",
    );
}

#[test]
fn dirs() {
    assert_error(
        &edit("replicas = 3", "dir = \"\""),
        (7, 7),
        "`dir` must not be empty",
        "remove `dir`",
    );
}

#[test]
fn missing_sections_and_keys() {
    assert_error("", (1, 1), "missing [service] section", "[service]");
    let no_run = SAMPLE.split("[run]").next().unwrap();
    assert_error(no_run, (1, 1), "missing [run] section", "command = [");
    assert_error(
        &edit("name = \"web\"\n", ""),
        (1, 1),
        "missing `name` in [service]",
        "name = \"web\"",
    );
    assert_error(
        &edit("[run]", "[[run]]"),
        (5, 1),
        "[run] must be a table, found an array of tables",
        "[run]",
    );
}

#[test]
fn syntax_errors_are_located_too() {
    assert_error(&edit("\"web\"", "\"web"), (2, 12), "invalid TOML", "quote");
    assert_error(
        &edit("\"web\"", "web"),
        (2, 8),
        "invalid TOML: invalid string",
        "name = \"web\"",
    );
    assert_error(
        &edit("\"127.0.0.1:8080\"", "127.0.0.1:8080"),
        (3, 15),
        "invalid TOML",
        "quote text values",
    );
    assert_error(
        &edit("replicas = 3", "replicas = 4\nreplicas = 3"),
        (8, 1),
        "duplicate key",
        "only once",
    );
    assert_error(
        &format!("{SAMPLE}[run]\n"),
        (20, 1),
        "invalid TOML",
        "only once",
    );
    let err = error_of(&edit("[health]", "[health"));
    assert_eq!(err.line, 10);
    assert!(err.to_string().starts_with("runway.toml:10:"), "{err}");
}

/// Variants of `text` that a truncated write or a slip of the keyboard could produce:
/// prefixes, lines dropped or repeated and (if `typos`) single characters replaced.
fn mangled(text: &str, typos: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.char_indices() {
        out.push(text[..i].to_owned());
    }
    let lines: Vec<&str> = text.lines().collect();
    for i in 0..lines.len() {
        let mut dropped = lines.clone();
        dropped.remove(i);
        out.push(dropped.join("\n"));
        let mut repeated = lines.clone();
        repeated.insert(i, lines[i]);
        out.push(repeated.join("\n"));
    }
    for (i, c) in text.char_indices().filter(|_| typos) {
        for junk in [
            '"', '[', ']', '=', '{', '}', ',', '\n', '#', '0', '-', 'é', '\0', '\t',
        ] {
            let mut s = String::with_capacity(text.len() + 2);
            s.push_str(&text[..i]);
            s.push(junk);
            s.push_str(&text[i + c.len_utf8()..]);
            out.push(s);
        }
    }
    out
}

#[test]
fn the_fuzz_samples_are_valid() {
    for text in [SAMPLE, CANARY, BLUE_GREEN, CHECKS, HOOKS] {
        if let Err(err) = parse_str(text, "runway.toml") {
            panic!("{err}");
        }
    }
}

#[test]
fn no_input_panics_and_every_error_is_located() {
    let mut checked = 0;
    for (base, typos) in [
        (SAMPLE, true),
        (INIT_TEMPLATE, false),
        (CANARY, true),
        (BLUE_GREEN, false),
        (CHECKS, true),
        (HOOKS, true),
    ] {
        for text in mangled(base, typos) {
            match parse_str(&text, "runway.toml") {
                // Whatever the reader accepts, the JSON path must accept too.
                Ok(spec) => {
                    assert_eq!(spec.validate(), Ok(()), "{text}");
                    let json = serde_json::to_string(&spec).unwrap();
                    let back: runway_spec::Spec = serde_json::from_str(&json).unwrap();
                    assert_eq!(back, spec, "{json}");
                }
                Err(errors) => {
                    for err in &errors {
                        assert!(
                            err.line >= 1 && err.col >= 1,
                            "unlocated error {err:?} for:\n{text}"
                        );
                        let shown = err.to_string();
                        let head = format!("runway.toml:{}:{}: error: ", err.line, err.col);
                        assert!(shown.starts_with(&head), "{shown}");
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 20_000, "only {checked} variants");
}

/// Issue 10: invalid UTF-8 is located at its byte, like any other error.
#[test]
fn invalid_utf8_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runway.toml");
    let mut bytes = SAMPLE.as_bytes().to_vec();
    // "name = \"web\"" on line 2 gets a stray Latin-1 byte inside the string.
    let at = SAMPLE.find("web").unwrap() + 1;
    bytes.insert(at, 0xe9);
    std::fs::write(&path, &bytes).unwrap();
    let errors = runway_spec::parse_file(&path).unwrap_err();
    assert_eq!(errors.len(), 1);
    let err = errors.first();
    assert_eq!((err.line, err.col), (2, 10), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("not valid UTF-8: byte 0xe9"), "{shown}");
    assert!(shown.contains("save runway.toml as UTF-8"), "{shown}");
}

/// Issue 10: an error on a megabytes-long line shows a window of it, not the whole line
/// (once, not three times).
#[test]
fn a_long_line_is_cut_around_the_error() {
    let long = format!("name = \"{}\" x", "a".repeat(2_000_000));
    let text = SAMPLE.replace("name = \"web\"", &long);
    let err = error_of(&text);
    let shown = err.to_string();
    assert!(shown.len() < 2_000, "{} bytes shown", shown.len());
    assert!(shown.contains('…'), "{shown}");
    // The caret still points at the offending text, which is in the window.
    let lines: Vec<&str> = shown.lines().collect();
    let (code, caret) = (lines[2], lines[3]);
    let column = caret.find('^').unwrap();
    assert_eq!(code.chars().nth(column), Some('x'), "{shown}");
}

/// Issue 10: one reading reports every problem it can find, in file order, each located;
/// a problem in one section does not hide those in the next, nor two in the same one.
#[test]
fn every_problem_is_reported_in_one_run() {
    let text = r#"[service]
name = "Web App"
listen = "127.0.0.1:8080"
colour = "blue"

[run]
command = ["python3", "app.py", "--port", "{port}"]
replicas = 0
drain_timeout = "1000 days"

[health]
path = "health"
interval = "1ns"

[strategy]
kind = "canary"
steps = [{ weight = 50 }, { weight = 20 }, { weight = 100 }]

[[checks]]
name = "disk"
kind = "disk"
phases = ["preflight"]
path = "/"
min_free = "banana"

[[checks]]
name = "api"
kind = "http"
phases = ["preflight"]
url = "http://127.0.0.1:8080/health"
expect_status = 999
"#;
    let errors = common::errors_of(text);
    let found: Vec<(usize, &str)> = errors
        .iter()
        .map(|e| (e.line, e.message.as_str()))
        .collect();
    let lines: Vec<usize> = found.iter().map(|&(line, _)| line).collect();
    // colour, name, replicas, drain_timeout, path, interval, a step weight, min_free,
    // expect_status: one per mistake, section by section, unknown keys first.
    assert_eq!(lines, vec![4, 2, 8, 9, 12, 13, 17, 24, 31], "{found:#?}");
    let shown = errors.to_string();
    assert!(shown.starts_with("runway.toml:4:1: error:"), "{shown}");
    assert!(shown.ends_with("9 problems in runway.toml"), "{shown}");
    for err in &errors {
        assert!(
            shown.contains(&format!("runway.toml:{}:{}: error:", err.line, err.col)),
            "{shown}"
        );
    }
}

/// A file with one problem shows it alone, without a count.
#[test]
fn one_problem_is_shown_without_a_count() {
    let errors = common::errors_of(&SAMPLE.replace("replicas = 3", "replicas = 0"));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors.to_string(), errors.first().to_string());
}

/// Issue 11: a service has exactly one of [run], [docker] and [kubernetes]; mixing them is a
/// located error.
#[test]
fn one_platform_section_per_service() {
    let both = format!("{SAMPLE}\n[docker]\nimage = \"web:1\"\n");
    let errors = common::errors_of(&both);
    assert_eq!(errors.len(), 1, "{errors}");
    let err = errors.first();
    let docker_line = both.lines().position(|l| l == "[docker]").unwrap() + 1;
    assert_eq!((err.line, err.col), (docker_line, 2), "{err}");
    assert!(
        err.message.contains("both [run] (line 5) and [docker]"),
        "{err}"
    );
    assert!(
        err.hint.as_deref().unwrap().contains(
            "keep one of [run] (local processes), [docker] (Docker containers) or [kubernetes]"
        ),
        "{err}"
    );

    // [kubernetes] is read as what it is (crates/runway-spec/tests/kubernetes.rs): with it,
    // [run] is the second platform.
    let both = SAMPLE.replace(
        "[health]",
        "[kubernetes]\nimage = \"web:{version}\"\n\n[health]",
    );
    let errors = common::errors_of(&both);
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("both [run] (line 5) and [kubernetes]")),
        "{errors}"
    );
}

#[test]
fn proxy_limits() {
    let with = |section: &str| format!("{SAMPLE}\n[proxy]\n{section}\n");
    // SAMPLE has 19 lines: [proxy] is on line 21, its key on 22.
    assert_error(
        &with("header_timeout = \"0s\""),
        (22, 18),
        "`header_timeout` must be greater than 0",
        "header_timeout = \"15s\"",
    );
    assert_error(
        &with("idle_timeout = 75"),
        (22, 16),
        "`idle_timeout` needs a unit",
        "idle_timeout = \"75s\"",
    );
    assert_error(
        &with("body_timeout = \"0ms\""),
        (22, 16),
        "`body_timeout` must be greater than 0",
        "body_timeout = \"60s\"",
    );
    assert_error(
        &with("send_timeout = \"soon\""),
        (22, 16),
        "`send_timeout`",
        "send_timeout = \"60s\"",
    );
    assert_error(
        &with("h2c_upgrade = \"yes\""),
        (22, 15),
        "a boolean",
        "h2c_upgrade = true",
    );
    assert_error(
        &with("keepalive = \"75s\""),
        (22, 1),
        "keepalive",
        "idle_timeout",
    );
}
