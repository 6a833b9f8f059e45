//! Feature flags: read by real OpenFeature clients (the Python SDK with its OFREP provider,
//! from PyPI, unchanged), bucketed consistently over 10,000 targeting keys, and rolled out in
//! judged steps by a service whose requests read them: one rollout completes, one that makes
//! requests fail is turned off by the judge.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use runway_demo_app::load::Load;

use crate::harness::{api_exchange, api_request, text, App, Harness};

/// The Python of the tests' virtualenv (scripts/test installs the OpenFeature SDK and its
/// OFREP provider into it and names it in RUNWAY_TEST_PYTHON).
fn python() -> PathBuf {
    let python = std::env::var_os("RUNWAY_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python")
        });
    let ok = std::process::Command::new(&python)
        .args(["-c", "import openfeature.contrib.provider.ofrep"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import the OpenFeature OFREP provider: scripts/test installs it (into \
         target/test-venv)",
        python.display()
    );
    python
}

fn api_and_token(h: &Harness) -> (SocketAddr, String) {
    let server = h.server_file();
    (
        server["api"].as_str().unwrap().parse().unwrap(),
        server["token"].as_str().unwrap().to_string(),
    )
}

/// A viewer's token: all an application needs to read its flags.
async fn viewer_token(h: &Harness, name: &str) -> String {
    let out = h
        .runway(&["tokens", "create", name, "--role", "viewer", "--json"])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    created["token"].as_str().unwrap().to_string()
}

