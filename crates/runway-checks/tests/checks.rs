//! Every check kind against real (loopback) servers, files and processes: the pass,
//! the failures people meet (refused, unresolvable, hanging, malformed, flaky), and
//! the promise that secrets never reach a result.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use runway_checks::*;
use serde_json::json;

async fn one(spec: &CheckSpec, ctx: &Context) -> CheckResult {
    let mut results = run_check(spec, ctx).await;
    for r in &results {
        eprintln!("{} [{}] {}", r.status, r.attempts, r.detail);
    }
    assert_eq!(results.len(), 1, "{results:?}");
    results.remove(0)
}

fn assert_pass(r: &CheckResult) {
    assert_eq!(r.status, CheckStatus::Pass, "expected pass: {r:?}");
}

fn assert_fail(r: &CheckResult, needle: &str) {
    assert_eq!(r.status, CheckStatus::Fail, "expected fail: {r:?}");
    assert!(
        r.detail.contains(needle),
        "detail {:?} should contain {needle:?}",
        r.detail
    );
    assert!(!r.detail.contains('\n'), "detail must be one line: {r:?}");
}

fn http(url: String) -> CheckKind {
    CheckKind::http(url)
}

fn http_json(url: String, expect: serde_json::Value) -> CheckKind {
    let CheckKind::Http {
        method,
        url,
        headers,
        body,
        expect_status,
        max_latency,
        ..
    } = CheckKind::http(url)
    else {
        unreachable!()
    };
    let expect_json: BTreeMap<String, serde_json::Value> = serde_json::from_value(expect).unwrap();
    CheckKind::Http {
        method,
        url,
        headers,
        body,
        expect_status,
        expect_json,
        max_latency,
    }
}

#[tokio::test]
async fn http_health_pass_with_nested_and_number_json_paths() {
    let app = app_server().await;
    let kind = http_json(
        format!("http://{app}/health"),
        json!({".status": "healthy", ".checks.database": "healthy", ".count": 3,
               ".ratio": 0.5, ".items.1.id": 2}),
    );
    let r = one(&spec("health", kind), &ctx()).await;
    assert_pass(&r);
    assert_eq!(r.kind, "http");
    assert_eq!(r.attempts, 1);
    assert!(r.detail.starts_with("status 200 in "), "{}", r.detail);
    assert!(
        r.detail.contains("5 JSON values as expected"),
        "{}",
        r.detail
    );
}

#[tokio::test]
async fn http_json_mismatch_and_missing_paths_fail() {
    let app = app_server().await;
    let kind = http_json(
        format!("http://{app}/health"),
        json!({".checks.cache": "healthy", ".checks.queue": "healthy", ".count": 4}),
    );
    let r = one(&spec("health", kind), &ctx()).await;
    assert_fail(&r, r#".checks.cache is "degraded" (expected "healthy")"#);
    assert_fail(&r, r#".checks.queue is missing"#);
    assert_fail(&r, ".count is 3 (expected 4)");
}

#[tokio::test]
async fn http_status_rules() {
    let app = app_server().await;
    let r = one(&spec("down", http(format!("http://{app}/down"))), &ctx()).await;
    assert_fail(&r, "status 503 (expected 2xx)");
    assert_fail(&r, r#"body: {"status":"unhealthy"}"#);

    let mut kind = http(format!("http://{app}/down"));
    if let CheckKind::Http { expect_status, .. } = &mut kind {
        *expect_status = Some(503);
    }
    assert_pass(&one(&spec("down-expected", kind), &ctx()).await);

    let mut kind = http(format!("http://{app}/echo-method"));
    if let CheckKind::Http {
        method,
        body,
        expect_json,
        ..
    } = &mut kind
    {
        *method = "post".into();
        *body = Some("{}".into());
        expect_json.insert(".method".into(), json!("POST"));
    }
    assert_pass(&one(&spec("post", kind), &ctx()).await);
}

#[tokio::test]
async fn http_malformed_json_fails() {
    let app = app_server().await;
    let kind = http_json(
        format!("http://{app}/malformed"),
        json!({".status": "healthy"}),
    );
    let r = one(&spec("malformed", kind), &ctx()).await;
    assert_fail(&r, "status 200 but the body is not valid JSON");
}

#[tokio::test]
async fn http_max_latency() {
    let app = app_server().await;
    let mut kind = http(format!("http://{app}/health?delay_ms=300"));
    if let CheckKind::Http { max_latency, .. } = &mut kind {
        *max_latency = Some(Duration::from_millis(100));
    }
    let r = one(&spec("slow", kind.clone()), &ctx()).await;
    assert_fail(&r, "(max_latency 100ms)");
    if let CheckKind::Http { max_latency, .. } = &mut kind {
        *max_latency = Some(Duration::from_secs(2));
    }
    assert_pass(&one(&spec("slow-ok", kind), &ctx()).await);
}

#[tokio::test]
async fn http_hanging_server_times_out_within_the_bound() {
    let hang = hanging_server().await;
    let s = CheckSpec {
        timeout: Duration::from_secs(1),
        ..spec("hang", http(format!("http://{hang}/health")))
    };
    let started = Instant::now();
    let r = one(&s, &ctx()).await;
    let took = started.elapsed();
    assert_fail(&r, "timed out after 1s");
    assert_eq!(r.detail, "timed out after 1s");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

#[tokio::test]
async fn http_refused_connection() {
    let port = free_port();
    let r = one(
        &spec("refused", http(format!("http://127.0.0.1:{port}/"))),
        &ctx(),
    )
    .await;
    assert_fail(
        &r,
        &format!("cannot connect to 127.0.0.1:{port}: connection refused"),
    );
}

#[tokio::test]
async fn http_dns_failure() {
    let r = one(
        &spec("dns", http("http://nonexistent.invalid/health".into())),
        &ctx(),
    )
    .await;
    assert_fail(&r, "cannot resolve nonexistent.invalid");
}

#[tokio::test]
async fn https_against_an_untrusted_certificate_fails_with_the_tls_error() {
    let cert = cert_valid_for(90);
    let addr = tls_server(&cert).await;
    let url = format!("https://localhost:{}/health", addr.port());
    let r = one(&spec("https", http(url)), &ctx()).await;
    assert_fail(&r, "TLS handshake with localhost");
    assert!(
        r.detail.to_lowercase().contains("certificate"),
        "{}",
        r.detail
    );
}

#[tokio::test]
async fn retries_pass_on_the_third_attempt() {
    let app = app_server().await;
    let s = CheckSpec {
        retries: 3,
        backoff: Duration::from_millis(50),
        ..spec("flaky", http(format!("http://{app}/flaky")))
    };
    let r = one(&s, &ctx()).await;
    assert_pass(&r);
    assert_eq!(r.attempts, 3);
    // Backoff doubles: 50ms + 100ms.
    assert!(r.duration >= Duration::from_millis(150), "{r:?}");
}

#[tokio::test]
async fn retries_exhausted_report_the_last_failure() {
    let port = free_port();
    let s = CheckSpec {
        retries: 2,
        backoff: Duration::from_millis(10),
        ..spec(
            "refused",
            CheckKind::Tcp {
                address: format!("127.0.0.1:{port}"),
            },
        )
    };
    let r = one(&s, &ctx()).await;
    assert_fail(&r, "connection refused");
    assert_eq!(r.attempts, 3);
}

#[tokio::test]
async fn replica_expansion_gives_one_result_per_replica() {
    let a = app_server().await;
    let b = app_server().await;
    let dead = format!("127.0.0.1:{}", free_port());
    let ctx = Context {
        replica_addrs: vec![a.to_string(), dead.clone(), b.to_string()],
        ..ctx()
    };
    let kind = http_json(
        "http://{replica}/health".into(),
        json!({".status": "healthy"}),
    );
    let results = run_check(&spec("replicas", kind), &ctx).await;
    assert_eq!(results.len(), 3);
    let targets: Vec<_> = results.iter().map(|r| r.target.clone().unwrap()).collect();
    assert_eq!(targets, vec![a.to_string(), dead.clone(), b.to_string()]);
    assert_pass(&results[0]);
    assert_fail(&results[1], "connection refused");
    assert_pass(&results[2]);

    // No replicas known: one failed result, nothing attempted.
    let kind = http("http://{replica}/health".into());
    let r = one(&spec("no-replicas", kind), &common::ctx()).await;
    assert_fail(&r, "no replicas");
    assert_eq!(r.attempts, 0);
}

#[tokio::test]
async fn header_values_resolve_references_and_never_show() {
    let app = app_server().await;
    let ctx = Context {
        env: env(&[("API_TOKEN", "Bearer tok-abc123")]),
        ..ctx()
    };
    let mut kind = http(format!("http://{app}/auth"));
    if let CheckKind::Http { headers, .. } = &mut kind {
        headers.insert("Authorization".into(), "env:API_TOKEN".into());
    }
    assert_pass(&one(&spec("auth", kind.clone()), &ctx).await);

    // A wrong token that the server echoes back in its error body is masked.
    let ctx = Context {
        env: env(&[("API_TOKEN", "Bearer wrong-tok-999")]),
        ..ctx
    };
    let r = one(&spec("auth", kind.clone()), &ctx).await;
    assert_fail(&r, "status 401");
    assert!(!r.detail.contains("wrong-tok-999"), "{}", r.detail);
    assert!(r.detail.contains("***"), "{}", r.detail);

    let r = one(&spec("auth", kind), &common::ctx()).await;
    assert_fail(&r, "env:API_TOKEN is not set");
    assert_eq!(r.attempts, 0);
}

#[tokio::test]
async fn url_passwords_never_show() {
    let port = free_port();
    let url = format!("http://admin:pw-in-url-77@127.0.0.1:{port}/health");
    let r = one(&spec("pw", http(url)), &ctx()).await;
    assert_eq!(r.status, CheckStatus::Fail);
    assert!(!r.detail.contains("pw-in-url-77"), "{}", r.detail);
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("pw-in-url-77"), "{json}");
}

#[tokio::test]
async fn tcp_pass_and_fail() {
    let app = app_server().await;
    let r = one(
        &spec(
            "tcp",
            CheckKind::Tcp {
                address: app.to_string(),
            },
        ),
        &ctx(),
    )
    .await;
    assert_pass(&r);
    assert!(
        r.detail.starts_with(&format!("connected to {app}")),
        "{}",
        r.detail
    );
    let r = one(
        &spec(
            "tcp",
            CheckKind::Tcp {
                address: "nonexistent.invalid:5432".into(),
            },
        ),
        &ctx(),
    )
    .await;
    assert_fail(&r, "cannot resolve nonexistent.invalid");
}

#[tokio::test]
async fn disk_min_free() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().display().to_string();
    let disk = |min: &str| CheckKind::Disk {
        path: path.clone(),
        min_free: MinFree::parse(min).unwrap(),
    };
    let r = one(&spec("disk", disk("1B")), &ctx()).await;
    assert_pass(&r);
    assert!(r.detail.contains(" free of "), "{}", r.detail);
    let r = one(&spec("disk", disk("1000000TB")), &ctx()).await;
    assert_fail(&r, "need at least 1000000 TB");
    assert_pass(&one(&spec("disk", disk("0.0001%")), &ctx()).await);
    let missing = CheckKind::Disk {
        path: dir.path().join("nope").display().to_string(),
        min_free: MinFree::Bytes(1),
    };
    assert_fail(&one(&spec("disk", missing), &ctx()).await, "cannot stat");
}

#[tokio::test]
async fn file_exists_and_absent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("maintenance"), "").unwrap();
    let ctx = Context {
        workdir: dir.path().into(),
        ..ctx()
    };
    let file = |path: &str, exists: bool| CheckKind::File {
        path: path.into(),
        exists,
    };
    assert_pass(&one(&spec("f", file("maintenance", true)), &ctx).await);
    assert_pass(&one(&spec("f", file("release", false)), &ctx).await);
    let r = one(&spec("f", file("maintenance", false)), &ctx).await;
    assert_fail(&r, "maintenance exists but must be absent");
    let r = one(&spec("f", file("release", true)), &ctx).await;
    assert_fail(&r, "release does not exist");
}