async fn flags(h: &Harness, args: &[&str]) -> std::process::Output {
    let mut all = vec!["flags"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--service", "web"]);
    h.runway(&all).await
}

async fn flag_json(h: &Harness, name: &str) -> serde_json::Value {
    let out = flags(h, &["get", name, "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["definition"].clone()
}

/// Evaluations by the OpenFeature Python SDK: one JSON object per request.
fn sdk_evaluate(
    dir: &std::path::Path,
    base_url: &str,
    token: &str,
    requests: &[serde_json::Value],
) -> Vec<serde_json::Value> {
    use std::io::Write;
    let script = dir.join("ofrep_client.py");
    std::fs::write(&script, include_str!("flags/ofrep_client.py")).unwrap();
    let mut child = std::process::Command::new(python())
        .arg(&script)
        .args([base_url, token])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = requests.iter().map(|r| format!("{r}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A server whose service `web` serves v1 on one replica.
async fn serving_one_replica() -> Harness {
    let h = Harness::start().await;
    let one = App {
        replicas: 1,
        ..App::default()
    };
    let out = h.deploy("v1", &one).await;
    assert!(out.status.success(), "{}", text(&out));
    h
}

fn ask(flag: &str, kind: &str, default: serde_json::Value, key: &str) -> serde_json::Value {
    serde_json::json!({"flag": flag, "type": kind, "default": default, "key": key})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openfeature_clients_read_every_kind_of_flag_and_see_a_change_at_once() {
    let h = serving_one_replica().await;
    let (api, admin) = api_and_token(&h);
    let token = viewer_token(&h, "agent-app").await;
    let base_url = format!("http://{api}/v1/services/web");

    // Runbook 001: deployed disabled, then on for the canary users.
    for args in [
        vec!["set", "agent-pack-v2"],
        vec![
            "set",
            "agent-pack-v2",
            "--on",
            "--for-keys",
            "on=canary-1,canary-2",
        ],
        vec![
            "set",
            "banner",
            "--kind",
            "string",
            "--variant",
            "a=\"Hello\"",
            "--variant",
            "b=\"Welcome back\"",
            "--default",
            "a",
            "--for-attribute",
            "b:plan=enterprise",
            "--on",
        ],
        vec![
            "set",
            "limit",
            "--kind",
            "number",
            "--variant",
            "low=2.5",
            "--variant",
            "high=10.5",
            "--default",
            "low",
            "--percent",
            "100",
            "--percent-variant",
            "high",
            "--on",
        ],
        vec![
            "set",
            "config",
            "--kind",
            "object",
            "--variant",
            "small={\"model\": \"mini\", \"max_tokens\": 256}",
            "--variant",
            "big={\"model\": \"large\", \"max_tokens\": 4096}",
            "--default",
            "small",
            "--on",
        ],
    ] {
        let out = flags(&h, &args).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    // A definition with a problem is refused and changes nothing.
    let before = flag_json(&h, "banner").await;
    let out = flags(&h, &["set", "banner", "--default", "nope"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not one of the variants"),
        "{}",
        text(&out)
    );
    assert_eq!(flag_json(&h, "banner").await, before);

    let seen = sdk_evaluate(
        h.dir.path(),
        &base_url,
        &token,
        &[
            ask("agent-pack-v2", "boolean", false.into(), "canary-1"),
            ask("agent-pack-v2", "boolean", false.into(), "user-9"),
            serde_json::json!({"flag": "banner", "type": "string", "default": "?", "key": "u1",
                               "attributes": {"plan": "enterprise"}}),
            serde_json::json!({"flag": "banner", "type": "string", "default": "?", "key": "u2",
                               "attributes": {"plan": "free"}}),
            ask("limit", "float", 0.5.into(), "u3"),
            ask("config", "object", serde_json::json!({}), "u4"),
            ask("no-such-flag", "boolean", true.into(), "u5"),
        ],
    );
    let got = |i: usize| {
        (
            &seen[i]["value"],
            seen[i]["variant"].as_str(),
            seen[i]["reason"].as_str(),
        )
    };
    assert_eq!(
        got(0),
        (&true.into(), Some("on"), Some("TARGETING_MATCH")),
        "{seen:?}"
    );
    assert_eq!(
        got(1),
        (&false.into(), Some("off"), Some("DEFAULT")),
        "{seen:?}"
    );
    assert_eq!(
        got(2),
        (&"Welcome back".into(), Some("b"), Some("TARGETING_MATCH"))
    );
    assert_eq!(got(3), (&"Hello".into(), Some("a"), Some("DEFAULT")));
    assert_eq!(got(4), (&10.5.into(), Some("high"), Some("SPLIT")));
    assert_eq!(
        got(5),
        (
            &serde_json::json!({"model": "mini", "max_tokens": 256}),
            Some("small"),
            Some("STATIC")
        )
    );
    assert_eq!(seen[6]["value"], true, "the code's default");
    assert_eq!(seen[6]["error_code"], "FLAG_NOT_FOUND");

    // The kill switch reaches the client at its next evaluation.
    let out = flags(
        &h,
        &[
            "off",
            "agent-pack-v2",
            "--reason",
            "errors in the agent pack",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let seen = sdk_evaluate(
        h.dir.path(),
        &base_url,
        &token,
        &[ask("agent-pack-v2", "boolean", true.into(), "canary-1")],
    );
    assert_eq!(seen[0]["value"], false);
    assert_eq!(seen[0]["reason"], "DISABLED");
    // Without a token: the default, and an error.
    let seen = sdk_evaluate(
        h.dir.path(),
        &base_url,
        "",
        &[ask("banner", "string", "fallback".into(), "u1")],
    );
    assert_eq!(seen[0]["value"], "fallback");
    assert_eq!(seen[0]["error_code"], "GENERAL");

    // Bulk evaluation, with an ETag a polling client sends back.
    let bulk = "/v1/services/web/ofrep/v1/evaluate/flags";
    let context = r#"{"context": {"targetingKey": "canary-1"}}"#;
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let (status, headers, answer) = api_exchange(api, "POST", bulk, context, &auth).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["flags"].as_array().unwrap().len(), 4, "{answer}");
    let etag = headers["etag"].to_str().unwrap().to_string();
    let with_tag = [
        ("authorization", bearer.as_str()),
        ("if-none-match", etag.as_str()),
    ];
    let (status, _, _) = api_exchange(api, "POST", bulk, context, &with_tag).await;
    assert_eq!(status, 304, "unchanged flags: not modified");
    let out = flags(&h, &["set", "agent-pack-v2", "--on"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let (status, headers, answer) = api_exchange(api, "POST", bulk, context, &with_tag).await;
    assert_eq!(status, 200, "a change is a new answer: {answer}");
    assert_ne!(headers["etag"].to_str().unwrap(), etag);

    // OFREP's own errors.
    let one = "/v1/services/web/ofrep/v1/evaluate/flags/banner";
    let (status, answer) = api_request(api, "POST", one, "{not json", Some(&token)).await;
    assert_eq!(
        (status, answer["errorCode"].as_str()),
        (400, Some("PARSE_ERROR"))
    );
    let (status, answer) = api_request(api, "POST", one, "{}", Some(&token)).await;
    assert_eq!(
        (status, answer["errorCode"].as_str()),
        (400, Some("INVALID_CONTEXT"))
    );
    // A viewer reads flags and changes none.
    let (status, _) = api_request(
        api,
        "POST",
        "/v1/services/web/flags/banner/off",
        "{}",
        Some(&token),
    )
    .await;
    assert_eq!(status, 403);

    // Every change is in history as a `flag` deployment, and in the audit trail; the
    // evaluations are not.
    let history = h.history().await;
    let changes: Vec<&serde_json::Value> = history.iter().filter(|d| d["kind"] == "flag").collect();
    assert_eq!(changes.len(), 7, "{history:?}");
    assert!(changes.iter().all(|d| d["status"] == "succeeded"));
    let (status, audit) = api_request(api, "GET", "/v1/audit", "", Some(&admin)).await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions
        .iter()
        .any(|a| a.starts_with("PUT /v1/services/web/flags/banner")));
    assert!(actions
        .iter()
        .any(|a| a.starts_with("POST /v1/services/web/flags/agent-pack-v2/off")));
    assert!(
        !actions.iter().any(|a| a.contains("/ofrep/")),
        "{actions:?}"
    );
}

/// The share of 10,000 targeting keys a rollout lets in is within 1% of each step's, and a key
/// in at one step stays in at every later one: measured through the server's OFREP endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_keys_split_within_one_percent_and_stay_in_as_the_share_grows() {
    let h = serving_one_replica().await;
    let (api, _) = api_and_token(&h);
    let token = viewer_token(&h, "reader").await;
    let mut previous: BTreeSet<u32> = BTreeSet::new();
    for percent in ["5", "25", "50", "100"] {
        let out = flags(&h, &["set", "split", "--on", "--percent", percent]).await;
        assert!(out.status.success(), "{}", text(&out));
        let mut inside = BTreeSet::new();
        for chunk in (0..10_000u32).collect::<Vec<_>>().chunks(100) {
            let asks = chunk.iter().map(|&k| {
                let token = token.clone();
                async move {
                    let body = format!(r#"{{"context": {{"targetingKey": "user-{k}"}}}}"#);
                    let (status, answer) = api_request(
                        api,
                        "POST",
                        "/v1/services/web/ofrep/v1/evaluate/flags/split",
                        &body,
                        Some(&token),
                    )
                    .await;
                    assert_eq!(status, 200, "{answer}");
                    assert_eq!(answer["reason"], "SPLIT");
                    (k, answer["value"] == true)
                }
            });
            for (k, on) in futures_util::future::join_all(asks).await {
                if on {
                    inside.insert(k);
                }
            }
        }
        let share = inside.len() as f64 / 100.0;
        let target: f64 = percent.parse().unwrap();
        assert!(
            (share - target).abs() <= 1.0,
            "{percent}%: {share}% of 10,000 keys are in"
        );
        assert!(
            previous.is_subset(&inside),
            "{} keys in at the step before are out at {percent}%",
            previous.difference(&inside).count()
        );
        eprintln!("{percent}%: {share}% of 10,000 keys in");
        previous = inside;
    }
}

fn flag_app_config(h: &Harness, api: SocketAddr) -> App {
    let app = h.dir.path().join("flag_app.py");
    std::fs::write(&app, include_str!("flags/flag_app.py")).unwrap();
    App {
        replicas: 2,
        command: Some(vec![
            python().display().to_string(),
            app.display().to_string(),
            "--port".into(),
            "{port}".into(),
        ]),
        env: vec![
            ("OFREP_URL".into(), format!("http://{api}/v1/services/web")),
            ("FLAG_TOKEN".into(), "secret:FLAG_TOKEN".into()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
        ],
        // The flag's share of errors against the service's before the rollout.
        strategy: Some(
            "[strategy]\nkind = \"rolling\"\n\n[analysis]\ninterval = \"500ms\"\nmin_requests = 20\n\
             failure_limit = 2\nmax_intervals = 120\n\n[[analysis.metrics]]\nname = \"error-rate\"\nsource = \"proxy\"\n\
             metric = \"error_rate\"\nfail_if = \"> stable + 0.01\"\n"
                .into(),
        ),
        ..App::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judged_rollout_completes_and_one_that_raises_the_error_rate_is_turned_off() {
    let h = Harness::start().await;
    let (api, admin) = api_and_token(&h);
    // The application's token is a secret of the service.
    let token = viewer_token(&h, "flag-app").await;
    let out = h
        .runway_with_input(
            &["secrets", "set", "FLAG_TOKEN", "--service", "web"],
            &token,
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = h.deploy("v1", &flag_app_config(&h, api)).await;
    assert!(out.status.success(), "{}", text(&out));
    for name in ["new-agent", "bad-agent"] {
        let out = flags(&h, &["set", name]).await;
        assert!(out.status.success(), "{}", text(&out));
    }

    // A healthy flag: every step passes, and at 100% it is the flag's default.
    let load = Load::start(h.listen, "/", 4, 120);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = flags(
        &h,
        &[
            "rollout",
            "new-agent",
            "--steps",
            "5%,25%,50%,100%",
            "--interval",
            "3s",
        ],
    )
    .await;
    let seen = load.stop().await;
    assert!(out.status.success(), "{}", text(&out));
    eprintln!(
        "a healthy rollout under load: {} requests answered, {} failed",
        seen.ok, seen.failed
    );
    assert_eq!(seen.failed, 0, "{:?}", seen.errors);
    assert!(seen.ok > 200, "too little load to judge: {}", seen.ok);
    let flag = flag_json(&h, "new-agent").await;
    assert_eq!(flag["enabled"], true);
    assert_eq!(flag["default_variant"], "on");
    assert!(flag.get("rollout").is_none(), "{flag}");
    let history = h.history().await;
    assert_eq!(
        (
            history[0]["kind"].as_str(),
            history[0]["version"].as_str(),
            history[0]["status"].as_str()
        ),
        (Some("flag"), Some("new-agent"), Some("succeeded"))
    );
    let id = history[0]["id"].as_i64().unwrap();
    let (_, detail) = api_request(
        api,
        "GET",
        &format!("/v1/deployments/{id}"),
        "",
        Some(&admin),
    )
    .await;
    let events: Vec<&str> = detail["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events.iter().filter(|e| **e == "flag_step").count(),
        4,
        "{events:?}"
    );
    assert!(events.contains(&"flag_baseline"), "{events:?}");
    assert!(
        events.iter().filter(|e| **e == "analysis").count() >= 4,
        "{events:?}"
    );

    // A flag whose users' requests fail: the judge turns it off, and says why with numbers.
    let load = Load::start(h.listen, "/", 4, 120);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = flags(
        &h,
        &[
            "rollout",
            "bad-agent",
            "--steps",
            "5%,25%,50%,100%",
            "--interval",
            "6s",
        ],
    )
    .await;
    let bad = load.stop().await;
    assert!(!out.status.success(), "{}", text(&out));
    eprintln!(
        "a failing flag's rollout under load: {} requests answered, {} failed before the judge \
         turned it off",
        bad.ok, bad.failed
    );
    assert!(
        bad.failed > 0,
        "the flag reached users before it was judged"
    );
    let flag = flag_json(&h, "bad-agent").await;
    assert_eq!(flag["enabled"], false, "{flag}");
    let history = h.history().await;
    assert_eq!(history[0]["status"], "rolled_back");
    let reason = history[0]["reason"].as_str().unwrap();
    eprintln!("its reason: {reason}");
    assert!(
        reason.contains("flag analysis failed") && reason.contains("error-rate"),
        "{reason}"
    );
    // The share it reached: never the last step.
    assert!(!reason.contains("at 100%"), "{reason}");

    // Off, it fails nobody.
    let load = Load::start(h.listen, "/", 4, 100);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = load.stop().await;
    assert_eq!(after.failed, 0, "{:?}", after.errors);
}