#[tokio::test]
async fn env_check_never_prints_values() {
    let ctx = Context {
        env: env(&[("DB_PASSWORD", "hunter2-value"), ("EMPTY", "")]),
        ..ctx()
    };
    let check = |vars: &[&str]| CheckKind::Env {
        vars: vars.iter().map(|v| v.to_string()).collect(),
    };
    let r = one(&spec("env", check(&["DB_PASSWORD"])), &ctx).await;
    assert_pass(&r);
    assert_eq!(r.detail, "1 variable set: DB_PASSWORD");
    let r = one(
        &spec("env", check(&["DB_PASSWORD", "EMPTY", "MISSING"])),
        &ctx,
    )
    .await;
    assert_fail(&r, "not set: MISSING; empty: EMPTY");
    assert!(!r.detail.contains("hunter2"));
}

fn command(argv: &[&str], expect_stdout: Option<&str>) -> CheckKind {
    CheckKind::Command {
        command: argv.iter().map(|s| s.to_string()).collect(),
        expect_exit: 0,
        expect_stdout: expect_stdout.map(str::to_string),
        env: BTreeMap::new(),
    }
}

#[tokio::test]
async fn command_exit_code_and_stdout_regex() {
    let r = one(
        &spec(
            "c",
            command(&["echo", "ready: 42 jobs"], Some(r"ready: \d+")),
        ),
        &ctx(),
    )
    .await;
    assert_pass(&r);
    assert_eq!(r.detail, r"echo exited with 0; stdout matches /ready: \d+/");

    let r = one(
        &spec("c", command(&["echo", "starting"], Some(r"ready: \d+"))),
        &ctx(),
    )
    .await;
    assert_fail(&r, "stdout does not match /ready: \\d+/: starting");

    let r = one(&spec("c", command(&["false"], None)), &ctx()).await;
    assert_fail(&r, "false exited with 1 (expected 0)");

    let mut kind = command(&["false"], None);
    if let CheckKind::Command { expect_exit, .. } = &mut kind {
        *expect_exit = 1;
    }
    assert_pass(&one(&spec("c", kind), &ctx()).await);

    let r = one(&spec("c", command(&["no-such-program-xyz"], None)), &ctx()).await;
    assert_fail(&r, "cannot run no-such-program-xyz: not found");

    // Arguments are never interpreted by a shell.
    let r = one(
        &spec(
            "c",
            command(&["echo", "$HOME;", "`id`"], Some(r"^\$HOME; `id`$")),
        ),
        &ctx(),
    )
    .await;
    assert_pass(&r);
}

/// A command check's program starts with the context's open-file limit (the server's own
/// before it raised it), not the inherited one; without one it inherits.
#[tokio::test]
async fn command_starts_with_the_contexts_open_file_limit() {
    let (soft, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let wanted = (soft / 2).max(32);
    assert_ne!(wanted, soft);
    let ulimit = |expected: u64| {
        spec(
            "c",
            command(&["sh", "-c", "ulimit -n"], Some(&format!("^{expected}$"))),
        )
    };
    let limited = Context {
        open_files: Some((wanted, hard)),
        ..ctx()
    };
    assert_pass(&one(&ulimit(wanted), &limited).await);
    assert_pass(&one(&ulimit(soft), &ctx()).await);
}

#[tokio::test]
async fn command_env_secrets_are_masked_and_timeouts_kill() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("greeting"), "hello-secret-42\n").unwrap();
    let ctx = Context {
        secrets: Some(std::sync::Arc::new(runway_checks::run::SecretsDir(
            dir.path().into(),
        ))),
        ..ctx()
    };
    let mut kind = command(&["printenv", "GREETING"], Some("^goodbye"));
    if let CheckKind::Command { env, .. } = &mut kind {
        env.insert("GREETING".into(), "secret:greeting".into());
    }
    let r = one(&spec("c", kind), &ctx).await;
    assert_fail(&r, "stdout does not match /^goodbye/: ***");
    assert!(!r.detail.contains("hello-secret-42"));

    let s = CheckSpec {
        timeout: Duration::from_millis(500),
        ..spec("sleep", command(&["sleep", "10"], None))
    };
    let started = Instant::now();
    let r = one(&s, &ctx).await;
    assert_fail(&r, "timed out after 500ms");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn tls_file_and_address() {
    let dir = tempfile::tempdir().unwrap();
    let good = cert_valid_for(90);
    let soon = cert_valid_for(5);
    std::fs::write(dir.path().join("good.pem"), &good.pem).unwrap();
    std::fs::write(dir.path().join("soon.pem"), &soon.pem).unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    let ctx = Context {
        workdir: dir.path().into(),
        ..ctx()
    };
    let file = |f: &str| CheckKind::Tls {
        file: Some(f.into()),
        address: None,
        server_name: None,
        min_days: 30,
    };
    let r = one(&spec("tls", file("good.pem")), &ctx).await;
    assert_pass(&r);
    assert!(r.detail.contains("CN=runway test"), "{}", r.detail);
    assert!(r.detail.contains("in 90 days"), "{}", r.detail);
    let r = one(&spec("tls", file("soon.pem")), &ctx).await;
    assert_fail(&r, "in 5 day(s) (min_days 30)");
    assert_fail(
        &one(&spec("tls", file("junk.pem")), &ctx).await,
        "no PEM certificate",
    );
    assert_fail(
        &one(&spec("tls", file("missing.pem")), &ctx).await,
        "cannot read",
    );

    let addr = |a: String| CheckKind::Tls {
        file: None,
        address: Some(a),
        server_name: Some("localhost".into()),
        min_days: 30,
    };
    let good_srv = tls_server(&good).await;
    let soon_srv = tls_server(&soon).await;
    assert_pass(&one(&spec("tls", addr(good_srv.to_string())), &ctx).await);
    let r = one(&spec("tls", addr(soon_srv.to_string())), &ctx).await;
    assert_fail(&r, "expires on");
    assert_fail(&r, "(min_days 30)");
    let app = app_server().await;
    let r = one(&spec("tls", addr(app.to_string())), &ctx).await;
    assert_fail(&r, "did not answer with TLS");
    let port = free_port();
    let r = one(&spec("tls", addr(format!("127.0.0.1:{port}"))), &ctx).await;
    assert_fail(&r, "connection refused");
}

#[tokio::test]
async fn prometheus_conditions() {
    let prom = prometheus_server().await;
    let check = |query: &str, condition: &str| CheckKind::Prometheus {
        url: format!("http://{prom}/"),
        query: query.into(),
        condition: condition.into(),
    };
    let r = one(&spec("p", check("up", "== 1")), &ctx()).await;
    assert_pass(&r);
    assert!(r.detail.contains(r#"{job="api"} 1"#), "{}", r.detail);
    let r = one(&spec("p", check("mixed_up", "== 1")), &ctx()).await;
    assert_fail(&r, r#"{job="db"} 0 does not meet == 1"#);
    assert_pass(&one(&spec("p", check("error_rate", "< 0.1")), &ctx()).await);
    assert_fail(
        &one(&spec("p", check("error_rate", "< 0.01")), &ctx()).await,
        "0.05 does not meet < 0.01",
    );
    assert_fail(
        &one(&spec("p", check("absent", "> 0")), &ctx()).await,
        "returned no data",
    );
    assert_pass(&one(&spec("p", check("scalar(1)", ">= 1")), &ctx()).await);
    assert_fail(
        &one(&spec("p", check("rate(", "> 0")), &ctx()).await,
        "parse error at char 4",
    );
    let port = free_port();
    let dead = CheckKind::Prometheus {
        url: format!("http://127.0.0.1:{port}"),
        query: "up".into(),
        condition: "> 0".into(),
    };
    assert_fail(&one(&spec("p", dead), &ctx()).await, "connection refused");
}

#[tokio::test]
async fn run_checks_is_concurrent_ordered_and_finds_blockers() {
    let app = app_server().await;
    let port = free_port();
    let slow = |name: &str| spec(name, http(format!("http://{app}/health?delay_ms=700")));
    let specs = vec![
        slow("slow-1"),
        CheckSpec {
            severity: Severity::Warning,
            ..spec(
                "warn",
                CheckKind::Tcp {
                    address: format!("127.0.0.1:{port}"),
                },
            )
        },
        slow("slow-2"),
        spec(
            "blocker",
            CheckKind::Tcp {
                address: format!("127.0.0.1:{port}"),
            },
        ),
    ];
    let started = Instant::now();
    let results = run_checks(&specs, &ctx()).await;
    assert!(
        started.elapsed() < Duration::from_millis(1300),
        "not concurrent"
    );
    let names: Vec<_> = results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["slow-1", "warn", "slow-2", "blocker"]);
    let blocking = blocking_failures(&results);
    assert_eq!(blocking.len(), 1);
    assert_eq!(blocking[0].name, "blocker");
    assert_eq!(results[1].status, CheckStatus::Fail);
    assert_eq!(results[1].severity, Severity::Warning);

    // Results serialize for storage.
    let json = serde_json::to_value(&results[0]).unwrap();
    assert_eq!(json["status"], "pass");
    assert_eq!(json["severity"], "blocker");
    let back: CheckResult = serde_json::from_value(json).unwrap();
    assert_eq!(back, results[0]);
}
